"""A scripted headless browser that can stand in for the user's browser.

Run as ``python tests/support/browser_agent.py URL`` (which is what ``BROWSER`` makes Python's
``webbrowser`` module do). It opens URL in headless system Chromium through Playwright and acts on
the test issuer's pages as the environment says:

``E2E_SCRIPT``
    ``signin`` (default): log in on the login page, then press Continue on the consent page.
    ``cancel_login``: press ``[ Cancel ]`` on the login page.
    ``cancel_consent``: log in, then press ``[ Cancel ]`` on the consent page.
    ``device``: enter ``E2E_USER_CODE`` on a device-code page (the issuer's Codex-style
    ``/codex/device`` page or oidc-provider's ``/device`` page), confirm, then sign in.
    ``open_only``: only load the URL.
    ``intercept_callback``: sign in like ``signin``, but stop the provider's redirect to the loopback
    ``/auth/callback`` inside the browser: the callback URL is written to ``callback_url.txt`` and the
    browser shows a stand-in page instead, so the sign-in client never receives it (the test delivers it).
``E2E_LOGIN`` (default ``alice``), ``E2E_PASSWORD`` (default ``password``)
``E2E_TIMEOUT`` seconds for the whole flow (default 30)
``E2E_RESULT_DIR`` where the results go (default: a new temporary directory)
``E2E_ISSUER`` the issuer origin (default: the origin of URL); the flow is done when the page is on a
    loopback origin that is not the issuer's (the sign-in client's loopback server)
``E2E_STUCK_SECONDS`` how long a page with nothing to do may sit before giving up (default 5)

Results, written when the flow ends (also on failure, as far as they can be had): ``final_url.txt``,
``page.html``, ``page.txt``, ``screenshot.png``, ``callback_url.txt`` (``intercept_callback`` only, written
when the callback is stopped), ``status.txt`` (HTTP status of the last main-frame navigation; absent when
that navigation got no response, e.g. connection refused: then ``result.json`` has ``"status": null`` and
the last ``navigations`` entry a ``failure``), ``error.txt`` (only on failure), ``agent.log`` (everything
the agent, Playwright and Chromium printed: the agent never writes to the stdout/stderr it inherited,
which belong to the process that opened the browser), and last ``result.json`` (a summary; its presence
means "finished").

An issuer error page (oidc-provider's "oops! something went wrong", e.g. for a redirect_uri it does not
allow) ends a flow at once as a failure; ``open_only`` just records it.

The exit status is 0 when the flow reached its end, 1 otherwise; a watchdog ends the process (exit 3)
if it outlives its timeout by more than 20 seconds.

Importable helpers for tests: :func:`browser_command`, :func:`agent_env`, :func:`run_agent`,
:func:`wait_for_result`, :func:`read_result`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if __package__ in (None, ""):
    # Run as a script: make ``tests.support`` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.chromium import is_loopback_url, launch_context, require_chromium, throwaway_profile

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request, Response, Route

AGENT_PATH = Path(__file__).resolve()
SCRIPTS = ("signin", "cancel_login", "cancel_consent", "device", "open_only", "intercept_callback")
RESULT_FILE = "result.json"
CALLBACK_URL_FILE = "callback_url.txt"
#: What the browser shows instead of the intercepted loopback callback.
INTERCEPTED_PAGE = (
    "<!DOCTYPE html><html><head><title>Callback intercepted</title></head>"
    "<body><h1>callback intercepted by the test browser</h1></body></html>"
)
WATCHDOG_GRACE_SECONDS = 20.0
MAX_ACTIONS = 12


# ---------------------------------------------------------------------------
# Helpers for tests
# ---------------------------------------------------------------------------


def browser_command(python: str | None = None) -> str:
    """The value for ``BROWSER``: ``<python> <this file> %s`` (absolute paths).

    ``webbrowser`` splits ``BROWSER`` on ``os.pathsep`` and, for an entry containing ``%s``, runs
    ``shlex.split(entry)`` with the URL substituted, then waits for the command to exit.
    """
    exe = python or sys.executable
    for part in (exe, str(AGENT_PATH)):
        if os.pathsep in part:
            raise ValueError(f"BROWSER cannot hold a path containing {os.pathsep!r}: {part}")
    return f"{shlex.quote(exe)} {shlex.quote(str(AGENT_PATH))} %s"


def agent_env(
    result_dir: str | os.PathLike[str],
    *,
    script: str = "signin",
    login: str = "alice",
    password: str = "password",
    timeout: float = 30.0,
    user_code: str | None = None,
    issuer: str | None = None,
) -> dict[str, str]:
    """The ``E2E_*`` variables that steer the agent (merge them into a subprocess environment)."""
    if script not in SCRIPTS:
        raise ValueError(f"unknown E2E_SCRIPT {script!r}; expected one of {SCRIPTS}")
    env = {
        "E2E_SCRIPT": script,
        "E2E_LOGIN": login,
        "E2E_PASSWORD": password,
        "E2E_TIMEOUT": str(timeout),
        "E2E_RESULT_DIR": str(result_dir),
    }
    if user_code is not None:
        env["E2E_USER_CODE"] = user_code
    if issuer is not None:
        env["E2E_ISSUER"] = issuer
    return env


@dataclass(frozen=True)
class AgentResult:
    """What one agent run left in its result directory."""

    result_dir: Path
    ok: bool
    script: str
    final_url: str
    status: int | None
    error: str | None
    elapsed: float
    navigations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def html(self) -> str:
        return _read_text(self.result_dir / "page.html")

    @property
    def text(self) -> str:
        return _read_text(self.result_dir / "page.txt")

    @property
    def screenshot(self) -> Path:
        return self.result_dir / "screenshot.png"

    @property
    def log(self) -> str:
        return _read_text(self.result_dir / "agent.log")

    @property
    def callback_url(self) -> str:
        """The loopback callback URL an ``intercept_callback`` run stopped ("" if none was seen)."""
        return _read_text(self.result_dir / CALLBACK_URL_FILE).strip()

    def describe(self) -> str:
        """A multi-line summary for assertion messages."""
        return (
            f"browser agent {self.script}: ok={self.ok} status={self.status} final_url={self.final_url}\n"
            f"error={self.error}\nactions={self.actions}\nnavigations={self.navigations}\n"
            f"page text:\n{self.text[:2000]}\nagent log (tail):\n{self.log[-3000:]}"
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_result(result_dir: str | os.PathLike[str]) -> AgentResult:
    """Read ``result.json`` (raises FileNotFoundError when the agent has not finished)."""
    directory = Path(result_dir)
    data = json.loads((directory / RESULT_FILE).read_text(encoding="utf-8"))
    return AgentResult(
        result_dir=directory,
        ok=bool(data["ok"]),
        script=str(data["script"]),
        final_url=str(data["final_url"]),
        status=data["status"],
        error=data["error"],
        elapsed=float(data["elapsed"]),
        navigations=list(data["navigations"]),
        actions=list(data["actions"]),
    )


def wait_for_result(result_dir: str | os.PathLike[str], timeout: float) -> AgentResult:
    """Wait until an agent (e.g. one started by the CLI through ``BROWSER``) has written its result."""
    directory = Path(result_dir)
    deadline = time.monotonic() + timeout
    while True:
        if (directory / RESULT_FILE).exists():
            return read_result(directory)
        if time.monotonic() > deadline:
            log = _read_text(directory / "agent.log")
            raise TimeoutError(
                f"browser agent wrote no {RESULT_FILE} in {directory} within {timeout} s; "
                f"agent.log tail:\n{log[-3000:]}"
            )
        time.sleep(0.05)


def run_agent(
    url: str,
    result_dir: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    script: str = "signin",
    login: str = "alice",
    timeout: float = 30.0,
    user_code: str | None = None,
    issuer: str | None = None,
) -> AgentResult:
    """Run the agent as a subprocess (as ``webbrowser`` would) and return its result."""
    full_env = dict(os.environ if env is None else env)
    full_env.update(
        agent_env(result_dir, script=script, login=login, timeout=timeout, user_code=user_code, issuer=issuer)
    )
    argv = [sys.executable, str(AGENT_PATH), url]
    subprocess.run(
        argv,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout + WATCHDOG_GRACE_SECONDS + 10,
        check=False,
    )
    return read_result(result_dir)


# ---------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------


class AgentError(RuntimeError):
    """The flow could not be completed."""


@dataclass
class AgentConfig:
    url: str
    script: str
    login: str
    password: str
    timeout: float
    result_dir: Path
    issuer_origin: str
    user_code: str | None
    stuck_seconds: float

    @classmethod
    def from_env(cls, url: str, env: Mapping[str, str]) -> AgentConfig:
        script = env.get("E2E_SCRIPT", "signin")
        if script not in SCRIPTS:
            raise AgentError(f"unknown E2E_SCRIPT {script!r}; expected one of {SCRIPTS}")
        result_dir = env.get("E2E_RESULT_DIR") or tempfile.mkdtemp(prefix="browser-agent-")
        return cls(
            url=url,
            script=script,
            login=env.get("E2E_LOGIN", "alice"),
            password=env.get("E2E_PASSWORD", "password"),
            timeout=float(env.get("E2E_TIMEOUT", "30")),
            result_dir=Path(result_dir),
            issuer_origin=_origin(env.get("E2E_ISSUER") or url),
            user_code=env.get("E2E_USER_CODE"),
            stuck_seconds=float(env.get("E2E_STUCK_SECONDS", "5")),
        )


@dataclass
class Outcome:
    final_url: str = ""
    status: int | None = None
    error: str | None = None
    navigations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{host}:{port}"


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.outcome = Outcome()
        self.started = time.monotonic()
        self.deadline = self.started + config.timeout

    # -- time ---------------------------------------------------------------

    def remaining_ms(self) -> float:
        return max(1.0, (self.deadline - time.monotonic()) * 1000.0)

    # -- flow ---------------------------------------------------------------

    def is_done(self, page: Page) -> bool:
        url = page.url
        if url.startswith("chrome-error://"):
            return True
        if self.config.script == "device":
            path = urlsplit(url).path
            if path.startswith("/deviceauth/callback"):
                return True
            try:
                return page.title() == "Sign-in Success"
            except Exception:
                return False
        return is_loopback_url(url) and _origin(url) != self.config.issuer_origin

    def next_action(self, page: Page) -> tuple[str, Callable[[], None]] | None:
        script = self.config.script

        def present(selector: str) -> bool:
            return page.locator(selector).count() > 0

        cancel_link = page.locator("a", has_text="Cancel")

        if present('button[form="op.deviceConfirmForm"]'):
            return "confirm_device", lambda: page.locator(
                'button[autofocus][form="op.deviceConfirmForm"]'
            ).first.click()

        code_input = "input[name=user_code]:not([type=hidden])"
        if script == "device" and present(code_input):
            code = self.config.user_code
            if not code:
                raise AgentError("E2E_SCRIPT=device needs E2E_USER_CODE")

            def enter_code() -> None:
                field_ = page.locator(code_input).first
                field_.fill(code)
                field_.press("Enter")

            return "enter_user_code", enter_code

        if present("input[name=login]"):
            if script == "cancel_login":
                return "cancel_login", lambda: cancel_link.first.click()

            def log_in() -> None:
                page.locator("input[name=login]").first.fill(self.config.login)
                page.locator("input[name=password]").first.fill(self.config.password)
                page.locator("form button[type=submit]").first.click()

            return "login", log_in

        if present("input[name=prompt][value=consent]"):
            if script == "cancel_consent":
                return "cancel_consent", lambda: cancel_link.first.click()
            return "consent", lambda: page.locator("form button[type=submit]", has_text="Continue").first.click()

        return None

    def act(self, page: Page, name: str, action: Callable[[], None]) -> None:
        from playwright.sync_api import Error as PlaywrightError

        self.outcome.actions.append(name)
        print(f"[agent] {time.monotonic() - self.started:6.2f}s action {name} on {page.url}", flush=True)
        try:
            with page.expect_navigation(wait_until="load", timeout=self.remaining_ms()):
                action()
        except PlaywrightError as exc:
            # e.g. the loopback server refused the connection: the page is now chrome-error://
            print(f"[agent] navigation after {name} failed: {exc}", flush=True)

    def drive(self, page: Page) -> None:
        from playwright.sync_api import Error as PlaywrightError

        config = self.config
        try:
            page.goto(config.url, wait_until="load", timeout=self.remaining_ms())
        except PlaywrightError as exc:
            print(f"[agent] initial navigation failed: {exc}", flush=True)
        if config.script == "open_only":
            return

        idle_since: float | None = None
        last_url = ""
        while True:
            if time.monotonic() > self.deadline:
                raise AgentError(f"flow {config.script!r} did not finish in {config.timeout} s; at {page.url}")
            if self.is_done(page):
                try:
                    page.wait_for_load_state("load", timeout=self.remaining_ms())
                except PlaywrightError as exc:
                    print(f"[agent] final load state: {exc}", flush=True)
                if page.url.startswith("chrome-error://"):
                    last = self.outcome.navigations[-1] if self.outcome.navigations else {"url": config.url}
                    raise AgentError(
                        f"navigation to {last['url']} failed: {last.get('failure') or 'browser error page'}"
                    )
                return
            if _is_issuer_error_page(page):
                raise AgentError(f"the issuer showed an error page at {page.url}: {_body_text(page)[:500]!r}")
            if len(self.outcome.actions) >= MAX_ACTIONS:
                raise AgentError(f"too many steps ({self.outcome.actions}); at {page.url}")
            step = self.next_action(page)
            if step is not None and step[0] == "enter_user_code" and self.outcome.actions[-1:] == [step[0]]:
                raise AgentError(f"the user code was not accepted at {page.url}: {_body_text(page)[:300]!r}")
            if step is not None:
                idle_since = None
                self.act(page, *step)
                continue
            if page.url != last_url:
                last_url = page.url
                idle_since = time.monotonic()
            elif idle_since is not None and time.monotonic() - idle_since > config.stuck_seconds:
                raise AgentError(
                    f"nothing to do for flow {config.script!r} on {page.url} "
                    f"(title {page.title()!r}) after {config.stuck_seconds} s"
                )
            page.wait_for_timeout(100)

    def capture(self, page: Page) -> None:
        directory = self.config.result_dir
        self.outcome.final_url = page.url
        _write_text(directory / "final_url.txt", page.url + "\n")
        getters: list[tuple[str, Callable[[], str]]] = [
            ("page.html", page.content),
            ("page.txt", lambda: page.inner_text("body", timeout=5_000)),
        ]
        for name, getter in getters:
            try:
                _write_text(directory / name, getter())
            except Exception as exc:
                print(f"[agent] could not capture {name}: {exc}", flush=True)
        try:
            page.screenshot(path=str(directory / "screenshot.png"), full_page=True, timeout=10_000)
        except Exception as exc:
            print(f"[agent] could not take a screenshot: {exc}", flush=True)

    def intercept_callback(self, context: BrowserContext, page: Page) -> None:
        """Stop the redirect to the loopback callback and keep its URL (``intercept_callback``).

        Playwright's ``page.route`` never sees the hops of a redirect chain, and the callback is reached
        by the provider's 303, so this uses Chromium's own Fetch interception, which pauses every hop.
        """
        import base64

        directory = self.config.result_dir
        cdp = context.new_cdp_session(page)
        body = base64.b64encode(INTERCEPTED_PAGE.encode("utf-8")).decode("ascii")

        def on_paused(event: dict[str, Any]) -> None:
            url = str(event["request"]["url"])
            if not (directory / CALLBACK_URL_FILE).exists():
                _write_text(directory / CALLBACK_URL_FILE, url + "\n")
            print(f"[agent] {time.monotonic() - self.started:6.2f}s intercepted the loopback callback", flush=True)
            cdp.send(
                "Fetch.fulfillRequest",
                {
                    "requestId": event["requestId"],
                    "responseCode": 200,
                    "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"}],
                    "body": body,
                },
            )

        cdp.on("Fetch.requestPaused", on_paused)
        patterns = [
            {"urlPattern": f"http://{host}:*/auth/callback*", "requestStage": "Request"}
            for host in ("localhost", "127.0.0.1", "[::1]")
        ]
        cdp.send("Fetch.enable", {"patterns": patterns})

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        require_chromium()
        with sync_playwright() as pw, throwaway_profile() as profile:
            print(f"[agent] {time.monotonic() - self.started:6.2f}s playwright started", flush=True)
            context = launch_context(pw, profile, timeout_ms=self.remaining_ms())
            print(f"[agent] {time.monotonic() - self.started:6.2f}s chromium launched", flush=True)
            try:
                context.route("**/*", _loopback_only)
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(self.remaining_ms())

                def on_response(response: Response) -> None:
                    if response.request.is_navigation_request() and response.frame == page.main_frame:
                        self.outcome.navigations.append({"url": response.url, "status": response.status})

                def on_request_failed(request: Request) -> None:
                    if request.is_navigation_request() and request.frame == page.main_frame:
                        self.outcome.navigations.append(
                            {"url": request.url, "status": None, "failure": request.failure}
                        )

                page.on("response", on_response)
                page.on("requestfailed", on_request_failed)
                if self.config.script == "intercept_callback":
                    self.intercept_callback(context, page)
                try:
                    self.drive(page)
                finally:
                    self.outcome.status = self.outcome.navigations[-1]["status"] if self.outcome.navigations else None
                    if self.outcome.status is not None:
                        _write_text(self.config.result_dir / "status.txt", f"{self.outcome.status}\n")
                    self.capture(page)
            finally:
                context.close()


def _is_issuer_error_page(page: Page) -> bool:
    """oidc-provider's error page (e.g. a redirect_uri it does not allow: no redirect happens)."""
    try:
        return page.title() == "oops! something went wrong"
    except Exception:
        return False


def _body_text(page: Page) -> str:
    try:
        return page.inner_text("body", timeout=2_000)
    except Exception:
        return ""


def _loopback_only(route: Route) -> None:
    """Let the browser reach loopback servers only (the pages' web fonts and the like are dropped)."""
    url = route.request.url
    if is_loopback_url(url) or not url.startswith(("http://", "https://")):
        route.continue_()
    else:
        route.abort("blockedbyclient")


def _redirect_output(result_dir: Path) -> None:
    """Send our (and our children's) stdout/stderr to agent.log and read stdin from /dev/null."""
    log_fd = os.open(result_dir / "agent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.close(null_fd)


def _write_result(config: AgentConfig, outcome: Outcome, started: float) -> None:
    directory = config.result_dir
    if outcome.error is not None:
        _write_text(directory / "error.txt", outcome.error)
    data = {
        "ok": outcome.error is None,
        "script": config.script,
        "url": config.url,
        "final_url": outcome.final_url,
        "status": outcome.status,
        "error": outcome.error,
        "elapsed": round(time.monotonic() - started, 3),
        "navigations": outcome.navigations,
        "actions": outcome.actions,
    }
    tmp = directory / (RESULT_FILE + ".tmp")
    _write_text(tmp, json.dumps(data, indent=2) + "\n")
    tmp.replace(directory / RESULT_FILE)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in {"-h", "--help"}:
        sys.stderr.write(f"usage: {Path(argv[0]).name} URL   (steered by E2E_* variables; see the docstring)\n")
        return 2
    started = time.monotonic()
    try:
        config = AgentConfig.from_env(argv[1], os.environ)
    except (AgentError, ValueError) as exc:
        sys.stderr.write(f"browser_agent: {exc}\n")
        return 2
    config.result_dir.mkdir(parents=True, exist_ok=True)
    _redirect_output(config.result_dir)
    print(f"[agent] pid {os.getpid()} script {config.script} url {config.url}", flush=True)

    agent = Agent(config)

    def watchdog() -> None:
        message = f"watchdog: the agent outlived its {config.timeout} s timeout; killed\n"
        agent.outcome.error = message
        try:
            _write_result(config, agent.outcome, started)
        finally:
            os._exit(3)

    timer = threading.Timer(config.timeout + WATCHDOG_GRACE_SECONDS, watchdog)
    timer.daemon = True
    timer.start()
    try:
        agent.run()
    except BaseException as exc:
        agent.outcome.error = "".join(traceback.format_exception(exc))
        print(agent.outcome.error, flush=True)
    finally:
        timer.cancel()
        _write_result(config, agent.outcome, started)
    print(f"[agent] finished in {time.monotonic() - started:.2f}s error={agent.outcome.error is not None}", flush=True)
    return 0 if agent.outcome.error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
