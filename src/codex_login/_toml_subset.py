"""``tomllib.loads`` for the plain config.toml files most people have, without importing ``tomllib``.

``tomllib`` imports ``typing``, ``re``, ``string``, ``datetime`` and more: reading a config.toml costs
``codex-login status`` more than one and a half times what starting the interpreter does. :func:`loads` reads
a small subset of TOML itself and answers None for anything else, so that ``tomllib`` decides every other
document, valid or not, exactly as before. The subset, one statement per line:

* blank lines and ``#`` comments (no control characters but tab);
* ``[table.headers]`` of bare (``A-Za-z0-9_-``) or quoted keys, each naming a table not seen before, under
  tables (never under a value);
* ``key = value`` with a single bare or quoted key that is new in its table; the value a string without
  escapes on one line (``"..."`` or ``'...'``), ``true``, ``false``, a decimal integer of up to 18 digits
  without ``_`` or leading zeros, or a one-line array of those.

Quoted keys follow the string rules. Anything outside this (escapes, floats, dates, inline tables, dotted
keys, arrays of tables, multi-line values, a table or key defined twice, a stray character) returns None.
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module when there is a config.toml, and that line would import the ``__future__`` module.

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SPACE = " \t"
_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_DIGITS = frozenset("0123456789")
#: What TOML refuses in strings and comments: the control characters but tab.
_CONTROL = frozenset(chr(code) for code in (*range(0x09), *range(0x0A, 0x20), 0x7F))
_MAX_INTEGER_DIGITS = 18


class _Outside(Exception):
    """The document is not in the subset (it may still be TOML): ``tomllib`` decides."""


def loads(text: str) -> "dict[str, Any] | None":
    """What ``tomllib.loads(text)`` returns, when ``text`` is in the subset; else None."""
    try:
        return _document(text)
    except _Outside:
        return None


def _document(text: str) -> "dict[str, Any]":
    root: dict[str, Any] = {}
    table = root
    for line in text.split("\n"):
        pos = _skip_space(line, 0)
        if pos == len(line) or line[pos] == "#":
            _end(line, pos)
        elif line[pos] == "[":
            if line.startswith("[", pos + 1):
                raise _Outside  # an array of tables
            keys, pos = _keys(line, pos + 1)
            if line[pos : pos + 1] != "]":
                raise _Outside
            _end(line, pos + 1)
            table = _new_table(root, keys)
        else:
            keys, pos = _keys(line, pos)
            if len(keys) != 1 or line[pos : pos + 1] != "=" or keys[0] in table:
                raise _Outside  # a dotted key, no ``=``, or a key defined twice
            value, pos = _value(line, _skip_space(line, pos + 1), in_array=False)
            _end(line, pos)
            table[keys[0]] = value
    return root


def _new_table(root: "dict[str, Any]", keys: list[str]) -> "dict[str, Any]":
    table = root
    for key in keys[:-1]:
        below = table.setdefault(key, {})  # a table implied by the header, like tomllib creates it
        if not isinstance(below, dict):
            raise _Outside  # under a value
        table = below
    if keys[-1] in table:
        raise _Outside  # defined before, if only as the parent of another table
    new: dict[str, Any] = {}
    table[keys[-1]] = new
    return new


def _skip_space(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in _SPACE:
        pos += 1
    return pos


def _end(line: str, pos: int) -> None:
    """Only spaces and a comment may follow a statement."""
    pos = _skip_space(line, pos)
    if pos < len(line) and (line[pos] != "#" or not _CONTROL.isdisjoint(line[pos + 1 :])):
        raise _Outside


def _keys(line: str, pos: int) -> tuple[list[str], int]:
    """A key or dotted key (with spaces around the dots) and the position after it and its spaces."""
    keys: list[str] = []
    while True:
        pos = _skip_space(line, pos)
        if line[pos : pos + 1] in ('"', "'"):
            key, pos = _string(line, pos)
        else:
            start = pos
            while pos < len(line) and line[pos] in _BARE_KEY:
                pos += 1
            if pos == start:
                raise _Outside
            key = line[start:pos]
        keys.append(key)
        pos = _skip_space(line, pos)
        if line[pos : pos + 1] != ".":
            return keys, pos
        pos += 1


def _string(line: str, pos: int) -> tuple[str, int]:
    """A one-line string without escapes at ``pos`` (its quote) and the position after it."""
    quote = line[pos]
    if line.startswith(quote * 3, pos):
        raise _Outside  # multi-line (or an empty string followed by a quote: tomllib decides)
    end = line.find(quote, pos + 1)
    content = line[pos + 1 : end]
    if end < 0 or not _CONTROL.isdisjoint(content) or (quote == '"' and "\\" in content):
        raise _Outside
    return content, end + 1


def _value(line: str, pos: int, *, in_array: bool) -> "tuple[Any, int]":
    char = line[pos : pos + 1]
    if char in ('"', "'"):
        return _string(line, pos)
    if line.startswith("true", pos):
        return True, _word_end(line, pos + 4)
    if line.startswith("false", pos):
        return False, _word_end(line, pos + 5)
    if char == "[" and not in_array:
        return _array(line, pos + 1)
    start = pos + 1 if char in ("+", "-") else pos
    end = start
    while end < len(line) and line[end] in _DIGITS:
        end += 1
    digits = line[start:end]
    if not digits or len(digits) > _MAX_INTEGER_DIGITS or (digits[0] == "0" and len(digits) > 1):
        raise _Outside  # not a value of the subset (a float, a date, an inline table...) or not TOML
    return int(line[pos:end]), _word_end(line, end)


def _word_end(line: str, pos: int) -> int:
    """A ``true``, ``false`` or number ends at a space, a comma, a bracket, a comment or the line's end."""
    if pos < len(line) and line[pos] not in " \t,]#":
        raise _Outside
    return pos


def _array(line: str, pos: int) -> "tuple[list[Any], int]":
    items: list[Any] = []
    while True:
        pos = _skip_space(line, pos)
        if line[pos : pos + 1] == "]":
            return items, pos + 1
        item, pos = _value(line, pos, in_array=True)
        items.append(item)
        pos = _skip_space(line, pos)
        if line[pos : pos + 1] == ",":
            pos += 1
        elif line[pos : pos + 1] != "]":
            raise _Outside
