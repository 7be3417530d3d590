"""Virtual metrology and run-to-run control of the oxide thickness.

Modules
-------
stability
    Closed-loop stability condition of the (double-)EWMA offset update (pure; the plant
    configuration validates ``[control]`` with it when the file is loaded).
audit
    Append-only, crash-safe audit trail (JSON lines, fsync per record, hash chained), and the
    in-memory buffer the SimPy model writes to instead of doing I/O.
calibration
    Per-tool learning from the lab: double-EWMA on the log rate factor, late / out-of-order /
    missing measurements, outlier rejection with a logged reason.
model
    The twin's process models the controller inverts (oxidation furnace, sputter cap).
vm
    Virtual-metrology predictor: thickness distribution, prediction interval, reliability,
    the hold rule.
r2r
    Run-to-run controller: model inversion over a configurable knob order inside equipment
    limits and move limits, with a deadband; advisory proposals and closed-loop writes.
loop
    One control loop per tool wiring VM, calibration, controller and audit together; what the
    plant model and the bench call.

This package file deliberately imports nothing: :mod:`twin.config.schema` imports
:mod:`twin.control.stability` while it is itself being imported.
"""
