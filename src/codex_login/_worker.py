"""The login server's worker thread, and the guard that lets a save in flight finish at exit.

:class:`Worker` runs a browser sign-in's blocking calls (the token exchange, the API-key exchange, the save) off
the server's asyncio loop; :data:`SAVES_IN_FLIGHT` is entered around each save of credentials, which runs in
that daemon thread, and waited for at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars

# Imported (it registers its shutdown with atexit; asyncio imports it too) before the registration below: atexit
# runs its functions last registered first, so a save in flight is waited for before logging's handlers are
# flushed and closed (tests/test_worker.py).
import logging  # noqa: F401
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ._threads import start_thread

if TYPE_CHECKING:
    from .http import HttpClient

_T = TypeVar("_T")


class Worker:
    """The thread that runs a sign-in's blocking calls, started while the browser is away.

    It first runs ``prepare`` (the HTTP client for the token exchange, see :meth:`LoginServer._prepare`),
    then runs what it is given with that client until :meth:`stop`: the callback wakes a waiting thread
    instead of starting one, which costs about half a millisecond on an idle machine (issue 9), and the
    client is closed once the answer to the callback is written, not while it is. A daemon thread: the
    interpreter does not join it at exit, so a Ctrl-C during a hung token exchange does not wait for the
    HTTP timeout (security H4).
    """

    def __init__(self, prepare: Callable[[], HttpClient], fallback: Callable[[], HttpClient]) -> None:
        self._jobs: queue.SimpleQueue[Callable[[HttpClient | Exception], None] | None] = queue.SimpleQueue()
        self._prepare = prepare
        self._fallback = fallback
        # Set once the HTTP client is built (TLS trust store loaded): see LoginServer.wait_prepared.
        self.prepared = threading.Event()
        self.thread = threading.Thread(target=self._work, daemon=True, name="codex-login-worker")
        start_thread(self.thread)

    def _work(self) -> None:
        client: HttpClient | Exception
        try:
            client = self._prepare()
        except Exception:  # warming up is best effort; a real problem shows in the exchange itself
            try:
                client = self._fallback()
            except Exception as err:  # no client at all (httpx missing? out of descriptors?): see below
                client = err
        finally:
            self.prepared.set()
        try:
            while (job := self._jobs.get()) is not None:
                if isinstance(client, Exception):
                    # Tried again for each job, not kept: what failed may have been passing (descriptors
                    # exhausted for a moment). If it fails again, the job fails with that, and none hangs.
                    try:
                        client = self._fallback()
                    except Exception as err:
                        client = err
                job(client)
        finally:
            if not isinstance(client, Exception):
                client.close()

    def run(
        self,
        func: Callable[[HttpClient], _T],
        then: Callable[[Callable[[], _T]], None],
        after: Callable[[], None] | None = None,
    ) -> None:
        """Hand ``func(client)`` to the worker thread now, in the caller's context. ``then`` gets its outcome
        (a function returning its value or raising its exception) on the caller's loop; ``after`` runs in
        the worker once ``then`` is scheduled (work the answer need not wait for)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()

        def job(client: HttpClient | Exception) -> None:
            try:
                if isinstance(client, Exception):
                    raise client
                value = context.run(func, client)
            except BaseException as err:  # handed to ``then``, which decides what it means
                failure = err

                def outcome() -> _T:
                    raise failure
            else:

                def outcome() -> _T:
                    return value

            try:
                # A copy: the worker enters ``context`` again for ``after`` while the loop runs ``then``.
                loop.call_soon_threadsafe(then, outcome, context=context.copy())
            except RuntimeError:
                pass  # the loop is closed: nobody waits for this answer any more
            if after is not None:
                context.run(after)

        self._jobs.put(job)

    def stop(self) -> None:
        """Once what it was given has run, close the client and end the thread."""
        self._jobs.put(None)


class SavesInFlight:
    """Saves of credentials running in daemon threads. The interpreter calls atexit functions before it
    stops daemon threads, so waiting here lets a save that a Ctrl-C interrupted finish, as it would in a
    thread the interpreter joins (its temporary file is never left behind)."""

    def __init__(self) -> None:
        self._running = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._running += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    def wait(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0)


SAVES_IN_FLIGHT = SavesInFlight()
atexit.register(SAVES_IN_FLIGHT.wait)
