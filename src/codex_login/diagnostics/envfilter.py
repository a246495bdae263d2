"""A subset of tracing's ``EnvFilter`` (the ``RUST_LOG`` directive syntax) over :mod:`logging`.

Syntax: comma-separated directives, each one of

* ``target=level``: events of ``target`` and its submodules at ``level`` or more severe;
* ``level``: the default for every target no other directive matches;
* ``target``: the same as ``target=trace``.

Levels are ``trace``, ``debug``, ``info``, ``warn``, ``error`` and ``off`` (any case), or tracing's digits
``0`` (off) to ``5`` (trace). Targets are compared in tracing's ``::`` spelling (``codex_login.server`` in a
directive or a logger name means ``codex_login::server``).

Matching, where this differs from tracing on purpose: a directive's target matches the same target and the
targets *below it on a module boundary* (``codex_login`` matches ``codex_login::server`` but not
``codex_login_extra``; tracing compares plain string prefixes). The most specific (longest) matching target
wins; for the same target the later directive wins; with no match the event is disabled, as in tracing.

Invalid directives (span filters ``target[span]=..``, field filters, unknown levels, odd characters) are
ignored, as ``EnvFilter::from_default_env`` does; they are kept in :attr:`EnvFilter.invalid` so ``doctor``
can show them. A ``RUST_LOG`` that is unset, empty or holds no valid directive gives
:data:`DEFAULT_LOGIN_FILTER`.

Python has no TRACE level: events below ``logging.DEBUG`` (for example :data:`TRACE` = 5) are tracing's TRACE.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Final

from codex_login.diagnostics.record import target_of

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
_TARGET_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:(?:::|\.)[A-Za-z_][A-Za-z0-9_\-]*)*\Z")


def parse_level(text: str) -> int | None:
    """The threshold levelno for a tracing level name (``"warn"`` -> 30), ``None`` if it is not one."""
    return _THRESHOLDS.get(text.strip().lower())


def _normalize_target(target: str) -> str:
    return target_of(target) if "." in target else target


class EnvFilter(logging.Filter):
    """Parsed ``RUST_LOG`` directives. Usable as a :class:`logging.Filter` on a handler."""

    def __init__(
        self, directives: Mapping[str, int] | None = None, default: int | None = None, invalid: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self._targets: dict[str, int] = dict(directives or {})
        self._default = default
        self.invalid = invalid
        self._cache: dict[str, int | None] = {}

    # -- construction

    @classmethod
    def parse(cls, spec: str) -> EnvFilter:
        """Parse directives; invalid ones are skipped (see :attr:`invalid`)."""
        targets: dict[str, int] = {}
        default: int | None = None
        invalid: list[str] = []
        for raw in spec.split(","):
            directive = raw.strip()
            if not directive:
                continue
            if "=" in directive:
                target, _, level_text = directive.rpartition("=")
                target = target.strip()
                level = parse_level(level_text)
                if level is None or not target or _TARGET_RE.match(target) is None:
                    invalid.append(directive)
                    continue
                targets.pop(_normalize_target(target), None)  # a later directive for the target wins
                targets[_normalize_target(target)] = level
                continue
            level = parse_level(directive)
            if level is not None:
                default = level
            elif _TARGET_RE.match(directive) is not None:
                targets.pop(_normalize_target(directive), None)
                targets[_normalize_target(directive)] = _THRESHOLDS["trace"]
            else:
                invalid.append(directive)
        return cls(targets, default, tuple(invalid))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvFilter:
        """``RUST_LOG`` when it is set and holds a valid directive, else :data:`DEFAULT_LOGIN_FILTER`."""
        value = env.get("RUST_LOG", "")
        if value.strip():
            parsed = cls.parse(value)
            if parsed.has_directives:
                return parsed
            default = cls.parse(DEFAULT_LOGIN_FILTER)
            default.invalid = parsed.invalid
            return default
        return cls.parse(DEFAULT_LOGIN_FILTER)

    # -- queries

    @property
    def has_directives(self) -> bool:
        return bool(self._targets) or self._default is not None

    @property
    def spec(self) -> str:
        """The valid directives, normalized (``codex_login=debug,warn``)."""
        parts = [f"{target}={_NAMES.get(level, str(level))}" for target, level in self._targets.items()]
        if self._default is not None:
            parts.append(_NAMES.get(self._default, str(self._default)))
        return ",".join(parts)

    def __repr__(self) -> str:
        return f"EnvFilter({self.spec!r})"

    def _threshold(self, target: str) -> int | None:
        cached = self._cache.get(target, -1)
        if cached != -1:
            return cached
        probe = target
        threshold: int | None = self._default
        while True:
            found = self._targets.get(probe)
            if found is not None:
                threshold = found
                break
            cut = probe.rfind("::")
            if cut < 0:
                break
            probe = probe[:cut]
        if len(self._cache) < 1024:
            self._cache[target] = threshold
        return threshold

    def enabled(self, target: str, levelno: int) -> bool:
        """Whether an event of ``target`` (``::`` or ``.`` spelling) at ``levelno`` passes."""
        threshold = self._threshold(_normalize_target(target))
        return threshold is not None and levelno >= threshold

    def max_level_for(self, prefix: str) -> int:
        """The lowest levelno any target at or below ``prefix`` lets through (:data:`OFF` if none).

        Set a logger to this level so records the filter would drop are not even created.
        """
        prefix = _normalize_target(prefix)
        base = self._threshold(prefix)
        lowest = OFF if base is None else base
        below = prefix + "::"
        for target, level in self._targets.items():
            if target.startswith(below):
                lowest = min(lowest, level)
        return lowest

    def filter(self, record: logging.LogRecord) -> bool:
        return self.enabled(target_of(record.name), record.levelno)


def from_env(env: Mapping[str, str]) -> EnvFilter:
    """See :meth:`EnvFilter.from_env`."""
    return EnvFilter.from_env(env)
