"""The event catalogue is documented (ASVS 16.1.1: a logging inventory) and its messages are constants.

docs/diagnostics.md's table is checked against the code both ways: every event function of
``codex_login.diagnostics.events`` is called somewhere in the package and has a row with its level(s), every
target it can be written under and its fields in the order they are written; every row belongs to such a function.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codex_login.diagnostics import events
from codex_login.diagnostics.record import fields_of, target_of
from tests.test_advice import TRANSPORT_KINDS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "diagnostics.md"
SRC = ROOT / "src" / "codex_login"
EVENTS_PY = SRC / "diagnostics" / "events.py"
LOGGERS = {"CLI": events.CLI, "SERVER": events.SERVER, "DEVICE": events.DEVICE, "AUTH": events.AUTH}
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR}
# Arguments that decide the level: login finished is INFO for a success and WARN for everything else.
VARIANTS: dict[str, list[dict[str, object]]] = {"finished": [{"outcome": "success"}, {"outcome": "error"}]}


def catalogue() -> dict[str, str]:
    return {name: value for name, value in vars(events).items() if name.startswith("MSG_") and isinstance(value, str)}


def test_every_event_message_is_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    missing = [message for message in catalogue().values() if f"`{message}`" not in doc]
    assert missing == []


def test_event_messages_are_unique_single_lines() -> None:
    messages = list(catalogue().values())
    assert len(messages) == len(set(messages)) > 40
    for message in messages:
        assert message == message.strip() and "\n" not in message and "%" not in message


# --- the table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    levels: frozenset[int]
    targets: frozenset[str]
    fields: tuple[str, ...]


def _without_parentheses(text: str) -> str:
    out, depth = [], 0
    for char in text:
        depth += char == "("
        if depth == 0:
            out.append(char)
        depth -= char == ")" and depth > 0
    return "".join(out)


def documented_fields(cell: str) -> tuple[str, ...]:
    """The field names of a Fields cell: the comma-separated names before any ``;`` note, explanations in
    parentheses left out; ``—`` for none."""
    names = _without_parentheses(cell).split(";", 1)[0].strip()
    if names == "—":
        return ()
    fields = tuple(name.strip() for name in names.split(","))
    assert all(re.fullmatch(r"[a-z_]+", name) for name in fields), f"not a list of field names: {cell!r}"
    return fields


def table() -> dict[str, Row]:
    section = DOC.read_text(encoding="utf-8").split("## Event catalogue", 1)[1]
    rows: dict[str, Row] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 4 or cells[0] in ("Level", "---"):
            continue
        level, target, message, fields = cells
        name = re.fullmatch(r"`([^`]+)`", message)
        assert name, f"one message per row: {line!r}"
        assert name[1] not in rows, f"documented twice: {name[1]!r}"
        rows[name[1]] = Row(
            levels=frozenset(LEVELS[word.strip()] for word in level.split("/")),
            targets=frozenset(word.strip() for word in target.split(",")),
            fields=documented_fields(fields),
        )
    assert len(rows) > 40
    return rows


# --- what the code emits ------------------------------------------------------------------------------


def event_functions() -> dict[str, types.FunctionType]:
    return {
        name: value
        for name, value in vars(events).items()
        if inspect.isfunction(value) and value.__module__ == events.__name__ and not name.startswith("_")
    }


def _dummy(annotation: object) -> object:
    """A value of the annotated type; for ``X | None`` an X, so that optional fields are written too."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for kind, value in ((bool, True), (int, 1), (float, 1.0), (str, "x")):
        if kind in options:
            return value
    raise AssertionError(f"no dummy value for {annotation!r}")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    handler = _Records()
    saved = [(logger, logger.level) for logger in LOGGERS.values()]
    for logger in LOGGERS.values():
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def emitted(function: types.FunctionType, records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """Call an event function with made-up arguments (each variant of :data:`VARIANTS`) and return its records."""
    hints = typing.get_type_hints(function)
    base = {name: _dummy(hints[name]) for name in inspect.signature(function).parameters if name != "logger"}
    start = len(records)
    for variant in VARIANTS.get(function.__name__, [{}]):
        function(**{**base, **variant})
    return records[start:]


# --- where the code calls them ------------------------------------------------------------------------


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, str | None, str]]:
    """Every call in a module as (call, name of the enclosing function, name called)."""

    def walk(node: ast.AST, function: str | None) -> Iterator[tuple[ast.Call, str | None, str]]:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call):
                callee = child.func
                if isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name):
                    yield child, function, f"{callee.value.id}.{callee.attr}"
                elif isinstance(callee, ast.Name):
                    yield child, function, callee.id
            yield from walk(child, inner)

    yield from walk(tree, None)


def _logger_argument(call: ast.Call, position: int | None) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "logger":
            return keyword.value
    if position is not None and position < len(call.args):
        return call.args[position]
    return None


def targets_by_event() -> dict[str, set[str]]:
    """For each event function called in the package, the loggers (LOGGERS keys) it can write through.

    A ``logger`` argument is ``events.X``, or the ``logger`` parameter of the enclosing function (oauth.py
    passes its caller's on), followed to that function's own callers; no argument means the default.
    Loggers that are not the catalogue's (the rehearsal's disabled one) write nothing and are left out.
    """
    calls: list[tuple[ast.Call, str | None, str]] = []
    for path in sorted(SRC.rglob("*.py")):
        if path != EVENTS_PY:
            calls.extend(_calls(ast.parse(path.read_text(encoding="utf-8"))))
    # Functions that take a logger: its position (None: keyword-only) and its default, as a LOGGERS key.
    takers: dict[str, tuple[int | None, str | None]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            positional = [a.arg for a in node.args.args]
            pairs: list[tuple[str, ast.expr | None]] = list(
                zip(reversed(positional), reversed(node.args.defaults), strict=False)
            )
            pairs += [(a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)]
            if "logger" not in positional + [a.arg for a in node.args.kwonlyargs]:
                continue
            default = dict(pairs).get("logger")  # events.SERVER in oauth.py, SERVER in events.py
            if isinstance(default, ast.Attribute):
                default = ast.Name(default.attr)
            takers[node.name] = (
                positional.index("logger") if "logger" in positional else None,
                default.id if isinstance(default, ast.Name) else None,
            )

    def loggers_passed_to(name: str, seen: frozenset[str]) -> set[str]:
        position, default = takers[name]
        found: set[str] = set()
        for call, enclosing, callee in calls:
            # An event function is always called as events.<name>; oauth.py's helpers by their bare name.
            if callee != (f"events.{name}" if name in event_functions() else name):
                continue
            expr = _logger_argument(call, position)
            if expr is None:
                found.update([default] if default else [])
            elif isinstance(expr, ast.Attribute) and expr.attr in LOGGERS:
                found.add(expr.attr)
            elif isinstance(expr, ast.Name) and expr.id == "logger" and enclosing in takers and enclosing not in seen:
                found |= loggers_passed_to(enclosing, seen | {name})
        return found

    called = {callee.removeprefix("events.") for _, _, callee in calls if callee.startswith("events.")}
    return {
        name: loggers_passed_to(name, frozenset()) if name in takers else set()
        for name in event_functions()
        if name in called
    }


# --- the checks ---------------------------------------------------------------------------------------


def test_every_event_function_is_called_by_the_package() -> None:
    assert sorted(set(event_functions()) - set(targets_by_event())) == []


def test_every_event_is_documented_with_its_level_target_and_fields(records: list[logging.LogRecord]) -> None:
    rows = table()
    targets = targets_by_event()
    seen: set[str] = set()
    for name, function in event_functions().items():
        written = emitted(function, records)
        assert len({record.msg for record in written}) == 1, name
        message = str(written[0].msg)
        seen.add(message)
        row = rows.get(message)
        assert row is not None, f"{message!r} has no row"
        assert {record.levelno for record in written} == row.levels, message
        assert [tuple(fields_of(record)) for record in written] == [row.fields] * len(written), message
        if "logger" in inspect.signature(function).parameters:  # written through whichever its callers pass
            written_to = {target_of(LOGGERS[logger].name) for logger in targets[name]}
        else:
            written_to = {target_of(record.name) for record in written}
        assert written_to == row.targets, message
    assert sorted(set(rows) - seen) == []


def test_the_transport_kinds_are_all_documented() -> None:
    section = DOC.read_text(encoding="utf-8").split("## Event catalogue", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    (row,) = [line for line in rows if line.split("|")[3].strip() == f"`{events.MSG_TRANSPORT_CLASSIFIED}`"]
    listed = re.search(r"kind \(([^;)]*)", row)
    assert listed is not None
    assert [kind.strip() for kind in listed[1].split(",")] == list(TRANSPORT_KINDS)


def test_the_field_parser_reads_names_and_skips_notes() -> None:
    assert documented_fields("reason (a, b), path; at most 20") == ("reason", "path")
    assert documented_fields("—") == ()
    with pytest.raises(AssertionError):
        documented_fields("count: the refusals")
