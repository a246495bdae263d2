"""TLS servers for tests on loopback: an HTTPS issuer with a trustme certificate and a CONNECT proxy (plain or
https) that really tunnels."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from tests.support.loopback import LoopbackServer


class TlsIssuer:
    """An HTTPS issuer on 127.0.0.1 with a trustme certificate: authorize answers 400, token 405."""

    def __init__(self, tmp_path: Path) -> None:
        self.ca = ca = trustme.CA()
        self.ca_pem = tmp_path / "issuer-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                status = 400 if self.path.startswith("/oauth/authorize") else 405
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                sock, address = self.socket.accept()
                # The handshake runs in the handler thread: a client that rejects us cannot stall accept().
                return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client refusing our certificate is the point of some tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TunnelProxy(LoopbackServer):
    """An HTTP proxy that answers CONNECT with ``status``; with 200 it really tunnels to the target. With
    ``tls`` (a server context) it is an https:// proxy: the client's connection to it is TLS."""

    def __init__(self, status: str = "200 Connection established", tls: ssl.SSLContext | None = None) -> None:
        self.status = status
        self.tls = tls
        self.requests: list[bytes] = []
        self.garbled = 0  # connections that did not open with an HTTP request
        super().__init__(backlog=16)

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        head = b""
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
                if not head[:1].isalpha():
                    # Not HTTP (a TLS ClientHello: the client took this plain proxy for an https:// one). A plain
                    # proxy answers such bytes with an error as an HTTP server does (Squid: 400), and closes.
                    self.garbled += 1
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    conn.close()
                    return
            self.requests.append(head)
            target = head.split(b" ")[1].decode()
            host, _, port = target.rpartition(":")
            conn.sendall(f"HTTP/1.1 {self.status}\r\n\r\n".encode())
            if not self.status.startswith("200"):
                return
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            conn.close()
            return

        _relay(conn, upstream)


def _relay(conn: socket.socket, upstream: socket.socket) -> None:
    """Copies bytes both ways on one thread until either side ends. One thread, not a thread per direction: an
    ``SSLSocket`` read on one thread while another writes to it corrupts the TLS stream now and then (the
    tunnelled handshake then fails, ~4% of runs)."""
    peers = {conn: upstream, upstream: conn}
    try:
        while True:
            # Bytes OpenSSL already decrypted are invisible to select(): read them first.
            pending = isinstance(conn, ssl.SSLSocket) and conn.pending() > 0
            ready = [conn] if pending else select.select(list(peers), [], [], 5)[0]
            if not ready:
                return
            for src in ready:
                data = src.recv(65536)
                if not data:
                    return
                peers[src].sendall(data)
    except OSError:
        pass
    finally:
        for s in peers:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
