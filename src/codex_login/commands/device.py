"""``codex-login --device-auth``: device-code sign-in, with the browser fallback of reference-spec §14.5.

The prompt (verification URL and user code) goes to stdout, as the reference prints it; everything else goes
to stderr. When the issuer has no device login, ``Device code login is not enabled; falling back to browser
login.`` is printed and the browser sign-in runs without opening a browser (the reference's fallback sets
``open_browser = false``: whoever asked for a device code is usually on a machine without one).
"""

from __future__ import annotations

import argparse
import copy
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from ..config import Config
from ..diagnostics import events
from ..diagnostics.record import attempt_span, new_attempt_id
from ..diagnostics.redact import sanitize_terminal_text
from ..errors import LoginError
from .common import attempt_footer, err
from .login import run_browser, start_file_logging

FALLBACK_NOTICE = "Device code login is not enabled; falling back to browser login."


def _stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM ends the attempt like Ctrl-C, as a cancellation the attempt logs (reason ``terminated``).

    Returns the function that puts the previous handler back.
    """
    from ..device_code import DeviceLoginStopped

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise DeviceLoginStopped("terminated")

    previous = signal.signal(signal.SIGTERM, on_term)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def run(args: argparse.Namespace, config: Config) -> int:
    from ..device_code import (
        DeviceCode,
        DeviceCodeNotEnabled,
        DeviceLoginOptions,
        DeviceLoginStopped,
        render_device_prompt,
        run_device_code_login,
        stream_supports_color,
    )
    from ..http import HttpSettings

    log_path = start_file_logging(config)
    attempt_id = new_attempt_id()

    def show(code: DeviceCode) -> None:
        out = sys.stdout
        if out is None:  # started with stdout closed (`>&-`): Python then has no sys.stdout at all
            raise LoginError("could not print the device code on stdout: it is closed", failure_class="error")
        try:
            out.write(render_device_prompt(code, color=stream_supports_color(out)))
            out.flush()
        except (OSError, ValueError) as exc:  # stdout closed: nobody can see the code, stop now
            raise LoginError(f"could not print the device code on stdout: {exc}", failure_class="error") from None

    with attempt_span(attempt_id):
        events.device_login_flow_started()
        options = DeviceLoginOptions(
            codex_home=config.codex_home,
            issuer=config.issuer,
            client_id=config.client_id,
            forced_chatgpt_workspace_id=config.forced_chatgpt_workspace_id,
            store_mode=config.credentials_store.value,
            http=HttpSettings(total_timeout=config.http_timeout),
            attempt_id=attempt_id,
            notice=err,
        )
        restore_sigterm = _stop_on_sigterm()
        try:
            run_device_code_login(options, on_code=show)
        except DeviceCodeNotEnabled:
            fallback = True
        except DeviceLoginStopped as stop:
            err(f"Error logging in with device code: Login was not completed ({stop.reason})")
            err(f"Attempt ID: {attempt_id}")
            return 143 if stop.reason == "terminated" else 1
        except LoginError as exc:
            err(f"Error logging in with device code: {sanitize_terminal_text(str(exc))}")
            footer = attempt_footer(exc, config, log_path)
            if footer:
                err(footer)
            return 1
        except KeyboardInterrupt:
            err("Error logging in with device code: Login was not completed (interrupted)")
            err(f"Attempt ID: {attempt_id}")
            return 130
        else:
            fallback = False
        finally:
            restore_sigterm()
    if fallback:
        err(FALLBACK_NOTICE)
        browser_args = copy.copy(args)
        browser_args.no_browser = True
        return run_browser(browser_args, config, device_auth=False)
    err("Successfully logged in")
    return 0
