"""The total deadline of an outbound request (DECISIONS D-8: connect 10 s, total 60 s), enforced from outside.

httpx's timeouts apply to each read and write, not to the exchange: a server that sends its answer a byte at a
time restarts the read timeout with every byte and can hold a request open without limit. So each request is
registered here with its deadline and, once known, the socket of its connection; a watchdog thread shuts that
socket down when the deadline passes, which ends the blocked read at once, and the client reports a timeout.

One watchdog per :class:`~codex_login.http.HttpClient`, started with it or with its first request. It waits
without waking while no request is in flight, and checks four times a second while one is: registering a
request wakes it only when it was idle, and neither registering nor finishing a request waits for it.
"""

from __future__ import annotations

import socket
import threading
import time

from ._threads import start_thread

POLL_SECONDS = 0.25


class InFlight:
    """One request: its deadline (``time.monotonic``), its connection's socket once known, whether it expired."""

    __slots__ = ("deadline", "expired", "sock")

    def __init__(self, deadline: float, sock: socket.socket | None) -> None:
        self.deadline = deadline
        self.sock = sock
        self.expired = False

    def attach(self, sock: socket.socket) -> None:
        """The request's connection is up: if the deadline passed while it was being made (a slow DNS lookup,
        several addresses tried in turn), shut it down now, as no watchdog round will come back for it."""
        self.sock = sock
        if self.expired:
            self._shut_down(sock)

    def expire(self) -> None:
        self.expired = True
        sock = self.sock
        if sock is None:
            return  # not connected yet: attach() shuts the connection down once it exists
        self._shut_down(sock)

    @staticmethod
    def _shut_down(sock: socket.socket) -> None:
        try:
            # socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown would drop the TLS state
            # under the thread still reading through it. Shutting down wakes that read; closing would not.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: the request is ending anyway


class Watchdog:
    """Expires the requests past their deadline (see the module's docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._flights: set[InFlight] = set()
        self._idle = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="codex-login-http-deadline", daemon=True)
        start_thread(self._thread)

    def add(self, flight: InFlight) -> None:
        with self._cond:
            self._flights.add(flight)
            if self._idle:
                self._cond.notify()

    def remove(self, flight: InFlight) -> None:
        with self._cond:
            self._flights.discard(flight)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._flights:
                    self._idle = True
                    self._cond.wait()
                    self._idle = False
                    continue
                self._cond.wait(POLL_SECONDS)
                now = time.monotonic()
                for flight in [f for f in self._flights if f.deadline <= now]:
                    self._flights.discard(flight)
                    flight.expire()
