"""``--secure`` mode: Basic256Sha256 SignAndEncrypt only, generated certificates, user roles.

* The server certificate and key are generated on first start (asyncua's ``cert_gen``, on
  ``cryptography``) into ``<pki>/own/`` and reused afterwards.
* Client certificates must be in ``<pki>/trusted/`` (DER or PEM); an untrusted client's
  certificate is written to ``<pki>/rejected/`` so an administrator can move it, the usual
  OPC UA workflow.
* Users log in with a username and password; anonymous sessions are refused. Roles:
  ``operator`` may write setpoints and call methods, ``viewer`` may browse, read and
  subscribe only. Passwords come from a users file (``--users``: ``password_hash``,
  ``password_env`` or ``password_file``) or from the environment
  (``ANODE_TWIN_OPERATOR_PASSWORD`` / ``ANODE_TWIN_VIEWER_PASSWORD`` for the users
  ``operator`` and ``viewer``), never from the plant file; they are held only as salted
  scrypt hashes and checked in constant time (:mod:`connectors.security_common`, shared with
  the twin's own server).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import PermissionRuleset, UserRole

from connectors.security_common import (
    Account,
    AccountUserManager,
    RoleUser,
    TrustDirValidator,
    hash_password,
    setup_pki,
)
from connectors.security_common import load_accounts as _load_users_file
from twin.errors import UsageError

__all__ = ["ENV_PASSWORDS", "ROLES", "Account", "AccountUserManager", "RoleRuleset", "RoleUser",
           "SecuritySettings", "TrustDirValidator", "apply_security", "load_accounts",
           "role_of"]

ROLES = ("operator", "viewer")
ENV_PASSWORDS = {"operator": "ANODE_TWIN_OPERATOR_PASSWORD",
                 "viewer": "ANODE_TWIN_VIEWER_PASSWORD"}


@dataclass(frozen=True)
class SecuritySettings:
    """What ``--secure`` needs: the PKI directory and the accounts."""

    pki_dir: Path
    accounts: Mapping[str, Account]


def load_accounts(users_file: str | Path | None,
                  environ: Mapping[str, str] = os.environ) -> dict[str, Account]:
    """Accounts from a users file, else from the environment (passwords hashed at once).

    The users file is TOML::

        [users.alice]
        role = "operator"            # or "viewer"
        password_hash = "scrypt$..." # or password_env = "ALICE_PW", or password_file = "..."
    """
    if users_file is None:
        accounts = {role: Account(role, role, hash_password(environ[var]))
                    for role, var in ENV_PASSWORDS.items() if environ.get(var)}
        if not accounts:
            raise UsageError("--secure needs users: pass --users FILE or set "
                             f"{' / '.join(ENV_PASSWORDS.values())}")
        return accounts
    return _load_users_file(users_file, environ, roles=ROLES, who="anode-twin plc")


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


async def apply_security(server: Server, settings: SecuritySettings, app_uri: str) -> None:
    """Configure ``server`` for Basic256Sha256 SignAndEncrypt with users only."""
    await setup_pki(server, settings.pki_dir, app_uri, who="anode-twin plc")
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
                               permission_ruleset=RoleRuleset())  # type: ignore[arg-type]
    server.set_identity_tokens([ua.UserNameIdentityToken])
    server.iserver.user_manager = AccountUserManager(settings.accounts)

