"""A raw loopback listener with its accept loop on a daemon thread, for test servers that answer by hand."""

from __future__ import annotations

import socket
import threading


class LoopbackServer:
    """Accepts on ``host:port`` (``url``; ``port`` 0: any free one; ``host`` ``127.0.0.1`` or ``::1``, the
    latter IPv6 only) until :meth:`close`; a subclass answers each connection in :meth:`handle`, which runs on
    the accept thread. Set what ``handle`` reads before calling ``__init__``: the thread starts there."""

    def __init__(self, backlog: int, port: int = 0, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a fixed port a test left in TIME_WAIT
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)
