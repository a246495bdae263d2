"""The app server: the sign-in subset of the Codex app-server protocol, as JSON-RPC 2.0 lines.

One JSON object per line in each direction, in the shapes of the Rust ``codex app-server``: messages carry
no ``"jsonrpc"`` member, responses are ``{"id":…,"result":…}`` or ``{"error":{"code":…,"message":…},"id":…}``,
and server notifications are ``{"method":…,"params":…,"emittedAtMs":…}``.

Methods: ``initialize`` (then the client's ``initialized`` notification), ``account/read``,
``account/login/start`` (``{"type":"chatgpt"}`` or ``{"type":"apiKey","apiKey":…}``),
``account/login/cancel``, ``account/logout``. Notifications sent: ``account/login/completed`` and
``account/updated``.

A ChatGPT sign-in runs the same loopback login server as ``codex-login`` (:func:`codex_login.server.run_login_server`)
with the client's name from ``initialize`` as ``originator``; a worker thread waits for it and sends
``account/login/completed`` (failures read ``Login server error: …``, as the reference) and, on success,
``account/updated``. Only one sign-in runs at a time: a new one, an API-key login, a logout or the end of
input cancels the running one, which then completes with ``Login server error: Login was not completed``.

Nothing but protocol may reach the output stream: whoever runs :class:`AppServer` on a process's stdout must
make sure nothing else writes there (the ``app-server`` command moves fd 1 to stderr for that reason).
Writes happen under a lock because notifications come from worker threads.

Environment knobs read by :func:`options_from_env`:

``CODEX_LOGIN_APP_SERVER_PORT``
    The loopback port for ChatGPT sign-ins (default 1455, with the usual takeover of a previous login
    server and the 1457 fallback; ``0`` picks any free port, which is what tests use).
``CODEX_LOGIN_APP_SERVER_LOGIN_TIMEOUT``
    Seconds a ChatGPT sign-in may wait for the browser (default 600, the reference's 10 minutes).
``CODEX_LOGIN_APP_SERVER_OPEN_BROWSER``
    ``1``: open the browser here too. By default, as the reference's app server (``open_browser: false``),
    the client opens ``authUrl`` itself; opening it here as well gave an editor's user two tabs.
"""

from __future__ import annotations

import json
import os
import platform
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from . import __version__
from ._fastjson import has_surrogate
from ._threads import start_thread
from .config import DEFAULT_LOGIN_TIMEOUT_SECONDS, DEFAULT_ORIGINATOR, DEFAULT_PORT, ORIGINATOR_OVERRIDE_ENV, Config
from .errors import LoginError

if TYPE_CHECKING:
    from .server import LoginServer
    from .storage import AuthDotJson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603

PORT_ENV = "CODEX_LOGIN_APP_SERVER_PORT"
LOGIN_TIMEOUT_ENV = "CODEX_LOGIN_APP_SERVER_LOGIN_TIMEOUT"
OPEN_BROWSER_ENV = "CODEX_LOGIN_APP_SERVER_OPEN_BROWSER"

#: A line longer than this is answered with a parse error and skipped, never buffered whole.
MAX_LINE_BYTES = 1024 * 1024
LINE_READ_CHUNK = 64 * 1024
LINES_AHEAD = 8  # lines read before the server takes them (each at most MAX_LINE_BYTES)
LINE_WAIT_SECONDS = 0.25  # how late a signal that races the wait for input may be handled
#: How long a cancelled sign-in may take to report its end before the next step goes on without it.
CANCEL_JOIN_SECONDS = 10.0
#: Extra time the waiter gives the login server past its own timeout before giving up on it.
WAITER_GRACE_SECONDS = 30.0
#: Longest client text echoed in an error (method names, ids), so a hostile client cannot make it huge.
MAX_ECHO_CHARS = 200

API_KEY_DISABLED = "API key login is disabled. Use ChatGPT login instead."
CHATGPT_DISABLED = "ChatGPT login is disabled. Use API key login instead."
MISSING_ACCOUNT_DETAILS = "email and plan type are required for chatgpt authentication"

KNOWN_PLAN_TYPES = frozenset({"free", "go", "plus", "pro", "team", "business", "enterprise", "edu"})
_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e]")

RequestId = int | str
JsonObject = dict[str, Any]


class RpcError(Exception):
    """A JSON-RPC error answer: ``code`` and the message the client sees."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_request(detail: str) -> RpcError:
    """The reference's answer to params that do not parse: -32600 ``Invalid request: …``.

    Refusals of well-formed requests use -32600 too, with the reference's text and no prefix.
    """
    return RpcError(INVALID_REQUEST, f"Invalid request: {detail}")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS] + "…"


# --- parameters ---------------------------------------------------------------------------------------
# Messages follow serde's wording (``missing field `x```) so clients written against the Rust server read
# them the same way. Field values are not echoed (a mistyped field may be an API key); only what the
# reference echoes is: the method name, the login type, the login id and the client name, clipped.


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _params_object(params: object, *, required: bool) -> JsonObject:
    if params is None:
        if required:
            raise invalid_request("missing field `params`")
        return {}
    if not isinstance(params, dict):
        raise invalid_request(f"invalid type: {_json_kind(params)}, expected `params` to be an object")
    return params


def _str_field(obj: JsonObject, name: str, *, required: bool = True, nullable: bool = False) -> str | None:
    if name not in obj:
        if required:
            raise invalid_request(f"missing field `{name}`")
        return None
    value = obj[name]
    if value is None and (nullable or not required):
        return None
    if not isinstance(value, str):
        raise invalid_request(f"invalid type: {_json_kind(value)}, expected `{name}` to be a string")
    return value


def _bool_field(obj: JsonObject, name: str) -> bool:
    value = obj.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_request(f"invalid type: {_json_kind(value)}, expected `{name}` to be a boolean")
    return value


# --- what initialize answers --------------------------------------------------------------------------


def platform_family() -> str:
    """Rust's ``std::env::consts::FAMILY``."""
    return "windows" if sys.platform == "win32" else "unix"


def platform_os() -> str:
    """Rust's ``std::env::consts::OS``."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform == "win32":
        return "windows"
    return re.sub(r"\d+$", "", sys.platform) or "unknown"


def _os_description() -> str:
    """``Debian 12.0.0``-like: what the reference's ``os_info`` puts in the user agent."""
    if sys.platform.startswith("linux"):
        try:
            release = platform.freedesktop_os_release()
        except OSError:
            release = {}
        name = (release.get("NAME") or "Linux").split(" ")[0]
        version = release.get("VERSION_ID") or platform.release()
        return f"{name} {os_version_text(version)}"
    if sys.platform == "darwin":
        return f"Mac OS {platform.mac_ver()[0] or platform.release()}"
    if sys.platform == "win32":
        return f"Windows {platform.version()}"
    return f"{platform.system() or 'unknown'} {platform.release()}"


def os_version_text(version: str) -> str:
    """A version as ``os_info`` prints it: up to three dot-separated numbers as ``major.minor.patch`` (the golden
    user agent says ``Debian 12.0.0`` for ``VERSION_ID="12"``), anything else as it is."""
    parts = version.strip().split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()  # "1.2." is 1.2.0, as Rust's split_terminator reads it
    if len(parts) <= 3 and all(part.isascii() and part.isdigit() for part in parts):
        numbers = [int(part) for part in parts] + [0, 0]
        return "{}.{}.{}".format(*numbers[:3])
    return version


def _terminal_description(env: Mapping[str, str]) -> str:
    program = env.get("TERM_PROGRAM", "").strip()
    if program:
        version = env.get("TERM_PROGRAM_VERSION", "").strip()
        return f"{program}/{version}" if version else program
    return env.get("TERM", "").strip() or "unknown"


def user_agent(originator: str, client_name: str, client_version: str, env: Mapping[str, str]) -> str:
    """The reference's ``get_codex_user_agent`` with the client suffix: header-safe ASCII only."""
    text = (
        f"{originator}/{__version__} ({_os_description()}; {platform.machine() or 'unknown'}) "
        f"{_terminal_description(env)} ({client_name}; {client_version})"
    )
    return _HEADER_UNSAFE.sub("_", text)


def is_header_value(text: str) -> bool:
    """What Rust's ``HeaderValue::from_str`` accepts: no control characters other than tab."""
    return not any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in text)


# --- account views ------------------------------------------------------------------------------------


def plan_type_of(raw: str | None) -> str | None:
    """The protocol's ``PlanType``: a known plan in lowercase, ``unknown`` for anything else."""
    if raw is None:
        return None
    return raw if raw in KNOWN_PLAN_TYPES else "unknown"


def account_view(auth: AuthDotJson | None) -> tuple[JsonObject | None, str | None]:
    """``account/read``'s ``account`` and ``userId`` for stored credentials. Raises :class:`RpcError`."""
    from .storage import AuthMode

    if auth is None:
        return None, None
    if auth.resolved_mode() is AuthMode.API_KEY:
        return {"type": "apiKey"}, None
    info = auth.tokens.id_token if auth.tokens is not None else None
    email = info.email if info is not None else None
    plan = plan_type_of(info.chatgpt_plan_type if info is not None else None)
    if email is None or plan is None:
        raise RpcError(INVALID_REQUEST, MISSING_ACCOUNT_DETAILS)
    user_id = info.chatgpt_user_id if info is not None else None
    return {"type": "chatgpt", "email": email, "planType": plan}, user_id


def account_updated_params(auth: AuthDotJson | None) -> JsonObject:
    """``account/updated``: the API auth mode (``apikey``, ``chatgpt``, ...) and the plan, if any."""
    from .storage import AuthMode

    if auth is None:
        return {"authMode": None, "planType": None}
    mode = auth.resolved_mode()
    plan = None
    if mode is not AuthMode.API_KEY and auth.tokens is not None:
        plan = plan_type_of(auth.tokens.id_token.chatgpt_plan_type)
    return {"authMode": mode.value, "planType": plan}


# --- output -------------------------------------------------------------------------------------------


class MessageWriter:
    """Writes one JSON object per line and flushes, under a lock (notifications come from other threads).

    Once the stream fails (the client closed its end), every later write is dropped and ``closed`` is set.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.closed = threading.Event()

    @staticmethod
    def encode(message: JsonObject) -> bytes:
        try:
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            return text.encode("utf-8") + b"\n"
        except UnicodeEncodeError:
            # A lone surrogate from the client (JSON allows "\ud800") cannot be UTF-8: escape everything.
            return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"

    def send(self, message: JsonObject) -> bool:
        data = self.encode(message)
        with self._lock:
            if self.closed.is_set():
                return False
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):
                self.closed.set()
                return False
        return True

    def respond(self, request_id: RequestId, result: JsonObject) -> None:
        self.send({"id": request_id, "result": result})

    def error(self, request_id: RequestId | None, code: int, message: str) -> None:
        # Key order as the Rust server writes it: error first, then id.
        self.send({"error": {"code": code, "message": message}, "id": request_id})

    def notify(self, method: str, params: JsonObject) -> None:
        self.send({"method": method, "params": params, "emittedAtMs": int(time.time() * 1000)})


# --- the server ---------------------------------------------------------------------------------------


@dataclass
class AppServerOptions:
    """What the app server needs besides its streams."""

    config: Config
    #: Loopback port of ChatGPT sign-ins (1455 with takeover and fallback; 0 = any free port).
    port: int = DEFAULT_PORT
    #: The client opens ``authUrl`` (the reference's app server never opens a browser itself).
    open_browser: bool = False
    #: Seconds a ChatGPT sign-in waits for the browser before it completes with an error.
    login_timeout: float = DEFAULT_LOGIN_TIMEOUT_SECONDS
    #: Lines for a human (the login server's notices); never the protocol stream.
    notice: Callable[[str], None] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def options_from_env(config: Config, env: Mapping[str, str], notice: Callable[[str], None] | None) -> AppServerOptions:
    """Build the options from the environment knobs (see the module docstring). Raises ValueError."""
    port = DEFAULT_PORT
    raw_port = env.get(PORT_ENV, "").strip()
    if raw_port:
        if not raw_port.isdigit() or not 0 <= int(raw_port) <= 65535:
            raise ValueError(f"{PORT_ENV} must be a port number between 0 and 65535, got {_clip(raw_port)!r}")
        port = int(raw_port)
    timeout = DEFAULT_LOGIN_TIMEOUT_SECONDS
    raw_timeout = env.get(LOGIN_TIMEOUT_ENV, "").strip()
    if raw_timeout:
        try:
            timeout = float(raw_timeout)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout < float("inf"):
            raise ValueError(f"{LOGIN_TIMEOUT_ENV} must be a positive number of seconds, got {_clip(raw_timeout)!r}")
    raw_open = env.get(OPEN_BROWSER_ENV, "").strip()
    if raw_open not in ("", "0", "1"):
        raise ValueError(f"{OPEN_BROWSER_ENV} must be 0 or 1, got {_clip(raw_open)!r}")
    return AppServerOptions(
        config=config, port=port, open_browser=raw_open == "1", login_timeout=timeout, notice=notice, env=dict(env)
    )


@dataclass(eq=False)  # one object per sign-in, compared and hashed by identity (kept in a set)
class _ActiveLogin:
    login_id: str
    server: LoginServer
    waiter: threading.Thread | None = None
    #: Set once the client has (or can no longer get) the loginId: the completion waits for it.
    answered: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Session:
    client_name: str
    client_version: str
    originator: str


@dataclass
class Reply:
    """A handler's answer: the ``result`` to send, then what must happen only after it was sent."""

    result: JsonObject
    then: Callable[[], None] | None = None


Handler = Callable[[JsonObject | None], Reply]


class _LineReader:
    """Reads a file descriptor line by line on a daemon thread; the main thread waits for the lines.

    A signal that arrives just before the main thread blocks in ``read()`` is taken by CPython's C handler
    but its Python handler runs only once the read returns: the app server then missed SIGTERM until the
    next message (its test, about 1 run in 20). Waiting on a queue instead wakes the main thread every
    :data:`LINE_WAIT_SECONDS`, so a pending handler runs at once or within that. The descriptor is read
    directly (no buffered reader whose lock the daemon thread could hold when the stream is closed).

    Lines keep their ``\n``. A line longer than :data:`MAX_LINE_BYTES` (without its ``\n``) is skipped whole
    and comes out as ``None``; ``b""`` is the end of input (or a read error). At most :data:`LINES_AHEAD`
    lines wait in memory: a client that writes faster than the server answers is held back by the pipe, as
    it was when the main thread read the lines itself. ``thread`` is the reading thread: it has read for the
    last time once ``b""`` came out.
    """

    def __init__(self, fd: int) -> None:
        self._lines: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._room = threading.BoundedSemaphore(LINES_AHEAD)
        self.thread = threading.Thread(target=self._run, args=(fd,), name="codex-login-app-input", daemon=True)
        start_thread(self.thread)

    def next_line(self, closed: threading.Event) -> bytes | None:
        """The next line; ``b""`` at the end of input or once ``closed`` is set (nobody reads the answers)."""
        while True:
            try:
                line = self._lines.get(timeout=LINE_WAIT_SECONDS)
            except queue.Empty:
                if closed.is_set():
                    return b""
                continue
            if line != b"":
                self._room.release()
            return line

    def _put(self, line: bytes | None) -> None:
        if line != b"":  # the end always fits: nothing follows it
            self._room.acquire()
        self._lines.put(line)

    def _run(self, fd: int) -> None:
        pending = bytearray()
        too_long = False  # inside a line over the limit: drop up to its end
        try:
            while chunk := os.read(fd, LINE_READ_CHUNK):
                start = 0
                while start < len(chunk):
                    end = chunk.find(b"\n", start)
                    piece = chunk[start:] if end < 0 else chunk[start : end + 1]
                    start += len(piece)
                    if not too_long:
                        pending += piece
                        too_long = len(pending) - pending.endswith(b"\n") > MAX_LINE_BYTES
                        if too_long:
                            pending.clear()
                    if end >= 0:
                        self._put(None if too_long else bytes(pending))
                        pending.clear()
                        too_long = False
        except OSError:
            pass
        finally:
            if too_long or pending:  # a last line without its newline
                self._put(None if too_long else bytes(pending))
            self._put(b"")


class AppServer:
    """Reads requests with :meth:`handle_line` (or :meth:`serve`) and answers through a :class:`MessageWriter`."""

    def __init__(self, options: AppServerOptions, output: BinaryIO) -> None:
        self.options = options
        self.config = options.config
        self.writer = MessageWriter(output)
        # Signal handling (SIGTERM, Ctrl-C): the handler may only interrupt the blocking read; anywhere else
        # (in the middle of writing a message, or of an import while a sign-in's threads run) it asks the loop
        # to stop after the current line instead, with ``stop_reason`` (interrupted or terminated).
        self.reading = False
        self.stop_requested = False
        self.stop_reason = "terminated"
        self._session: _Session | None = None
        self._lock = threading.Lock()
        self._active: _ActiveLogin | None = None
        #: Sign-ins whose completion has not been sent yet (the active one, and any cancelled or finished one
        #: whose waiter is still at work): a shutdown waits for each, so no client loses a completion.
        self._unsent: set[_ActiveLogin] = set()
        self._handlers: dict[str, Handler] = {
            "initialize": self._initialize,
            "account/read": self._account_read,
            "account/login/start": self._login_start,
            "account/login/cancel": self._login_cancel,
            "account/logout": self._logout,
        }

    # --- the loop ------------------------------------------------------------------------------------

    def serve(self, stream: BinaryIO) -> int:
        """Answer every line of ``stream`` until it ends (or the client stops reading); then shut down.

        Whatever ends the loop (end of input, a closed output, Ctrl-C, an exception from a signal
        handler), a running sign-in is cancelled and its completion sent before this returns or raises.
        The stream's file descriptor is read by a :class:`_LineReader` thread from here on.
        """
        reason = "shutdown"
        lines = _LineReader(stream.fileno())
        try:
            while not self.writer.closed.is_set() and not self.stop_requested:
                self.reading = True
                try:
                    if self.stop_requested:  # set between the loop's check and `reading` becoming true
                        break
                    line = lines.next_line(self.writer.closed)
                finally:
                    self.reading = False
                if line is None:
                    self.writer.error(None, PARSE_ERROR, f"Parse error: message longer than {MAX_LINE_BYTES} bytes")
                    continue
                if not line:
                    break
                self.handle_line(line)
        except KeyboardInterrupt:
            reason = "interrupted"
            raise
        except BaseException:
            reason = "terminated"
            raise
        finally:
            self.shutdown(self.stop_reason if self.stop_requested else reason)
        return 0

    def shutdown(self, reason: str = "shutdown") -> None:
        """Cancel a running sign-in and wait (bounded) until every completion still owed has been sent: also
        those of a sign-in cancelled or finished just before stdin closed, whose waiter was still at work."""
        self._cancel_active(reason)
        deadline = time.monotonic() + CANCEL_JOIN_SECONDS
        with self._lock:
            unsent = list(self._unsent)
        for login in unsent:
            login.answered.set()  # no answer is coming any more: the completion may go out now
            if login.waiter is not None and login.waiter is not threading.current_thread():
                login.waiter.join(max(0.0, deadline - time.monotonic()))

    def handle_line(self, line: bytes) -> None:
        """One line of input: a request, a notification, a response, or garbage. Never raises."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.writer.error(None, PARSE_ERROR, "Parse error: the line is not valid UTF-8")
            return
        if not text.strip():
            return
        try:
            message = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as err:
            self.writer.error(None, PARSE_ERROR, f"Parse error: {_clip(str(err))}")
            return
        if has_surrogate(message):
            # serde_json refuses the whole line; a lone surrogate let through (a client name, say) failed every
            # later sign-in of the session with an internal error (UnicodeEncodeError).
            self.writer.error(None, PARSE_ERROR, "Parse error: lone surrogate in a string")
            return
        if not isinstance(message, dict):
            self.writer.error(
                None, INVALID_REQUEST, "Invalid request: expected a JSON object (batches are not supported)"
            )
            return
        self._dispatch(message)

    def _dispatch(self, message: JsonObject) -> None:
        has_id = "id" in message
        raw_id = message.get("id")
        request_id: RequestId | None = None
        if has_id:
            if isinstance(raw_id, bool) or not isinstance(raw_id, int | str):
                self.writer.error(None, INVALID_REQUEST, "Invalid request: `id` must be a string or an integer")
                return
            request_id = raw_id
        method = message.get("method")
        if method is None:
            if has_id and ("result" in message or "error" in message):
                return  # a response to a server request; this server sends none, so there is nothing to match
            self.writer.error(request_id, INVALID_REQUEST, "Invalid request: missing field `method`")
            return
        if not isinstance(method, str):
            self.writer.error(request_id, INVALID_REQUEST, "Invalid request: `method` must be a string")
            return
        if request_id is None:
            return  # a notification (``initialized`` or anything else): nothing to answer
        params = message.get("params")
        try:
            handler = self._handlers.get(method)
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"Method not found: {_clip(method)}")
            if params is not None and not isinstance(params, dict):
                raise invalid_request(f"invalid type: {_json_kind(params)}, expected `params` to be an object")
            if method != "initialize" and self._session is None:
                raise RpcError(INVALID_REQUEST, "Not initialized")
            reply = handler(params)
        except RpcError as err:
            self.writer.error(request_id, err.code, err.message)
            return
        except Exception as err:  # one bad request must never end the server
            self.writer.error(request_id, INTERNAL_ERROR, f"Internal error: {type(err).__name__}")
            return
        # Exactly one answer per request; follow-ups (notifications, the login waiter) come after it.
        self.writer.respond(request_id, reply.result)
        if reply.then is not None:
            try:
                reply.then()
            except Exception as err:  # the answer is out; a failed follow-up must not end the server
                if self.options.notice is not None:
                    self.options.notice(f"app-server: follow-up of {_clip(method)} failed: {type(err).__name__}")

    # --- initialize ----------------------------------------------------------------------------------

    def _initialize(self, params: JsonObject | None) -> Reply:
        obj = _params_object(params, required=True)
        info = obj.get("clientInfo")
        if info is None:
            raise invalid_request("missing field `clientInfo`")
        if not isinstance(info, dict):
            raise invalid_request(f"invalid type: {_json_kind(info)}, expected `clientInfo` to be an object")
        name = _str_field(info, "name") or ""
        version = _str_field(info, "version") or ""
        _str_field(info, "title", required=False, nullable=True)
        capabilities = obj.get("capabilities")
        if capabilities is not None and not isinstance(capabilities, dict):
            raise invalid_request(f"invalid type: {_json_kind(capabilities)}, expected `capabilities` to be an object")
        if self._session is not None:
            raise RpcError(INVALID_REQUEST, "Already initialized")
        if not is_header_value(name):
            raise RpcError(
                INVALID_REQUEST,
                f"Invalid clientInfo.name: '{_clip(name)}'. Must be a valid HTTP header value.",
            )
        # As the reference: the client's name becomes the originator unless the override variable is set.
        originator = self.options.env.get(ORIGINATOR_OVERRIDE_ENV) or name or DEFAULT_ORIGINATOR
        self._session = _Session(client_name=name, client_version=version, originator=originator)
        return Reply(
            {
                "userAgent": user_agent(originator, name, version, self.options.env),
                "codexHome": str(self.config.codex_home),
                "platformFamily": platform_family(),
                "platformOs": platform_os(),
            }
        )

    # --- account/read --------------------------------------------------------------------------------

    def _load_auth(self) -> AuthDotJson | None:
        from .storage import load_auth

        try:
            return load_auth(self.config.codex_home, self.config.credentials_store.value)
        except LoginError as err:
            raise RpcError(INTERNAL_ERROR, f"failed to read credentials: {err}") from None

    def _account_read(self, params: JsonObject | None) -> Reply:
        obj = _params_object(params, required=False)
        _bool_field(obj, "refreshToken")  # validated; a refresh is never needed to describe the account
        account, user_id = account_view(self._load_auth())
        return Reply({"account": account, "userId": user_id, "requiresOpenaiAuth": True, "workspaceRouting": None})

    # --- sign-in -------------------------------------------------------------------------------------

    def _login_start(self, params: JsonObject | None) -> Reply:
        obj = _params_object(params, required=True)
        kind = _str_field(obj, "type")
        if kind == "apiKey":
            api_key = _str_field(obj, "apiKey")
            assert api_key is not None
            return self._login_api_key(api_key)
        if kind == "chatgpt":
            return self._login_chatgpt()
        raise invalid_request(f"unknown variant `{_clip(kind or '')}`, expected one of `apiKey`, `chatgpt`")

    def _login_api_key(self, api_key: str) -> Reply:
        if self.config.forced_login_method == "chatgpt":
            raise RpcError(INVALID_REQUEST, API_KEY_DISABLED)
        from .api_key import api_key_problem

        problem = api_key_problem(api_key.strip())
        if problem is not None:
            raise RpcError(INVALID_REQUEST, f"Invalid API key: {problem}")
        self._cancel_active("api_key_login")
        try:
            _save_api_key(self.config, api_key, self.options.notice)
        except LoginError as err:
            raise RpcError(INTERNAL_ERROR, f"failed to save api key: {err}") from None

        def notify() -> None:
            self._send_completed(None, success=True, error=None)
            self._send_account_updated()

        return Reply({"type": "apiKey"}, notify)

    def _login_chatgpt(self) -> Reply:
        from .diagnostics.record import new_attempt_id
        from .http import HttpSettings
        from .server import ServerOptions, run_login_server

        if self.config.forced_login_method == "api":
            raise RpcError(INVALID_REQUEST, CHATGPT_DISABLED)
        assert self._session is not None
        # One sign-in at a time, as the reference: the running one ends first ("Login was not completed"),
        # and its completion is sent before this request's answer. It also frees port 1455 for this one.
        self._cancel_active("superseded")
        options = ServerOptions(
            codex_home=self.config.codex_home,
            client_id=self.config.client_id,
            issuer=self.config.issuer,
            port=self.options.port,
            open_browser=self.options.open_browser,
            forced_chatgpt_workspace_id=self.config.forced_chatgpt_workspace_id,
            store_mode=self.config.credentials_store.value,
            originator=self._session.originator,
            timeout=self.options.login_timeout,
            http=HttpSettings(total_timeout=self.config.http_timeout),
            attempt_id=new_attempt_id(),
            notice=self.options.notice,
        )
        try:
            server = run_login_server(options)
        except LoginError as err:
            raise RpcError(INTERNAL_ERROR, f"failed to start login server: {err}") from None
        active = _ActiveLogin(login_id=str(uuid.uuid4()), server=server)
        # The waiter exists from the start (so a shutdown always has one to join), but sends nothing before
        # the answer is out: the client always sees loginId before its completion.
        active.waiter = threading.Thread(
            target=self._wait_for_login, args=(active,), name=f"codex-login-app-{active.login_id[:8]}", daemon=True
        )
        with self._lock:
            self._active = active
            self._unsent.add(active)
        start_thread(active.waiter)
        return Reply({"type": "chatgpt", "loginId": active.login_id, "authUrl": server.auth_url}, active.answered.set)

    def _wait_for_login(self, active: _ActiveLogin) -> None:
        error: str | None = None
        try:
            active.server.block_until_done(self.options.login_timeout + WAITER_GRACE_SECONDS)
        except LoginError as err:
            error = f"Login server error: {err}"
            self._report_failure(active, err)
        except TimeoutError:
            # The login server has its own timeout; this only guards against it never settling.
            _cancel_server(active.server, "timeout")
            error = "Login timed out"
        except Exception as err:
            error = f"Login server error: {type(err).__name__}"
        with self._lock:
            if self._active is active:
                self._active = None
        try:
            active.answered.wait(CANCEL_JOIN_SECONDS)
            self._send_completed(active.login_id, success=error is None, error=error)
            if error is None:
                self._send_account_updated()
        finally:
            with self._lock:
                self._unsent.discard(active)

    def _report_failure(self, active: _ActiveLogin, err: LoginError) -> None:
        """D-10 for the person reading stderr (editors keep it in their logs): which attempt to look up."""
        from .diagnostics.redact import sanitize_terminal_text

        if self.options.notice is None or err.failure_class == "cancelled":
            return
        attempt = err.attempt_id or active.server.attempt_id
        self.options.notice(
            f"Sign-in {active.login_id} failed: {sanitize_terminal_text(str(err), 2048)}. Attempt ID: {attempt}. "
            f"Run `codex-login log --attempt {attempt}` for the timeline."
        )

    def _cancel_active(self, reason: str) -> None:
        with self._lock:
            active, self._active = self._active, None
        if active is None:
            return
        # Requests are handled on this thread: the start answer is out already, or it never will be.
        active.answered.set()
        _cancel_server(active.server, reason)
        if active.waiter is not None and active.waiter is not threading.current_thread():
            active.waiter.join(CANCEL_JOIN_SECONDS)

    def _login_cancel(self, params: JsonObject | None) -> Reply:
        obj = _params_object(params, required=True)
        raw = _str_field(obj, "loginId") or ""
        try:
            login_id = str(uuid.UUID(raw))
        except ValueError:
            raise RpcError(INVALID_REQUEST, f"invalid login id: {_clip(raw)}") from None
        with self._lock:
            active = self._active
            found = active is not None and active.login_id == login_id
            if found:
                self._active = None
        if not found or active is None:
            return Reply({"status": "notFound"})
        cancelled = active
        # Answer first: the completion the cancel causes comes after it.
        return Reply({"status": "canceled"}, lambda: _cancel_server(cancelled.server, "client_cancel"))

    # --- logout --------------------------------------------------------------------------------------

    def _logout(self, params: JsonObject | None) -> Reply:
        self._cancel_active("logout")
        try:
            _logout(self.config, self.options.notice)
        except LoginError as err:
            raise RpcError(INTERNAL_ERROR, f"logout failed: {err}") from None
        return Reply({}, self._send_account_updated)

    # --- notifications -------------------------------------------------------------------------------

    def _send_completed(self, login_id: str | None, *, success: bool, error: str | None) -> None:
        self.writer.notify(
            "account/login/completed",
            {"loginId": login_id, "success": success, "error": error, "onboardingEntrypoint": None},
        )

    def _send_account_updated(self) -> None:
        try:
            auth = self._load_auth()
        except RpcError:
            auth = None
        self.writer.notify("account/updated", account_updated_params(auth))


def _cancel_server(server: LoginServer, reason: str) -> None:
    """Cancel inside the attempt's span: the cancel's events are logged from the caller's context."""
    from .diagnostics.record import attempt_span

    with attempt_span(server.attempt_id):
        server.cancel(reason)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _save_api_key(config: Config, api_key: str, notice: Callable[[str], None] | None) -> None:
    """Store the key in the configured store as one attempt of the log (flow ``api_key``). Raises LoginError."""
    from .api_key import login_with_api_key
    from .diagnostics import events
    from .diagnostics.record import attempt_span, new_attempt_id
    from .diagnostics.redact import sanitize_terminal_text

    attempt_id = new_attempt_id()
    started = time.monotonic()
    store = config.credentials_store.value
    warnings: list[str] = []
    with attempt_span(attempt_id):
        events.attempt_started(
            flow="api_key",
            issuer=config.issuer,
            client_id=config.client_id,
            store=store,
        )
        outcome, failure = "error", "error"
        try:
            login_with_api_key(config.codex_home, api_key, store, warnings=warnings)
            outcome, failure = "success", ""
        except LoginError as err:
            err.attempt_id = attempt_id
            failure = err.failure_class
            raise
        finally:
            duration_ms = int((time.monotonic() - started) * 1000)
            events.finished(outcome=outcome, failure_class=failure or None, duration_ms=duration_ms, flow="api_key")
    if notice is not None:
        for warning in warnings:
            notice(sanitize_terminal_text(warning, 1024))


def _logout(config: Config, notice: Callable[[str], None] | None) -> None:
    """Remove the credentials from every store, then revoke their tokens (best effort). Raises LoginError.

    As the reference's ``logout_with_revoke``; revocation problems are only reported on ``notice``.
    """
    from .account import logout_with_config

    result = logout_with_config(config)
    if notice is not None:
        for line in result.notices():
            notice(line)
