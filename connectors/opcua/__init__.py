"""OPC UA client gateway of anode-twin (asyncua).

The tag map of the plant (site) file maps logical signals to PLC nodes; :class:`Gateway`
connects, checks every tag against the server, subscribes actual values, writes setpoints
one node at a time with explicit variant types and read-back, reconnects with back-off and
records outages as :class:`Gap`. See :mod:`connectors.opcua.gateway`.
"""

from connectors.opcua.errors import (
    CallError,
    CredentialsError,
    EndpointUnreachableError,
    GatewayError,
    NotConnectedError,
    OutOfLimitsError,
    SecurityError,
    TagError,
    WriteError,
)
from connectors.opcua.gateway import Gateway
from connectors.opcua.records import (
    Alarm,
    CallResult,
    EndpointState,
    EndpointStatus,
    Gap,
    GatewayEvent,
    Sample,
    WriteResult,
)

__all__ = [
    "Alarm",
    "CallError",
    "CallResult",
    "CredentialsError",
    "EndpointState",
    "EndpointStatus",
    "EndpointUnreachableError",
    "Gap",
    "Gateway",
    "GatewayError",
    "GatewayEvent",
    "NotConnectedError",
    "OutOfLimitsError",
    "Sample",
    "SecurityError",
    "TagError",
    "WriteError",
    "WriteResult",
]
