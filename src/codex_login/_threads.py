"""Starting the package's threads so that SIGINT and SIGTERM reach the main thread.

Python runs signal handlers in the main thread only, but the kernel may deliver a process's signal to any
thread that does not block it; a main thread blocked in a system call is then not interrupted and runs the
handler only when the call returns. Every thread the package starts therefore blocks both signals (a thread
inherits the mask of the thread that starts it, so it is set around ``start()``), and the main thread's waits
are interrupted by them. A signal that lands just before a blocking call is still handled only after it:
waits that must react to signals also use a timeout (``app_server._LineReader``, the CLI's 0.1 s polls).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

T = TypeVar("T")

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def start_thread(thread: threading.Thread) -> None:
    """``thread.start()`` with SIGINT and SIGTERM blocked in the new thread."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: signals are not delivered to threads there
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def call_with_timeout(
    func: Callable[[], T], timeout: float, name: str
) -> tuple[threading.Thread, T | None, BaseException | None]:
    """Run ``func`` in a daemon thread (started by :func:`start_thread`) and wait at most ``timeout`` seconds.

    Returns the thread, and ``func``'s result or the exception it raised. A thread still alive has not
    finished: its call is abandoned, never joined, and the result and exception are None.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(func())
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    start_thread(thread)
    thread.join(timeout)
    if thread.is_alive():
        return thread, None, None
    return thread, (result[0] if result else None), (failure[0] if failure else None)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held, not acted on, while the block runs in the main thread: a save of credentials
    that has begun finishes, and its outcome is the sign-in's.

    The device and API-key sign-ins save in the main thread, where a signal's handler raises anywhere: a
    Ctrl-C just after the rename reported "not completed" (exit 130) with the new credentials saved. On the
    way out the handlers come back; a signal held is then raised again if the block failed (the stop goes on
    as it would have), and dropped if it succeeded: the credentials are saved and the sign-in says so, as the
    browser sign-in does once its save has begun (``LoginServer._commit``). Elsewhere than in the main thread
    (where no handler can be set) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[signal.Signals, signal._HANDLER] = {}
    succeeded = False
    try:
        for stop in (signal.SIGINT, signal.SIGTERM):
            previous[stop] = signal.signal(stop, hold)
        yield
        succeeded = True
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, signal.SIG_DFL if handler is None else handler)
        if held and not succeeded:
            signal.raise_signal(held[0])
