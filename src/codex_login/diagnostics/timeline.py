"""The login log read back as attempts: ``codex-login.log`` -> attempts -> steps (for ``log`` and ``bundle``).

Reading. :func:`read_entries` reads ``codex-login.log`` and its rotated generations (``codex-login.log.1``
... ``.N``, oldest first) from ``log_dir``, in either line format (text or JSON, mixed files are fine), and
keeps each line's raw text next to its parsed form. Files are opened without following symlinks and only
when they are regular files; each contributes at most its last :data:`MAX_BYTES_PER_FILE` bytes (a Rust
Codex log never rotates). Lines that are not log events are skipped.

Grouping. :func:`group_attempts` groups events by the attempt ID of their ``login{attempt=la_...}`` span.
An event without a span (a Codex CLI line, a flow-start line written before the span opened) is attached
to the next attempt whose first event comes at most :data:`ATTACH_WINDOW` (1 s) later; otherwise it is
ignored. Within an attempt, events are ordered by time (stable, so equal timestamps keep file order).

Steps. Each event becomes a :class:`Step` with its offset from the attempt's first event and a mark:

* ``ok``: a milestone was reached (port bound, callback accepted, tokens received, credentials saved...);
* ``fail``: an event that ends the attempt unsuccessfully (token endpoint refusal, transport failure,
  timeout, cancellation...);
* ``warn``: a problem the attempt survives (a rejected stray request, a state mismatch, a browser that
  did not open);
* ``info``: anything else.

The attempt's outcome, failure class and duration come from its ``login finished`` event; an attempt
without one is ``unfinished``. The failed step is the first ``fail`` step; the last step that succeeded is
the last ``ok`` step before it. What to try next is :func:`~codex_login.diagnostics.advice.advice_for` of
the failure class. Event messages are matched through the ``MSG_*`` constants of the event catalogue.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeGuard

from . import events as ev
from .advice import DEVICE_AUTH, UNFINISHED, Advice, advice_for
from .format import ParsedLine, ParsedValue, escape_debug, parse_line
from .logfile import LOG_FILE_NAME
from .redact import sanitize_terminal_text

__all__ = [
    "ATTACH_WINDOW",
    "MAX_BYTES_PER_FILE",
    "Attempt",
    "LogEntry",
    "Step",
    "build_attempt",
    "group_attempts",
    "load_attempts",
    "log_files",
    "read_entries",
    "render_attempt",
    "render_attempts",
]

ATTACH_WINDOW: Final = timedelta(seconds=1)
MAX_BYTES_PER_FILE: Final = 16 * 1024 * 1024
#: Spanless events kept while waiting for the next attempt; older ones cannot be within the window anyway.
_MAX_PENDING: Final = 256
# A duration_ms from 2**63 up (or below 0) comes from a damaged line, not a sign-in: it is treated as absent,
# as dividing a 400-digit one by 1000 for the heading's "took" raised OverflowError.
_DURATION_MS_LIMIT: Final = 2**63
_ROTATED = re.compile(re.escape(LOG_FILE_NAME) + r"\.([1-9][0-9]{0,3})\Z")

# Events that mark progress. The callback, a pasted URL, a token response and the final event count only
# when their fields say so (see _mark).
_MILESTONES: Final = frozenset(
    {
        ev.MSG_BROWSER_FLOW,
        ev.MSG_DEVICE_FLOW,
        ev.MSG_DEVICE_FALLBACK_FLOW,
        ev.MSG_API_KEY_FLOW,
        ev.MSG_ATTEMPT_STARTED,
        ev.MSG_SERVER_BOUND,
        ev.MSG_BROWSER_OPENED,
        ev.MSG_EXCHANGE_START,
        ev.MSG_TOKEN_ROUTE,
        ev.MSG_EXCHANGE_OK,
        ev.MSG_API_KEY_EXCHANGE_OK,
        ev.MSG_CREDENTIALS_SAVED,
        ev.MSG_SUCCESS_PAGE,
        ev.MSG_DEVICE_CODE_REQUESTED,
        ev.MSG_DEVICE_AUTHORIZED,
        ev.MSG_API_KEY_LOGIN,
    }
)
# Events after which the attempt cannot succeed.
_FATAL: Final = frozenset(
    {
        ev.MSG_OAUTH_ERROR,
        ev.MSG_CALLBACK_MISSING_CODE,
        ev.MSG_TRANSPORT_FAILURE,
        ev.MSG_TRANSPORT_CLASSIFIED,
        ev.MSG_NON_SUCCESS,
        ev.MSG_INVALID_TOKEN_RESPONSE,
        ev.MSG_CALLBACK_EXCHANGE_FAILED,
        ev.MSG_WORKSPACE_DENIED,
        ev.MSG_CREDENTIALS_NOT_SAVED,
        ev.MSG_CANCELLED,
        ev.MSG_TIMED_OUT,
        ev.MSG_BIND_FAILED,
        ev.MSG_DEVICE_CODE_FAILED,
        ev.MSG_DEVICE_POLL_FAILED,
        ev.MSG_DEVICE_TRANSPORT_FAILURE,
    }
)
_FLOW_OF_START: Final = {
    ev.MSG_BROWSER_FLOW: "browser",
    ev.MSG_DEVICE_FLOW: "device",
    ev.MSG_DEVICE_FALLBACK_FLOW: "device",
    ev.MSG_API_KEY_FLOW: "api_key",
}


@dataclass(frozen=True)
class LogEntry:
    """One event read from the log: the line as written, its parsed form, and the file it came from."""

    raw: str
    line: ParsedLine
    source: str


@dataclass(frozen=True)
class Step:
    """One event of an attempt, placed on the attempt's time axis."""

    index: int
    offset: float  # seconds since the attempt's first event
    level: str
    target: str
    message: str
    fields: dict[str, ParsedValue]
    mark: str  # "ok", "fail", "warn" or "info"

    def describe(self) -> str:
        """``message name=value ...``, values escaped so the text stays on one line."""
        rendered = " ".join(f"{name}={_render_value(value)}" for name, value in self.fields.items())
        return f"{escape_debug(self.message)} {rendered}".rstrip()

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "offset_s": round(self.offset, 6),
            "level": self.level,
            "target": self.target,
            "message": self.message,
            "fields": dict(self.fields),
            "mark": self.mark,
        }


def _render_value(value: ParsedValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    escaped = escape_debug(value)
    return f'"{escaped}"' if (not escaped or " " in escaped) else escaped


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt as the log tells it."""

    attempt_id: str
    started: datetime
    entries: tuple[LogEntry, ...]
    steps: tuple[Step, ...]
    flow: str | None
    #: ``success``, ``denied``, ``cancelled``, ``timeout``, ``error`` (from ``login finished``) or ``unfinished``.
    outcome: str
    failure_class: str | None
    duration_ms: int | None
    last_ok: Step | None
    failed_step: Step | None
    #: The flow this attempt stood in for (``fallback_from`` of ``login attempt started``): ``device`` for the
    #: browser sign-in that ``--device-auth`` fell back to.
    fallback_from: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "success"

    @property
    def advice(self) -> Advice | None:
        """What to try next; ``None`` for a successful attempt."""
        if self.succeeded:
            return None
        # After a fallback from --device-auth the issuer has no device sign-in: no step may suggest it.
        without = DEVICE_AUTH if self.fallback_from == "device" else None
        if self.outcome == UNFINISHED and self.failure_class is None:
            return advice_for(UNFINISHED, without=without)
        return advice_for(self.failure_class, without=without)

    @property
    def raw_lines(self) -> list[str]:
        return [entry.raw for entry in self.entries]

    def to_json(self) -> dict[str, object]:
        advice = self.advice
        return {
            "attempt_id": self.attempt_id,
            "flow": self.flow,
            "started": _iso(self.started),
            "outcome": self.outcome,
            "failure_class": self.failure_class,
            "duration_ms": self.duration_ms,
            "last_ok_step": self.last_ok.to_json() if self.last_ok else None,
            "failed_step": self.failed_step.to_json() if self.failed_step else None,
            "advice": advice.to_json() if advice else None,
            "steps": [step.to_json() for step in self.steps],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------- reading


def log_files(log_dir: Path) -> list[Path]:
    """The log and its rotated generations that exist in ``log_dir``, oldest first."""
    try:
        names = os.listdir(log_dir)
    except OSError:
        return []
    rotated = sorted(
        ((int(m.group(1)), name) for name in names if (m := _ROTATED.match(name)) is not None), reverse=True
    )
    files = [log_dir / name for _n, name in rotated]
    if LOG_FILE_NAME in names:
        files.append(log_dir / LOG_FILE_NAME)
    return files


def _read_tail(path: Path, limit: int) -> str | None:
    """The last ``limit`` bytes of a regular file (from a line start), never through a symlink or a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        skip = max(0, st.st_size - limit)
        if skip:
            os.lseek(fd, skip, os.SEEK_SET)
        chunks: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if skip:
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return data.decode("utf-8", errors="replace")


def read_entries(log_dir: Path, *, max_bytes_per_file: int = MAX_BYTES_PER_FILE) -> list[LogEntry]:
    """Every event of the log files in ``log_dir``, in file order (oldest generation first)."""
    entries: list[LogEntry] = []
    for path in log_files(log_dir):
        text = _read_tail(path, max_bytes_per_file)
        if text is None:
            continue
        for raw in text.splitlines():
            parsed = parse_line(raw) if raw.strip() else None
            if parsed is not None:
                entries.append(LogEntry(raw=raw, line=parsed, source=path.name))
    return entries


# --------------------------------------------------------------------------------------------- grouping


def group_attempts(entries: Iterable[LogEntry]) -> list[Attempt]:
    """Group events into attempts (see the module docstring), ordered by start time."""
    grouped: dict[str, list[LogEntry]] = {}
    pending: list[LogEntry] = []
    for entry in entries:
        attempt_id = entry.line.attempt
        if not attempt_id:
            pending.append(entry)
            if len(pending) > _MAX_PENDING:
                del pending[0]
            continue
        if attempt_id not in grouped:
            start = entry.line.timestamp
            grouped[attempt_id] = [
                p for p in pending if timedelta(0) <= start - p.line.timestamp <= ATTACH_WINDOW
            ]
            pending = []
        grouped[attempt_id].append(entry)
    attempts = [build_attempt(attempt_id, items) for attempt_id, items in grouped.items()]
    attempts.sort(key=lambda attempt: attempt.started)
    return attempts


def _mark(line: ParsedLine) -> str:
    message, fields = line.message, line.fields
    if message in _FATAL:
        return "fail"
    if message == ev.MSG_CALLBACK:
        return "ok" if fields.get("state_valid") is True else "warn"
    if message == ev.MSG_PASTED_URL:
        return "ok" if fields.get("accepted") is True else "warn"
    if message == ev.MSG_TOKEN_RESPONSE:
        return "ok" if str(fields.get("status", "")).startswith("2") else "warn"
    if message == ev.MSG_FINISHED:
        return "ok" if fields.get("outcome") == "success" else "fail"
    if message in _MILESTONES:
        return "ok"
    return "warn" if line.level in ("WARN", "ERROR") else "info"


def _sane_duration_ms(value: ParsedValue | None) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _DURATION_MS_LIMIT


def build_attempt(attempt_id: str, entries: Sequence[LogEntry]) -> Attempt:
    """One :class:`Attempt` from its events (in any order)."""
    ordered = sorted(entries, key=lambda entry: entry.line.timestamp)
    started = ordered[0].line.timestamp
    steps = tuple(
        Step(
            index=i,
            offset=(entry.line.timestamp - started).total_seconds(),
            level=entry.line.level,
            target=entry.line.target,
            message=entry.line.message,
            fields=dict(entry.line.fields),
            mark=_mark(entry.line),
        )
        for i, entry in enumerate(ordered)
    )
    flow: str | None = None
    outcome = UNFINISHED
    failure: str | None = None
    duration: int | None = None
    fallback_from: str | None = None
    for step in steps:
        if step.message in _FLOW_OF_START and flow is None:
            flow = _FLOW_OF_START[step.message]
        if step.message in (ev.MSG_ATTEMPT_STARTED, ev.MSG_FINISHED) and isinstance(step.fields.get("flow"), str):
            flow = str(step.fields["flow"])
        if step.message == ev.MSG_ATTEMPT_STARTED and isinstance(step.fields.get("fallback_from"), str):
            fallback_from = str(step.fields["fallback_from"])
        if step.message == ev.MSG_FINISHED:
            outcome = str(step.fields.get("outcome", "error"))
            raw_failure = step.fields.get("failure")
            failure = str(raw_failure) if raw_failure is not None else None
            raw_duration = step.fields.get("duration_ms")
            duration = raw_duration if _sane_duration_ms(raw_duration) else None
    if outcome not in (UNFINISHED, "success") and failure is None:
        failure = outcome if outcome in ("denied", "cancelled", "timeout") else None
    failed = next((s for s in steps if s.mark == "fail" and s.message != ev.MSG_FINISHED), None)
    if failed is None and outcome not in (UNFINISHED, "success"):
        failed = next((s for s in steps if s.message == ev.MSG_FINISHED), None)
    limit = failed.index if failed is not None else len(steps)
    last_ok = next((s for s in reversed(steps[:limit]) if s.mark == "ok"), None)
    if duration is None and outcome != UNFINISHED:
        duration = int(steps[-1].offset * 1000)
    return Attempt(
        attempt_id=attempt_id,
        started=started,
        entries=tuple(ordered),
        steps=steps,
        flow=flow,
        outcome=outcome,
        failure_class=failure,
        duration_ms=duration,
        last_ok=last_ok,
        failed_step=failed,
        fallback_from=fallback_from,
    )


def load_attempts(log_dir: Path) -> list[Attempt]:
    """:func:`read_entries` then :func:`group_attempts`."""
    return group_attempts(read_entries(log_dir))


# --------------------------------------------------------------------------------------------- rendering

_MARK_LABEL: Final = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "info": "    "}


def _offset(seconds: float) -> str:
    return f"+{seconds:.3f} s"


def render_attempt(attempt: Attempt) -> list[str]:
    """The attempt as terminal lines: a heading, one line per step, then the verdict and the advice."""
    when = attempt.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    outcome = attempt.outcome
    if attempt.failure_class and attempt.failure_class != attempt.outcome:
        outcome += f" ({attempt.failure_class})"
    took = f", took {attempt.duration_ms / 1000:.3f} s" if attempt.duration_ms is not None else ""
    flow = f" {attempt.flow} sign-in" if attempt.flow else ""
    lines = [f"Attempt {attempt.attempt_id}:{flow} started {when}: {outcome}{took}"]
    width = max(len(_offset(step.offset)) for step in attempt.steps)
    for step in attempt.steps:
        lines.append(f"  {_offset(step.offset).rjust(width)}  {_MARK_LABEL[step.mark]}  {step.describe()}")
    lines.append("")
    if attempt.last_ok is not None:
        lines.append(f"  Last step that succeeded: {_offset(attempt.last_ok.offset)} {attempt.last_ok.describe()}")
    else:
        lines.append("  Last step that succeeded: none")
    if attempt.failed_step is not None:
        lines.append(f"  Failed at: {_offset(attempt.failed_step.offset)} {attempt.failed_step.describe()}")
    advice = attempt.advice
    if advice is None:
        lines.append("  Signed in.")
    else:
        heading = f" ({attempt.failure_class})" if attempt.failure_class else ""
        lines.append(f"  What went wrong{heading}: {advice.title}. {advice.what_happened}")
        lines.append("  What to try next:")
        lines.extend(f"    {n}. {text}" for n, text in enumerate(advice.try_next, 1))
    # The log is ours, but it is a file: nothing read from it reaches the terminal unescaped (D-5).
    return [sanitize_terminal_text(line) for line in lines]


def render_attempts(attempts: Sequence[Attempt]) -> str:
    """Every attempt, oldest first, separated by a blank line."""
    blocks = ["\n".join(render_attempt(attempt)) for attempt in attempts]
    return "\n\n".join(blocks) + ("\n" if blocks else "")
