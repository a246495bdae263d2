"""Security matrix §4, group H: signals, timeouts, port contention, broken browsers, unsafe issuers, and a bug
inside the callback handler.

All rows but H9 run the real console script and end with :meth:`Harness.finish` (the seven invariants).
Pinned choices:

* Ctrl-C (SIGINT) exits 130 and SIGTERM 143, at any point once the server runs, including during a token
  exchange the issuer never answers: the process does not wait for the HTTP timeout;
* a second sign-in on the same port takes it over (the first gets ``GET /cancel`` and exits "Login
  cancelled" with exit 1); two started together end with exactly one listening;
* a browser command that fails or dies is reported and the sign-in keeps waiting;
* a bug in request handling answers ``500 Internal Server Error`` with no detail; after the state was used
  it ends the attempt (``failure=internal_error``), before that the attempt keeps waiting.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import LoginLog
from tests.hardening.conftest import (
    Expect,
    Harness,
    assert_no_traceback,
    free_port,
    port_refuses,
    raw_exchange,
    read_log,
    request_bytes,
    send_callback_quietly,
)
from tests.support.loopback import LoopbackServer
from tests.support.scripted_issuer import Answer, Recorded


def log_text(harness: Harness) -> str:
    return "".join(read_log(harness.codex_home / "log").values())


class RecordingListener(LoopbackServer):
    """Something that is not a login server holding a port: it records every byte and answers nothing."""

    def __init__(self, port: int) -> None:
        self.received: list[bytes] = []
        super().__init__(backlog=16, port=port)

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            data = b""
            try:
                while chunk := conn.recv(4096):
                    data += chunk
            except OSError:
                pass
            self.received.append(data)


# --------------------------------------------------------------------------------------------- H1-H3


def test_h1_a_foreign_listener_gets_only_a_cancel_request_then_a_clear_error(harness: Harness) -> None:
    port = free_port()
    foreign = RecordingListener(port)
    try:
        run = harness.login(port=port, wait=False)
        harness.finish(run, Expect(rc=1, budget=10))
    finally:
        foreign.close()
    assert foreign.received == [f"GET /cancel HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()]
    assert f"127.0.0.1:{port} is already in use" in run.stderr and "--device-auth" in run.stderr
    assert f"sent cancel request to previous login server port={port} answered=false" in log_text(harness)


@pytest.mark.serial
def test_h1_the_default_port_falls_back_to_1457(harness: Harness) -> None:
    """Uses the registered ports 1455 and 1457; fails (never skips) if something else holds them."""
    foreign = RecordingListener(1455)
    try:
        run = harness.login(port=1455)
        assert run.port == 1457
        harness.complete(run)
        harness.finish(run, Expect(rc=0, success=True))
    finally:
        foreign.close()
    assert all(data.startswith(b"GET /cancel HTTP/1.1\r\n") for data in foreign.received)
    assert "falling back to the registered fallback port" in log_text(harness)


def test_h2_a_stale_sign_in_is_taken_over_and_never_saves(harness: Harness) -> None:
    port = free_port()
    stale = harness.login(port=port)
    stale_query = harness.good_query(stale)
    fresh = harness.login(port=port)  # sends GET /cancel to the stale one, then binds
    stale.port = None  # the port now belongs to the fresh sign-in: INV-3 is measured on the fresh one
    harness.finish(stale, Expect(rc=1, attempts=1))
    assert "Error logging in: Login cancelled" in stale.stderr
    # The stale attempt's callback now reaches the fresh server, whose state differs: refused.
    assert harness.callback(fresh, stale_query).status == 400
    harness.complete(fresh)
    harness.finish(fresh, Expect(rc=0, success=True, attempts=2))
    assert len(harness.issuer.token_requests()) == 1
    assert "login cancelled reason=cancel_request" in log_text(harness)


def test_h3_two_sign_ins_started_together_end_with_one_listening(harness: Harness) -> None:
    port = free_port()
    runs = [harness.login(port=port, wait=False), harness.login(port=port, wait=False)]
    deadline = time.monotonic() + 15
    while sum(run.proc.poll() is None for run in runs) != 1:
        assert time.monotonic() < deadline, [run.stderr for run in runs]
        time.sleep(0.05)
    (survivor,) = [run for run in runs if run.proc.poll() is None]
    (loser,) = [run for run in runs if run is not survivor]
    survivor.wait_listening()
    assert survivor.state is not None
    harness.canaries.add_value("survivor_state", survivor.state, allowed=("authorize_url",))
    # The loser was cancelled by the survivor's takeover (or lost the bind); either way its attempt ended.
    harness.finish(loser, Expect(rc=1, attempts=1))
    assert "Error logging in: " in loser.stderr
    harness.complete(survivor)
    harness.finish(survivor, Expect(rc=0, success=True, attempts=2))
    assert len(harness.issuer.token_requests()) == 1


# --------------------------------------------------------------------------------------------- H4, H5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", ["listening", "waiting", "token-exchange"])
def test_h4_signals_end_the_attempt_cleanly_at_every_stage(harness: Harness, stage: str, signum: int) -> None:
    release = threading.Event()

    def never_answer(_request: Recorded) -> Answer:  # only reached in the token-exchange stage
        release.wait(30)
        return Answer(close=True)

    harness.issuer.token = never_answer
    run = harness.login()
    if stage == "waiting":
        time.sleep(1.0)
    callback: threading.Thread | None = None
    if stage == "token-exchange":
        callback = threading.Thread(target=send_callback_quietly, args=(run, harness.good_query(run)), daemon=True)
        callback.start()
        deadline = time.monotonic() + 10
        while not harness.issuer.token_requests():
            assert time.monotonic() < deadline, "the token request never arrived"
            time.sleep(0.02)
    run.signal(signum)
    expected = 130 if signum == signal.SIGINT else 143
    harness.finish(run, Expect(rc=expected, budget=(time.monotonic() - run.started) + 5))
    reason = "interrupted" if signum == signal.SIGINT else "terminated"
    assert f"Error logging in: Login was not completed ({reason})" in run.stderr
    log = log_text(harness)
    assert f"login cancelled reason={reason}" in log and "login finished outcome=cancelled" in log
    release.set()
    if callback is not None:
        callback.join(5)


def test_h5_no_callback_within_the_timeout(harness: Harness) -> None:
    run = harness.login(timeout=2)
    harness.finish(run, Expect(rc=1, budget=8))
    assert "Error logging in: Login timed out after 2 seconds" in run.stderr
    assert "login finished outcome=timeout" in log_text(harness)


# --------------------------------------------------------------------------------------------- H6


@pytest.mark.parametrize(
    "script",
    ["exit 1", "kill -9 $$", "echo 'browser says: \033[31mred\033[0m' >&2; exit 3"],
    ids=["exits-1", "killed", "noisy-exit-3"],
)
def test_h6_a_failing_browser_is_reported_and_the_sign_in_waits(harness: Harness, tmp_path: Path, script: str) -> None:
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\n{script}\n")
    browser.chmod(0o755)
    run = harness.login(browser=True, env={"BROWSER": str(browser), "DISPLAY": None, "WAYLAND_DISPLAY": None})
    assert run.auth_url is not None and "/oauth/authorize?" in run.auth_url
    time.sleep(1.0)
    harness.still_waiting(run)
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert "browser could not be opened" in log_text(harness)
    # The browser command writes to the terminal itself; every line codex-login prints is clean.
    assert [line for line in run.stderr.splitlines() if "\x1b" in line] in ([], ["browser says: \x1b[31mred\x1b[0m"])


def test_h6_a_browser_that_never_returns_does_not_block_the_sign_in(harness: Harness, tmp_path: Path) -> None:
    browser = tmp_path / "browser.sh"
    browser.write_text("#!/bin/sh\nsleep 10\n")
    browser.chmod(0o755)
    run = harness.login(browser=True, env={"BROWSER": str(browser)})
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))


# --------------------------------------------------------------------------------------------- H7, H8


@pytest.mark.parametrize("form", ["flag", "config"])
def test_h7_unsafe_issuers_are_refused_before_the_browser(harness: Harness, tmp_path: Path, form: str) -> None:
    password = harness.canaries.add("issuer_password", "CNRYiup")
    query = harness.canaries.add("issuer_query", "CNRYiq")
    marker = tmp_path / "browser-ran"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\ntouch {marker}\n")
    browser.chmod(0o755)
    unsafe = {
        "userinfo": (f"https://user:{password}@auth.example.com", "it must not contain a user name or password"),
        "query": (f"https://auth.example.com/?token={query}", "it must not contain a query or a fragment"),
        "fragment": (f"https://auth.example.com/#{query}", "it must not contain a query or a fragment"),
        "control": ("https://auth.example.com/\x01x", "it contains whitespace or control characters"),
        "space": ("https://auth.example.com /x", "it contains whitespace or control characters"),
        "plain-http": (
            "http://auth.example.com",
            "plain http:// is only allowed for a loopback issuer (127.0.0.1, ::1, localhost)",
        ),
        "javascript": ("javascript:alert(document.domain)", "it must be an https:// URL"),
        "file": ("file:///etc/passwd", "it must be an https:// URL"),
    }
    for name, (issuer, reason) in unsafe.items():
        argv = ["--port", "0", "--timeout", "5"]
        argv += ["--issuer", issuer] if form == "flag" else ["-c", f"issuer={issuer}"]
        run = harness.cli(*argv, env={"BROWSER": str(browser)})
        harness.finish(run, Expect(rc=1, budget=10, attempts=0, log=False))
        where = "" if form == "flag" else "-c issuer: "
        assert run.stderr == f"Error loading configuration: {where}invalid issuer URL: {reason}\n", (name, run.stderr)
    assert not marker.exists()
    assert not (harness.codex_home / "log").exists()


def test_h8_the_authorize_url_carries_state_and_challenge_but_the_log_does_not(harness: Harness) -> None:
    run = harness.login()
    assert run.auth_url is not None and run.state is not None and run.code_challenge is not None
    assert f"state={run.state}" in run.auth_url
    assert f"code_challenge={run.code_challenge}&code_challenge_method=S256" in run.auth_url
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))  # INV-2: state and challenge only in the printed URL
    log = log_text(harness)
    assert run.state not in log and run.code_challenge not in log and "oauth/authorize" not in log
    verifier = harness.issuer.token_requests()[0].form["code_verifier"]
    assert verifier not in log and verifier not in run.stderr


# --------------------------------------------------------------------------------------------- H9


def _start_in_process(tmp_path: Path, issuer_url: str) -> object:
    from codex_login.http import HttpSettings
    from codex_login.server import ServerOptions, run_login_server

    home = tmp_path / "codex-home"
    home.mkdir(mode=0o700, exist_ok=True)
    return run_login_server(
        ServerOptions(
            codex_home=home, issuer=issuer_url, port=0, open_browser=False, force_state="h" * 43,
            http=HttpSettings(env={}), timeout=30,
        )
    )


def test_h9_a_bug_after_the_state_was_used_ends_the_attempt_with_a_generic_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], login_log: LoginLog
) -> None:
    from codex_login import server as server_module
    from codex_login.errors import LoginError
    from codex_login.server import LoginServer
    from tests.support.scripted_issuer import ScriptedIssuer

    secret = "CNRYboom" + "0123456789abcdef"

    def broken(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError(f"injected failure {secret}")

    monkeypatch.setattr(server_module, "exchange_code_for_tokens", broken)
    with ScriptedIssuer() as issuer:
        server = _start_in_process(tmp_path, issuer.url)
        assert isinstance(server, LoginServer)
        port = server.actual_port
        reply = raw_exchange(port, request_bytes(port, f"/auth/callback?code=c&state={'h' * 43}"))
        assert reply.status == 500 and reply.text == "Internal Server Error"
        with pytest.raises(LoginError) as failure:
            server.block_until_done(10)
        ended = time.monotonic()
        while not port_refuses(port):
            assert time.monotonic() - ended < 1.0, "INV-3: the port stayed open"
            time.sleep(0.02)
    assert failure.value.failure_class == "internal_error"
    assert secret not in str(failure.value) and secret not in reply.text
    captured = capfd.readouterr()
    assert_no_traceback(captured.err, captured.out)
    assert secret not in captured.err + captured.out
    lines = login_log.normalized()
    assert " WARN codex_login::server: login server rejected request reason=internal_error path=other http_status=500" \
        in lines
    assert lines[-1].endswith("login finished outcome=error flow=browser duration_ms=N failure=internal_error")
    assert not any(secret in line for line in login_log.lines())
    assert not (tmp_path / "codex-home" / "auth.json").exists()


def test_h9_a_bug_before_the_state_was_used_answers_500_and_keeps_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from codex_login.server import LoginServer, LoginSuccess
    from tests.support.scripted_issuer import ScriptedIssuer

    original = LoginServer._parse_query
    calls = {"n": 0}

    def flaky(self: LoginServer, query: str) -> dict[str, list[str]] | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("injected parser failure")
        return original(self, query)

    monkeypatch.setattr(LoginServer, "_parse_query", flaky)
    with ScriptedIssuer() as issuer:
        server = _start_in_process(tmp_path, issuer.url)
        assert isinstance(server, LoginServer)
        port = server.actual_port
        query = f"/auth/callback?code=c&state={quote('h' * 43)}"
        assert raw_exchange(port, request_bytes(port, query)).status == 500
        assert not server.done
        assert raw_exchange(port, request_bytes(port, query)).status == 302
        assert raw_exchange(port, request_bytes(port, "/success")).status == 200
        assert isinstance(server.block_until_done(15), LoginSuccess)
    captured = capfd.readouterr()
    assert_no_traceback(captured.err, captured.out)
