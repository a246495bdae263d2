"""``codex-login status [--json]``: whether and how you are signed in (reference-spec §14.2).

The first line and the exit codes are the reference's (``Logged in using an API key - sk-abc12***vwxyz``,
``Logged in using ChatGPT``, ``Not logged in`` with exit 1). The lines after it go beyond the reference:
the account, the plan, where the credentials are kept and why, the access token's expiry and the last
refresh. Everything goes to stderr like the reference, except ``--json``, which prints one object on stdout.

This command must start as fast as the interpreter: it imports the standard library, ``config``,
``storage``, ``token_data`` and ``account`` only (``keyring`` only in the keyring and auto modes).
"""

from __future__ import annotations

import datetime as _dt
import json

from ..account import StatusFacts, read_status
from ..errors import LoginError
from ..storage import format_timestamp
from .common import config_from_args, err

TYPE_CHECKING = False
if TYPE_CHECKING:  # the CLI's fast path passes an equivalent namespace without importing argparse
    import argparse

STORE_LABELS = {
    "file": "auth.json",
    "keyring": "the OS keyring",
    "file_fallback": "auth.json (keyring fallback)",
    "ephemeral": "process memory",
}


def _clean(text: str, limit: int = 256) -> str:
    """Claim values and store texts are untrusted: strip control characters and escapes (D-5)."""
    if text.isprintable() and len(text) <= limit:
        return text  # the common case, without importing the redaction module's regexes
    from ..diagnostics.redact import sanitize_terminal_text

    return sanitize_terminal_text(text, limit)


_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


def _relative(moment: _dt.datetime, now: _dt.datetime) -> str:
    seconds = int((moment - now).total_seconds())
    future = seconds >= 0
    span = abs(seconds)
    size, unit = next(((s, u) for s, u in _UNITS if span >= s), (1, "second"))
    count = span // size
    text = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {text}" if future else f"{text} ago"


def _when(moment: _dt.datetime, now: _dt.datetime) -> str:
    stamp = format_timestamp(moment.replace(microsecond=0))
    return f"{stamp} ({_relative(moment, now)})"


def _detail_lines(facts: StatusFacts, now: _dt.datetime) -> list[str]:
    lines: list[str] = []
    if facts.email:
        lines.append(f"  Account: {_clean(facts.email)}")
    if facts.plan:
        from ..token_data import KNOWN_PLANS

        lines.append(f"  Plan: {_clean(KNOWN_PLANS.get(facts.plan, facts.plan), 64)}")
    if facts.account_id:
        lines.append(f"  Account ID: {_clean(facts.account_id, 128)}")
    where = f"  Credentials: {STORE_LABELS.get(facts.store, facts.store)}, {_clean(facts.store_location, 1024)}"
    if facts.store_reason:
        reason = _clean(facts.store_reason, 512)
        where += f" (keyring unavailable: {reason})" if facts.store == "file_fallback" else f" ({reason})"
    lines.append(where)
    if facts.expires_at is not None:
        label = "expired" if facts.expires_at <= now else "expires"
        lines.append(f"  Access token {label}: {_when(facts.expires_at, now)}")
    if facts.last_refresh is not None:
        lines.append(f"  Last refresh: {_when(facts.last_refresh, now)}")
    return lines


def _as_json(facts: StatusFacts) -> dict[str, object]:
    def stamp(value: _dt.datetime | None) -> str | None:
        return format_timestamp(value) if value is not None else None

    return {
        "logged_in": facts.logged_in,
        "auth_mode": facts.auth_mode,
        "store": facts.store,
        "store_location": facts.store_location,
        "store_reason": facts.store_reason,
        "email": facts.email,
        "plan": facts.plan,
        "account_id": facts.account_id,
        "expires_at": stamp(facts.expires_at),
        "last_refresh": stamp(facts.last_refresh),
        "api_key_masked": facts.api_key_masked,
    }


def run(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    config = config_from_args(args)
    if config is None:
        return 1
    try:
        facts = read_status(config.codex_home, config.credentials_store.value)
    except LoginError as exc:
        message = str(exc)
        if not message.startswith("Unexpected error retrieving API key"):
            message = f"Error checking login status: {message}"
        err(_clean(message, 2048))
        if as_json:
            print(json.dumps({"logged_in": False, "error": message}), flush=True)
        return 1
    for warning in facts.warnings:
        err(_clean(warning, 1024))
    if as_json:
        print(json.dumps(_as_json(facts), ensure_ascii=False), flush=True)
        return 0 if facts.logged_in else 1
    if not facts.logged_in:
        err("Not logged in")
        return 1
    if facts.auth_mode == "apikey":
        err(f"Logged in using an API key - {_clean(facts.api_key_masked or '***', 64)}")
    else:
        err("Logged in using ChatGPT")
    for line in _detail_lines(facts, _dt.datetime.now(_dt.UTC)):
        err(line)
    return 0
