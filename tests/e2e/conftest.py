"""Fixtures for the end-to-end tests: the test issuer, a private CODEX_HOME, and a CLI environment.

* ``issuer`` (session): a running :class:`support.issuer.TestIssuer`; it is reset before every test
  that uses it, so overrides, counters and account claims never leak between tests.
* ``codex_home`` (test): an empty CODEX_HOME directory.
* ``cli_env`` (test): a factory that builds the environment for running ``codex-login`` as a subprocess
  (private HOME/XDG dirs, no proxies, ``BROWSER`` = the scripted browser agent).
* ``codex_login`` (test): runs the ``codex-login`` console script of the current interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.browser_agent import AgentResult, agent_env, browser_command, wait_for_result
from tests.support.issuer import TestIssuer

DROPPED_VARS = frozenset({"RUST_LOG", "DISPLAY", "WAYLAND_DISPLAY"})
NO_PROXY = "127.0.0.1,localhost,::1"


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
