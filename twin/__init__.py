"""anode-twin: digital twin of a Si/Sn-alloy anode plant with a nanometre oxide skin."""

__version__ = "0.1.0"
