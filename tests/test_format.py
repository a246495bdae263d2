"""The tracing text and JSON line formats: byte parity, escaping, limits, and reading lines back."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login.diagnostics import format as format_module
from codex_login.diagnostics.format import (
    FIELD_VALUE_LIMIT,
    LINE_LIMIT,
    ParsedLine,
    TracingJsonFormatter,
    TracingTextFormatter,
    escape_debug,
    format_timestamp,
    level_label,
    parse_json_line,
    parse_line,
    parse_text_line,
    render_json_line,
    render_text_line,
)
from codex_login.diagnostics.record import (
    ATTEMPT_ATTR,
    FIELDS_ATTR,
    Display,
    FieldValue,
    attempt_span,
    emit,
)
from codex_login.diagnostics.redact import scrub_all
from tests.support.format_golden import FIXTURE, decode_value, golden_scrubber, render_case


def ts(text: str) -> float:
    """The ``created`` of a record logged at the RFC 3339 instant ``text``."""
    return datetime.fromisoformat(text).timestamp()


def make_record(
    name: str,
    level: int,
    message: str,
    fields: dict[str, FieldValue] | None = None,
    *,
    attempt: str | None = None,
    created: float,
    args: tuple[object, ...] = (),
) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, message, args, None)
    setattr(record, FIELDS_ATTR, dict(fields or {}))
    setattr(record, ATTEMPT_ATTR, attempt)
    record.created = created
    return record


TEXT = TracingTextFormatter()
JSON = TracingJsonFormatter()

# ------------------------------------------------------------------------------------------------ parity

REFERENCE_SAMPLE = [
    (
        make_record(
            "codex_cli.login",
            logging.INFO,
            "starting browser login flow",
            created=ts("2026-03-06T22:08:54.143612+00:00"),
        ),
        "2026-03-06T22:08:54.143612Z  INFO codex_cli::login: starting browser login flow",
    ),
    (
        make_record(
            "codex_login.server",
            logging.INFO,
            "received login callback",
            {
                "path": Display("/auth/callback"),
                "has_code": False,
                "has_state": True,
                "has_error": True,
                "state_valid": True,
            },
            created=ts("2026-03-06T22:09:03.431699+00:00"),
        ),
        "2026-03-06T22:09:03.431699Z  INFO codex_login::server: received login callback path=/auth/callback"
        " has_code=false has_state=true has_error=true state_valid=true",
    ),
    (
        make_record(
            "codex_login.server",
            logging.WARNING,
            "oauth callback returned error",
            {"error_code": "access_denied", "has_error_description": True},
            created=ts("2026-03-06T22:09:03.431745+00:00"),
        ),
        "2026-03-06T22:09:03.431745Z  WARN codex_login::server: oauth callback returned error"
        ' error_code="access_denied" has_error_description=true',
    ),
    (
        make_record(
            "codex_login.server",
            logging.INFO,
            "starting oauth token exchange",
            {
                "issuer": Display("https://auth.openai.com/"),
                "redirect_uri": Display("http://localhost:1455/auth/callback"),
            },
            created=ts("2026-03-06T22:09:36.436977+00:00"),
        ),
        "2026-03-06T22:09:36.436977Z  INFO codex_login::server: starting oauth token exchange"
        " issuer=https://auth.openai.com/ redirect_uri=http://localhost:1455/auth/callback",
    ),
    (
        make_record(
            "codex_login.server",
            logging.INFO,
            "oauth token exchange succeeded",
            {"status": Display("200 OK")},
            created=ts("2026-03-06T22:09:36.685438+00:00"),
        ),
        "2026-03-06T22:09:36.685438Z  INFO codex_login::server: oauth token exchange succeeded status=200 OK",
    ),
]


@pytest.mark.parametrize(("record", "expected"), REFERENCE_SAMPLE)
def test_reference_sample_lines_byte_for_byte(record: logging.LogRecord, expected: str) -> None:
    assert TEXT.format(record) == expected


def test_attempt_span_line_of_decision_d10() -> None:
    record = make_record(
        "codex_login.server",
        logging.INFO,
        "received login callback",
        {
            "path": Display("/auth/callback"),
            "has_code": False,
            "has_state": True,
            "has_error": True,
            "state_valid": True,
        },
        attempt="la_3f9c1a2b",
        created=ts("2026-03-06T22:09:03.431699+00:00"),
    )
    assert TEXT.format(record) == (
        "2026-03-06T22:09:03.431699Z  INFO login{attempt=la_3f9c1a2b}: codex_login::server: received login"
        " callback path=/auth/callback has_code=false has_state=true has_error=true state_valid=true"
    )


def test_golden_error_line_with_display_error_text() -> None:
    record = make_record(
        "codex_login.server",
        logging.ERROR,
        "oauth token exchange transport failure",
        {
            "is_timeout": False,
            "is_connect": True,
            "is_request": True,
            "error": Display("error sending request for url (https://auth.openai.com/oauth/token)"),
        },
        created=ts("2026-03-06T22:09:36.5+00:00"),
    )
    assert TEXT.format(record) == (
        "2026-03-06T22:09:36.500000Z ERROR codex_login::server: oauth token exchange transport failure"
        " is_timeout=false is_connect=true is_request=true"
        " error=error sending request for url (https://auth.openai.com/oauth/token)"
    )


def test_string_fields_are_debug_quoted() -> None:
    record = make_record(
        "codex_login.server",
        logging.WARNING,
        "oauth token exchange returned non-success status",
        {"status": Display("400 Bad Request"), "error_code": "invalid_grant", "error_message": "refresh token expired"},
        created=0.0,
    )
    assert TEXT.format(record).endswith(
        ' status=400 Bad Request error_code="invalid_grant" error_message="refresh token expired"'
    )


@pytest.mark.parametrize(
    ("levelno", "label"),
    [
        (logging.CRITICAL, "ERROR"),
        (logging.ERROR, "ERROR"),
        (logging.WARNING, " WARN"),
        (logging.INFO, " INFO"),
        (logging.DEBUG, "DEBUG"),
        (5, "TRACE"),
        (1, "TRACE"),
    ],
)
def test_levels_are_right_aligned_to_five(levelno: int, label: str) -> None:
    assert level_label(levelno) == label
    line = TEXT.format(make_record("codex_login", levelno, "m", created=0.0))
    assert line == f"1970-01-01T00:00:00.000000Z {label} codex_login: m"


def test_value_kinds() -> None:
    record = make_record(
        "codex_login.x",
        logging.INFO,
        "m",
        {"d": Display("a b"), "s": "a b", "t": True, "f": False, "i": -42, "fl": 1.5, "none": None, "e": ""},
        created=0.0,
    )
    assert TEXT.format(record).endswith(': m d=a b s="a b" t=true f=false i=-42 fl=1.5 e=""')


def test_int_enum_and_bool_subclasses_render_as_numbers() -> None:
    from http import HTTPStatus

    line = TEXT.format(make_record("codex_login", logging.INFO, "m", {"status": HTTPStatus.OK}, created=0.0))
    assert line.endswith(" status=200")
    assert (
        json.loads(JSON.format(make_record("codex_login", logging.INFO, "m", {"status": HTTPStatus.OK}, created=0.0)))[
            "fields"
        ]["status"]
        == 200
    )


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("\\", "\\\\"),
        ('"', '\\"'),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\t", "\\t"),
        ("\0", "\\0"),
        ("\x1b", "\\u{1b}"),
        ("\x07", "\\u{7}"),
        ("\x7f", "\\u{7f}"),
        ("\x85", "\\u{85}"),
        ("\x9b", "\\u{9b}"),
        ("\u2028", "\\u{2028}"),
        ("\u2029", "\\u{2029}"),
        ("\u202e", "\\u{202e}"),
        ("\u202a", "\\u{202a}"),
        ("\u2066", "\\u{2066}"),
        ("\u2069", "\\u{2069}"),
        ("\u200f", "\\u{200f}"),
        ("\ud800", "\\u{d800}"),
        ("é✓", "é✓"),
        ("'", "'"),
    ],
)
def test_rust_debug_escapes(raw: str, escaped: str) -> None:
    assert escape_debug(raw) == escaped
    line = TEXT.format(make_record("codex_login", logging.INFO, "m", {"s": raw, "d": Display(raw)}, created=0.0))
    assert line.endswith(f' s="{escaped}" d={escaped}')


def test_message_is_escaped_and_never_from_exc_info() -> None:
    try:
        raise ValueError("https://user:secret@host/?code=abc\nTraceback")
    except ValueError:
        record = make_record("codex_login", logging.ERROR, "bad\nnews\x1b[2J", created=0.0)
        record.exc_info = sys.exc_info()
        record.stack_info = "Stack (most recent call last):\n  frame"
    line = TEXT.format(record)
    assert line == "1970-01-01T00:00:00.000000Z ERROR codex_login: bad\\nnews\\u{1b}[2J"
    assert "secret" not in JSON.format(record)


def test_bad_percent_args_do_not_lose_the_event() -> None:
    record = make_record("codex_login", logging.INFO, "100% %s %d", created=0.0, args=("only-one",))
    assert TEXT.format(record).endswith(": 100% %s %d")


def test_ambiguous_spaces_in_unquoted_text_are_escaped() -> None:
    line = render_text_line(
        created=0.0, levelno=20, target="t", message="a x=1", fields={"d": Display("p q=2"), "e": Display("tail …")}
    )
    assert line.endswith(": a\\u{20}x=1 d=p\\u{20}q=2 e=tail\\u{20}…")
    parsed = parse_text_line(line)
    assert parsed is not None
    assert parsed.message == "a x=1"
    assert parsed.fields == {"d": "p q=2", "e": "tail …"}
    assert not parsed.truncated


def test_field_names_are_normalized() -> None:
    line = render_text_line(
        created=0.0,
        levelno=20,
        target="t",
        message="m",
        fields={"Error-Code": 1, "9x": 2, "message": 3, "": 4, "ok.name_2": 5},
    )
    assert line.endswith(": m error_code=1 _9x=2 message_=3 _=4 ok.name_2=5")


def test_target_and_attempt_cannot_break_the_head() -> None:
    line = render_text_line(created=0.0, levelno=20, target="evil target{x}: y", message="m", attempt="la_1} z: w")
    assert line == (
        "1970-01-01T00:00:00.000000Z  INFO login{attempt=la_1\\u{7d}\\u{20}z:\\u{20}w}:"
        " evil\\u{20}target\\u{7b}x}:\\u{20}y: m"
    )
    parsed = parse_text_line(line)
    assert parsed is not None
    assert (parsed.attempt, parsed.target, parsed.message) == ("la_1} z: w", "evil target{x}: y", "m")


# ------------------------------------------------------------------------------------------------ limits


def test_quoted_value_is_capped_inside_the_quotes() -> None:
    line = TEXT.format(make_record("codex_login", logging.INFO, "m", {"v": "x" * 5000}, created=0.0))
    value = line.split(" v=", 1)[1]
    assert value == '"' + "x" * (FIELD_VALUE_LIMIT - 1) + '…"'
    parsed = parse_text_line(line)
    assert parsed is not None and parsed.fields["v"] == "x" * (FIELD_VALUE_LIMIT - 1) + "…"


def test_cap_never_cuts_an_escape() -> None:
    line = TEXT.format(
        make_record("codex_login", logging.INFO, "m", {"v": "\x1b" * 500, "d": Display("\n" * 900)}, created=0.0)
    )
    quoted = line.split(" v=", 1)[1].split(" d=", 1)[0]
    assert quoted.endswith('\\u{1b}…"')
    assert len(quoted) - 2 <= FIELD_VALUE_LIMIT
    display = line.split(" d=", 1)[1]
    assert display.endswith("\\n…") and len(display) <= FIELD_VALUE_LIMIT


def test_display_cut_after_a_space_is_not_mistaken_for_the_line_mark() -> None:
    value = "ab " * 1000
    line = render_text_line(created=0.0, levelno=20, target="t", message="m", fields={"d": Display(value)})
    parsed = parse_text_line(line)
    assert parsed is not None
    assert not parsed.truncated
    got = parsed.fields["d"]
    assert isinstance(got, str) and got.endswith("…") and value.startswith(got[:-1])


def test_line_is_capped_at_4096_bytes_and_marked() -> None:
    fields: dict[str, FieldValue] = {f"f{i}": "é" * 1000 for i in range(10)}
    line = render_text_line(
        created=0.0, levelno=20, target="codex_login::server", message="m", fields=fields, attempt="la_00000000"
    )
    assert len(line.encode("utf-8")) <= LINE_LIMIT
    assert line.endswith(" …")
    parsed = parse_text_line(line)
    assert parsed is not None
    assert parsed.truncated
    assert parsed.fields == {"f0": "é" * 1000}


def test_huge_message_is_capped() -> None:
    line = render_text_line(created=0.0, levelno=20, target="t", message="\U0001f600" * 5000)
    assert len(line.encode("utf-8")) <= LINE_LIMIT
    assert line.endswith("…")


def test_huge_int_does_not_break_formatting() -> None:
    line = render_text_line(created=0.0, levelno=20, target="t", message="m", fields={"n": 10**5000})
    assert line.endswith(" n=<large-int>")


# ------------------------------------------------------------------------------------------------ time


def test_timestamp_is_utc_microseconds_z() -> None:
    assert format_timestamp(ts("2026-03-06T22:09:03.431699+00:00")) == "2026-03-06T22:09:03.431699Z"
    assert format_timestamp(0.0) == "1970-01-01T00:00:00.000000Z"
    assert format_timestamp(1e300) == "9999-12-31T23:59:59.999999Z"
    assert format_timestamp(float("nan")) == "0001-01-01T00:00:00.000000Z"
    assert format_timestamp(-62135596800.0) == "0001-01-01T00:00:00.000000Z"


def _datetime_timestamp(created: float) -> str:
    """What format_timestamp wrote through datetime for every instant from 1970 to 9999."""
    return datetime.fromtimestamp(created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_timestamp_fast_path_rounds_like_datetime_at_every_edge() -> None:
    rng = random.Random(9)
    edges = [0.0, 5e-7, 1.5e-6, 0.9999995, 0.9999994999999999, 1e-7, 253402300798.99997, 253402300798.5]
    edges += [float(s) + f for s in (1772834943, 2**31, 2**32) for f in (0.0, 0.4999995, 0.5000005, 0.9999995)]
    edges += [
        rng.randint(0, 253402300798) + rng.randint(0, 999_999) / 1e6 + rng.choice((0.0, 5e-7)) for _ in range(3000)
    ]
    edges += [rng.uniform(0, 253402300799) for _ in range(3000)] + [rng.uniform(1.7e9, 1.8e9) for _ in range(3000)]
    for created in edges:
        assert format_timestamp(created) == _datetime_timestamp(created), created.hex()


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0.0, max_value=253402300799.0, exclude_max=True))
def test_timestamp_fast_path_is_datetime(created: float) -> None:
    assert format_timestamp(created) == _datetime_timestamp(created)


def test_timestamp_outside_the_fast_path_keeps_its_limits() -> None:
    assert format_timestamp(253402300799.0) == "9999-12-31T23:59:59.000000Z"
    assert format_timestamp(253402300800.0) == "9999-12-31T23:59:59.999999Z"  # past 9999: the last microsecond
    assert format_timestamp(10.0**30) == "9999-12-31T23:59:59.999999Z"
    assert format_timestamp(-1.5) == "1969-12-31T23:59:58.500000Z"
    assert format_timestamp(-4e-7) == "1970-01-01T00:00:00.000000Z"
    assert format_timestamp(-59011459200.25) == "0099-12-31T23:59:59.750000Z"
    assert format_timestamp(float("inf")) == "9999-12-31T23:59:59.999999Z"
    assert format_timestamp(float("-inf")) == "0001-01-01T00:00:00.000000Z"
    assert format_timestamp(1772834943) == "2026-03-06T22:09:03.000000Z"  # an int, not a record's float
    assert format_timestamp(True) == "1970-01-01T00:00:01.000000Z"


@pytest.fixture
def kolkata() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("kolkata")
def test_tz_environment_is_ignored_in_process() -> None:
    assert time.localtime(0).tm_hour == 5  # the zone really is in effect
    assert format_timestamp(ts("2026-03-06T22:09:03.431699+00:00")) == "2026-03-06T22:09:03.431699Z"
    record = make_record("codex_login", logging.INFO, "m", created=ts("2026-03-06T22:09:03.431699+00:00"))
    assert json.loads(JSON.format(record))["timestamp"] == "2026-03-06T22:09:03.431699Z"


def test_tz_environment_is_ignored_in_a_fresh_process() -> None:
    code = (
        "import logging, time\n"
        "from codex_login.diagnostics.format import TracingTextFormatter\n"
        "r = logging.LogRecord('codex_login', 20, 'x', 1, 'm', (), None)\n"
        "r.created = 1772834943.431699\n"
        "print(TracingTextFormatter().format(r))\n"
        "print(time.strftime('%H', time.localtime(0)))\n"
    )
    env = {**os.environ, "TZ": "Asia/Kolkata"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    line, hour = out.splitlines()
    assert hour == "05"
    assert line == "2026-03-06T22:09:03.431699Z  INFO codex_login: m"


# ------------------------------------------------------------------------------------------------ JSON


def test_json_shape_with_span() -> None:
    record = make_record(
        "codex_login.server",
        logging.INFO,
        "received login callback",
        {"path": Display("/auth/callback"), "has_code": False, "status": 200, "error_code": "x", "gone": None},
        attempt="la_3f9c1a2b",
        created=ts("2026-03-06T22:09:03.431699+00:00"),
    )
    assert JSON.format(record) == (
        '{"timestamp":"2026-03-06T22:09:03.431699Z","level":"INFO","fields":{"message":"received login callback",'
        '"path":"/auth/callback","has_code":false,"status":200,"error_code":"x"},"target":"codex_login::server",'
        '"span":{"attempt":"la_3f9c1a2b","name":"login"},"spans":[{"attempt":"la_3f9c1a2b","name":"login"}]}'
    )


def test_json_without_attempt_has_no_span() -> None:
    obj = json.loads(JSON.format(make_record("codex_cli.login", logging.WARNING, "m", created=0.0)))
    assert obj == {
        "timestamp": "1970-01-01T00:00:00.000000Z",
        "level": "WARN",
        "fields": {"message": "m"},
        "target": "codex_cli::login",
    }
    assert list(obj) == ["timestamp", "level", "fields", "target"]


def test_json_is_ascii_and_escapes_everything() -> None:
    line = JSON.format(make_record("codex_login", logging.INFO, "m\u2028", {"v": "\x1b]8;;x\x07é\ud800"}, created=0.0))
    assert line.isascii()
    assert "\\u2028" in line and "\\u001b" in line and "\\u00e9" in line
    assert json.loads(line)["fields"]["v"] == "\x1b]8;;x\x07é\ud800"


def test_json_non_finite_float_is_null() -> None:
    obj = json.loads(JSON.format(make_record("codex_login", logging.INFO, "m", {"x": float("nan")}, created=0.0)))
    assert obj["fields"]["x"] is None


def test_json_line_cap() -> None:
    fields: dict[str, FieldValue] = {f"f{i}": "\u2028" * 1000 for i in range(8)}
    line = render_json_line(created=0.0, levelno=20, target="t", message="m", fields=fields)
    assert len(line) <= LINE_LIMIT
    parsed = parse_json_line(line)
    assert parsed is not None and set(parsed.fields) == set(fields)
    many: dict[str, FieldValue] = {f"field_{i}": "\u2028" * 100 for i in range(200)}
    line = render_json_line(created=0.0, levelno=20, target="t", message="m", fields=many)
    assert len(line) <= LINE_LIMIT
    parsed = parse_json_line(line)
    assert parsed is not None and parsed.truncated and 0 < len(parsed.fields) < 200


# ------------------------------------------------------------------------------------------------ records


class RecordList(logging.Handler):
    """Keeps every record it is handed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_emitted_records_carry_the_attempt_span() -> None:
    logger = logging.getLogger("codex_login.test_format_span")
    handler = RecordList()
    records = handler.records
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with attempt_span("la_0badc0de"):
            emit(logger, logging.INFO, "received login callback", {"path": Display("/auth/callback")})
        emit(logger, logging.INFO, "outside")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    inside, outside = (TEXT.format(r) for r in records)
    assert " INFO login{attempt=la_0badc0de}: codex_login::test_format_span: received login callback path=" in inside
    assert " INFO codex_login::test_format_span: outside" in outside


def test_scrubber_masks_before_escaping() -> None:
    jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.c2ln"
    formatter = TracingTextFormatter(scrubber=scrub_all)
    line = formatter.format(make_record("codex_login", logging.INFO, "m", {"e": Display(f"bad {jwt}")}, created=0.0))
    assert jwt not in line and "<redacted:jwt>" in line
    jline = TracingJsonFormatter(scrubber=scrub_all).format(
        make_record("codex_login", logging.INFO, "m", {"e": f"Bearer {jwt}"}, created=0.0)
    )
    assert jwt not in jline


# ------------------------------------------------------------------------------------------------ reading


def test_parse_reference_lines() -> None:
    for record, line in REFERENCE_SAMPLE:
        parsed = parse_text_line(line)
        assert parsed is not None
        assert parsed.timestamp == datetime.fromtimestamp(record.created, UTC)
        assert parsed.target == record.name.replace(".", "::")
        assert parsed.message == record.msg
        assert parsed.attempt is None
    parsed = parse_text_line(REFERENCE_SAMPLE[1][1])
    assert parsed is not None
    assert parsed.level == "INFO" and parsed.levelno == logging.INFO
    assert parsed.fields == {
        "path": "/auth/callback",
        "has_code": False,
        "has_state": True,
        "has_error": True,
        "state_valid": True,
    }
    parsed = parse_text_line(REFERENCE_SAMPLE[4][1])
    assert parsed is not None and parsed.fields == {"status": "200 OK"}


def test_parse_golden_codex_line_without_fields_and_with_display_text() -> None:
    line = (
        "2026-03-06T22:09:36.436977Z ERROR codex_login::server: oauth token exchange transport failure"
        " is_timeout=false is_connect=true is_request=true"
        " error=error sending request for url (https://auth.openai.com/oauth/token)"
    )
    parsed = parse_text_line(line + "\n")
    assert parsed is not None
    assert parsed.fields["error"] == "error sending request for url (https://auth.openai.com/oauth/token)"
    bare = parse_text_line(
        "2026-03-06T22:09:36.436977Z ERROR codex_login::server: login callback token exchange failed"
    )
    assert bare is not None and bare.message == "login callback token exchange failed" and bare.fields == {}


@pytest.mark.parametrize(
    "line",
    [
        "",
        "hello",
        "2026-03-06 22:09:36  INFO t: m",
        "2026-03-06T22:09:36.436977Z  NOTE t: m",
        "2026-13-45T22:09:36.436977Z  INFO t: m",
        "2026-03-06T22:09:36.436977Z  INFO no-colon-here",
    ],
)
def test_parse_rejects_non_lines(line: str) -> None:
    assert parse_text_line(line) is None
    assert parse_line(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "{",
        "[]",
        '{"timestamp":"x","level":"INFO","fields":{},"target":"t"}',
        '{"timestamp":"2026-03-06T22:09:36.436977Z","level":"LOUD","fields":{},"target":"t"}',
        '{"timestamp":"2026-03-06T22:09:36.436977Z","level":"INFO","fields":[],"target":"t"}',
        '{"timestamp":"2026-03-06T22:09:36.436977+05:30","level":"INFO","fields":{},"target":"t"}',
    ],
)
def test_parse_json_rejects_non_events(line: str) -> None:
    assert parse_json_line(line) is None


def test_parse_keeps_an_int_too_long_for_python_as_text() -> None:
    digits = "1" + "0" * 5000  # past int()'s 4,300-digit limit, which raised ValueError out of `codex-login log`
    parsed = parse_text_line(
        f"2026-03-06T22:09:05.431699Z  WARN codex_cli::login: login finished duration_ms={digits} failure=timeout"
    )
    assert parsed is not None
    assert parsed.fields == {"duration_ms": digits, "failure": "timeout"}


def test_parse_json_skips_a_line_nested_too_deeply_to_decode() -> None:
    deep = '{"timestamp":"2026-03-06T22:09:04Z","level":"INFO","target":"t","fields":' + "[" * 100_000
    deep += "]" * 100_000 + "}"
    assert parse_json_line(deep) is None  # json.loads raised RecursionError, which is no ValueError
    assert parse_line(deep) is None


def test_parse_line_dispatches_on_format() -> None:
    record = make_record("codex_login.server", logging.INFO, "m", {"a": 1}, attempt="la_12345678", created=0.0)
    text, js = parse_line(TEXT.format(record)), parse_line(JSON.format(record))
    assert text == js
    assert isinstance(text, ParsedLine) and text.attempt == "la_12345678" and text.fields == {"a": 1}


# ------------------------------------------------------------------------------------------------ properties

_TRICKY = st.sampled_from(
    [
        " ",
        "=",
        '"',
        "\\",
        "a",
        "_",
        "x=",
        " a=",
        "…",
        " …",
        "\n",
        "\r",
        "\x1b",
        "\u2028",
        "\u202e",
        "u{20}",
        "\\u{20}",
        "{",
        "}",
        ":",
        ": ",
        "true",
        "1",
        "-",
        "\0",
        "\ud800",
        "é",
        "\U0001f600",
        "\x85",
        "\x9b",
    ]
)
ANY_TEXT = st.lists(st.one_of(_TRICKY, st.text(st.characters(exclude_categories=()), max_size=6)), max_size=8).map(
    "".join
)
NAMES = st.from_regex(r"[a-z_][a-z0-9_.]{0,8}", fullmatch=True).filter(lambda n: n != "message")
VALUES: st.SearchStrategy[FieldValue] = st.one_of(
    ANY_TEXT,
    ANY_TEXT.map(Display),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)
FIELDS = st.dictionaries(NAMES, VALUES, max_size=6)
_CANONICAL = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")


def expected_text_value(value: FieldValue) -> object:
    if isinstance(value, Display):
        text = str.__str__(value)
        if text in ("true", "false"):
            return text == "true"
        return int(text) if _CANONICAL.match(text) else text
    if isinstance(value, float):
        return repr(value)
    return value


def assert_one_clean_line(line: str) -> None:
    assert "\n" not in line
    assert line.splitlines() == [line]
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]", line)
    assert len(line.encode("utf-8")) <= LINE_LIMIT


@settings(max_examples=300, deadline=None)
@given(
    message=ANY_TEXT,
    fields=FIELDS,
    attempt=st.one_of(st.none(), ANY_TEXT),
    target=ANY_TEXT.filter(bool),
    level=st.sampled_from([5, 10, 20, 30, 40, 50]),
)
def test_text_any_input_is_one_clean_line_that_parses_back(
    message: str, fields: dict[str, FieldValue], attempt: str | None, target: str, level: int
) -> None:
    line = render_text_line(
        created=1772834943.431699, levelno=level, target=target, message=message, fields=fields, attempt=attempt
    )
    assert_one_clean_line(line)
    parsed = parse_text_line(line)
    assert parsed is not None
    assert parsed.timestamp == datetime(2026, 3, 6, 22, 9, 3, 431699, tzinfo=UTC)
    assert parsed.level == level_label(level).strip()
    assert parsed.message == message
    assert parsed.target == target
    assert parsed.attempt == attempt
    assert not parsed.truncated
    assert parsed.fields == {k: expected_text_value(v) for k, v in fields.items() if v is not None}


@settings(max_examples=200, deadline=None)
@given(message=ANY_TEXT, fields=FIELDS, attempt=st.one_of(st.none(), ANY_TEXT))
def test_json_any_input_is_one_ascii_line_that_parses_back(
    message: str, fields: dict[str, FieldValue], attempt: str | None
) -> None:
    line = render_json_line(
        created=0.0, levelno=20, target="codex_login::server", message=message, fields=fields, attempt=attempt
    )
    assert_one_clean_line(line)
    assert line.isascii()
    parsed = parse_json_line(line)
    assert parsed is not None
    assert parsed.message == message and parsed.attempt == attempt
    expected: dict[str, object] = {}
    for key, value in fields.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        expected[key] = (
            repr(value) if isinstance(value, float) else (str.__str__(value) if isinstance(value, str) else value)
        )
    assert parsed.fields == expected


@settings(max_examples=100, deadline=None)
@given(
    long_value=st.text(st.characters(exclude_categories=()), min_size=900, max_size=3000),
    display=st.booleans(),
    fields=st.integers(min_value=1, max_value=12),
)
def test_long_values_stay_within_limits_and_parse(long_value: str, display: bool, fields: int) -> None:
    value: FieldValue = Display(long_value) if display else long_value
    line = render_text_line(
        created=0.0, levelno=20, target="t", message="m", fields={f"f{i}": value for i in range(fields)}
    )
    assert_one_clean_line(line)
    parsed = parse_text_line(line)
    assert parsed is not None
    for got in parsed.fields.values():
        if isinstance(got, str) and got.endswith("…") and got != long_value:
            assert long_value.startswith(got[:-1])
        else:
            assert got == expected_text_value(value)


# ------------------------------------------------------------------------------------------------ fast paths (issue 9)


@functools.cache
def golden() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="ascii"))
    return loaded


def test_golden_lines_are_byte_for_byte_what_the_plain_renderer_wrote() -> None:
    """120 generated events (controls, bidi, surrogates, quotes, backslashes, ambiguous spaces, values near the
    caps, big ints, floats, odd names, odd targets and attempts, secrets) rendered before the fast paths."""
    scrubber = golden_scrubber()
    cases = golden()["lines"]
    assert len(cases) == 120
    for index, case in enumerate(cases):
        text, json_line = render_case(case, scrubber)
        assert text == case["text"], index
        assert json_line == case["json"], index


def test_golden_lines_read_back() -> None:
    """The reader takes every golden line, and the JSON lines are exactly json.dumps's spelling."""
    for index, case in enumerate(golden()["lines"]):
        parsed = parse_text_line(case["text"])
        if case["target"][:256]:  # the head needs a target
            assert parsed is not None, index
            assert parsed.level == level_label(case["levelno"]).strip()
        obj = json.loads(case["json"])
        assert json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False) == case["json"], index
        assert parse_json_line(case["json"]) is not None


def test_golden_timestamps() -> None:
    for created, expected in golden()["timestamps"]:
        assert format_timestamp(decode_value(created)) == expected, created


def test_escape_shortcut_never_skips_a_character_of_the_escape_class() -> None:
    """The shortcut trusts str.isprintable for everything but backslash and quote: check every code point."""
    escapes = re.compile(format_module._NEEDS_ESCAPE_SRC)
    for code in range(0x110000):
        ch = chr(code)
        if escapes.match(ch):
            assert ch in '\\"' or not ch.isprintable(), hex(code)
            assert not format_module._needs_no_escape(ch), hex(code)


@settings(max_examples=500, deadline=None)
@given(message=ANY_TEXT, fields=FIELDS, attempt=st.one_of(st.none(), ANY_TEXT))
def test_json_line_is_json_dumps_spelling(message: str, fields: dict[str, FieldValue], attempt: str | None) -> None:
    line = render_json_line(
        created=1772834943.431699,
        levelno=20,
        target="codex_login::server",
        message=message,
        fields=fields,
        attempt=attempt,
        scrubber=scrub_all,
    )
    assert json.dumps(json.loads(line), ensure_ascii=True, separators=(",", ":"), allow_nan=False) == line


def test_json_repeated_field_names_keep_the_first_place_and_the_last_value() -> None:
    line = render_json_line(
        created=0.0,
        levelno=20,
        target="t",
        message="m",
        fields=[("a", 1), ("MESSAGE", "x"), ("b", True), ("A", 2), ("message_", 3), ("truncated", 4)],
    )
    assert '"fields":{"message":"m","a":2,"message_":3,"b":true,"truncated":4}' in line


def test_memo_tables_stay_small_and_right_for_any_input() -> None:
    fields: list[tuple[str, FieldValue]] = [(f"Name {i}", i) for i in range(600)]
    for i in range(600):
        line = render_text_line(
            created=0.0, levelno=20, target=f"t{i}", message=f"m {i}", attempt=f"la {i}", fields=fields[i : i + 1]
        )
        assert line == f"1970-01-01T00:00:00.000000Z  INFO login{{attempt=la\\u{{20}}{i}}}: t{i}: m {i} name_{i}={i}"
    assert len(format_module._FIELD_NAMES) <= 256 and len(format_module._FIELD_KEYS) <= 256
    assert len(format_module._HEADS) <= 256 and len(format_module._MESSAGES) <= 256


def _log_like_before(logger: logging.Logger, level: int, message: str, fields: dict[str, FieldValue]) -> None:
    """What emit did before issue 9."""
    logger.log(level, message, extra={FIELDS_ATTR: dict(fields), ATTEMPT_ATTR: None}, stacklevel=2)


def test_emitted_record_is_the_one_logger_log_made() -> None:
    logger = logging.getLogger("codex_login.test_format_record")
    handler = RecordList()
    records = handler.records

    class OnlyFirst(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.getMessage() != "dropped"

    logger.addHandler(handler)
    logger.addFilter(OnlyFirst())
    logger.setLevel(logging.INFO)
    try:
        fields: dict[str, FieldValue] = {"path": Display("/p"), "n": 1}
        for log in (_log_like_before, emit):  # both from this one line of this function
            log(logger, logging.INFO, "m", fields)
        emit(logger, logging.INFO, "dropped")
        emit(logger, logging.DEBUG, "below the level")
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
        logger.setLevel(logging.NOTSET)
    before, now = records
    assert now.funcName == "test_emitted_record_is_the_one_logger_log_made" and now.pathname == __file__
    timing = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in vars(now).items() if k not in timing} == {
        k: v for k, v in vars(before).items() if k not in timing
    }
