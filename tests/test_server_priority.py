"""While the callback that decides the attempt is being exchanged, the other requests wait (issue 9).

They are answered once its outcome is known, in the order they arrived; a /cancel is not held back. The
token endpoint is held open by the test, so every step is decided by an event, never by a delay.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codex_login.errors import LoginError
from codex_login.http import HttpSettings
from codex_login.server import LoginServer, LoginSuccess, ServerOptions, run_login_server
from tests.conftest import LoginLog
from tests.support.scripted_issuer import Answer, Recorded, ScriptedIssuer, tokens_answer

STATE = "priority_state_0123456789_abcdefghijklmnop"
WAIT_LIMIT = 15.0  # only guards against a hang


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


def start(codex_home: Path, issuer: ScriptedIssuer) -> LoginServer:
    return run_login_server(
        ServerOptions(
            codex_home=codex_home, issuer=issuer.url, port=0, open_browser=False, force_state=STATE,
            http=HttpSettings(env={}, total_timeout=WAIT_LIMIT), timeout=30, success_grace=5,
        )
    )


def hold_token_endpoint(issuer: ScriptedIssuer, answer: Answer) -> threading.Event:
    """The token endpoint answers ``answer`` once the returned event is set."""
    release = threading.Event()

    def held(_request: Recorded) -> Answer:
        release.wait(WAIT_LIMIT)
        return answer

    issuer.token = held
    return release


class Exchange:
    """One request on its own connection, read to the end on a thread."""

    def __init__(self, port: int, head: str) -> None:
        self.reply = b""
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_LIMIT)
        self._sock.sendall(head.encode("latin-1"))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._sock:
            while chunk := self._sock.recv(65536):
                self.reply += chunk

    def status(self) -> int:
        self._thread.join(WAIT_LIMIT)
        assert not self._thread.is_alive(), "no answer"
        return int(self.reply.split(b" ", 2)[1])


def get(port: int, target: str, host: str | None = None, method: str = "GET") -> str:
    return f"{method} {target} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nConnection: close\r\n\r\n"


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        assert time.monotonic() < deadline, "the condition never became true"
        time.sleep(0.01)


def test_requests_during_the_exchange_are_answered_after_it_in_order(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    release = hold_token_endpoint(issuer, tokens_answer())
    server = start(codex_home, issuer)
    port = server.actual_port
    callback = Exchange(port, get(port, f"/auth/callback?code=abc&state={STATE}"))
    wait_until(lambda: len(issuer.token_requests()) == 1)
    # Each is held before the next is sent, so the order they arrived in is known.
    foreign_host = Exchange(port, get(port, "/favicon.ico", host="evil.example"))
    wait_until(lambda: len(server._held) == 1)
    bad_method = Exchange(port, get(port, "/auth/callback", method="DELETE"))
    wait_until(lambda: len(server._held) == 2)
    success = Exchange(port, get(port, "/success"))
    wait_until(lambda: len(server._held) == 3)
    release.set()
    assert callback.status() == 302
    assert foreign_host.status() == 400
    assert bad_method.status() == 405
    assert success.status() == 200  # answered after the save: before it, /success is a 404
    assert isinstance(server.block_until_done(WAIT_LIMIT), LoginSuccess)
    messages = [line.split(": ", 2)[-1] for line in login_log.normalized()]
    saved = messages.index("credentials saved store=file")
    assert messages[saved + 1 :] == [
        "login server rejected request reason=unexpected_host path=other http_status=400",
        "login server rejected request reason=bad_method path=/auth/callback http_status=405",
        "success page served",
        "login finished outcome=success flow=browser duration_ms=N",
    ]


def test_held_requests_are_answered_when_the_exchange_fails(issuer: ScriptedIssuer, codex_home: Path) -> None:
    release = hold_token_endpoint(issuer, Answer.json(400, {"error": "invalid_grant"}))
    server = start(codex_home, issuer)
    port = server.actual_port
    callback = Exchange(port, get(port, f"/auth/callback?code=abc&state={STATE}"))
    wait_until(lambda: len(issuer.token_requests()) == 1)
    stray = Exchange(port, get(port, "/favicon.ico"))
    wait_until(lambda: len(server._held) == 1)
    release.set()
    assert callback.status() == 200  # the error page
    assert stray.status() == 404
    with pytest.raises(LoginError, match="Token exchange failed"):
        server.block_until_done(WAIT_LIMIT)


def test_cancel_is_not_held_back(issuer: ScriptedIssuer, codex_home: Path) -> None:
    release = hold_token_endpoint(issuer, tokens_answer())
    server = start(codex_home, issuer)
    port = server.actual_port
    try:
        Exchange(port, get(port, f"/auth/callback?code=abc&state={STATE}"))
        wait_until(lambda: len(issuer.token_requests()) == 1)
        # A newer codex-login taking the port over gives up on its /cancel after 2 s: answered at once.
        assert Exchange(port, get(port, "/cancel")).status() == 200
        with pytest.raises(LoginError, match="Login cancelled"):
            server.block_until_done(WAIT_LIMIT)
    finally:
        release.set()
    assert server._worker is not None
    server._worker.thread.join(WAIT_LIMIT)
    # The exchange the cancel interrupted goes no further: no API-key exchange, nothing saved.
    assert [r.form.get("grant_type") for r in issuer.requests] == ["authorization_code"]
    assert not (codex_home / "auth.json").exists()
