"""Properties (hypothesis) of the three places where outside text meets our code.

tests/test_format.py already proves the formatters render any record as one clean line that parses back,
and tests/test_redact.py that URL redaction and terminal sanitizing hold for any input. These go one layer
up, to what the sign-in actually runs:

* the callback query parser: a round trip for any parameters, strict refusal of broken percent-encoding,
  and a live server whose verdict on any query without the right state is a 400 that leaves it waiting;
* redaction as the token endpoint path uses it: whatever body the endpoint sends, echoing the code or the
  verifier however it likes, neither reaches the logged event nor the returned error; the secret registry
  removes a registered value in every encoding it knows;
* the durable log through the real handler and the event catalogue: any number of events with hostile
  values is exactly that many lines, each one event, none longer than 4 KiB, none carrying a registered
  secret, and the callback's hostile ``error``/``error_description`` (security §3.3 step 8) never leave a
  raw control character in the log or an escape sequence in a terminal notice.
"""

from __future__ import annotations

import json
import logging
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from codex_login.diagnostics import events
from codex_login.diagnostics.format import parse_json_line, parse_text_line
from codex_login.diagnostics.logfile import LOG_FILE_NAME, init_login_file_logging
from codex_login.diagnostics.record import attempt_span
from codex_login.diagnostics.redact import SecretRegistry
from codex_login.errors import LoginError, TokenEndpointError
from codex_login.http import HttpResponse, HttpSettings
from codex_login.oauth import raise_for_token_status, scrub_secrets, url_encode
from codex_login.server import LoginServer, ServerOptions, run_login_server
from tests.hardening.conftest import raw_exchange, request_bytes

# Any text, controls, surrogates, bidi marks and U+2028 included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
HOSTILE_TEXT = st.one_of(
    ANY_TEXT,
    st.lists(st.sampled_from(["\r\n", "\n", "\r", "\x1b[31m", "\x1b]8;;http://x\x07", "\x07", "\x00", "\u2028",
                              "\u202e", "\ud800", '"', "\\", " x=1", "{", "}", "…", "é"]), max_size=20).map("".join),
)
# Prefixed like the canaries, so a secret can never be a piece of our own fixed texts ("TokenEndpointError").
SECRET = st.text(string.ascii_letters + string.digits + "-_", min_size=8, max_size=32).map(lambda s: "CNRYprop" + s)


# --------------------------------------------------------------------------------------------- the parser


def parse_query(query: str) -> dict[str, list[str]] | None:
    # The parser does not use the server's state; calling it unbound keeps this a pure property.
    return LoginServer._parse_query(cast(LoginServer, None), query)


PARAM_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)  # URLs carry UTF-8: no surrogates


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(PARAM_TEXT.filter(bool), PARAM_TEXT), max_size=64))
def test_the_callback_parser_round_trips_any_parameters(pairs: list[tuple[str, str]]) -> None:
    for encoder in (quote, quote_plus):
        query = urlencode(pairs, quote_via=encoder)
        parsed = parse_query(query)
        expected: dict[str, list[str]] = {}
        for key, value in pairs:
            expected.setdefault(key, []).append(value)
        assert parsed == expected


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(string.ascii_letters + "=&", max_size=20), bad=st.sampled_from(["%", "%Z1", "%1", "%g0", "%%"]),
       suffix=st.text(string.ascii_letters + "=&", max_size=20))
def test_broken_percent_encoding_is_refused(prefix: str, bad: str, suffix: str) -> None:
    assume(not (bad == "%1" and suffix[:1] in string.hexdigits))
    assume(not (bad == "%" and suffix[:2] and all(c in string.hexdigits for c in suffix[:2]) and len(suffix) >= 2))
    assert parse_query(prefix + bad + suffix) is None


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(min_size=1, max_size=12).filter(lambda b: not _is_utf8(b)))
def test_invalid_utf8_is_refused_not_replaced(raw: bytes) -> None:
    assert parse_query("code=" + quote(raw, safe="") + "&state=x") is None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.fixture(scope="module")
def live_server() -> Iterator[LoginServer]:
    home = Path(tempfile.mkdtemp(prefix="codex-login-props-"))
    server = run_login_server(
        ServerOptions(
            codex_home=home, issuer="http://127.0.0.1:9", port=0, open_browser=False,
            force_state="P" * 43, http=HttpSettings(env={}), timeout=600,
        )
    )
    try:
        yield server
    finally:
        server.cancel()
        shutil.rmtree(home, ignore_errors=True)


QUERY_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != "#")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(QUERY_CHARS, max_size=300), state=st.one_of(st.none(), st.text(string.ascii_letters, max_size=50)))
def test_any_query_without_the_right_state_is_a_400_and_the_server_waits(
    live_server: LoginServer, query: str, state: str | None
) -> None:
    assume(state != "P" * 43)
    target = f"/auth/callback?{query}" + (f"&state={state}" if state is not None else "")
    reply = raw_exchange(live_server.actual_port, request_bytes(live_server.actual_port, target))
    assert reply.status == 400, (target, reply.status, reply.text)
    assert "location" not in reply.headers
    assert not live_server.done


# --------------------------------------------------------------------------------------------- redaction


@settings(max_examples=300, deadline=None)
@given(secret=SECRET, before=ANY_TEXT, after=ANY_TEXT, encoded=st.booleans())
def test_scrub_secrets_removes_the_value_and_its_url_form(secret: str, before: str, after: str, encoded: bool) -> None:
    text = before + (url_encode(secret) if encoded else secret) + after
    scrubbed = scrub_secrets(text, [secret])
    assume(secret not in before + "<redacted>" + after)  # a value the surrounding text itself spells
    assert secret not in scrubbed


@settings(max_examples=300, deadline=None)
@given(secret=SECRET, before=ANY_TEXT, after=ANY_TEXT,
       form=st.sampled_from(["raw", "quote", "quote_plus", "json"]))
def test_the_secret_registry_removes_every_encoded_form(secret: str, before: str, after: str, form: str) -> None:
    registry = SecretRegistry()
    registry.add("code", secret)
    shown = {
        "raw": secret,
        "quote": quote(secret, safe=""),
        "quote_plus": quote_plus(secret, safe=""),
        "json": json.dumps(secret)[1:-1],
    }[form]
    scrubbed = registry.scrub(before + shown + after)
    assume(secret not in before + after and shown not in before + after)
    assert secret not in scrubbed.replace(before, "").replace(after, "")
    assert "<redacted:code>" in scrubbed


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.tuples(SECRET, SECRET),
    status=st.sampled_from([400, 401, 403, 429, 500, 502]),
    shape=st.sampled_from(["json-description", "json-nested", "json-code", "text"]),
    around=st.tuples(ANY_TEXT, ANY_TEXT),
    echo=st.sampled_from(["code", "verifier", "both-encoded"]),
)
def test_token_endpoint_errors_never_carry_the_code_or_verifier(
    secrets: tuple[str, str], status: int, shape: str, around: tuple[str, str], echo: str
) -> None:
    (code, verifier), (before, after) = secrets, around
    echoed = {
        "code": code,
        "verifier": verifier,
        "both-encoded": url_encode(code) + " " + url_encode(verifier),
    }[echo]
    text = before + echoed + after
    body = {
        "json-description": json.dumps({"error": "invalid_grant", "error_description": text}),
        "json-nested": json.dumps({"error": {"code": "x", "message": text}}),
        "json-code": json.dumps({"error": text}),
        "text": text,
    }[shape].encode("utf-8", "surrogatepass")
    assume(not any(s in before + after for s in (code, verifier)))
    response = HttpResponse(status=status, headers={"content-type": "application/json"}, body=body)
    logger = logging.getLogger("codex_login.hardening.property")
    capture = _Capture()
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        with pytest.raises(TokenEndpointError) as raised:
            raise_for_token_status(response, secrets=[code, verifier], logger=logger)
    finally:
        logger.removeHandler(capture)
    surfaces = [str(raised.value), repr(raised.value)]
    for record in capture.records:
        surfaces += [str(v) for v in getattr(record, "codex_fields", {}).values()]
    for surface in surfaces:
        assert code not in surface and verifier not in surface, surface
        assert url_encode(code) not in surface and url_encode(verifier) not in surface


# --------------------------------------------------------------------------------------------- the log


EVENT_CALLS = st.lists(
    st.one_of(
        st.builds(lambda t: ("oauth_error", t), HOSTILE_TEXT),
        st.builds(lambda t: ("non_success", t), HOSTILE_TEXT),
        st.builds(lambda t: ("browser_failed", t), HOSTILE_TEXT),
        st.builds(lambda t: ("rejected", t), HOSTILE_TEXT),
    ),
    min_size=1,
    max_size=25,
)


def _emit(kind: str, text: str) -> None:
    if kind == "oauth_error":
        events.oauth_callback_error(error_code=text, has_error_description=bool(text))
    elif kind == "non_success":
        events.token_non_success(status="400 Bad Request", error_code=text, error_message=text)
    elif kind == "browser_failed":
        events.browser_failed(opener=text, reason=text)
    else:
        events.request_rejected(reason=text, path=text, http_status=400)


@settings(max_examples=120, deadline=None)
@given(calls=EVENT_CALLS, log_format=st.sampled_from(["text", "json"]), secret=SECRET)
def test_every_event_is_exactly_one_line_without_registered_secrets(
    calls: list[tuple[str, str]], log_format: str, secret: str
) -> None:
    from codex_login.diagnostics.redact import SECRETS

    directory = Path(tempfile.mkdtemp(prefix="codex-login-log-prop-"))
    handle = init_login_file_logging(directory, log_format=log_format, env={"RUST_LOG": "trace"})
    SECRETS.add("code", secret)
    try:
        with attempt_span("la_0123abcd"):
            for kind, text in calls:
                _emit(kind, text[: len(text) // 2] + secret + text[len(text) // 2 :])
    finally:
        handle.close()
        SECRETS.clear()
    try:
        data = (directory / LOG_FILE_NAME).read_bytes()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines.pop()
    assert len(lines) == len(calls)
    for line in lines:
        assert len(line.encode("utf-8")) <= 4096
        parsed = parse_json_line(line) if log_format == "json" else parse_text_line(line)
        assert parsed is not None and parsed.attempt == "la_0123abcd"
        assert secret not in line
        for value in parsed.fields.values():
            assert secret not in str(value)


@settings(max_examples=40, deadline=None)
@given(error=HOSTILE_TEXT.filter(bool), description=HOSTILE_TEXT)
def test_hostile_callback_errors_leave_clean_log_lines_and_terminal_notices(error: str, description: str) -> None:
    directory = Path(tempfile.mkdtemp(prefix="codex-login-cb-prop-"))
    handle = init_login_file_logging(directory / "log", log_format="json", env={})
    notices: list[str] = []
    try:
        server = run_login_server(
            ServerOptions(
                codex_home=directory, issuer="http://127.0.0.1:9", port=0, open_browser=False,
                force_state="Q" * 43, http=HttpSettings(env={}), timeout=30, notice=notices.append,
            )
        )
        query = urlencode(
            {"error": error, "error_description": description, "state": "Q" * 43}, encoding="utf-8",
            errors="surrogatepass",
        )
        reply = raw_exchange(server.actual_port, request_bytes(server.actual_port, f"/auth/callback?{query}"))
        # A surrogate cannot be valid UTF-8 in a URL: refused as malformed; anything else ends the attempt.
        assert reply.status in (200, 400)
        if reply.status == 400:
            server.cancel()
        with pytest.raises(LoginError):
            server.block_until_done(10)
    finally:
        handle.close()
    try:
        lines = (directory / "log" / LOG_FILE_NAME).read_bytes().split(b"\n")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert lines.pop() == b""
    for line in lines:
        assert not any(byte < 0x20 for byte in line), line
        assert parse_json_line(line.decode("ascii")) is not None
    assert sum(b'"login finished"' in line for line in lines) == 1
    for notice in notices:
        assert not any(ch in notice for ch in "\x1b\x07\r\n\x9b"), notice
