"""``codex-login doctor [--json]``: sign-in health checks (see :mod:`codex_login.doctor`).

The report goes to stdout (text, or one JSON object ``{"checks": [...], "ok": bool}`` with ``--json``);
progress for the slow parts goes to stderr as a one-line spinner, and only when stderr is a terminal.
Colour only on a terminal, and never with ``NO_COLOR`` set or ``TERM=dumb`` (``terminal.terminal_mode``).
Exit 0 when no check failed, 1 otherwise (and 1 when the configuration cannot be loaded).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import TextIO

from .common import config_from_args

_FRAMES = "|/-\\"


class Spinner:
    """``| checking the issuer...`` redrawn in place on a terminal; does nothing when ``stream`` is not one.

    :meth:`update` only records the label (it is called from the checks and must never block); a daemon
    thread redraws. :meth:`stop` clears the line so the report starts on a clean one. The terminal's
    conventions are :func:`codex_login.terminal.terminal_mode`'s: redraw only on a terminal that is not
    ``TERM=dumb``, and clear with spaces instead of an escape sequence when ``NO_COLOR`` is set.
    """

    def __init__(self, stream: TextIO) -> None:
        from ..terminal import terminal_mode

        self.stream = stream
        self.mode = terminal_mode(stream)
        self._label = ""
        self._shown = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, label: str) -> None:
        self._label = label
        if self.mode.rewrite and self._thread is None:
            from .._threads import start_thread

            self._thread = threading.Thread(target=self._run, name="codex-login-spinner", daemon=True)
            start_thread(self._thread)

    def _run(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            self._show(f"{_FRAMES[frame % len(_FRAMES)]} {self._label}...")
            frame += 1

    def _show(self, text: str) -> None:
        if self.mode.escapes:
            self._write(f"\r{text}\x1b[K")
        else:
            self._write("\r" + text.ljust(self._shown))
        self._shown = len(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._write("\r\x1b[K" if self.mode.escapes else "\r" + " " * self._shown + "\r")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config is None:
        return 1
    from ..doctor import render_report, run_doctor
    from ..terminal import terminal_mode

    spinner = Spinner(sys.stderr)
    try:
        report = run_doctor(config, progress=spinner.update)
    finally:
        spinner.stop()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=True))
    else:
        sys.stdout.write(
            render_report(report, color=terminal_mode(sys.stdout).escapes, heading="codex-login doctor: sign-in checks")
        )
    sys.stdout.flush()
    return 0 if report.ok else 1
