"""The hardening harness (security matrix §4): run the real console script against a scripted issuer, then
check the seven invariants after every row.

* INV-1 ``auth.json`` keeps its bytes, mode, inode and mtime unless the row ends in success.
* INV-2 no canary reaches a sink it is forbidden in (log, terminal, page, bundle, other files), in any of
  several encodings, and the second-net patterns (JWT, ``sk-`` keys, ``Bearer``, ``code=``) find nothing.
* INV-3 the callback port refuses connections within 1 s of the moment the attempt ended.
* INV-4 the process exits within the row's budget with the row's exit code.
* INV-5 every log line is one parseable event of at most 4 KiB, and each attempt ends with exactly one
  ``login finished``.
* INV-6 nothing but the known files is left in ``CODEX_HOME`` (no temporary or partial files).
* INV-7 no traceback, logging-error dump or asyncio complaint on stderr or stdout.

Every secret a row uses is a canary made at run time (nothing secret-shaped is committed): the
authorization code, the tokens, the id_token (a JWT whose email, account and signature are canaries), the
API key and the previous ``auth.json``'s key are set up by :class:`Harness` for every row; the state and
the PKCE challenge are read from the printed authorize URL and the verifier from the token request, so they
are canaries too without any test-only hook in the CLI.

Tests call :meth:`Harness.finish`, which waits for the process and checks all seven invariants in one go,
so no row can forget them.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest

from codex_login.diagnostics.format import ParsedLine, parse_json_line, parse_text_line
from codex_login.diagnostics.logfile import LOG_FILE_NAME
from tests.support.scripted_issuer import Answer, Recorded, ScriptedIssuer, b64url, tokens_answer

CODEX_LOGIN = Path(sys.executable).parent / "codex-login"
LINE_LIMIT = 4096
# What may live in CODEX_HOME after any row (INV-6; .refresh.lock once a refresh ran); everything else is a leftover.
KNOWN_HOME_FILES = ("auth.json", "config.toml", ".auth.lock", ".refresh.lock", "log")
_LOG_NAME = re.compile(re.escape(LOG_FILE_NAME) + r"(\.[0-9]+)?\Z")

# Sink names for the canary policy.
LOG = "log"
TERMINAL = "terminal"
AUTHORIZE_URL = "authorize_url"  # the printed authorize URL only (DECISIONS §4: state and challenge)
PAGE = "page"
BUNDLE = "bundle"
FILES = "files"
PROTOCOL = "protocol"  # the app server's JSON-RPC messages (responses and notifications)
ALL_SINKS = (LOG, TERMINAL, PAGE, BUNDLE, FILES, PROTOCOL)

TRACEBACK_MARKERS = (
    "Traceback (most recent call last)",
    "--- Logging error ---",
    "Exception ignored",
    "Task was destroyed",
    "Arguments: (",
    "Task exception was never retrieved",
)

# The second net (security §3.3 step 7): secret shapes that must not appear in a forbidden sink at all.
SECOND_NET = (
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.?[A-Za-z0-9_.+/=-]*")),
    (
        "gitleaks-jwt",
        re.compile(r"(?i)ey[0-9a-z]{30,34}\.ey[0-9a-z\-/_]{30,500}\.[0-9a-z\-/_]{10,200}={0,2}"),
    ),
    ("openai-key", re.compile(r"sk-(?:proj|svcacct|admin|old)-[A-Za-z0-9_-]{8,}")),
    ("bearer", re.compile(r"(?i)bearer\s+\S+")),
    (
        "secret-param",
        re.compile(r"(?i)\b(code|state|code_verifier|access_token|refresh_token|id_token)=(?!<redacted|%3Credacted)"),
    ),
)


# --------------------------------------------------------------------------------------------- canaries


def new_core() -> str:
    """24 random hex digits: the part of a canary every encoding check looks for."""
    return secrets.token_hex(12)


def encoded_forms(value: str) -> set[str]:
    """``value`` as it could leak: raw, URL-quoted, form-quoted, HTML-escaped, JSON-escaped, and base64 or
    base64url at any alignment (the characters that depend on neighbouring bytes are left out)."""
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    raw = value.encode("utf-8")
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode("ascii")
        inner = encoded[(pad * 4 + 2) // 3 : len(encoded) - 4]
        forms.update((inner, inner.replace("+", "-").replace("/", "_")))
    return {form for form in forms if len(form) >= 8}


@dataclass(frozen=True)
class Canary:
    """One secret-shaped value, the sinks it may appear in, and the random core its windows come from."""

    name: str
    value: str
    core: str
    allowed: frozenset[str] = frozenset()

    def needles(self) -> set[str]:
        """Everything whose presence counts as a leak: each encoded form, and any 8-character window of the
        core (catches partial masking such as ``sk-…abcd1234``)."""
        found = encoded_forms(self.value)
        found.update(self.core[i : i + 8] for i in range(len(self.core) - 7))
        return found


class CanarySet:
    """The canaries of one test. Each has its own core, so an allowed canary never masks a forbidden one."""

    def __init__(self) -> None:
        self.items: dict[str, Canary] = {}

    def add(self, name: str, prefix: str, *, allowed: Iterable[str] = (), suffix: str = "") -> str:
        core = new_core()
        value = f"{prefix}{core}{suffix}"
        self.items[name] = Canary(name, value, core, frozenset(allowed))
        return value

    def add_value(self, name: str, value: str, *, allowed: Iterable[str] = ()) -> str:
        """A canary whose value came from the program (the state, the verifier): its core is the value."""
        self.items[name] = Canary(name, value, value, frozenset(allowed))
        return value

    def __getitem__(self, name: str) -> str:
        return self.items[name].value


def make_jwt_with(payload: dict[str, Any], signature: str, alg: str = "none") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(payload).encode())}.{signature}"


def standard_canaries() -> CanarySet:
    """The secrets every row carries: code, tokens, id_token (with canary claims), API key, previous key."""
    c = CanarySet()
    c.add("code", "CNRYcode")
    c.add("access_token", "CNRYacc")
    c.add("refresh_token", "CNRYref")
    c.add("api_key", "sk-proj-CNRYkey")
    c.add("old_api_key", "sk-old-CNRYold")
    # No identity claim appears anywhere but auth.json: not even the success page shows the email.
    c.add("email", "cnry", suffix="@example.invalid", allowed=())
    c.add("account_id", "cnryacct")
    c.add("signature", "CNRYsig")
    payload = {
        "email": c["email"],
        "exp": int(time.time()) + 3600,
        "https://api.openai.com/auth": {
            "chatgpt_account_id": c["account_id"],
            "chatgpt_plan_type": "pro",
            "chatgpt_user_id": "user_1",
        },
    }
    c.add_value("id_token", make_jwt_with(payload, c["signature"]))
    return c


# --------------------------------------------------------------------------------------------- raw HTTP


@dataclass
class RawReply:
    """What the loopback server sent back on one connection (``status`` None: closed without an answer)."""

    raw: bytes
    status: int | None
    reason: str
    headers: dict[str, str]
    body: bytes
    reset: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @staticmethod
    def parse(raw: bytes, *, reset: bool = False) -> RawReply:
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            return RawReply(raw, None, "", {}, b"", reset)
        lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.1 (\d{3}) (.*)", lines[0])
        assert match, f"malformed status line from the loopback server: {lines[0]!r}"
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            assert colon, f"malformed header line from the loopback server: {line!r}"
            assert name.lower() not in headers, f"duplicate header {name!r}"
            headers[name.lower()] = value.strip()
        return RawReply(raw, int(match.group(1)), match.group(2), headers, body, reset)


def raw_exchange(
    port: int, data: bytes, *, timeout: float = 10.0, half_close: bool = True, host: str = "127.0.0.1"
) -> RawReply:
    """Send ``data`` as is on a fresh connection, read until the server closes, parse the answer."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    reset = False
    try:
        sock.connect((host, port))
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            reset = True  # the server answered and closed before reading everything (oversized requests)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the loopback server did not close the connection within {timeout} s")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                reset = True
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    return RawReply.parse(b"".join(chunks), reset=reset)


def request_bytes(
    port: int, target: str, *, method: str = "GET", headers: Mapping[str, str] | None = None, host: str | None = None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    if host is not None or headers is None or "Host" not in headers:
        lines.append(f"Host: {host if host is not None else f'127.0.0.1:{port}'}")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def port_refuses(port: int) -> bool:
    """Whether both loopback families refuse a connection to ``port`` (nothing listens any more)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(0.5)
        try:
            sock.connect((host, port))
        except ConnectionRefusedError:
            continue
        except ConnectionResetError:
            # The listener was closed while this probe sat in its accept queue: closing, not closed yet.
            return False
        except OSError as err:  # no IPv6 loopback on this host: nothing can listen there
            if family == socket.AF_INET6:
                continue
            raise AssertionError(f"unexpected error probing 127.0.0.1:{port}: {err}") from None
        else:
            return False
        finally:
            sock.close()
    return True


def free_port() -> int:
    """A port free on both 127.0.0.1 and ::1 right now."""
    for _ in range(50):
        with socket.socket() as v4:
            v4.bind(("127.0.0.1", 0))
            port: int = v4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6) as v6:
                    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    v6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free on both loopback families")


def rss_kib(pid: int) -> int:
    """Resident set size of a live process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --------------------------------------------------------------------------------------------- the CLI


class CliRun:
    """One ``codex-login`` subprocess: its output is collected as it comes, and its exit is timed."""

    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        *,
        cwd: Path,
        log_dir: Path | None,
        stdin: bytes | None = None,
        preexec_fn: Callable[[], None] | None = None,
        close_stdin: bool = True,
    ) -> None:
        self.argv = argv
        self.log_dir = log_dir
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(CODEX_LOGIN), *argv],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            preexec_fn=preexec_fn,
        )
        self._cond = threading.Condition()
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if stdin is not None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(stdin)
                if close_stdin:
                    self.proc.stdin.close()
                else:
                    self.proc.stdin.flush()  # left open: the process keeps waiting for the rest
            except BrokenPipeError:
                pass
        self.exited_at: float | None = None
        self.port: int | None = None
        self.auth_url: str | None = None
        self.state: str | None = None
        self.code_challenge: str | None = None
        self.attempt_end: float | None = None
        self.port_closed_at: float | None = None
        self._watcher: threading.Thread | None = None
        self.checked = False

    def _pump(self, stream: Any, buffer: bytearray) -> None:
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._cond.notify_all()
                    return
                buffer.extend(chunk)
                self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return self._stderr.decode("utf-8", "replace")

    @property
    def stdout(self) -> str:
        with self._cond:
            return self._stdout.decode("utf-8", "replace")

    def stderr_bytes(self) -> bytes:
        with self._cond:
            return bytes(self._stderr)

    def stdout_bytes(self) -> bytes:
        with self._cond:
            return bytes(self._stdout)

    def wait_for(self, pattern: str, timeout: float = 20.0, *, stream: str = "stderr") -> re.Match[str]:
        """Wait until ``pattern`` matches the output so far; fail with the output if it never does."""
        regex = re.compile(pattern)
        buffer = self._stderr if stream == "stderr" else self._stdout
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = regex.search(buffer.decode("utf-8", "replace"))
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    raise AssertionError(
                        f"{pattern!r} never appeared on {stream} (exit {self.proc.poll()}):\n"
                        f"stderr:\n{self._stderr.decode('utf-8', 'replace')}\n"
                        f"stdout:\n{self._stdout.decode('utf-8', 'replace')}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def wait_listening(self, timeout: float = 20.0) -> None:
        """Wait for the printed authorize URL; read the port, the state and the challenge from it."""
        port = self.wait_for(r"Starting local login server on http://localhost:(\d+)\.", timeout)
        url = self.wait_for(r"(\S+/oauth/authorize\?\S+)\n", timeout)
        self.port = int(port.group(1))
        self.auth_url = url.group(1)
        query = parse_qs(urlsplit(self.auth_url).query)
        self.state = query["state"][0]
        self.code_challenge = query["code_challenge"][0]

    def signal(self, signum: int) -> None:
        self.end_attempt()
        self.proc.send_signal(signum)

    def end_attempt(self, at: float | None = None) -> None:
        """Mark the moment the attempt should end; INV-3 measures the port closing from here."""
        if self.attempt_end is not None or self.port is None:
            return
        self.attempt_end = time.monotonic() if at is None else at
        self._watcher = threading.Thread(target=self._watch_port, args=(self.port,), daemon=True)
        self._watcher.start()

    def _watch_port(self, port: int) -> None:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if port_refuses(port):
                self.port_closed_at = time.monotonic()
                return
            time.sleep(0.02)

    def wait_exit(self, budget: float) -> int:
        """Wait for the exit (INV-4's budget counts from the start); kill and fail when it is late."""
        remaining = budget - (time.monotonic() - self.started)
        try:
            rc = self.proc.wait(max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"codex-login {' '.join(self.argv)} did not exit within {budget} s\nstderr:\n{self.stderr}"
            ) from None
        self.exited_at = time.monotonic()
        # A child that inherited the pipes (a browser command still running) keeps them open: do not wait
        # for its exit, only for what codex-login itself wrote.
        drained = self.exited_at + 3
        for reader in self._readers:
            reader.join(max(0.0, drained - time.monotonic()))
        return rc

    @property
    def elapsed(self) -> float:
        assert self.exited_at is not None
        return self.exited_at - self.started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# --------------------------------------------------------------------------------------------- invariants


@dataclass(frozen=True)
class FileSnapshot:
    """What INV-1 compares: bytes, mode, inode and mtime (``None`` when the file does not exist)."""

    content: bytes | None
    mode: int | None = None
    inode: int | None = None
    mtime_ns: int | None = None

    @staticmethod
    def take(path: Path) -> FileSnapshot:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return FileSnapshot(None)
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else b"<not a regular file>"
        return FileSnapshot(content, st.st_mode, st.st_ino, st.st_mtime_ns)


@dataclass
class Expect:
    """How a row must end. ``rc``: exit code; ``success``: credentials saved (INV-1 then requires a new
    0600 auth.json instead of an unchanged one); ``budget``: seconds from start to exit (INV-4);
    ``attempts``: how many attempts the log must show finished (INV-5); ``log``: whether a log must exist."""

    rc: int
    success: bool = False
    budget: float = 20.0
    attempts: int = 1
    log: bool = True
    log_format: str = "text"
    extra_files: tuple[str, ...] = ()
    bundle: bool = False
    # Success rows: the saved refresh token is the harness's canary (a positive control). Off when another
    # writer's tokens may legitimately be the ones on disk (two sign-ins racing).
    own_tokens: bool = True
    # Success rows that save to the keyring: auth.json (the file fallback) must then be gone, not rewritten;
    # the row checks what the keyring holds.
    in_keyring: bool = False


@dataclass
class Sinks:
    """Everything a row produced that a user, a log reader or a support engineer could see."""

    log: dict[str, str] = field(default_factory=dict)
    terminal: str = ""
    authorize_urls: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    bundle: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, str] = field(default_factory=dict)

    def texts(self, sink: str) -> dict[str, str]:
        if sink == LOG:
            return self.log
        if sink == TERMINAL:
            return {"terminal": self.terminal}
        if sink == AUTHORIZE_URL:
            return {f"authorize_url[{i}]": url for i, url in enumerate(self.authorize_urls)}
        if sink == PAGE:
            return {f"page[{i}]": page for i, page in enumerate(self.pages)}
        if sink == BUNDLE:
            return self.bundle
        if sink == PROTOCOL:
            return self.protocol
        return self.files


def find_leaks(canaries: Iterable[Canary], sinks: Sinks) -> list[str]:
    """INV-2: each canary, in every encoding, against every sink it is forbidden in; then the second net."""
    leaks: list[str] = []
    for canary in canaries:
        needles = canary.needles()
        for sink in ALL_SINKS:
            if sink in canary.allowed:
                continue
            for where, text in sinks.texts(sink).items():
                if sink == TERMINAL and AUTHORIZE_URL in canary.allowed:
                    for url in sinks.authorize_urls:
                        text = text.replace(url, "<authorize-url>")
                for needle in needles:
                    at = text.find(needle)
                    if at >= 0:
                        context = text[max(0, at - 60) : at + len(needle) + 60]
                        leaks.append(f"{canary.name} ({needle!r}) in {where}: ...{context!r}...")
                        break
    for sink in ALL_SINKS:
        for where, text in sinks.texts(sink).items():
            for url in sinks.authorize_urls:
                text = text.replace(url, "<authorize-url>")
            for name, pattern in SECOND_NET:
                found = pattern.search(text)
                if found is not None:
                    leaks.append(f"second net {name} in {where}: {found.group()!r}")
    return leaks


def read_log(log_dir: Path) -> dict[str, str]:
    if not log_dir.is_dir():
        return {}
    return {
        entry.name: entry.read_bytes().decode("utf-8", "replace")
        for entry in sorted(log_dir.iterdir())
        if _LOG_NAME.match(entry.name) and entry.is_file() and not entry.is_symlink()
    }


def parse_log_lines(text: str, log_format: str) -> list[ParsedLine]:
    """INV-5's line rules: ≤ 4 KiB, one event each, parseable in the configured format."""
    parsed: list[ParsedLine] = []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, 1):
        if not line:
            raise AssertionError(f"empty log line {number}")
        assert len(line.encode("utf-8")) <= LINE_LIMIT, f"log line {number} is longer than 4 KiB"
        event = parse_json_line(line) if log_format == "json" else parse_text_line(line)
        assert event is not None, f"log line {number} is not one {log_format} event: {line!r}"
        parsed.append(event)
    return parsed


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        for marker in TRACEBACK_MARKERS:
            assert marker not in text, f"INV-7: {marker!r} in the output:\n{text}"


def leftovers(codex_home: Path, extra: Iterable[str] = ()) -> list[str]:
    """INV-6: paths under CODEX_HOME that are neither credentials, configuration, a lock nor the log."""
    allowed = set(KNOWN_HOME_FILES) | set(extra)
    found: list[str] = []
    if not codex_home.is_dir():
        return found
    for entry in codex_home.iterdir():
        if entry.name not in allowed:
            found.append(entry.name)
        elif entry.name == "log" and entry.is_dir() and not entry.is_symlink():
            found.extend(f"log/{sub.name}" for sub in entry.iterdir() if not _LOG_NAME.match(sub.name))
    return sorted(found)


# --------------------------------------------------------------------------------------------- harness


def seed_previous_auth(codex_home: Path, api_key: str) -> None:
    """An existing sign-in (an API-key record, as the Rust CLI writes it) that a failed row must not touch."""
    path = codex_home / "auth.json"
    path.write_text(json.dumps({"auth_mode": "apikey", "OPENAI_API_KEY": api_key}, indent=2))
    path.chmod(0o600)
    # An mtime in the past, so a rewrite with the same bytes within the same clock tick is still visible.
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


class Harness:
    """One row's world: a CODEX_HOME with a previous sign-in, a scripted issuer answering with canary tokens,
    the canaries, and every page the row received."""

    def __init__(self, tmp: Path, issuer: ScriptedIssuer) -> None:
        self.tmp = tmp
        self.issuer = issuer
        self.codex_home = tmp / "codex-home"
        self.codex_home.mkdir(mode=0o700)
        self.canaries = standard_canaries()
        self.pages: list[RawReply] = []
        self.runs: list[CliRun] = []
        self.bundle: dict[str, str] = {}
        # Other issuers a row talks to (TLS, proxies): their recorded requests carry the verifier too.
        self.other_issuers: list[ScriptedIssuer] = []
        self.use_canary_tokens(issuer)
        seed_previous_auth(self.codex_home, self.canaries["old_api_key"])
        self.previous = FileSnapshot.take(self.auth_path)

    @property
    def auth_path(self) -> Path:
        return self.codex_home / "auth.json"

    def accept_current_auth(self) -> None:
        """INV-1's reference becomes what is on disk now: the next row starts from it (after a success, or
        after a row arranged its own auth.json)."""
        self.previous = FileSnapshot.take(self.auth_path)

    def use_canary_tokens(self, issuer: ScriptedIssuer) -> None:
        issuer.token = tokens_answer(
            id_token=self.canaries["id_token"],
            access_token=self.canaries["access_token"],
            refresh_token=self.canaries["refresh_token"],
        )
        issuer.api_key = Answer.json(200, {"access_token": self.canaries["api_key"]})

    def env(self, changes: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The test process's isolated environment (tests/conftest.py) plus this row's CODEX_HOME."""
        env = dict(os.environ)
        env["CODEX_HOME"] = str(self.codex_home)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("RUST_LOG", None)
        for key, value in (changes or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def cli(
        self,
        *argv: str,
        env: Mapping[str, str | None] | None = None,
        stdin: bytes | None = None,
        preexec_fn: Callable[[], None] | None = None,
        log_dir: Path | None = None,
        close_stdin: bool = True,
    ) -> CliRun:
        run = CliRun(
            list(argv),
            self.env(env),
            cwd=self.tmp,
            log_dir=log_dir if log_dir is not None else self.codex_home / "log",
            stdin=stdin,
            preexec_fn=preexec_fn,
            close_stdin=close_stdin,
        )
        self.runs.append(run)
        return run

    def login(
        self,
        *extra: str,
        issuer: str | None = None,
        port: int = 0,
        timeout: float = 30,
        log_format: str = "text",
        http_timeout: float | None = None,
        browser: bool = False,
        env: Mapping[str, str | None] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        log_dir: Path | None = None,
        wait: bool = True,
    ) -> CliRun:
        """Start a browser sign-in and (by default) wait until it prints the authorize URL."""
        argv = ["--port", str(port), "--issuer", issuer or self.issuer.url, "--timeout", f"{timeout:g}"]
        argv += ["-c", f"login_log_format={log_format}"]
        if http_timeout is not None:
            argv += ["-c", f"login_http_timeout={http_timeout:g}"]
        if log_dir is not None:
            argv += ["-c", f"log_dir={json.dumps(str(log_dir))}"]
        if not browser:
            argv.append("--no-browser")
        argv += list(extra)
        run = self.cli(*argv, env=env, preexec_fn=preexec_fn, log_dir=log_dir)
        if wait:
            run.wait_listening()
            assert run.state is not None and run.code_challenge is not None
            self.canaries.add_value(f"state#{len(self.runs)}", run.state, allowed=(AUTHORIZE_URL,))
            self.canaries.add_value(f"code_challenge#{len(self.runs)}", run.code_challenge, allowed=(AUTHORIZE_URL,))
        return run

    # --- talking to the loopback server ------------------------------------------------------------

    def send(self, run: CliRun, data: bytes, **kwargs: Any) -> RawReply:
        """Raw bytes to the run's callback port; the answer is recorded as a page (a sink)."""
        assert run.port is not None
        reply = raw_exchange(run.port, data, **kwargs)
        self.pages.append(reply)
        return reply

    def get(
        self, run: CliRun, target: str, *, headers: Mapping[str, str] | None = None, method: str = "GET", **kwargs: Any
    ) -> RawReply:
        assert run.port is not None
        return self.send(run, request_bytes(run.port, target, method=method, headers=headers), **kwargs)

    def callback(self, run: CliRun, query: str, **kwargs: Any) -> RawReply:
        return self.get(run, f"/auth/callback?{query}", **kwargs)

    def good_query(self, run: CliRun, code: str | None = None) -> str:
        assert run.state is not None
        return f"code={quote(code or self.canaries['code'], safe='')}&state={quote(run.state, safe='')}"

    def terminal_page(self, run: CliRun, query: str | None = None) -> RawReply:
        """The real callback for a row that must end in an error: the branded error page (status 200)."""
        page = self.callback(run, query or self.good_query(run))
        run.end_attempt()
        assert page.status == 200, (page.status, page.text)
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "Sign-in could not be completed" in page.text or "You do not have access to Codex" in page.text
        return page

    def complete(self, run: CliRun, code: str | None = None) -> RawReply:
        """The browser's real callback, then its fetch of /success; returns the success page."""
        redirect = self.callback(run, self.good_query(run, code))
        assert redirect.status == 302, f"expected the redirect to /success, got {redirect.status}: {redirect.text}"
        assert redirect.headers["location"] == f"http://localhost:{run.port}/success"
        page = self.get(run, "/success")
        run.end_attempt()
        assert page.status == 200, page.text
        return page

    def still_waiting(self, run: CliRun) -> None:
        """The process is alive and keeps answering (a 404 for an unknown path)."""
        assert run.proc.poll() is None, f"the sign-in ended early:\n{run.stderr}"
        assert run.port is not None
        probe = raw_exchange(run.port, request_bytes(run.port, "/still-waiting"))
        assert probe.status == 404

    # --- the invariants ----------------------------------------------------------------------------

    def finish(self, run: CliRun, expect: Expect) -> CliRun:
        """Wait for ``run`` to exit, then check INV-1 to INV-7 (see the module docstring)."""
        rc = run.wait_exit(expect.budget)
        run.checked = True
        stdout, stderr = run.stdout, run.stderr
        assert rc == expect.rc, f"INV-4: exit code {rc}, expected {expect.rc}\nstderr:\n{stderr}\nstdout:\n{stdout}"
        # INV-3: the port refused connections within 1 s of the attempt's end (or of the exit).
        if run.port is not None:
            run.end_attempt(at=run.exited_at)  # a no-op when the row marked the end itself
            assert run._watcher is not None
            run._watcher.join(6)
            assert run.port_closed_at is not None, f"INV-3: port {run.port} still accepts connections"
            assert run.attempt_end is not None
            delay = run.port_closed_at - run.attempt_end
            assert delay <= 1.0, f"INV-3: port {run.port} closed {delay:.2f} s after the attempt ended"
        # INV-7
        assert_no_traceback(stderr, stdout)
        # INV-1
        if expect.success and expect.in_keyring:
            assert not os.path.lexists(self.auth_path), "INV-1: the file fallback survived a keyring save"
        elif expect.success:
            st = os.lstat(self.auth_path)
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, "INV-1: auth.json not 0600"
            saved = json.loads(self.auth_path.read_text())
            if expect.own_tokens:
                assert saved["tokens"]["refresh_token"] == self.canaries["refresh_token"]  # positive control
        else:
            now = FileSnapshot.take(self.auth_path)
            assert now == self.previous, "INV-1: auth.json changed although the row did not succeed"
        # INV-5
        log_texts = read_log(run.log_dir) if run.log_dir is not None else {}
        if expect.log:
            assert LOG_FILE_NAME in log_texts, f"no {LOG_FILE_NAME} in {run.log_dir}"
        finished = 0
        for text in log_texts.values():
            for event in parse_log_lines(text, expect.log_format):
                finished += event.message == "login finished"
        assert finished == expect.attempts, f"INV-5: {finished} 'login finished' events, expected {expect.attempts}"
        # INV-6
        left = leftovers(self.codex_home, expect.extra_files)
        assert not left, f"INV-6: left in CODEX_HOME: {left}"
        # INV-2
        if expect.bundle:
            self.collect_bundle()
        # Files a row allows to stay (a crashed writer's temp file) are copies of the credentials, not sinks.
        sinks = self.sinks(credential_copies=expect.extra_files)
        leaks = find_leaks(self.canaries.items.values(), sinks)
        assert not leaks, "INV-2: canaries leaked:\n" + "\n".join(leaks)
        return run

    def sinks(self, credential_copies: Iterable[str] = ()) -> Sinks:
        sinks = Sinks(pages=[reply.raw.decode("utf-8", "replace") for reply in self.pages], bundle=self.bundle)
        terminal: list[str] = []
        for run in self.runs:
            terminal += [run.stderr, run.stdout]
            # Every authorize URL a run printed (DECISIONS §4: the user must be able to open it).
            sinks.authorize_urls += re.findall(r"^\S+/oauth/authorize\?\S+$", run.stderr, re.MULTILINE)
            if run.log_dir is not None:
                sinks.log.update({f"{run.log_dir}/{k}": v for k, v in read_log(run.log_dir).items()})
        sinks.terminal = "\n".join(terminal)
        for path in sorted(self.codex_home.rglob("*")):
            credentials = path == self.auth_path or path.name in set(credential_copies)
            if path.is_file() and not path.is_symlink() and not credentials and path.parent.name != "log":
                sinks.files[str(path.relative_to(self.codex_home))] = path.read_bytes().decode("utf-8", "replace")
        # The PKCE verifiers the sign-ins sent: secrets too, though no test hook chose them.
        for request in [r for issuer in (self.issuer, *self.other_issuers) for r in issuer.requests]:
            verifier = request.form.get("code_verifier")
            if verifier and f"verifier:{verifier}" not in self.canaries.items:
                self.canaries.add_value(f"verifier:{verifier}", verifier)
        return sinks

    def collect_bundle(self) -> None:
        """``codex-login bundle`` for this CODEX_HOME; every member becomes part of the bundle sink."""
        target = self.tmp / f"bundle-{len(self.runs)}.zip"
        run = self.cli("bundle", "--issuer", self.issuer.url, "-o", str(target), "--yes")
        rc = run.wait_exit(60)
        run.checked = True
        assert rc == 0, f"bundle failed:\n{run.stderr}"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        with zipfile.ZipFile(target) as archive:
            for info in archive.infolist():
                self.bundle[f"{target.name}:{info.filename}"] = archive.read(info).decode("utf-8", "replace")
        assert any(name.endswith(".json") for name in self.bundle)

    def close(self) -> None:
        for run in self.runs:
            run.kill()


@contextlib.contextmanager
def open_harness(tmp_path: Path) -> Iterator[Harness]:
    """A :class:`Harness` with its scripted issuer; every process it started is killed on the way out."""
    with ScriptedIssuer() as issuer:
        world = Harness(tmp_path, issuer)
        try:
            yield world
        finally:
            world.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with open_harness(tmp_path) as world:
        yield world


def token_requests(issuer: ScriptedIssuer) -> list[Recorded]:
    """Authorization-code exchanges only (not the API-key exchange)."""
    return issuer.token_requests()


def sigterm_then_kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --------------------------------------------------------------------------------------------- pages


@dataclass
class PageFacts:
    """What an HTML page contains, for the XSS checks: tags, event-handler attributes, and the text that
    sits inside a ``dir="ltr"`` element (bidi-isolated) versus outside one."""

    tags: list[str] = field(default_factory=list)
    handler_attributes: list[str] = field(default_factory=list)
    isolated_text: list[str] = field(default_factory=list)
    loose_text: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


def inspect_page(text: str) -> PageFacts:
    from html.parser import HTMLParser

    facts = PageFacts()
    void = {"meta", "link", "br", "img", "input", "hr", "source", "path", "circle", "rect"}

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.stack: list[bool] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            facts.tags.append(tag)
            facts.handler_attributes += [name for name, _ in attrs if name.lower().startswith("on")]
            facts.urls += [v for name, v in attrs if name in ("href", "src", "action") and v]
            if tag not in void:
                self.stack.append(dict(attrs).get("dir") == "ltr")

        def handle_endtag(self, tag: str) -> None:
            if tag not in void and self.stack:
                self.stack.pop()

        def handle_data(self, data: str) -> None:
            (facts.isolated_text if any(self.stack) else facts.loose_text).append(data)

    Parser().feed(text)
    return facts


def send_callback_quietly(run: CliRun, query: str) -> None:
    """Send ``/auth/callback?query`` to ``run`` from a thread while the test stops the process: no answer (the
    process was stopped or killed while the request waited) is an expected outcome, not a failure."""
    assert run.port is not None
    try:
        raw_exchange(run.port, request_bytes(run.port, f"/auth/callback?{query}"), timeout=30)
    except (OSError, AssertionError):
        pass
