"""Gateway errors: one-line messages naming the signal and the endpoint.

All derive from :class:`twin.errors.TwinError`, so the CLI prints them as one line and exits
with their code instead of showing a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.errors import TwinError

if TYPE_CHECKING:
    from connectors.opcua.records import CallResult, WriteResult


class GatewayError(TwinError):
    """Base class of every OPC UA gateway error."""


class TagError(GatewayError):
    """A tag does not fit the server: missing node, wrong data type, access, unknown signal.

    Exit code 2: the tag map (a configuration file) has to be fixed.
    """

    exit_code = 2


class CredentialsError(GatewayError):
    """The password source of an endpoint (environment variable or file) is not usable."""

    exit_code = 2


class EndpointUnreachableError(GatewayError):
    """The endpoint did not answer (refused, timed out, no route)."""


class SecurityError(GatewayError):
    """The secure channel or the login was refused (certificate, policy, user, password)."""


class NotConnectedError(GatewayError):
    """A request while the endpoint is not connected; it failed at once and is not queued."""


class OutOfLimitsError(GatewayError):
    """A write outside the tag's limits or type range; it was not sent."""

    exit_code = 2


class WriteError(GatewayError):
    """The server refused a write or the read-back differs; ``result`` holds the details."""

    def __init__(self, result: WriteResult) -> None:
        super().__init__(result.describe())
        self.result = result


class CallError(GatewayError):
    """A method call returned a bad status; ``result`` holds the details."""

    def __init__(self, result: CallResult) -> None:
        super().__init__(result.describe())
        self.result = result
