"""Equipment behind a small interface: simulated in-process, or OPC UA (live)."""
