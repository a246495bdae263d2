"""Security matrix §4, groups C (the token endpoint misbehaves) and D (TLS, proxies, DNS).

Every row runs the real ``codex-login``, sends the real callback, and checks the seven invariants with
:meth:`Harness.finish`. Misbehaviour the scripted issuer cannot produce (a stalled or endless body, a reset,
a redirect target that records bytes) comes from :class:`RawEndpoint`; TLS rows use ``trustme``
certificates on a TLS-wrapped scripted issuer. Pinned choices:

* a 3xx from the token endpoint is an error like any other non-2xx (redirects are never followed);
* a proxy refusing the tunnel names its status (``407 Proxy Authentication Required``) and never the
  proxy's credentials;
* a TLS failure names the CA source in use and both variables that select another one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.hardening.conftest import (
    PAGE,
    TERMINAL,
    Expect,
    Harness,
    free_port,
    inspect_page,
    read_log,
    rss_kib,
)
from tests.support.loopback import LoopbackServer
from tests.support.scripted_issuer import Answer, ScriptedIssuer, tokens_answer

SLOW = 2.0  # login_http_timeout for the rows that wait on a silent endpoint


def log_text(harness: Harness) -> str:
    return "".join(read_log(harness.codex_home / "log").values())


# --------------------------------------------------------------------------------------------- endpoints


class RawEndpoint(LoopbackServer):
    """A token endpoint that misbehaves at the byte level: it reads each request, then runs ``behaviour``
    on the connection. It counts connections and keeps every byte received."""

    def __init__(self, behaviour: Callable[[socket.socket, threading.Event], None]) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.received = bytearray()
        self._lock = threading.Lock()
        super().__init__(backlog=16)

    def handle(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
                    0,
                )
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                with self._lock:
                    self.received += head + b"\r\n\r\n" + body
                self.behaviour(conn, self._stop)
            except OSError:
                return


@contextlib.contextmanager
def raw_endpoint(behaviour: Callable[[socket.socket, threading.Event], None]) -> Iterator[RawEndpoint]:
    endpoint = RawEndpoint(behaviour)
    try:
        yield endpoint
    finally:
        endpoint.close()


def hang(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(30)


def headers_then_stall(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id")
    stop.wait(30)


def reset_mid_response(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id_tok")
    time.sleep(0.1)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST


def truncated_json(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id_token\": \"abc")


def endless_chunked(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(3200):  # at most 200 MiB: the client must give up long before
        if stop.is_set():
            return
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def fifty_megabytes(conn: socket.socket, stop: threading.Event) -> None:
    size = 50 * 1024 * 1024
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size)
    conn.sendall(b'{"id_token": "')
    chunk = b"y" * 65536
    for _ in range(size // len(chunk)):
        if stop.is_set():
            return
        conn.sendall(chunk)


class RssSampler:
    """The peak resident size of a process, sampled every 10 ms while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            except (OSError, AssertionError, ValueError):
                return
            time.sleep(0.01)

    def join(self) -> int:
        self._thread.join(5)
        return self.peak_kib


# --------------------------------------------------------------------------------------------- group C


def token_error_row(harness: Harness, answer: Answer, **login: Any) -> tuple[str, str]:
    """Run a sign-in whose token exchange gets ``answer``; returns (page text, stderr)."""
    harness.issuer.token = answer
    run = harness.login(**login)
    page = harness.terminal_page(run)
    harness.finish(run, Expect(rc=1))
    assert len(harness.issuer.token_requests()) == 1  # no retry loop
    assert harness.issuer.requests[-1].form.get("grant_type") == "authorization_code"  # no API-key exchange
    return page.text, run.stderr


def test_c1_an_echoed_code_is_scrubbed_from_every_surface(harness: Harness) -> None:
    code = harness.canaries["code"]
    answer = Answer.json(400, {"error": "invalid_grant", "error_description": f"bad code {code} rejected"})
    page, stderr = token_error_row(harness, answer)
    assert "bad code &lt;redacted&gt; rejected" in page
    assert "Error logging in: Token exchange failed: token endpoint returned status 400 Bad Request: bad code " \
        "<redacted> rejected" in stderr
    assert 'error_code="invalid_grant" error_message="bad code <redacted> rejected"' in log_text(harness)


@pytest.mark.parametrize("padding", [0, 236], ids=["short", "cut-at-256"])
def test_c1_an_echoed_state_and_challenge_are_scrubbed_from_every_surface(harness: Harness, padding: int) -> None:
    # Only the code and the verifier were scrubbed from the endpoint's text: an echoed state or challenge
    # reached the terminal and the page; and the log field was cut to 256 characters before the registry's
    # scrub, so a secret straddling the cut left its first half in the log.
    run = harness.login()
    assert run.state is not None and run.code_challenge is not None
    echo = f"{'x' * padding} got {run.state} / {run.code_challenge}"
    harness.issuer.token = Answer.json(400, {"error": "invalid_request", "error_description": echo})
    page = harness.terminal_page(run)
    harness.finish(run, Expect(rc=1))
    not_the_url = "\n".join(line for line in run.stderr.splitlines() if "/oauth/authorize?" not in line)
    assert "got <redacted:state> / <redacted:code_challenge>" in not_the_url
    for surface in (page.text, not_the_url, log_text(harness)):
        for secret in (run.state, run.code_challenge):
            assert secret[:12] not in surface


def test_c2_nested_error_objects_are_parsed(harness: Harness) -> None:
    _page, stderr = token_error_row(harness, Answer.json(400, {"error": {"code": "x_code", "message": "y message"}}))
    assert "token endpoint returned status 400 Bad Request: y message" in stderr
    assert 'error_code="x_code" error_message="y message"' in log_text(harness)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Answer.json(401, {"error": "invalid_client"}), "401 Unauthorized"),
        (Answer.text(403, "<html><body>Blocked by policy</body></html>", "text/html"), "403 Forbidden"),
        (
            Answer(429, b'{"error":"rate_limited"}', {"Content-Type": "application/json", "Retry-After": "30"}),
            "429 Too Many Requests",
        ),
    ],
    ids=["401", "403-html", "429-retry-after"],
)
def test_c3_refusals_name_the_status_and_are_not_retried(harness: Harness, answer: Answer, status: str) -> None:
    started = time.monotonic()
    page, stderr = token_error_row(harness, answer)
    assert f"token endpoint returned status {status}" in stderr and status in page
    assert time.monotonic() - started < 15  # Retry-After is not honoured by sleeping


def test_c4_html_error_bodies_reach_the_page_escaped_and_never_the_log(harness: Harness) -> None:
    body = harness.canaries.add("body", "CNRYbody", allowed=(PAGE, TERMINAL))
    page, stderr = token_error_row(harness, Answer.text(500, f"<h1>{body}</h1><script>alert(1)</script>", "text/html"))
    assert f"&lt;h1&gt;{body}&lt;/h1&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # positive control
    assert f"Error logging in: Token exchange failed: token endpoint returned status 500 Internal Server Error: " \
        f"<h1>{body}</h1><script>alert(1)</script>" in stderr
    log = log_text(harness)
    assert 'status=500 Internal Server Error content_type="text/html" body_len=' in log


CONTROL_TEXT = "\x1b[2J\x1b]8;;http://evil.example\x07link\x1b]8;;\x07\rX\u202e\x9b31m\x00end"


@pytest.mark.parametrize(
    "answer",
    [Answer.json(400, {"error": CONTROL_TEXT, "error_description": CONTROL_TEXT}),
     Answer.text(502, CONTROL_TEXT, "text/html")],
    ids=["json-error-fields", "html-body"],
)
def test_c4_control_characters_from_the_endpoint_are_neutralised_on_every_surface(
    harness: Harness, answer: Answer
) -> None:
    """DECISIONS D-5: text from the token endpoint reaches the terminal without escape sequences or controls,
    the page with U+202E only inside a ``dir="ltr"`` container, and the log as one escaped line."""
    page, stderr = token_error_row(harness, answer)
    assert "link Xend" in stderr  # positive control: the text is shown, its controls are not
    for raw in ("\x1b", "\x07", "\r", "\x00", "\u202e", "\x9b"):
        assert raw not in stderr, repr(raw)
        assert raw not in log_text(harness), repr(raw)
        if raw != "\u202e":
            assert raw not in page, repr(raw)
    facts = inspect_page(page)
    assert not any("\u202e" in text for text in facts.loose_text)


def test_c5_a_captive_portal_page_is_not_json(harness: Harness) -> None:
    body = harness.canaries.add("portal", "CNRYportal", allowed=(PAGE, TERMINAL))
    _page, stderr = token_error_row(harness, Answer.text(200, f"<html>Sign in to the Wi-Fi {body}</html>", "text/html"))
    assert "Error logging in: Token exchange failed: OAuth token response is invalid: the body is not JSON" in stderr
    assert "reason=not_json" in log_text(harness)


DEEP = "[" * 50_000 + "]" * 50_000  # valid JSON, ~100 KB, nested past the decoder's recursion limit


def test_c5_json_nested_past_the_decoders_depth_is_not_json(harness: Harness) -> None:
    # json.loads raises RecursionError, not ValueError: it ended the sign-in as an internal error (500).
    _page, stderr = token_error_row(harness, Answer.text(200, DEEP, "application/json"))
    assert "Error logging in: Token exchange failed: OAuth token response is invalid: the body is not JSON" in stderr
    assert "reason=not_json" in log_text(harness)


def test_c5_an_error_body_nested_past_the_decoders_depth_is_shown_as_text(harness: Harness) -> None:
    _page, stderr = token_error_row(harness, Answer.text(400, DEEP, "application/json"))
    assert "Error logging in: Token exchange failed: token endpoint returned status 400 Bad Request: [[[" in stderr
    assert "oauth token exchange returned non-success status" in log_text(harness)


@pytest.mark.parametrize(
    ("status", "shown"),
    [(400, "token endpoint returned status 400 Bad Request: unknown error"),
     (200, "OAuth token response is invalid: the body is not JSON")],
)
def test_c5_a_body_its_content_encoding_does_not_describe_keeps_the_status(
    harness: Harness, status: int, shown: str
) -> None:
    # httpx's DecodingError was classified as a transport failure ("error sending request"), losing the status.
    answer = Answer(status, b"this is not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    _page, stderr = token_error_row(harness, answer)
    assert f"Error logging in: Token exchange failed: {shown}" in stderr
    log = log_text(harness)
    assert "oauth token exchange transport failure" not in log
    assert f"oauth token endpoint response status={status} " in log


def _tokens(**changes: object) -> dict[str, object]:
    return {"id_token": "x.y.z", "access_token": "a" * 10, "refresh_token": "r" * 10, **changes}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({k: v for k, v in _tokens().items() if k != "refresh_token"}, "the field 'refresh_token' is missing"),
        ({k: v for k, v in _tokens().items() if k != "id_token"}, "the field 'id_token' is missing"),
        (_tokens(access_token=None), "the field 'access_token' is missing or not a string"),
        (_tokens(refresh_token=12345), "the field 'refresh_token' is missing or not a string"),
        ([], "the body is not a JSON object"),
        ("str", "the body is not a JSON object"),
    ],
    ids=["no-refresh", "no-id-token", "null", "number", "array", "string"],
)
def test_c6_unusable_token_json_names_the_field_not_the_value(
    harness: Harness, payload: object, message: str
) -> None:
    _page, stderr = token_error_row(harness, Answer.json(200, payload))
    assert f"OAuth token response is invalid: {message}" in stderr
    assert "aaaaaaaaaa" not in stderr and "rrrrrrrrrr" not in stderr


def test_c6_unknown_extra_fields_are_ignored(harness: Harness) -> None:
    answer = tokens_answer(
        id_token=harness.canaries["id_token"],
        access_token=harness.canaries["access_token"],
        refresh_token=harness.canaries["refresh_token"],
    )
    document = json.loads(answer.body)
    document.update({"scope": "openid", "unknown": {"nested": [1, 2]}, "expires_in": "soon"})
    harness.issuer.token = Answer.json(200, document)
    run = harness.login()
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))


@pytest.mark.parametrize("behaviour", [fifty_megabytes, endless_chunked], ids=["50MB", "endless-chunked"])
def test_c7_huge_or_endless_bodies_are_capped(
    harness: Harness, behaviour: Callable[[socket.socket, threading.Event], None]
) -> None:
    with raw_endpoint(behaviour) as endpoint:
        run = harness.login(issuer=endpoint.url)
        sampler = RssSampler(run.proc.pid)
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
        peak = sampler.join()
    assert "OAuth token response is invalid: the body is larger than 1 MiB" in run.stderr
    assert peak < 150 * 1024, f"peak RSS {peak} KiB"
    assert "reason=too_large" in log_text(harness)


@pytest.mark.parametrize("behaviour", [hang, headers_then_stall], ids=["silent", "stalled-body"])
def test_c8_a_silent_endpoint_times_out(
    harness: Harness, behaviour: Callable[[socket.socket, threading.Event], None]
) -> None:
    with raw_endpoint(behaviour) as endpoint:
        run = harness.login(issuer=endpoint.url, http_timeout=SLOW)
        started = time.monotonic()
        page = harness.terminal_page(run)
        assert time.monotonic() - started < SLOW + 3
        assert "timed out" in page.text
        harness.finish(run, Expect(rc=1))
    assert "): timed out (connect " in run.stderr and "total 2 s)" in run.stderr
    assert "kind=timeout" in log_text(harness)


def test_c9_connection_refused(harness: Harness) -> None:
    closed = free_port()
    run = harness.login(issuer=f"http://127.0.0.1:{closed}")
    harness.terminal_page(run)
    harness.finish(run, Expect(rc=1))
    assert f"error sending request for url (http://127.0.0.1:{closed}/oauth/token): connection refused" in run.stderr
    assert "kind=connect error_class=ConnectError errno=111" in log_text(harness)


@pytest.mark.parametrize("behaviour", [reset_mid_response, truncated_json], ids=["reset", "truncated"])
def test_c10_a_broken_answer_is_an_error_and_nothing_is_written(
    harness: Harness, behaviour: Callable[[socket.socket, threading.Event], None]
) -> None:
    with raw_endpoint(behaviour) as endpoint:
        run = harness.login(issuer=endpoint.url)
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
    assert "Error logging in: Token exchange failed: error sending request for url" in run.stderr
    assert "kind=closed" in log_text(harness)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_c11_redirects_are_never_followed(harness: Harness, status: int) -> None:
    with raw_endpoint(hang) as thief:
        harness.issuer.token = Answer(status, b"", {"Location": f"{thief.url}/steal"})
        run = harness.login()
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
        time.sleep(0.2)
        assert thief.connections == 0 and thief.received == b""  # the code and verifier went nowhere else
    assert f"token endpoint returned status {status} " in run.stderr


def test_c12_a_failed_api_key_exchange_still_signs_in(harness: Harness) -> None:
    harness.issuer.api_key = Answer.text(500, "boom")
    run = harness.login()
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    saved = json.loads(harness.auth_path.read_text())
    assert saved["OPENAI_API_KEY"] is None
    assert "api key exchange failed status=500" in log_text(harness)


def test_c12_an_api_key_answer_nested_past_the_decoders_depth_still_signs_in(harness: Harness) -> None:
    harness.issuer.api_key = Answer.text(200, DEEP, "application/json")
    run = harness.login()
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert json.loads(harness.auth_path.read_text())["OPENAI_API_KEY"] is None
    assert "api key exchange failed status=200" in log_text(harness)


def test_c13_a_forced_workspace_mismatch_is_denied(harness: Harness) -> None:
    run = harness.login("-c", 'forced_chatgpt_workspace_id="org-required"')
    page = harness.terminal_page(run)
    assert "Login is restricted to workspace id org-required." in page.text
    harness.finish(run, Expect(rc=1))
    assert "Error logging in: Login is restricted to workspace id org-required." in run.stderr
    assert "outcome=denied" in log_text(harness)


# --------------------------------------------------------------------------------------------- group D


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextlib.contextmanager
def tls_issuer(harness: Harness, cert: trustme.LeafCert) -> Iterator[ScriptedIssuer]:
    """A scripted issuer behind TLS with ``cert``; counts TCP connections (handshakes happen per request)."""
    issuer = ScriptedIssuer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server = issuer._server
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    issuer.connections = 0  # type: ignore[attr-defined]
    process = server.process_request

    def counting(request: Any, address: Any) -> None:
        issuer.connections += 1  # type: ignore[attr-defined]
        process(request, address)

    server.process_request = counting  # type: ignore[method-assign,assignment]
    # Failed handshakes are the point of some rows; keep them out of the test output.
    server.handle_error = lambda request, address: None  # type: ignore[method-assign,assignment]
    harness.use_canary_tokens(issuer)
    harness.other_issuers.append(issuer)
    with issuer:
        yield issuer


def ca_file(tmp_path: Path, ca: trustme.CA) -> Path:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


NO_CA_ENV: dict[str, str | None] = {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None, "CODEX_CA_CERTIFICATE": None}


def test_d1_an_untrusted_certificate_fails_verification_once(harness: Harness, ca: trustme.CA) -> None:
    with tls_issuer(harness, ca.issue_cert("127.0.0.1")) as issuer:
        run = harness.login(issuer=f"https://127.0.0.1:{issuer.port}", env=NO_CA_ENV)
        page = harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
        assert issuer.connections == 1 and issuer.requests == []  # type: ignore[attr-defined]
    assert "TLS certificate verification failed" in run.stderr and "TLS certificate verification failed" in page.text
    assert "CODEX_CA_CERTIFICATE" in run.stderr and "SSL_CERT_FILE" in run.stderr
    assert "kind=tls" in log_text(harness)


@pytest.mark.parametrize("variable", ["CODEX_CA_CERTIFICATE", "SSL_CERT_FILE"])
def test_d2_a_custom_ca_from_either_variable_is_trusted(
    harness: Harness, ca: trustme.CA, tmp_path: Path, variable: str
) -> None:
    with tls_issuer(harness, ca.issue_cert("127.0.0.1")) as issuer:
        env = {**NO_CA_ENV, variable: str(ca_file(tmp_path, ca))}
        run = harness.login(issuer=f"https://127.0.0.1:{issuer.port}", env=env)
        harness.complete(run)
        harness.finish(run, Expect(rc=0, success=True))
    assert f"ca_source={variable}" in log_text(harness)


@pytest.mark.parametrize("variable", ["CODEX_CA_CERTIFICATE", "SSL_CERT_FILE"])
@pytest.mark.parametrize("problem", ["missing", "directory", "garbage"])
def test_d2_an_unusable_ca_file_is_named_with_its_variable(
    harness: Harness, ca: trustme.CA, tmp_path: Path, problem: str, variable: str
) -> None:
    path = tmp_path / f"ca-{problem}.pem"
    if problem == "directory":
        path.mkdir()
    elif problem == "garbage":
        path.write_bytes(b"this is not a certificate\n\x00\xff")
    with tls_issuer(harness, ca.issue_cert("127.0.0.1")) as issuer:
        env = {**NO_CA_ENV, variable: str(path)}
        run = harness.login(issuer=f"https://127.0.0.1:{issuer.port}", env=env)
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
        assert issuer.connections == 0  # type: ignore[attr-defined]
    assert f"CA certificate file {path} selected by {variable}" in run.stderr


@pytest.mark.parametrize(("cert_for", "connect_to"), [("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")])
def test_d3_the_host_name_is_verified(
    harness: Harness, ca: trustme.CA, tmp_path: Path, cert_for: str, connect_to: str
) -> None:
    with tls_issuer(harness, ca.issue_cert(cert_for)) as issuer:
        env = {**NO_CA_ENV, "CODEX_CA_CERTIFICATE": str(ca_file(tmp_path, ca))}
        run = harness.login(issuer=f"https://{connect_to}:{issuer.port}", env=env)
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
        assert issuer.requests == []
    assert "TLS certificate verification failed" in run.stderr and "mismatch" in run.stderr


@pytest.mark.parametrize(
    "issuer",
    ["http://example.com", "javascript:alert(1)", "file:///etc/passwd", "ftp://example.com", "http://10.0.0.1"],
)
def test_d4_unsafe_issuer_schemes_are_refused_before_anything_happens(
    harness: Harness, tmp_path: Path, issuer: str
) -> None:
    marker = tmp_path / "browser-ran"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\ntouch {marker}\n")
    browser.chmod(0o755)
    run = harness.login(issuer=issuer, browser=True, env={"BROWSER": str(browser)}, wait=False)
    harness.finish(run, Expect(rc=1, budget=10, attempts=0, log=False))
    assert run.stderr.startswith("Error loading configuration: invalid issuer URL: ")
    assert not marker.exists() and not (harness.codex_home / "log").exists()
    assert harness.issuer.requests == []


def test_d5_a_dead_proxy_is_named_without_its_password(harness: Harness) -> None:
    password = harness.canaries.add("proxy_password", "CNRYpw")
    user = harness.canaries.add("proxy_user", "CNRYpu")
    closed = free_port()
    proxy = f"http://{user}:{password}@127.0.0.1:{closed}"
    run = harness.login(env={"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": None, "no_proxy": None})
    page = harness.terminal_page(run)
    harness.finish(run, Expect(rc=1))
    assert f"the proxy http://127.0.0.1:{closed} failed" in run.stderr and "the proxy" in page.text
    assert f"proxy=http://127.0.0.1:{closed}" in log_text(harness) and "kind=proxy" in log_text(harness)


@pytest.mark.parametrize("scheme", ["socks", "socks5"])
def test_d5_socks_proxies_get_a_clear_message(harness: Harness, scheme: str) -> None:
    closed = free_port()
    proxy = f"{scheme}://127.0.0.1:{closed}"
    run = harness.login(env={"ALL_PROXY": proxy, "all_proxy": proxy, "NO_PROXY": None, "no_proxy": None})
    harness.terminal_page(run)
    harness.finish(run, Expect(rc=1))
    expected = (
        ["unsupported proxy scheme 'socks' in the proxy environment variables (use http://, https:// or socks5://)"]
        if scheme == "socks"
        # Without the optional SOCKS support the message says how to get it; with it, the dead proxy is named.
        else ["needs SOCKS support: pip install 'codex-login[socks]'", f"the proxy socks5://127.0.0.1:{closed} failed"]
    )
    assert any(text in run.stderr for text in expected), run.stderr


def proxy_407(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )


def test_d6_a_proxy_demanding_authentication_says_so(harness: Harness, ca: trustme.CA, tmp_path: Path) -> None:
    password = harness.canaries.add("proxy_password", "CNRYpw")
    with raw_endpoint(proxy_407) as proxy, tls_issuer(harness, ca.issue_cert("127.0.0.1")) as issuer:
        proxy_url = f"http://corp:{password}@127.0.0.1:{proxy.port}"
        env = {
            **NO_CA_ENV,
            "CODEX_CA_CERTIFICATE": str(ca_file(tmp_path, ca)),
            "HTTPS_PROXY": proxy_url,
            "https_proxy": proxy_url,
            "NO_PROXY": None,
            "no_proxy": None,
        }
        run = harness.login(issuer=f"https://127.0.0.1:{issuer.port}", env=env)
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1))
        assert issuer.requests == []
        assert proxy.received.startswith(b"CONNECT 127.0.0.1:")
    assert f"the proxy http://127.0.0.1:{proxy.port} refused the connection: 407 Proxy Authentication Required" \
        in run.stderr


def test_d7_a_dns_failure_is_classified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process (no real DNS): ``getaddrinfo`` fails for the issuer's name only."""
    from codex_login.errors import LoginError
    from codex_login.http import HttpSettings
    from codex_login.server import ServerOptions, run_login_server
    from tests.hardening.conftest import raw_exchange, request_bytes

    real = socket.getaddrinfo

    def fake(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "issuer.codex-login.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    home = tmp_path / "codex-home"
    home.mkdir(mode=0o700)
    server = run_login_server(
        ServerOptions(
            codex_home=home, issuer="https://issuer.codex-login.invalid", port=0, open_browser=False,
            force_state="d" * 43, http=HttpSettings(env={}, total_timeout=5), timeout=30,
        )
    )
    reply = raw_exchange(server.actual_port, request_bytes(server.actual_port, f"/auth/callback?code=c&state={'d' * 43}"))
    assert reply.status == 200
    with pytest.raises(LoginError) as failure:
        server.block_until_done(10)
    assert "could not resolve host issuer.codex-login.invalid" in str(failure.value)
    assert failure.value.failure_class == "transport_dns"
    assert not (home / "auth.json").exists()
