"""The contract between the event catalogue and the formatters.

An event is a standard :class:`logging.LogRecord` whose ``msg`` is a constant string from the catalogue and
which carries two extra attributes:

* ``codex_fields``: an insertion-ordered ``dict[str, FieldValue]`` of reviewed fields;
* ``codex_attempt``: the attempt ID (``la_`` + 8 hex) of the sign-in it belongs to, or ``None``.

Field values follow tracing's rendering rules: a plain ``str`` is rendered Debug-quoted
(``error_code="access_denied"``), a :class:`Display` value unquoted (``status=200 OK``), and bools and ints
as themselves. Formatters escape every value so that one event is always exactly one line.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import sys
from collections.abc import Iterator

FIELDS_ATTR = "codex_fields"
ATTEMPT_ATTR = "codex_attempt"


class Display(str):
    """A field value rendered like tracing's ``%value``: without quotes."""

    __slots__ = ()


FieldValue = str | bool | int | float | None

_ATTEMPT: contextvars.ContextVar[str | None] = contextvars.ContextVar("codex_login_attempt", default=None)


def new_attempt_id() -> str:
    """A fresh attempt ID, ``la_`` followed by 8 lowercase hex digits (DECISIONS D-10)."""
    return "la_" + secrets.token_hex(4)


def current_attempt() -> str | None:
    """The attempt ID of the sign-in running in this context, if any."""
    return _ATTEMPT.get()


@contextlib.contextmanager
def attempt_span(attempt_id: str) -> Iterator[str]:
    """Run the body inside the ``login{attempt=...}`` span: every event emitted in it carries the ID.

    Threads started with ``contextvars.copy_context().run`` (and ``asyncio.to_thread``) inherit it.
    """
    token = _ATTEMPT.set(attempt_id)
    try:
        yield attempt_id
    finally:
        _ATTEMPT.reset(token)


def context_for_attempt(attempt_id: str) -> contextvars.Context:
    """A context carrying the attempt span, for callbacks scheduled from outside the attempt."""
    ctx = contextvars.copy_context()
    ctx.run(_ATTEMPT.set, attempt_id)
    return ctx


def target_of(logger_name: str) -> str:
    """``codex_login.server`` -> ``codex_login::server``: how tracing spells a module path."""
    return logger_name.replace(".", "::")


def emit(logger: logging.Logger, level: int, message: str, fields: dict[str, FieldValue] | None = None) -> None:
    """Emit one catalogue event. ``message`` must be a constant from the catalogue, never built from input.

    The record carries the caller's file, line and function, as ``logger.log(..., stacklevel=2)`` gave it.
    """
    if not logger.isEnabledFor(level):
        return
    # issue 9: ~8 events lie on the callback's path, and logger.log's findCaller walked the stack through
    # logging's own frames for each. The caller is simply the frame above this one (what findCaller found:
    # no frame of logging's or importlib's lies between). makeRecord and handle are what Logger._log calls,
    # so record factories, filters, handlers and propagation behave exactly as before.
    caller = sys._getframe(1)
    code = caller.f_code
    record = logger.makeRecord(
        logger.name,
        level,
        code.co_filename,
        caller.f_lineno,
        message,
        (),
        None,
        code.co_name,
        {FIELDS_ATTR: dict(fields or {}), ATTEMPT_ATTR: _ATTEMPT.get()},
        None,
    )
    logger.handle(record)


def fields_of(record: logging.LogRecord) -> dict[str, FieldValue]:
    value = getattr(record, FIELDS_ATTR, None)
    return value if isinstance(value, dict) else {}


def attempt_of(record: logging.LogRecord) -> str | None:
    value = getattr(record, ATTEMPT_ATTR, None)
    return value if isinstance(value, str) else None
