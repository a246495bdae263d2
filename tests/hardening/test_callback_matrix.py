"""Security matrix §4, groups A (the callback query) and B (HTTP-level behaviour of the loopback server).

Every row runs the real ``codex-login`` against the scripted issuer and ends with :meth:`Harness.finish`,
which checks the seven invariants. Non-terminal rows send their bad request, check the answer, check the
sign-in is still waiting, then complete it with the real callback: a bad request must never end (or
spoil) the attempt. Where the implementation chose among the matrix's options, the test pins the choice:

* a bad query (invalid percent-encoding, invalid UTF-8, too many parameters, a code with control
  characters) is ``400 Bad Request`` and the attempt keeps waiting;
* a duplicated ``code``/``state``/``error``/``iss`` is ``400`` and the attempt keeps waiting (when the
  last ``state`` is wrong, the state check answers first: ``400 State mismatch``);
* a request line over 8 KiB is ``414`` (answered as soon as 8 KiB arrived without a CRLF, however long
  the line); a head over the 16 KiB read cap with a shorter line is ``431``; the client still sending gets
  the answer all the same (the server reads what is left before closing);
* ``/success`` and ``/cancel`` from a web page (``Origin``, or ``Sec-Fetch-Dest`` other than ``document``;
  for ``/cancel`` also ``Sec-Fetch-Site`` other than ``none``) are ``403`` and change nothing, before and after
  the callback; a plain ``/success`` before this attempt saved credentials is ``404``; a plain ``/cancel`` (the
  takeover request of a newer login) cancels (parity);
* ``CONNECT`` with an authority-form target is ``400`` (only origin-form targets are served), other
  methods ``405`` with ``Allow: GET, HEAD`` and no CORS headers;
* a request head with a control character other than in CRLF (a bare CR or LF, a NUL) is ``400``;
* the callback's ``error_description`` is cut to 1 KiB on the terminal and 4 KiB on the page.
"""

from __future__ import annotations

import html
import itertools
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from codex_login.diagnostics.format import parse_json_line, parse_text_line
from codex_login.pages import SECURITY_HEADERS
from tests.hardening.conftest import (
    PAGE,
    TERMINAL,
    CliRun,
    Expect,
    Harness,
    RawReply,
    fd_count,
    free_port,
    inspect_page,
    raw_exchange,
    read_log,
    request_bytes,
    rss_kib,
)
from tests.support.scripted_issuer import Answer, Recorded

PAGE_HEADERS = {name.lower(): value for name, value in SECURITY_HEADERS.items()}


def assert_page_headers(reply: RawReply) -> None:
    """Every answer: the security headers of D-4, ``Connection: close``, a correct ``Content-Length``."""
    for name, value in PAGE_HEADERS.items():
        assert reply.headers.get(name) == value, (name, reply.headers)
    assert reply.headers["connection"] == "close"
    assert int(reply.headers["content-length"]) == len(reply.body) or reply.body == b""


def assert_rejected(reply: RawReply, status: int, body: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.text)
    assert "location" not in reply.headers
    assert_page_headers(reply)
    if body is not None:
        assert reply.text == body


def complete_and_finish(harness: Harness, run: CliRun) -> None:
    """After a non-terminal row: the attempt still waits, the real callback succeeds, and only that one
    callback reached the token endpoint."""
    harness.still_waiting(run)
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert len(harness.issuer.token_requests()) == 1


def log_events(harness: Harness, log_format: str = "text") -> list[tuple[str, dict[str, object]]]:
    events: list[tuple[str, dict[str, object]]] = []
    for text in read_log(harness.codex_home / "log").values():
        for line in text.splitlines():
            parsed = parse_json_line(line) if log_format == "json" else parse_text_line(line)
            assert parsed is not None
            events.append((parsed.message, dict(parsed.fields)))
    return events


# --------------------------------------------------------------------------------------------- group A


def test_a1_no_query_is_a_state_mismatch_and_the_flow_waits(harness: Harness) -> None:
    run = harness.login()
    assert_rejected(harness.get(run, "/auth/callback"), 400, "State mismatch")
    complete_and_finish(harness, run)
    assert ("login callback state mismatch", {
        "path": "/auth/callback", "has_code": False, "has_state": False, "has_error": False
    }) in log_events(harness)


MALFORMED_CODES = ["%ZZ", "%", "ab%2", "%FF%FE", "%C3%28", "%00", "a%0Db", "a%1B%5B2J"]


def test_a2_malformed_encodings_are_400_and_the_flow_waits(harness: Harness) -> None:
    run = harness.login()
    assert run.state is not None
    for bad in MALFORMED_CODES:
        # The right state, so only the malformed code can be the reason (strict decoding, RFC 6749 A.11).
        reply = harness.callback(run, f"code={bad}&state={quote(run.state)}")
        assert_rejected(reply, 400)
        assert reply.text.startswith("Bad Request"), (bad, reply.text)
    assert harness.issuer.token_requests() == []
    complete_and_finish(harness, run)


def test_a2_plus_and_percent20_decode_alike(harness: Harness) -> None:
    run = harness.login()
    code = harness.canaries["code"]
    assert run.state is not None
    redirect = harness.callback(run, f"code={code}+x%20y&state={quote(run.state)}")
    assert redirect.status == 302
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))
    assert harness.issuer.token_requests()[0].form["code"] == f"{code} x y"


@pytest.mark.parametrize("query_of", [lambda state: f"state={state}", lambda state: f"code=&state={state}"],
                         ids=["a3_no_code", "a7_empty_code"])
def test_a3_a7_missing_or_empty_code_is_a_terminal_error(harness: Harness, query_of: object) -> None:
    run = harness.login()
    assert run.state is not None and callable(query_of)
    page = harness.callback(run, query_of(quote(run.state)))
    run.end_attempt()
    assert page.status == 200 and "Missing authorization code" in page.text
    assert "missing_authorization_code" in page.text
    harness.finish(run, Expect(rc=1))
    assert "Error logging in: Missing authorization code. Sign-in could not be completed." in run.stderr
    assert harness.issuer.token_requests() == []


def test_a4_code_without_state_is_400_and_the_flow_waits(harness: Harness) -> None:
    run = harness.login()
    assert_rejected(harness.callback(run, f"code={harness.canaries['code']}"), 400, "State mismatch")
    complete_and_finish(harness, run)


def test_a5_wrong_state_is_400_and_logs_no_values(harness: Harness) -> None:
    run = harness.login()
    assert run.state is not None
    wrong = harness.canaries.add("wrong_state", "CNRYws")[: len(run.state)]
    wrong = (wrong + "A" * len(run.state))[: len(run.state)]
    assert_rejected(harness.callback(run, f"code={harness.canaries['code']}&state={wrong}"), 400, "State mismatch")
    complete_and_finish(harness, run)
    assert ("received login callback", {
        "path": "/auth/callback", "has_code": True, "has_state": True, "has_error": False, "state_valid": False
    }) in log_events(harness)


def test_a6_duplicate_parameters_are_400_and_never_exchanged(harness: Harness) -> None:
    run = harness.login()
    good = quote(run.state or "")
    code = harness.canaries["code"]
    cases = {
        f"code={code}&state={good}&state=evil": "State mismatch",  # the last state is checked first
        f"code={code}&state=evil&state={good}": "Bad Request: duplicate parameter",
        f"code=a&code={code}&state={good}": "Bad Request: duplicate parameter",
        f"code={code}&code=a&state={good}": "Bad Request: duplicate parameter",
        f"error=x&error=y&state={good}": "Bad Request: duplicate parameter",
        f"state={good}&error=y&error=x": "Bad Request: duplicate parameter",
        f"code={code}&state={good}&iss=a&iss=b": "Bad Request: duplicate parameter",
    }
    for query, body in cases.items():
        assert_rejected(harness.callback(run, query), 400, body)
    assert harness.issuer.token_requests() == []
    complete_and_finish(harness, run)
    reasons = [fields.get("reason") for message, fields in log_events(harness) if message == "login server rejected request"]
    assert reasons.count("duplicate_param") == len(cases) - 1


def test_a8_overlong_values_and_lines_are_refused_with_bounded_memory(harness: Harness) -> None:
    run = harness.login()
    good = quote(run.state or "")
    code = harness.canaries["code"]
    # A state far longer than ours but under the line cap: refused as a mismatch (no comparison of its
    # content), and INV-5 checks that no log line grew past 4 KiB with it.
    assert_rejected(harness.callback(run, f"code={code}&state={'s' * 6000}"), 400, "State mismatch")
    # A request line just over 8 KiB (the head still fits the 16 KiB read cap): 414 before any parsing.
    assert_rejected(harness.callback(run, f"code={code}&state={'s' * 10_000}"), 414)
    assert_rejected(harness.callback(run, f"code={'c' * 8 * 1024}&state={good}"), 414)
    assert run.proc.pid
    before = rss_kib(run.proc.pid)
    # Over the 16 KiB head cap too: still a URL too long (security A8), not a head too large.
    for size in [60 * 1024] * 50 + [70 * 1024]:
        assert_rejected(harness.callback(run, f"code={code}&state={good}&pad={'p' * size}"), 414, "URI Too Long")
    grown = rss_kib(run.proc.pid) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB over 51 oversized requests"
    assert harness.issuer.token_requests() == []
    complete_and_finish(harness, run)


def test_a9_too_many_parameters_are_refused_and_the_server_stays_responsive(harness: Harness) -> None:
    run = harness.login()
    good = quote(run.state or "")
    many = "&".join(f"a{i}=1" for i in range(100))
    assert_rejected(harness.callback(run, f"{many}&code=c&state={good}"), 400, "Bad Request")
    huge = "&".join("a=1" for _ in range(10_000))
    assert_rejected(harness.callback(run, f"code=c&state={good}&{huge}"), 414, "URI Too Long")
    complete_and_finish(harness, run)


def test_a10_unknown_parameters_are_ignored_and_a_matching_iss_is_accepted(harness: Harness) -> None:
    run = harness.login()
    extra = f"scope=openid&session_state=abc&foo=bar&iss={quote(harness.issuer.url, safe='')}"
    redirect = harness.callback(run, f"{harness.good_query(run)}&{extra}")
    assert redirect.status == 302
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))


def test_a10_iss_scheme_and_host_compare_without_case(harness: Harness) -> None:
    """RFC 3986 §6.2.2.1: ``HTTP://127.0.0.1:PORT/`` is the issuer ``http://127.0.0.1:PORT``; a sign-in whose
    issuer was typed in capitals could never complete (every callback: 400 Issuer mismatch)."""
    run = harness.login()
    scheme, rest = harness.issuer.url.split("://", 1)
    shouted = f"{scheme.upper()}://{rest.upper()}/"
    redirect = harness.callback(run, f"{harness.good_query(run)}&iss={quote(shouted, safe='')}")
    assert redirect.status == 302
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))


def test_a10_an_empty_iss_counts_as_omitted(harness: Harness) -> None:
    # RFC 6749 §3.1: parameters sent without a value are treated as if they were omitted from the request.
    run = harness.login()
    redirect = harness.callback(run, f"{harness.good_query(run)}&iss=")
    assert redirect.status == 302
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))


def test_a10_a_foreign_iss_is_400_and_the_flow_waits(harness: Harness) -> None:
    run = harness.login()
    reply = harness.callback(run, f"{harness.good_query(run)}&iss={quote('https://evil.example', safe='')}")
    assert_rejected(reply, 400, "Issuer mismatch")
    # Only scheme and host are case-insensitive: a path that differs in case is another issuer.
    other_path = quote(f"{harness.issuer.url}/Tenant", safe="")
    reply = harness.callback(run, f"{harness.good_query(run)}&iss={other_path}")
    assert_rejected(reply, 400, "Issuer mismatch")
    complete_and_finish(harness, run)


def test_a11_only_the_exact_callback_path_is_served(harness: Harness) -> None:
    run = harness.login()
    query = harness.good_query(run)
    for path in ("/auth/callback/", "/AUTH/CALLBACK", "//auth/callback", "/auth/callback;x", "/auth/callback%2f..",
                 "/auth/callback%2F", "/\\evil.com", "/auth/./callback", "/auth/callback/../callback"):
        assert_rejected(harness.get(run, f"{path}?{query}"), 404, "Not Found")
    port = run.port
    assert port is not None
    absolute = harness.send(run, request_bytes(port, f"http://evil.example/auth/callback?{query}"))
    assert_rejected(absolute, 400)
    complete_and_finish(harness, run)


def test_a12_a_fragment_in_the_request_target_is_400(harness: Harness) -> None:
    run = harness.login()
    assert_rejected(harness.get(run, f"/auth/callback?{harness.good_query(run)}#frag"), 400)
    complete_and_finish(harness, run)


XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</title><svg onload=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
]


def test_a13a_reflected_description_is_escaped_only_with_the_right_state(harness: Harness) -> None:
    run = harness.login()
    marker = harness.canaries.add("callback_description", "CNRYcbdesc", allowed=(PAGE, TERMINAL))
    description = quote(marker + " " + " ".join(XSS), safe="")
    wrong = harness.callback(run, f"error=access_denied&error_description={description}&state=wrong")
    assert_rejected(wrong, 400, "State mismatch")  # nothing reflected without the state
    page = harness.callback(run, f"error=access_denied&error_description={description}&state={quote(run.state or '')}")
    run.end_attempt()
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert_page_headers(page)
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    facts = inspect_page(page.text)
    assert "script" not in facts.tags and facts.handler_attributes == []
    assert not any(url.startswith("javascript:") for url in facts.urls)
    assert html.escape("<script>alert(1)</script>") in page.text
    assert marker in page.text  # positive control: the description is shown, escaped
    harness.finish(run, Expect(rc=1))
    assert f"Error logging in: Sign-in failed: {marker} <script>alert(1)</script>" in run.stderr
    assert harness.issuer.token_requests() == []


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a13b_crlf_in_the_description_cannot_forge_a_log_line(harness: Harness, log_format: str) -> None:
    run = harness.login(log_format=log_format)
    forged = (
        '{"timestamp":"2026-01-01T00:00:00.000000Z","level":"INFO","fields":{"message":"login finished",'
        '"outcome":"success"},"target":"codex_cli::login"}'
        if log_format == "json"
        else "2026-01-01T00:00:00.000000Z  INFO codex_cli::login: login finished outcome=success forged=yes"
    )
    description = quote(f"bad\r\n{forged}\r\nmore\u2028end", safe="")
    page = harness.callback(run, f"error=access_denied&error_description={description}&state={quote(run.state or '')}")
    run.end_attempt()
    assert page.status == 200
    harness.finish(run, Expect(rc=1, log_format=log_format))  # INV-5: every line parses, one login finished
    log = "".join(read_log(harness.codex_home / "log").values())
    assert "forged" not in log and "2026-01-01T00:00:00" not in log
    assert "\r" not in run.stderr
    assert "Error logging in: Sign-in failed: bad " in run.stderr


def test_a13c_terminal_escapes_never_reach_stderr(harness: Harness) -> None:
    run = harness.login()
    hostile = "\x1b[2J\x1b[31mred\x1b]8;;http://evil.example\x07link\x1b]8;;\x07\x07bell\u202eevil\r\nnext"
    page = harness.callback(
        run, f"error=access_denied&error_description={quote(hostile, safe='')}&state={quote(run.state or '')}"
    )
    run.end_attempt()
    assert page.status == 200
    for raw in (b"\x1b", b"\x07", b"\r"):
        assert raw not in page.body
    facts = inspect_page(page.text)
    assert any("\u202e" in text for text in facts.isolated_text)
    assert not any("\u202e" in text for text in facts.loose_text)
    harness.finish(run, Expect(rc=1))
    for raw in (b"\x1b", b"\x07", b"\r", "\u202e".encode()):
        assert raw not in run.stderr_bytes()
    assert "redlink" in run.stderr  # the text survives, the sequences do not


def test_a13d_huge_descriptions_are_refused_or_truncated(harness: Harness) -> None:
    run = harness.login()
    state = quote(run.state or "")
    too_big = harness.callback(run, f"error=access_denied&error_description={'x' * 1_000_000}&state={state}")
    assert_rejected(too_big, 414, "URI Too Long")
    harness.still_waiting(run)
    # Under the 8 KiB line cap: shown, but cut (page 4 KiB, terminal 1 KiB).
    page = harness.callback(run, f"error=access_denied&error_description={'D' * 7000}&state={state}")
    run.end_attempt()
    assert page.status == 200
    assert max(len(run_) for run_ in re.findall("D+", page.text)) <= 4096
    harness.finish(run, Expect(rc=1))
    for line in run.stderr.splitlines():
        assert line.count("D") <= 1024, f"a terminal line carries {line.count('D')} characters of the description"


def test_a13e_entitlement_error_has_the_parity_copy(harness: Harness) -> None:
    run = harness.login()
    page = harness.callback(
        run, f"error=access_denied&error_description=missing_codex_entitlement&state={quote(run.state or '')}"
    )
    run.end_attempt()
    assert "You do not have access to Codex" in page.text
    assert "Contact your workspace administrator to request access to Codex." in page.text
    # The raw marker is not reflected; it appears only inside our own advice sentence for denied sign-ins.
    from codex_login.diagnostics.advice import advice_for

    advice = html.escape(advice_for("denied").hint)
    assert "missing_codex_entitlement" not in page.text.replace(advice, "")
    harness.finish(run, Expect(rc=1))
    assert "Codex is not enabled for your workspace" in run.stderr


def test_a14_hostile_error_code_is_logged_as_invalid_and_escaped(harness: Harness) -> None:
    run = harness.login()
    hostile = "<b>x</b>\n\x1b[2J\x1b]8;;http://evil.example\x07\r\x9b31m" + "A" * 170
    page = harness.callback(run, f"error={quote(hostile, safe='')}&state={quote(run.state or '')}")
    run.end_attempt()
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    harness.finish(run, Expect(rc=1))
    for raw in (b"\x1b", b"\x07", b"\r", "\x9b".encode()):
        assert raw not in page.body and raw not in run.stderr_bytes(), raw
    assert ("oauth callback returned error", {"error_code": "<invalid>", "has_error_description": False}) in log_events(
        harness
    )


def test_a15_code_and_error_together_is_an_error_without_exchange(harness: Harness) -> None:
    run = harness.login()
    page = harness.callback(run, f"code={harness.canaries['code']}&error=access_denied&state={quote(run.state or '')}")
    run.end_attempt()
    assert page.status == 200 and "access_denied" in page.text
    harness.finish(run, Expect(rc=1))
    assert harness.issuer.token_requests() == []
    assert "login finished" in "".join(read_log(harness.codex_home / "log").values())


def test_a16_a_second_callback_after_success_is_refused_without_exchange(harness: Harness) -> None:
    run = harness.login()
    redirect = harness.callback(run, harness.good_query(run))
    assert redirect.status == 302
    saved = harness.auth_path.read_bytes()
    stat_saved = harness.auth_path.stat()
    reload = harness.callback(run, harness.good_query(run))
    fresh = harness.callback(run, harness.good_query(run, code="another-code-value"))
    for reply in (reload, fresh):
        assert_rejected(reply, 400, "This sign-in was already completed. Return to your terminal.")
    assert harness.auth_path.read_bytes() == saved and harness.auth_path.stat().st_ino == stat_saved.st_ino
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))
    assert len(harness.issuer.token_requests()) == 1


def test_a16_a_second_callback_during_the_exchange_is_refused_without_a_second_exchange(harness: Harness) -> None:
    """A double submit (the browser retried, or another tab): the second callback arrives while the first
    one's token request is still out. It waits, then gets the "already completed" answer; one exchange."""
    answer = harness.issuer.token
    assert isinstance(answer, Answer)
    release = threading.Event()

    def slow(_request: Recorded) -> Answer:
        release.wait(10)
        return answer

    harness.issuer.token = slow
    run = harness.login()
    replies: dict[str, RawReply] = {}

    def send(name: str, query: str) -> None:
        replies[name] = harness.callback(run, query)

    first = threading.Thread(target=send, args=("first", harness.good_query(run)))
    first.start()
    deadline = time.monotonic() + 10
    while not harness.issuer.token_requests():
        assert time.monotonic() < deadline, "the token request never arrived"
        time.sleep(0.01)
    # Both are sent in full while the exchange is still held.
    port = run.port
    assert port is not None
    pending: dict[str, socket.socket] = {}
    for name, code in (("reload", None), ("new-code", "another-code-value")):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(request_bytes(port, f"/auth/callback?{harness.good_query(run, code)}"))
        pending[name] = sock
    assert "first" not in replies  # still exchanging
    release.set()
    for name, sock in pending.items():
        with sock:
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        replies[name] = RawReply.parse(data)
        harness.pages.append(replies[name])
    first.join(10)
    assert replies["first"].status == 302
    for name in ("reload", "new-code"):
        assert_rejected(replies[name], 400, "This sign-in was already completed. Return to your terminal.")
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))
    assert len(harness.issuer.token_requests()) == 1


def test_a17_a_callback_the_instant_the_server_starts_is_accepted(tmp_path: Path) -> None:
    """In process: the port is bound before the URL exists, so the fastest possible callback works."""
    from codex_login.http import HttpSettings
    from codex_login.server import LoginSuccess, ServerOptions, run_login_server
    from tests.hardening.conftest import FileSnapshot, leftovers, port_refuses
    from tests.support.scripted_issuer import ScriptedIssuer

    home = tmp_path / "codex-home"
    home.mkdir(mode=0o700)
    with ScriptedIssuer() as issuer:
        server = run_login_server(
            ServerOptions(
                codex_home=home, issuer=issuer.url, port=0, open_browser=False, force_state="s" * 43,
                http=HttpSettings(env={}), timeout=30, success_grace=0.5,
            )
        )
        reply = raw_exchange(server.actual_port, request_bytes(server.actual_port, f"/auth/callback?code=c&state={'s' * 43}"))
        assert reply.status == 302
        assert isinstance(server.block_until_done(10), LoginSuccess)
        ended = time.monotonic()
        while not port_refuses(server.actual_port):
            assert time.monotonic() - ended < 1.0, "INV-3: port still open"
            time.sleep(0.02)
    assert FileSnapshot.take(home / "auth.json").content is not None
    assert leftovers(home) == []


def test_a18_a_replayed_code_and_state_from_an_earlier_attempt_is_refused(harness: Harness) -> None:
    first = harness.login()
    old_query = harness.good_query(first)
    harness.complete(first)
    harness.finish(first, Expect(rc=0, success=True))
    harness.accept_current_auth()
    second = harness.login()
    assert_rejected(harness.callback(second, old_query), 400, "State mismatch")
    harness.still_waiting(second)
    harness.complete(second)
    harness.finish(second, Expect(rc=0, success=True, attempts=2))
    assert len(harness.issuer.token_requests()) == 2


# --------------------------------------------------------------------------------------------- group B


def test_b1_only_loopback_hosts_with_our_port_are_served(harness: Harness) -> None:
    run = harness.login()
    port = run.port
    assert port is not None
    target = f"/auth/callback?{harness.good_query(run)}"
    for host in (f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", "localhost:9999", "127.0.0.1", f"[::2]:{port}"):
        assert_rejected(harness.send(run, request_bytes(port, target, host=host)), 400,
                        "Bad Request: unexpected Host header")
    no_host = harness.send(run, f"GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    assert_rejected(no_host, 400, "Bad Request: unexpected Host header")
    # Two Hosts, a foreign one first: the last one used to win, and the code was exchanged (RFC 9112 §3.2: 400).
    for hosts in ((f"evil.example:{port}", f"localhost:{port}"), (f"localhost:{port}", f"localhost:{port}")):
        twice = "".join(f"Host: {host}\r\n" for host in hosts)
        reply = harness.send(run, f"GET {target} HTTP/1.1\r\n{twice}Connection: close\r\n\r\n".encode())
        assert_rejected(reply, 400, "Bad Request: repeated header")
    assert harness.issuer.token_requests() == []  # the state was not consumed
    # The three loopback names with our port pass the Host check (a wrong state then answers), over both
    # address families.
    for host, address in ((f"localhost:{port}", "127.0.0.1"), (f"127.0.0.1:{port}", "127.0.0.1"),
                          (f"[::1]:{port}", "127.0.0.1"), (f"[::1]:{port}", "::1"), (f"localhost:{port}", "::1")):
        reply = harness.send(run, request_bytes(port, "/auth/callback?state=wrong", host=host), host=address)
        assert_rejected(reply, 400, "State mismatch")
    upper = harness.send(run, request_bytes(port, target, host=f"LOCALHOST:{port}"))
    assert upper.status == 302
    harness.get(run, "/success")
    run.end_attempt()
    harness.finish(run, Expect(rc=0, success=True))
    reasons = [f.get("reason") for m, f in log_events(harness) if m == "login server rejected request"]
    assert reasons == ["unexpected_host"] * 6 + ["duplicate_header"] * 2


def test_b2_too_many_or_too_large_headers_are_431(harness: Harness) -> None:
    run = harness.login()
    many = {f"X-H{i}": "v" for i in range(101)}
    assert_rejected(harness.get(run, f"/auth/callback?{harness.good_query(run)}", headers=many), 431)
    one_big = harness.get(run, "/auth/callback", headers={"X-Big": "b" * 70_000})
    assert_rejected(one_big, 431, "Request Header Fields Too Large")
    total = {f"X-H{i}": "v" * 400 for i in range(50)}
    assert_rejected(harness.get(run, "/auth/callback", headers=total), 431)
    complete_and_finish(harness, run)


def test_b3_bodies_are_never_read(harness: Harness) -> None:
    run = harness.login()
    port = run.port
    assert port is not None
    before = rss_kib(run.proc.pid)
    head = request_bytes(port, "/auth/callback?state=wrong", headers={"Content-Length": "1073741824"})
    started = time.monotonic()
    assert_rejected(harness.send(run, head, half_close=False), 400, "State mismatch")
    chunked = request_bytes(port, "/auth/callback?state=wrong", headers={"Transfer-Encoding": "chunked"})
    assert_rejected(harness.send(run, chunked + b"5\r\nhello\r\n" * 1000, half_close=False), 400)
    with_body = request_bytes(port, "/nothing", headers={"Content-Length": "11"}) + b"hello world"
    assert_rejected(harness.send(run, with_body, half_close=False), 404)
    assert time.monotonic() - started < 3.0
    assert rss_kib(run.proc.pid) - before < 8 * 1024
    complete_and_finish(harness, run)


def test_b4_other_methods_are_405_without_cors(harness: Harness) -> None:
    run = harness.login()
    target = f"/auth/callback?{harness.good_query(run)}"
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        reply = harness.get(run, target, method=method)
        assert_rejected(reply, 405, "Method Not Allowed")
        assert reply.headers["allow"] == "GET, HEAD"
        assert not any(name.startswith("access-control-") for name in reply.headers)
    port = run.port
    assert port is not None
    connect = harness.send(run, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert_rejected(connect, 400)
    head = harness.get(run, "/auth/callback", method="HEAD")
    assert head.status == 400 and head.body == b"" and head.headers["content-length"] == str(len("State mismatch"))
    missing = harness.get(run, "/nothing", method="HEAD")
    assert missing.status == 404 and missing.body == b""
    assert harness.issuer.token_requests() == []
    complete_and_finish(harness, run)


def test_b5_slowloris_does_not_delay_the_real_callback(harness: Harness) -> None:
    run = harness.login()
    port = run.port
    assert port is not None
    idle = socket.create_connection(("127.0.0.1", port))
    dripping = socket.create_connection(("127.0.0.1", port))
    stop = threading.Event()

    def drip() -> None:
        for byte in b"GET /auth/callback?state=x HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            if stop.wait(1.0):
                return
            try:
                dripping.send(bytes([byte]))
            except OSError:
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        time.sleep(1.5)
        started = time.monotonic()
        harness.complete(run)
        assert time.monotonic() - started < 2.0
    finally:
        stop.set()
        dripper.join(3)
        idle.close()
        dripping.close()
    harness.finish(run, Expect(rc=0, success=True))


def test_b5_idle_and_dripping_connections_are_closed_at_the_head_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with the 5 s head deadline shortened to 0.5 s: the deadline counts from the connection's
    first read and is not pushed back by each byte a slowloris client drips, so both an idle socket and one
    sending a byte every 0.1 s are closed by the server, while the real callback is served at once."""
    from codex_login import server as server_module
    from codex_login.http import HttpSettings
    from codex_login.server import LoginSuccess, ServerOptions, run_login_server
    from tests.support.scripted_issuer import ScriptedIssuer

    deadline = 0.5
    monkeypatch.setattr(server_module, "HEAD_DEADLINE_SECONDS", deadline)
    home = tmp_path / "codex-home"
    home.mkdir(mode=0o700)
    with ScriptedIssuer() as issuer:
        server = run_login_server(
            ServerOptions(
                codex_home=home, issuer=issuer.url, port=0, open_browser=False, force_state="b" * 43,
                http=HttpSettings(env={}), timeout=30,
            )
        )
        port = server.actual_port
        closed_after: dict[str, float] = {}

        def watch(name: str, drip: bool) -> None:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.settimeout(0.1)
            started = time.monotonic()
            pending = b"GET /auth/callback?state=x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
            with sock:
                while time.monotonic() - started < 5:
                    try:
                        if sock.recv(4096) == b"":
                            closed_after[name] = time.monotonic() - started
                            return
                    except TimeoutError:
                        pass
                    except ConnectionResetError:
                        closed_after[name] = time.monotonic() - started
                        return
                    if drip and pending:
                        try:
                            sock.send(pending[:1])
                        except OSError:
                            pass
                        pending = pending[1:]

        watchers = [threading.Thread(target=watch, args=(name, name == "dripping")) for name in ("idle", "dripping")]
        for watcher in watchers:
            watcher.start()
        started = time.monotonic()
        reply = raw_exchange(port, request_bytes(port, f"/auth/callback?code=c&state={'b' * 43}"))
        assert reply.status == 302 and time.monotonic() - started < 0.5
        for watcher in watchers:
            watcher.join(6)
        assert raw_exchange(port, request_bytes(port, "/success")).status == 200
        assert isinstance(server.block_until_done(10), LoginSuccess)
    assert set(closed_after) == {"idle", "dripping"}, closed_after
    for name, after in closed_after.items():
        assert deadline * 0.8 <= after < deadline + 1.0, (name, after)


def test_b6_many_idle_connections_are_survived_and_released(harness: Harness) -> None:
    run = harness.login()
    port = run.port
    assert port is not None
    baseline = fd_count(run.proc.pid)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    try:
        time.sleep(0.3)
        assert fd_count(run.proc.pid) > baseline
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 3
    while fd_count(run.proc.pid) > baseline + 2:
        assert time.monotonic() < deadline, "the server kept the closed connections' descriptors"
        time.sleep(0.05)
    complete_and_finish(harness, run)


def test_b7_keep_alive_clients_get_connection_close_and_the_port_is_free_at_once(harness: Harness) -> None:
    port = free_port()
    first = harness.login(port=port)
    with httpx.Client(timeout=10) as client:  # keep-alive by default, like a browser
        response = client.get(f"http://127.0.0.1:{port}/auth/callback?{harness.good_query(first)}",
                              follow_redirects=True)
        assert response.status_code == 200
        assert all(r.headers["connection"] == "close" for r in [*response.history, response])
        first.end_attempt()
        harness.finish(first, Expect(rc=0, success=True))
        harness.accept_current_auth()
        second = harness.login(port=port)  # binds at once: no takeover needed
        second.end_attempt()
        second.signal(2)
        harness.finish(second, Expect(rc=130, attempts=2))
    lines = "".join(read_log(harness.codex_home / "log").values())
    assert lines.count("login server listening") == 2 and "sent cancel request" not in lines
    assert lines.count(f"port={port} ") == 2 and lines.count("attempts=1") == 2


def test_b8_stray_requests_get_404_or_400_and_binary_stays_out_of_the_log(harness: Harness) -> None:
    run = harness.login()
    for path in ("/favicon.ico", "/robots.txt", "/", "/.well-known/security.txt"):
        assert_rejected(harness.get(run, path), 404, "Not Found")
    assert_rejected(harness.get(run, "*", method="OPTIONS"), 400)
    client_hello = bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) + b"\x00\x20" + bytes(range(0x80, 0xA0))
    tls = harness.send(run, client_hello)
    assert tls.status is None  # no HTTP head: closed without an answer
    complete_and_finish(harness, run)
    log = "".join(read_log(harness.codex_home / "log").values())
    assert log.isascii() and not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", log)


def test_b9_cross_site_requests_cannot_cancel_or_complete(harness: Harness) -> None:
    run = harness.login()
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Dest": "image"}):
        assert_rejected(harness.get(run, "/cancel", headers=headers), 403, "Forbidden")
    cross_site = ({"Origin": "https://evil.example"}, {"Sec-Fetch-Dest": "image"}, {"Sec-Fetch-Dest": "empty"},
                  {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"})
    for headers in cross_site:
        assert_rejected(harness.get(run, "/success", headers=headers), 403, "Forbidden")
    for dest in ("image", "script", "iframe"):
        reply = harness.get(run, f"/auth/callback?{harness.good_query(run)}", headers={"Sec-Fetch-Dest": dest})
        assert_rejected(reply, 403, "Forbidden")
    assert harness.issuer.token_requests() == []
    # A real navigation: Sec-Fetch-Dest: document (and requests without Sec-Fetch-* headers) are served.
    redirect = harness.get(run, f"/auth/callback?{harness.good_query(run)}",
                           headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"})
    assert redirect.status == 302
    # Once the credentials are saved, a web page loading /success (an image, a fetch) would end the attempt and
    # leave the person's browser "connection refused": refused, and the browser's own navigation still served.
    for headers in cross_site:
        assert_rejected(harness.get(run, "/success", headers=headers), 403, "Forbidden")
    harness.still_waiting(run)
    page = harness.get(run, "/success", headers={"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"})
    run.end_attempt()
    assert page.status == 200 and "text/html" in page.headers["content-type"]
    harness.finish(run, Expect(rc=0, success=True))


def test_b10_success_before_the_callback_changes_nothing(harness: Harness) -> None:
    run = harness.login()
    for _ in range(3):
        assert_rejected(harness.get(run, "/success"), 404, "Not Found")
    complete_and_finish(harness, run)


def test_b11_a_plain_cancel_request_cancels_parity(harness: Harness) -> None:
    run = harness.login()
    reply = harness.get(run, "/cancel")
    run.end_attempt()
    assert reply.status == 200 and reply.text == "Login cancelled"
    harness.finish(run, Expect(rc=1))
    assert "Error logging in: Login cancelled" in run.stderr
    assert "login finished outcome=cancelled" in "".join(read_log(harness.codex_home / "log").values())


def test_b12_nul_and_bare_cr_requests_are_400(harness: Harness) -> None:
    run = harness.login()
    port = run.port
    assert port is not None
    assert_rejected(harness.send(run, b"\x00" * 40 + b"\r\n\r\n"), 400)
    assert_rejected(harness.send(run, f"GET / HTTP/1.1\r\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()), 400)
    assert_rejected(harness.send(run, f"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()), 400)
    assert_rejected(harness.send(run, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nBad\x00: x\r\n\r\n".encode()), 400)
    assert_rejected(harness.send(run, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\rX-A: b\r\n\r\n".encode()), 400)
    assert_rejected(harness.send(run, f"GET / HTTP/1.1\nHost: 127.0.0.1:{port}\r\n\r\n".encode()), 400)
    smuggled = f"GET /auth/callback?{harness.good_query(run)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX: a\rb\r\n\r\n"
    assert_rejected(harness.send(run, smuggled.encode()), 400)
    assert harness.issuer.token_requests() == []
    complete_and_finish(harness, run)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port``, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for name, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if int(port_hex, 16) == port and fields[3] == "0A":
                assert len(address) == width
                found.add(address)
    return found


def _local_non_loopback_addresses() -> list[str]:
    """This host's own IPv4 addresses other than 127/8 (``/32 host LOCAL`` entries of the FIB)."""
    trie = Path("/proc/net/fib_trie")
    lines = trie.read_text().splitlines() if trie.exists() else []
    addresses = {
        match.group(1)
        for line, following in itertools.pairwise(lines)
        if (match := re.search(r"\|-- (\d+\.\d+\.\d+\.\d+)", line)) and "/32 host LOCAL" in following
    }
    return sorted(a for a in addresses if not a.startswith("127."))


def test_b13_the_listener_is_bound_to_loopback_only(harness: Harness) -> None:
    run = harness.login()
    assert run.port is not None
    addresses = _listening_addresses(run.port)
    assert addresses, "no listening socket found"
    assert addresses <= {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 (little-endian)
    for address in _local_non_loopback_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, run.port), timeout=2).close()
    complete_and_finish(harness, run)


def test_b14_a_foreign_ipv6_listener_on_the_port_fails_clearly_and_fast(harness: Harness) -> None:
    port = free_port()
    foreign = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    foreign.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    foreign.bind(("::1", port))
    foreign.listen(8)
    foreign.settimeout(0.1)
    try:
        run = harness.login(port=port, wait=False)
        harness.finish(run, Expect(rc=1, budget=8, attempts=1))
        with pytest.raises(TimeoutError):
            foreign.accept()  # nothing ever reached the foreign listener
    finally:
        foreign.close()
    assert f"127.0.0.1:{port} is already in use" in run.stderr and "--device-auth" in run.stderr
    assert "Starting local login server" not in run.stderr
    message, fields = log_events(harness)[-1]
    assert message == "login finished"
    assert {k: fields[k] for k in ("outcome", "flow", "failure")} == {
        "outcome": "error", "flow": "browser", "failure": "port_in_use"
    }
