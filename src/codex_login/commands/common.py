"""What every command shares: loading configuration with the reference's texts, and printing safely."""

from __future__ import annotations

import sys

from ..config import Config, load_config, parse_override
from ..errors import ConfigError, LoginError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: ``codex-login status`` imports this module and must start fast
    import argparse
    from typing import TextIO


def err(line: str, stream: TextIO | None = None) -> None:
    """Print one line to stderr (the reference prints all login messages there)."""
    print(line, file=stream or sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace) -> Config | None:
    """Load the configuration, or print the reference's error and return None (the caller exits 1)."""
    overrides: list[str] = list(getattr(args, "overrides", None) or [])
    try:
        for item in overrides:
            parse_override(item)
    except ConfigError as exc:
        err(f"Error parsing -c overrides: {exc}")
        return None
    try:
        return load_config(
            overrides,
            issuer=getattr(args, "issuer", None),
            client_id=getattr(args, "client_id", None),
        )
    except ConfigError as exc:
        err(f"Error loading configuration: {exc}")
        return None


def attempt_footer(error: LoginError, config: Config | None, log_path: str | None) -> str | None:
    """What to try next (the shared advice table) and, per D-10, the attempt ID and where its log is."""
    from ..diagnostics.advice import advice_for

    lines = [f"Try next: {advice_for(error.failure_class).hint}"]
    if error.attempt_id:
        where = f"; log: {log_path}" if log_path else ""
        lines.append(
            f"Attempt ID: {error.attempt_id}{where}. "
            f"Run `codex-login log --attempt {error.attempt_id}` for the timeline."
        )
    return "\n".join(lines)
