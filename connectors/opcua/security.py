"""Per-endpoint security: secure channel (mode, policy, certificates) and user login.

The password is read when a connection is made, from the environment variable or file the
plant file names, so a rotated password takes effect at the next reconnect and is never
held in the configuration objects.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies

from connectors.opcua.errors import CredentialsError
from twin.config.tags import Endpoint

log = logging.getLogger(__name__)


def resolve_path(path: Path, base_dir: Path | None) -> Path:
    """``path`` as given if absolute, else relative to ``base_dir`` (the site file's folder)."""
    return path if path.is_absolute() or base_dir is None else base_dir / path


def read_password(name: str, cfg: Endpoint, base_dir: Path | None = None) -> str | None:
    """The endpoint's password from ``password_env`` or ``password_file`` (None if no login).

    Raises
    ------
    CredentialsError
        The variable is unset or empty, or the file cannot be read; the message names the
        endpoint and the variable or file, never the password.
    """
    if cfg.password_env is not None:
        value = os.environ.get(cfg.password_env)
        if not value:
            raise CredentialsError(
                f"endpoint {name!r}: environment variable {cfg.password_env} (password of user "
                f"{cfg.username!r}) is not set"
            )
        return value
    if cfg.password_file is not None:
        path = resolve_path(cfg.password_file, base_dir)
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except OSError as exc:
            raise CredentialsError(
                f"endpoint {name!r}: cannot read password_file {path}: {exc.strerror}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Like ssh with private keys: say so, but do not refuse (the site decides).
            log.warning("endpoint %r: password_file %s is readable by group/others", name, path)
        value = text.rstrip("\r\n")
        if not value:
            raise CredentialsError(f"endpoint {name!r}: password_file {path} is empty")
        return value
    return None


async def configure_client(client: Client, name: str, cfg: Endpoint,
                           base_dir: Path | None = None) -> None:
    """Apply the endpoint's security settings and credentials to a new (unconnected) client."""
    client.application_uri = cfg.application_uri
    client.name = client.description = "anode-twin"
    if cfg.security_mode != "None":
        assert cfg.certificate and cfg.private_key and cfg.server_certificate  # config-checked
        key_password = None
        if cfg.private_key_password_env is not None:
            key_password = os.environ.get(cfg.private_key_password_env)
            if key_password is None:
                raise CredentialsError(
                    f"endpoint {name!r}: environment variable {cfg.private_key_password_env} "
                    "(private key passphrase) is not set"
                )
        paths = {k: resolve_path(getattr(cfg, k), base_dir)
                 for k in ("certificate", "private_key", "server_certificate")}
        for key, path in paths.items():
            if not path.is_file():
                raise CredentialsError(f"endpoint {name!r}: {key} {path} does not exist")
        policy = getattr(security_policies, f"SecurityPolicy{cfg.security_policy}")
        try:
            await client.set_security(
                policy,
                certificate=str(paths["certificate"]),
                private_key=str(paths["private_key"]),
                private_key_password=key_password,
                server_certificate=str(paths["server_certificate"]),
                mode=getattr(ua.MessageSecurityMode, cfg.security_mode),
            )
        except (ValueError, TypeError, OSError) as exc:
            raise CredentialsError(
                f"endpoint {name!r}: cannot load certificate or key: {exc}"
            ) from None
    if cfg.username is not None:
        client.set_user(cfg.username)
        password = read_password(name, cfg, base_dir)
        if password is not None:
            client.set_password(password)
