"""Fixtures for the end-to-end tests: the test issuer, a private CODEX_HOME, and a CLI environment.

* ``issuer`` (session): a running :class:`support.issuer.TestIssuer`; it is reset before every test
  that uses it, so overrides, counters and account claims never leak between tests.
* ``codex_home`` (test): an empty CODEX_HOME directory.
* ``cli_env`` (test): a factory that builds the environment for running ``codex-login`` as a subprocess
  (private HOME/XDG dirs, no proxies, ``BROWSER`` = the scripted browser agent).
* ``codex_login`` (test): runs the ``codex-login`` console script of the current interpreter
  (``run`` to completion, ``start`` a bare Popen, or ``spawn`` a :class:`RunningLogin` whose stderr is
  read line by line).

Helpers: :func:`read_login_log` (the CLI's ``codex-login.log`` parsed), :func:`assert_in_order`,
:func:`save_screenshot` (into ``test-output/screenshots/``).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from codex_login.diagnostics.format import ParsedLine, parse_text_line
from tests.support.browser_agent import AgentResult, agent_env, browser_command, wait_for_result
from tests.support.issuer import TestIssuer

DROPPED_VARS = frozenset({"RUST_LOG", "DISPLAY", "WAYLAND_DISPLAY"})
NO_PROXY = "127.0.0.1,localhost,::1"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Screenshots the end-to-end tests take of real pages (git-ignored; CI can keep them as artifacts).
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "screenshots"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestIssuer]:
    """The test issuer, started once per session (``npm ci`` first if node_modules is missing)."""
    log_path = tmp_path_factory.mktemp("issuer") / "issuer.log"
    test_issuer = TestIssuer(log_path=log_path)
    test_issuer.start()
    try:
        yield test_issuer
    finally:
        test_issuer.stop()


@pytest.fixture(autouse=True)
def _reset_issuer(request: pytest.FixtureRequest) -> None:
    """Give every test that uses the issuer a clean one (no overrides, zero counters)."""
    if "issuer" in request.fixturenames:
        test_issuer: TestIssuer = request.getfixturevalue("issuer")
        test_issuer.reset()


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    """An empty CODEX_HOME for this test."""
    home = tmp_path / "codex_home"
    home.mkdir(mode=0o700)
    return home


def codex_login_executable() -> Path:
    """The ``codex-login`` console script installed beside the current interpreter."""
    return Path(sys.prefix) / "bin" / "codex-login"


@dataclass
class CliEnv:
    """An environment for one ``codex-login`` run (or several sharing a CODEX_HOME)."""

    env: dict[str, str]
    codex_home: Path
    home: Path
    browser_results: Path
    extra: dict[str, str] = field(default_factory=dict)

    def browser_result(self, timeout: float = 60.0) -> AgentResult:
        """Wait for the browser agent that the CLI started through BROWSER, and return its result."""
        return wait_for_result(self.browser_results, timeout)


CliEnvFactory = Callable[..., CliEnv]


def build_cli_env(
    root: Path,
    codex_home: Path,
    *,
    script: str = "signin",
    login: str = "alice",
    browser_timeout: float = 30.0,
    user_code: str | None = None,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> CliEnv:
    """Build the environment for a ``codex-login`` subprocess (see :func:`cli_env`)."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.lower().endswith("_proxy") or key.startswith(("CODEX_", "E2E_")) or key in DROPPED_VARS:
            del env[key]

    home = root / "home"
    results = root / "browser"
    for directory in (home, home / ".config", home / ".cache", home / ".local" / "share", home / ".local" / "state"):
        directory.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)

    env.update(
        {
            "CODEX_HOME": str(codex_home),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "NO_PROXY": NO_PROXY,
            "no_proxy": NO_PROXY,
            "BROWSER": browser_command(),
            "PYTHONUNBUFFERED": "1",
            # No real keyring is ever touched: the same "no backend" answer as on a bare CI machine.
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
    )
    env.update(agent_env(results, script=script, login=login, timeout=browser_timeout, user_code=user_code))
    if extra:
        env.update(extra)
    return CliEnv(env=env, codex_home=codex_home, home=home, browser_results=results, extra=dict(extra or {}))


@pytest.fixture
def cli_env(tmp_path: Path, codex_home: Path) -> CliEnvFactory:
    """Factory: ``cli_env(script="signin", login="alice", browser_timeout=30, user_code=None, extra={})``.

    Every call makes a fresh HOME and browser-result folder under the test's tmp_path; all calls share
    the test's ``codex_home`` unless ``codex_home=`` is given.
    """
    counter = iter(range(1_000_000))

    def make(
        *,
        script: str = "signin",
        login: str = "alice",
        browser_timeout: float = 30.0,
        user_code: str | None = None,
        codex_home: Path = codex_home,
        extra: Mapping[str, str] | None = None,
    ) -> CliEnv:
        root = tmp_path / f"cli-env-{next(counter)}"
        return build_cli_env(
            root,
            codex_home,
            script=script,
            login=login,
            browser_timeout=browser_timeout,
            user_code=user_code,
            extra=extra,
        )

    return make


class CodexLogin:
    """Runs the ``codex-login`` console script as a subprocess."""

    def __init__(self, executable: Path) -> None:
        self.executable = executable

    def argv(self, args: Sequence[str]) -> list[str]:
        if not self.executable.exists():
            raise RuntimeError(
                f"{self.executable} does not exist: install the package into this interpreter "
                "(pip install -e '.[test]')"
            )
        return [str(self.executable), *args]

    def run(
        self,
        args: Sequence[str],
        env: CliEnv,
        *,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion; stdout and stderr are captured as text."""
        return subprocess.run(
            self.argv(args),
            env=env.env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn(self, args: Sequence[str], env: CliEnv) -> RunningLogin:
        """Start in the background and read its stderr line by line (see :class:`RunningLogin`)."""
        return RunningLogin(self.start(args, env))

    def start(self, args: Sequence[str], env: CliEnv) -> subprocess.Popen[str]:
        """Start in the background (stdin /dev/null, stdout/stderr pipes); the caller must reap it."""
        return subprocess.Popen(
            self.argv(args),
            env=env.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )


@pytest.fixture
def codex_login() -> CodexLogin:
    """Runner for the ``codex-login`` console script (from ``sys.prefix``/bin)."""
    return CodexLogin(codex_login_executable())


class RunningLogin:
    """A ``codex-login`` running in the background; its stdout and stderr are drained on threads.

    Always end it with :meth:`finish` or :meth:`kill` (both bounded).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._new_stderr: queue.Queue[str | None] = queue.Queue()
        assert proc.stderr is not None and proc.stdout is not None
        self._pumps = [
            threading.Thread(target=self._pump, args=(proc.stderr, self.stderr_lines, True), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stdout, self.stdout_lines, False), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: IO[str], into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if announce:
                self._new_stderr.put(line.rstrip("\n"))
        if announce:
            self._new_stderr.put(None)

    def wait_for_line(self, needle: str, timeout: float = 30.0) -> str:
        """The first new stderr line containing ``needle``; raises if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no stderr line containing {needle!r} in {timeout} s; stderr:\n{self.stderr}")
            try:
                line = self._new_stderr.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError(f"codex-login ended before printing {needle!r}; stderr:\n{self.stderr}")
            if needle in line:
                return line

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the exit status (killing the process if it outlives ``timeout``) and drain its output."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"codex-login did not exit within {timeout} s; stderr:\n{self.stderr}") from None
        for pump in self._pumps:
            pump.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def stdout(self) -> str:
        return "\n".join(self.stdout_lines)


# ---------------------------------------------------------------------------
# The durable log and screenshots
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLogFile:
    """``$CODEX_HOME/log/codex-login.log`` as written by the subprocesses of a test."""

    path: Path
    lines: list[str]
    events: list[ParsedLine]

    def for_attempt(self, attempt_id: str) -> list[ParsedLine]:
        return [event for event in self.events if event.attempt == attempt_id]

    def raw_for_attempt(self, attempt_id: str) -> list[str]:
        return [line for line in self.lines if f"login{{attempt={attempt_id}}}: " in line]

    def attempt_ids(self) -> list[str]:
        """Attempt IDs in the order their first line appears."""
        seen: dict[str, None] = {}
        for event in self.events:
            if event.attempt is not None:
                seen.setdefault(event.attempt, None)
        return list(seen)


def read_login_log(codex_home: Path) -> LoginLogFile:
    """Read and parse the text log (every line must parse: one event is one line)."""
    path = codex_home / "log" / "codex-login.log"
    lines = path.read_text(encoding="utf-8").splitlines()
    events: list[ParsedLine] = []
    for line in lines:
        parsed = parse_text_line(line)
        assert parsed is not None, f"not a log line: {line!r}"
        events.append(parsed)
    return LoginLogFile(path, lines, events)


def assert_in_order(messages: Sequence[str], expected: Sequence[str]) -> None:
    """``expected`` occurs in ``messages`` as a subsequence (other messages may come between)."""
    position = 0
    for wanted in expected:
        try:
            position = messages.index(wanted, position) + 1
        except ValueError:
            raise AssertionError(
                f"{wanted!r} missing (or out of order) after position {position}; messages:\n"
                + "\n".join(f"  {index}: {message}" for index, message in enumerate(messages))
            ) from None


def save_screenshot(agent: AgentResult, name: str) -> Path:
    """Keep the agent's screenshot as ``test-output/screenshots/<name>.png`` (checked to be a real PNG)."""
    data = agent.screenshot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2_000, f"not a real screenshot: {agent.screenshot}"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOT_DIR / f"{name}.png"
    shutil.copyfile(agent.screenshot, target)
    return target
