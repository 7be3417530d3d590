"""OPC UA security shared by the emulated PLCs (``anode-twin plc --secure``) and the twin's own
server (``anode-twin run``): users and roles, hashed passwords, certificates.

* Accounts come from a users file (TOML)::

      [users.alice]
      role = "operator"
      password_hash = "scrypt$16384$8$1$<salt>$<hash>"   # or password_env / password_file

      [users.scada]
      role = "viewer"
      certificate = "certs/scada.der"     # X.509 user token: the session is the subject

  A password is only ever held as a salted scrypt hash (a password taken from an environment
  variable or a file is hashed as it is loaded) and a login is checked by hashing what the
  client sent and comparing with :func:`hmac.compare_digest`; a plain ``password`` key is
  refused. Make a hash with ``python -m connectors.security_common hash-password`` (reads the
  password from standard input, prints the ``password_hash`` value).
* The server certificate and key are generated on first start (asyncua's ``cert_gen``) into
  ``<pki>/own/`` and reused; client application certificates must be in ``<pki>/trusted/``;
  an untrusted one is filed in ``<pki>/rejected/`` for an administrator to move.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import socket
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from twin.config.load import read_toml
from twin.errors import ConfigError

log = logging.getLogger(__name__)

#: Every role, least to most privileged (a role may do what the roles before it may).
ROLES = ("viewer", "operator", "engineer")

#: scrypt cost (RFC 7914 interactive-login parameters: ~16 MiB, some tens of ms).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt b64>$<hash b64>`` of ``password`` with a fresh random salt."""
    if not password:
        raise ValueError("empty password")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=32)
    b64 = base64.b64encode
    return (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}$"
            f"{b64(digest).decode()}")


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the ``hash_password`` string ``encoded`` (constant time)."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt, validate=True),
                             n=int(n), r=int(r), p=int(p), dklen=len(want),
                             maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def check_hash(encoded: str) -> bool:
    """Whether ``encoded`` is a well-formed ``hash_password`` string."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        base64.b64decode(parts[4], validate=True)
        base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    return n > 1 and n & (n - 1) == 0 and r > 0 and p > 0


@dataclass(frozen=True)
class Account:
    """One user: a role and either a password hash or an X.509 user certificate (DER)."""

    name: str
    role: str
    password_hash: str = field(default="", repr=False)
    certificate: bytes | None = field(default=None, repr=False)

    @classmethod
    def with_password(cls, name: str, role: str, password: str) -> Account:
        return cls(name, role, hash_password(password))

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and verify_password(password, self.password_hash)


@dataclass
class RoleUser(User):
    """An asyncua user with this plant's role (asyncua only knows Admin/User/Anonymous).

    ``name`` is the session's authenticated identity: the user name, or the subject of the
    X.509 user certificate.
    """

    plant_role: str = "viewer"
    account: str = ""


def role_rank(role: str | None) -> int:
    """0 for no role (anonymous), then 1.. in the order of :data:`ROLES`."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def load_accounts(path: str | Path, environ: Mapping[str, str] = os.environ, *,
                  roles: Sequence[str] = ROLES, who: str = "anode-twin") -> dict[str, Account]:
    """The accounts of a users file (see the module docstring)."""
    path = Path(path)
    data = read_toml(path)
    if set(data) != {"users"} or not isinstance(data["users"], dict) or not data["users"]:
        raise ConfigError(f"{path}: expected one [users.<name>] table per user")
    if path.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        print(f"{who}: warning: {path} is writable by others", file=sys.stderr)
    out: dict[str, Account] = {}
    for name, entry in data["users"].items():
        where = f"{path}: users.{name}"
        if not isinstance(entry, dict) or entry.get("role") not in roles:
            raise ConfigError(f"{where}.role: expected one of {', '.join(roles)}")
        if "password" in entry:
            raise ConfigError(f"{where}.password: passwords are not stored in clear; give "
                              "password_hash (python -m connectors.security_common "
                              "hash-password), password_env or password_file")
        unknown = set(entry) - {"role", "password_hash", "password_env", "password_file",
                                "certificate"}
        if unknown:
            raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        cert = None
        if "certificate" in entry:
            cert = _certificate(path.parent / str(entry["certificate"]), where)
        secret = _password_hash(entry, where, environ)
        if cert is None and not secret:
            raise ConfigError(f"{where}: needs password_hash, password_env, password_file or "
                              "certificate")
        out[name] = Account(name, entry["role"], secret, cert)
    return out


def _password_hash(entry: Mapping[str, Any], where: str, environ: Mapping[str, str]) -> str:
    if "password_hash" in entry:
        value = str(entry["password_hash"])
        if not check_hash(value):
            raise ConfigError(f"{where}.password_hash: expected scrypt$N$r$p$salt$hash "
                              "(python -m connectors.security_common hash-password)")
        return value
    if "password_env" in entry:
        value = environ.get(str(entry["password_env"]), "")
        if not value:
            raise ConfigError(f"{where}.password_env: variable {entry['password_env']} is unset")
        return hash_password(value)
    if "password_file" in entry:
        try:
            value = Path(str(entry["password_file"])).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}.password_file: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{where}.password_file: empty")
        return hash_password(value)
    return ""


def _certificate(path: Path, where: str) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}.certificate: {path}: {exc.strerror}") from None
    try:
        cert = (x509.load_pem_x509_certificate(raw) if raw.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(raw))
    except ValueError:
        raise ConfigError(f"{where}.certificate: {path} is not an X.509 certificate") from None
    return cert.public_bytes(Encoding.DER)


def certificate_subject(cert: Any) -> str:
    """RFC 4514 subject of a certificate given as DER bytes or a ``cryptography`` object."""
    if isinstance(cert, bytes | bytearray):
        cert = x509.load_der_x509_certificate(bytes(cert))
    return str(cert.subject.rfc4514_string())


def _der(cert: Any) -> bytes | None:
    if cert is None:
        return None
    if isinstance(cert, bytes | bytearray):
        return bytes(cert)
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(Encoding.DER)
    return None


class AccountUserManager(UserManager):
    """Username/password (hashed, constant-time) and X.509 user-certificate logins.

    ``anonymous``: anonymous sessions are let in (as asyncua's Anonymous user, no plant role;
    certificate logins are then off, because asyncua hands the *channel's* certificate to the
    user manager for an anonymous token too). Without it, a session with neither a known
    user name nor a known user certificate is refused.
    """

    def __init__(self, accounts: Mapping[str, Account], *, anonymous: bool = False) -> None:
        self.accounts = dict(accounts)
        self.anonymous = anonymous
        self._by_cert = {a.certificate: a for a in self.accounts.values() if a.certificate}

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is not None:
            account = self.accounts.get(username)
            if account is None or password is None or not account.check_password(password):
                log.warning("refused login of user %r", username)
                return None
            return RoleUser(role=UserRole.User, name=account.name, plant_role=account.role,
                            account=account.name)
        if self.anonymous:
            return User(role=UserRole.Anonymous)
        der = _der(certificate)
        account = self._by_cert.get(der) if der is not None else None
        if account is None or der is None:
            return None
        return RoleUser(role=UserRole.User, name=certificate_subject(der),
                        plant_role=account.role, account=account.name)


class TrustDirValidator:
    """Validate client certificates against ``trusted/``; file rejected ones in ``rejected/``.

    The trust directory is re-read when a certificate is not trusted, so an administrator
    who moves a certificate from rejected/ to trusted/ does not have to restart the server.
    """

    OPTIONS = (CertificateValidatorOptions.TRUSTED_VALIDATION
               | CertificateValidatorOptions.PEER_CLIENT)

    def __init__(self, pki: Path) -> None:
        self.trusted, self.rejected = pki / "trusted", pki / "rejected"
        self.validator: CertificateValidator | None = None

    async def load(self) -> None:
        if not any(self.trusted.iterdir()):
            self.validator = None  # asyncua's store cannot be empty: nothing is trusted
            return
        store = TrustStore([self.trusted], [])
        await store.load()
        self.validator = CertificateValidator(self.OPTIONS, store)

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        for attempt in range(2):
            if attempt or self.validator is None:
                await self.load()
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
        name = cert.fingerprint(hashes.SHA256()).hex()[:16]
        (self.rejected / f"{name}.der").write_bytes(cert.public_bytes(Encoding.DER))
        log.warning("rejected client certificate %s (%s): move it to %s to allow it",
                    name, app.ApplicationUri, self.trusted)


def secure_policies(*, rsa_pss: bool = True) -> list[ua.SecurityPolicyType]:
    """SignAndEncrypt policies: Basic256Sha256, plus Aes256_Sha256_RsaPss where asyncua has it."""
    out = [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
    pss = getattr(ua.SecurityPolicyType, "Aes256Sha256RsaPss_SignAndEncrypt", None)
    if rsa_pss and pss is not None:
        out.append(pss)
    return out


async def setup_pki(server: Server, pki: Path, app_uri: str, *, who: str) -> TrustDirValidator:
    """Server certificate (generated on first start) and the trust-directory validator."""
    for sub in ("own", "trusted", "rejected"):
        (pki / sub).mkdir(parents=True, exist_ok=True)
    key, cert = pki / "own" / "server_key.pem", pki / "own" / "server_cert.der"
    await setup_self_signed_certificate(key, cert, app_uri, socket.gethostname(),
                                        [ExtendedKeyUsageOID.SERVER_AUTH],
                                        {"organizationName": "anode-twin"})
    await server.load_certificate(str(cert))
    await server.load_private_key(str(key))
    # Time range, URI, key usage and trust: what the OPC UA security profile asks of a server.
    validator = TrustDirValidator(pki)
    await validator.load()
    server.set_certificate_validator(validator)
    if validator.validator is None:
        print(f"{who}: no client certificate in {pki / 'trusted'}: clients are refused "
              "and their certificates filed in rejected/ until moved there", file=sys.stderr)
    return validator


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m connectors.security_common hash-password``: print a ``password_hash``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["hash-password"]:
        print("usage: python -m connectors.security_common hash-password  "
              "(password on standard input)", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
