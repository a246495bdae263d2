"""Run the real ``codex-login`` console script as a subprocess and talk to it like a user would."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CONSOLE_SCRIPT = Path(sys.executable).parent / "codex-login"


def cli_env(codex_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a test run: isolated home, no proxies, a harmless browser, unless overridden."""
    # PYTHONDONTWRITEBYTECODE is dropped so repeated runs reuse compiled bytecode, as an installed copy would.
    skip = {"RUST_LOG", "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k not in skip}
    env.update({
        "CODEX_HOME": str(codex_home),
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "BROWSER": "true",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


class CliRun:
    """A running ``codex-login``; stderr is read line by line on a thread so nothing blocks."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], *, stdin_text: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(CONSOLE_SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            text=True,
        )
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        if stdin_text is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin_text)
            self.proc.stdin.close()

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._stdout.append(line)

    def wait_for_line(self, predicate: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no stderr line containing {predicate!r}; got {self.stderr_lines!r}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError(f"process ended before {predicate!r}; stderr: {self.stderr_lines!r}")
            if predicate in line:
                return line

    def auth_url(self, timeout: float = 20.0) -> str:
        return self.wait_for_line("/oauth/authorize?", timeout).strip()

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0.05)  # let the reader threads drain the pipes
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def callback_base(auth_url: str) -> tuple[str, str]:
    """(``http://127.0.0.1:PORT``, state) from a printed authorize URL."""
    query = parse_qs(urlsplit(auth_url).query)
    redirect = urlsplit(query["redirect_uri"][0])
    return f"http://127.0.0.1:{redirect.port}", query["state"][0]
