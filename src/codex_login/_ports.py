"""Binding the login server's loopback port (reference-spec §4.3, DECISIONS D-1): both loopback families on one
port, a previous login server on it asked to cancel and the bind retried, then the 1457 fallback (§20).

The reference's server.rs binds with its takeover too; here it is a module of its own, since it is a concern of
its own: :func:`bind_with_takeover` returns the listening sockets before any HTTP is served on them, and
``doctor`` probes the ports with the same :func:`listen` and :func:`bind_loopback` the login server uses.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import DEFAULT_PORT, FALLBACK_PORT
from .diagnostics import events
from .errors import ErrorKind, PortInUseError

if TYPE_CHECKING:
    from .server import ServerOptions

#: Binds tried per port, BIND_RETRY_DELAY apart; a previous server is asked to cancel once the first fails.
BIND_ATTEMPTS = 10
#: The listeners' backlog; the login server's accept loop also takes at most this many connections per wakeup.
LISTEN_BACKLOG = 1024
BIND_RETRY_DELAY = 0.2
CANCEL_TIMEOUT = 2.0


def _ipv6_available() -> bool:
    return socket.has_ipv6


def listen(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_loopback(port: int) -> list[socket.socket]:
    """Bind 127.0.0.1 and, where the host has IPv6, ::1 on the same port (D-1).

    A foreign listener on ``[::1]:port`` counts as the port being in use: otherwise a browser that resolves
    ``localhost`` to ::1 first would hand our code to it (security W1).
    """
    for _ in range(8):
        v4 = listen(socket.AF_INET, "127.0.0.1", port)
        actual = v4.getsockname()[1]
        if not _ipv6_available():
            return [v4]
        try:
            v6 = listen(socket.AF_INET6, "::1", actual)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                v4.close()
                if port == 0:
                    continue  # an ephemeral port that happens to be taken on ::1: pick another
                raise
            return [v4]  # no IPv6 loopback here (EADDRNOTAVAIL, EAFNOSUPPORT): IPv4 only
        return [v4, v6]
    raise OSError(errno.EADDRINUSE, "could not find a port free on both 127.0.0.1 and ::1")


def send_cancel_request(port: int) -> bool:
    """Ask whatever holds ``127.0.0.1:port`` to cancel (a previous login server, ours or Codex's).

    Returns whether anything answered. Raises OSError when the request could not be sent.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=CANCEL_TIMEOUT) as sock:
        sock.settimeout(CANCEL_TIMEOUT)
        sock.sendall(f"GET /cancel HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        try:
            return bool(sock.recv(64))
        except TimeoutError:
            return False


def bind_with_takeover(options: ServerOptions, notice: Callable[[str], None]) -> tuple[list[socket.socket], bool, int]:
    """reference-spec §4.3 plus the 1457 fallback (§20): cancel a previous server, retry, fall back."""
    ports = [options.port]
    if options.port == DEFAULT_PORT:
        ports.append(FALLBACK_PORT)
    attempts = 0
    last_err: OSError | None = None
    for index, port in enumerate(ports):
        cancel_sent = False
        for _ in range(BIND_ATTEMPTS):
            attempts += 1
            try:
                return bind_loopback(port), index > 0, attempts
            except OSError as err:
                last_err = err
                if err.errno != errno.EADDRINUSE:
                    events.bind_failed(port=port, error_class=type(err).__name__, errno=err.errno)
                    hint = ""
                    if err.errno == errno.EACCES:
                        hint = " (the OS refused the port; on Windows it may be in an excluded port range"
                        hint += ": try `codex-login --device-auth`)" if options.device_auth else ")"
                    raise PortInUseError(
                        f"Failed to bind 127.0.0.1:{port}: {err.strerror}{hint}",
                        kind=ErrorKind.OTHER,
                        failure_class="bind_failed",
                    ) from None
            if not cancel_sent:
                cancel_sent = True
                try:
                    answered = send_cancel_request(port)
                    events.cancel_sent(port=port, answered=answered)
                except OSError as err:
                    notice(f"Failed to cancel previous login server: {err.strerror or err}")
            time.sleep(BIND_RETRY_DELAY)
        if index + 1 < len(ports):
            events.fallback_port(
                preferred_bind_address=f"127.0.0.1:{port}",
                fallback_bind_address=f"127.0.0.1:{ports[index + 1]}",
            )
    events.bind_failed(port=ports[-1], error_class="AddrInUse", errno=last_err.errno if last_err else None)
    tried = " and ".join(f"127.0.0.1:{p}" for p in ports)
    instead = ", or sign in with `codex-login --device-auth`" if options.device_auth else ""
    raise PortInUseError(f"Port {tried} is already in use. Close the other program using it{instead}.")
