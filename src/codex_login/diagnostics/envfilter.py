"""tracing-subscriber's ``EnvFilter`` (the ``RUST_LOG`` directive syntax) over :mod:`logging`.

Syntax: comma-separated directives, each one of

* ``target=level``: events whose target *starts with* ``target`` at ``level`` or more severe;
* ``level`` (or ``=level`` after a target that is itself a level name): the default for every target no other
  directive matches;
* ``target`` or ``target=``: the same as ``target=trace`` (tracing-subscriber 0.3: a directive without a level
  enables every level; ``LevelFilter::from_str("")`` would say ERROR, but the directive parser never calls it
  for an empty level);
* ``target[span{field=value}]=level``: a span directive. Our only span is the attempt span ``login{attempt=..}``
  (DECISIONS D-10), taken to be created under the ``codex_login`` target: ``[login]=debug``,
  ``codex_login[login]=debug`` or ``[login{attempt=la_3f9c1a2b}]=debug`` enable every event inside it (of any
  target, as tracing's span scope does) at that level. Field values are compared as literal strings, not as
  tracing's regular expressions; a span of another name, or a field other than ``attempt``, matches nothing.

Levels are ``trace``, ``debug``, ``info``, ``warn``, ``error`` and ``off`` (any case), or tracing's digits
``0`` (off) to ``5`` (trace). Targets are compared in tracing's ``::`` spelling (``codex_login.server`` in a
directive or a logger name means ``codex_login::server``; tracing itself would reject the ``.`` spelling).

Matching is tracing's: a directive's target matches every target that *starts with* it as a string
(``codex`` matches ``codex_login::server`` and ``codex_cli``), and the most specific (longest) matching target
wins; for the same target the later directive wins; with no match the event is disabled.

Invalid directives: the reference builds its filter with ``EnvFilter::try_from_default_env()`` and falls back
to :data:`DEFAULT_LOGIN_FILTER` when that fails, and it fails when *any* directive is invalid (unknown level,
odd characters, a malformed span). So one invalid directive discards the whole ``RUST_LOG`` here too; the
rejected directives are kept in :attr:`EnvFilter.invalid` so ``doctor`` can show them.

Where we still differ on purpose: whitespace around a directive or its ``=`` is ignored (tracing rejects it),
and a ``RUST_LOG`` that is set but empty or only commas gives the default (tracing would build an empty filter
and the log would stay empty).

Python has no TRACE level: events below ``logging.DEBUG`` (for example :data:`TRACE` = 5) are tracing's TRACE.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final, NamedTuple

from codex_login.diagnostics.record import attempt_of, target_of

__all__ = ["DEFAULT_LOGIN_FILTER", "OFF", "TRACE", "EnvFilter", "from_env", "parse_level"]

DEFAULT_LOGIN_FILTER: Final = "codex_cli=info,codex_core=info,codex_login=info"
TRACE: Final = 5
OFF: Final = logging.CRITICAL + 50  # above every level: a logger at OFF lets nothing through

# The lowest levelno a directive at this level lets through. TRACE lets everything from 1 up through
# (0 would mean NOTSET to logging, which inherits the parent's level instead).
_THRESHOLDS: Final = {
    "trace": 1,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "off": OFF,
    "5": 1,
    "4": logging.DEBUG,
    "3": logging.INFO,
    "2": logging.WARNING,
    "1": logging.ERROR,
    "0": OFF,
}
_NAMES: Final = {
    1: "trace",
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    OFF: "off",
}
# tracing-subscriber's directive grammar: a target of word characters, ``:`` and ``-`` (plus our ``.``), then
# an optional ``[span{fields}]``, then an optional ``=level`` whose level may be empty.
_DIRECTIVE_RE: Final = re.compile(r"(?P<target>[\w.:-]+)?\s*(?P<span>\[[^\]]*\])?\s*(?:=\s*(?P<level>\S*))?\Z")
_SPAN_RE: Final = re.compile(r"(?P<name>[^\]{]+)?(?:\{(?P<fields>[^}]*)\})?\Z")
_FIELD_RE: Final = re.compile(r"\w[\w.]*(?:=[^,]+)?")
# The attempt span (DECISIONS D-10) as tracing would see it: its name, target and one field.
_SPAN_NAME: Final = "login"
_SPAN_TARGET: Final = "codex_login"
_SPAN_FIELD: Final = "attempt"


class _SpanDirective(NamedTuple):
    text: str
    target: str | None
    name: str | None
    fields: tuple[tuple[str, str | None], ...]
    level: int

    def matches(self, attempt: str) -> bool:
        if self.target is not None and not _SPAN_TARGET.startswith(self.target):
            return False
        if self.name is not None and self.name != _SPAN_NAME:
            return False
        return all(
            name == _SPAN_FIELD and (value is None or value.strip('"') == attempt) for name, value in self.fields
        )


def parse_level(text: str) -> int | None:
    """The threshold levelno for a tracing level name (``"warn"`` -> 30), ``None`` if it is not one."""
    return _THRESHOLDS.get(text.strip().lower())


def _normalize_target(target: str) -> str:
    return target_of(target) if "." in target else target


def _parse_span(text: str, target: str | None, level: int) -> _SpanDirective | None:
    match = _SPAN_RE.match(text[1:-1])
    if match is None:
        return None
    name = (match.group("name") or "").strip() or None
    fields: list[tuple[str, str | None]] = []
    for field in filter(None, (part.strip() for part in (match.group("fields") or "").split(","))):
        if _FIELD_RE.fullmatch(field) is None:
            return None
        key, eq, value = field.partition("=")
        fields.append((key, value if eq else None))
    span_text = text if target is None else f"{target}{text}"
    return _SpanDirective(f"{span_text}={_NAMES.get(level, str(level))}", target, name, tuple(fields), level)


class EnvFilter(logging.Filter):
    """Parsed ``RUST_LOG`` directives. Usable as a :class:`logging.Filter` on a handler."""

    def __init__(
        self,
        directives: Mapping[str, int] | None = None,
        default: int | None = None,
        invalid: tuple[str, ...] = (),
        spans: tuple[_SpanDirective, ...] = (),
    ) -> None:
        super().__init__()
        self._targets: dict[str, int] = dict(directives or {})
        # Longest first, so the first target that is a prefix of an event's target is the most specific one.
        self._by_length = sorted(self._targets.items(), key=lambda item: len(item[0]), reverse=True)
        self._default = default
        self._spans = spans
        self.invalid = invalid
        self._cache: dict[str, int | None] = {}
        self._span_cache: dict[str, int | None] = {}

    # -- construction

    @classmethod
    def parse(cls, spec: str) -> EnvFilter:
        """Parse directives. Invalid ones are skipped here (see :attr:`invalid`); :meth:`from_env`, like
        ``try_from_default_env``, rejects the whole spec when there is any."""
        targets: dict[str, int] = {}
        spans: dict[str, _SpanDirective] = {}
        default: int | None = None
        invalid: list[str] = []
        for raw in spec.split(","):
            directive = raw.strip()
            if not directive:
                continue
            level = parse_level(directive)
            if level is not None:
                default = level
                continue
            match = _DIRECTIVE_RE.match(directive)
            if match is None or (match.group("target") is None and match.group("span") is None):
                invalid.append(directive)
                continue
            level_text = match.group("level")
            level = parse_level(level_text) if level_text else _THRESHOLDS["trace"]
            if level is None:
                invalid.append(directive)
                continue
            target = match.group("target")
            if target is not None and parse_level(target) is not None:
                target = None  # tracing reads ``info=debug`` as a bare ``debug``
            if target is not None:
                target = _normalize_target(target)
            if match.group("span") is not None:
                span = _parse_span(match.group("span"), target, level)
                if span is None:
                    invalid.append(directive)
                    continue
                spans.pop(span.text.rpartition("=")[0], None)
                spans[span.text.rpartition("=")[0]] = span
            elif target is None:
                default = level
            else:
                targets.pop(target, None)  # a later directive for the target wins
                targets[target] = level
        return cls(targets, default, tuple(invalid), tuple(spans.values()))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvFilter:
        """``RUST_LOG`` when it is set, non-empty and wholly valid, else :data:`DEFAULT_LOGIN_FILTER`."""
        value = env.get("RUST_LOG", "")
        if value.strip():
            parsed = cls.parse(value)
            if parsed.has_directives and not parsed.invalid:
                return parsed
            default = cls.parse(DEFAULT_LOGIN_FILTER)
            default.invalid = parsed.invalid
            return default
        return cls.parse(DEFAULT_LOGIN_FILTER)

    # -- queries

    @property
    def has_directives(self) -> bool:
        return bool(self._targets) or bool(self._spans) or self._default is not None

    @property
    def spec(self) -> str:
        """The valid directives, normalized (``codex_login=debug,warn``)."""
        parts = [f"{target}={_NAMES.get(level, str(level))}" for target, level in self._targets.items()]
        parts.extend(span.text for span in self._spans)
        if self._default is not None:
            parts.append(_NAMES.get(self._default, str(self._default)))
        return ",".join(parts)

    def __repr__(self) -> str:
        return f"EnvFilter({self.spec!r})"

    def _threshold(self, target: str) -> int | None:
        cached = self._cache.get(target, -1)
        if cached != -1:
            return cached
        threshold: int | None = self._default
        for prefix, level in self._by_length:
            if target.startswith(prefix):
                threshold = level
                break
        if len(self._cache) < 1024:
            self._cache[target] = threshold
        return threshold

    def _span_threshold(self, attempt: str) -> int | None:
        cached = self._span_cache.get(attempt, -1)
        if cached != -1:
            return cached
        levels = [span.level for span in self._spans if span.matches(attempt)]
        threshold = min(levels) if levels else None
        if len(self._span_cache) < 64:
            self._span_cache[attempt] = threshold
        return threshold

    def enabled(self, target: str, levelno: int, attempt: str | None = None) -> bool:
        """Whether an event of ``target`` (``::`` or ``.`` spelling) at ``levelno`` passes; ``attempt`` is the
        ID of the attempt span the event is inside, if any."""
        if attempt is not None and self._spans:
            span_threshold = self._span_threshold(attempt)
            if span_threshold is not None and levelno >= span_threshold:
                return True
        threshold = self._threshold(_normalize_target(target))
        return threshold is not None and levelno >= threshold

    def max_level_for(self, prefix: str) -> int:
        """The lowest levelno any target starting with ``prefix`` lets through (:data:`OFF` if none).

        Set a logger to this level so records the filter would drop are not even created.
        """
        prefix = _normalize_target(prefix)
        base = self._threshold(prefix)
        lowest = OFF if base is None else base
        # A longer directive that starts with the prefix can be the most specific one for a target below it.
        for target, level in self._targets.items():
            if target.startswith(prefix):
                lowest = min(lowest, level)
        # A span directive enables events of any target inside the span.
        for span in self._spans:
            lowest = min(lowest, span.level)
        return lowest

    def filter(self, record: logging.LogRecord) -> bool:
        return self.enabled(target_of(record.name), record.levelno, attempt_of(record))


def from_env(env: Mapping[str, str]) -> EnvFilter:
    """See :meth:`EnvFilter.from_env`."""
    return EnvFilter.from_env(env)
