"""tracing-subscriber's text and JSON line formats, and readers that invert them.

Text (``TracingTextFormatter``) is the default ``fmt`` layer with ANSI off and the target on::

    2026-03-06T22:09:03.431699Z  INFO login{attempt=la_3f9c1a2b}: codex_login::server: received login callback \
path=/auth/callback has_code=false

(one line; wrapped here).

* timestamp: RFC 3339 UTC with microseconds and ``Z`` (from ``record.created``; the ``TZ`` variable plays no
  part). Instants past year 9999 are written as the last representable microsecond of 9999.
* level right-aligned to width 5 (``ERROR``, `` WARN``, `` INFO``, ``DEBUG``; anything below DEBUG is ``TRACE``).
* ``login{attempt=<id>}: `` when the record belongs to an attempt (the span of DECISIONS D-10).
* target (``codex_login.server`` -> ``codex_login::server``), ``: ``, the message, then `` name=value`` per field.

Values follow tracing: a plain ``str`` is Debug-quoted (``error_code="access_denied"``), a
:class:`~codex_login.diagnostics.record.Display` value is written without quotes, bools and numbers as
themselves, ``None`` fields are left out. Every piece of text (message, values, target, attempt) is escaped
the Rust Debug way (``\\\\``, ``\\"``, ``\\n``, ``\\r``, ``\\t``, ``\\0``, everything else invisible as
``\\u{1b}``): C0, DEL, C1, U+2028/U+2029, bidi controls (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069),
U+FEFF and lone surrogates. So no input can produce a second line or a terminal escape sequence (D-5).

Reading back (``parse_text_line``). The rule that splits a line into message and fields:

* a field starts at a space followed by ``name=`` where ``name`` matches ``[a-z_][a-z0-9_.]*``;
* a value starting with ``"`` is a quoted string and runs to its closing unescaped ``"``;
* any other value (and the message) runs to the next field start or the end of the line.

The formatter keeps that rule unambiguous: inside unquoted text (the message, Display values, the target,
the attempt) a space that would be read as a field start is written ``\\u{20}``, as is a space right
before a final ``…``; a raw ``"`` is always escaped, so an unquoted value never starts with one; the target
never holds a raw space or ``{`` and the attempt never a raw space or ``}``. Field names
that do not match the pattern are rewritten (lowercased, other characters replaced by ``_``), and a field
called ``message`` is written ``message_`` (it would collide with the message in JSON).

Limits (security R-6): each value (and the message) is capped at 1024 characters after escaping, cut at an
escape boundary and marked with ``…`` (inside the quotes for quoted values). A line is capped at 4096 UTF-8
bytes: fields that do not fit are dropped and the line ends with `` …``; the reader reports that as
``truncated``. Unquoted values read back as ``bool`` for ``true``/``false`` and ``int`` for canonical
integers, otherwise as ``str``; quoted values are always ``str``.

JSON (``TracingJsonFormatter``, DECISIONS D-12) is tracing-subscriber's JSON formatter shape::

    {"timestamp":"...Z","level":"INFO","fields":{"message":"...","path":"/auth/callback"},
     "target":"codex_login::server","span":{"attempt":"la_...","name":"login"},
     "spans":[{"attempt":"la_...","name":"login"}]}

written with ``ensure_ascii=True`` (every control and non-ASCII character escaped), strings capped like the
text format and the line kept under 4096 bytes (values are cut shorter, then trailing fields dropped with
``"truncated":true`` added to ``fields``).

Neither formatter ever appends ``exc_info`` or ``stack_info``: tracebacks can carry URLs and secrets (R-7).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from codex_login.diagnostics.record import Display, FieldValue, attempt_of, fields_of, target_of

__all__ = [
    "FIELD_VALUE_LIMIT",
    "LINE_LIMIT",
    "SPAN_NAME",
    "TRUNCATION_MARK",
    "ParsedLine",
    "ParsedValue",
    "TracingJsonFormatter",
    "TracingTextFormatter",
    "escape_debug",
    "format_timestamp",
    "level_label",
    "parse_json_line",
    "parse_line",
    "parse_text_line",
    "render_json_line",
    "render_text_line",
]

FIELD_VALUE_LIMIT: Final = 1024
LINE_LIMIT: Final = 4096
SPAN_NAME: Final = "login"
TRUNCATION_MARK: Final = "…"
_TARGET_LIMIT: Final = 256
_ATTEMPT_LIMIT: Final = 64
_NAME_LIMIT: Final = 64
_LINE_MARK: Final = " " + TRUNCATION_MARK
_LINE_MARK_BYTES: Final = len(_LINE_MARK.encode("utf-8"))
_INT_BITS_LIMIT: Final = 1024  # about 309 digits; CPython refuses to print ints past 4300 digits
_LARGE_INT: Final = "<large-int>"

ParsedValue = str | bool | int
Scrubber = Callable[[str], str]

_UTC: Final = UTC
_MAX_TIMESTAMP: Final = "9999-12-31T23:59:59.999999Z"
_MIN_TIMESTAMP: Final = "0001-01-01T00:00:00.000000Z"
_LAST_SECOND_OF_9999: Final = 253402300799.0  # 9999-12-31T23:59:59Z
# The whole second last formatted and its "2026-03-06T22:09:03." text.
_LAST_SECOND: list[tuple[int, str]] = [(-1, "")]
# Memo tables of pure functions of strings (field names, line heads, messages), for the catalogue's
# constants (issue 9); capped so that odd input cannot grow them.
_CACHE_LIMIT: Final = 256
_MEMO_TEXT_LIMIT: Final = 128  # the longest catalogue message is under 100 characters
_FIELD_NAMES: dict[str, str] = {}
_FIELD_KEYS: dict[str, str] = {}
_HEADS: dict[tuple[int, str, str | None], str] = {}
_MESSAGES: dict[str, str] = {}
_JSON_QUOTE: list[Callable[[str], str] | None] = [None]  # json's string encoder, once the first JSON line needs it

# --------------------------------------------------------------------------------------------- escaping

# Classes with non-Latin-1 ranges take milliseconds to compile: they are compiled on first use, so merely
# importing this module stays cheap.
_NEEDS_ESCAPE_SRC: Final = '[\\\\"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]'
_TARGET_ESCAPE_SRC: Final = _NEEDS_ESCAPE_SRC[:-1] + " {]"
_ATTEMPT_ESCAPE_SRC: Final = _NEEDS_ESCAPE_SRC[:-1] + " }]"


@functools.cache
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


_SIMPLE_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
# A raw space inside unquoted text that a reader would take for a field start, or for the line mark.
_AMBIGUOUS_SPACE = re.compile(" (?=[a-z_][a-z0-9_.]*=)| (?=" + TRUNCATION_MARK + r"\Z)")
_SPACE_ESCAPE: Final = "\\u{20}"
_NAME_RE = re.compile(r"[a-z_][a-z0-9_.]*\Z")
_NAME_BAD_CHARS = re.compile(r"[^a-z0-9_.]")


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    simple = _SIMPLE_ESCAPES.get(ch)
    return simple if simple is not None else f"\\u{{{ord(ch):x}}}"


def _needs_no_escape(text: str) -> bool:
    """``True`` only when the escape class cannot match ``text`` (issue 9: most values are plain ASCII).

    Exact as a shortcut: every character of the class other than ``\\`` and ``"`` is a control, format,
    line/paragraph separator or surrogate, none of which ``str.isprintable`` accepts (a test checks every
    code point). ``False`` only means "run the substitution", which stays the one definition.
    """
    return text.isprintable() and "\\" not in text and '"' not in text


def escape_debug(text: str) -> str:
    """Rust ``Debug`` escaping of ``text`` without the surrounding quotes (never contains a control char)."""
    if _needs_no_escape(text):
        return text
    return _pattern(_NEEDS_ESCAPE_SRC).sub(_escape_char, text)


def _escape_unquoted(text: str) -> str:
    escaped = text if _needs_no_escape(text) else _pattern(_NEEDS_ESCAPE_SRC).sub(_escape_char, text)
    # Both alternatives of the ambiguous-space rule need a "=" or a "…" after the space, and no escape
    # writes either, so text without them has nothing to rewrite.
    if " " in escaped and ("=" in escaped or TRUNCATION_MARK in escaped):
        escaped = _AMBIGUOUS_SPACE.sub(lambda _m: _SPACE_ESCAPE, escaped)
    return escaped


def _escape_token(text: str, source: str, brace: str) -> str:
    """Escape, also writing spaces and ``brace`` as ``\\u{..}`` (one pass): for the target and attempt."""
    if _needs_no_escape(text) and " " not in text and brace not in text:
        return text  # the usual target or attempt ID: no compiling of the class for a process's first event
    return _pattern(source).sub(_escape_char, text)


def _render_unquoted(text: str, limit: int) -> str:
    """Escaped unquoted text; if longer than ``limit``, the longest prefix that fits with a final ``…``.

    A binary search over the prefix length finds a cut that fits (space escaping makes the escaped length
    only roughly monotonic, so the cut may be a few characters short of the longest possible). The cut falls
    between two characters of ``text``, never inside an escape, and the mark is escaped with the prefix, so
    a space right before it becomes ``\\u{20}`` and cannot be read as the line mark.
    """
    if len(text) <= limit:
        escaped = _escape_unquoted(text)
        if len(escaped) <= limit:
            return escaped
    text = text[:limit]  # every character escapes to at least one, so nothing past this can fit
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(_escape_unquoted(text[:mid] + TRUNCATION_MARK)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return _escape_unquoted(text[:lo] + TRUNCATION_MARK)


def _cap_quoted(text: str, limit: int) -> str:
    if len(text) <= limit:
        escaped = escape_debug(text)
        if len(escaped) <= limit:
            return escaped
    text = text[:limit]
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(escape_debug(text[:mid])) + len(TRUNCATION_MARK) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return escape_debug(text[:lo]) + TRUNCATION_MARK


def _field_name(name: str) -> str:
    rendered = _FIELD_NAMES.get(name)
    if rendered is None:
        rendered = _fix_field_name(name)
        if len(_FIELD_NAMES) < _CACHE_LIMIT:
            _FIELD_NAMES[name] = rendered
    return rendered


def _field_key(name: str) -> str:
    """`` name=``: what precedes a field's value in a text line."""
    key = " " + _field_name(name) + "="
    if len(_FIELD_KEYS) < _CACHE_LIMIT:
        _FIELD_KEYS[name] = key
    return key


def _fix_field_name(name: str) -> str:
    if _NAME_RE.match(name) is None:
        fixed = _NAME_BAD_CHARS.sub("_", name.lower())
        if not fixed or not (fixed[0].isalpha() or fixed[0] == "_"):
            fixed = "_" + fixed
        name = fixed
    name = name[:_NAME_LIMIT]
    return "message_" if name == "message" else name


def _cap_plain(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + TRUNCATION_MARK


# --------------------------------------------------------------------------------------------- pieces


def format_timestamp(created: float) -> str:
    """``created`` (seconds since the epoch) as ``2026-03-06T22:09:03.431699Z``, always UTC."""
    if type(created) is float and 0.0 <= created < _LAST_SECOND_OF_9999:
        # issue 9: datetime + strftime cost ~4 us per event; only the microseconds change within a second.
        # The split and the rounding are datetime.fromtimestamp's own: modf, then the microseconds rounded
        # half to even (float.__round__ and _PyTime_RoundHalfEven are the same function), carried into the
        # seconds at 1_000_000. The range keeps the carry inside year 9999 and away from negative fractions.
        fraction, whole = math.modf(created)
        micros = round(fraction * 1e6)
        seconds = int(whole)
        if micros >= 1_000_000:
            micros -= 1_000_000
            seconds += 1
        cached_seconds, head = _LAST_SECOND[0]
        if cached_seconds != seconds:
            head = datetime.fromtimestamp(seconds, tz=_UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            _LAST_SECOND[0] = (seconds, head)  # one tuple, swapped whole: safe to read from any thread
        return f"{head}{micros:06d}Z"
    return _format_timestamp_slow(created)


def _format_timestamp_slow(created: float) -> str:
    try:
        moment = datetime.fromtimestamp(created, tz=_UTC)
    except (OverflowError, ValueError, OSError):
        if math.isnan(created):
            return _MIN_TIMESTAMP
        return _MAX_TIMESTAMP if created > 0 else _MIN_TIMESTAMP
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if moment.year >= 1000
        else (f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.%fZ"))
    )


def level_label(levelno: int) -> str:
    """tracing's level, right-aligned to width 5 (``" INFO"``)."""
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return " WARN"
    if levelno >= logging.INFO:
        return " INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


_LEVELNOS: Final = {
    "ERROR": logging.ERROR,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.DEBUG,
    "TRACE": 5,
}


def _record_message(record: logging.LogRecord) -> str:
    try:
        return str(record.getMessage())
    except Exception:  # a bad %-format must not lose the event (and must not echo its arguments)
        return str(record.msg)


def _scrubbed(value: str, scrubber: Scrubber | None) -> str:
    return scrubber(value) if scrubber is not None else value


def _text_value(value: object, limit: int, scrubber: Scrubber | None) -> str:
    if isinstance(value, Display):
        return _render_unquoted(_scrubbed(str.__str__(value), scrubber), limit)
    if isinstance(value, str):
        return '"' + _cap_quoted(_scrubbed(str.__str__(value), scrubber), limit) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value) if value.bit_length() <= _INT_BITS_LIMIT else _LARGE_INT
    if isinstance(value, float):
        return _render_unquoted(float.__repr__(value), limit)
    return _render_unquoted(_scrubbed(str(value), scrubber), limit)


def _text_head(levelno: int, target: str, attempt: str | None) -> str:
    """`` INFO login{attempt=la_..}: codex_login::server: ``: what follows the timestamp, the same for
    every event of one attempt and logger (issue 9: escaping it took two substitutions per event)."""
    key = (levelno, target, attempt)
    head = _HEADS.get(key)
    if head is None:
        parts = [" ", level_label(levelno), " "]
        if attempt is not None:
            attempt_text = _escape_token(attempt[:_ATTEMPT_LIMIT], _ATTEMPT_ESCAPE_SRC, "}")
            parts += [SPAN_NAME, "{attempt=", attempt_text, "}: "]
        parts += [_escape_token(target[:_TARGET_LIMIT], _TARGET_ESCAPE_SRC, "{"), ": "]
        head = "".join(parts)
        if len(_HEADS) < _CACHE_LIMIT:
            _HEADS[key] = head
    return head


def _message_text(message: str) -> str:
    """``_render_unquoted(message, FIELD_VALUE_LIMIT)``, remembered: messages are catalogue constants, the
    same few dozen on every run (issue 9). Only short ones are kept, and only so many."""
    rendered = _MESSAGES.get(message)
    if rendered is None:
        rendered = _render_unquoted(message, FIELD_VALUE_LIMIT)
        if len(message) <= _MEMO_TEXT_LIMIT and len(_MESSAGES) < _CACHE_LIMIT:
            _MESSAGES[message] = rendered
    return rendered


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def render_text_line(
    *,
    created: float,
    levelno: int,
    target: str,
    message: str,
    fields: Mapping[str, FieldValue] | Iterable[tuple[str, FieldValue]] = (),
    attempt: str | None = None,
    scrubber: Scrubber | None = None,
) -> str:
    """One text line (without the newline) from its parts. See the module docstring for the rules."""
    prefix = format_timestamp(created) + _text_head(levelno, target, attempt)
    message = _scrubbed(message, scrubber)
    budget = LINE_LIMIT - _LINE_MARK_BYTES
    line = prefix + _message_text(message)
    size = _utf8_len(line)
    for limit in (512, 256, 64):
        if size <= budget:
            break
        line = prefix + _render_unquoted(message, limit)
        size = _utf8_len(line)
    parts = [line]
    # A dict is a Mapping: checked first because isinstance against the ABC costs more than the rest.
    items = fields.items() if type(fields) is dict or isinstance(fields, Mapping) else fields
    for name, value in items:
        if value is None:  # left out, as tracing leaves out an empty Option
            continue
        if type(value) is bool:  # issue 9: most fields of the callback's events; no isinstance chain for them
            rendered = "true" if value else "false"
        else:
            rendered = _text_value(value, FIELD_VALUE_LIMIT, scrubber)
        piece = (_FIELD_KEYS.get(name) or _field_key(name)) + rendered
        piece_size = len(piece) if piece.isascii() else _utf8_len(piece)
        if size + piece_size > budget:
            parts.append(_LINE_MARK)
            break
        parts.append(piece)
        size += piece_size
    return "".join(parts)


def _json_text(value: object, limit: int, scrubber: Scrubber | None, quote: Callable[[str], str]) -> str:
    """A field value as JSON text: a string capped at ``limit``, bools and ints as themselves (ints past
    1024 bits as ``"<large-int>"``), non-finite floats as ``null``. Spelled the way json.dumps spells the
    same values: ``quote`` is its string encoder, ``int.__repr__`` and ``float.__repr__`` are what it calls."""
    if isinstance(value, str):
        return quote(_cap_plain(_scrubbed(str.__str__(value), scrubber), limit))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value) if value.bit_length() <= _INT_BITS_LIMIT else quote(_LARGE_INT)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else "null"
    return quote(_cap_plain(_scrubbed(str(value), scrubber), limit))


def render_json_line(
    *,
    created: float,
    levelno: int,
    target: str,
    message: str,
    fields: Mapping[str, FieldValue] | Iterable[tuple[str, FieldValue]] = (),
    attempt: str | None = None,
    scrubber: Scrubber | None = None,
) -> str:
    """One JSON line (without the newline) in tracing-subscriber's JSON shape."""
    quote = _JSON_QUOTE[0] or _load_json_quote()
    pairs = fields.items() if type(fields) is dict or isinstance(fields, Mapping) else fields
    items = [(n, v) for n, v in pairs if v is not None]
    message = _scrubbed(message, scrubber)
    line = ""
    for limit in (FIELD_VALUE_LIMIT, 256, 64, 16):
        line = _json_dump(
            quote,
            created=created,
            levelno=levelno,
            target=target,
            message=message,
            items=items,
            attempt=attempt,
            limit=limit,
            scrubber=scrubber,
            truncated=False,
        )
        if len(line) <= LINE_LIMIT:
            return line
    while items:
        items.pop()
        line = _json_dump(
            quote,
            created=created,
            levelno=levelno,
            target=target,
            message=message,
            items=items,
            attempt=attempt,
            limit=16,
            scrubber=scrubber,
            truncated=True,
        )
        if len(line) <= LINE_LIMIT:
            return line
    return line


def _load_json_quote() -> Callable[[str], str]:
    """json's own string encoder (``"..."`` with every non-ASCII and control character escaped), imported on
    the first JSON line so that importing this module stays cheap."""
    from json.encoder import encode_basestring_ascii

    _JSON_QUOTE[0] = encode_basestring_ascii
    return encode_basestring_ascii


def _json_dump(
    quote: Callable[[str], str],
    *,
    created: float,
    levelno: int,
    target: str,
    message: str,
    items: list[tuple[str, FieldValue]],
    attempt: str | None,
    limit: int,
    scrubber: Scrubber | None,
    truncated: bool,
) -> str:
    """The line json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False) writes for this
    fixed shape of flat objects, joined directly (issue 9: json.dumps with options builds an encoder per call
    and cost ~5 us per event). The fields go through a dict first, so a repeated name keeps its first place
    and its last value, as it did as a dict key."""
    fields: dict[str, str] = {"message": quote(_cap_plain(message, limit))}
    for name, value in items:
        fields[_field_name(name)] = _json_text(value, limit, scrubber, quote)
    if truncated:
        fields["truncated"] = "true"
    parts = [
        '{"timestamp":',
        quote(format_timestamp(created)),
        ',"level":',
        quote(level_label(levelno).strip()),
        ',"fields":{',
        ",".join([quote(key) + ":" + text for key, text in fields.items()]),
        '},"target":',
        quote(target[:_TARGET_LIMIT]),
    ]
    if attempt is not None:
        span = '{"attempt":' + quote(attempt[:_ATTEMPT_LIMIT]) + ',"name":' + quote(SPAN_NAME) + "}"
        parts += [',"span":', span, ',"spans":[', span, "]"]
    parts.append("}")
    return "".join(parts)


# --------------------------------------------------------------------------------------------- formatters


class _EventFormatter(logging.Formatter):
    """Renders a catalogue event with ``_render``; the two formats differ only in that function.

    ``scrubber`` (for example :func:`codex_login.diagnostics.redact.scrub_all`) is applied to the message
    and every text value before escaping and capping, as a second net (security R-3, R-4).
    """

    _render: Callable[..., str]

    def __init__(self, *, scrubber: Scrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self._render(
            created=record.created,
            levelno=record.levelno,
            target=target_of(record.name),
            message=_record_message(record),
            fields=fields_of(record),
            attempt=attempt_of(record),
            scrubber=self.scrubber,
        )


class TracingTextFormatter(_EventFormatter):
    """tracing-subscriber's default ``fmt`` line (ANSI off, target on), one event = one line."""

    _render = staticmethod(render_text_line)


class TracingJsonFormatter(_EventFormatter):
    """tracing-subscriber's JSON formatter shape, one object per line (DECISIONS D-12)."""

    _render = staticmethod(render_json_line)


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ParsedLine:
    """One event read back from the log, in either format."""

    timestamp: datetime
    level: str  # "ERROR", "WARN", "INFO", "DEBUG" or "TRACE"
    attempt: str | None
    target: str
    message: str
    fields: dict[str, ParsedValue] = field(default_factory=dict, hash=False)
    truncated: bool = False

    @property
    def levelno(self) -> int:
        return _LEVELNOS[self.level]


_TEXT_HEAD = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) "
    r"(?P<level>ERROR| WARN| INFO|DEBUG|TRACE) "
    r"(?:" + SPAN_NAME + r"\{attempt=(?P<attempt>(?:[^ }\\]|\\u\{[0-9a-f]{1,6}\}|\\[^ ])*)\}: )?"
    r"(?P<target>[^ ]+?):(?: |\Z)"
)
_FIELD_START = re.compile(r" ([a-z_][a-z0-9_.]*)=")
_UNESCAPE = re.compile(r"\\(?:u\{([0-9a-fA-F]{1,6})\}|(.))", re.DOTALL)
_UNESCAPE_SIMPLE: Final = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
_CANONICAL_INT = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")


def _unescape_one(match: re.Match[str]) -> str:
    hex_digits, simple = match.group(1), match.group(2)
    if hex_digits is not None:
        code = int(hex_digits, 16)
        return chr(code) if code <= 0x10FFFF else match.group()
    return _UNESCAPE_SIMPLE.get(simple, match.group())


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(_unescape_one, text) if "\\" in text else text


def _scan_quoted(text: str, start: int) -> int:
    """Index just past the closing quote of the string opening at ``start``, or -1."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    return -1


def _typed(raw: str) -> ParsedValue:
    if raw == "true":
        return True
    if raw == "false":
        return False
    if _CANONICAL_INT.match(raw):
        try:
            return int(raw)
        except ValueError:
            # Past Python's int-from-string digit limit (4,300 by default): no real field is that long, so
            # the text stays text rather than stopping `log` and `bundle` from reading the rest of the file.
            pass
    return _unescape(raw)


def _parse_timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text).astimezone(_UTC)
    except ValueError:
        return None


def parse_text_line(line: str) -> ParsedLine | None:
    """Invert :class:`TracingTextFormatter` (and read Codex's own ``codex-login.log`` lines); ``None`` if
    the line is not one."""
    line = line.rstrip("\r\n")
    head = _TEXT_HEAD.match(line)
    if head is None:
        return None
    timestamp = _parse_timestamp(head.group("ts"))
    if timestamp is None:
        return None
    rest = line[head.end() :]
    truncated = False
    first = _FIELD_START.search(rest)
    message_raw = rest[: first.start()] if first else rest
    if first is None and message_raw.endswith(_LINE_MARK):
        message_raw, truncated = message_raw[: -len(_LINE_MARK)], True
    fields: dict[str, ParsedValue] = {}
    pos = first.start() if first else len(rest)
    while pos < len(rest):
        start = _FIELD_START.match(rest, pos)
        if start is None:  # only the line mark can be left here
            truncated = True
            break
        name, vstart = start.group(1), start.end()
        if rest.startswith('"', vstart):
            end = _scan_quoted(rest, vstart)
            if end != -1 and (end == len(rest) or _FIELD_START.match(rest, end) or rest[end:] == _LINE_MARK):
                fields[name] = _unescape(rest[vstart + 1 : end - 1])
                pos = end
                if rest[end:] == _LINE_MARK:
                    truncated = True
                    break
                continue
        following = _FIELD_START.search(rest, vstart)
        vend = following.start() if following else len(rest)
        raw = rest[vstart:vend]
        if following is None and raw.endswith(_LINE_MARK):
            raw, truncated = raw[: -len(_LINE_MARK)], True
        fields[name] = _typed(raw)
        pos = vend
    attempt = head.group("attempt")
    return ParsedLine(
        timestamp=timestamp,
        level=head.group("level").strip(),
        attempt=_unescape(attempt) if attempt is not None else None,
        target=_unescape(head.group("target")),
        message=_unescape(message_raw),
        fields=fields,
        truncated=truncated,
    )


def parse_json_line(line: str) -> ParsedLine | None:
    """Invert :class:`TracingJsonFormatter`; ``None`` if the line is not one of its objects."""
    import json

    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        # The decoder recurses once per nesting level: a line of thousands of brackets is not an event, and
        # must not stop `log` or `bundle` from reading the others.
        return None
    if not isinstance(obj, dict):
        return None
    ts, level, target, raw_fields = obj.get("timestamp"), obj.get("level"), obj.get("target"), obj.get("fields")
    if not (isinstance(ts, str) and isinstance(level, str) and isinstance(target, str)):
        return None
    if level not in _LEVELNOS or not isinstance(raw_fields, dict):
        return None
    if not ts.endswith("Z"):
        return None
    timestamp = _parse_timestamp(ts)
    if timestamp is None:
        return None
    message = raw_fields.get("message", "")
    fields: dict[str, ParsedValue] = {}
    for name, value in raw_fields.items():
        if name == "message" or value is None:
            continue
        if isinstance(value, bool | int | str):
            fields[name] = value
        elif isinstance(value, float):
            fields[name] = float.__repr__(value)
        else:
            fields[name] = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    truncated = fields.get("truncated") is True
    if truncated:
        del fields["truncated"]
    attempt: str | None = None
    span = obj.get("span")
    if isinstance(span, dict) and isinstance(span.get("attempt"), str):
        attempt = span["attempt"]
    return ParsedLine(
        timestamp=timestamp,
        level=level,
        attempt=attempt,
        target=target,
        message=message if isinstance(message, str) else str(message),
        fields=fields,
        truncated=truncated,
    )


def parse_line(line: str) -> ParsedLine | None:
    """Either format: JSON when the line starts with ``{``, else text."""
    return parse_json_line(line) if line.lstrip().startswith("{") else parse_text_line(line)
