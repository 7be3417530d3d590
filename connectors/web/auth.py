"""Who is using the web view: logins against the twin's user store, sessions, CSRF tokens.

The accounts are the ones of the twin's OPC UA server (:func:`connectors.security_common.
load_accounts`, ``--users FILE``): the same names, salted scrypt hashes and roles (viewer,
operator, engineer). Everything is decided here, on the server:

* a login checks the password with the store's constant-time scrypt check (in a worker
  thread: one check costs some tens of ms) and, after :data:`MAX_FAILURES` failures in a row
  for one user name, refuses that name for :data:`LOCKOUT_S` (a password guesser gets a few
  tries a minute, not thousands);
* a session is a random token in an ``HttpOnly``, ``SameSite=Strict`` cookie; only its SHA-256
  is kept, so a memory dump does not hand out live sessions; it ends after
  :data:`IDLE_S` without a request or :data:`MAX_AGE_S` in all (one shift);
* every POST carries the session's CSRF token in the ``X-CSRF-Token`` header (a cross-site
  page can neither read the token nor set the header); the login POST, before any session,
  uses a double-submit cookie;
* the role a write needs is checked against the session's account, never against a name the
  page sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from connectors.security_common import Account, role_rank

#: Session cookie and login (pre-session) CSRF cookie.
SESSION_COOKIE = "anode_session"
LOGIN_CSRF_COOKIE = "anode_login_csrf"
#: Header every POST carries its CSRF token in.
CSRF_HEADER = "x-csrf-token"

IDLE_S = 8 * 3600.0
MAX_AGE_S = 12 * 3600.0
MAX_FAILURES = 5
LOCKOUT_S = 30.0
#: Most sessions kept at once (the oldest goes first).
MAX_SESSIONS = 1000


@dataclass
class WebSession:
    """One logged-in browser."""

    user: str
    role: str
    csrf: str
    created: float
    seen: float


@dataclass
class LoginResult:
    """What a login attempt gave: a session token (and its session), or why not."""

    token: str = ""
    session: WebSession | None = None
    error: str = ""
    locked_s: float = 0.0


@dataclass
class WebAuth:
    """Accounts, sessions and the anonymous-read rule of one web view.

    anonymous_read : whether a page may be read without logging in (the twin on loopback,
        like its OPC UA server's anonymous read-only sessions); writes always need a login.
    """

    accounts: Mapping[str, Account] = field(default_factory=dict)
    anonymous_read: bool = True
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, WebSession] = field(default_factory=dict)
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    async def login(self, user: str, password: str) -> LoginResult:
        """Check ``user``/``password``; a new session on success."""
        now = self.clock()
        count, until = self._failures.get(user, (0, 0.0))
        if until > now:
            return LoginResult(error="too many failed logins; try again later",
                               locked_s=until - now)
        account = self.accounts.get(user)
        ok = False
        if account is not None and password:
            ok = await asyncio.to_thread(account.check_password, password)
        if not ok:
            count += 1
            lock = now + LOCKOUT_S if count >= MAX_FAILURES else 0.0
            self._failures[user] = (0 if lock else count, lock)
            return LoginResult(error="unknown user or wrong password")
        assert account is not None
        self._failures.pop(user, None)
        self._prune(now)
        token = secrets.token_urlsafe(32)
        session = WebSession(account.name, account.role, secrets.token_urlsafe(32), now, now)
        self._sessions[self._digest(token)] = session
        return LoginResult(token=token, session=session)

    def session(self, token: str | None) -> WebSession | None:
        """The live session of a cookie token (and note the request), else None."""
        if not token:
            return None
        key = self._digest(token)
        s = self._sessions.get(key)
        now = self.clock()
        if s is None:
            return None
        if now - s.seen > IDLE_S or now - s.created > MAX_AGE_S:
            del self._sessions[key]
            return None
        s.seen = now
        return s

    def logout(self, token: str | None) -> None:
        if token:
            self._sessions.pop(self._digest(token), None)

    def _prune(self, now: float) -> None:
        for key, s in list(self._sessions.items()):
            if now - s.seen > IDLE_S or now - s.created > MAX_AGE_S:
                del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))

    @staticmethod
    def csrf_ok(expected: str | None, given: str | None) -> bool:
        """Constant-time comparison of a CSRF token (both must be present)."""
        return bool(expected) and bool(given) and hmac.compare_digest(
            str(expected).encode(), str(given).encode())

    @staticmethod
    def may(session: WebSession | None, role: str) -> bool:
        """Whether the session's account holds ``role`` (or a higher one)."""
        return session is not None and role_rank(session.role) >= role_rank(role)
