"""The worker's rehearsal of the sign-in (issue 9): it runs the exchanges, the JWT parse and the save's JSON
against its own loopback issuer, and leaves no trace: no event, no output, no thread, no socket; a failure
ends it quietly, and the issuer it starts answers only the rehearsal's own requests."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from codex_login import _rehearsal
from codex_login._rehearsal import RehearsalIssuer, rehearse
from codex_login.http import HttpClient, HttpSettings


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("codex_") or record.levelno >= logging.WARNING:
            self.records.append(record)


@pytest.fixture
def every_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of codex-login's loggers, and every warning or worse from any logger (httpcore's own debug
    traces, which a root logger set to DEBUG shows for any request, excepted)."""
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _sockets() -> set[str]:
    links = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory's own descriptor, closed by now
        if target.startswith("socket:"):
            links.add(target)
    return links


def _rehearsal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "codex-login-rehearsal"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets through /proc (Linux)")
def test_every_round_runs_and_nothing_is_logged_printed_or_left_open(
    every_record: list[logging.LogRecord], capfd: pytest.CaptureFixture[str]
) -> None:
    before = _sockets()
    assert rehearse(3) == 3
    assert every_record == []
    assert capfd.readouterr() == ("", "")
    assert _rehearsal_threads() == []
    assert _sockets() - before == set()


def test_a_failing_rehearsal_ends_quietly(
    every_record: list[logging.LogRecord], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 500 makes the token exchange fail in its first round: its warning event goes to the disabled logger
    # (not to logging's last-resort handler, which would print it), and the rehearsal stops there.
    monkeypatch.setattr(
        _rehearsal, "_token_answer", lambda: b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"
    )
    assert rehearse(3) == 0
    assert every_record == []
    assert capfd.readouterr() == ("", "")
    assert _rehearsal_threads() == []


def test_no_loopback_listener_means_no_rehearsal(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    assert rehearse(2) == 0


def test_its_issuer_shuts_out_requests_without_the_random_prefix() -> None:
    with RehearsalIssuer(1) as issuer:
        parts = urlsplit(issuer.url)
        assert parts.hostname == "127.0.0.1" and len(parts.path) == 17  # "/" and 16 hex digits
        assert parts.port is not None
        with socket.create_connection(("127.0.0.1", parts.port), timeout=5) as intruder:
            intruder.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
            assert intruder.recv(1024) == b""  # closed without an answer
        with HttpClient(HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0)) as client:
            answer = client.post_form(f"{issuer.url}/oauth/token", "grant_type=authorization_code")
        assert answer.status == 200 and set(answer.headers) >= {"content-type", "content-length"}
        assert b'"refresh_token": "rehearsal"' in answer.body
    assert issuer.answered == 1  # counted after the answer is sent: read once its thread is joined
