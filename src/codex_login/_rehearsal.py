"""A rehearsal of the browser sign-in's exchanges, run by the login server's worker while the browser is away.

Why: the callback's answer waits on two token requests, a JWT parse and a save, and a process runs that code
for the first time exactly then. First runs are slow: CPython 3.11 specialises a function's bytecode only
after it has run a few times, and httpx, httpcore and h11 set things up on first use. Running the same
functions a dozen times beforehand took 0.5 to 1.6 ms off the success callback's median in ``benchmarks.compare``
runs (issue 9; ~7-8 ms before), 0.7 to 0.9 ms of it in the token request; two runs instead of twelve took much
less (see benchmarks/README.md, "The rehearsal").

What: :func:`rehearse` runs :func:`~codex_login.oauth.exchange_code_for_tokens`,
:func:`~codex_login.token_data.parse_id_token`, :func:`~codex_login.oauth.obtain_api_key` and
:meth:`~codex_login.storage.AuthDotJson.to_pretty_json` against an issuer of its own: a thread answering
made-up tokens on a loopback port opened for this and closed after it. Nothing is sent anywhere else (its
client has no proxy and talks plain HTTP to 127.0.0.1 only), nothing is logged (a disabled logger), nothing
is stored, and the sign-in's own client and connections are not touched. The port serves only requests whose
path carries a random prefix, so another local process connecting to it is shut out, not answered. Best
effort: any failure ends the rehearsal silently, and timeouts of a second bound how long it can take.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
from datetime import UTC, datetime

from ._threads import start_thread
from .http import HttpClient, HttpSettings
from .pkce import b64url_nopad

#: How many sign-ins are rehearsed: enough for CPython to specialise what they run (measured: 2 took
#: 0.5 ms off the token request, 12 took 0.9 ms).
ROUNDS = 12
#: Seconds for the whole rehearsal's requests, and for each read of the issuer's thread.
TIMEOUT_SECONDS = 1.0
MAX_REQUEST_BYTES = 64 * 1024

#: Where the rehearsal's events would go: a logger no handler sees, disabled, so no event is even built.
SILENT = logging.Logger("codex_login.rehearsal")
SILENT.disabled = True


def _token_answer() -> bytes:
    """The issuer's answer to both token requests: made-up tokens shaped like a ChatGPT sign-in's."""
    auth = {"chatgpt_plan_type": "pro", "chatgpt_user_id": "user-rehearsal", "chatgpt_account_id": "rehearsal"}
    claims = {"email": "rehearsal@example.invalid", "https://api.openai.com/auth": auth, "exp": 4102444800}
    jwt = f"{b64url_nopad(b'{}')}.{b64url_nopad(json.dumps(claims).encode())}.{b64url_nopad(b'rehearsal')}"
    body = json.dumps({"id_token": jwt, "access_token": jwt, "refresh_token": "rehearsal"}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


class RehearsalIssuer:
    """The loopback issuer: ``with RehearsalIssuer(answers) as issuer:`` ... ``issuer.url``.

    One thread accepts connections one at a time and answers up to ``answers`` requests (keep-alive, as a
    real issuer's connection is reused for the second token request) whose path starts with the URL's random
    prefix; a connection sending anything else is closed.
    """

    def __init__(self, answers: int) -> None:
        self.answers = answers
        self.answered = 0
        self._prefix = f"/{secrets.token_hex(8)}"
        self._answer = _token_answer()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.bind(("127.0.0.1", 0))
            self._listener.listen(1)
            self._listener.settimeout(TIMEOUT_SECONDS)
        except OSError:
            self._listener.close()
            raise
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}{self._prefix}"
        self._thread = threading.Thread(target=self._serve, name="codex-login-rehearsal", daemon=True)

    def __enter__(self) -> RehearsalIssuer:
        start_thread(self._thread)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes an accept() still waiting: nobody else is coming
        except OSError:
            pass
        self._thread.join(TIMEOUT_SECONDS)
        self._listener.close()

    def _serve(self) -> None:
        deadline = time.monotonic() + 2 * TIMEOUT_SECONDS
        expected = f"POST {self._prefix}/".encode("ascii")
        while self.answered < self.answers and time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # timed out or closed: the rehearsal is over
            with conn:
                conn.settimeout(TIMEOUT_SECONDS)
                try:
                    self._answer_requests(conn, expected)
                except (OSError, ValueError):
                    continue  # this connection is done; the next may be the rehearsal's

    def _answer_requests(self, conn: socket.socket, expected: bytes) -> None:
        pending = b""
        while self.answered < self.answers:
            while (end := pending.find(b"\r\n\r\n")) < 0:
                if len(pending) > MAX_REQUEST_BYTES or not (chunk := conn.recv(MAX_REQUEST_BYTES)):
                    return
                pending += chunk
            if not pending.startswith(expected):
                return  # not the rehearsal's client
            length = 0
            for line in pending[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length > MAX_REQUEST_BYTES:
                return
            while len(pending) < end + 4 + length:
                if not (chunk := conn.recv(MAX_REQUEST_BYTES)):
                    return
                pending += chunk
            pending = pending[end + 4 + length :]
            conn.sendall(self._answer)
            self.answered += 1


def rehearse(rounds: int = ROUNDS) -> int:
    """Rehearse ``rounds`` sign-ins (see the module's docstring); how many ran to the end. Never raises."""
    from .oauth import exchange_code_for_tokens, obtain_api_key
    from .storage import AuthDotJson, AuthMode, TokenData
    from .token_data import parse_id_token

    completed = 0
    try:
        with (
            RehearsalIssuer(2 * rounds) as issuer,
            HttpClient(HttpSettings(total_timeout=TIMEOUT_SECONDS, connect_timeout=TIMEOUT_SECONDS, env={})) as client,
        ):
            for _ in range(rounds):
                tokens = exchange_code_for_tokens(
                    client,
                    issuer=issuer.url,
                    client_id="rehearsal",
                    redirect_uri=f"{issuer.url}/callback",
                    code_verifier="rehearsal",
                    code="rehearsal",
                    logger=SILENT,
                )
                info = parse_id_token(tokens.id_token)
                api_key = obtain_api_key(client, issuer=issuer.url, client_id="rehearsal", id_token=tokens.id_token)
                AuthDotJson(
                    auth_mode=AuthMode.CHATGPT,
                    openai_api_key=api_key,
                    tokens=TokenData(
                        id_token=info,
                        access_token=tokens.access_token,
                        refresh_token=tokens.refresh_token,
                        account_id=info.chatgpt_account_id,
                    ),
                    last_refresh=datetime.now(UTC),
                ).to_pretty_json()
                completed += 1
    except Exception:  # best effort: the sign-in itself reports any real problem
        return completed
    return completed
