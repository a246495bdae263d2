"""The callback port end to end: the real ``codex-login`` command, the real provider, the real browser.

* Takeover: a second ``codex-login`` on the port of a first one that still waits sends it ``/cancel``; the
  first ends with ``Login cancelled`` (exit 1) and the second signs in in the browser on the same port.
* Fallback: a program that is not a login server holds 1455; codex-login asks it to cancel, gives up on
  1455 and signs in on the registered fallback port 1457. This needs the real ports (``serial``).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CliEnvFactory, CodexLogin, RunningLogin, assert_in_order, read_login_log
from tests.support.issuer import TestIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LOGIN_TIMEOUT = "60"
PROCESS_TIMEOUT = 90.0
AGENT_TIMEOUT = 60.0
DEFAULT_PORT = 1455
FALLBACK_PORT = 1457


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_port_free(port: int) -> None:
    """Fail (never skip) with a clear message when another program on this machine holds ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise AssertionError(f"127.0.0.1:{port} is in use on this machine; this test needs it free: {exc}") from exc


def test_a_second_codex_login_takes_over_the_port(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path
) -> None:
    port = free_port()
    args = ["--issuer", issuer.url, "--port", str(port), "--timeout", LOGIN_TIMEOUT]
    # The first attempt's browser shows the sign-in page, and the user walks away from it.
    first_env = cli_env(script="open_only")
    first: RunningLogin = codex_login.spawn(args, first_env)
    second: RunningLogin | None = None
    try:
        first.wait_for_line(f"Starting local login server on http://localhost:{port}.")
        walked_away = first_env.browser_result(AGENT_TIMEOUT)
        assert walked_away.ok and walked_away.final_url.startswith(f"{issuer.url}/interaction/"), walked_away.describe()

        second_env = cli_env(login="ivan")
        second = codex_login.spawn(args, second_env)
        assert first.finish(30) == 1, first.stderr
        assert second.finish(PROCESS_TIMEOUT) == 0, second.stderr
        agent = second_env.browser_result(AGENT_TIMEOUT)
    finally:
        first.kill()
        if second is not None:
            second.kill()

    assert "Error logging in: Login cancelled" in first.stderr_lines
    assert f"Starting local login server on http://localhost:{port}." in second.stderr_lines
    assert second.stderr_lines[-1] == "Successfully logged in"
    assert agent.ok and agent.actions == ["login", "consent"], agent.describe()
    assert agent.final_url == f"http://localhost:{port}/success"
    assert "Signed in to Codex" in agent.text and "ivan@example.com" not in agent.text
    saved = json.loads((codex_home / "auth.json").read_text(encoding="utf-8"))
    assert saved["tokens"]["account_id"] == "acct_ivan"

    # Both processes wrote the one log; each line sits in its own attempt's span.
    log = read_login_log(codex_home)
    first_id, second_id = log.attempt_ids()
    assert f"Attempt ID: {first_id}" in first.stderr
    first_events: dict[str, dict[str, Any]] = {e.message: dict(e.fields) for e in log.for_attempt(first_id)}
    second_events: dict[str, dict[str, Any]] = {e.message: dict(e.fields) for e in log.for_attempt(second_id)}
    assert first_events["login cancelled"] == {"reason": "cancel_request"}
    assert (first_events["login finished"]["outcome"], first_events["login finished"]["failure"]) == (
        "cancelled", "cancelled"
    )
    assert_in_order(
        [e.message for e in log.for_attempt(second_id)],
        # ("browser opened" is left out: a blocking BROWSER counts as opened after 2 s, which may come after the
        # callback.)
        ["login attempt started", "sent cancel request to previous login server", "login server listening",
         "received login callback", "oauth token exchange succeeded", "credentials saved", "success page served",
         "login finished"],
    )
    assert second_events["sent cancel request to previous login server"] == {"port": port, "answered": True}
    listening = second_events["login server listening"]
    assert listening["port"] == port and listening["fallback"] is False and listening["attempts"] >= 2
    assert second_events["login finished"]["outcome"] == "success"


class ForeignServer:
    """Some other program's HTTP server on a fixed port: it answers 404 to everything and records requests."""

    def __init__(self, port: int) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(f"GET {self.path}")
                self.send_error(404)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name=f"foreign-{port}", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def foreign_on_1455() -> Iterator[ForeignServer]:
    assert_port_free(DEFAULT_PORT)
    server = ForeignServer(DEFAULT_PORT)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.serial
def test_a_foreign_listener_on_1455_moves_the_sign_in_to_1457(
    issuer: TestIssuer,
    codex_login: CodexLogin,
    cli_env: CliEnvFactory,
    codex_home: Path,
    foreign_on_1455: ForeignServer,
) -> None:
    assert_port_free(FALLBACK_PORT)
    env = cli_env()
    # No --port: the default 1455, the only port the fallback applies to.
    proc = codex_login.run(["--issuer", issuer.url, "--timeout", LOGIN_TIMEOUT], env, timeout=PROCESS_TIMEOUT)
    agent = env.browser_result(AGENT_TIMEOUT)

    assert proc.returncode == 0, proc.stderr
    assert f"Starting local login server on http://localhost:{FALLBACK_PORT}." in proc.stderr.splitlines()
    assert proc.stderr.splitlines()[-1] == "Successfully logged in"
    assert agent.ok and agent.actions == ["login", "consent"], agent.describe()
    assert agent.final_url == f"http://localhost:{FALLBACK_PORT}/success"
    assert "Signed in to Codex" in agent.text
    # The foreign program was asked to cancel, and never saw the callback (nor its code).
    assert foreign_on_1455.requests == ["GET /cancel"]
    [grant] = [r["fields"] for r in issuer.requests("/oauth/token") if r["fields"]["grant_type"] == "authorization_code"]
    assert grant["redirect_uri"] == f"http://localhost:{FALLBACK_PORT}/auth/callback"

    log = read_login_log(codex_home)
    [attempt_id] = log.attempt_ids()
    lines = log.raw_for_attempt(attempt_id)
    assert len(lines) == len(log.lines)
    span = f"login{{attempt={attempt_id}}}: codex_login::server:"
    assert any(
        line.endswith(
            f" WARN {span} default login callback port is unavailable; falling back to the registered fallback "
            f"port preferred_bind_address=127.0.0.1:{DEFAULT_PORT} fallback_bind_address=127.0.0.1:{FALLBACK_PORT}"
        )
        for line in lines
    ), "\n".join(lines)
    events: dict[str, dict[str, Any]] = {e.message: dict(e.fields) for e in log.for_attempt(attempt_id)}
    assert events["sent cancel request to previous login server"] == {"port": DEFAULT_PORT, "answered": True}
    listening = events["login server listening"]
    assert (listening["port"], listening["fallback"]) == (FALLBACK_PORT, True)
    assert events["login finished"]["outcome"] == "success"
    assert_in_order(
        [e.message for e in log.for_attempt(attempt_id)],
        ["login attempt started", "sent cancel request to previous login server",
         "default login callback port is unavailable; falling back to the registered fallback port",
         "login server listening", "received login callback", "credentials saved", "login finished"],
    )
