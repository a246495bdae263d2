"""The loopback login server: the browser sign-in (reference-spec §4–§6, DECISIONS D-1 to D-8, D-10, D-11).

Shape: :func:`run_login_server` binds synchronously (so a bind error is returned at once and the URL only
exists once something listens), then serves on an asyncio loop in a background thread. Every connection
gets one request and one answer with ``Connection: close``, under a deadline and size caps, so idle, slow or
junk connections never delay the real callback. Callback processing runs one at a time; the token exchange
and the save run in worker threads so the loop keeps answering.

The outcome is decided by this attempt alone: success only once credentials were saved (D-3), and
``/success`` never changes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import errno
import hmac
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from .config import (
    CLIENT_ID,
    DEFAULT_ISSUER,
    DEFAULT_LOGIN_TIMEOUT_SECONDS,
    DEFAULT_ORIGINATOR,
    DEFAULT_PORT,
    FALLBACK_PORT,
)
from .diagnostics import events
from .diagnostics.record import attempt_span, context_for_attempt, new_attempt_id
from .diagnostics.redact import sanitize_terminal_text
from .errors import (
    CallbackError,
    ErrorKind,
    LoginCancelled,
    LoginError,
    LoginTimedOut,
    PersistError,
    PortInUseError,
    TokenEndpointError,
    TransportError,
)
from .http import HttpClient, HttpSettings
from .oauth import exchange_code_for_tokens, obtain_api_key, token_endpoint_for, url_encode
from .pkce import PkceCodes, challenge_for, generate_pkce, generate_state

SCOPE = "openid profile email offline_access"
CALLBACK_PATH = "/auth/callback"
MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_PARAMS = 64
HEAD_DEADLINE_SECONDS = 5.0
BIND_ATTEMPTS = 10
LISTEN_BACKLOG = 1024
BIND_RETRY_DELAY = 0.2
CANCEL_TIMEOUT = 2.0
# Refused requests logged one by one per reason and attempt; the rest are only counted (security G8).
REJECTIONS_LOGGED_PER_REASON = 20
SENSITIVE_PARAMS = ("code", "state", "error", "error_description", "iss")
_PERCENT_OK = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ERROR_CODE_OK = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_CODE_CHARS_OK = re.compile(r"[\x20-\x7e]*")  # RFC 6749 A.11: code = 1*VSCHAR
_HEAD_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # any control but HTAB, once CRLFs are removed


@dataclass
class ServerOptions:
    """What one browser sign-in needs. Mirrors the reference's ``ServerOptions`` plus our hardening knobs."""

    codex_home: Path
    client_id: str = CLIENT_ID
    issuer: str = DEFAULT_ISSUER
    port: int = DEFAULT_PORT
    open_browser: bool = True
    force_state: str | None = field(default=None, repr=False)
    force_verifier: str | None = field(default=None, repr=False)
    forced_chatgpt_workspace_id: tuple[str, ...] = ()
    store_mode: str = "file"
    originator: str = DEFAULT_ORIGINATOR
    timeout: float | None = DEFAULT_LOGIN_TIMEOUT_SECONDS
    http: HttpSettings = field(default_factory=HttpSettings)
    attempt_id: str | None = None
    # Called with progress lines for the terminal (already stripped of control characters).
    notice: Callable[[str], None] | None = None
    # Opens the browser; returns (ok, opener name, error). Default: environment.open_browser.
    browser_opener: Callable[[str], tuple[bool, str, str | None]] | None = None
    # How long to wait for the browser to fetch /success once credentials are saved.
    success_grace: float = 10.0


@dataclass(frozen=True)
class LoginSuccess:
    """What a completed sign-in saved."""

    store: str
    email: str | None
    plan: str | None
    account_id: str | None
    attempt_id: str


@dataclass(frozen=True)
class PasteVerdict:
    """The answer to a pasted redirect URL: accepted (the attempt goes on) or why not."""

    accepted: bool
    message: str


@dataclass
class _Reply:
    status: int
    reason: str
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    page: bool = False


def _plain(status: int, reason: str, text: str) -> _Reply:
    return _Reply(status, reason, text.encode("utf-8"), "text/plain; charset=utf-8")


def build_authorize_url(
    *,
    issuer: str,
    client_id: str,
    redirect_uri: str,
    pkce: PkceCodes,
    state: str,
    originator: str,
    forced_workspace_ids: tuple[str, ...] = (),
) -> str:
    """reference-spec §4.4: the parameters and their order, encoded like ``urlencoding::encode``."""
    pairs = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", pkce.code_challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", originator),
    ]
    if forced_workspace_ids:
        pairs.append(("allowed_workspace_id", ",".join(forced_workspace_ids)))
    query = "&".join(f"{k}={url_encode(v)}" for k, v in pairs)
    return f"{issuer}/oauth/authorize?{query}"


def oauth_callback_error_message(error_code: str, description: str | None) -> str:
    """reference-spec §12.2: the text returned to the caller for an ``error=`` callback."""
    if error_code == "access_denied" and description and "missing_codex_entitlement" in description.lower():
        return (
            "Codex is not enabled for your workspace. "
            "Contact your workspace administrator to request access to Codex."
        )
    if description and description.strip():
        return f"Sign-in failed: {description}"
    return f"Sign-in failed: {error_code}"


def workspace_restriction_message(allowed: tuple[str, ...], account_id: str | None) -> str | None:
    """reference-spec §10: None when the account may sign in, else the reason."""
    if not allowed:
        return None
    if not account_id:
        return (
            "Login is restricted to a specific workspace, but the token did not include an "
            "chatgpt_account_id claim."
        )
    if account_id in allowed:
        return None
    if len(allowed) == 1:
        return f"Login is restricted to workspace id {allowed[0]}."
    return f"Login is restricted to workspace id(s) {', '.join(allowed)}."


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


_T = TypeVar("_T")


async def _in_daemon_thread(func: Callable[..., _T], /, *args: object, **kwargs: object) -> _T:
    """Run a blocking network call in a daemon thread. Not the loop's executor: the interpreter joins those
    threads at exit, so a Ctrl-C during a hung token exchange would wait for the HTTP timeout (security H4)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[], _T]) -> None:
        if future.done():
            return  # cancelled: the attempt ended while the call was running
        try:
            future.set_result(outcome())
        except BaseException as err:
            future.set_exception(err)

    def work() -> None:
        try:
            value = context.run(func, *args, **kwargs)
        except BaseException as err:  # handed to the awaiting coroutine, which decides what it means
            failure = err

            def outcome() -> _T:
                raise failure
        else:

            def outcome() -> _T:
                return value

        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this answer any more

    threading.Thread(target=work, daemon=True, name="codex-login-http").start()
    return await future


def _ipv6_available() -> bool:
    return socket.has_ipv6


def _listen(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
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
        v4 = _listen(socket.AF_INET, "127.0.0.1", port)
        actual = v4.getsockname()[1]
        if not _ipv6_available():
            return [v4]
        try:
            v6 = _listen(socket.AF_INET6, "::1", actual)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                v4.close()
                if port == 0:
                    continue  # an ephemeral port that happens to be taken on ::1: pick another
                raise
            return [v4]  # no IPv6 loopback here (EADDRNOTAVAIL, EAFNOSUPPORT): IPv4 only
        return [v4, v6]
    raise OSError(errno.EADDRINUSE, "could not find a port free on both 127.0.0.1 and ::1")


class LoginServer:
    """A running browser sign-in. Build it with :func:`run_login_server`."""

    def __init__(
        self,
        options: ServerOptions,
        sockets: list[socket.socket],
        *,
        fallback: bool,
        attempts: int,
        attempt_id: str,
    ) -> None:
        self.options = options
        self.attempt_id = attempt_id
        self._sockets = sockets
        self.actual_port: int = sockets[0].getsockname()[1]
        self.redirect_uri = f"http://localhost:{self.actual_port}{CALLBACK_PATH}"
        self._pkce = (
            PkceCodes(options.force_verifier, challenge_for(options.force_verifier))
            if options.force_verifier
            else generate_pkce()
        )
        self._state = options.force_state or generate_state()
        self.auth_url = build_authorize_url(
            issuer=options.issuer,
            client_id=options.client_id,
            redirect_uri=self.redirect_uri,
            pkce=self._pkce,
            state=self._state,
            originator=options.originator,
            forced_workspace_ids=options.forced_chatgpt_workspace_id,
        )
        self.addresses = ",".join("127.0.0.1" if s.family == socket.AF_INET else "::1" for s in sockets)
        self.fallback = fallback
        self._bind_attempts = attempts
        self._started = time.monotonic()
        self._future: concurrent.futures.Future[LoginSuccess] = concurrent.futures.Future()
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.StreamWriter] = set()
        self._callback_lock: asyncio.Lock | None = None
        self._consumed = False  # the state was accepted once; it is single-use (RFC 9700 §4.2.4)
        self._rejections: dict[str, int] = {}  # refused requests per reason (see _count_rejection)
        self._saved: LoginSuccess | None = None
        # The HTTP client for the token exchange, built while the browser is away (see _start_preparing).
        self._prepared: concurrent.futures.Future[HttpClient] | None = None
        self._ready = threading.Event()
        self._context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=self._context.run, args=(self._run,), daemon=True, name=f"codex-login-server-{attempt_id}"
        )

    # --- public API ----------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._future.done()

    def block_until_done(self, timeout: float | None = None) -> LoginSuccess:
        """Wait for the outcome. Raises the attempt's :class:`LoginError`, or TimeoutError if ``timeout``
        (this wait only, not the attempt) runs out first."""
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError("the login is still running") from None
        finally:
            if self._future.done() and threading.current_thread() is not self._thread:
                # The loop winds down within moments of the outcome; let it, so a process exiting right after
                # leaves no half-closed loop behind ("Task was destroyed but it is pending!": security H4).
                self._thread.join(1.0)

    def cancel(self, reason: str = "shutdown") -> None:
        """Stop the attempt: ``Login was not completed`` (the reference's shutdown)."""
        if self._loop.is_closed():
            return
        try:
            # Scheduled from the caller's thread: carry the attempt span explicitly so the cancel lines keep it.
            self._loop.call_soon_threadsafe(
                self._settle_error,
                LoginCancelled("Login was not completed"),
                reason,
                context=context_for_attempt(self.attempt_id),
            )
        except RuntimeError:
            pass

    def submit_redirect_url(self, url: str, timeout: float = 120.0) -> PasteVerdict:
        """Process a redirect URL pasted from the browser's address bar exactly like a real callback."""
        text = url.strip()
        parts = urlsplit(text)
        if parts.path.rstrip("/") != CALLBACK_PATH or not parts.query:
            events.pasted_url_received(accepted=False)
            return PasteVerdict(
                False,
                "That is not the redirect URL: it should start with "
                f"http://localhost:{self.actual_port}{CALLBACK_PATH}?code=",
            )
        if self._loop.is_closed() or self.done:
            return PasteVerdict(False, "The sign-in has already finished.")
        fut = asyncio.run_coroutine_threadsafe(self._handle_callback(parts.query, pasted=True), self._loop)
        try:
            reply = fut.result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError, concurrent.futures.CancelledError):
            return PasteVerdict(False, "The sign-in did not answer in time.")
        accepted = reply.status in (200, 302)
        if not accepted:
            return PasteVerdict(False, reply.body.decode("utf-8", "replace"))
        if reply.status == 302 and self._saved is not None:
            # No browser will fetch /success for a pasted URL: the saved credentials settle the attempt.
            self._loop.call_soon_threadsafe(self._settle_success)
        return PasteVerdict(True, "accepted")

    # --- loop ----------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
            self._loop.run_forever()
        finally:
            try:
                # Connections still in flight (a hung token exchange) end as cancelled tasks, not as tasks
                # destroyed while pending, which prints a traceback (security H4, INV-7).
                pending = asyncio.all_tasks(self._loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                self._loop.close()

    async def _serve(self) -> None:
        self._callback_lock = asyncio.Lock()
        for sock in self._sockets:
            # asyncio listens again with its own backlog (100 by default): with 1,000 idle connections the
            # kernel would drop the browser's connection attempt and the browser would retry a second later.
            server = await asyncio.start_server(
                self._on_connection, sock=sock, limit=MAX_HEAD_BYTES, backlog=LISTEN_BACKLOG
            )
            self._servers.append(server)
        if self.options.timeout:
            self._loop.call_later(self.options.timeout, self._on_timeout)
        self._ready.set()
        self._start_preparing()

    def _start_preparing(self) -> None:
        """Do now, while the browser is away, what answering the first callback would otherwise pay for.

        Building the HTTP client loads the TLS trust store and imports httpx's transport, and the first
        page loads its template: a hundred milliseconds or more on a slow machine, spent while the person
        in the browser waits (issue 9: the callback must be answered within milliseconds). Nothing is sent
        anywhere. A daemon thread, like the token exchange's, so it never keeps a finished process alive.
        """
        prepared: concurrent.futures.Future[HttpClient] = concurrent.futures.Future()
        self._prepared = prepared

        def prepare() -> None:
            try:
                prepared.set_result(self._prepare())
            except BaseException as err:  # best effort: the exchange itself reports real problems
                prepared.set_exception(err)

        threading.Thread(target=prepare, daemon=True, name="codex-login-prepare").start()

    def _prepare(self) -> HttpClient:
        # What the exchange and the save import on first use: the resolver encodes the issuer's host name
        # with the IDNA codec, the save runs on the loop's thread pool and needs storage and token_data.
        import concurrent.futures.thread  # noqa: F401
        import encodings.idna  # noqa: F401

        from . import storage, token_data  # noqa: F401
        from .diagnostics.advice import advice_for
        from .pages import platform_url_for, render_error_page, render_success_page

        client = HttpClient(self.options.http)
        client.prepare(token_endpoint_for(self.options.issuer))
        # Rendered and thrown away: the templates are read and parsed once per process.
        render_error_page(
            message="", error_code=None, error_description=None, attempt_id=None, advice=advice_for(None).hint
        )
        render_success_page(
            attempt_id=self.attempt_id,
            email=None,
            plan=None,
            needs_setup=False,
            platform_url=platform_url_for(self.options.issuer),
        )
        return client

    async def _http_client(self) -> HttpClient:
        """The prepared client (waiting for it if it is still being built), else a new one."""
        prepared, self._prepared = self._prepared, None
        client: HttpClient | None = None
        if prepared is not None:
            try:
                client = await asyncio.wrap_future(prepared)
            except Exception:  # warming up is best effort; a real problem shows in the exchange itself
                client = None
        return client if client is not None else HttpClient(self.options.http)

    def _on_timeout(self) -> None:
        if self._saved is not None:
            self._settle_success()
            return
        secs = self.options.timeout or 0
        events.timed_out(after_seconds=secs)
        self._settle_error(
            LoginTimedOut(
                f"Login timed out after {secs:g} seconds: the browser never came back to "
                f"http://localhost:{self.actual_port}{CALLBACK_PATH}"
            ),
            None,
        )

    def _settle_success(self) -> None:
        if self._future.done() or self._saved is None:
            return
        # The final event is written before anyone waiting on the outcome wakes up.
        self._finish("success", None)
        self._future.set_result(self._saved)

    def _settle_error(self, err: LoginError, cancel_reason: str | None) -> None:
        if self._future.done():
            return
        if self._saved is not None:
            # Credentials are saved: the browser not fetching /success does not undo the sign-in.
            self._settle_success()
            return
        if cancel_reason is not None:
            events.cancelled(reason=cancel_reason)
        err.attempt_id = self.attempt_id
        outcome = {
            "cancelled": "cancelled",
            "timeout": "timeout",
            "denied": "denied",
            "workspace_restriction": "denied",
        }.get(err.failure_class, "error")
        self._finish(outcome, err.failure_class)
        self._future.set_exception(err)

    def _count_rejection(self, reason: str) -> bool:
        """Count a refused request; whether it may still be logged on its own. A flood of junk requests
        must not grow the log without bound (security G8): the overflow is logged once, at the end."""
        count = self._rejections.get(reason, 0) + 1
        self._rejections[reason] = count
        return count <= REJECTIONS_LOGGED_PER_REASON

    def _rejected(self, *, reason: str, path: str, http_status: int) -> None:
        if self._count_rejection(reason):
            events.request_rejected(reason=reason, path=path, http_status=http_status)

    def _finish(self, outcome: str, failure: str | None) -> None:
        for reason, count in self._rejections.items():
            if count > REJECTIONS_LOGGED_PER_REASON:
                events.rejections_not_logged(reason=reason, count=count - REJECTIONS_LOGGED_PER_REASON)
        events.finished(
            outcome=outcome,
            failure_class=failure,
            duration_ms=int((time.monotonic() - self._started) * 1000),
            flow="browser",
        )
        for server in self._servers:
            server.close()
        # Let in-flight answers (the terminal page) drain, then stop the loop.
        self._loop.call_later(0.05, self._shutdown)

    def _shutdown(self) -> None:
        prepared, self._prepared = self._prepared, None
        if prepared is not None:  # never used (no code came back): close it once it is built
            prepared.add_done_callback(_close_prepared_client)
        for writer in list(self._connections):
            writer.transport.abort()
        self._loop.stop()

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            with attempt_span(self.attempt_id):
                reply, head_only = await self._read_and_route(reader)
                if reply is not None:
                    writer.write(self._encode(reply, head_only))
                    async with asyncio.timeout(HEAD_DEADLINE_SECONDS):
                        await writer.drain()
                    if reply.page:
                        self._after_page(reply)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the attempt ended while this request was in flight; Python 3.11 would log a cancelled task
        except Exception as exc:  # the last-resort handler (security H9): a bug must not hang the attempt
            self._internal_error(writer, exc)
        finally:
            self._connections.discard(writer)
            writer.transport.abort() if writer.transport.is_closing() else writer.close()

    def _internal_error(self, writer: asyncio.StreamWriter, exc: Exception) -> None:
        """A generic 500 (no traceback, no detail). Once the state was used, the attempt can no longer
        finish, so it ends with an error instead of waiting for the timeout."""
        self._rejected(reason="internal_error", path="other", http_status=500)
        if not writer.transport.is_closing():
            writer.write(self._encode(_plain(500, "Internal Server Error", "Internal Server Error"), False))
        if self._consumed:
            failure = LoginError(
                f"Sign-in failed: internal error in the login server ({type(exc).__name__})",
                failure_class="internal_error",
            )
            self._settle_error(failure, None)

    def _after_page(self, reply: _Reply) -> None:
        outcome = reply.headers.pop("x-codex-settle", None)
        if outcome == "success":
            events.success_page_served()
            self._settle_success()

    async def _read_and_route(self, reader: asyncio.StreamReader) -> tuple[_Reply | None, bool]:
        try:
            # asyncio.timeout, not wait_for: wait_for runs the read as a task of its own, which makes every idle
            # or junk connection cost the loop more (issue 9 measures 1,000 of each).
            async with asyncio.timeout(HEAD_DEADLINE_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            self._rejected(reason="too_large", path="other", http_status=431)
            return _plain(431, "Request Header Fields Too Large", "Request Header Fields Too Large"), False
        except (TimeoutError, asyncio.IncompleteReadError):
            return None, False
        except ValueError:
            return _plain(400, "Bad Request", "Bad Request"), False
        line_end = head.find(b"\r\n")
        request_line = head[:line_end]
        if len(request_line) > MAX_REQUEST_LINE:
            self._rejected(reason="too_large", path="other", http_status=414)
            return _plain(414, "URI Too Long", "URI Too Long"), False
        if _HEAD_CONTROL.search(head[:-4].replace(b"\r\n", b"")):
            # A bare CR or LF, a NUL...: lines other parsers would split differently (security B12).
            return _plain(400, "Bad Request", "Bad Request"), False
        try:
            method, target, version = request_line.decode("ascii").split(" ")
        except (UnicodeDecodeError, ValueError):
            return _plain(400, "Bad Request", "Bad Request"), False
        if not version.startswith("HTTP/1.") or not target.startswith("/"):
            return _plain(400, "Bad Request", "Bad Request"), False
        headers: dict[str, str] = {}
        lines = head[line_end + 2 : -4].split(b"\r\n") if len(head) > line_end + 4 else []
        if len(lines) > MAX_HEADERS:
            self._rejected(reason="too_large", path="other", http_status=431)
            return _plain(431, "Request Header Fields Too Large", "Request Header Fields Too Large"), False
        for raw in lines:
            name, sep, value = raw.partition(b":")
            if not sep or not name or name != name.strip():
                return _plain(400, "Bad Request", "Bad Request"), False
            try:
                key = name.decode("ascii").lower()
                headers[key] = value.decode("latin-1").strip()
            except UnicodeDecodeError:
                return _plain(400, "Bad Request", "Bad Request"), False
        path, _, query = target.partition("?")
        path_class = path if path in (CALLBACK_PATH, "/success", "/cancel") else "other"
        if not self._host_allowed(headers.get("host")):
            self._rejected(reason="unexpected_host", path=path_class, http_status=400)
            return _plain(400, "Bad Request", "Bad Request: unexpected Host header"), False
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            self._rejected(reason="bad_method", path=path_class, http_status=405)
            reply = _plain(405, "Method Not Allowed", "Method Not Allowed")
            reply.headers["Allow"] = "GET, HEAD"
            return reply, False
        if "#" in target:
            return _plain(400, "Bad Request", "Bad Request"), head_only
        if path == CALLBACK_PATH:
            dest = headers.get("sec-fetch-dest")
            if dest is not None and dest not in ("document", "empty"):
                self._rejected(reason="cross_site", path=path_class, http_status=403)
                return _plain(403, "Forbidden", "Forbidden"), head_only
            return await self._handle_callback(query, pasted=False), head_only
        if path == "/success":
            return self._handle_success(), head_only
        if path == "/cancel":
            return self._handle_cancel(headers), head_only
        return _plain(404, "Not Found", "Not Found"), head_only

    def _host_allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        allowed = {f"{name}:{self.actual_port}" for name in ("localhost", "127.0.0.1", "[::1]")}
        return host.lower() in allowed

    def _encode(self, reply: _Reply, head_only: bool) -> bytes:
        from .pages import SECURITY_HEADERS

        lines = [f"HTTP/1.1 {reply.status} {reply.reason}"]
        headers: dict[str, str] = {}
        if reply.content_type:
            headers["Content-Type"] = reply.content_type
        headers.update(SECURITY_HEADERS)
        headers.update({k: v for k, v in reply.headers.items() if not k.startswith("x-codex-")})
        headers["Content-Length"] = str(len(reply.body))
        headers["Connection"] = "close"
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only else head + reply.body

    # --- routes --------------------------------------------------------------------------------------

    def _handle_success(self) -> _Reply:
        saved = self._saved
        if saved is None:
            # D-3 / security W3: /success before this attempt saved anything changes nothing.
            return _plain(404, "Not Found", "Not Found")
        from .pages import HTML_CONTENT_TYPE, platform_url_for, render_success_page

        page = render_success_page(
            attempt_id=self.attempt_id,
            email=saved.email,
            plan=saved.plan,
            needs_setup=False,
            platform_url=platform_url_for(self.options.issuer),
        )
        reply = _Reply(200, "OK", page.encode("utf-8"), HTML_CONTENT_TYPE, page=True)
        reply.headers["x-codex-settle"] = "success"
        return reply

    def _handle_cancel(self, headers: dict[str, str]) -> _Reply:
        fetch_site = headers.get("sec-fetch-site")
        if "origin" in headers or (fetch_site is not None and fetch_site != "none"):
            # D-2: a web page may not abort a sign-in; a previous server's plain GET /cancel still works.
            self._rejected(reason="cross_site", path="/cancel", http_status=403)
            return _plain(403, "Forbidden", "Forbidden")
        self._loop.call_soon(self._settle_error, LoginCancelled("Login cancelled"), "cancel_request")
        return _Reply(200, "OK", b"Login cancelled")

    async def _handle_callback(self, query: str, *, pasted: bool) -> _Reply:
        assert self._callback_lock is not None
        async with self._callback_lock:
            return await self._process_callback(query, pasted=pasted)

    def _parse_query(self, query: str) -> dict[str, list[str]] | None:
        if _PERCENT_OK.search(query):
            return None
        params: dict[str, list[str]] = {}
        pieces = [p for p in query.split("&") if p]
        if len(pieces) > MAX_PARAMS:
            return None
        for piece in pieces:
            raw_key, _, raw_value = piece.partition("=")
            try:
                key = unquote(raw_key.replace("+", " "), errors="strict")
                value = unquote(raw_value.replace("+", " "), errors="strict")
            except UnicodeDecodeError:
                return None
            params.setdefault(key, []).append(value)
        return params

    async def _process_callback(self, query: str, *, pasted: bool) -> _Reply:
        params = self._parse_query(query)
        if params is None:
            if pasted:
                events.pasted_url_received(accepted=False)
            self._rejected(reason="malformed_query", path=CALLBACK_PATH, http_status=400)
            return _plain(400, "Bad Request", "Bad Request")
        single = {k: v[-1] for k, v in params.items()}
        code = single.get("code", "")
        state = single.get("state", "")
        error = single.get("error")
        has_error = bool(error)
        state_valid = bool(state) and hmac.compare_digest(state.encode(), self._state.encode())
        if pasted:
            # "accepted" means it belongs to this attempt; what the callback carried follows in the next lines.
            events.pasted_url_received(accepted=state_valid)
        logged = state_valid or self._count_rejection("state_mismatch")
        if logged:
            events.callback_received(
                path=CALLBACK_PATH,
                has_code=bool(code),
                has_state=bool(state),
                has_error=has_error,
                state_valid=state_valid,
            )
        if not state_valid:
            if logged:
                events.state_mismatch(
                    path=CALLBACK_PATH, has_code=bool(code), has_state=bool(state), has_error=has_error
                )
            return _plain(400, "Bad Request", "State mismatch")
        if any(len(params.get(name, ())) > 1 for name in SENSITIVE_PARAMS):
            self._rejected(reason="duplicate_param", path=CALLBACK_PATH, http_status=400)
            return _plain(400, "Bad Request", "Bad Request: duplicate parameter")
        if self._consumed or self.done:
            events.callback_already_settled(path=CALLBACK_PATH)
            return _plain(400, "Bad Request", "This sign-in was already completed. Return to your terminal.")
        iss = single.get("iss")
        if iss is not None and iss.rstrip("/") != self.options.issuer.rstrip("/"):
            # RFC 9207 mix-up defence: an answer from another issuer is refused like a wrong state.
            events.issuer_mismatch()
            return _plain(400, "Bad Request", "Issuer mismatch")
        if not _CODE_CHARS_OK.fullmatch(code):
            # Control or non-ASCII characters: not a code any issuer sends (security A2); the attempt waits on.
            self._rejected(reason="malformed_code", path=CALLBACK_PATH, http_status=400)
            return _plain(400, "Bad Request", "Bad Request: malformed authorization code")
        self._consumed = True
        notice = self.options.notice or (lambda _line: None)

        if error is not None:
            description = single.get("error_description")
            message = oauth_callback_error_message(error, description)
            notice(f"OAuth callback error: {sanitize_terminal_text(message, 1024)}")
            events.oauth_callback_error(
                error_code=error if _ERROR_CODE_OK.fullmatch(error) else "<invalid>",
                has_error_description=bool(description and description.strip()),
            )
            return self._terminal_error(
                CallbackError(sanitize_terminal_text(message, 1024), failure_class="denied"),
                message=message,
                code=error,
                description=description,
            )
        if not code:
            events.callback_missing_code()
            message = "Missing authorization code. Sign-in could not be completed."
            return self._terminal_error(
                CallbackError(message, kind=ErrorKind.INVALID_DATA, failure_class="missing_code"),
                message=message,
                code="missing_authorization_code",
                description=None,
            )
        return await self._exchange_and_save(code, notice)

    async def _exchange_and_save(self, code: str, notice: Callable[[str], None]) -> _Reply:
        opts = self.options
        client = await self._http_client()
        try:
            try:
                tokens = await _in_daemon_thread(
                    exchange_code_for_tokens,
                    client,
                    issuer=opts.issuer,
                    client_id=opts.client_id,
                    redirect_uri=self.redirect_uri,
                    code_verifier=self._pkce.code_verifier,
                    code=code,
                )
            except (TokenEndpointError, TransportError) as err:
                notice(f"Token exchange error: {sanitize_terminal_text(str(err), 2048)}")
                events.callback_token_exchange_failed()
                message = f"Token exchange failed: {err}"
                failure = err.failure_class
                return self._terminal_error(
                    LoginError(sanitize_terminal_text(message, 4096), failure_class=failure),
                    message=message,
                    code="token_exchange_failed",
                    description=None,
                )
            from .token_data import TokenDataError, parse_id_token

            try:
                info = parse_id_token(tokens.id_token)
            except TokenDataError as err:
                message = f"Token exchange failed: {err}"
                events.callback_token_exchange_failed()
                return self._terminal_error(
                    LoginError(message, failure_class="invalid_id_token"),
                    message=message,
                    code="token_exchange_failed",
                    description=None,
                )
            restriction = workspace_restriction_message(
                opts.forced_chatgpt_workspace_id, info.chatgpt_account_id
            )
            if restriction is not None:
                notice(f"Workspace restriction error: {restriction}")
                events.workspace_denied(reason="missing_claim" if not info.chatgpt_account_id else "mismatch")
                return self._terminal_error(
                    CallbackError(restriction, failure_class="workspace_restriction"),
                    message=restriction,
                    code="workspace_restriction",
                    description=None,
                )
            api_key: str | None = None
            try:
                api_key = await _in_daemon_thread(
                    obtain_api_key,
                    client,
                    issuer=opts.issuer,
                    client_id=opts.client_id,
                    id_token=tokens.id_token,
                )
                events.api_key_exchange_succeeded()
            except TokenEndpointError as err:
                events.api_key_exchange_failed(status=str(err.status) if err.status else "none")
            except TransportError as err:
                events.api_key_exchange_failed(status=f"transport_{err.transport_kind}")
            try:
                saved = await asyncio.to_thread(
                    self._persist, tokens.id_token, tokens.access_token, tokens.refresh_token, api_key, info
                )
            except LoginError as err:
                notice(f"Persist error: {sanitize_terminal_text(str(err), 2048)}")
                message = "Sign-in completed but credentials could not be saved locally."
                return self._terminal_error(
                    PersistError(f"{message} {err}"),
                    message=message,
                    code="persist_failed",
                    description=str(err),
                )
        finally:
            client.close()
        self._saved = saved
        reply = _Reply(302, "Found")
        reply.headers["Location"] = f"http://localhost:{self.actual_port}/success"
        self._loop.call_later(opts.success_grace, self._settle_success)
        return reply

    def _persist(
        self, id_token: str, access_token: str, refresh_token: str, api_key: str | None, info: object
    ) -> LoginSuccess:
        from .storage import AuthDotJson, AuthMode, StoreMode, TokenData, auth_lock, create_store
        from .token_data import IdTokenInfo

        assert isinstance(info, IdTokenInfo)
        store = create_store(self.options.codex_home, StoreMode(self.options.store_mode))
        auth = AuthDotJson(
            auth_mode=AuthMode.CHATGPT,
            openai_api_key=api_key,
            tokens=TokenData(
                id_token=info,
                access_token=access_token,
                refresh_token=refresh_token,
                account_id=info.chatgpt_account_id,
            ),
            last_refresh=datetime.now(UTC),
        )
        try:
            with auth_lock(self.options.codex_home):
                where = store.save(auth)
        except LoginError as err:
            events.credentials_not_saved(
                store=self.options.store_mode,
                error_class=type(err).__name__,
                errno=getattr(err, "errno", None),
            )
            raise
        except OSError as err:
            events.credentials_not_saved(
                store=self.options.store_mode, error_class=type(err).__name__, errno=err.errno
            )
            raise PersistError(f"failed to save credentials: {err.strerror}") from None
        for warning in getattr(store, "warnings", []):
            if self.options.notice:
                self.options.notice(sanitize_terminal_text(str(warning), 1024))
        events.credentials_saved(store=where)
        return LoginSuccess(
            store=where,
            email=info.email,
            plan=info.chatgpt_plan_type,
            account_id=info.chatgpt_account_id,
            attempt_id=self.attempt_id,
        )

    def _terminal_error(
        self, err: LoginError, *, message: str, code: str | None, description: str | None
    ) -> _Reply:
        from .diagnostics.advice import advice_for
        from .pages import HTML_CONTENT_TYPE, render_error_page

        page = render_error_page(
            message=message,
            error_code=code,
            error_description=description,
            attempt_id=self.attempt_id,
            advice=advice_for(err.failure_class).hint,
        )
        # Terminal pages are status 200 with Connection: close, as the reference (its e2e tests rely on it).
        reply = _Reply(200, "OK", page.encode("utf-8"), HTML_CONTENT_TYPE, page=True)
        self._loop.call_soon(self._settle_error, err, None)
        return reply


def _close_prepared_client(prepared: concurrent.futures.Future[HttpClient]) -> None:
    if not prepared.cancelled() and prepared.exception() is None:
        prepared.result().close()


def _bind_with_takeover(
    options: ServerOptions, notice: Callable[[str], None]
) -> tuple[list[socket.socket], bool, int]:
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
                        hint = (
                            " (the OS refused the port; on Windows it may be in an excluded port range: "
                            "try `codex-login --device-auth`)"
                        )
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
    raise PortInUseError(
        f"Port {tried} is already in use. Close the other program using it, or sign in with "
        "`codex-login --device-auth`."
    )


def run_login_server(options: ServerOptions) -> LoginServer:
    """Start a browser sign-in: bind, build the authorize URL, serve, and open the browser (best effort).

    Bind failures raise :class:`PortInUseError` at once. The attempt's events carry its attempt ID.
    """
    attempt_id = options.attempt_id or new_attempt_id()
    notice = options.notice or (lambda _line: None)
    with attempt_span(attempt_id):
        events.attempt_started(
            flow="browser",
            issuer=options.issuer,
            client_id=options.client_id,
            store=options.store_mode,
        )
        try:
            sockets, fallback, attempts = _bind_with_takeover(options, notice)
        except PortInUseError as err:
            err.attempt_id = attempt_id
            events.finished(outcome="error", failure_class=err.failure_class, duration_ms=0, flow="browser")
            raise
        server = LoginServer(options, sockets, fallback=fallback, attempts=attempts, attempt_id=attempt_id)
        events.server_bound(
            port=server.actual_port, addresses=server.addresses, fallback=fallback, attempts=attempts
        )
        server._start()
        if options.open_browser:
            _open_browser_in_background(server, options)
        else:
            events.browser_not_opened(reason="disabled")
    return server


def _open_browser_in_background(server: LoginServer, options: ServerOptions) -> None:
    def open_it() -> None:
        opener = options.browser_opener
        if opener is None:
            from .environment import choose_browser_opener, detect_environment, open_browser

            info = detect_environment()
            choice = choose_browser_opener(info)
            if choice is None:
                events.browser_not_opened(reason="no_browser_available")
                return
            result = open_browser(server.auth_url, choice)
            ok, name, error = result.ok, result.opener_name, result.error
        else:
            ok, name, error = opener(server.auth_url)
        if ok:
            events.browser_opened(opener=name)
        else:
            events.browser_failed(opener=name, reason=error or "unknown")
            if options.notice:
                options.notice(sanitize_terminal_text(f"Could not open a browser with {name}: {error}", 512))

    ctx = contextvars.copy_context()
    threading.Thread(target=ctx.run, args=(open_it,), daemon=True, name="codex-login-browser").start()
