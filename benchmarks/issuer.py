"""A minimal raw-socket issuer that answers the token endpoint at once and timestamps every request.

The callback benchmarks subtract the token endpoint's own time (request fully read -> answer fully
written) from the callback latency, so this issuer records exactly those two instants for each request
(``time.perf_counter``, the same clock the benchmark's client uses). It serves:

* ``POST /oauth/token`` with ``grant_type=authorization_code``: ID, access and refresh tokens (JSON);
* ``POST /oauth/token`` with the token-exchange grant: an API key (JSON);
* anything else: 404.

Connections are kept alive like a real issuer's (HTTP/1.1), so the sign-in's second token request reuses the
first one's connection as it would in production. One thread serves them all with a selector: a thread
started per connection would make the client wait for it (about half a millisecond on an idle machine)
before its request is even read, time the issuer does not record and that would be charged to the client.
"""

from __future__ import annotations

import base64
import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
AUTH_CLAIM = "https://api.openai.com/auth"
MAX_REQUEST_BYTES = 1 << 20


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(payload: dict[str, object]) -> str:
    """An unsigned JWT shaped like the ones the issuer sends (codex-login does not check signatures)."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(payload).encode())}.{b64url(b'sig')}"


def chatgpt_tokens(*, email: str = "bench@example.com", plan: str = "pro") -> dict[str, str]:
    """ID, access and refresh tokens with the claims a ChatGPT sign-in carries."""
    exp = int(time.time()) + 3600
    auth = {"chatgpt_plan_type": plan, "chatgpt_user_id": "user_bench", "chatgpt_account_id": "acct_bench"}
    id_token = make_jwt({"email": email, AUTH_CLAIM: auth, "exp": exp, "iss": "https://auth.openai.com"})
    access = make_jwt({AUTH_CLAIM: auth, "exp": exp, "scp": ["openid", "profile", "email", "offline_access"]})
    return {"id_token": id_token, "access_token": access, "refresh_token": "rt_" + "r" * 40}


@dataclass(frozen=True)
class Served:
    """One request: its path, grant type, and when it was fully read and fully answered."""

    path: str
    grant_type: str
    read_done: float
    answered: float

    @property
    def seconds(self) -> float:
        return self.answered - self.read_done


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


class RawIssuer:
    """``with RawIssuer() as issuer:`` ... ``issuer.url``; :meth:`served_between` gives the requests."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        tokens = json.dumps({**chatgpt_tokens(), "token_type": "Bearer", "expires_in": 3600}).encode()
        self._tokens_answer = _response("200 OK", tokens)
        self._api_key_answer = _response("200 OK", json.dumps({"access_token": "sk-bench-" + "k" * 40}).encode())
        self._not_found = _response("404 Not Found", b"not found", "text/plain")
        self._served: list[Served] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="bench-issuer", daemon=True)

    def __enter__(self) -> RawIssuer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        # Wake the selector up with a connection of our own, then close the listener.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(5)
        self._listener.close()

    def served_between(self, start: float, end: float) -> list[Served]:
        with self._lock:
            return [s for s in self._served if start <= s.read_done <= end]

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            pending: dict[socket.socket, bytes] = {}  # bytes read from a connection but not yet answered
            try:
                while not self._stop.is_set():
                    for key, _ in sel.select():
                        ready = key.fileobj
                        assert isinstance(ready, socket.socket)
                        if ready is self._listener:
                            try:
                                conn, _ = self._listener.accept()
                            except OSError:
                                return
                            conn.settimeout(30)  # for sendall; reads only happen once the selector says so
                            sel.register(conn, selectors.EVENT_READ)
                            pending[conn] = b""
                            continue
                        rest = self._serve_ready(ready, pending[ready])
                        if rest is None:
                            sel.unregister(ready)
                            del pending[ready]
                            ready.close()
                        else:
                            pending[ready] = rest
            finally:
                for conn in pending:
                    conn.close()

    def _serve_ready(self, conn: socket.socket, data: bytes) -> bytes | None:
        """Read what ``conn`` has and answer every complete request; the bytes left over, or None to close."""
        try:
            chunk = conn.recv(65536)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
        try:
            while (rest := self._serve_one(conn, data)) is not None:
                data = rest
        except OSError:
            return None
        return None if len(data) > MAX_REQUEST_BYTES else data

    def _serve_one(self, conn: socket.socket, data: bytes) -> bytes | None:
        """Answer the first request in ``data`` if it is complete: the bytes after it, else None."""
        head, found, rest = data.partition(b"\r\n\r\n")
        if not found:
            return None
        lines = head.decode("latin-1").split("\r\n")
        request_line = lines[0].split(" ")
        path = request_line[1] if len(request_line) > 1 else ""
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = min(int(value.strip()), MAX_REQUEST_BYTES)
        if len(rest) < length:
            return None
        body, rest = rest[:length], rest[length:]
        read_done = time.perf_counter()
        grant = ""
        for pair in body.decode("latin-1").split("&"):
            key, _, value = pair.partition("=")
            if key == "grant_type":
                grant = value.replace("%3A", ":").replace("%3a", ":")
        if path.split("?")[0] != "/oauth/token":
            answer = self._not_found
        elif grant == TOKEN_EXCHANGE_GRANT:
            answer = self._api_key_answer
        else:
            answer = self._tokens_answer
        conn.sendall(answer)
        answered = time.perf_counter()
        with self._lock:
            self._served.append(Served(path, grant, read_done, answered))
        return rest
