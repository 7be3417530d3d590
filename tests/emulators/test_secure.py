"""``--secure``: Basic256Sha256 SignAndEncrypt only, trusted certificates, operator/viewer."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from connectors.emulators import build_server
from connectors.emulators.security import Account, SecuritySettings, load_accounts
from tests.emulators.conftest import Running, connect, run, start_in_thread, stop_in_thread

CLIENT_URI = "urn:anode-twin:test-client"
#: Generated per test run, never stored: the point is that nothing is hard-coded anywhere.
PASSWORDS = {"op": "op-" + socket.gethostname()[::-1] + "-7", "view": "view-pw-42"}


def make_client_cert(directory: Path, stem: str) -> tuple[Path, Path]:
    key = generate_private_key()
    cert = generate_self_signed_app_certificate(
        key, CLIENT_URI, {"organizationName": "tests"},
        [x509.UniformResourceIdentifier(CLIENT_URI), x509.DNSName("localhost")],
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    cert_path, key_path = directory / f"{stem}.der", directory / f"{stem}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(dump_private_key_as_pem(key))
    return cert_path, key_path


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Path]]:
    tmp = tmp_path_factory.mktemp("pki")
    (tmp / "trusted").mkdir()
    cert, _ = make_client_cert(tmp, "client")
    (tmp / "trusted" / "client.der").write_bytes(cert.read_bytes())
    make_client_cert(tmp, "stranger")  # same URI, not trusted
    # Held as scrypt hashes only (the users file has password_hash; env/file ones are hashed
    # as they are loaded).
    accounts = {"op": Account.with_password("op", "operator", PASSWORDS["op"]),
                "view": Account.with_password("view", "viewer", PASSWORDS["view"])}
    assert all(PASSWORDS[a.name] not in repr(a) + a.password_hash for a in accounts.values())
    server = build_server("furnace", port=0, seed=1,
                          security=SecuritySettings(tmp, accounts))
    running = start_in_thread(server)
    yield running, tmp
    stop_in_thread(running)


def client_for(url: str, pki: Path, user: str | None, cert: str = "client") -> Client:
    client = Client(url, timeout=10)
    client.application_uri = CLIENT_URI
    if user:
        client.set_user(user)
        client.set_password(PASSWORDS[user])
    return client


async def secured(client: Client, pki: Path, cert: str = "client") -> Client:
    await client.set_security(SecurityPolicyBasic256Sha256, str(pki / f"{cert}.der"),
                              str(pki / f"{cert}.pem"), mode=ua.MessageSecurityMode.SignAndEncrypt)
    return client


def test_only_signandencrypt_endpoints_with_username(secure: tuple[Running, Path]) -> None:
    running, _ = secure

    async def scenario() -> None:
        client = Client(running.url)
        endpoints = await client.connect_and_get_server_endpoints()
        assert {e.SecurityPolicyUri.rsplit("#", 1)[-1] for e in endpoints} == {"Basic256Sha256"}
        assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
        tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
        assert tokens == {ua.UserTokenType.UserName}

    run(scenario())


def test_anonymous_plain_wrong_password_and_untrusted_are_refused(
        secure: tuple[Running, Path]) -> None:
    running, pki = secure

    async def refused(client: Client) -> None:
        with pytest.raises((ua.UaError, OSError, TimeoutError)):
            await client.connect()
        with contextlib.suppress(Exception):  # the session never came up
            await client.disconnect()

    async def scenario() -> None:
        await refused(Client(running.url, timeout=5))  # no security at all
        await refused(await secured(client_for(running.url, pki, None), pki))  # anonymous
        wrong = await secured(client_for(running.url, pki, "op"), pki)
        wrong.set_password("not-the-password")
        await refused(wrong)
        await refused(await secured(client_for(running.url, pki, "op"), pki, "stranger"))
        assert list((pki / "rejected").iterdir()), "untrusted certificate not filed"

    run(scenario())


def test_viewer_reads_but_cannot_write_or_call_operator_can(
        secure: tuple[Running, Path]) -> None:
    running, pki = secure

    async def scenario() -> None:
        async with await secured(client_for(running.url, pki, "view"), pki) as client:
            tool = await connect(client, "furnace1")
            before = await tool.node("Temperature.Zone1.SP").read_value()
            with pytest.raises(ua.UaStatusCodeError) as info:
                await tool.node("Temperature.Zone1.SP").write_value(
                    ua.DataValue(ua.Variant(300.0, ua.VariantType.Double)))
            assert type(info.value).__name__ == "BadUserAccessDenied"
            with pytest.raises(ua.UaStatusCodeError) as info:
                await tool.call("BatchControl", "Start")
            assert type(info.value).__name__ == "BadUserAccessDenied"
            assert await tool.node("Temperature.Zone1.SP").read_value() == before
        async with await secured(client_for(running.url, pki, "op"), pki) as client:
            tool = await connect(client, "furnace1")
            await tool.node("Temperature.Zone1.SP").write_value(
                ua.DataValue(ua.Variant(300.0, ua.VariantType.Double)))
            assert await tool.node("Temperature.Zone1.SP").read_value() == 300.0
            status, message = await tool.call("BatchControl", "Start")
            assert status.name == "BadInvalidArgument" and "BatchId" in message

    run(scenario())


def test_users_file_takes_passwords_from_env_not_the_file(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    users.write_text('[users.alice]\nrole = "operator"\npassword_env = "ALICE_PW"\n'
                     '[users.bob]\nrole = "viewer"\npassword_file = "bob.pw"\n'
                     .replace("bob.pw", str(tmp_path / "bob.pw")))
    (tmp_path / "bob.pw").write_text("b0b\n")
    accounts = load_accounts(users, {"ALICE_PW": "s3cret"})
    alice, bob = accounts["alice"], accounts["bob"]
    assert (alice.name, alice.role) == ("alice", "operator")
    assert alice.password_hash.startswith("scrypt$") and "s3cret" not in alice.password_hash
    assert alice.check_password("s3cret") and not alice.check_password("s3cret ")
    assert bob.check_password("b0b") and bob.role == "viewer"
    from twin.errors import ConfigError
    with pytest.raises(ConfigError, match="ALICE_PW"):
        load_accounts(users, {})


def test_users_file_hashes_and_no_clear_passwords(tmp_path: Path) -> None:
    from connectors.security_common import hash_password, verify_password
    from twin.errors import ConfigError

    users = tmp_path / "users.toml"
    users.write_text(f'[users.carol]\nrole = "operator"\npassword_hash = '
                     f'"{hash_password("c4rol")}"\n')
    carol = load_accounts(users, {})["carol"]
    assert carol.check_password("c4rol") and not carol.check_password("carol")
    users.write_text('[users.carol]\nrole = "operator"\npassword = "c4rol"\n')
    with pytest.raises(ConfigError, match="not stored in clear"):
        load_accounts(users, {})
    users.write_text('[users.carol]\nrole = "operator"\npassword_hash = "c4rol"\n')
    with pytest.raises(ConfigError, match="password_hash"):
        load_accounts(users, {})
    users.write_text('[users.carol]\nrole = "engineer"\npassword_hash = "x"\n')
    with pytest.raises(ConfigError, match="role"):  # the PLCs know operator and viewer
        load_accounts(users, {})
    # Two hashes of one password differ (salted) and both verify.
    a, b = hash_password("pw"), hash_password("pw")
    assert a != b and verify_password("pw", a) and verify_password("pw", b)
    assert not verify_password("pw", "scrypt$garbage")


def test_hash_password_command(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from connectors.security_common import main, verify_password

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["hash-password"]) == 0
    out = capsys.readouterr().out.strip()
    assert verify_password("s3cret", out) and "s3cret" not in out
