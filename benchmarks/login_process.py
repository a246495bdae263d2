"""A real browser sign-in driven by the benchmark: the console script runs the loopback server, the
benchmark plays the browser (it sends the callback and follows the redirect), a :class:`RawIssuer` (or any
issuer) answers the token endpoint.

``codex-login --no-browser --port 0 --issuer URL`` is started exactly as a user would start it; its stderr is
read on a thread (the authorize URL comes from there), and when it ends it is reaped with ``wait4`` so its
peak RSS and CPU time are known.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, quote, urlsplit

from benchmarks.common import BenchmarkError, bench_env, console_script, reap, wait_exit

MAX_RESPONSE_BYTES = 4 << 20


@dataclass(frozen=True)
class HttpReply:
    """A response read off a raw socket, with the instants around it (``time.perf_counter``)."""

    status: int
    headers: dict[str, str]
    body: bytes
    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def read_reply(sock: socket.socket, started: float) -> HttpReply:
    """Read one HTTP/1.1 response (head, then Content-Length bytes or up to EOF)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchmarkError(f"connection closed before a full response head: {data[:200]!r}")
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise BenchmarkError("response head too large")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise BenchmarkError("response body too large")
    return HttpReply(status, headers, body, started, time.perf_counter())


def browser_get(port: int, target: str, *, timeout: float = 10.0) -> HttpReply:
    """GET ``target`` from the loopback server like a browser navigating to it; timed from connect."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\nUser-Agent: codex-login-benchmark\r\n"
        "Accept: text/html\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n"
        "Sec-Fetch-Site: cross-site\r\nConnection: keep-alive\r\n\r\n"
    ).encode("ascii")
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_reply(sock, started)


class LoginProcess:
    """One ``codex-login`` browser sign-in in a subprocess. Always end it with :meth:`finish` or :meth:`kill`."""

    def __init__(
        self,
        issuer: str,
        root: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        """``command`` runs codex-login (default: the installed console script)."""
        home = root / "home"
        self.codex_home = root / "codex-home"
        home.mkdir(parents=True, exist_ok=True)
        self.codex_home.mkdir(mode=0o700, parents=True, exist_ok=True)
        #: ``time.perf_counter()`` at the spawn and once the authorize URL was read (see :meth:`wait_ready`).
        self.spawned = time.perf_counter()
        self.url_printed = 0.0
        self.proc = subprocess.Popen(
            [*(command or [str(console_script())]), "--no-browser", "--port", "0", "--issuer", issuer],
            env=bench_env(home, self.codex_home, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stderr is not None and self.proc.stdout is not None
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, False), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        self.port = 0
        self.state = ""

    def _pump(self, stream: IO[str], announce: bool) -> None:
        for line in stream:
            if announce:
                self.stderr_lines.append(line.rstrip("\n"))
                self._lines.put(line.rstrip("\n"))
        if announce:
            self._lines.put(None)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the authorize URL; remember the callback port and the state."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchmarkError(f"no authorize URL within {timeout} s: {self.stderr_lines!r}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise BenchmarkError(f"codex-login ended before printing the URL: {self.stderr_lines!r}")
            if "/oauth/authorize?" in line:
                self.url_printed = time.perf_counter()
                query = parse_qs(urlsplit(line.strip()).query)
                port = urlsplit(query["redirect_uri"][0]).port
                if port is None:
                    raise BenchmarkError(f"no port in {line!r}")
                self.port = port
                self.state = query["state"][0]
                return

    def success_target(self, code: str = "bench-code-0123456789") -> str:
        return f"/auth/callback?code={quote(code)}&state={quote(self.state)}"

    def denied_target(self) -> str:
        return (
            f"/auth/callback?error=access_denied&error_description={quote('The user denied access')}"
            f"&state={quote(self.state)}"
        )

    def finish(self, timeout: float = 30.0) -> tuple[int, int, float]:
        """Wait for the exit: (exit code, peak RSS in KiB, CPU seconds). Kills it after ``timeout``."""
        if not wait_exit(self.pid, timeout):
            self.kill()
            raise BenchmarkError(f"codex-login did not exit within {timeout} s: {self.stderr_lines[-20:]!r}")
        code, cpu, rss = reap(self.pid)
        self.proc.returncode = code  # reaped here with wait4, so Popen must not wait for it again
        for pump in self._pumps:
            pump.join(10)
        return code, rss, cpu

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            code, _, _ = reap(self.pid)
            self.proc.returncode = code
