"""``codex-login status [--json]``: whether and how you are signed in (reference-spec §14.2).

The first line and the exit codes are the reference's (``Logged in using an API key - sk-abc12***vwxyz``,
``Logged in using ChatGPT``, ``Not logged in`` with exit 1). The lines after it go beyond the reference:
the account, the plan, where the credentials are kept and why, the access token's expiry and the last
refresh. Everything goes to stderr like the reference, except ``--json``, which prints one object on stdout.

This command must start about as fast as the interpreter: it reads through ``_settings`` and ``_credentials``
(no ``json``, ``re``, ``datetime``, ``pathlib`` or ``enum``; ``keyring`` only in the keyring and auto modes)
and handles instants as microseconds since the epoch.
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

from .._credentials import KNOWN_PLANS, StatusSummary, format_rfc3339, now_us, status_summary
from .._fastjson import dumps_flat
from ..cli import err, settings_from_args
from ..errors import LoginError

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


def _relative(moment_us: int, now: int) -> str:
    # As ``int((moment - now).total_seconds())`` of two datetimes: a float division, then truncation.
    seconds = int((moment_us - now) / 1_000_000)
    future = seconds >= 0
    span = abs(seconds)
    size, unit = next(((s, u) for s, u in _UNITS if span >= s), (1, "second"))
    count = span // size
    text = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {text}" if future else f"{text} ago"


def _when(moment_us: int, now: int) -> str:
    stamp = format_rfc3339(moment_us // 1_000_000)
    return f"{stamp} ({_relative(moment_us, now)})"


def _stamp(moment_us: int | None) -> str | None:
    if moment_us is None:
        return None
    seconds, microseconds = divmod(moment_us, 1_000_000)
    return format_rfc3339(seconds, microseconds * 1000)


def _detail_lines(facts: StatusSummary, now: int) -> list[str]:
    lines: list[str] = []
    if facts.email:
        lines.append(f"  Account: {_clean(facts.email)}")
    if facts.plan:
        lines.append(f"  Plan: {_clean(KNOWN_PLANS.get(facts.plan, facts.plan), 64)}")
    if facts.account_id:
        lines.append(f"  Account ID: {_clean(facts.account_id, 128)}")
    where = f"  Credentials: {STORE_LABELS.get(facts.store, facts.store)}, {_clean(facts.store_location, 1024)}"
    if facts.store_reason:
        reason = _clean(facts.store_reason, 512)
        where += f" (keyring unavailable: {reason})" if facts.store == "file_fallback" else f" ({reason})"
    lines.append(where)
    if facts.expires_at_us is not None:
        label = "expired" if facts.expires_at_us <= now else "expires"
        lines.append(f"  Access token {label}: {_when(facts.expires_at_us, now)}")
    if facts.last_refresh_us is not None:
        lines.append(f"  Last refresh: {_when(facts.last_refresh_us, now)}")
    return lines


def _as_json(facts: StatusSummary) -> dict[str, str | bool | None]:
    return {
        "logged_in": facts.logged_in,
        "auth_mode": facts.auth_mode,
        "store": facts.store,
        "store_location": facts.store_location,
        "store_reason": facts.store_reason,
        "email": facts.email,
        "plan": facts.plan,
        "account_id": facts.account_id,
        "expires_at": _stamp(facts.expires_at_us),
        "last_refresh": _stamp(facts.last_refresh_us),
        "api_key_masked": facts.api_key_masked,
    }


def run(args: "argparse.Namespace") -> int:
    as_json = bool(getattr(args, "json", False))
    settings = settings_from_args(args)
    if settings is None:
        return 1
    try:
        facts = status_summary(settings.codex_home, settings.credentials_store)
    except LoginError as exc:
        message = str(exc)
        if not message.startswith("Unexpected error retrieving API key"):
            message = f"Error checking login status: {message}"
        err(_clean(message, 2048))
        if as_json:
            print(dumps_flat({"logged_in": False, "error": message}), flush=True)
        return 1
    for warning in facts.warnings:
        err(_clean(warning, 1024))
    if as_json:
        print(dumps_flat(_as_json(facts)), flush=True)
        return 0 if facts.logged_in else 1
    if not facts.logged_in:
        err("Not logged in")
        return 1
    if facts.auth_mode == "apikey":
        err(f"Logged in using an API key - {_clean(facts.api_key_masked or '***', 64)}")
    else:
        err("Logged in using ChatGPT")
    for line in _detail_lines(facts, now_us()):
        err(line)
    return 0
