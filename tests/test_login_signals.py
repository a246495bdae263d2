"""Ctrl-C and SIGTERM during a browser sign-in: a cancel request to the server, not an exception in flight.

A KeyboardInterrupt raised between ``acquire()`` and ``try:`` inside CPython's import machinery leaves the
import lock held; the server's worker, importing httpx at that moment, then blocked and Ctrl-C right after
the URL was printed took more than 5 s to exit (CI, about 1 run in 10). The in-process tests drive the
handler with real signals; the subprocess test repeats the racy moment that failed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_login.commands.login import Terminated, _SignalsCancel
from codex_login.errors import LoginCancelled
from codex_login.http import HttpSettings
from codex_login.server import LoginServer, ServerOptions, run_login_server
from tests.conftest import LoginLog

CLI = str(Path(sys.executable).parent / "codex-login")
FINISHED_CANCELLED = "login finished outcome=cancelled flow=browser"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(codex_home: Path) -> LoginServer:
    issuer = f"http://127.0.0.1:{closed_port()}"
    options = ServerOptions(
        codex_home=codex_home, issuer=issuer, port=0, open_browser=False, http=HttpSettings(env={}), timeout=30
    )
    return run_login_server(options)


def spawn_login(home: Path, *, port: int, stdin: int) -> subprocess.Popen[bytes]:
    """``codex-login --no-browser`` against an issuer that is not there (the tests end it before any exchange)."""
    argv = [CLI, "--port", str(port), "--issuer", f"http://127.0.0.1:{closed_port()}", "--no-browser"]
    argv += ["-c", "login_log_format=text"]
    env = dict(os.environ, CODEX_HOME=str(home))
    return subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def handler() -> Iterator[_SignalsCancel]:
    stop = _SignalsCancel()
    stop.install()
    try:
        yield stop
    finally:
        stop.restore()


def test_the_first_signal_cancels_the_server_and_raises_nothing(
    handler: _SignalsCancel, codex_home: Path, login_log: LoginLog
) -> None:
    server = start(codex_home)
    handler.watch(server)
    signal.raise_signal(signal.SIGINT)  # would raise KeyboardInterrupt here with Python's own handler
    with pytest.raises(LoginCancelled, match="Login was not completed"):
        server.block_until_done(10)
    assert handler.signum == signal.SIGINT
    lines = login_log.lines()
    assert sum("login cancelled reason=interrupted" in line for line in lines) == 1
    assert sum(FINISHED_CANCELLED in line for line in lines) == 1


def test_a_second_signal_raises_at_once(handler: _SignalsCancel, codex_home: Path) -> None:
    server = start(codex_home)
    handler.watch(server)
    signal.raise_signal(signal.SIGTERM)
    with pytest.raises(Terminated):
        signal.raise_signal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    with pytest.raises(LoginCancelled):
        server.block_until_done(10)
    assert handler.signum == signal.SIGTERM


def test_a_signal_while_the_server_starts_cancels_it_once_known(
    handler: _SignalsCancel, codex_home: Path, login_log: LoginLog
) -> None:
    other = threading.Thread(target=time.sleep, args=(1.0,), daemon=True)
    other.start()  # the server's threads may already run: raising now could strand their locks
    signal.raise_signal(signal.SIGTERM)
    assert handler.signum == signal.SIGTERM
    server = start(codex_home)
    handler.watch(server)
    with pytest.raises(LoginCancelled):
        server.block_until_done(10)
    assert sum("login cancelled reason=terminated" in line for line in login_log.lines()) == 1


def test_a_signal_while_the_main_thread_is_alone_raises(
    handler: _SignalsCancel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Binding can take seconds (an earlier server is asked to stop first); with no other thread there is no
    # lock to strand, so Ctrl-C stops it at once as Python would.
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_restore_puts_the_previous_handlers_back() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stop = _SignalsCancel()
    stop.install()
    assert signal.getsignal(signal.SIGINT) is not before[0]
    stop.restore()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stop = _SignalsCancel()
        stop.install()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        stop.restore()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_right_after_the_url_exits_cleanly_every_time(tmp_path: Path) -> None:
    """The moment that hung: the worker is importing httpx and the main thread its next module."""
    runs = 12
    for run in range(runs):
        home = tmp_path / f"home{run}"
        home.mkdir(mode=0o700)
        proc = spawn_login(home, port=0, stdin=subprocess.PIPE)
        assert proc.stderr is not None
        seen = b""
        while b"/oauth/authorize?" not in seen or not seen.endswith(b"\n"):
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"run {run}: exited before printing the URL: {seen!r}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"run {run}: no exit within 5 s of Ctrl-C")
        rest = proc.stderr.read().decode()
        proc.stderr.close()
        assert rc == 130, f"run {run}: {rest}"
        assert "Error logging in: Login was not completed (interrupted)" in rest
        log = (home / "log" / "codex-login.log").read_text()
        assert log.count(FINISHED_CANCELLED) == 1, log


@pytest.mark.parametrize(
    ("signum", "code", "reason"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_while_taking_over_the_port_ends_the_attempt_with_its_line(
    tmp_path: Path, signum: signal.Signals, code: int, reason: str
) -> None:
    """Binding can take seconds when the port is held by a server that does not answer its cancel request;
    Ctrl-C (or SIGTERM) then stops at once and the attempt still ends with one ``login finished`` line."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        holder.settimeout(20)
        port = holder.getsockname()[1]
        proc = spawn_login(tmp_path, port=port, stdin=subprocess.DEVNULL)
        cancel_request, _ = holder.accept()  # the takeover's GET /cancel: the CLI is now inside binding
        with cancel_request:
            proc.send_signal(signum)
            try:
                _, stderr = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                pytest.fail(f"no exit within 5 s of {signum.name} during the port takeover")
    assert proc.returncode == code, stderr
    assert f"Error logging in: Login was not completed ({reason})".encode() in stderr
    log = (tmp_path / "log" / "codex-login.log").read_text()
    assert log.count(FINISHED_CANCELLED) == 1, log
    # Which signal it was, as for a cancel while the server runs: the line just before the final one.
    lines = log.splitlines()
    assert lines[-2].endswith(f"codex_login::server: login cancelled reason={reason}"), log
