"""The terminal while the browser sign-in waits: a countdown, pasted redirect URLs, and where we run.

Signing in from SSH, WSL, a container or a machine without a browser often fails because the browser that
signs in cannot reach ``http://localhost:PORT/auth/callback`` on this machine. This module is the terminal
side of the remedies:

* :class:`TerminalPrinter` serialises everything printed while the sign-in waits and keeps one status line
  (:func:`waiting_text`, a countdown). On a terminal the line is rewritten in place with ``\\r`` (plus
  erase-line unless ``NO_COLOR`` is set or ``TERM=dumb``), fitted to the width, and cleared before any other
  line; elsewhere (a pipe, a file) it is a plain line at the start and at most one a minute after that.
* :class:`PasteReader` reads stdin line by line on a daemon thread (lines capped at 16 KiB), so a redirect URL
  copied from the address bar of a browser that could not load it can be pasted instead. While it reads a
  terminal, the terminal's echo is off: the URL holds the authorization code and state and must not end up
  in the scrollback. The echo comes back on every way out, including a signal whose default action would end
  the process without running ``finally`` (SIGHUP, SIGQUIT): the terminal is restored first, then the signal
  ends the process as it would have. Job control too: Ctrl-Z (SIGTSTP) gives the terminal back before the
  process stops, and being resumed in the foreground (SIGCONT) turns the echo off again while still waiting.
* :func:`log_environment` logs the environment event; :func:`report_environment`, before waiting, says when
  the loopback callback likely cannot work here (SSH without a display, a container, no display), why, and
  what to do instead.
* :func:`wait_in_terminal` runs the wait: whichever comes first, the browser's callback or a pasted URL, wins.

Only the standard library is imported at import time.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TextIO

from ._threads import start_thread

if TYPE_CHECKING:
    from types import FrameType

    from .environment import EnvironmentInfo, Reachability
    from .server import LoginServer

__all__ = [
    "FATAL_SIGNALS",
    "JOB_CONTROL_SIGNALS",
    "MAX_PASTE_LINE",
    "PLAIN_REPEAT_SECONDS",
    "PasteReader",
    "PastedLine",
    "TerminalMode",
    "TerminalPrinter",
    "environment_lines",
    "format_remaining",
    "log_environment",
    "report_environment",
    "terminal_mode",
    "wait_in_terminal",
    "waiting_text",
]

#: The longest stdin line taken as a paste; a real redirect URL is well under 1 KiB.
MAX_PASTE_LINE: Final = 16 * 1024
#: On a stream that is not a terminal the waiting line is repeated at most this often (logs stay short).
PLAIN_REPEAT_SECONDS: Final = 60.0
#: How often the wait loop looks at the outcome, the pasted lines and the clock.
POLL_SECONDS: Final = 0.1
#: Columns assumed when the terminal does not say (a fresh pseudo-terminal reports 0).
DEFAULT_COLUMNS: Final = 80
ERASE_LINE: Final = "\x1b[2K"
# A terminal that has bracketed paste switched on wraps pasted text in these; they are not part of the URL.
_BRACKETED_PASTE: Final = ("\x1b[200~", "\x1b[201~")
_CALLBACK_PATH: Final = "/auth/callback"
_READ_CHUNK: Final = 4096
#: Signals whose default action ends the process at once, without ``finally``: while the echo is off, those still
#: at their default action restore the terminal first and then end the process as they would have.
FATAL_SIGNALS: Final = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM")
#: Job control while the echo is off (those still at their default action): SIGTSTP (Ctrl-Z) restores the terminal
#: and then stops the process as it would have; SIGCONT (``fg``) turns the echo off again. Without them the shell
#: that takes the terminal back at Ctrl-Z gives it back with the echo on, and a secret pasted after ``fg`` shows.
JOB_CONTROL_SIGNALS: Final = ("SIGTSTP", "SIGCONT")


# --------------------------------------------------------------------------------------------------
# What the terminal can do


@dataclass(frozen=True)
class TerminalMode:
    """How the waiting status may be shown on a stream.

    ``rewrite``: the stream is a terminal, so one status line is rewritten in place with ``\\r``.
    ``escapes``: ANSI escape sequences (erase-line) may be written too.
    """

    rewrite: bool
    escapes: bool


def _isatty(stream: TextIO | None) -> bool:
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def terminal_mode(stream: TextIO | None, env: Mapping[str, str] = os.environ) -> TerminalMode:
    """Rewrite in place only on a terminal that is not ``TERM=dumb``; no escapes when ``NO_COLOR`` is set
    (https://no-color.org: present and not empty)."""
    rewrite = _isatty(stream) and env.get("TERM", "") != "dumb"
    return TerminalMode(rewrite=rewrite, escapes=rewrite and not env.get("NO_COLOR", ""))


def terminal_columns(stream: TextIO, env: Mapping[str, str] = os.environ) -> int:
    """The terminal's width: asked of the terminal each time (it may be resized), else ``COLUMNS``, else 80."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = int(env.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    return columns if columns > 0 else DEFAULT_COLUMNS


# --------------------------------------------------------------------------------------------------
# The status text


def format_remaining(seconds: float) -> str:
    """``599.2`` -> ``"10:00"``, ``62`` -> ``"1:02"``, ``3725`` -> ``"1:02:05"`` (rounded up, never negative)."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def waiting_text(remaining: float | None, *, paste: bool, columns: int | None = None) -> str:
    """The waiting status; ``remaining`` None means no time limit, ``paste`` whether stdin is read.

    With ``columns`` the text is fitted to ``columns - 1`` characters (shorter wording first, then cut), so
    it never wraps: a wrapped line cannot be rewritten in place with ``\\r``.
    """
    left = f" ({format_remaining(remaining)} left)" if remaining is not None else ""
    variants = [
        f"Waiting for the browser to finish signing in{left}."
        + (" Paste the redirect URL here if the page could not load." if paste else ""),
        f"Waiting for the browser{left}." + (" Or paste the redirect URL here." if paste else ""),
        f"Waiting for the browser{left}.",
    ]
    if columns is None:
        return variants[0]
    limit = max(columns - 1, 1)
    for text in variants:
        if len(text) <= limit:
            return text
    return variants[-1][:limit]


# --------------------------------------------------------------------------------------------------
# Printing


class TerminalPrinter:
    """Everything the browser sign-in prints to stderr, and the one waiting status line.

    Thread-safe: the server's notices ("Could not open a browser with ...", token exchange errors) arrive
    from its threads while the main thread updates the countdown. Each line is written in one call, so
    nothing ever shares a line with another line, the authorize URL included.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._env: Mapping[str, str] = os.environ if env is None else env
        self.mode = terminal_mode(self.stream, self._env)
        self._clock = clock
        self._lock = threading.RLock()
        self._shown: str | None = None  # the status line on screen now (terminal only)
        self._last_plain: float | None = None

    @property
    def stream(self) -> TextIO | None:
        # sys.stderr at the time of writing, so a replaced stderr (tests, embedding) is honoured; None when the
        # process started with stderr closed.
        return self._stream if self._stream is not None else sys.stderr

    def columns(self) -> int | None:
        """The width to fit the status to, or None when the status is not rewritten in place."""
        stream = self.stream
        return terminal_columns(stream, self._env) if self.mode.rewrite and stream is not None else None

    def line(self, text: str, *, shows_secrets: bool = False) -> None:
        """Print one line. On a terminal the status line is cleared first and drawn again below it.

        Registered secrets are scrubbed from it (the last net before the terminal, DECISIONS §4), except from a
        line that must show them: the authorize URL, with its state and challenge (``shows_secrets``).
        """
        if not shows_secrets:
            from .diagnostics.redact import SECRETS

            text = SECRETS.scrub(text)
        with self._lock:
            status = self._shown
            self._erase()
            self._write(text + "\n")
            if status is not None:
                self._draw(status)

    def status(self, text: str) -> None:
        """Show the waiting status: rewritten in place on a terminal (only when it changed); elsewhere one
        line now and then at most one per :data:`PLAIN_REPEAT_SECONDS`."""
        with self._lock:
            if self.mode.rewrite:
                if text != self._shown:
                    self._draw(text)
                return
            now = self._clock()
            if self._last_plain is None or now - self._last_plain >= PLAIN_REPEAT_SECONDS:
                self._last_plain = now
                self._write(text + "\n")

    def clear(self) -> None:
        """Remove the status line (the cursor is left at the start of the now empty line)."""
        with self._lock:
            self._erase()

    def _draw(self, text: str) -> None:
        if self.mode.escapes:
            self._write("\r" + ERASE_LINE + text)
        else:
            # No escapes allowed: overwrite what was there with spaces instead of erasing it.
            previous = len(self._shown or "")
            self._write("\r" + text + " " * max(previous - len(text), 0))
        self._shown = text

    def _erase(self) -> None:
        if self._shown is None:
            return
        if self.mode.escapes:
            self._write("\r" + ERASE_LINE)
        else:
            self._write("\r" + " " * len(self._shown) + "\r")
        self._shown = None

    def _write(self, data: str) -> None:
        stream = self.stream
        if stream is None:
            return  # started with stderr closed (`2>&-`: sys.stderr is None): the sign-in itself goes on
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr is gone (a closed pipe): the sign-in itself goes on


# --------------------------------------------------------------------------------------------------
# Reading pasted lines


@dataclass(frozen=True)
class PastedLine:
    """One line read from stdin (decoded, trimmed); ``too_long`` when it exceeded the cap and was dropped."""

    text: str
    too_long: bool = False


def _clean_line(raw: bytes | bytearray) -> str:
    text = raw.decode("utf-8", "replace")
    for marker in _BRACKETED_PASTE:
        text = text.replace(marker, "")
    return text.strip()


def _foreground_or_unknown(fd: int) -> bool:
    """False only when ``fd`` is our controlling terminal and we are a background job: reading it would
    stop the whole process (SIGTTIN), sign-in included."""
    if not hasattr(os, "tcgetpgrp"):
        return True
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True  # not our controlling terminal: job control does not apply


def _block_job_control_signals() -> None:
    """In the reading thread: SIGTTIN blocked, so that a read of the terminal from the background fails (EIO)
    rather than stopping the process; SIGTSTP and SIGCONT blocked, so that they go to the main thread (which runs
    their handlers) instead of interrupting the read."""
    import signal

    names = ("SIGTTIN", "SIGTSTP", "SIGCONT")
    signals = {getattr(signal, name) for name in names if hasattr(signal, name)}
    if signals and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)


class PasteReader:
    """Reads stdin line by line on a daemon thread into :attr:`lines`.

    Reads the file descriptor directly (no Python buffer lock for a daemon thread to hold at exit). Lines are
    capped at ``max_line`` bytes: a longer line is dropped whole and reported as ``too_long`` at its end.
    End of file (or a read error) just stops reading; it never ends the sign-in. Nothing is read when stdin
    is closed, is ``/dev/null``, or is the terminal of a background job.
    """

    def __init__(self, fd: int = 0, *, max_line: int = MAX_PASTE_LINE) -> None:
        self.fd = fd
        self.max_line = max_line
        self.lines: queue.Queue[PastedLine] = queue.Queue()
        self._started = False
        self._eof = threading.Event()
        self._stopped = threading.Event()
        self._continued = threading.Event()  # set on SIGCONT: a read refused in the background may be retried
        self._saved_tty: list[Any] | None = None
        self._quiet = False  # the echo is meant to be off now (what SIGCONT brings back)
        self._fatal_taken: list[int] = []

    @staticmethod
    def readable(fd: int) -> bool:
        """Whether ``fd`` is worth reading for pasted lines."""
        try:
            info = os.fstat(fd)
        except (OSError, ValueError):
            return False  # closed
        try:
            if os.path.samestat(info, os.stat(os.devnull)):
                return False  # nohup, cron, `< /dev/null`: nobody can paste
        except OSError:
            pass
        return not os.isatty(fd) or _foreground_or_unknown(fd)

    @property
    def reading(self) -> bool:
        """Started and not at end of file (nor stopped): a paste can still arrive."""
        return self._started and not self._eof.is_set() and not self._stopped.is_set()

    def start(self) -> bool:
        """Start reading; returns whether it did."""
        if self._started or not self.readable(self.fd):
            return False
        self._started = True
        self._hide_echo()
        start_thread(threading.Thread(target=self._run, name="codex-login-paste-reader", daemon=True))
        return True

    def stop(self) -> None:
        """Stop taking lines (the thread may stay blocked in read until exit) and give the echo back."""
        self._stopped.set()
        self._continued.set()  # a reader waiting to be in the foreground again ends
        self._restore_echo()

    def _put(self, line: PastedLine) -> None:
        if not self._stopped.is_set():
            self.lines.put(line)

    def _run(self) -> None:
        pending = bytearray()
        dropping = False  # inside a line that went over the cap: skip to its end
        _block_job_control_signals()
        try:
            while not self._stopped.is_set():
                try:
                    chunk = os.read(self.fd, _READ_CHUNK)
                except OSError as exc:
                    if self._wait_for_foreground(exc):
                        continue
                    break
                if not chunk:
                    break
                start = 0
                while True:
                    end = chunk.find(b"\n", start)
                    piece = chunk[start:] if end < 0 else chunk[start:end]
                    if not dropping:
                        if len(pending) + len(piece) > self.max_line:
                            dropping = True
                            pending.clear()
                        else:
                            pending += piece
                    if end < 0:
                        break
                    self._put(PastedLine("", too_long=True) if dropping else PastedLine(_clean_line(pending)))
                    pending = bytearray()
                    dropping = False
                    start = end + 1
            # A last line without a newline (`printf URL | codex-login`) still counts.
            if dropping:
                self._put(PastedLine("", too_long=True))
            elif pending:
                self._put(PastedLine(_clean_line(pending)))
        finally:
            self._eof.set()

    def _wait_for_foreground(self, exc: OSError) -> bool:
        """After a read failed: whether to read again. A read of our terminal from the background (`bg` after
        Ctrl-Z) fails with EIO, SIGTTIN being blocked in this thread, instead of stopping the whole process,
        sign-in included; reading resumes once the process is continued in the foreground (``fg``: SIGCONT)."""
        import errno

        if exc.errno != errno.EIO or _foreground_or_unknown(self.fd):
            return False  # a real failure (the terminal hung up): stop reading
        while not self._stopped.is_set() and not _foreground_or_unknown(self.fd):
            self._continued.clear()
            if _foreground_or_unknown(self.fd):  # again: the SIGCONT may have come just before the clear
                break
            self._continued.wait()
        return not self._stopped.is_set()

    def _hide_echo(self) -> None:
        if not os.isatty(self.fd):
            return
        try:
            import termios
        except ImportError:  # Windows: no termios; the console echoes as it always does
            return
        try:
            saved = termios.tcgetattr(self.fd)
        except (termios.error, OSError):
            return
        self._saved_tty = saved
        # Before the echo goes off, so no signal can end the process between the two with the echo left off.
        self._take_fatal_signals()
        self._quiet = True
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, self._quiet_attributes(saved))
        except (termios.error, OSError):
            self._restore_echo()

    @staticmethod
    def _quiet_attributes(saved: list[Any]) -> list[Any]:
        import termios

        quiet = list(saved)
        quiet[3] &= ~termios.ECHO  # lflag; canonical mode stays on, so lines still arrive on Enter
        return quiet

    def _restore_echo(self) -> None:
        saved = self._saved_tty
        if saved is None:
            return
        self._quiet = False  # first: a SIGCONT from here on must not turn the echo off again
        self._set_tty(saved)
        self._release_fatal_signals()
        self._saved_tty = None  # last: a signal that comes before this still finds the state to restore

    def _set_tty(self, attributes: list[Any]) -> None:
        import signal
        import termios

        # Restoring from a job that was moved to the background would stop it (SIGTTOU) unless blocked.
        blocked = hasattr(signal, "pthread_sigmask") and hasattr(signal, "SIGTTOU")
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU}) if blocked else None
        try:
            termios.tcsetattr(self.fd, termios.TCSANOW, attributes)
        except (termios.error, OSError):
            pass
        finally:
            if previous is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _take_fatal_signals(self) -> None:
        """While the echo is off, each of :data:`FATAL_SIGNALS` that still has its default action (which ends
        the process without running any ``finally``) gives the terminal back first; handlers set by someone
        else (the sign-in's own for Ctrl-C and SIGTERM) are left alone: they end the wait through ``stop``.
        So are :data:`JOB_CONTROL_SIGNALS` still at their default action: the terminal is given back before a stop
        and the echo turned off again on resuming."""
        import signal

        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread
        handlers: dict[str, Callable[[int, FrameType | None], None]] = {
            "SIGTSTP": self._on_stop_signal,
            "SIGCONT": self._on_continue_signal,
        }
        for name in (*FATAL_SIGNALS, *JOB_CONTROL_SIGNALS):
            signum = getattr(signal, name, None)
            if signum is None:
                continue  # Windows has no SIGHUP, SIGQUIT, SIGTSTP nor SIGCONT
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, handlers.get(name, self._on_fatal_signal))
                self._fatal_taken.append(signum)

    def _release_fatal_signals(self) -> None:
        import signal

        taken, self._fatal_taken = self._fatal_taken, []
        ours = (self._on_fatal_signal, self._on_stop_signal, self._on_continue_signal)
        for signum in taken:
            if signal.getsignal(signum) in ours:  # not when someone replaced it since
                signal.signal(signum, signal.SIG_DFL)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Ctrl-Z: give the terminal back, then stop as the default action would (``raise_signal`` returns once
        the process is continued), and take the signal again for the next Ctrl-Z."""
        import signal

        saved = self._saved_tty
        if saved is not None:
            self._set_tty(saved)
        signal.signal(signum, signal.SIG_DFL)
        try:
            signal.raise_signal(signum)  # stopped here; a process group without a shell (orphaned) is not stopped
        finally:
            if self._quiet and signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, self._on_stop_signal)
        # Continued (or never stopped): the echo goes off again, as on SIGCONT.
        self._hide_again()
        self._continued.set()

    def _on_continue_signal(self, _signum: int, _frame: FrameType | None) -> None:
        """Resumed (``fg``, ``bg``, or after any stop such as SIGSTOP): turn the echo off again when still waiting."""
        self._hide_again()
        self._continued.set()

    def _hide_again(self) -> None:
        saved = self._saved_tty
        # In the background (`bg`) the terminal is the shell's: leave it as it is; `fg` sends SIGCONT again.
        if self._quiet and saved is not None and _foreground_or_unknown(self.fd):
            self._set_tty(self._quiet_attributes(saved))

    def _on_fatal_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Give the terminal back, then let the signal do what it would have done: back to the default action
        and raised anew, so the process still ends "killed by signal N" (with a core dump for SIGQUIT)."""
        import signal

        saved = self._saved_tty
        if saved is not None:
            self._set_tty(saved)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)  # ends the process here (unless this thread blocks it: then when unblocked)


# --------------------------------------------------------------------------------------------------
# Where we run


def _clean(text: str) -> str:
    from .diagnostics.redact import sanitize_terminal_text

    # The container kind comes from the environment (`container=`): outside text, one line only.
    return sanitize_terminal_text(text, 1024)


def environment_lines(reach: Reachability, *, port: int) -> list[str]:
    """What to tell the user before waiting: why the callback likely cannot work here, what to do instead,
    and caveats (WSL 2, editor port forwarding). Empty when there is nothing to say."""
    lines: list[str] = []
    if reach.likely_unreachable:
        lines.append(f"Warning: signing in with a browser will probably not reach http://localhost:{port} here:")
        lines.extend(f"  - {_clean(reason)}" for reason in reach.reasons)
        if reach.suggestion:
            lines.append(_clean(reach.suggestion).rstrip(".") + ".")
    lines.extend(f"Note: {_clean(note).rstrip('.')}." for note in reach.notes)
    return ["", *lines] if lines else []


def log_environment(env: Mapping[str, str] | None = None) -> EnvironmentInfo:
    """Detect where we run and log it: one ``login environment`` event. Call it inside the attempt span and
    before the login server starts, so that the event comes before the server's (the catalogue's order) and
    never after the attempt's ``login finished`` (a /cancel can end an attempt as soon as it serves)."""
    from .diagnostics import events
    from .environment import detect_environment

    info = detect_environment(os.environ if env is None else env)
    events.environment(
        ssh=info.ssh,
        wsl=info.wsl,
        container=info.container,
        display=info.display,
        browser_env=info.browser_env is not None,
    )
    return info


def report_environment(
    printer: TerminalPrinter, info: EnvironmentInfo, *, port: int, device_auth: bool = True
) -> Reachability:
    """Print :func:`environment_lines`: before waiting, whether the loopback callback can work here
    (suggesting ``--device-auth`` only when ``device_auth``)."""
    from .environment import assess_callback_reachability

    reach = assess_callback_reachability(info, port=port, device_auth=device_auth)
    for line in environment_lines(reach, port=port):
        printer.line(line)
    return reach


# --------------------------------------------------------------------------------------------------
# The wait


def _handle_paste(server: LoginServer, printer: TerminalPrinter, pasted: PastedLine) -> None:
    from .diagnostics import events
    from .diagnostics.redact import sanitize_terminal_text

    if pasted.too_long:
        events.pasted_url_received(accepted=False)
        printer.line(
            f"Ignored a pasted line longer than {MAX_PASTE_LINE // 1024} KiB: it is not a redirect URL. Still waiting."
        )
        return
    if not pasted.text:
        return  # an empty Enter: nothing to check
    if _CALLBACK_PATH in pasted.text:
        # The token exchange may take a few seconds; say that the paste arrived (never what it was).
        printer.line("Checking the pasted redirect URL...")
    verdict = server.submit_redirect_url(pasted.text)
    if verdict.accepted or server.done:
        return  # the attempt's outcome is printed by the caller
    message = sanitize_terminal_text(verdict.message, 512).rstrip(".")
    printer.line(f"Pasted text not accepted ({message}). Still waiting for the browser or a pasted redirect URL.")


def wait_in_terminal(
    server: LoginServer,
    printer: TerminalPrinter,
    *,
    deadline: float | None,
    stdin_fd: int | None = 0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Block until the attempt ends, showing the countdown to ``deadline`` (a ``clock`` time; None = no
    limit) and taking redirect URLs pasted on ``stdin_fd`` (None = do not read stdin).

    Raises the attempt's :class:`~codex_login.errors.LoginError`; Ctrl-C reaches the caller as
    KeyboardInterrupt. The status line is cleared and the terminal's echo restored on every way out.
    """
    reader = PasteReader(stdin_fd) if stdin_fd is not None else None
    if reader is not None:
        reader.start()
    try:
        printer.line("")
        while True:
            remaining = None if deadline is None else deadline - clock()
            paste = reader is not None and reader.reading
            printer.status(waiting_text(remaining, paste=paste, columns=printer.columns()))
            try:
                server.block_until_done(POLL_SECONDS)
                return
            except TimeoutError:
                pass
            while reader is not None and not server.done:
                try:
                    pasted = reader.lines.get_nowait()
                except queue.Empty:
                    break
                _handle_paste(server, printer, pasted)
    finally:
        if reader is not None:
            reader.stop()
        printer.clear()
