"""``_credentials``: the datetime-free reader ``codex-login status`` uses, checked against what it replaced.

Each piece has an oracle built from the standard library the module avoids importing: the RFC 3339 parser
against the regular expression and ``datetime`` arithmetic it replaced, the formatter against
``datetime``, base64url against ``binascii``, ``exp`` against ``datetime.fromtimestamp``; and the status
summary read from auth.json against the one read through the library's stores.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_login import _credentials
from codex_login._credentials import (
    MAX_SECONDS,
    MIN_SECONDS,
    TokenDataError,
    civil_from_days,
    days_from_civil,
    exp_seconds,
    format_rfc3339,
    parse_rfc3339,
    status_summary,
)
from codex_login.account import read_status
from codex_login.storage import AuthDotJson, AuthMode, TokenData, create_store, format_timestamp
from tests.support.scripted_issuer import id_token_for, make_jwt

FIXTURES = Path(__file__).parent / "fixtures"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# ---------------------------------------------------------------------------------------------------------
# RFC 3339

# What storage.parse_timestamp was before the RFC 3339 parser moved here: the oracle. Since corrected like
# the parser: ASCII digits only (re.ASCII: a plain \d took any Unicode digit) and offset minutes under 60.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))",
    re.ASCII,
)


def regex_and_datetime(text: str) -> tuple[dt.datetime, int]:
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    nanos = int((m.group(7) or "").ljust(9, "0")[:9])
    if m.group(8) is not None:
        offset = dt.timedelta(0)
    else:
        if int(m.group(11)) >= 60:
            raise ValueError("UTC offset minutes out of range")  # datetime.timezone would take +00:99
        sign = -1 if m.group(9) == "-" else 1
        offset = sign * dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
    local = dt.datetime(year, month, day, hour, minute, second, nanos // 1000, tzinfo=dt.timezone(offset))
    return local.astimezone(dt.UTC), nanos


def integer_parser(text: str) -> tuple[dt.datetime, int]:
    seconds, nanos = parse_rfc3339(text)
    return EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000), nanos


def parsed(parse: object, text: str) -> tuple[str, object]:
    assert callable(parse)
    try:
        return "ok", parse(text)
    except OverflowError:
        return "overflow", None
    except ValueError:
        return "invalid", None


DIGITS = st.sampled_from("0123456789") | st.sampled_from("٠١٢٣٤٥٦٧٨٩०९𝟎𝟗２")  # other digits: to be refused


def digits(count: int) -> st.SearchStrategy[str]:
    return st.lists(DIGITS, min_size=count, max_size=count).map("".join)


TIMESTAMP_LIKE = st.tuples(
    digits(4),
    st.sampled_from("-/"),
    digits(2),
    st.just("-"),
    digits(2),
    st.sampled_from("Tt x"),
    digits(2),
    st.just(":"),
    digits(2),
    st.just(":"),
    digits(2),
    st.just("") | st.just(".") | st.lists(DIGITS, min_size=1, max_size=14).map(lambda d: "." + "".join(d)),
    st.sampled_from(["Z", "z", "", "ZZ", "+", "+0"])
    | st.tuples(
        st.sampled_from("+-"), digits(2), st.sampled_from(["", ":", "::"]), st.integers(0, 3).flatmap(digits)
    ).map("".join),
).map("".join)
PLAUSIBLE = st.builds(
    lambda y, mo, d, h, mi, s, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{off}",
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["Z", "+23:59", "-23:59", "+24:00", "-00:01", "+00:01", "+0530", "-1200", "+00:60", "-0599"]),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(TIMESTAMP_LIKE, PLAUSIBLE, st.text(max_size=40)))
def test_rfc3339_parser_is_the_regex_and_datetime_it_replaced(text: str) -> None:
    assert parsed(integer_parser, text) == parsed(regex_and_datetime, text)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
        "0001-01-01T00:00:00-00:01",
        "9999-12-31T23:59:59.999999999Z",
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
        "2024-02-29T12:00:00Z",
        "2023-02-29T12:00:00Z",
        "1900-02-29T12:00:00Z",
        "2000-02-29T12:00:00Z",
        "2026-03-06T22:09:36+23:59",
        "2026-03-06T22:09:36-2400",
    ],
)
def test_rfc3339_edges(text: str) -> None:
    assert parsed(integer_parser, text) == parsed(regex_and_datetime, text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-06T22:09:36+00:60",
        "2026-03-06T22:09:36+00:99",  # datetime.timezone takes 99 minutes; RFC 3339 and chrono do not
        "2026-03-06T22:09:36-05:75",
        "2026-03-06T22:09:36-0560",
        "２０２６-03-06T22:09:36Z",  # full-width digits
        "2026-03-06T22:09:36.\u0661\u0662Z",  # Arabic-Indic digits in the fraction
        "2026-03-06T22:09:36.12\u0663Z",
        "2026-03-06T\u0662\u0662:09:36Z",
        "2026-03-06T22:09:36+0\u0665:00",
        "2026-03-06T22:09:3\u00b2Z",  # superscript two: str.isdigit takes it
    ],
)
def test_rfc3339_takes_ascii_digits_and_offset_minutes_under_60_only(text: str) -> None:
    with pytest.raises(ValueError, match=r"not an RFC 3339 timestamp|UTC offset minutes out of range"):
        parse_rfc3339(text)
    assert parse_rfc3339("2026-03-06T22:09:36.5+00:59") == (1_772_834_976 - 59 * 60, 500_000_000)


@settings(max_examples=2000, deadline=None)
@given(st.integers(MIN_SECONDS, MAX_SECONDS), st.integers(0, 999_999_999))
def test_formatting_an_instant_is_formatting_its_datetime(seconds: int, nanos: int) -> None:
    moment = EPOCH + dt.timedelta(seconds=seconds)
    assert format_rfc3339(seconds, nanos) == format_timestamp(moment, nanos)
    days = seconds // 86_400
    assert civil_from_days(days) == (moment.year, moment.month, moment.day)
    assert days_from_civil(moment.year, moment.month, moment.day) == days
    assert days == moment.date().toordinal() - dt.date(1970, 1, 1).toordinal()


# ---------------------------------------------------------------------------------------------------------
# JWT payloads


def binascii_decode(data: str) -> bytes:
    """Strict base64url without padding through binascii: what the integer decoder replaced."""
    if len(data) % 4 == 1 or not re.fullmatch(r"[A-Za-z0-9_-]*", data):
        raise TokenDataError("base64")
    standard = data.translate(str.maketrans("-_", "+/"))
    try:
        decoded = binascii.a2b_base64((standard + "=" * (-len(data) % 4)).encode("ascii"), strict_mode=True)
    except binascii.Error:
        raise TokenDataError("base64") from None
    if binascii.b2a_base64(decoded, newline=False).decode("ascii").rstrip("=") != standard:
        raise TokenDataError("base64")  # stray bits in the last digit
    return decoded


def decoded(decode: object, data: str) -> bytes | None:
    assert callable(decode)
    try:
        result = decode(data)
    except TokenDataError:
        return None
    assert isinstance(result, bytes)
    return result


def b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii").rstrip("=").translate(str.maketrans("+/", "-_"))


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64).map(b64url) | st.text(alphabet=st.sampled_from("AQgw_-9zZ+/=. \n\u00e9"), max_size=24))
def test_base64url_decoding_is_binascii_strict(data: str) -> None:
    assert decoded(_credentials._b64url_decode_no_pad, data) == decoded(binascii_decode, data)


def test_base64url_at_the_size_limit() -> None:
    at_limit = "A" * _credentials._MAX_PAYLOAD_CHARS
    assert decoded(_credentials._b64url_decode_no_pad, at_limit) == decoded(binascii_decode, at_limit)
    assert decoded(_credentials._b64url_decode_no_pad, at_limit + "AAAA") is None


def jwt_with_payload(payload: bytes) -> str:
    return f"e30.{b64url(payload)}.sig"


@pytest.mark.parametrize(
    "payload",
    [
        rb'{"email":"\ud800"}',
        rb'{"email":"a\udc00b"}',
        rb'{"\udfff":"x"}',  # in a key
        rb'{"https://api.openai.com/auth":{"chatgpt_plan_type":["\ud83d"]}}',  # nested; a high half alone
    ],
)
def test_a_lone_surrogate_in_a_jwt_payload_is_invalid_json(codex_home: Path, payload: bytes) -> None:
    """serde_json refuses a lone surrogate escape; ``status --json`` could not encode the claim as UTF-8."""
    with pytest.raises(TokenDataError, match=r"^invalid ID token payload \(JSON\)$"):
        _credentials.decode_jwt_payload(jwt_with_payload(payload))
    token = jwt_with_payload(payload)
    assert _credentials.jwt_auth_claims(token) == {}  # an unreadable payload has no claims, as in server.rs
    tokens = {"id_token": token, "access_token": "at", "refresh_token": "rt"}
    (codex_home / "auth.json").write_text(json.dumps({"tokens": tokens}))
    with pytest.raises(_credentials.AuthParseError, match=r"tokens\.id_token: invalid ID token payload \(JSON\)"):
        status_summary(codex_home)


def test_an_escaped_surrogate_pair_in_a_jwt_payload_is_one_character() -> None:
    token = jwt_with_payload(rb'{"email":"\ud83d\ude00@example.com"}')
    assert _credentials.id_token_claims(token).email == "\U0001f600@example.com"


def fromtimestamp_or_none(value: object) -> dt.datetime | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


@settings(max_examples=1000, deadline=None)
@given(
    st.integers(MIN_SECONDS - 10**6, MAX_SECONDS + 10**6)
    | st.integers()
    | st.sampled_from([MIN_SECONDS, MIN_SECONDS - 1, MAX_SECONDS, MAX_SECONDS + 1, 2**63, -(2**63) - 1, True])
    | st.floats(allow_nan=False)
)
def test_exp_is_what_fromtimestamp_accepts(value: object) -> None:
    seconds = exp_seconds(value)
    expected = fromtimestamp_or_none(value)
    assert (None if seconds is None else EPOCH + dt.timedelta(seconds=seconds)) == expected


# ---------------------------------------------------------------------------------------------------------
# The status summary


def chatgpt_auth(now: dt.datetime) -> AuthDotJson:
    access = make_jwt({"exp": 1_900_000_123, "https://api.openai.com/auth": {"chatgpt_plan_type": "pro"}})
    tokens = TokenData.from_tokens(id_token_for(), access, "rt_summary")
    return AuthDotJson.from_chatgpt_tokens(tokens, api_key="sk-summary-0123456789", now=now)


def summary_fields(codex_home: Path, mode: str) -> dict[str, object]:
    summary = status_summary(codex_home, mode)
    return {name: getattr(summary, name) for name in type(summary).__slots__}


@pytest.mark.parametrize(
    "auth",
    [
        chatgpt_auth(dt.datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=dt.UTC)),
        chatgpt_auth(dt.datetime(2026, 3, 7, 3, 39, 36, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
        AuthDotJson.from_api_key("sk-proj-summary0123456789"),
        AuthDotJson(auth_mode=AuthMode.CHATGPT),  # no tokens: nobody is signed in
    ],
    ids=["chatgpt", "chatgpt-offset", "apikey", "no-tokens"],
)
def test_auth_json_and_the_stores_give_the_same_summary(codex_home: Path, auth: AuthDotJson) -> None:
    """auth.json is read by ``_credentials`` itself, the process-memory store through ``storage``."""
    create_store(codex_home, "file").save(auth)
    create_store(codex_home, "ephemeral").save(auth)
    from_file = summary_fields(codex_home, "file")
    from_memory = summary_fields(codex_home, "ephemeral")
    for where in ("store", "store_location"):
        del from_file[where], from_memory[where]
    assert from_file == from_memory


@pytest.mark.parametrize(
    "fixture",
    ["rust_chatgpt_auth.json", "rust_chatgpt_no_account_auth.json", "rust_apikey_auth.json", "legacy_python_auth.json"],
)
def test_read_status_is_the_summary_with_datetimes(codex_home: Path, fixture: str) -> None:
    (codex_home / "auth.json").write_bytes((FIXTURES / fixture).read_bytes())
    summary = status_summary(codex_home)
    facts = read_status(codex_home)
    auth = create_store(codex_home, "file").load()
    assert auth is not None
    assert facts.last_refresh == auth.last_refresh
    if auth.tokens is not None and facts.auth_mode != "apikey":
        from codex_login.token_data import jwt_expiry

        assert facts.expires_at == jwt_expiry(auth.tokens.access_token)
    for name in type(summary).__slots__:
        value = getattr(summary, name)
        if name.endswith("_us"):
            expected = getattr(facts, name.removesuffix("_us"))
            assert (None if value is None else EPOCH + dt.timedelta(microseconds=value)) == expected
        else:
            assert getattr(facts, name) == value


def test_now_is_what_datetime_now_says() -> None:
    before = dt.datetime.now(dt.UTC)
    now = _credentials.now_us()
    after = dt.datetime.now(dt.UTC)
    assert before <= EPOCH + dt.timedelta(microseconds=now) <= after
    assert abs(now / 1e6 - time.time()) < 5


def test_auth_modes_are_the_enum_values() -> None:
    assert [mode.value for mode in AuthMode] == list(_credentials.AUTH_MODES)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"OPENAI_API_KEY": "sk-CNRYfirst", "OPENAI_API_KEY": "sk-CNRYsecond"}', "OPENAI_API_KEY"),
        ('{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-a", "auth_mode": "chatgpt"}', "auth_mode"),
        ('{"OPENAI_API_KEY": "sk-a", "\\u004fPENAI_API_KEY": "sk-b"}', "OPENAI_API_KEY"),  # same name, escaped
        ('{"OPENAI_API_KEY": null, "tokens": {"id_token": "x", "id_token": "y", "access_token": "a", '
         '"refresh_token": "r"}}', "id_token"),
    ],
)
def test_a_field_named_twice_is_refused_as_serde_does(text: str, field: str) -> None:
    # serde's derive refuses "duplicate field" where Python's json keeps the last one: the Rust CLI would call
    # the same file broken while codex-login signed in with its second key.
    with pytest.raises(_credentials.AuthParseError) as caught:
        _credentials.parse_auth_json(text)
    assert str(caught.value) == f"duplicate field `{field}`"
    assert "CNRY" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        '{"x": 1, "x": 2, "OPENAI_API_KEY": "sk-a"}',  # unknown fields: serde ignores them, repeated or not
        '{"extra": {"tokens": 1, "tokens": 2}, "OPENAI_API_KEY": "sk-a"}',  # a model name, but not its object
        '{"OPENAI_API_KEY": "sk-a \\"OPENAI_API_KEY\\" in the value"}',  # named twice, but once as text
    ],
)
def test_repeated_names_serde_ignores_are_accepted(text: str) -> None:
    assert _credentials.parse_auth_json(text).openai_api_key is not None


def test_a_document_nested_near_the_decoders_depth_is_invalid_json_not_a_recursion_error() -> None:
    # The duplicate-field check parses a second time, a few frames deeper than the first parse: a file at
    # the edge passed the first and raised RecursionError from the second (a traceback in `status`).
    for depth in range(900, 1100, 3):
        text = '{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-\\u0061", "x": ' + "[" * depth + "]" * depth + "}"
        try:
            assert _credentials.parse_auth_json(text).openai_api_key == "sk-a"
        except _credentials.AuthParseError as err:
            assert str(err).startswith("invalid JSON")
