"""A raw listener on 127.0.0.1 with its accept loop on a daemon thread, for test servers that answer by hand."""

from __future__ import annotations

import socket
import threading


class LoopbackServer:
    """Accepts on ``127.0.0.1:port`` (``url``; ``port`` 0: any free one) until :meth:`close`; a subclass answers
    each connection in :meth:`handle`, which runs on the accept thread. Set what ``handle`` reads before
    calling ``__init__``: the thread starts there."""

    def __init__(self, backlog: int, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
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
