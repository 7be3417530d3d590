"""The plant-floor web view: pages of the live twin (or a finished run) in a browser."""
