"""A real browser sign-in still completes when nothing about the terminal is a terminal (issue 6).

``codex-login`` runs with stdin, stdout and stderr as pipes (CI, ``ssh host cmd``, an editor's task runner),
against the real OpenID provider test issuer, with ``BROWSER`` set to the scripted headless Chromium agent.
The waiting status must then be plain lines: no carriage return, no escape sequence; and stdin that stays
open, or that ends at once, must not get in the way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import CliEnvFactory, CodexLogin
from tests.support.issuer import TestIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

WAITING = re.compile(
    r"Waiting for the browser to finish signing in \(\d+:\d\d left\)\."
    r"( Paste the redirect URL here if the page could not load\.)?"
)
RUN_TIMEOUT = 120.0


class PipedRun:
    """The console script with all three standard streams as pipes; stderr kept as raw bytes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.stderr = bytearray()
        self.stdout = bytearray()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    @staticmethod
    def _pump(stream: object, into: bytearray) -> None:
        fileno = getattr(stream, "fileno", None)
        assert fileno is not None
        while chunk := os.read(fileno(), 65536):
            into += chunk

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def finish(self) -> int:
        code = self.proc.wait(RUN_TIMEOUT)
        # The browser agent inherited the pipes (BROWSER commands do); it exits when its flow is done.
        for pump in self._pumps:
            pump.join(60)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("stdin", ["open", "closed"])
def test_real_browser_sign_in_with_pipes_only(
    issuer: TestIssuer, cli_env: CliEnvFactory, codex_login: CodexLogin, codex_home: Path, stdin: str
) -> None:
    env = cli_env(script="signin", login="alice")
    run = PipedRun(codex_login.argv(["--port", "0", "--issuer", issuer.url]), env.env)
    try:
        if stdin == "closed":
            run.close_stdin()  # end of input at once: reading stops, the sign-in goes on
        code = run.finish()
    finally:
        run.kill()
    stderr = bytes(run.stderr)
    agent = env.browser_result(timeout=10)
    assert code == 0, stderr.decode(errors="replace") + "\n" + agent.describe()
    assert agent.ok, agent.describe()

    # Not a terminal: plain lines only.
    assert b"\r" not in stderr
    assert b"\x1b" not in stderr
    lines = stderr.decode().split("\n")
    waiting = [line for line in lines if line.startswith("Waiting for the browser")]
    assert waiting, lines
    assert all(WAITING.fullmatch(line) for line in waiting), waiting
    if stdin == "open":
        assert waiting[0].endswith(" Paste the redirect URL here if the page could not load.")
    assert lines[-2:] == ["Successfully logged in", ""]
    url = next(line for line in lines if "/oauth/authorize?" in line)
    assert url.startswith(f"{issuer.url}/oauth/authorize?")  # alone on its line
    assert run.stdout == b""  # every message of the flow goes to stderr

    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["auth_mode"] == "chatgpt"
    assert saved["tokens"]["account_id"] == "acct_alice"
    log = (codex_home / "log" / "codex-login.log").read_text()
    # What this machine is (SSH, container) varies; that it was logged, once, does not.
    assert len(re.findall(r"codex_cli::login: login environment ssh=(?:true|false) wsl=(?:true|false) ", log)) == 1
    assert "codex_login::server: browser opened opener=BROWSER" in log
    assert "login finished outcome=success flow=browser" in log
