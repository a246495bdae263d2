"""Starting the package's threads so that SIGINT and SIGTERM reach the main thread.

Python runs signal handlers in the main thread only, but the kernel may deliver a process's signal to any
thread that does not block it; a main thread blocked in a system call is then not interrupted and runs the
handler only when the call returns. Every thread the package starts therefore blocks both signals (a thread
inherits the mask of the thread that starts it, so it is set around ``start()``), and the main thread's waits
are interrupted by them. A signal that lands just before a blocking call is still handled only after it:
waits that must react to signals also use a timeout (``app_server._LineReader``, the CLI's 0.1 s polls).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
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
