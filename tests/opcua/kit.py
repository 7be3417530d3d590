"""Helpers of the gateway tests: the test PLC module, tag maps and endpoints pointing at it.

Loaded by ``conftest.py`` under the name ``opcua_kit`` (tests run with
``--import-mode=importlib``, so sibling modules are not importable by name).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from connectors.net import free_port
from twin.config.tags import Endpoint, Tag

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
PLC_SCRIPT = HERE / "plc_server.py"


def _load_plc() -> ModuleType:
    # Tests run with --import-mode=importlib (no package on sys.path): load by file path.
    spec = importlib.util.spec_from_file_location("opcua_test_plc", PLC_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PLC = _load_plc()


def run(coro: Coroutine[Any, Any, T], timeout: float = 45.0) -> T:
    """Run one test scenario in a fresh event loop, bounded so a hang fails instead."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def tags_for(endpoint: str = "furnace", ns: str = "ns=2") -> dict[str, Tag]:
    """The tag map of the test PLC (NodeIds, one browse path, one nsu= NodeId, a method)."""
    s = f"{ns};s=furnace1"
    return {
        "line1.oxidizer1.temperature_sp": Tag(
            endpoint=endpoint, node=f"{s}.Temperature.Zone1.SP", type="Double", units="°C",
            limits=(20.0, 1300.0), access="readwrite", sampling_ms=50),
        "line1.oxidizer1.temperature_pv": Tag(
            endpoint=endpoint, node="Objects/2:furnace1/2:Temperature/2:Zone1/2:PV",
            type="Double", units="°C", sampling_ms=50),
        "line1.oxidizer1.o2_flow_sp": Tag(
            endpoint=endpoint, node=f"nsu={PLC.NAMESPACE};s=furnace1.Oxygen.Flow.SP",
            type="Float", units="slm", limits=(0.0, 20.0), access="write"),
        "line1.oxidizer1.hold_min_sp": Tag(
            endpoint=endpoint, node=f"{s}.HoldTime.SP", type="Int32", units="min",
            limits=(0, 600), access="readwrite", sampling_ms=50),
        "line1.oxidizer1.door_closed": Tag(
            endpoint=endpoint, node=f"{s}.Door.Closed", type="Boolean", access="readwrite"),
        "line1.oxidizer1.batch_id": Tag(
            endpoint=endpoint, node=f"{s}.BatchId", type="String", access="readwrite"),
        "line1.oxidizer1.zones": Tag(endpoint=endpoint, node=f"{s}.Zones", type="UInt16"),
        "line1.oxidizer1.start": Tag(endpoint=endpoint, node=f"{s}.Start", type="Method"),
        "line1.oxidizer1.hold": Tag(endpoint=endpoint, node=f"{s}.Hold", type="Method"),
    }


def endpoint_for(port: int, **kwargs: Any) -> Endpoint:
    """An unsecured endpoint on loopback with fast timeouts and back-off for tests."""
    base: dict[str, Any] = dict(url=f"opc.tcp://127.0.0.1:{port}/plc", timeout_s=2.0,
                                connect_timeout_s=3.0, watchdog_s=0.5, reconnect_min_s=0.2,
                                reconnect_max_s=0.8)
    base.update(kwargs)
    return Endpoint(**base)


@asynccontextmanager
async def plc_server(port: int | None = None) -> AsyncIterator[tuple[Any, int, int]]:
    """The test PLC started in the running loop: yields (server, namespace index, port)."""
    port = port or free_port()
    srv, idx = await PLC.build_server(f"opc.tcp://127.0.0.1:{port}/plc")
    async with srv:
        yield srv, idx, port


def make_certificate(directory: Path, name: str, application_uri: str) -> tuple[Path, Path]:
    """A self-signed OPC UA application certificate (DER) and its key (PEM).

    RSA 2048 / SHA-256 with the application URI and ``localhost`` in the SubjectAltName and
    the key usages OPC UA Part 6 asks of an application instance certificate.
    """
    import datetime as dt
    import socket

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.UniformResourceIdentifier(application_uri),
            x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                              ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
