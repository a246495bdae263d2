"""``codex-login --with-api-key``: read an API key from stdin and store it (reference-spec §14.2)."""

from __future__ import annotations

import argparse
import sys
import time

from ..config import Config
from ..diagnostics import events
from ..diagnostics.record import attempt_span, new_attempt_id
from ..diagnostics.redact import sanitize_terminal_text
from ..errors import LoginError
from .common import attempt_footer, err
from .login import start_file_logging

TTY_MESSAGE = (
    "--with-api-key expects the API key on stdin. Try piping it, e.g. "
    "`printenv OPENAI_API_KEY | codex-login --with-api-key`."
)
READING = "Reading API key from stdin..."
EMPTY = "No API key provided via stdin."


def _stdin_is_tty() -> bool:
    stream = sys.stdin
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def run(args: argparse.Namespace, config: Config) -> int:
    from ..api_key import ApiKeyReadError, login_with_api_key, read_api_key

    if _stdin_is_tty():
        err(TTY_MESSAGE)
        return 1
    err(READING)
    stdin = sys.stdin
    try:
        if stdin is None:
            raise ApiKeyReadError("stdin is closed")
        key = read_api_key(stdin.buffer)
    except ApiKeyReadError as exc:
        err(f"Failed to read API key from stdin: {exc}")
        return 1
    if not key:
        err(EMPTY)
        return 1

    log_path = start_file_logging(config)
    attempt_id = new_attempt_id()
    started = time.monotonic()
    store = config.credentials_store.value
    with attempt_span(attempt_id):
        events.api_key_login_flow_started()
        events.attempt_started(
            flow="api_key",
            issuer=config.issuer,
            client_id=config.client_id,
            store=store,
        )
        warnings: list[str] = []
        try:
            login_with_api_key(config.codex_home, key, store, warnings=warnings)
        except LoginError as exc:
            exc.attempt_id = attempt_id
            events.finished(
                outcome="error",
                failure_class=exc.failure_class,
                duration_ms=int((time.monotonic() - started) * 1000),
                flow="api_key",
            )
            err(f"Error logging in: {sanitize_terminal_text(str(exc))}")
            footer = attempt_footer(exc, config, log_path)
            if footer:
                err(footer)
            return 1
        events.finished(
            outcome="success", failure_class=None, duration_ms=int((time.monotonic() - started) * 1000), flow="api_key"
        )
    for warning in warnings:
        err(sanitize_terminal_text(warning, 1024))
    err("Successfully logged in")
    return 0
