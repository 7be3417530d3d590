"""The twin's own OPC UA server checks roles on the server: real asyncua servers and clients.

Anonymous and viewer sessions may not accept or reject proposals; an operator may, and the
decision is recorded under the session's authenticated identity (user name or X.509 user
certificate subject), never under the name the caller passes. On a site the server serves
SignAndEncrypt only.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from connectors.net import free_port
from connectors.security_common import Account, certificate_subject, load_accounts
from connectors.twin_server import ServerSecurity, TwinServer
from tests.emulators.test_secure import CLIENT_URI, make_client_cert

STATIONS = ["line1.oxidizer1"]
PASSWORDS = {"alice": "al1ce-pw", "vera": "v3ra-pw", "eng": "eng-pw-9"}


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


def _accounts() -> dict[str, Account]:
    return {"alice": Account.with_password("alice", "operator", PASSWORDS["alice"]),
            "vera": Account.with_password("vera", "viewer", PASSWORDS["vera"]),
            "eng": Account.with_password("eng", "engineer", PASSWORDS["eng"])}


class Decisions:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, str]] = []

    async def __call__(self, pid: str, accept: bool, who: str) -> str:
        self.seen.append((pid, accept, who))
        return f"Good: {'accepted' if accept else 'rejected'} by {who}"


def _client(url: str, user: str | None = None, password: str | None = None) -> Client:
    client = Client(url, timeout=10)
    client.application_uri = CLIENT_URI
    if user:
        client.set_user(user)
        client.set_password(password if password is not None else PASSWORDS[user])
    return client


async def _call(client: Client, name: str, *args: str) -> Any:
    plant = client.get_node("ns=2;s=line1")
    return await plant.call_method(f"2:{name}", *args)


async def _refused_call(client: Client, name: str) -> None:
    with pytest.raises(ua.UaStatusCodeError) as info:
        await _call(client, name, "P-1", "alice")
    assert type(info.value).__name__ == "BadUserAccessDenied", info.value


async def _refused_connect(client: Client) -> None:
    with pytest.raises((ua.UaError, OSError, TimeoutError)):
        await client.connect()
    with contextlib.suppress(Exception):
        await client.disconnect()


def test_loopback_roles_and_the_recorded_identity() -> None:
    decisions = Decisions()

    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        sec = ServerSecurity(accounts=_accounts())
        async with TwinServer(url, "line1", STATIONS, on_proposal=decisions, security=sec) \
                as srv:
            await srv.publish_station("line1.oxidizer1", {"BatchId": "OX-1"})
            # Anonymous: may browse and read, may not decide.
            async with _client(url) as client:
                node = client.get_node(srv.node_id("line1.oxidizer1", "BatchId"))
                assert await node.read_value() == "OX-1"
                await _refused_call(client, "AcceptProposal")
                await _refused_call(client, "RejectProposal")
            # Viewer: reads, may not decide.
            async with _client(url, "vera") as client:
                node = client.get_node(srv.node_id("line1.oxidizer1", "BatchId"))
                assert await node.read_value() == "OX-1"
                await _refused_call(client, "AcceptProposal")
                await _refused_call(client, "RejectProposal")
            # Operator: decides, recorded as the session's user, not the name passed.
            async with _client(url, "alice") as client:
                assert await _call(client, "AcceptProposal", "P-7", "mallory") == \
                    "Good: accepted by alice"
                assert await _call(client, "RejectProposal", "P-8", "") == \
                    "Good: rejected by alice"
            # Engineer: what an operator may.
            async with _client(url, "eng") as client:
                assert await _call(client, "AcceptProposal", "P-9", "alice") == \
                    "Good: accepted by eng"
            # Wrong password, unknown user: no session at all.
            await _refused_connect(_client(url, "alice", "not-the-password"))
            await _refused_connect(_client(url, "nobody", "x"))

    _run(scenario())
    assert decisions.seen == [("P-7", True, "alice"), ("P-8", False, "alice"),
                              ("P-9", True, "eng")]


def test_no_users_means_nobody_decides() -> None:
    decisions = Decisions()

    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        async with TwinServer(url, "line1", STATIONS, on_proposal=decisions):
            async with _client(url) as client:
                await _refused_call(client, "AcceptProposal")
            await _refused_connect(_client(url, "alice"))

    _run(scenario())
    assert decisions.seen == []


@pytest.fixture
def site_pki(tmp_path: Path) -> Path:
    pki = tmp_path / "pki"
    (pki / "trusted").mkdir(parents=True)
    cert, _ = make_client_cert(tmp_path, "client")
    (pki / "trusted" / "client.der").write_bytes(cert.read_bytes())
    make_client_cert(tmp_path, "scada")  # an X.509 user certificate (not a channel one)
    return pki


async def _secured(client: Client, tmp: Path, cert: str = "client") -> Client:
    await client.set_security(SecurityPolicyBasic256Sha256, str(tmp / f"{cert}.der"),
                              str(tmp / f"{cert}.pem"),
                              mode=ua.MessageSecurityMode.SignAndEncrypt)
    return client


def test_site_server_is_signandencrypt_with_users(site_pki: Path) -> None:
    tmp = site_pki.parent
    users = tmp / "users.toml"
    from connectors.security_common import hash_password

    users.write_text(f'[users.alice]\nrole = "operator"\npassword_hash = '
                     f'"{hash_password(PASSWORDS["alice"])}"\n'
                     f'[users.vera]\nrole = "viewer"\npassword_env = "VERA_PW"\n'
                     f'[users.scada]\nrole = "operator"\ncertificate = "scada.der"\n')
    accounts = load_accounts(users, {"VERA_PW": PASSWORDS["vera"]})
    decisions = Decisions()

    async def scenario() -> None:
        url = f"opc.tcp://127.0.0.1:{free_port()}/anode-twin"
        sec = ServerSecurity(accounts=accounts, pki_dir=site_pki, secure_only=True)
        async with TwinServer(url, "line1", STATIONS, on_proposal=decisions, security=sec):
            endpoints = await Client(url).connect_and_get_server_endpoints()
            policies = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode)
                        for e in endpoints}
            assert ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt) in policies
            assert all(mode == ua.MessageSecurityMode.SignAndEncrypt for _, mode in policies)
            assert "None" not in {p for p, _ in policies}
            if hasattr(ua.SecurityPolicyType, "Aes256Sha256RsaPss_SignAndEncrypt"):
                assert ("Aes256_Sha256_RsaPss", ua.MessageSecurityMode.SignAndEncrypt) in policies
            tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
            assert tokens == {ua.UserTokenType.UserName, ua.UserTokenType.Certificate}
            # No plain channel, no anonymous session, no wrong password.
            await _refused_connect(Client(url, timeout=5))
            await _refused_connect(await _secured(_client(url), tmp))
            await _refused_connect(await _secured(_client(url, "alice", "wrong"), tmp))
            async with await _secured(_client(url, "vera"), tmp) as client:
                await _refused_call(client, "AcceptProposal")
            async with await _secured(_client(url, "alice"), tmp) as client:
                assert await _call(client, "AcceptProposal", "P-1", "bob") == \
                    "Good: accepted by alice"
            # An X.509 user token: recorded under the certificate's subject.
            client = await _secured(_client(url), tmp)
            await client.load_client_certificate(str(tmp / "scada.der"))
            await client.load_private_key(str(tmp / "scada.pem"))
            async with client:
                out = await _call(client, "RejectProposal", "P-2", "alice")
            subject = certificate_subject((tmp / "scada.der").read_bytes())
            assert out == f"Good: rejected by {subject}"

    _run(scenario())
    subject = certificate_subject((tmp / "scada.der").read_bytes())
    assert decisions.seen == [("P-1", True, "alice"), ("P-2", False, subject)]


def test_run_on_a_site_needs_users_and_serves_secure_only(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    import argparse

    from tests.live.test_live_run import _site_file
    from twin.cli import main
    from twin.cli.run import _server_security

    site = _site_file(tmp_path, "opc.tcp://127.0.0.1:9/furnace1")  # never connected to
    assert main(["run", "--site", str(site), "--hours", "1"]) == 2
    assert "--users" in capsys.readouterr().err
    users = tmp_path / "users.toml"
    users.write_text('[users.alice]\nrole = "operator"\npassword_env = "ALICE_PW"\n')

    def ns(**kw: Any) -> argparse.Namespace:
        base = {"no_server": False, "site": None, "users": None, "server_pki": None}
        return argparse.Namespace(**(base | kw))

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALICE_PW", "pw")
        sec = _server_security(ns(site=str(site), users=str(users)))
        assert sec is not None and sec.secure_only and sec.pki_dir == Path("pki-twin")
        assert sec.accounts["alice"].check_password("pw")
    loop = _server_security(ns())
    assert loop is not None and not loop.secure_only and loop.pki_dir is None
    assert not loop.accounts  # loopback without users: read-only for everyone
    assert _server_security(ns(no_server=True, site=str(site))) is None
