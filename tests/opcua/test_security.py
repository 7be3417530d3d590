"""Secure endpoint: Basic256Sha256 SignAndEncrypt, pinned certificates, username + password."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from opcua_kit import PLC, endpoint_for, make_certificate, run, tags_for

from connectors.net import free_port
from connectors.opcua import CredentialsError, Gateway, SecurityError
from twin.config.tags import Endpoint

SERVER_URI = "urn:anode-twin:test-plc:server"
CLIENT_URI = "urn:anode-twin:client"
PASSWORD = "s3cret-Oxide!"
ENV = "ANODE_TWIN_TEST_PLC_PASSWORD"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    server_cert, server_key = make_certificate(d, "plc", SERVER_URI)
    client_cert, client_key = make_certificate(d, "twin", CLIENT_URI)
    rogue_cert, rogue_key = make_certificate(d, "rogue", CLIENT_URI)
    return dict(server_cert=server_cert, server_key=server_key, client_cert=client_cert,
                client_key=client_key, rogue_cert=rogue_cert, rogue_key=rogue_key)


@asynccontextmanager
async def secure_plc(certs: dict[str, Path]) -> AsyncIterator[int]:
    """The test PLC offering only Basic256Sha256 SignAndEncrypt with a username login.

    It trusts exactly the twin's client certificate, as a PLC configured by hand would.
    """
    port = free_port()
    server = Server(user_manager=PLC.PasswordUsers("operator", PASSWORD))
    srv, _ = await PLC.build_server(f"opc.tcp://127.0.0.1:{port}/plc", server=server)
    await srv.set_application_uri(SERVER_URI)
    srv.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    srv.set_identity_tokens([ua.UserNameIdentityToken])
    await srv.load_certificate(str(certs["server_cert"]))
    await srv.load_private_key(str(certs["server_key"]))
    trusted = certs["client_cert"].read_bytes()

    async def pinned(cert: Any, app_description: ua.ApplicationDescription) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding
        if cert.public_bytes(Encoding.DER) != trusted:
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    srv.set_certificate_validator(pinned)
    async with srv:
        yield port


def secure_endpoint(port: int, certs: dict[str, Path], **kwargs: Any) -> Endpoint:
    base: dict[str, Any] = dict(
        security_mode="SignAndEncrypt", security_policy="Basic256Sha256",
        certificate=certs["client_cert"], private_key=certs["client_key"],
        server_certificate=certs["server_cert"], application_uri=CLIENT_URI,
        username="operator", password_env=ENV)
    base.update(kwargs)
    return endpoint_for(port, **base)


def test_secure_endpoint_connects_and_rejects_bad_credentials(
        certs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with secure_plc(certs) as port:
            # Right password from the environment: connected, encrypted, writes work.
            monkeypatch.setenv(ENV, PASSWORD)
            async with Gateway({"furnace": secure_endpoint(port, certs)}, tags_for()) as gw:
                assert gw.connected("furnace")
                assert (await gw.write("line1.oxidizer1.temperature_sp", 600.0)).ok

            # The same from a password file (relative to the site file's folder).
            (tmp_path / "plc.pw").write_text(PASSWORD + "\n", encoding="utf-8")
            (tmp_path / "plc.pw").chmod(0o600)
            cfg = secure_endpoint(port, certs, password_env=None, password_file=Path("plc.pw"))
            async with Gateway({"furnace": cfg}, tags_for(), base_dir=tmp_path) as gw:
                assert gw.connected("furnace")

            # Wrong password: one clear line, naming endpoint, user and password source.
            monkeypatch.setenv(ENV, "not-the-password")
            with pytest.raises(SecurityError) as info:
                await Gateway({"furnace": secure_endpoint(port, certs)}, tags_for()).start()
            text = str(info.value)
            assert "\n" not in text and "not-the-password" not in text
            assert "endpoint 'furnace'" in text and "login as 'operator' rejected" in text
            assert f"${ENV}" in text

            # Password variable missing: refused before connecting, naming the variable.
            monkeypatch.delenv(ENV)
            with pytest.raises(CredentialsError, match=f"environment variable {ENV}"):
                await Gateway({"furnace": secure_endpoint(port, certs)}, tags_for()).start()
            monkeypatch.setenv(ENV, PASSWORD)

            # A client certificate the PLC does not trust, and an unsecured client.
            rogue = secure_endpoint(port, certs, certificate=certs["rogue_cert"],
                                    private_key=certs["rogue_key"])
            with pytest.raises(SecurityError, match="secure channel refused"):
                await Gateway({"furnace": rogue}, tags_for()).start()
            plain = endpoint_for(port, username="operator", password_env=ENV)
            with pytest.raises(SecurityError, match="secure channel refused"):
                await Gateway({"furnace": plain}, tags_for()).start()

    run(scenario())
