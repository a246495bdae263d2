"""``codex-login`` without a subcommand: the sign-in flows (browser by default, device code, API key)."""

from __future__ import annotations

import importlib
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_LOGIN_TIMEOUT_SECONDS, DEFAULT_PORT, Config
from ..diagnostics import events
from ..diagnostics.record import attempt_span, new_attempt_id
from ..errors import LoginCancelled, LoginError
from .common import attempt_footer, config_from_args, err

if TYPE_CHECKING:
    import argparse

    from ..environment import EnvironmentInfo
    from ..server import LoginServer, ServerOptions
    from ..terminal import TerminalPrinter

API_KEY_FLAG_REMOVED = (
    "The --api-key flag is no longer supported. Pipe the key instead, e.g. "
    "`printenv OPENAI_API_KEY | codex-login --with-api-key`."
)
CHATGPT_DISABLED = "ChatGPT login is disabled. Use API key login instead."
API_KEY_DISABLED = "API key login is disabled. Use ChatGPT login instead."


class Terminated(Exception):
    """SIGTERM arrived: stop the attempt cleanly (exit 143)."""

    #: What the attempt's ``login cancelled`` line says when this ends it while the port is bound.
    cancel_reason = "terminated"


def run(args: argparse.Namespace) -> int:
    # The reference's dispatch order (reference-spec §14.1): --device-auth before --api-key and --with-api-key,
    # so `--device-auth --with-api-key` is a device sign-in, as in `codex login`.
    if args.api_key is not None and not args.device_auth:
        err(API_KEY_FLAG_REMOVED)
        return 1
    config = config_from_args(args)
    if config is None:
        return 1
    if args.with_api_key and not args.device_auth:
        if config.forced_login_method == "chatgpt":
            err(API_KEY_DISABLED)
            return 1
        return _delegate("codex_login.commands.api_key:run", args, config)
    if config.forced_login_method == "api":
        err(CHATGPT_DISABLED)
        return 1
    if args.device_auth:
        return _delegate("codex_login.commands.device:run", args, config)
    return run_browser(args, config)


def _delegate(target: str, args: argparse.Namespace, config: Config) -> int:
    module_name, _, func = target.partition(":")
    code: int = getattr(importlib.import_module(module_name), func)(args, config)
    return code


def start_file_logging(config: Config) -> str | None:
    """reference-spec §14.4: the durable log for every sign-in command; warnings only, never fatal."""
    from ..diagnostics.logfile import init_login_file_logging

    handle = init_login_file_logging(config.log_dir, log_format=config.login_log_format)
    return str(handle.path) if handle.active and handle.path is not None else None


class _SignalsCancel:
    """Ctrl-C and SIGTERM while the login server runs: a request to cancel the attempt, not an exception.

    A signal's exception lands between any two bytecodes of the main thread. CPython's import machinery and
    logging's handlers take their locks as ``acquire(); try: ...``, so an exception raised right after the
    acquire leaves the lock held for good, and the server's threads (the worker imports httpx while the
    browser is away, the loop logs the outcome) then block on it: Ctrl-C right after the URL was printed
    hung for the worker's whole prepare wait (CI, about 1 run in 10). So once those threads may exist, the
    handler only asks the server to cancel (thread-safe, lock-free) and the main thread, woken by the
    outcome, reports the interruption at a known place. A second signal raises at once: the way out if
    the cancel itself never completes.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._server: LoginServer | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread; a library caller's thread keeps its own
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when Ctrl-C is ignored
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_signal)
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_signal)

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def watch(self, server: LoginServer) -> None:
        """From now on a signal cancels ``server`` (at once if one already came while it was starting)."""
        self._server = server
        if self.signum is not None:
            server.cancel(_stop_reason(self.signum))

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self._server is not None and first:
            self._server.cancel(_stop_reason(signum))
        elif self._server is not None or threading.active_count() == 1:
            # A second signal, or one while the main thread is still alone (binding the port, which can
            # take seconds when an earlier server has to be shut down first): raise, as Python would.
            raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
        # Otherwise the server's threads are starting: run_browser cancels it the moment it has it.


def _stop_reason(signum: int) -> str:
    return "interrupted" if signum == signal.SIGINT else "terminated"


def _signum_of(raised: BaseException) -> int:
    return signal.SIGINT if isinstance(raised, KeyboardInterrupt) else signal.SIGTERM


def run_browser(args: argparse.Namespace, config: Config, *, device_auth: bool = True) -> int:
    """The browser sign-in. ``device_auth`` False: the device-code sign-in is not available (``--device-auth``
    fell back to this flow because the issuer has none), so nothing printed suggests ``--device-auth``."""
    from ..http import HttpSettings
    from ..server import ServerOptions
    from ..terminal import TerminalPrinter

    # Every line of the flow goes through one printer, so the server's notices (from its threads) and the
    # waiting status never share a line with each other or with the authorize URL.
    out = TerminalPrinter()
    log_path = start_file_logging(config)
    attempt_id = new_attempt_id()
    timeout = DEFAULT_LOGIN_TIMEOUT_SECONDS if args.timeout is None else args.timeout
    with attempt_span(attempt_id):
        events.browser_login_flow_started()
        options = ServerOptions(
            codex_home=config.codex_home,
            client_id=config.client_id,
            issuer=config.issuer,
            port=DEFAULT_PORT if args.port is None else args.port,
            open_browser=not args.no_browser,
            forced_chatgpt_workspace_id=config.forced_chatgpt_workspace_id,
            store_mode=config.credentials_store.value,
            originator=config.originator,
            timeout=timeout or None,
            http=HttpSettings(total_timeout=config.http_timeout),
            attempt_id=attempt_id,
            notice=out.line,
            device_auth=device_auth,
        )
        stop = _SignalsCancel()
        stop.install()
        try:
            return _run_server(options, args, config, out, log_path=log_path, stop=stop, device_auth=device_auth)
        finally:
            stop.restore()


def _run_server(
    options: ServerOptions,
    args: argparse.Namespace,
    config: Config,
    out: TerminalPrinter,
    *,
    log_path: str | None,
    stop: _SignalsCancel,
    device_auth: bool,
) -> int:
    from ..diagnostics.advice import DEVICE_AUTH
    from ..server import run_login_server
    from ..terminal import log_environment, report_environment

    attempt_id = options.attempt_id
    environments: list[EnvironmentInfo] = []
    options.on_attempt_started = lambda: environments.append(log_environment())
    without = None if device_auth else DEVICE_AUTH
    try:
        server = run_login_server(options)
    except LoginError as exc:
        return _fail(exc, config, log_path, without=without)
    except (KeyboardInterrupt, Terminated) as raised:  # while the main thread was alone, binding the port
        return _interrupted(attempt_id, _signum_of(raised))
    stop.watch(server)
    deadline = time.monotonic() + options.timeout if options.timeout else None
    # From here on the server runs: a Ctrl-C or SIGTERM at any point must cancel it, so the attempt still
    # ends with its one "login finished" line (security H4, INV-5).
    try:
        out.line(f"Starting local login server on http://localhost:{server.actual_port}.")
        if args.no_browser:
            out.line("Open this URL in your browser to sign in:")
        else:
            out.line("If your browser did not open, navigate to this URL to authenticate:")
        out.line("")
        out.line(server.auth_url, shows_secrets=True)  # the user must be able to open it
        if device_auth:  # not after a fallback from --device-auth: the issuer just said it has no device sign-in
            out.line("")
            out.line(f"On a remote or headless machine? Use {DEVICE_AUTH} instead.")
        # Issue 6: say before waiting when the loopback callback likely cannot work here (SSH, container).
        report_environment(out, environments[0], port=server.actual_port, device_auth=device_auth)
        wait_for_outcome(server, out, deadline=deadline)
    except LoginError as exc:
        if stop.signum is None or not isinstance(exc, LoginCancelled):
            # A failure that came first is the outcome, signal or not.
            return _fail(exc, config, log_path, without=without)
        return _interrupted(attempt_id, stop.signum)
    except (KeyboardInterrupt, Terminated) as raised:  # a second signal: the first one's cancel is stuck
        stop.signum = stop.signum or _signum_of(raised)
        server.cancel(_stop_reason(stop.signum))
        try:
            server.block_until_done(5)
        except (LoginError, TimeoutError):
            pass
        return _interrupted(attempt_id, stop.signum)
    err("Successfully logged in")
    return 0


def _interrupted(attempt_id: str | None, signum: int) -> int:
    # SIGTERM says "terminated", as the device sign-in, the app server and the attempt's log do: a process ended by
    # a service manager or `kill` was not interrupted by its user.
    err(f"Error logging in: Login was not completed ({_stop_reason(signum)})")
    err(f"Attempt ID: {attempt_id}")
    return 130 if signum == signal.SIGINT else 143


def wait_for_outcome(server: object, printer: TerminalPrinter | None = None, *, deadline: float | None = None) -> None:
    """Block until the attempt ends; raises its LoginError. Ctrl-C reaches the caller as KeyboardInterrupt.

    Meanwhile the terminal shows a countdown to ``deadline`` (a ``time.monotonic()`` time; None = no limit)
    and takes a redirect URL pasted on stdin (issue 6); the status line is cleared on every way out.
    """
    from ..server import LoginServer
    from ..terminal import TerminalPrinter, wait_in_terminal

    assert isinstance(server, LoginServer)
    wait_in_terminal(server, printer or TerminalPrinter(), deadline=deadline)


def _fail(exc: LoginError, config: Config, log_path: str | None, *, without: str | None = None) -> int:
    from ..diagnostics.redact import sanitize_terminal_text

    err(f"Error logging in: {sanitize_terminal_text(str(exc))}")
    footer = attempt_footer(exc, config, log_path, without=without)
    if footer:
        err(footer)
    return 1
