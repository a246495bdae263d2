"""What every command shares: loading configuration with the reference's texts, and printing safely.

:func:`err` and :func:`settings_from_args` live in ``cli`` (re-exported here): ``codex-login status`` needs only
those two, and importing this module as well would cost it start-up time.
"""

from __future__ import annotations

from ..cli import err, settings_from_args
from ..errors import LoginError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only
    import argparse

    from ..config import Config

__all__ = ["attempt_footer", "config_from_args", "err", "settings_from_args"]


def config_from_args(args: argparse.Namespace) -> Config | None:
    """Load the configuration, or print the reference's error and return None (the caller exits 1)."""
    settings = settings_from_args(args)
    if settings is None:
        return None
    from ..config import config_from_settings

    return config_from_settings(settings)


def attempt_footer(
    error: LoginError, config: Config | None, log_path: str | None, *, without: str | None = None
) -> str | None:
    """What to try next (the shared advice table; ``without`` a command that cannot work, see
    :func:`~codex_login.diagnostics.advice.advice_for`) and, per D-10, the attempt ID and where its log is."""
    from ..diagnostics.advice import advice_for

    lines = [f"Try next: {advice_for(error.failure_class, without=without).hint}"]
    if error.attempt_id:
        where = f"; log: {log_path}" if log_path else ""
        lines.append(
            f"Attempt ID: {error.attempt_id}{where}. "
            f"Run `codex-login log --attempt {error.attempt_id}` for the timeline."
        )
    return "\n".join(lines)
