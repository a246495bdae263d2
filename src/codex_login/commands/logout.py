"""``codex-login logout``: remove the stored credentials everywhere, then revoke them at the issuer.

Texts and exit codes are the reference's (§14.2): ``Successfully logged out`` (0), ``Not logged in`` (0),
``Error logging out: {e}`` (1). A failed revocation prints
``Warning: could not revoke tokens at the issuer: ...`` and changes neither the local removal nor the exit
code (best effort; see :mod:`codex_login.account`).
"""

from __future__ import annotations

import argparse

from ..errors import LoginError
from .common import config_from_args, err


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config is None:
        return 1
    from ..account import logout_with_config
    from ..diagnostics.redact import sanitize_terminal_text
    from .login import start_file_logging

    # The revocation events belong in the durable log like the sign-in's.
    start_file_logging(config)
    try:
        result = logout_with_config(config)
    except LoginError as exc:
        err(f"Error logging out: {sanitize_terminal_text(str(exc), 2048)}")
        return 1
    for line in result.notices():
        err(line)
    err("Successfully logged out" if result.removed else "Not logged in")
    return 0
