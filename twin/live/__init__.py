"""Live mode: the plant model run against wall-clock time, with OPC UA equipment."""
