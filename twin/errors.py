"""User-facing errors.

Every error a user can cause (bad file, bad key, bad argument, bad physics input) is raised as a
:class:`TwinError` subclass whose ``str()`` is one clear line. The CLI prints that line and
returns :attr:`TwinError.exit_code`; it never shows a traceback for these.
"""

from __future__ import annotations


class TwinError(Exception):
    """Base class: a problem the user can fix; ``str(err)`` is a one-line message."""

    exit_code: int = 1


class UsageError(TwinError):
    """Bad command-line arguments or input files (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """A plant, study or site file is invalid; the message names the file and the key."""


class PhysicsError(TwinError, ValueError):
    """Inputs outside what a physics model accepts (unknown element, molten tin, ...)."""

    exit_code = 2
