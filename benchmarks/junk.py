"""The load generator of the load benchmark, run as its own process (``python -m benchmarks.junk PORT IDLE JUNK``)
so that its work never competes with the benchmark's timing of the real callback for the same interpreter.

Protocol on stdin/stdout, one line each:

1. it opens IDLE connections to ``127.0.0.1:PORT`` that never send a byte, then prints ``idle N``;
2. on ``go`` it sends JUNK junk requests, at most ``WINDOW`` in flight, and prints ``half`` once half of
   them have been sent (the benchmark then sends the real callback), then ``junk-done``;
3. it waits (bounded) for the server to close every idle connection, and prints a JSON summary.

Junk, in rotation: wrong paths, a wrong ``state``, an oversized header, garbage bytes, a bad method, a foreign
``Host``, an over-long request line. A junk connection counts as *closed* when the server ends it (EOF or a
reset); *answered* when an HTTP status line came back first.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field

WINDOW = 200
JUNK_DEADLINE_SECONDS = 60.0
IDLE_CLOSE_DEADLINE_SECONDS = 20.0
CONNECT_DEADLINE_SECONDS = 20.0


def junk_payloads(port: int) -> list[tuple[str, bytes]]:
    host = f"Host: localhost:{port}\r\n"
    garbage = bytes(b if b not in (10, 13) else 0 for b in os.urandom(256)) + b"\r\n\r\n"
    return [
        ("wrong path", f"GET /favicon.ico HTTP/1.1\r\n{host}\r\n".encode()),
        ("bad state", f"GET /auth/callback?code=junk&state=not-the-state HTTP/1.1\r\n{host}\r\n".encode()),
        ("oversized header", f"GET / HTTP/1.1\r\n{host}X-Junk: {'a' * 20000}\r\n\r\n".encode()),
        ("garbage", garbage),
        ("bad method", f"POST /auth/callback HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nhello".encode()),
        ("foreign host", b"GET /auth/callback?code=x&state=y HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
        ("long request line", f"GET /{'a' * 9000} HTTP/1.1\r\n{host}\r\n".encode()),
    ]


@dataclass
class JunkConnection:
    kind: str
    payload: bytes
    sock: socket.socket
    started: float
    sent: int = 0
    received: bytes = b""
    closed: bool = False
    status: int | None = None
    finished: float = 0.0


@dataclass
class Summary:
    idle: int = 0
    idle_closed: int = 0
    idle_closed_after_max: float = 0.0
    junk: int = 0
    junk_answered: int = 0
    junk_closed: int = 0
    junk_seconds_max: float = 0.0
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)


def open_idle(port: int, count: int) -> list[socket.socket]:
    sel = selectors.DefaultSelector()
    pending: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            continue
        pending.append(sock)
        sel.register(sock, selectors.EVENT_WRITE)
    connected: list[socket.socket] = []
    deadline = time.monotonic() + CONNECT_DEADLINE_SECONDS
    waiting = len(pending)
    while waiting and time.monotonic() < deadline:
        for ready, _ in sel.select(timeout=0.5):
            conn = ready.fileobj
            assert isinstance(conn, socket.socket)
            sel.unregister(conn)
            waiting -= 1
            if conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected.append(conn)
            else:
                conn.close()
    sel.close()
    return connected


def flood(port: int, count: int, summary: Summary) -> None:
    payloads = junk_payloads(port)
    sel = selectors.DefaultSelector()
    live: dict[int, JunkConnection] = {}
    started_count = 0
    done: list[JunkConnection] = []
    announced_half = False
    deadline = time.monotonic() + JUNK_DEADLINE_SECONDS

    def start_one(index: int) -> None:
        kind, payload = payloads[index % len(payloads)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        conn = JunkConnection(kind, payload, sock, time.monotonic())
        live[sock.fileno()] = conn
        sel.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ, conn)

    def finish(conn: JunkConnection, closed: bool) -> None:
        conn.closed = closed
        conn.finished = time.monotonic()
        head = conn.received.split(b"\r\n", 1)[0].split(b" ")
        if len(head) >= 2 and head[0].startswith(b"HTTP/1.") and head[1].isdigit():
            conn.status = int(head[1])
        sel.unregister(conn.sock)
        del live[conn.sock.fileno()]
        conn.sock.close()
        done.append(conn)

    while (started_count < count or live) and time.monotonic() < deadline:
        while started_count < count and len(live) < WINDOW:
            start_one(started_count)
            started_count += 1
            if not announced_half and started_count >= count // 2:
                announced_half = True
                print("half", flush=True)
        for key, events in sel.select(timeout=0.5):
            conn = key.data
            assert isinstance(conn, JunkConnection)
            if events & selectors.EVENT_WRITE and conn.sent < len(conn.payload):
                try:
                    conn.sent += conn.sock.send(conn.payload[conn.sent :])
                except BlockingIOError:
                    pass
                except OSError:  # the server answered early (431...) and closed: keep what it sent
                    conn.sent = len(conn.payload)
                if conn.sent >= len(conn.payload):
                    sel.modify(conn.sock, selectors.EVENT_READ, conn)
            if events & selectors.EVENT_READ:
                try:
                    chunk = conn.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:  # reset by the server: closed
                    finish(conn, True)
                    continue
                if not chunk:
                    finish(conn, True)
                else:
                    conn.received += chunk
    for conn in list(live.values()):
        finish(conn, False)
    sel.close()
    summary.junk = len(done)
    summary.junk_closed = sum(1 for c in done if c.closed)
    summary.junk_answered = sum(1 for c in done if c.status is not None)
    summary.junk_seconds_max = max((c.finished - c.started for c in done), default=0.0)
    for conn in done:
        per_kind = summary.statuses.setdefault(conn.kind, {})
        outcome = str(conn.status) if conn.status is not None else ("closed" if conn.closed else "open")
        per_kind[outcome] = per_kind.get(outcome, 0) + 1


def wait_idle_closed(idle: list[socket.socket], opened: float, summary: Summary) -> None:
    sel = selectors.DefaultSelector()
    for sock in idle:
        sel.register(sock, selectors.EVENT_READ)
    remaining = len(idle)
    deadline = time.monotonic() + IDLE_CLOSE_DEADLINE_SECONDS
    while remaining and time.monotonic() < deadline:
        for ready, _ in sel.select(timeout=0.5):
            conn = ready.fileobj
            assert isinstance(conn, socket.socket)
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                remaining -= 1
                summary.idle_closed += 1
                summary.idle_closed_after_max = max(summary.idle_closed_after_max, time.monotonic() - opened)
    sel.close()
    for sock in idle:
        sock.close()


def main(argv: list[str]) -> int:
    port, idle_count, junk_count = (int(a) for a in argv[1:4])
    summary = Summary()
    opened = time.monotonic()
    idle = open_idle(port, idle_count)
    summary.idle = len(idle)
    print(f"idle {len(idle)}", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    flood(port, junk_count, summary)
    print("junk-done", flush=True)
    wait_idle_closed(idle, opened, summary)
    print(json.dumps(summary.__dict__), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
