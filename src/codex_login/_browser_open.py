"""Opening the browser on a sign-in's authorize URL, in a thread of its own (DECISIONS D-11 for what it logs).

An opener may take up to 2 s (a ``BROWSER`` command, ``xdg-open``), and the login server serves meanwhile: the
sign-in never waits for it. It knows the sign-in only through :class:`BrowserAttempt`: whether the attempt is
over, its authorize URL, and the two calls that keep the opener's event before the attempt's final one.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ._threads import start_thread
from .diagnostics import events
from .diagnostics.redact import redact_urls_in_text, sanitize_terminal_text

if TYPE_CHECKING:
    from .server import ServerOptions


class BrowserAttempt(Protocol):
    """What the opener needs of a running browser sign-in (:class:`~codex_login.server.LoginServer`)."""

    @property
    def done(self) -> bool:
        """Whether the attempt has ended: a thread that starts after that opens nothing."""
        ...

    @property
    def auth_url(self) -> str:
        """The URL to open (it holds the state: an opener's error text is logged without it)."""
        ...

    def opener_starting(self, name: str | None) -> bool:
        """An opener (``name`` when known before it returns) is about to run; False once the attempt has ended,
        and then it is not run."""
        ...

    def opener_returned(self, log: Callable[[], None]) -> bool:
        """The opener returned: ``log`` its outcome unless the attempt's final event is out already (then False,
        and nothing of it is reported)."""
        ...


def _loggable_browser_error(error: str | None, auth_url: str) -> str:
    """An opener's error text as the log may hold it: without the authorize URL it was handed.

    Our openers keep the URL out of their errors, but a library caller's opener returns any text
    (``str(CalledProcessError)`` lists the argv), and a command's stderr may echo the URL: the URL itself
    goes, and any other URL form left is redacted with R-2's extended keys.
    """
    if not error:
        return "unknown"
    return redact_urls_in_text(error.replace(auth_url, "<authorize URL>"), extended=True)


def open_browser_in_background(server: BrowserAttempt, options: ServerOptions) -> None:
    def open_it() -> None:
        # A sign-in cancelled (or ended) before this thread ran opens no tab for a server that is gone, and
        # logs nothing after the attempt's final event (D-11).
        if server.done:
            return
        opener = options.browser_opener
        if opener is None:
            from .environment import choose_browser_opener, detect_environment, open_browser

            info = detect_environment()
            choice = choose_browser_opener(info)
            if choice is None:
                server.opener_returned(lambda: events.browser_not_opened(reason="no_browser_available"))
                return
            if not server.opener_starting(choice.name):
                return
            result = open_browser(server.auth_url, choice)
            ok, name, error = result.ok, result.opener_name, result.error
        else:
            if not server.opener_starting(None):  # a caller's opener names itself only when it returns
                return
            ok, name, error = opener(server.auth_url)
        if ok:
            server.opener_returned(lambda: events.browser_opened(opener=name))
            return
        reason = _loggable_browser_error(error, server.auth_url)
        # The opener may wait up to 2 s: an attempt that ended meanwhile reports nothing of it.
        if server.opener_returned(lambda: events.browser_failed(opener=name, reason=reason)) and options.notice:
            options.notice(sanitize_terminal_text(f"Could not open a browser with {name}: {error}", 512))

    ctx = contextvars.copy_context()
    start_thread(threading.Thread(target=ctx.run, args=(open_it,), daemon=True, name="codex-login-browser"))
