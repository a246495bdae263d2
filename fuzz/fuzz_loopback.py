"""Coverage-guided fuzzing of the loopback login server's request handling, with atheris (libFuzzer).

Why atheris: ``pip install atheris`` works on this project's Python (3.11; atheris 3.0.0 ships a wheel), and
coverage guidance reaches the parser's corners (header limits, percent-decoding, the Host check, the state
and duplicate checks) much faster than random bytes. It is a test dependency (the ``test`` extra).

Run it by hand for as long as you like (libFuzzer flags; a corpus directory is optional)::

    .venv/bin/python fuzz/fuzz_loopback.py -max_total_time=600 -max_len=20000 fuzz-corpus/

``tests/hardening/test_fuzz.py`` runs it in CI with a fixed run budget and a ~20 s wall-clock cap.

Each input is one request on a fresh connection to a live ``LoginServer`` (port 0, a fixed state, an
issuer whose token endpoint always refuses, so nothing is ever saved). The input chooses a mode:

* raw: the bytes are the whole request (the write side is then closed);
* structured: a method, a path and a Host (each either one the server knows or fuzzed), a fuzzed query
  that may carry the right state, a fuzzed ``error_description`` and fuzzed extra headers;
* paste: the text is handed to ``submit_redirect_url``, as if pasted in the terminal.

What must always hold (anything else raises, and atheris reports the input):

* the answer is nothing at all, or one well-formed ``HTTP/1.1`` response: a status from the set the server
  uses (never 500), ``Connection: close``, the security headers, a ``Content-Length`` that matches, and a
  ``Location`` only on a 302 to this server's ``/success``;
* the attempt ends only on a request that may end it (``/cancel`` without browser headers, or a callback
  with the right state); any other request leaves it waiting;
* no exception escapes into asyncio's error log or a thread, and every log event renders as one line of at
  most 4 KiB.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import atheris  # type: ignore[import-untyped]

# Coverage counters only when fuzzing: importing this module for the oracle's self-test changes nothing.
with atheris.instrument_imports() if __name__ == "__main__" else contextlib.nullcontext():
    from codex_login import pages, server
    from codex_login.diagnostics import format as log_format
    from codex_login.diagnostics import redact
    from codex_login.errors import LoginError
    from codex_login.http import HttpSettings

STATE = "F" * 43
STATUSES = {200, 302, 400, 403, 404, 405, 414, 431}
SECURITY_HEADERS = {name.lower(): value for name, value in pages.SECURITY_HEADERS.items()}
METHODS = ["GET", "HEAD", "POST", "OPTIONS", "CONNECT", "TRACE", "get", "GET "]
PATHS = ["/auth/callback", "/success", "/cancel", "/", "/favicon.ico", "//auth/callback", "/auth/callback/", "*"]
KEYS = ["code", "state", "error", "error_description", "iss", "scope", "code"]
HEADER_NAMES = ["Origin", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Content-Length", "Transfer-Encoding", "X-Fuzz"]


class Refusing(BaseHTTPRequestHandler):
    """The issuer: every token request is refused, quickly, so an accepted callback ends the attempt."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b'{"error":"invalid_grant","error_description":"fuzzing"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class OneLineCheck(logging.Handler):
    """Formats every event as the durable log would and keeps any line that breaks the rules."""

    def __init__(self) -> None:
        super().__init__()
        self.text = log_format.TracingTextFormatter(scrubber=redact.scrub_all)
        self.json = log_format.TracingJsonFormatter(scrubber=redact.scrub_all)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        for formatter in (self.text, self.json):
            line = formatter.format(record)
            if line.splitlines() != [line] or len(line.encode("utf-8")) > 4096:
                self.problems.append(f"not one line of at most 4 KiB: {line[:200]!r}")


class AsyncioErrors(logging.Handler):
    """asyncio logs an exception that escaped a connection handler; any such record is a finding."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.found.append(record.getMessage())


class World:
    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="codex-login-fuzz-"))
        self.issuer = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
        self.issuer.daemon_threads = True
        threading.Thread(target=self.issuer.serve_forever, daemon=True).start()
        self.lines = OneLineCheck()
        for name in ("codex_cli", "codex_login"):
            target = logging.getLogger(name)
            target.addHandler(self.lines)
            target.setLevel(logging.DEBUG)
            target.propagate = False
        self.asyncio_errors = AsyncioErrors()
        logging.getLogger("asyncio").addHandler(self.asyncio_errors)
        self.thread_errors: list[str] = []
        threading.excepthook = lambda args: self.thread_errors.append(repr(args.exc_value))
        self.server = self._start()

    def _start(self) -> server.LoginServer:
        started = server.run_login_server(
            server.ServerOptions(
                codex_home=self.home,
                issuer=f"http://127.0.0.1:{self.issuer.server_address[1]}",
                port=0,
                open_browser=False,
                force_state=STATE,
                http=HttpSettings(env={}, total_timeout=5, connect_timeout=5),
                timeout=3600,
                notice=lambda _line: None,
            )
        )
        # libFuzzer ends the process with C exit() after the last input, which runs OpenSSL's cleanup: a
        # worker still building its TLS context then crashes the process (seen in CI after a restart).
        if not started.wait_prepared(10):
            raise AssertionError("the sign-in's HTTP client was not prepared within 10 s")
        return started

    def restart(self) -> None:
        deadline = time.monotonic() + 5
        while not self.server.done:
            if time.monotonic() > deadline:
                raise AssertionError("an ending request did not end the attempt")
            time.sleep(0.001)
        try:
            self.server.block_until_done(1)
        except LoginError:
            pass  # the attempt's own ending (cancelled, denied, token refused): expected here
        self.server = self._start()

    def check_clean(self) -> None:
        problems = self.lines.problems + self.asyncio_errors.found + self.thread_errors
        if problems:
            raise AssertionError("; ".join(problems[:3]))


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send ``data``, close the write side, read until the server closes; (bytes, whether it reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reset = False
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            reset = True
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return b"".join(chunks), True
            if not chunk:
                return b"".join(chunks), reset
            chunks.append(chunk)


def check_reply(raw: bytes, reset: bool, port: int, head_only: bool) -> int | None:
    """The oracle for one answer; its status (None: no answer)."""
    if not raw:
        return None
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        if reset:
            return None  # the server answered early and closed on unread bytes; the kernel dropped the rest
        raise AssertionError(f"incomplete response head: {raw[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    match = re.fullmatch(r"HTTP/1\.1 (\d{3}) [A-Za-z -]+", lines[0])
    if match is None:
        raise AssertionError(f"bad status line {lines[0]!r}")
    status = int(match.group(1))
    if status not in STATUSES:
        raise AssertionError(f"unexpected status {status}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(": ")
        if not colon or name.lower() in headers:
            raise AssertionError(f"bad or repeated header line {line!r}")
        headers[name.lower()] = value
    if headers.get("connection") != "close":
        raise AssertionError("missing Connection: close")
    for name, value in SECURITY_HEADERS.items():
        if headers.get(name) != value:
            raise AssertionError(f"missing security header {name}")
    if not head_only and not reset and int(headers.get("content-length", "-1")) != len(body):
        raise AssertionError("Content-Length does not match the body")
    location = headers.get("location")
    if location is not None and (status != 302 or location != f"http://localhost:{port}/success"):
        raise AssertionError(f"unexpected Location {location!r} on {status}")
    return status


def structured(fdp: Any, port: int) -> tuple[bytes, bool, bool]:
    """(request bytes, whether it may end the attempt, whether it is a HEAD request)."""
    method = fdp.PickValueInList(METHODS) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8)
    path = fdp.PickValueInList(PATHS) if fdp.ConsumeBool() else "/" + fdp.ConsumeUnicodeNoSurrogates(16)
    params: list[str] = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        key = fdp.PickValueInList(KEYS) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8)
        value = STATE if key == "state" and fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(40)
        params.append(f"{key}={value}" if fdp.ConsumeBool() else f"{key}={_percent(value)}")
    host = f"127.0.0.1:{port}" if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(24)
    lines = [f"{method} {path}{'?' + '&'.join(params) if params else ''} HTTP/1.1", f"Host: {host}"]
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        name = fdp.PickValueInList(HEADER_NAMES) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(12)
        lines.append(f"{name}: {fdp.ConsumeUnicodeNoSurrogates(24)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")
    may_end = path in ("/cancel", "/auth/callback") or "/success" in path
    return data, may_end, method == "HEAD"


def _percent(value: str) -> str:
    return "".join(c if c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in value)


def paste(world: World, text: str) -> None:
    verdict = world.server.submit_redirect_url(text, timeout=10)
    if verdict.accepted and STATE not in unquote(text):
        raise AssertionError(f"a pasted URL without the right state was accepted: {text[:200]!r}")


@functools.cache
def the_world() -> World:
    """Built on the first input, so importing this module (the oracle's self-test) starts no server."""
    return World()


def test_one_input(data: bytes) -> None:
    world = the_world()
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 4)
    port = world.server.actual_port
    if mode == 0:
        request = fdp.ConsumeBytes(fdp.remaining_bytes())
        may_end, head_only = True, request.startswith(b"HEAD ")
    elif mode == 4:
        paste(world, fdp.ConsumeUnicode(fdp.remaining_bytes()))
        world.check_clean()
        if world.server.done:
            world.restart()
        return
    else:
        request, may_end, head_only = structured(fdp, port)
    raw, reset = exchange(port, request)
    status = check_reply(raw, reset, port, head_only)
    world.check_clean()
    if status == 200 and may_end:
        time.sleep(0.002)
        if world.server.done:
            world.restart()
            return
    if world.server.done:
        if not may_end:
            raise AssertionError(f"the attempt ended on a request that may not end it: {request[:200]!r}")
        world.restart()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
