"""Signing in from SSH, WSL, containers and machines without a browser (issue 6).

Most tests run the real console script (``codex-login --no-browser --port 0 --issuer <scripted issuer>``)
as a subprocess and talk to it through its stdin, stderr and loopback port, as a user on a headless machine
would: pasting the redirect URL (right state, wrong state, garbage), watching the countdown on a real
pseudo-terminal, and reading the environment warning and the log. Detection is simulated with real
variables (``SSH_CONNECTION``, ``DISPLAY``, ``BROWSER``) and, for files under ``/proc`` and ``/.dockerenv``,
with the test-only ``CODEX_LOGIN_TEST_ROOT`` directory that stands in for ``/``.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from codex_login.diagnostics.record import attempt_span
from codex_login.environment import assess_callback_reachability, detect_environment
from codex_login.errors import LoginError
from codex_login.http import HttpSettings
from codex_login.server import LoginServer, ServerOptions, run_login_server
from codex_login.terminal import (
    MAX_PASTE_LINE,
    PLAIN_REPEAT_SECONDS,
    PastedLine,
    PasteReader,
    TerminalPrinter,
    environment_lines,
    format_remaining,
    terminal_mode,
    wait_in_terminal,
    waiting_text,
)
from tests.conftest import LoginLog, normalize_line
from tests.support.scripted_issuer import ScriptedIssuer, tokens_answer

CONSOLE_SCRIPT = Path(sys.executable).parent / "codex-login"
WSL2_RELEASE = "5.15.167.4-microsoft-standard-WSL2"
PASTE_HINT = " Paste the redirect URL here if the page could not load."
WAITING_RE = re.compile(r"Waiting for the browser to finish signing in \((\d+):(\d\d) left\)\.")
# Variables that change what detection sees; every subprocess test starts without them.
DETECTION_VARS = (
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "WSL_DISTRO_NAME",
    "WSL_INTEROP",
    "KUBERNETES_SERVICE_HOST",
    "container",
    "CODESPACES",
    "REMOTE_CONTAINERS",
    "VSCODE_IPC_HOOK_CLI",
    "NO_COLOR",
    "TERM",
    "COLUMNS",
    "RUST_LOG",
)
PROCESS_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------------
# Running the console script


def headless_env(codex_home: Path, root: Path, extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """A clean environment: no proxies, no detection variables, ``root`` standing in for ``/`` (an empty
    directory means: plain Linux, no WSL, no container), ``BROWSER=true``. ``extra`` values of None unset."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and key not in DETECTION_VARS
    }
    env.update(
        {
            "CODEX_HOME": str(codex_home),
            "CODEX_LOGIN_TEST_ROOT": str(root),
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "BROWSER": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class Headless:
    """``codex-login`` with stdin, stdout and stderr as pipes; stderr is kept as raw bytes (so a ``\\r``
    or an escape sequence would show) and read on a thread so the child never blocks."""

    def __init__(self, args: list[str], env: Mapping[str, str], *, stdin: int = subprocess.PIPE) -> None:
        self.proc = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        self._raw = bytearray()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        while chunk := os.read(self.proc.stderr.fileno(), 65536):
            with self._lock:
                self._raw += chunk
        self._closed.set()

    @property
    def raw(self) -> bytes:
        with self._lock:
            return bytes(self._raw)

    @property
    def lines(self) -> list[str]:
        return self.raw.decode("utf-8", "replace").split("\n")

    def wait_for(self, text: str, *, count: int = 1, timeout: float = PROCESS_TIMEOUT) -> str:
        """Wait until ``count`` complete stderr lines contain ``text``; return the last of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines[:-1] if text in line]
            if len(found) >= count:
                return found[count - 1]
            if self._closed.is_set() or time.monotonic() > deadline:
                raise AssertionError(f"no {count} stderr lines containing {text!r}; stderr:\n{self.raw.decode()}")
            time.sleep(0.02)

    def auth_url(self) -> str:
        return self.wait_for("/oauth/authorize?").strip()

    def paste(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        code = self.proc.wait(timeout)
        self._closed.wait(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def callback_parts(auth_url: str) -> tuple[int, str]:
    """(callback port, state) from a printed authorize URL."""
    query = parse_qs(urlsplit(auth_url).query)
    port = urlsplit(query["redirect_uri"][0]).port
    assert port is not None
    return port, query["state"][0]


def redirect_url(port: int, state: str, code: str) -> str:
    return f"http://localhost:{port}/auth/callback?code={code}&state={state}"


def log_lines(codex_home: Path) -> list[str]:
    return [normalize_line(line) for line in (codex_home / "log" / "codex-login.log").read_text().splitlines()]


def environment_line(*, ssh: bool, wsl: bool, container: str, display: bool, browser_env: bool) -> str:
    flags = f"ssh={str(ssh).lower()} wsl={str(wsl).lower()} container={container} "
    flags += f"display={str(display).lower()} browser_env={str(browser_env).lower()}"
    return f" INFO codex_cli::login: login environment {flags}"


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """An empty directory standing in for ``/``: no WSL kernel, no ``/.dockerenv``, no cgroup hints."""
    root = tmp_path / "root"
    root.mkdir()
    return root


class StartHeadless(Protocol):
    def __call__(
        self,
        extra_env: Mapping[str, str | None] | None = None,
        *,
        args: tuple[str, ...] = ("--no-browser",),
        stdin: int = subprocess.PIPE,
    ) -> Headless: ...


@pytest.fixture
def start(issuer: ScriptedIssuer, codex_home: Path, fake_root: Path) -> Iterator[StartHeadless]:
    """``start(extra_env, args=("--no-browser",), stdin=PIPE)``: ``codex-login ARGS --port 0 --issuer ...``."""
    runs: list[Headless] = []

    def started(
        extra_env: Mapping[str, str | None] | None = None,
        *,
        args: tuple[str, ...] = ("--no-browser",),
        stdin: int = subprocess.PIPE,
    ) -> Headless:
        argv = [*args, "--port", "0", "--issuer", issuer.url, "--timeout", "60"]
        run = Headless(argv, headless_env(codex_home, fake_root, extra_env), stdin=stdin)
        runs.append(run)
        return run

    yield started
    for run in runs:
        run.kill()


def assert_plain(run: Headless) -> None:
    """Not a terminal: no carriage return, no escape sequence anywhere in stderr."""
    assert b"\r" not in run.raw
    assert b"\x1b" not in run.raw


# --------------------------------------------------------------------------------------------------
# Pasting the redirect URL (console script, pipes)


def test_pasted_redirect_url_signs_in_without_a_browser(
    start: StartHeadless, issuer: ScriptedIssuer, codex_home: Path
) -> None:
    run = start()
    url = run.auth_url()
    port, state = callback_parts(url)
    waiting = run.wait_for("Waiting for the browser")
    assert WAITING_RE.fullmatch(waiting.removesuffix(PASTE_HINT)), waiting
    assert waiting.endswith(PASTE_HINT)
    run.paste(redirect_url(port, state, "pasted-code-4711") + "\n")
    assert run.finish() == 0, run.raw.decode()

    lines = run.lines
    assert url in lines  # the authorize URL is alone on its line
    assert lines[-3:] == ["Checking the pasted redirect URL...", "Successfully logged in", ""]
    assert_plain(run)
    assert b"pasted-code-4711" not in run.raw  # the pasted URL is never echoed
    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["tokens"]["access_token"] == "access-123"
    assert [r.form["code"] for r in issuer.token_requests()] == ["pasted-code-4711"]
    log = log_lines(codex_home)
    assert environment_line(ssh=False, wsl=False, container="none", display=False, browser_env=True) in log
    assert " INFO codex_login::server: pasted redirect URL received accepted=true" in log
    assert log[-1] == " INFO codex_cli::login: login finished outcome=success flow=browser duration_ms=N"
    assert "pasted-code-4711" not in (codex_home / "log" / "codex-login.log").read_text()


def test_wrong_state_paste_is_refused_and_the_wait_goes_on(
    start: StartHeadless, issuer: ScriptedIssuer, codex_home: Path
) -> None:
    run = start()
    port, state = callback_parts(run.auth_url())
    run.wait_for("Waiting for the browser")
    run.paste(redirect_url(port, "not-the-state", "code-from-elsewhere") + "\n")
    refused = run.wait_for("Pasted text not accepted")
    assert refused == (
        "Pasted text not accepted (State mismatch). Still waiting for the browser or a pasted redirect URL."
    )
    time.sleep(0.3)
    assert run.proc.poll() is None  # still waiting
    assert issuer.token_requests() == []  # the state is checked first: no code was exchanged

    run.paste(redirect_url(port, state, "right-code") + "\n")
    assert run.finish() == 0, run.raw.decode()
    assert run.lines[-2] == "Successfully logged in"
    assert [r.form["code"] for r in issuer.token_requests()] == ["right-code"]
    assert b"code-from-elsewhere" not in run.raw and b"right-code" not in run.raw
    assert_plain(run)
    log = log_lines(codex_home)
    mismatch = log.index(
        " WARN codex_login::server: login callback state mismatch path=/auth/callback has_code=true "
        "has_state=true has_error=false"
    )
    assert log[mismatch - 1].endswith("state_valid=false")
    assert (codex_home / "auth.json").is_file()


def test_garbage_lines_get_a_hint_and_the_browser_can_still_finish(
    start: StartHeadless, issuer: ScriptedIssuer, codex_home: Path
) -> None:
    run = start()
    port, state = callback_parts(run.auth_url())
    run.wait_for("Waiting for the browser")
    run.paste("hello there\n")
    run.paste("\n")  # an empty Enter is ignored
    run.paste("\x1b]8;;http://evil.example\x07click me\x1b]8;;\x07 secret-ish-text\r\n")
    run.paste("x" * (MAX_PASTE_LINE + 10) + "\n")
    run.wait_for("Ignored a pasted line longer than 16 KiB: it is not a redirect URL. Still waiting.")
    # A bracket left open is a URL urlsplit refuses (ValueError: Invalid IPv6 URL): it once ended the sign-in.
    run.paste(f"http://[::1/auth/callback?code=mistyped&state={state}\n")
    hint = (
        "Pasted text not accepted (That is not the redirect URL: it should start with "
        f"http://localhost:{port}/auth/callback?code=). Still waiting for the browser or a pasted redirect URL."
    )
    assert run.wait_for("Pasted text not accepted", count=3) == hint
    assert [line for line in run.lines if line.startswith("Pasted text")] == [hint, hint, hint]
    assert run.proc.poll() is None
    assert b"secret-ish-text" not in run.raw and b"hello there" not in run.raw

    # The browser's callback still completes the sign-in while stdin stays open.
    page = httpx.get(
        f"http://127.0.0.1:{port}/auth/callback?code=browser-code&state={state}", timeout=15, follow_redirects=True
    )
    assert page.status_code == 200 and "Signed in to Codex" in page.text
    assert run.finish() == 0, run.raw.decode()
    assert_plain(run)
    log = log_lines(codex_home)
    assert log.count(" INFO codex_login::server: pasted redirect URL received accepted=false") == 4
    assert [r.form["code"] for r in issuer.token_requests()] == ["browser-code"]


@pytest.mark.parametrize("how", ["devnull", "closed_pipe"])
def test_stdin_eof_never_ends_the_sign_in(start: StartHeadless, codex_home: Path, how: str) -> None:
    run = start(stdin=subprocess.DEVNULL) if how == "devnull" else start()
    if how == "closed_pipe":
        run.close_stdin()
    port, state = callback_parts(run.auth_url())
    waiting = run.wait_for("Waiting for the browser")
    if how == "devnull":
        # Nobody can paste into /dev/null, so the status does not offer it.
        assert WAITING_RE.fullmatch(waiting), waiting
    time.sleep(0.5)
    assert run.proc.poll() is None
    page = httpx.get(f"http://127.0.0.1:{port}/auth/callback?code=abc&state={state}", timeout=15, follow_redirects=True)
    assert page.status_code == 200
    assert run.finish() == 0, run.raw.decode()
    assert_plain(run)
    assert (codex_home / "auth.json").is_file()


def test_a_last_line_without_newline_counts_at_end_of_input(start: StartHeadless, codex_home: Path) -> None:
    run = start()
    port, state = callback_parts(run.auth_url())
    run.paste("  " + redirect_url(port, state, "no-newline-code") + "  ")
    run.close_stdin()
    assert run.finish() == 0, run.raw.decode()
    assert (codex_home / "auth.json").is_file()


# --------------------------------------------------------------------------------------------------
# Where we run: the warning before waiting, and the log event


def warning_block(run: Headless) -> list[str]:
    """The lines between the URL block and the waiting status."""
    lines = run.lines
    start = lines.index("On a remote or headless machine? Use `codex-login --device-auth` instead.") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("Waiting for the browser"))
    return lines[start:end]


def _warning(port: int, reason: str, middle: str) -> list[str]:
    return [
        "",
        f"Warning: signing in with a browser will probably not reach http://localhost:{port} here:",
        f"  - {reason}",
        f"Run `codex-login --device-auth` instead; {middle}; or, after signing in, copy the address the browser "
        f"could not open (http://localhost:{port}/auth/callback?...) and paste it here.",
        "",
    ]


@dataclass(frozen=True)
class Simulated:
    """One simulated environment: variables, files under the fake root, and what the user and log get."""

    env: dict[str, str | None]
    files: dict[str, str]
    block: Callable[[int], list[str]]  # the lines between the URL block and the status, given the port
    event: str


ENVIRONMENTS = {
    "ssh": Simulated(
        {"SSH_CONNECTION": "203.0.113.7 51000 192.0.2.10 22"},
        {},
        lambda port: _warning(
            port,
            "this is an SSH session: the browser on your own computer cannot reach localhost on this machine",
            f"forward the port from your computer with `ssh -L {port}:localhost:{port} <this host>` and open the "
            "URL there",
        ),
        environment_line(ssh=True, wsl=False, container="none", display=False, browser_env=True),
    ),
    "docker": Simulated(
        {},
        {".dockerenv": ""},
        lambda port: _warning(
            port,
            "this runs in a container (docker): a browser outside it cannot reach localhost inside it unless the "
            "container shares the host network",
            "run the container with `--network host` and open the URL on the host",
        ),
        environment_line(ssh=False, wsl=False, container="docker", display=False, browser_env=True),
    ),
    "wsl2": Simulated(
        {"BROWSER": None},
        {"proc/sys/kernel/osrelease": WSL2_RELEASE + "\n"},
        lambda port: [
            "",
            "Note: this is WSL 2: the Windows browser reaches this server through WSL's localhost forwarding; if "
            'it cannot connect, enable localhostForwarding or networkingMode="mirrored" in .wslconfig.',
            "Note: neither wslview nor powershell.exe was found: open the URL in your Windows browser yourself.",
            "",
        ],
        environment_line(ssh=False, wsl=True, container="none", display=False, browser_env=False),
    ),
    "no_display": Simulated(
        {"BROWSER": None},
        {},
        lambda port: _warning(
            port,
            "there is no graphical display here, so no browser can be opened on this machine",
            "open the URL in a browser on this machine",
        ),
        environment_line(ssh=False, wsl=False, container="none", display=False, browser_env=False),
    ),
    "desktop": Simulated(
        {"DISPLAY": ":0"},
        {},
        lambda port: [""],
        environment_line(ssh=False, wsl=False, container="none", display=True, browser_env=True),
    ),
}


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_environment_warning_and_event(name: str, start: StartHeadless, fake_root: Path, codex_home: Path) -> None:
    simulated = ENVIRONMENTS[name]
    for relative, content in simulated.files.items():
        (fake_root / relative).parent.mkdir(parents=True, exist_ok=True)
        (fake_root / relative).write_text(content)
    run = start(simulated.env)
    port, _state = callback_parts(run.auth_url())
    run.wait_for("Waiting for the browser")
    block = warning_block(run)
    assert block == simulated.block(port), block
    httpx.get(f"http://127.0.0.1:{port}/cancel", timeout=10)
    assert run.finish() == 1
    assert_plain(run)
    log = log_lines(codex_home)
    assert log.count(simulated.event) == 1, log
    # Logged once, inside the attempt's span, right after its first event and before the server is up: once it
    # serves, a /cancel can end the attempt at once, and an event logged after that would follow the attempt's
    # one `login finished`.
    started = next(i for i, line in enumerate(log) if "codex_cli::login: login attempt started " in line)
    assert log.index(simulated.event) == started + 1, log
    assert "codex_login::server: login server listening " in log[started + 2], log
    assert "codex_cli::login: login finished " in log[-1], log
    raw_log = (codex_home / "log" / "codex-login.log").read_text()
    assert re.search(r"login\{attempt=la_[0-9a-f]{8}\}: codex_cli::login: login environment ", raw_log)


def test_a_browser_that_cannot_be_opened_is_named(
    start: StartHeadless, issuer: ScriptedIssuer, codex_home: Path
) -> None:
    run = start({"BROWSER": "false"}, args=())
    port, state = callback_parts(run.auth_url())
    failed = run.wait_for("Could not open a browser")
    assert failed == "Could not open a browser with BROWSER: false exited with status 1"
    run.wait_for("Waiting for the browser")
    run.paste(redirect_url(port, state, "after-failed-open") + "\n")
    assert run.finish() == 0, run.raw.decode()
    assert_plain(run)
    lines = run.lines
    url_line = lines.index(run.auth_url())
    assert lines[url_line - 2 : url_line] == [
        "If your browser did not open, navigate to this URL to authenticate:",
        "",
    ]
    log = log_lines(codex_home)
    assert (
        " WARN codex_login::server: browser could not be opened opener=BROWSER reason=false exited with status 1" in log
    )


def test_after_the_device_fallback_nothing_suggests_device_auth(
    issuer: ScriptedIssuer, codex_home: Path, fake_root: Path
) -> None:
    """``--device-auth`` against an issuer without device sign-in falls back to the browser; the browser flow then
    times out over SSH. Neither the text before the wait, nor the warning, nor the advice after the failure may
    send the user back to ``--device-auth``: the issuer has just said it has none."""
    env = headless_env(codex_home, fake_root, ENVIRONMENTS["ssh"].env)
    argv = ["--device-auth", "--port", "0", "--issuer", issuer.url, "--timeout", "1"]
    run = Headless(argv, env, stdin=subprocess.DEVNULL)
    try:
        assert run.finish() == 1
    finally:
        run.kill()
    lines = run.lines
    assert lines[0] == "Device code login is not enabled; falling back to browser login."
    assert not [line for line in lines if "device-auth" in line]
    url = lines.index(run.auth_url())
    port = callback_parts(lines[url])[0]
    warning = lines[url + 1 : url + 5]
    assert warning[:2] == ["", f"Warning: signing in with a browser will probably not reach http://localhost:{port} here:"]
    assert warning[3].startswith(f"Forward the port from your computer with `ssh -L {port}:localhost:{port}")
    assert lines[url + 5 : url + 7] == ["", "Waiting for the browser to finish signing in (0:01 left)."]
    hint = "Forward the port from your computer: `ssh -L 1455:localhost:1455 <host>`, then open the URL there."
    assert f"Try next: {hint}" in lines
    assert "login finished outcome=timeout flow=browser" in " ".join(log_lines(codex_home))


def test_after_the_device_fallback_a_busy_port_does_not_suggest_device_auth(
    issuer: ScriptedIssuer, codex_home: Path, fake_root: Path
) -> None:
    """The same with the port held by a program that ignores the takeover's cancel request: the error, the advice
    after it and ``codex-login log`` leave ``--device-auth`` out."""
    env = headless_env(codex_home, fake_root, {"DISPLAY": ":0"})
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        run = Headless(["--device-auth", "--port", str(port), "--issuer", issuer.url], env, stdin=subprocess.DEVNULL)
        try:
            assert run.finish() == 1
        finally:
            run.kill()
    lines = run.lines
    assert lines[0] == "Device code login is not enabled; falling back to browser login."
    assert f"Error logging in: Port 127.0.0.1:{port} is already in use. Close the other program using it." in lines
    assert "Try next: Run `codex-login doctor`: it names the process holding the port." in lines
    assert not [line for line in lines if "device-auth" in line]
    shown = subprocess.run(
        [str(CONSOLE_SCRIPT), "log"], env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "What went wrong (port_in_use)" in shown.stdout and "fallback_from=device" in shown.stdout
    assert "Or choose another port with `--port N`" in shown.stdout
    assert "device-auth" not in shown.stdout


# --------------------------------------------------------------------------------------------------
# On a real terminal (pseudo-terminal): the countdown line


class OnTerminal:
    """``codex-login`` with a pseudo-terminal as its controlling terminal and stdin/stdout/stderr."""

    def __init__(self, args: list[str], env: Mapping[str, str], *, columns: int) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.initial_echo = self.echo_is_on()
        slave = self.slave

        def make_controlling_terminal() -> None:
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a test that sends SIGQUIT leaves no core file

        self.output = bytearray()
        self.proc = subprocess.Popen(
            self._command(args),
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=dict(env),
            start_new_session=True,
            preexec_fn=make_controlling_terminal,
            pass_fds=self._inherited_fds(),
        )

    def _command(self, args: list[str]) -> list[str]:
        """The argv run on the terminal (a subclass runs codex-login under a job-control shell)."""
        return [str(CONSOLE_SCRIPT), *args]

    def _inherited_fds(self) -> tuple[int, ...]:
        return ()

    def read_until(
        self, needle: bytes | re.Pattern[bytes], *, timeout: float = PROCESS_TIMEOUT, start: int = 0
    ) -> re.Match[bytes]:
        """Read the terminal until ``needle`` (bytes or a pattern) matches at or after ``start``."""
        pattern = needle if isinstance(needle, re.Pattern) else re.compile(re.escape(needle))
        deadline = time.monotonic() + timeout
        while (found := pattern.search(self.output, start)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{needle!r} not seen; terminal output: {bytes(self.output)!r}")
            ready, _, _ = select.select([self.master], [], [], min(remaining, 0.2))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the child is gone and nothing is left to read
                    chunk = b""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"{needle!r} not seen before exit; output: {bytes(self.output)!r}")
                self.output += chunk
        return found

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        code = self.proc.wait(timeout)
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        return code

    def echo_is_on(self) -> bool:
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)
        os.close(self.slave)


class StartOnTerminal(Protocol):
    def __call__(self, extra_env: Mapping[str, str | None], *, columns: int = 200) -> OnTerminal: ...


@pytest.fixture
def on_terminal(issuer: ScriptedIssuer, codex_home: Path, fake_root: Path) -> Iterator[StartOnTerminal]:
    """``on_terminal(extra_env, columns=200)``: ``codex-login --no-browser ... --timeout 30`` on a pty."""
    runs: list[OnTerminal] = []

    def started(extra_env: Mapping[str, str | None], *, columns: int = 200) -> OnTerminal:
        argv = ["--no-browser", "--port", "0", "--issuer", issuer.url, "--timeout", "30"]
        run = OnTerminal(argv, headless_env(codex_home, fake_root, extra_env), columns=columns)
        runs.append(run)
        return run

    yield started
    for run in runs:
        run.close()


def test_countdown_is_one_line_rewritten_in_place_on_a_terminal(on_terminal: StartOnTerminal, codex_home: Path) -> None:
    term = on_terminal({"TERM": "xterm-256color"})
    assert term.initial_echo
    url_line = term.read_until(re.compile(rb"\n([^\r\n]*/oauth/authorize\?[^\r\n]*)\r\n"))
    port, state = callback_parts(url_line.group(1).decode())
    status = rb"\r\x1b\[2KWaiting for the browser to finish signing in \(0:%02d left\)\."
    first = term.read_until(re.compile(status.replace(b"%02d", rb"(\d\d)") + re.escape(PASTE_HINT.encode())))
    seconds = int(first.group(1))
    assert 20 <= seconds <= 30  # --timeout 30
    # Updated every second, in place: carriage return and erase-line, never a newline.
    second = term.read_until(re.compile(status % (seconds - 1)), start=first.end())
    assert b"\n" not in term.output[first.end() : second.end()]
    # The URL is alone on its line: the status starts on a later line.
    assert re.fullmatch(rb"http://127\.0\.0\.1:\d+/oauth/authorize\?\S+", url_line.group(1))
    assert url_line.end() < first.start()
    assert not term.echo_is_on()  # while waiting, what is pasted is not echoed

    term.type(redirect_url(port, state, "typed-on-the-tty").encode() + b"\r")
    done = term.read_until(b"Successfully logged in\r\n").end()
    assert term.finish() == 0
    out = bytes(term.output)
    assert b"typed-on-the-tty" not in out  # neither echoed by the terminal nor printed by us
    # The status line is erased before any other line is printed.
    checking = out.index(b"Checking the pasted redirect URL...")
    assert out[checking - 5 : checking] == b"\r\x1b[2K"
    assert out[: done - len(b"Successfully logged in\r\n")].endswith(b"\r\x1b[2K")
    assert term.echo_is_on()  # the terminal is given back as it was
    assert (codex_home / "auth.json").is_file()


def test_no_color_and_narrow_terminal_use_no_escapes(on_terminal: StartOnTerminal) -> None:
    term = on_terminal({"NO_COLOR": "1", "TERM": "xterm-256color"}, columns=50)
    first = term.read_until(re.compile(rb"\rWaiting for the browser \(0:(\d\d) left\)\."))
    term.read_until(b"\rWaiting for the browser (0:%02d left)." % (int(first.group(1)) - 1), start=first.end())
    term.type(b"\x03")  # Ctrl-C on the terminal
    term.read_until(b"Error logging in: Login was not completed (interrupted)")
    assert term.finish() == 130
    out = bytes(term.output)
    assert b"\x1b" not in out
    # Every rewrite fits the 50 columns, so the line never wraps (a wrapped line cannot be rewritten).
    statuses = [chunk for chunk in out.split(b"\r") if chunk.startswith(b"Waiting")]
    assert statuses and all(len(chunk.rstrip(b" ")) <= 49 for chunk in statuses)
    assert term.echo_is_on()


@pytest.mark.parametrize(
    "signum", [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT], ids=lambda signum: signum.name
)
def test_a_signal_during_the_wait_gives_the_terminal_its_echo_back(
    on_terminal: StartOnTerminal, codex_home: Path, signum: signal.Signals
) -> None:
    """SIGHUP and SIGQUIT keep their default action (the process is killed by them, with no final event, as
    before) but restore the echo first; SIGTERM and Ctrl-C cancel the attempt as they always did."""
    term = on_terminal({"TERM": "xterm-256color"})
    assert term.initial_echo
    term.read_until(b"Waiting for the browser")
    assert not term.echo_is_on()
    term.proc.send_signal(signum)
    code = term.finish()
    assert term.echo_is_on()
    assert not (codex_home / "auth.json").exists()
    finished = [line for line in log_lines(codex_home) if "login finished" in line]
    if signum in (signal.SIGHUP, signal.SIGQUIT):
        assert code == -signum  # killed by the signal itself, as a shell reports it
        assert finished == []
    else:
        reason = "interrupted" if signum == signal.SIGINT else "terminated"
        assert code == (130 if signum == signal.SIGINT else 143)
        assert f"Error logging in: Login was not completed ({reason})".encode() in term.output
        assert sum(f"login cancelled reason={reason}" in line for line in log_lines(codex_home)) == 1
        assert len(finished) == 1 and "outcome=cancelled" in finished[0]


# A job-control shell in miniature, as the session leader on the pty: it runs codex-login as a job in its own process
# group in the foreground, takes the terminal back when the job stops (as bash does at Ctrl-Z, leaving its modes
# as the job left them), and obeys `fg` / `bg` read from the fd argv[1]. Each change of the job's state is
# written to the fd argv[2] ("pid N", "stopped", "continued", "exit N"): the test waits for those, never for time. The job's process group
# has a parent in the same session (this shell), so it is not orphaned: the kernel lets SIGTSTP stop it.
JOB_SHELL = r"""
import os, signal, sys, threading
commands, events = os.fdopen(int(sys.argv[1]), "r"), os.fdopen(int(sys.argv[2]), "w", buffering=1)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a shell may set the terminal's foreground group at any time
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execv(sys.argv[3], sys.argv[3:])
try:
    os.setpgid(pid, pid)  # both sides, as shells do: whichever runs first
except PermissionError:
    pass  # the job has already exec'd, after its own setpgid
os.tcsetpgrp(0, pid)
events.write(f"pid {pid}\n")

def reap():
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED | os.WCONTINUED)
        if os.WIFSTOPPED(status):
            os.tcsetpgrp(0, os.getpgrp())
            events.write("stopped\n")
        elif os.WIFCONTINUED(status):
            events.write("continued\n")
        else:
            events.write(f"exit {os.waitstatus_to_exitcode(status)}\n")
            os._exit(0)  # the shell ends with its job

threading.Thread(target=reap, daemon=True).start()
for command in commands:
    if command.strip() == "fg":
        os.tcsetpgrp(0, pid)
    os.killpg(pid, signal.SIGCONT)
"""


class JobOnTerminal(OnTerminal):
    """``codex-login`` as a foreground job of :data:`JOB_SHELL` on a pseudo-terminal."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.commands_read, self.commands = os.pipe()
        self.events_pipe, events_write = os.pipe()
        self._events_write = events_write
        super().__init__(args, env, columns=200)
        os.close(events_write)
        self.events = os.fdopen(self.events_pipe, "r")
        self.job = int(self.event().removeprefix("pid "))

    def _command(self, args: list[str]) -> list[str]:
        shell_fds = [str(fd) for fd in self._inherited_fds()]
        return [sys.executable, "-c", JOB_SHELL, *shell_fds, str(CONSOLE_SCRIPT), *args]

    def _inherited_fds(self) -> tuple[int, ...]:
        return (self.commands_read, self._events_write)

    def event(self) -> str:
        ready, _, _ = select.select([self.events], [], [], PROCESS_TIMEOUT)
        assert ready, f"the job shell reported nothing; terminal output: {bytes(self.output)!r}"
        return self.events.readline().strip()

    def command(self, text: str) -> None:
        os.write(self.commands, text.encode() + b"\n")

    def wait_for_echo(self, on: bool) -> None:
        """Until the terminal's echo is ``on`` (the job turns it on or off from its signal handler)."""
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while self.echo_is_on() != on:
            assert time.monotonic() < deadline, f"the echo never went {'on' if on else 'off'}"
            # What the job prints meanwhile is read, so that it never blocks on a full terminal.
            if select.select([self.master], [], [], 0.05)[0]:
                self.output += os.read(self.master, 65536)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.job, signal.SIGKILL)  # the job first: the shell then ends with it
        super().close()
        for fd in (self.commands_read, self.commands):
            os.close(fd)
        self.events.close()


def test_ctrl_z_gives_the_echo_back_and_fg_takes_it_away_again(
    issuer: ScriptedIssuer, codex_home: Path, fake_root: Path
) -> None:
    """Ctrl-Z while the wait reads the terminal with its echo off: the job stops with the terminal as it was
    (echo on, for the shell); `bg` leaves it so; `fg` turns the echo off again, so a redirect URL pasted then
    is still not shown; a second Ctrl-Z works as the first."""
    argv = ["--no-browser", "--port", "0", "--issuer", issuer.url, "--timeout", "30"]
    term = JobOnTerminal(argv, headless_env(codex_home, fake_root, {"TERM": "xterm-256color"}))
    try:
        assert term.initial_echo
        url_line = term.read_until(re.compile(rb"\n([^\r\n]*/oauth/authorize\?[^\r\n]*)\r\n"))
        port, state = callback_parts(url_line.group(1).decode())
        term.read_until(b"Waiting for the browser")
        assert not term.echo_is_on()

        term.type(b"\x1a")  # Ctrl-Z: the terminal sends SIGTSTP to the foreground job
        assert term.event() == "stopped"
        assert term.echo_is_on()  # restored before the process stopped

        term.command("bg")  # resumed in the background: the terminal is the shell's, its echo stays on
        assert term.event() == "continued"
        shown = len(term.output)
        term.read_until(re.compile(rb"Waiting for the browser[^\r]*left"), start=shown)  # the job runs on
        assert term.echo_is_on()

        term.command("fg")  # the terminal to the job, and SIGCONT (to a running job: no "continued" then)
        term.wait_for_echo(False)

        term.type(b"\x1a")  # again: the handler was set up anew
        assert term.event() == "stopped"
        assert term.echo_is_on()
        term.command("fg")
        assert term.event() == "continued"
        term.wait_for_echo(False)

        term.type(redirect_url(port, state, "pasted-after-fg").encode() + b"\r")
        term.read_until(b"Successfully logged in\r\n")
        assert term.event() == "exit 0"
        term.finish()
        assert b"pasted-after-fg" not in term.output  # not echoed by the terminal
        assert term.echo_is_on()
        assert (codex_home / "auth.json").is_file()
    finally:
        term.close()


# --------------------------------------------------------------------------------------------------
# The pieces, in process


def test_format_remaining_and_waiting_text_fit_any_width() -> None:
    assert [format_remaining(s) for s in (599.2, 600, 62, 59.01, 0.2, -3, 3725)] == [
        "10:00",
        "10:00",
        "1:02",
        "1:00",
        "0:01",
        "0:00",
        "1:02:05",
    ]
    assert waiting_text(598, paste=True) == (
        "Waiting for the browser to finish signing in (9:58 left). "
        "Paste the redirect URL here if the page could not load."
    )
    assert waiting_text(None, paste=False) == "Waiting for the browser to finish signing in."
    for columns in range(2, 160):
        text = waiting_text(3725, paste=True, columns=columns)
        assert 0 < len(text) <= columns - 1 or (columns == 2 and len(text) == 1)
    assert (
        waiting_text(5, paste=True, columns=80)
        == "Waiting for the browser (0:05 left). Or paste the redirect URL here."
    )


def test_terminal_mode_follows_tty_no_color_and_dumb_terminals(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as tty, (tmp_path / "err.txt").open("w") as file:
            assert terminal_mode(tty, {}).escapes
            assert terminal_mode(tty, {"NO_COLOR": ""}).escapes  # empty means unset (no-color.org)
            no_color = terminal_mode(tty, {"NO_COLOR": "1"})
            assert no_color.rewrite and not no_color.escapes
            assert not terminal_mode(tty, {"TERM": "dumb"}).rewrite
            assert not terminal_mode(file, {}).rewrite and not terminal_mode(file, {}).escapes
    finally:
        os.close(master)
        os.close(slave)


def drain(master: int) -> bytes:
    """Everything written to the pseudo-terminal so far (one read may return only part of it)."""
    data = b""
    while select.select([master], [], [], 0.2)[0]:
        data += os.read(master, 4096)
    return data


def test_printer_clears_the_status_before_a_line_and_draws_it_again() -> None:
    master, slave = pty.openpty()
    try:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # see exactly the bytes written (no \n -> \r\n)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        with open(slave, "w", closefd=False) as tty:
            printer = TerminalPrinter(tty, env={})
            printer.status("Waiting A")
            printer.status("Waiting A")  # unchanged: nothing written
            printer.line("notice")
            printer.status("Waiting B")
            printer.clear()
            printer.clear()
        written = drain(master)
        assert written == (
            b"\r\x1b[2KWaiting A" + b"\r\x1b[2Knotice\n" + b"\r\x1b[2KWaiting A" + b"\r\x1b[2KWaiting B" + b"\r\x1b[2K"
        )
        with open(slave, "w", closefd=False) as tty:
            plain_tty = TerminalPrinter(tty, env={"NO_COLOR": "1"})
            plain_tty.status("Waiting long text")
            plain_tty.status("Waiting")
            plain_tty.line("x")
        assert drain(master) == (b"\rWaiting long text" + b"\rWaiting          " + b"\r       \rx\n" + b"\rWaiting")
    finally:
        os.close(master)
        os.close(slave)


def test_plain_status_is_printed_at_most_once_a_minute(tmp_path: Path) -> None:
    now = [100.0]
    with (tmp_path / "stderr.txt").open("w+") as stream:
        printer = TerminalPrinter(stream, env={}, clock=lambda: now[0])
        for step in range(130):
            now[0] = 100.0 + step
            printer.status(f"Waiting ({step})")
        printer.line("done")
        stream.seek(0)
        assert stream.read() == "Waiting (0)\nWaiting (60)\nWaiting (120)\ndone\n"
    assert PLAIN_REPEAT_SECONDS == 60.0


def read_all(reader: PasteReader, timeout: float = 10.0) -> list[PastedLine]:
    deadline = time.monotonic() + timeout
    while reader.reading and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reader.reading
    lines = []
    while not reader.lines.empty():
        lines.append(reader.lines.get_nowait())
    return lines


def test_paste_reader_splits_caps_and_cleans_lines() -> None:
    read_end, write_end = os.pipe()
    reader = PasteReader(read_end)
    try:
        assert reader.start()
        exactly = "y" * MAX_PASTE_LINE
        data = (
            b"first\r\n"
            + b"\x1b[200~http://localhost:1/auth/callback?code=a&state=b\x1b[201~\n"
            + b"z" * (MAX_PASTE_LINE + 1)
            + b"\n"
            + exactly.encode()
            + b"\n  \n"
            + b"caf\xc3\xa9 \xff"
            + b"\n"
            + b"w" * (3 * MAX_PASTE_LINE)  # over the cap and no newline before the end
        )
        view = memoryview(data)
        while view:
            written = os.write(write_end, view[:1000])  # in pieces, as a terminal or a slow pipe delivers
            view = view[written:]
        os.close(write_end)
        write_end = -1
        assert read_all(reader) == [
            PastedLine("first"),
            PastedLine("http://localhost:1/auth/callback?code=a&state=b"),
            PastedLine("", too_long=True),
            PastedLine(exactly),
            PastedLine(""),
            PastedLine("café \ufffd"),
            PastedLine("", too_long=True),
        ]
    finally:
        reader.stop()
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_paste_reader_does_not_read_devnull_or_a_closed_stdin() -> None:
    with open(os.devnull, "rb") as devnull:
        reader = PasteReader(devnull.fileno())
        assert not reader.start() and not reader.reading
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    assert not PasteReader(read_end).start()


def test_paste_reader_takes_only_default_fatal_signals_and_puts_them_back() -> None:
    master, slave = pty.openpty()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM)}
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)

    def own(_signum: int, _frame: object) -> None:  # someone else's handler
        pass

    signal.signal(signal.SIGTERM, own)
    reader = PasteReader(slave)
    try:
        assert reader.start()
        assert not termios.tcgetattr(slave)[3] & termios.ECHO
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None)
        assert signal.getsignal(signal.SIGQUIT) not in (signal.SIG_DFL, None)
        assert signal.getsignal(signal.SIGTERM) is own  # a handler that is there already is left alone
        reader.stop()
        assert termios.tcgetattr(slave)[3] & termios.ECHO
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGQUIT) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        reader.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(master)  # the reader's thread, blocked in read, ends with EIO
        os.close(slave)


def test_environment_text_from_outside_is_sanitized() -> None:
    info = detect_environment(
        {"container": "evil\x1b[31m\nred"},
        platform="linux",
        proc_version="6.1.0-18-amd64",
        dockerenv_exists=False,
        containerenv_exists=False,
        cgroup_text="",
    )
    lines = environment_lines(assess_callback_reachability(info, port=1455), port=1455)
    assert lines[1] == "Warning: signing in with a browser will probably not reach http://localhost:1455 here:"
    assert "this runs in a container (evil red)" in lines[2]
    assert not any("\x1b" in line or "\n" in line for line in lines)


# --------------------------------------------------------------------------------------------------
# Whichever comes first wins (library: a real server, a real pipe as stdin)


def _server(codex_home: Path, issuer: ScriptedIssuer) -> LoginServer:
    return run_login_server(
        ServerOptions(
            codex_home=codex_home,
            issuer=issuer.url,
            port=0,
            open_browser=False,
            force_state="state-of-this-attempt",
            http=HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0),
            timeout=30,
            success_grace=5,
        )
    )


class Waiter:
    """:func:`wait_in_terminal` on a thread, inside the attempt's span, reading a pipe as its stdin."""

    def __init__(self, server: LoginServer) -> None:
        self.read_end, self.write_end = os.pipe()
        self.stream = io.StringIO()
        self.error: BaseException | None = None
        self.server = server
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with attempt_span(self.server.attempt_id):
                wait_in_terminal(
                    self.server,
                    TerminalPrinter(self.stream, env={}),
                    deadline=time.monotonic() + 30,
                    stdin_fd=self.read_end,
                )
        except BaseException as exc:
            self.error = exc

    def paste(self, text: str) -> None:
        os.write(self.write_end, text.encode())

    def join(self) -> None:
        self.thread.join(20)
        assert not self.thread.is_alive()

    def close(self) -> None:
        os.close(self.write_end)
        os.close(self.read_end)


def test_paste_wins_and_a_later_browser_callback_is_refused(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    slow_tokens = tokens_answer()
    slow_tokens.hang = 1.0  # the paste's exchange is still running when the browser arrives
    issuer.token = slow_tokens
    server = _server(codex_home, issuer)
    waiter = Waiter(server)
    try:
        waiter.paste(redirect_url(server.actual_port, "state-of-this-attempt", "pasted") + "\n")
        deadline = time.monotonic() + 10
        while not issuer.token_requests() and time.monotonic() < deadline:
            time.sleep(0.01)
        browser = httpx.get(
            f"http://127.0.0.1:{server.actual_port}/auth/callback?code=browser&state=state-of-this-attempt",
            timeout=15,
        )
        assert browser.status_code == 400
        assert browser.text == "This sign-in was already completed. Return to your terminal."
        waiter.join()
        assert waiter.error is None, waiter.error
        assert server.block_until_done(1).store == "file"
        assert [r.form["code"] for r in issuer.token_requests()] == ["pasted"]
        assert "Checking the pasted redirect URL...\n" in waiter.stream.getvalue()
        assert " WARN codex_login::server: login callback after the attempt was settled path=/auth/callback" in [
            normalize_line(line) for line in login_log.lines()
        ]
    finally:
        waiter.close()


def test_browser_wins_and_a_later_paste_is_ignored(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    server = _server(codex_home, issuer)
    waiter = Waiter(server)
    try:
        page = httpx.get(
            f"http://127.0.0.1:{server.actual_port}/auth/callback?code=browser&state=state-of-this-attempt",
            timeout=15,
            follow_redirects=True,
        )
        assert page.status_code == 200
        waiter.join()
        assert waiter.error is None, waiter.error
        waiter.paste(redirect_url(server.actual_port, "state-of-this-attempt", "late") + "\n")
        time.sleep(0.3)
        assert [r.form["code"] for r in issuer.token_requests()] == ["browser"]
        assert not any("pasted redirect URL" in line for line in login_log.lines())
        assert "Pasted" not in waiter.stream.getvalue()
    finally:
        waiter.close()


def test_a_failed_attempt_still_clears_the_status_and_raises(issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = _server(codex_home, issuer)
    waiter = Waiter(server)
    try:
        waiter.paste(
            redirect_url(server.actual_port, "state-of-this-attempt", "x").replace("code=x", "error=access_denied")
            + "\n"
        )
        waiter.join()
        assert isinstance(waiter.error, LoginError)
        assert str(waiter.error) == "Sign-in failed: access_denied"
    finally:
        waiter.close()


def test_a_printer_without_stderr_prints_nothing_and_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # `2>&-`: sys.stderr is None; the first line ("Starting local login server...") raised AttributeError and
    # the attempt ended without its final event.
    monkeypatch.setattr(sys, "stderr", None)
    printer = TerminalPrinter(env={})
    printer.line("Starting local login server on http://localhost:1455.")
    printer.status("Waiting for the browser (9:59 left).")
    printer.line("done")
    assert printer.columns() is None
