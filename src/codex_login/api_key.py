"""API-key sign-in: validate a key and store ``{"auth_mode": "apikey", "OPENAI_API_KEY": ...}`` (reference §11.2).

The key is a secret: it is never echoed, logged or put in an error message. The log gets its length and
whether it looks like an OpenAI key (``sk-``), nothing else.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from .diagnostics import events
from .diagnostics.redact import SECRETS
from .errors import ErrorKind, LoginError

__all__ = [
    "MAX_STDIN_BYTES",
    "ApiKeyReadError",
    "api_key_problem",
    "login_with_api_key",
    "read_api_key",
]

#: More than this on stdin is not an API key (security J4): the read stops and fails.
MAX_STDIN_BYTES = 8 * 1024


class ApiKeyReadError(Exception):
    """stdin could not be read as an API key; ``str()`` is safe to print (it never holds input)."""


def read_api_key(stream: BinaryIO, limit: int = MAX_STDIN_BYTES) -> str:
    """Read all of ``stream`` (at most ``limit`` bytes) as UTF-8 and trim surrounding whitespace.

    Returns ``""`` for empty or whitespace-only input. Raises :class:`ApiKeyReadError`.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ApiKeyReadError(f"the input is longer than {limit} bytes; an API key is much shorter")
    except OSError as err:
        raise ApiKeyReadError(os.strerror(err.errno) if err.errno else type(err).__name__) from None
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiKeyReadError("stream did not contain valid UTF-8") from None
    return text.strip()


def api_key_problem(api_key: str) -> str | None:
    """Why ``api_key`` cannot be a key (without quoting it), or None."""
    if not api_key:
        return "the API key is empty"
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in api_key):
        return "the API key contains whitespace or control characters"
    return None


def login_with_api_key(
    codex_home: os.PathLike[str] | str, api_key: str, store_mode: str, *, warnings: list[str] | None = None
) -> str:
    """Store ``api_key`` as the sign-in (reference ``login_with_api_key``); return the store that holds it.

    Surrounding whitespace is trimmed; a key with whitespace or control characters inside is refused.
    Store fallback warnings (``auto`` mode) are appended to ``warnings``. Raises :class:`LoginError`.
    """
    from ._threads import stop_signals_held
    from .storage import AuthDotJson, StoreMode, create_store, store_lock

    key = api_key.strip()
    problem = api_key_problem(key)
    if problem is not None:
        raise LoginError(problem, kind=ErrorKind.INVALID_INPUT, failure_class="invalid_api_key")
    SECRETS.add("api_key", key)
    events.api_key_received(key_len=len(key), looks_like_openai_key=key.startswith("sk-"))
    mode = StoreMode(store_mode)
    store = create_store(codex_home, mode)
    try:
        # A Ctrl-C or SIGTERM during the save waits for its end: once saved, the sign-in has succeeded.
        with stop_signals_held(), store_lock(codex_home, mode):
            where = store.save(AuthDotJson.from_api_key(key))
            events.credentials_saved(store=where, logger=events.AUTH)
    except LoginError as err:
        events.credentials_not_saved(
            store=str(store_mode), error_class=type(err).__name__, errno=None, logger=events.AUTH
        )
        raise
    if warnings is not None:
        warnings.extend(store.warnings)
    return where
