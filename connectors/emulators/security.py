"""``--secure`` mode: Basic256Sha256 SignAndEncrypt only, generated certificates, user roles.

* The server certificate and key are generated on first start (asyncua's ``cert_gen``, on
  ``cryptography``) into ``<pki>/own/`` and reused afterwards.
* Client certificates must be in ``<pki>/trusted/`` (DER or PEM); an untrusted client's
  certificate is written to ``<pki>/rejected/`` so an administrator can move it, the usual
  OPC UA workflow.
* Users log in with a username and password; anonymous sessions are refused. Roles:
  ``operator`` may write setpoints and call methods, ``viewer`` may browse, read and
  subscribe only. Passwords come from a users file (``--users``) or from the environment
  (``ANODE_TWIN_OPERATOR_PASSWORD`` / ``ANODE_TWIN_VIEWER_PASSWORD`` for the users
  ``operator`` and ``viewer``), never from the plant file.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from twin.config.load import read_toml
from twin.errors import ConfigError, UsageError

log = logging.getLogger(__name__)

ROLES = ("operator", "viewer")
ENV_PASSWORDS = {"operator": "ANODE_TWIN_OPERATOR_PASSWORD",
                 "viewer": "ANODE_TWIN_VIEWER_PASSWORD"}


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password: str


@dataclass(frozen=True)
class SecuritySettings:
    """What ``--secure`` needs: the PKI directory and the accounts."""

    pki_dir: Path
    accounts: Mapping[str, Account]


@dataclass
class RoleUser(User):
    """An asyncua user with this plant's role (asyncua only knows Admin/User/Anonymous)."""

    plant_role: str = "viewer"


def load_accounts(users_file: str | Path | None,
                  environ: Mapping[str, str] = os.environ) -> dict[str, Account]:
    """Accounts from a users file, else from the environment.

    The users file is TOML::

        [users.alice]
        role = "operator"            # or "viewer"
        password_env = "ALICE_PW"    # or password_file = "...", or password = "..."
    """
    if users_file is None:
        accounts = {role: Account(role, role, environ[var])
                    for role, var in ENV_PASSWORDS.items() if environ.get(var)}
        if not accounts:
            raise UsageError("--secure needs users: pass --users FILE or set "
                             f"{' / '.join(ENV_PASSWORDS.values())}")
        return accounts
    path = Path(users_file)
    data = read_toml(path)
    if set(data) != {"users"} or not isinstance(data["users"], dict) or not data["users"]:
        raise ConfigError(f"{path}: expected one [users.<name>] table per user")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO) and "password" in str(data):
        print(f"anode-twin plc: warning: {path} is readable by others", file=sys.stderr)
    out: dict[str, Account] = {}
    for name, entry in data["users"].items():
        where = f"{path}: users.{name}"
        if not isinstance(entry, dict) or entry.get("role") not in ROLES:
            raise ConfigError(f"{where}.role: expected one of {', '.join(ROLES)}")
        unknown = set(entry) - {"role", "password", "password_env", "password_file"}
        if unknown:
            raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        out[name] = Account(name, entry["role"], _password(entry, where, environ))
    return out


def _password(entry: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> str:
    if "password_env" in entry:
        value = environ.get(str(entry["password_env"]), "")
        if not value:
            raise ConfigError(f"{where}.password_env: variable {entry['password_env']} is unset")
        return value
    if "password_file" in entry:
        try:
            return Path(str(entry["password_file"])).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}.password_file: {exc.strerror}") from None
    if isinstance(entry.get("password"), str) and entry["password"]:
        return str(entry["password"])
    raise ConfigError(f"{where}: needs password_env, password_file or password")


class AccountUserManager(UserManager):
    """Username/password check against the accounts (constant-time compare)."""

    def __init__(self, accounts: Mapping[str, Account]) -> None:
        self.accounts = dict(accounts)

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        account = self.accounts.get(username or "")
        if account is None or password is None:
            return None
        if not hmac.compare_digest(account.password.encode(), password.encode()):
            return None
        return RoleUser(role=UserRole.User, name=account.name, plant_role=account.role)


class RoleRuleset(PermissionRuleset):
    """Request-level permissions: viewers may not call methods (writes are checked per item)."""

    _CALL = ua.NodeId(ua.Int32(ua.ObjectIds.CallRequest_Encoding_DefaultBinary))
    _ADMIN = {ua.NodeId(ua.Int32(i)) for i in (ua.ObjectIds.AddNodesRequest_Encoding_DefaultBinary,
                                     ua.ObjectIds.DeleteNodesRequest_Encoding_DefaultBinary,
                                     ua.ObjectIds.AddReferencesRequest_Encoding_DefaultBinary,
                                     ua.ObjectIds.DeleteReferencesRequest_Encoding_DefaultBinary)}

    def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
        if user is None or user.role == UserRole.Anonymous:
            return False
        if action_type_id in self._ADMIN:
            return False  # nobody edits the address space of a PLC
        if action_type_id == self._CALL:
            return role_of(user) == "operator"
        return True


def role_of(user: Any) -> str:
    """``operator`` / ``viewer`` for a logged-in user; open (non-secure) servers: operator."""
    return str(getattr(user, "plant_role", "operator"))


class _TrustDirValidator:
    """Validate client certificates against ``trusted/``; file rejected ones in ``rejected/``.

    The trust directory is re-read when a certificate is not trusted, so an administrator
    who moves a certificate from rejected/ to trusted/ does not have to restart the PLC.
    """

    OPTIONS = (CertificateValidatorOptions.TRUSTED_VALIDATION
               | CertificateValidatorOptions.PEER_CLIENT)

    def __init__(self, pki: Path) -> None:
        self.trusted, self.rejected = pki / "trusted", pki / "rejected"
        self.validator: CertificateValidator | None = None

    async def _load(self) -> None:
        if not any(self.trusted.iterdir()):
            self.validator = None  # asyncua's store cannot be empty: nothing is trusted
            return
        store = TrustStore([self.trusted], [])
        await store.load()
        self.validator = CertificateValidator(self.OPTIONS, store)

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        for attempt in range(2):
            if attempt or self.validator is None:
                await self._load()
            if self.validator is None:
                break
            try:
                await self.validator.validate(cert, app)
                return
            except Exception as exc:  # any failure: retry once with a fresh trust list
                failure = exc
        else:
            self._file(cert, app)
            raise failure
        self._file(cert, app)
        raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    def _file(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        name = cert.fingerprint(_sha256()).hex()[:16]
        (self.rejected / f"{name}.der").write_bytes(cert.public_bytes(Encoding.DER))
        log.warning("rejected client certificate %s (%s): move it to %s to allow it",
                    name, app.ApplicationUri, self.trusted)


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


async def apply_security(server: Server, settings: SecuritySettings, app_uri: str) -> None:
    """Configure ``server`` for Basic256Sha256 SignAndEncrypt with users only."""
    pki = settings.pki_dir
    for sub in ("own", "trusted", "rejected"):
        (pki / sub).mkdir(parents=True, exist_ok=True)
    key, cert = pki / "own" / "server_key.pem", pki / "own" / "server_cert.der"
    await setup_self_signed_certificate(key, cert, app_uri, socket.gethostname(),
                                        [ExtendedKeyUsageOID.SERVER_AUTH],
                                        {"organizationName": "anode-twin"})
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
                               permission_ruleset=RoleRuleset())  # type: ignore[arg-type]
    server.set_identity_tokens([ua.UserNameIdentityToken])
    server.iserver.user_manager = AccountUserManager(settings.accounts)
    # Time range, URI, key usage and trust: what the OPC UA security profile asks of a server.
    validator = _TrustDirValidator(pki)
    await validator._load()
    server.set_certificate_validator(validator)
    if validator.validator is None:
        print(f"anode-twin plc: no client certificate in {pki / 'trusted'}: clients are refused "
              "and their certificates filed in rejected/ until moved there", file=sys.stderr)
