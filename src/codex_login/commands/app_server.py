"""``codex-login app-server``: the sign-in API as JSON-RPC lines on stdin/stdout (see ``codex_login.app_server``).

stdout carries protocol only. Before anything runs, the protocol streams are moved to private descriptors:
fd 1 then points at stderr and fd 0 at the null device, so a stray ``print``, a library warning or a
``BROWSER`` command (which inherits the standard descriptors) can neither corrupt the protocol nor eat
its input.

Logging: the durable log file as for ``codex-login`` (``$CODEX_HOME/log/codex-login.log``), plus the same
lines on stderr when ``CODEX_LOGIN_LOG_STDERR=1``. Never stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import BinaryIO

from .common import config_from_args, err

LOG_STDERR_ENV = "CODEX_LOGIN_LOG_STDERR"


class _Terminated(BaseException):
    """SIGTERM arrived during the read: stop reading, cancel a running sign-in, exit 143.

    A BaseException, like KeyboardInterrupt, so no request handler's error handling can swallow it.
    """


def _take_protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """Private duplicates of stdin/stdout for the protocol; fd 0 -> null device, fd 1 -> stderr."""
    sys.stdout.flush()
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    null_fd = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null_fd, 0)
    finally:
        os.close(null_fd)
    os.dup2(2, 1)
    # Python-level writes to sys.stdout now land on stderr too (fd 1 is stderr's file).
    return proto_in, proto_out


def _start_logging(config: object) -> None:
    from ..config import Config
    from .login import start_file_logging

    assert isinstance(config, Config)
    start_file_logging(config)
    if os.environ.get(LOG_STDERR_ENV) == "1":
        from ..diagnostics.logfile import attach_stream_handler

        attach_stream_handler(sys.stderr, config.login_log_format, os.environ)


def run(args: argparse.Namespace) -> int:
    from ..app_server import AppServer, options_from_env

    config = config_from_args(args)
    if config is None:
        return 1
    try:
        options = options_from_env(config, os.environ, notice=err)
    except ValueError as exc:
        err(f"Error: {exc}")
        return 1
    _start_logging(config)
    try:
        proto_in, proto_out = _take_protocol_streams()
    except OSError as exc:
        err(f"Error: cannot use stdin/stdout for the protocol: {exc.strerror or exc}")
        return 1
    server = AppServer(options, proto_out)

    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            interrupted = signum == signal.SIGINT
            if server.reading:
                raise KeyboardInterrupt() if interrupted else _Terminated()
            # Mid-message: raising here could tear a half-written line, or strand a lock a sign-in's threads
            # need (an import's, a log handler's); stop after the current line instead.
            server.stop_reason = "interrupted" if interrupted else "terminated"
            server.stop_requested = True

        signal.signal(signal.SIGTERM, on_signal)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when Ctrl-C is ignored
            signal.signal(signal.SIGINT, on_signal)
    try:
        code = server.serve(proto_in)
        if server.stop_requested:
            return 130 if server.stop_reason == "interrupted" else 143
        return code
    except _Terminated:
        return 143
    finally:
        for stream in (proto_in, proto_out):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
