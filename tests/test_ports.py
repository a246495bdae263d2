"""Binding: dual stack, the /cancel takeover of a previous server, the 1457 fallback, idle connections.

The fallback tests use the real ports 1455 and 1457 (the fallback only applies when 1455 was asked for); they
fail, never skip, if something else on the machine holds those ports.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codex_login.errors import ErrorKind, LoginError, PortInUseError
from codex_login.http import HttpSettings
from codex_login.server import LoginServer, LoginSuccess, ServerOptions, run_login_server
from tests.conftest import LoginLog
from tests.support.loopback import LoopbackServer
from tests.support.scripted_issuer import ScriptedIssuer

STATE = "ports_state_0123456789_abcdefghijklmnopqrs"


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


def start(codex_home: Path, issuer: ScriptedIssuer, port: int) -> LoginServer:
    return run_login_server(
        ServerOptions(
            codex_home=codex_home, issuer=issuer.url, port=port, open_browser=False, force_state=STATE,
            http=HttpSettings(env={}), timeout=30,
        )
    )


class ForeignListener(LoopbackServer):
    """A listener that is not a login server: it records what it receives and never lets go of the port."""

    def __init__(self, host: str, port: int) -> None:
        self.received: list[bytes] = []
        super().__init__(16, port, host)

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            try:
                self.received.append(conn.recv(4096))
            except OSError:
                pass


def test_binds_both_loopback_families(issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = start(codex_home, issuer, 0)
    try:
        assert server.addresses == "127.0.0.1,::1"
        for host in ("127.0.0.1", "[::1]"):
            response = httpx.get(f"http://{host}:{server.actual_port}/nothing")
            assert response.status_code == 404
    finally:
        server.cancel()


def test_a_new_login_takes_over_a_previous_one(issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog) -> None:
    first = start(codex_home, issuer, 0)
    second = start(codex_home, issuer, first.actual_port)
    try:
        with pytest.raises(LoginError) as info:
            first.block_until_done(10)
        assert info.value.kind is ErrorKind.INTERRUPTED and str(info.value) == "Login cancelled"
        assert second.actual_port == first.actual_port
        response = httpx.get(f"http://127.0.0.1:{second.actual_port}/auth/callback?code=c&state={STATE}",
                             follow_redirects=True)
        assert response.status_code == 200
        assert isinstance(second.block_until_done(10), LoginSuccess)
    finally:
        second.cancel()
    lines = login_log.normalized()
    assert " INFO codex_login::server: sent cancel request to previous login server port=N answered=true" in lines


def test_a_foreign_ipv6_listener_counts_as_taken(issuer: ScriptedIssuer, codex_home: Path) -> None:
    foreign = ForeignListener("::1", 0)
    try:
        # Otherwise a browser resolving localhost to ::1 first would hand the code to the foreign listener.
        with pytest.raises(PortInUseError) as info:
            start(codex_home, issuer, foreign.port)
        assert f"127.0.0.1:{foreign.port}" in str(info.value)
        assert foreign.received == []
    finally:
        foreign.close()


@pytest.mark.serial
def test_fallback_to_1457_when_1455_is_held_by_a_foreign_listener(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    foreign = ForeignListener("127.0.0.1", 1455)
    try:
        started = time.monotonic()
        server = start(codex_home, issuer, 1455)
        try:
            assert server.actual_port == 1457
            assert "redirect_uri=http%3A%2F%2Flocalhost%3A1457%2Fauth%2Fcallback" in server.auth_url
            assert time.monotonic() - started < 6
        finally:
            server.cancel()
        # The foreign listener received only the cancel request, nothing secret.
        assert foreign.received and all(data.startswith(b"GET /cancel HTTP/1.1\r\n") for data in foreign.received)
    finally:
        foreign.close()
    assert (
        " WARN codex_login::server: default login callback port is unavailable; falling back to the registered "
        "fallback port preferred_bind_address=127.0.0.1:PORT fallback_bind_address=127.0.0.1:PORT"
    ) in login_log.normalized()


@pytest.mark.serial
def test_both_registered_ports_held_is_a_clear_error(issuer: ScriptedIssuer, codex_home: Path) -> None:
    holders = [ForeignListener("127.0.0.1", 1455), ForeignListener("127.0.0.1", 1457)]
    try:
        with pytest.raises(PortInUseError) as info:
            start(codex_home, issuer, 1455)
        message = str(info.value)
        assert "127.0.0.1:1455 and 127.0.0.1:1457" in message and "--device-auth" in message
        assert info.value.attempt_id is not None
    finally:
        for holder in holders:
            holder.close()


def test_idle_and_junk_connections_do_not_delay_the_callback(issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = start(codex_home, issuer, 0)
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", server.actual_port)))
        for junk in (b"\x16\x03\x01\x02\x00", b"GET /x HTTP/1.1\r\n", b"GARBAGE\r\n\r\n"):
            sock = socket.create_connection(("127.0.0.1", server.actual_port))
            sock.sendall(junk)
            idle.append(sock)
        started = time.monotonic()
        response = httpx.get(f"http://127.0.0.1:{server.actual_port}/auth/callback?code=c&state={STATE}",
                             follow_redirects=True, timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - started < 2.0
        assert isinstance(server.block_until_done(10), LoginSuccess)
    finally:
        for sock in idle:
            sock.close()
        server.cancel()


def test_idle_connections_are_closed_after_the_head_deadline(issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = start(codex_home, issuer, 0)
    try:
        sock = socket.create_connection(("127.0.0.1", server.actual_port))
        sock.settimeout(8)
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the server, with nothing sent
        assert 4.0 < time.monotonic() - started < 7.5
        sock.close()
    finally:
        server.cancel()


def test_port_is_closed_once_the_attempt_ends(issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = start(codex_home, issuer, 0)
    port = server.actual_port
    server.cancel()
    with pytest.raises(LoginError):
        server.block_until_done(5)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.05)
    pytest.fail("the callback port still accepts connections 1 s after the attempt ended")
