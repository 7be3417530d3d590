"""OPC UA endpoints and the tag map: how the twin's logical signals reach real PLCs.

A site is integrated by editing only ``[endpoints]`` and ``[tags]`` of its plant (site) file:

* ``[endpoints.<name>]`` is one PLC / OPC UA server: its URL, security (mode, policy,
  certificates, username) and the connection's timeouts, reconnect back-off and heartbeat.
* ``[tags."<plant>.<station>.<signal>"]`` maps one logical signal of a station (the dotted
  component path the model uses, e.g. ``line1.oxidizer1.temperature_sp``) to a node of an
  endpoint, with its OPC UA data type, units, limits and access.

Passwords are never part of a plant file: the file names an environment variable
(``password_env``) or a file (``password_file``) that holds it, so plant files can be kept in
version control and shown in reviews. These models only validate shape; whether a node exists
and has the declared type is checked against the live server by the gateway
(:mod:`connectors.opcua`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: OPC UA built-in scalar types a tag may declare (names as in the OPC UA specification).
NUMERIC_TYPES: frozenset[str] = frozenset(
    {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double"}
)
INTEGER_TYPES: frozenset[str] = NUMERIC_TYPES - {"Float", "Double"}
VALUE_TYPES: frozenset[str] = NUMERIC_TYPES | {"Boolean", "String", "LocalizedText", "DateTime"}

TagType = Literal[
    "Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64",
    "Float", "Double", "String", "LocalizedText", "DateTime", "Method",
]
HeartbeatType = Literal["Boolean", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]
# Basic128Rsa15 and Basic256 are deprecated by the OPC Foundation (SHA-1) but still the only
# policies of some installed PLC firmware, so they are accepted; prefer Basic256Sha256.
SecurityPolicy = Literal[
    "None", "Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128Sha256RsaOaep",
    "Aes256Sha256RsaPss",
]

_URL = re.compile(r"^opc\.tcp://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}(/.*)?$")
# NodeId text (OPC UA Part 6 5.3.1.10): optional ns=<index>; or nsu=<uri>; then i=, s=, g=, b=.
_NODE_ID = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?[isgb]=.+$", re.DOTALL)
_SIGNAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){2,}$")
_PATH_ELEMENT = re.compile(r"^(\d+:)?[^/:]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Frozen(BaseModel):
    """Same base as :class:`twin.config.schema.Frozen` (unknown keys are errors; immutable).

    Defined here rather than imported because ``schema`` imports this module for
    ``PlantConfig.endpoints``/``tags``; importing back would be circular.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def is_node_id(text: str) -> bool:
    """True if ``text`` is NodeId text (``ns=2;s=a.b``, ``nsu=urn:x;i=5``, ``i=85``)."""
    return bool(_NODE_ID.match(text))


def browse_path_elements(text: str) -> list[str]:
    """Split a browse path ``Objects/2:furnace1/2:Temperature`` into its elements.

    The path starts at the Objects folder (``Objects/...``, ``/Objects/...`` or
    ``Root/Objects/...``); each element is ``<namespace index>:<BrowseName>`` or a bare
    BrowseName of namespace 0. Raises ``ValueError`` with the reason when malformed.
    """
    parts = [p for p in text.strip().strip("/").split("/")]
    if parts and parts[0] in ("Root", "0:Root"):
        parts = parts[1:]
    if len(parts) < 2 or parts[0] not in ("Objects", "0:Objects"):
        raise ValueError(
            f"node {text!r} is neither a NodeId (e.g. 'ns=2;s=furnace1.Temperature.Zone1.SP') "
            "nor a browse path from the Objects folder (e.g. 'Objects/2:furnace1/2:Temperature')"
        )
    for part in parts[1:]:
        if not _PATH_ELEMENT.match(part):
            raise ValueError(
                f"browse path {text!r}: element {part!r} must be '<ns index>:<BrowseName>'"
            )
    return parts[1:]


def check_node_text(text: str) -> str:
    """Validate a NodeId or browse path; return it stripped (``ValueError`` if malformed)."""
    text = text.strip()
    if is_node_id(text):
        return text
    browse_path_elements(text)
    return text


class Heartbeat(Frozen):
    """Life sign written to the PLC while the twin is connected.

    A counter type is incremented (wrapping) each period; a Boolean is toggled. The PLC side
    typically raises an alarm or drops to a safe state when it stops changing.
    """

    node: str = Field(description="NodeId or browse path of the heartbeat variable")
    type: HeartbeatType = "UInt32"
    period_s: float = Field(default=1.0, gt=0, le=3600)

    @field_validator("node")
    @classmethod
    def _node(cls, v: str) -> str:
        return check_node_text(v)


class Endpoint(Frozen):
    """One OPC UA server (a PLC or a gateway in front of one)."""

    url: str = Field(description="opc.tcp://host:port[/path]")
    security_mode: SecurityMode = "None"
    security_policy: SecurityPolicy = "None"
    certificate: Path | None = Field(
        default=None, description="the twin's client application certificate (DER or PEM)"
    )
    private_key: Path | None = Field(default=None, description="key of `certificate` (PEM/DER)")
    private_key_password_env: str | None = Field(
        default=None, description="environment variable holding the private key's passphrase"
    )
    server_certificate: Path | None = Field(
        default=None, description="the server's certificate the twin trusts (pinned)"
    )
    application_uri: str = Field(
        default="urn:anode-twin:client",
        description="client ApplicationUri; must equal the URI in `certificate`'s SAN",
    )
    username: str | None = None
    password_env: str | None = Field(
        default=None, description="name of the environment variable that holds the password"
    )
    password_file: Path | None = Field(
        default=None, description="file whose content (trailing newline stripped) is the password"
    )
    timeout_s: float = Field(default=4.0, gt=0, le=600, description="per request")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)
    watchdog_s: float = Field(
        default=1.0, gt=0, le=60, description="probe period that detects a silent dead link"
    )
    reconnect_min_s: float = Field(default=0.5, gt=0, le=3600)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)
    reconnect_jitter: float = Field(
        default=0.0, ge=0, le=1, description="relative random spread of each back-off delay"
    )
    heartbeat: Heartbeat | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_password_literal(cls, data: Any) -> Any:
        # Checked before field validation so the message explains the rule instead of the
        # generic "unknown key"; the value is never echoed.
        if isinstance(data, dict) and "password" in data:
            raise ValueError(
                "a password is never stored in the plant file: remove 'password' and set "
                "password_env (name of an environment variable) or password_file (path of a "
                "file readable only by the twin's account)"
            )
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not _URL.match(v):
            raise ValueError("must be opc.tcp://host:port[/path], e.g. opc.tcp://10.0.0.5:4840")
        return v

    @field_validator("certificate", "private_key", "server_certificate", "password_file")
    @classmethod
    def _path(cls, v: Path | None) -> Path | None:
        if v is not None and str(v) in ("", "."):
            raise ValueError("must be a file path")
        return v

    @field_validator("password_env", "private_key_password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable, e.g. PLC1_PASSWORD")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Endpoint:
        secure = self.security_mode != "None"
        if secure != (self.security_policy != "None"):
            raise ValueError(
                f"security_mode {self.security_mode!r} and security_policy "
                f"{self.security_policy!r} must both be 'None' or both be set"
            )
        if secure:
            missing = [k for k in ("certificate", "private_key", "server_certificate")
                       if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"security_mode {self.security_mode!r} needs {', '.join(missing)} "
                    "(the server certificate is pinned; export it from the PLC)"
                )
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set password_env or password_file, not both")
        has_password = self.password_env is not None or self.password_file is not None
        if self.username is None and has_password:
            raise ValueError("password_env/password_file needs a username")
        if self.username is not None and not has_password:
            raise ValueError(
                f"username {self.username!r} needs password_env or password_file"
            )
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s ({self.reconnect_min_s}) must be <= reconnect_max_s "
                f"({self.reconnect_max_s})"
            )
        return self


class Tag(Frozen):
    """One logical signal of a station mapped to a node of an endpoint.

    The signal's name is its key in ``[tags]``. ``type`` is the OPC UA data type the twin
    expects: the gateway refuses to start if the node's DataType differs, and every write
    is sent with exactly this variant type (a PLC rejects an Int32 sent to a Double node).
    ``Method`` maps a method node (Start, Hold, Resume, Abort, ...) for
    :meth:`connectors.opcua.Gateway.call`.
    """

    endpoint: str = Field(min_length=1, description="key of [endpoints]")
    node: str = Field(description="NodeId ('ns=2;s=...', 'nsu=<uri>;s=...') or browse path")
    type: TagType
    units: str = ""
    limits: tuple[float, float] | None = Field(
        default=None, description="(low, high) a write must respect; checked before sending"
    )
    access: Literal["read", "write", "readwrite"] = "read"
    sampling_ms: float = Field(default=250.0, ge=0, le=3_600_000,
                               description="subscription sampling interval (readable tags)")
    description: str = ""

    @field_validator("node")
    @classmethod
    def _node(cls, v: str) -> str:
        return check_node_text(v)

    @model_validator(mode="after")
    def _consistent(self) -> Tag:
        if self.limits is not None:
            if self.type not in NUMERIC_TYPES:
                raise ValueError(f"limits apply to numeric types only, not {self.type}")
            lo, hi = self.limits
            if not lo <= hi:
                raise ValueError(f"limits must be (low, high), got {self.limits}")
        return self

    @property
    def readable(self) -> bool:
        """True if the signal is subscribed (read or readwrite, not a method)."""
        return self.type != "Method" and self.access in ("read", "readwrite")

    @property
    def writable(self) -> bool:
        """True if the twin may write the signal."""
        return self.type != "Method" and self.access in ("write", "readwrite")


def check_signal_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a dotted path ``<plant>.<station>.<signal>``."""
    if not _SIGNAL.match(name):
        raise ValueError(
            f"tag {name!r}: name must be a dotted path <plant>.<station>.<signal> of "
            "identifiers, e.g. 'line1.oxidizer1.temperature_sp'"
        )
