"""The live twin: the plant model driven against PLCs over OPC UA (``anode-twin run``).

``equipment``  OPC UA implementation of the equipment interface (furnace, sputter tool)
``launcher``   emulated PLCs as subprocesses on free loopback ports
``session``    one live run: gateway, plant model, real-time bridge, twin server, run folder
``table``      the live table printed while a run goes on
"""
