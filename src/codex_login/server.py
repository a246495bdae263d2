"""The loopback login server: the browser sign-in (reference-spec §4–§6, DECISIONS D-1 to D-8, D-10, D-11).

Shape: :func:`run_login_server` binds synchronously (so a bind error is returned at once and the URL only
exists once something listens), then serves on an asyncio loop in a background thread. Every connection
gets one request and one answer with ``Connection: close``, under a deadline and size caps, so idle, slow or
junk connections never delay the real callback. Once a callback with the right state is accepted, the
other requests wait until its outcome is known (a /cancel excepted); the token exchange, the API-key
exchange and the save run in one worker thread, and the loop keeps serving /cancel, the timeout and Ctrl-C.

The outcome is decided by this attempt alone: success only once credentials were saved (D-3), and
``/success`` never changes it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import errno
import gc
import hmac
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ._browser_open import open_browser_in_background
from ._ports import LISTEN_BACKLOG, bind_with_takeover
from ._threads import start_thread
from ._worker import SAVES_IN_FLIGHT, Worker
from .config import (
    CLIENT_ID,
    DEFAULT_ISSUER,
    DEFAULT_LOGIN_TIMEOUT_SECONDS,
    DEFAULT_ORIGINATOR,
    DEFAULT_PORT,
)
from .diagnostics import events
from .diagnostics.record import attempt_span, context_for_attempt, new_attempt_id
from .diagnostics.redact import SECRETS, sanitize_terminal_text
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
from .oauth import exchange_code_for_tokens, loggable_token_endpoint, obtain_api_key, token_endpoint_for, url_encode
from .pkce import PkceCodes, challenge_for, generate_pkce, generate_state

if TYPE_CHECKING:
    from .storage import CredentialStore

SCOPE = "openid profile email offline_access"
CALLBACK_PATH = "/auth/callback"
CALLBACK_PATH_BYTES = CALLBACK_PATH.encode()
MAX_REQUEST_LINE = 8 * 1024
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
#: Headers the checks read and that a request may carry once only (a repeated one is refused, not overwritten).
_SINGLE_HEADERS = frozenset({"host", "origin", "sec-fetch-site", "sec-fetch-dest", "sec-fetch-mode"})
MAX_PARAMS = 64
HEAD_DEADLINE_SECONDS = 5.0
READ_CHUNK = 64 * 1024
ACCEPT_RETRY_SECONDS = 1.0
PREPARE_WAIT_SECONDS = 5.0
DRAIN_SECONDS = 0.05  # at most, for answers still being written when the attempt ends
DRAIN_POLL_SECONDS = 0.005
# accept() failures that say "not now" (descriptors or memory exhausted) rather than "not this one".
_ACCEPT_PAUSE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Out of file descriptors: the process's limit (EMFILE) or the system's (ENFILE).
_DESCRIPTOR_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE})
#: Concurrent connections at most (security B6), fewer when the descriptor limit leaves less room (see
#: :func:`connection_cap`). A browser needs a handful; when the cap is reached, the oldest connection that has not
#: sent a whole request is closed to make room, so idle connections never keep the callback out.
MAX_CONNECTIONS = 1024
MIN_CONNECTIONS = 16
#: Descriptors kept free beyond the connections for the sign-in itself: the worker's imports and HTTP client
#: (the rehearsal's loopback issuer too), the token exchange's connection, the save (auth.json, its temporary
#: file, the lock, the directory's sync) and the log.
SPARE_DESCRIPTORS = 64
# What an answer to a request refused unread (too long) reads and discards at most before closing: closing with
# unread data resets the connection, and the client can lose the answer (nginx's "lingering close").
LINGER_BYTES = 4 * 1024 * 1024
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
    # Called inside the attempt's span right after ``login attempt started``, before the port is bound: events
    # a caller logs here come in the catalogue's order and never after the attempt's ``login finished`` (a
    # /cancel can end the attempt as soon as the server serves). The CLI logs ``login environment`` here.
    on_attempt_started: Callable[[], None] | None = None
    # False after `--device-auth` fell back to this flow (the issuer has no device sign-in): no message or advice
    # of the attempt suggests `--device-auth`, and its `login attempt started` line says `fallback_from=device`.
    device_auth: bool = True


@dataclass(frozen=True)
class LoginSuccess:
    """What a completed sign-in saved."""

    store: str
    email: str | None
    plan: str | None
    account_id: str | None
    attempt_id: str
    #: The ID token says the account owns an API organization whose set-up is unfinished (reference §12.4:
    #: ``!completed_platform_onboarding && is_org_owner``): the success page then links to its set-up.
    needs_setup: bool = False


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


@dataclass(frozen=True)
class _Failure:
    """How a sign-in failed after the code came back: the page to show and the attempt's error."""

    error: LoginError
    message: str
    code: str | None
    description: str | None


# What the worker's sign-in comes back with: saved, failed (the page to show), or None when the attempt ended
# first (see LoginServer._sign_in).
_SignedIn = LoginSuccess | _Failure | None


@dataclass(frozen=True)
class _Redirected:
    """A browser callback's sign-in as the worker leaves it: its outcome and, when it succeeded, the redirect
    the worker wrote itself (``sent`` bytes of ``data``; None: not written, -1: the client was gone)."""

    outcome: _SignedIn
    data: bytes = b""
    sent: int | None = None


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


def _issuer_identity(issuer: str) -> str:
    """An issuer URL as the RFC 9207 check compares it: scheme and host are case-insensitive (RFC 3986
    §6.2.2.1), so ``--issuer HTTPS://Auth.Example.com`` accepts ``iss=https://auth.example.com``; a trailing
    slash is not a difference either; everything else must match exactly."""
    scheme, sep, rest = issuer.rstrip("/").partition("://")
    if not sep:
        return issuer
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"


def oauth_callback_error_message(error_code: str, description: str | None) -> str:
    """reference-spec §12.2: the text returned to the caller for an ``error=`` callback."""
    if error_code == "access_denied" and description and "missing_codex_entitlement" in description.lower():
        return (
            "Codex is not enabled for your workspace. Contact your workspace administrator to request access to Codex."
        )
    if description and description.strip():
        return f"Sign-in failed: {description}"
    return f"Sign-in failed: {error_code}"


def workspace_restriction_message(allowed: tuple[str, ...], account_id: str | None) -> str | None:
    """reference-spec §10: None when the account may sign in, else the reason."""
    if not allowed:
        return None
    if not account_id:
        return "Login is restricted to a specific workspace, but the token did not include an chatgpt_account_id claim."
    if account_id in allowed:
        return None
    if len(allowed) == 1:
        return f"Login is restricted to workspace id {allowed[0]}."
    return f"Login is restricted to workspace id(s) {', '.join(allowed)}."


class _Connection:
    """An accepted connection: one request head is read from it, it is answered once, then closed."""

    __slots__ = ("deadline", "guard", "linger", "page", "reading", "received", "sock", "unsent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = b""
        self.reading = False  # registered with the loop for reads
        self.deadline: asyncio.TimerHandle | None = None  # closes it if the head (or the answer) is too slow
        self.unsent = b""  # the part of the answer the socket has not taken yet
        self.page: _Reply | None = None  # a page whose effect (settling the attempt) follows its delivery
        self.linger = False  # refused before its request was read whole: what is left is read once answered
        # Held while the worker writes the callback's redirect and while the loop closes the socket, so the
        # worker never writes to a descriptor number the loop has closed (and the system reused).
        self.guard: threading.Lock | None = None


def _targets(head: bytes | _Reply, path: bytes) -> bool:
    """Whether a request's head is aimed at ``path`` (whatever its method: routing decides what it gets)."""
    if not isinstance(head, bytes):
        return False
    parts = head.split(b" ", 2)
    return len(parts) == 3 and parts[1].partition(b"?")[0] == path


def _open_descriptors() -> int:
    """How many descriptors the process has open (0 where the system does not list them)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(listing))
        except OSError:
            continue
    return 0


def connection_cap() -> int:
    """The most connections the login server keeps open at once: :data:`MAX_CONNECTIONS`, or fewer when the soft
    RLIMIT_NOFILE leaves less room beyond the descriptors already open and :data:`SPARE_DESCRIPTORS`.

    The soft limit is read, never raised: the limit is the process's (a library caller's, an app server's),
    a child process would inherit a raised one, and a descriptor numbered over 1023 breaks select()-based code
    in the same process. Closing the oldest idle connection at the cap keeps the callback reachable at any cap.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit to derive from
        return MAX_CONNECTIONS
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, soft - _open_descriptors() - SPARE_DESCRIPTORS))


def _security_headers() -> Mapping[str, str]:
    try:
        from .pages import SECURITY_HEADERS
    except OSError:  # out of descriptors before any page loaded them (EMFILE): a plain answer still goes out
        return {}
    return SECURITY_HEADERS


def _from_a_web_page(headers: dict[str, str], path: str) -> bool:
    """Whether a ``/success`` or ``/cancel`` request comes from a web page rather than the person's own navigation
    (or a program, which sends no such headers): it carries ``Origin``, or a ``Sec-Fetch-Dest`` other than
    ``document`` (an image, a script, a fetch). Not ``Sec-Fetch-Site`` for ``/success``: after the issuer's
    redirects the real navigation to it is cross-site. ``/cancel`` also needs ``Sec-Fetch-Site`` absent or
    ``none`` (typed in the address bar): no navigation from a page may cancel (D-2), and only a previous login
    server, which sends none of these headers, needs it."""
    if "origin" in headers or headers.get("sec-fetch-dest", "document") != "document":
        return True
    return path == "/cancel" and headers.get("sec-fetch-site", "none") != "none"


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
        # Scrubbed from every line that leaves (security R-3): a browser opener's error text, say, can hold the
        # authorize URL.
        SECRETS.add("state", self._state)
        SECRETS.add("code_verifier", self._pkce.code_verifier)
        SECRETS.add("code_challenge", self._pkce.code_challenge)
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
        self._connections: set[_Connection] = set()
        self._cap = connection_cap()
        # The connections that have not sent a whole request yet, oldest first: the first to go at the cap.
        self._waiting: dict[_Connection, None] = {}
        self._paused: list[socket.socket] = []  # listeners not accepted from until a connection closes
        self._allowed_hosts = frozenset(f"{name}:{self.actual_port}" for name in ("localhost", "127.0.0.1", "[::1]"))
        # False while a callback with the right state is being decided: the other requests wait in _held.
        self._serving = True
        self._held: collections.deque[tuple[_Connection, bytes | _Reply]] = collections.deque()
        self._consumed = False  # the state was accepted once; it is single-use (RFC 9700 §4.2.4)
        self._rejections: dict[str, int] = {}  # refused requests per reason (see _count_rejection)
        # The browser opener's event and the attempt's final one, in that order (D-11): the opener's thread logs
        # under this lock, and ``_finish`` logs for an opener still running (see opener_returned).
        self._opener_lock = threading.Lock()
        self._opener_running: str | None = None  # the name of a browser command still running
        self._final_logged = False
        self._saved: LoginSuccess | None = None
        # Held by the worker from its last check that the attempt is still on until the credentials are saved,
        # and by the loop to settle a failure: a cancel, the timeout or Ctrl-C either comes before the save
        # (nothing is written) or finds it done (the outcome is success). INV-1: auth.json changes only when
        # the outcome is success.
        self._commit = threading.RLock()
        self._unsynced: CredentialStore | None = None  # saved, its directory not yet synced (worker only)
        # Builds the HTTP client while the browser is away, then runs the sign-in (started by _serve).
        self._worker: Worker | None = None
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
                # An attempt can end while its worker still loads the TLS trust store (a /cancel right after
                # the start). A process that exits meanwhile runs OpenSSL's exit-time cleanup under that
                # thread's feet, which can crash it: wait for that step (it sends nothing and never blocks on
                # the network), never for an exchange in flight.
                self.wait_prepared(PREPARE_WAIT_SECONDS)

    def wait_prepared(self, timeout: float | None = None) -> bool:
        """Wait until the attempt's HTTP client and pages are prepared (started with the server, done while
        the browser is away); whether they are. A program that exits right after starting a server can call
        it first: exiting while that step is inside OpenSSL can crash the process."""
        worker = self._worker
        return worker is not None and worker.prepared.wait(timeout)

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
        try:
            parts = urlsplit(text)
        except ValueError:  # "Invalid IPv6 URL" (a bracket left open): not the redirect URL either
            parts = urlsplit("")
        if parts.path.rstrip("/") != CALLBACK_PATH or not parts.query:
            events.pasted_url_received(accepted=False)
            return PasteVerdict(
                False,
                "That is not the redirect URL: it should start with "
                f"http://localhost:{self.actual_port}{CALLBACK_PATH}?code=",
            )
        if self._loop.is_closed() or self.done:
            return PasteVerdict(False, "The sign-in has already finished.")
        fut = asyncio.run_coroutine_threadsafe(self._handle_pasted(parts.query), self._loop)
        try:
            reply = fut.result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError, concurrent.futures.CancelledError):
            return PasteVerdict(False, "The sign-in did not answer in time.")
        if reply is None:
            return PasteVerdict(False, "The sign-in has already finished.")
        accepted = reply.status in (200, 302)
        if not accepted:
            return PasteVerdict(False, reply.body.decode("utf-8", "replace"))
        if reply.status == 302 and self._saved is not None:
            # No browser will fetch /success for a pasted URL: the saved credentials settle the attempt.
            self._loop.call_soon_threadsafe(self._settle_success)
        return PasteVerdict(True, "accepted")

    # --- loop ----------------------------------------------------------------------------------------

    def _start(self) -> None:
        start_thread(self._thread)
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        # Every callback of the loop (each request's handling) runs in the attempt's span.
        with attempt_span(self.attempt_id):
            try:
                self._serve()
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

    def _serve(self) -> None:
        for listener in self._sockets:
            self._loop.add_reader(listener.fileno(), self._accept, listener)
        if self.options.timeout:
            self._loop.call_later(self.options.timeout, self._on_timeout)
        self._start_preparing()  # before ready: once run_login_server returns, the worker exists
        self._ready.set()

    def _start_preparing(self) -> None:
        """Do now, while the browser is away, what answering the first callback would otherwise pay for.

        Building the HTTP client loads the TLS trust store and imports httpx's transport, and the first
        page loads its template: a hundred milliseconds or more on a slow machine, spent while the person
        in the browser waits (issue 9: the callback must be answered within milliseconds); then the sign-in's
        code is rehearsed (:mod:`._rehearsal`). Nothing is sent to the issuer or anywhere else: the rehearsal
        talks to a loopback issuer of its own. The thread doing it then waits to run the sign-in (see
        :class:`~codex_login._worker.Worker`).
        """
        self._worker = Worker(self._prepare, lambda: HttpClient(self.options.http))

    def _prepare(self) -> HttpClient:
        # What the exchange and the save import on first use: the resolver encodes the issuer's host name
        # with the IDNA codec, the save needs storage and token_data.
        import encodings.idna  # noqa: F401

        from . import storage, token_data  # noqa: F401
        from .diagnostics.advice import advice_for
        from .pages import platform_url_for, render_error_page, render_success_page

        client = HttpClient(self.options.http)
        try:
            client.prepare(token_endpoint_for(self.options.issuer))
            # Rendered and thrown away: the templates are read and parsed once per process.
            render_error_page(
                message="", error_code=None, error_description=None, attempt_id=None, advice=advice_for(None).hint
            )
            render_success_page(
                attempt_id=self.attempt_id,
                plan=None,
                needs_setup=False,
                platform_url=platform_url_for(self.options.issuer),
            )
            loggable_token_endpoint(self.options.issuer)
            # The exchanges, the JWT parse and the save's JSON, run a dozen times against a loopback issuer of
            # the rehearsal's own, so the callback does not run them for the first time (issue 9).
            from ._rehearsal import rehearse

            rehearse()
        except BaseException:
            # The worker falls back to a client of its own: this one, whose deadline watchdog thread
            # prepare() started, would otherwise never be closed and its thread would stay for the process's
            # life (one per sign-in in an app server). What can raise here: reading a page template (an asset
            # missing or unreadable in a broken install), and anything out of memory.
            client.close()
            raise
        # A collection now, and none while the callback is answered: the young generation's counter starts
        # from zero, and a sign-in's allocations stay under its threshold. One that ran during the callback
        # cost about 0.3 ms, the objects it walks being out of the idle CPU's caches (issue 9).
        gc.collect()
        return client

    def _on_timeout(self) -> None:
        with self._commit:
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
        with self._commit:
            if self._future.done():
                return
            if self._saved is not None:
                # Credentials are saved: a cancel after that, or the browser not fetching /success, does not
                # undo the sign-in.
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
        with self._opener_lock:
            if self._opener_running is not None:
                # A browser command still running when the attempt ends counts as opened, as one still running
                # after open_browser's wait does (many BROWSER commands run until the browser exits, and a quick
                # sign-in ends within that wait): logged now, since nothing may follow the final event.
                events.browser_opened(opener=self._opener_running)
                self._opener_running = None
            self._final_logged = True
            events.finished(
                outcome=outcome,
                failure_class=failure,
                duration_ms=int((time.monotonic() - self._started) * 1000),
                flow="browser",
            )
        for listener in self._sockets:
            if listener.fileno() >= 0:
                self._loop.remove_reader(listener.fileno())
                listener.close()
        # Let in-flight answers (the terminal page) drain, then stop the loop.
        self._loop.call_soon(self._shutdown_when_drained, self._loop.time() + DRAIN_SECONDS)

    def opener_starting(self, name: str | None) -> bool:
        """A browser opener is about to run (``name`` when known before it returns); False once the attempt ended.

        With :meth:`opener_returned`, ``done`` and ``auth_url``, what the browser opener's thread uses of the
        server (:class:`~codex_login._browser_open.BrowserAttempt`)."""
        with self._opener_lock:
            if self._final_logged:
                return False
            self._opener_running = name
            return True

    def opener_returned(self, log: Callable[[], None]) -> bool:
        """The opener returned: ``log`` its outcome unless the attempt's final event is out already (then
        False: the attempt ended while the opener ran, and nothing of it is reported)."""
        with self._opener_lock:
            self._opener_running = None
            if self._final_logged:
                return False
            log()
            return True

    def _shutdown_when_drained(self, deadline: float) -> None:
        """Stop once no answer is still being written (or at ``deadline``). Usually at once: the answers
        are small and loopback takes them whole; the process then exits without waiting for nothing."""
        if self._loop.time() < deadline and any(conn.unsent for conn in self._connections):
            self._loop.call_later(DRAIN_POLL_SECONDS, self._shutdown_when_drained, deadline)
            return
        self._shutdown()

    def _shutdown(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        self._held.clear()
        for conn in list(self._connections):
            self._close(conn)
        self._loop.stop()

    # --- HTTP ----------------------------------------------------------------------------------------
    #
    # Plain non-blocking sockets on the loop's selector rather than asyncio's streams: an idle or junk
    # connection costs a few system calls and no task (issue 9: 1,000 of each, and the real callback
    # still answered within 50 ms). One request per connection, answered with Connection: close.

    def _accept(self, listener: socket.socket) -> None:
        arrived: list[tuple[_Connection, bytes | _Reply]] = []
        for _ in range(LISTEN_BACKLOG):
            if len(self._connections) >= self._cap and not self._make_room():
                # Every connection has sent its request (held while a callback is decided, or being answered):
                # the backlog keeps the others until one is closed (see _close).
                self._pause_accepting(listener)
                break
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                if err.errno in _DESCRIPTOR_ERRNOS:
                    # Something else holds the descriptors the cap counted on: a lower cap, and room under it.
                    self._cap = max(MIN_CONNECTIONS, len(self._connections) - SPARE_DESCRIPTORS)
                    if self._make_room():
                        while len(self._connections) > self._cap and self._make_room():
                            pass
                        continue
                if err.errno in _ACCEPT_PAUSE_ERRNOS:
                    # Out of descriptors or memory: the backlog keeps the others until some are closed.
                    self._pause_accepting(listener)
                    self._loop.call_later(ACCEPT_RETRY_SECONDS, self._resume_accepting)
                    break
                continue  # ECONNABORTED and the like: only that connection is gone
            sock.setblocking(False)
            conn = _Connection(sock)
            self._connections.add(conn)
            head = self._receive(conn)  # a browser sends its request with the connection: usually here already
            if head is not None:
                arrived.append((conn, head))
        # Requests for the callback first: under a flood of other requests queued ahead of the browser's,
        # reading them is cheap, answering them is not (issue 9).
        arrived.sort(key=lambda item: not _targets(item[1], CALLBACK_PATH_BYTES))
        for conn, head in arrived:
            self._dispatch(conn, head)

    def _make_room(self) -> bool:
        """At the cap: close the oldest connection that has not sent a whole request; whether there was one."""
        for conn in self._waiting:
            self._close(conn)
            return True
        return False

    def _pause_accepting(self, listener: socket.socket) -> None:
        if listener not in self._paused:
            self._loop.remove_reader(listener.fileno())
            self._paused.append(listener)

    def _resume_accepting(self) -> None:
        paused, self._paused = self._paused, []
        for listener in paused:
            if listener.fileno() >= 0:  # not closed by _finish meanwhile
                self._loop.add_reader(listener.fileno(), self._accept, listener)

    def _read(self, conn: _Connection) -> None:
        head = self._receive(conn)
        if head is not None:
            self._dispatch(conn, head)

    def _receive(self, conn: _Connection) -> bytes | _Reply | None:
        """Read what has arrived: the request's head once complete (or the answer refusing it), else None."""
        try:
            data = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            self._wait_for_more(conn)
            return None
        except OSError:
            self._close(conn)
            return None
        if not data:
            self._close(conn)  # closed before a whole head: nothing to answer
            return None
        searched = max(0, len(conn.received) - 3)
        conn.received += data
        end = conn.received.find(b"\r\n\r\n", searched)
        # No CRLF within the request line's cap: a URL too long (414), whatever the rest of the head would be.
        line_too_long = (
            len(conn.received) >= MAX_REQUEST_LINE + 2 and conn.received.find(b"\r\n", 0, MAX_REQUEST_LINE + 2) < 0
        )
        if end < 0 and not line_too_long and len(conn.received) - 3 <= MAX_HEAD_BYTES:
            self._wait_for_more(conn)
            return None
        self._stop_reading(conn)
        if 0 <= end <= MAX_HEAD_BYTES and not line_too_long:
            return conn.received[: end + 4]
        conn.received = b""
        conn.linger = end < 0  # the client may still be sending: read the rest once answered (see _linger)
        if line_too_long:
            self._rejected(reason="too_large", path="other", http_status=414)
            return _plain(414, "URI Too Long", "URI Too Long")
        # The cap of asyncio's StreamReader.readuntil, which this replaced.
        self._rejected(reason="too_large", path="other", http_status=431)
        return _plain(431, "Request Header Fields Too Large", "Request Header Fields Too Large")

    def _dispatch(self, conn: _Connection, head: bytes | _Reply) -> None:
        """Answer a request, or hold it while a callback is being decided."""
        if not self._serving and not _targets(head, b"/cancel"):
            # A callback with the right state is being decided: the others are answered after it, so the
            # loop does not compete with the token exchange for the interpreter (issue 9). Not a /cancel:
            # a codex-login taking the port over gives up on its request after 2 s.
            self._held.append((conn, head))
            return
        self._answer(conn, head)

    def _wait_for_more(self, conn: _Connection) -> None:
        if not conn.reading:
            conn.reading = True
            self._waiting[conn] = None
            self._loop.add_reader(conn.sock.fileno(), self._read, conn)
            conn.deadline = self._loop.call_later(HEAD_DEADLINE_SECONDS, self._close, conn)

    def _stop_reading(self, conn: _Connection) -> None:
        if conn.reading:
            conn.reading = False
            del self._waiting[conn]
            self._loop.remove_reader(conn.sock.fileno())
        if conn.deadline is not None:
            conn.deadline.cancel()
            conn.deadline = None

    def _sign_in_answered(self) -> None:
        """The callback's outcome is known and its answer written: the worker closes its HTTP client (the
        connection to the issuer) and ends, and the held requests are answered, in order."""
        if self._worker is not None:
            self._worker.stop()
        self._serving = True
        while self._serving and self._held:
            conn, head = self._held.popleft()
            self._answer(conn, head)

    def _answer(self, conn: _Connection, head: bytes | _Reply) -> None:
        try:
            decided, head_only = self._route(head) if isinstance(head, bytes) else (head, False)
            if isinstance(decided, str):
                self._sign_in_and_answer(conn, decided, head_only)
            else:
                self._send(conn, decided, head_only)
        except Exception as exc:  # the last-resort handler (security H9): a bug must not hang the attempt
            self._internal_error(conn, exc)

    def _sign_in_and_answer(self, conn: _Connection, code: str, head_only: bool) -> None:
        """Sign in with ``code`` in the worker, which also writes the redirect to ``/success`` when it
        succeeds: handing the answer back to the loop first would add a thread wake-up, a fifth of a
        millisecond or more, to the callback (issue 9). The loop then does the bookkeeping
        (:meth:`_answer_signed_in`), and the worker syncs the directory of the saved auth.json."""
        assert self._worker is not None
        conn.guard = threading.Lock()
        self._worker.run(
            lambda client: self._sign_in_and_redirect(client, code, conn, head_only),
            lambda outcome: self._answer_signed_in(conn, head_only, outcome),
            self._sync_saved,
        )

    def _sign_in_and_redirect(self, client: HttpClient, code: str, conn: _Connection, head_only: bool) -> _Redirected:
        """In the worker: the sign-in, then, if it saved the credentials, the redirect written to ``conn``."""
        outcome = self._sign_in(client, code)
        if not isinstance(outcome, LoginSuccess):
            return _Redirected(outcome)
        data = self._encode(self._redirect_to_success(), head_only)
        assert conn.guard is not None
        with conn.guard:
            if self.done or conn.sock.fileno() < 0:
                return _Redirected(outcome)  # the attempt ended meanwhile: the loop decides
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = -1  # reset by the client
        return _Redirected(outcome, data, sent)

    def _answer_signed_in(self, conn: _Connection, head_only: bool, outcome: Callable[[], _Redirected]) -> None:
        """On the loop, once the worker is done with a browser callback: settle what the outcome settles,
        and answer (or finish answering) the callback."""
        try:
            redirected = outcome()
            reply = self._reply_for(redirected.outcome)
            if redirected.sent is None:
                if reply is None:
                    self._close(conn)
                else:
                    self._send(conn, reply, head_only)
            elif redirected.sent < 0:
                self._close(conn)
            else:
                self._sent(conn, redirected.data, redirected.sent)
        except Exception as exc:  # the last-resort handler (security H9)
            self._internal_error(conn, exc)
        finally:
            # After this answer, which is written in this same loop step.
            self._loop.call_soon(self._sign_in_answered)

    def _send(self, conn: _Connection, reply: _Reply, head_only: bool) -> None:
        data = self._encode(reply, head_only)
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)  # reset by the client: nobody to answer
            return
        conn.page = reply if reply.page else None
        self._sent(conn, data, sent)

    def _sent(self, conn: _Connection, data: bytes, sent: int) -> None:
        """``sent`` bytes of the answer ``data`` are written: finish it now or when the socket takes more."""
        if sent == len(data):
            self._written(conn)
            return
        conn.unsent = data[sent:]
        self._loop.add_writer(conn.sock.fileno(), self._write, conn)
        conn.deadline = self._loop.call_later(HEAD_DEADLINE_SECONDS, self._close, conn)

    def _write(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.unsent = conn.unsent[sent:]
        if not conn.unsent:
            self._loop.remove_writer(conn.sock.fileno())
            try:
                self._written(conn)
            except Exception as exc:  # the last-resort handler (security H9)
                self._internal_error(conn, exc)

    def _written(self, conn: _Connection) -> None:
        if conn.linger:
            self._linger(conn)
            return
        page, conn.page = conn.page, None
        try:
            # What the client sent after the head (a body, never read) would make close() reset the
            # connection, which can discard the answer before the client has read it.
            conn.sock.recv(READ_CHUNK)
        except OSError:
            pass
        if page is not None:
            self._after_page(page)
        # Closed at the loop's next step, as asyncio's transports do: an outcome this answer brings (a
        # page, a /cancel) is settled first, so once the client sees the end of the answer the port
        # already refuses connections (INV-3).
        self._loop.call_soon(self._close, conn)

    def _linger(self, conn: _Connection) -> None:
        """The answer to a request refused before it was read whole is written: end the answer (FIN), then read
        and discard what the client still sends until it closes, :data:`LINGER_BYTES` or the head deadline,
        so closing does not reset the connection before the client has read the answer. The connection counts
        as one without a whole request: the first to go at the cap."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.linger = False
        conn.received = b""
        if conn.deadline is not None:  # the answer's own, when it was written in parts
            conn.deadline.cancel()
        conn.reading = True
        self._waiting[conn] = None
        self._loop.add_reader(conn.sock.fileno(), self._discard, conn, [LINGER_BYTES])
        conn.deadline = self._loop.call_later(HEAD_DEADLINE_SECONDS, self._close, conn)

    def _discard(self, conn: _Connection, left: list[int]) -> None:
        try:
            data = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        left[0] -= len(data)
        if not data or left[0] <= 0:
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        self._stop_reading(conn)
        if conn.unsent:
            self._loop.remove_writer(conn.sock.fileno())
            conn.unsent = b""
        if conn.guard is None:
            conn.sock.close()
        else:
            with conn.guard:
                conn.sock.close()
        if self._paused and len(self._connections) < self._cap:
            self._resume_accepting()

    def _internal_error(self, conn: _Connection, exc: Exception) -> None:
        """A generic 500 (no traceback, no detail). Once the state was used, the attempt can no longer
        finish, so it ends with an error instead of waiting for the timeout."""
        if isinstance(exc, OSError) and exc.errno in _DESCRIPTOR_ERRNOS:
            self._out_of_descriptors(conn)
            return
        self._rejected(reason="internal_error", path="other", http_status=500)
        try:
            conn.sock.send(self._encode(_plain(500, "Internal Server Error", "Internal Server Error"), False))
        except OSError:
            pass
        self._close(conn)
        if self._consumed:
            failure = LoginError(
                f"Sign-in failed: internal error in the login server ({type(exc).__name__})",
                failure_class="internal_error",
            )
            self._settle_error(failure, None)

    def _out_of_descriptors(self, conn: _Connection) -> None:
        """Like :meth:`_internal_error`, for what is no bug: the process (EMFILE) or the system (ENFILE) ran out
        of file descriptors. 503, and, once the state was used, an error that says so and what to do."""
        self._rejected(reason="out_of_descriptors", path="other", http_status=503)
        text = "Service Unavailable: too many open files. Return to your terminal."
        try:
            conn.sock.send(self._encode(_plain(503, "Service Unavailable", text), False))
        except OSError:
            pass
        self._close(conn)
        if self._consumed:
            failure = LoginError(
                "Sign-in failed: too many open files (the login server ran out of file descriptors)",
                failure_class="too_many_open_files",
            )
            self._settle_error(failure, None)

    def _after_page(self, reply: _Reply) -> None:
        outcome = reply.headers.pop("x-codex-settle", None)
        if outcome == "success":
            events.success_page_served()
            self._settle_success()

    def _route(self, head: bytes) -> tuple[_Reply | str, bool]:
        """The answer to a request head (and whether it is a HEAD request), or, for the callback that
        decides the attempt, the authorization code whose exchange gives the answer."""
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
        path, _, query = target.partition("?")
        path_class = path if path in (CALLBACK_PATH, "/success", "/cancel") else "other"
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
                text = value.decode("latin-1").strip()
            except UnicodeDecodeError:
                return _plain(400, "Bad Request", "Bad Request"), False
            if key in headers and key in _SINGLE_HEADERS:
                # A second Host (RFC 9112 §3.2: 400) or Origin / Sec-Fetch-*: the last one would otherwise win,
                # so a foreign Host followed by ours passed the DNS-rebinding check (D-4).
                self._rejected(reason="duplicate_header", path=path_class, http_status=400)
                return _plain(400, "Bad Request", "Bad Request: repeated header"), False
            headers[key] = text
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
            return self._process_callback(query, pasted=False), head_only
        if path in ("/success", "/cancel") and _from_a_web_page(headers, path):
            # Security B9 / D-2: a web page may neither abort a sign-in (/cancel) nor end it by loading
            # /success (an image, a fetch), which would leave the person's browser "connection refused".
            self._rejected(reason="cross_site", path=path, http_status=403)
            return _plain(403, "Forbidden", "Forbidden"), head_only
        if path == "/success":
            return self._handle_success(), head_only
        if path == "/cancel":
            return self._handle_cancel(), head_only
        return _plain(404, "Not Found", "Not Found"), head_only

    def _host_allowed(self, host: str | None) -> bool:
        return host is not None and host.lower() in self._allowed_hosts

    def _encode(self, reply: _Reply, head_only: bool) -> bytes:
        lines = [f"HTTP/1.1 {reply.status} {reply.reason}"]
        headers: dict[str, str] = {}
        if reply.content_type:
            headers["Content-Type"] = reply.content_type
        headers.update(_security_headers())
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
            plan=saved.plan,
            needs_setup=saved.needs_setup,
            platform_url=platform_url_for(self.options.issuer),
        )
        reply = _Reply(200, "OK", page.encode("utf-8"), HTML_CONTENT_TYPE, page=True)
        reply.headers["x-codex-settle"] = "success"
        return reply

    def _handle_cancel(self) -> _Reply:
        self._loop.call_soon(self._settle_error, LoginCancelled("Login cancelled"), "cancel_request")
        return _Reply(200, "OK", b"Login cancelled")

    async def _handle_pasted(self, query: str) -> _Reply | None:
        decided = self._process_callback(query, pasted=True)
        if isinstance(decided, str):
            return await self._answer_when_signed_in(self._start_sign_in(decided))
        return decided

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

    def _process_callback(self, query: str, *, pasted: bool) -> _Reply | str:
        """The answer to a callback, or the authorization code to exchange (:meth:`_start_sign_in`).

        Synchronous up to the exchange, so a second callback (or a pasted URL) always finds the state
        already used by the first one."""
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
        if state_valid and code:
            SECRETS.add("code", code)
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
        iss = single.get("iss") or None  # sent without a value: as if omitted (RFC 6749 §3.1)
        if iss is not None and _issuer_identity(iss) != _issuer_identity(self.options.issuer):
            # RFC 9207 mix-up defence: an answer from another issuer is refused like a wrong state.
            events.issuer_mismatch()
            return _plain(400, "Bad Request", "Issuer mismatch")
        if not _CODE_CHARS_OK.fullmatch(code):
            # Control or non-ASCII characters: not a code any issuer sends (security A2); the attempt waits on.
            self._rejected(reason="malformed_code", path=CALLBACK_PATH, http_status=400)
            return _plain(400, "Bad Request", "Bad Request: malformed authorization code")
        self._consumed = True

        if error is not None:
            description = single.get("error_description")
            if description is not None:
                # The description may be shown (terminal, page, returned error), but not a secret it echoes: an
                # issuer that quotes the state (or the code) it refused, whole, in part or upper-cased.
                description = SECRETS.scrub(description)
            message = oauth_callback_error_message(error, description)
            self._notice(f"OAuth callback error: {sanitize_terminal_text(message, 1024)}")
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
        self._serving = False  # until this callback's outcome is known (see _read)
        return code

    def _start_sign_in(self, code: str) -> asyncio.Future[_SignedIn]:
        """Hand the exchanges and the save to the worker now, not at the loop's next step behind whatever
        else is ready (a pasted URL; the browser's callback takes :meth:`_sign_in_and_answer`)."""
        assert self._worker is not None
        future: asyncio.Future[_SignedIn] = self._loop.create_future()

        def settle(outcome: Callable[[], _SignedIn]) -> None:
            if future.done():
                return  # cancelled: the attempt ended while the call was running
            try:
                future.set_result(outcome())
            except BaseException as err:
                future.set_exception(err)

        self._worker.run(lambda client: self._sign_in(client, code), settle, self._sync_saved)
        return future

    async def _answer_when_signed_in(self, signed_in: asyncio.Future[_SignedIn]) -> _Reply | None:
        try:
            outcome = await signed_in
        finally:
            # After this answer, which is written in this same loop step.
            self._loop.call_soon(self._sign_in_answered)
        return self._reply_for(outcome)

    def _reply_for(self, outcome: _SignedIn) -> _Reply | None:
        """The answer to a callback whose sign-in came back with ``outcome`` (None: nobody to answer); a
        success is remembered for ``/success``, a failure settles the attempt."""
        if outcome is None:
            return None
        if isinstance(outcome, _Failure):
            return self._terminal_error(
                outcome.error, message=outcome.message, code=outcome.code, description=outcome.description
            )
        self._saved = outcome
        self._loop.call_later(self.options.success_grace, self._settle_success)
        return self._redirect_to_success()

    def _redirect_to_success(self) -> _Reply:
        reply = _Reply(302, "Found")
        reply.headers["Location"] = f"http://localhost:{self.actual_port}/success"
        return reply

    def _sync_saved(self) -> None:
        """In the worker, after the answer: make the saved auth.json's rename durable (the directory's
        fsync, see :meth:`CredentialStore.defer_directory_sync`)."""
        store, self._unsynced = self._unsynced, None
        if store is not None:
            with SAVES_IN_FLIGHT:
                store.sync()

    def _notice(self, line: str) -> None:
        """A progress line for the terminal, when the caller asked for them (``ServerOptions.notice``)."""
        if self.options.notice is not None:
            self.options.notice(line)

    def _sign_in(self, client: HttpClient, code: str) -> _SignedIn:
        """The token exchange, the API-key exchange and the save, in a worker thread. None when the attempt
        ended (cancel, timeout) while a step ran: the next step is not taken, nothing is saved."""
        opts = self.options
        try:
            tokens = exchange_code_for_tokens(
                client,
                issuer=opts.issuer,
                client_id=opts.client_id,
                redirect_uri=self.redirect_uri,
                code_verifier=self._pkce.code_verifier,
                code=code,
            )
        except (TokenEndpointError, TransportError) as err:
            if self.done:
                return None
            self._notice(f"Token exchange error: {sanitize_terminal_text(str(err), 2048)}")
            events.callback_token_exchange_failed()
            message = f"Token exchange failed: {err}"
            failure = LoginError(sanitize_terminal_text(message, 4096), failure_class=err.failure_class)
            return _Failure(failure, message, "token_exchange_failed", None)
        tokens.register_secrets()
        if self.done:
            return None
        from .token_data import TokenDataError, parse_id_token

        try:
            info = parse_id_token(tokens.id_token)
        except TokenDataError as err:
            message = f"Token exchange failed: {err}"
            events.callback_token_exchange_failed()
            return _Failure(
                LoginError(message, failure_class="invalid_id_token"), message, "token_exchange_failed", None
            )
        restriction = workspace_restriction_message(opts.forced_chatgpt_workspace_id, info.chatgpt_account_id)
        if restriction is not None:
            self._notice(f"Workspace restriction error: {restriction}")
            events.workspace_denied(reason="missing_claim" if not info.chatgpt_account_id else "mismatch")
            failure = CallbackError(restriction, failure_class="workspace_restriction")
            return _Failure(failure, restriction, "workspace_restriction", None)
        api_key: str | None = None
        failed_status: str | None = None
        try:
            api_key = obtain_api_key(client, issuer=opts.issuer, client_id=opts.client_id, id_token=tokens.id_token)
        except TokenEndpointError as err:
            failed_status = str(err.status) if err.status else "none"
        except TransportError as err:
            failed_status = f"transport_{err.transport_kind}"
        SECRETS.add("api_key", api_key)
        if self.done:
            return None
        if failed_status is None:
            events.api_key_exchange_succeeded()
        else:
            events.api_key_exchange_failed(status=failed_status)
        try:
            with SAVES_IN_FLIGHT:
                return self._persist(tokens.id_token, tokens.access_token, tokens.refresh_token, api_key, info)
        except LoginError as err:
            self._notice(f"Persist error: {sanitize_terminal_text(str(err), 2048)}")
            message = "Sign-in completed but credentials could not be saved locally."
            return _Failure(PersistError(f"{message} {err}"), message, "persist_failed", str(err))

    def _persist(
        self, id_token: str, access_token: str, refresh_token: str, api_key: str | None, info: object
    ) -> LoginSuccess | None:
        """Save the credentials; None (nothing written) if the attempt ended while the auth lock was awaited."""
        from .storage import AuthDotJson, AuthMode, StoreMode, TokenData, create_store, store_lock
        from .token_data import IdTokenInfo

        assert isinstance(info, IdTokenInfo)
        mode = StoreMode(self.options.store_mode)
        store = create_store(self.options.codex_home, mode)
        store.defer_directory_sync()
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
            # No on-disk lock for ephemeral credentials (store_lock): it would create CODEX_HOME.
            with store_lock(self.options.codex_home, mode), self._commit:
                if self.done:
                    return None  # a cancel, the timeout or Ctrl-C came first (see __init__, _commit)
                where = store.save(auth)
                self._unsynced = store
                events.credentials_saved(store=where)
                saved = self._saved = LoginSuccess(
                    store=where,
                    email=info.email,
                    plan=info.chatgpt_plan_type,
                    account_id=info.chatgpt_account_id,
                    attempt_id=self.attempt_id,
                    needs_setup=info.is_org_owner and not info.completed_platform_onboarding,
                )
        except LoginError as err:
            events.credentials_not_saved(
                store=self.options.store_mode,
                error_class=type(err).__name__,
                errno=getattr(err, "errno", None),
            )
            raise
        except OSError as err:
            events.credentials_not_saved(store=self.options.store_mode, error_class=type(err).__name__, errno=err.errno)
            raise PersistError(f"failed to save credentials: {err.strerror}") from None
        for warning in getattr(store, "warnings", []):
            self._notice(sanitize_terminal_text(str(warning), 1024))
        return saved

    def _terminal_error(self, err: LoginError, *, message: str, code: str | None, description: str | None) -> _Reply:
        from .diagnostics.advice import DEVICE_AUTH, advice_for
        from .pages import HTML_CONTENT_TYPE, render_error_page

        page = render_error_page(
            message=message,
            error_code=code,
            error_description=description,
            attempt_id=self.attempt_id,
            advice=advice_for(err.failure_class, without=None if self.options.device_auth else DEVICE_AUTH).hint,
        )
        # Terminal pages are status 200 with Connection: close, as the reference (its e2e tests rely on it).
        reply = _Reply(200, "OK", page.encode("utf-8"), HTML_CONTENT_TYPE, page=True)
        self._loop.call_soon(self._settle_error, err, None)
        return reply


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
            fallback_from=None if options.device_auth else "device",
        )
        if options.on_attempt_started is not None:
            options.on_attempt_started()
        binding = time.monotonic()
        try:
            sockets, fallback, attempts = bind_with_takeover(options, notice)
        except PortInUseError as err:
            err.attempt_id = attempt_id
            events.finished(outcome="error", failure_class=err.failure_class, duration_ms=0, flow="browser")
            raise
        except BaseException as raised:  # Ctrl-C or SIGTERM while binding (a takeover can take seconds): still one line
            duration_ms = int((time.monotonic() - binding) * 1000)
            # Which signal, as a cancel of a running attempt says it (the caller's SIGTERM exception names itself).
            reason = "interrupted" if isinstance(raised, KeyboardInterrupt) else getattr(raised, "cancel_reason", None)
            if isinstance(reason, str):
                events.cancelled(reason=reason)
            events.finished(outcome="cancelled", failure_class=None, duration_ms=duration_ms, flow="browser")
            raise
        server = LoginServer(options, sockets, fallback=fallback, attempts=attempts, attempt_id=attempt_id)
        events.server_bound(port=server.actual_port, addresses=server.addresses, fallback=fallback, attempts=attempts)
        server._start()
        if options.open_browser:
            open_browser_in_background(server, options)
        else:
            events.browser_not_opened(reason="disabled")
    return server
