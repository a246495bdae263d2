"""A small scriptable issuer for shapes no real provider produces.

The real OpenID provider (tests/issuer, oidc-provider) covers real flows; this one answers the token
endpoint however a test asks: JSON tokens, any status with any body, a closed connection, a hang, a
redirect. It records every request so tests can count token requests and see what was sent.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(payload: dict[str, Any], signature: str = "sig") -> str:
    """An unsigned JWT (``alg: none``), as the reference's own e2e test issues."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{header}.{body}.{b64url(signature.encode())}"


def id_token_for(
    *,
    email: str = "user@example.com",
    account_id: str | None = "acct_123",
    plan: str = "pro",
    exp: int | None = None,
) -> str:
    auth: dict[str, Any] = {"chatgpt_plan_type": plan, "chatgpt_user_id": "user_1"}
    if account_id is not None:
        auth["chatgpt_account_id"] = account_id
    payload: dict[str, Any] = {"email": email, "https://api.openai.com/auth": auth}
    payload["exp"] = exp if exp is not None else int(time.time()) + 3600
    return make_jwt(payload)


@dataclass
class Answer:
    """One scripted answer: status, headers, body; or ``close`` (no answer) or ``hang`` seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False
    hang: float = 0.0

    @staticmethod
    def json(status: int, payload: object, headers: dict[str, str] | None = None) -> Answer:
        return Answer(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    @staticmethod
    def text(status: int, body: str, content_type: str = "text/plain") -> Answer:
        return Answer(status, body.encode(), {"Content-Type": content_type})


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]


def tokens_answer(
    *, id_token: str | None = None, access_token: str = "access-123", refresh_token: str = "refresh-123"
) -> Answer:
    return Answer.json(
        200,
        {
            "id_token": id_token or id_token_for(),
            "access_token": access_token,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": 3600,
        },
    )


class ScriptedIssuer:
    """``with ScriptedIssuer() as issuer: issuer.token = tokens_answer()``; ``issuer.url`` is the issuer."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.token: Answer | Callable[[Recorded], Answer] = tokens_answer()
        self.api_key: Answer | None = Answer.json(200, {"access_token": "sk-exchanged-api-key"})
        self.routes: dict[str, Answer | Callable[[Recorded], Answer]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                form: dict[str, str] = {}
                if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                    form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                elif self.headers.get("Content-Type", "").startswith("application/json") and body:
                    try:
                        loaded = json.loads(body)
                        form = {k: str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
                    except ValueError:
                        form = {}
                rec = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, form
                )
                with issuer._lock:
                    issuer.requests.append(rec)
                answer = issuer._answer_for(rec)
                if answer is None:
                    answer = Answer.text(404, "not found")
                if answer.hang:
                    time.sleep(answer.hang)
                if answer.close:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.body)
                self.close_connection = True

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls is not None else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer_for(self, rec: Recorded) -> Answer | None:
        path = rec.path.split("?")[0]
        if path == "/oauth/token":
            if rec.form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange":
                return self.api_key or Answer.json(400, {"error": "unsupported_grant_type"})
            chosen = self.token
        else:
            found = self.routes.get(path)
            if found is None:
                return None
            chosen = found
        return chosen(rec) if callable(chosen) else chosen

    def token_requests(self) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.path.startswith("/oauth/token")
            and r.form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
        ]

    def __enter__(self) -> ScriptedIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
