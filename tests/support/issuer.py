"""Run the test OpenID provider (``tests/issuer/issuer.mjs``) from Python.

``TestIssuer`` installs the issuer's npm packages when ``node_modules`` is missing (``npm ci``), starts
``node issuer.mjs`` on a free loopback port, waits for its ``ISSUER_READY <url>`` line, and wraps the
issuer's ``/__test__/`` hooks. A missing Node.js or npm package is an error, never a skip.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

ISSUER_DIR = Path(__file__).resolve().parents[1] / "issuer"
ISSUER_SCRIPT = ISSUER_DIR / "issuer.mjs"
DEFAULT_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
READY_PREFIX = "ISSUER_READY "
READY_TIMEOUT = 20.0
NPM_CI_TIMEOUT = 300.0
AUTH_CLAIM = "https://api.openai.com/auth"

_install_lock = threading.Lock()


class IssuerError(RuntimeError):
    """The test issuer could not be installed, started or reached."""


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise IssuerError(
            f"`{name}` is not on PATH. The end-to-end tests need Node.js 18+ and npm "
            "(Debian: apt-get install -y nodejs npm)."
        )
    return path


def ensure_installed(issuer_dir: Path = ISSUER_DIR) -> None:
    """Run ``npm ci`` in the issuer folder if its ``node_modules`` is missing."""
    with _install_lock:
        marker = issuer_dir / "node_modules" / "oidc-provider" / "package.json"
        if (issuer_dir / "node_modules").is_dir() and marker.is_file():
            return
        npm = _require_tool("npm")
        try:
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=issuer_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=NPM_CI_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise IssuerError(f"`npm ci` in {issuer_dir} took longer than {NPM_CI_TIMEOUT} s") from exc
        if proc.returncode != 0 or not marker.is_file():
            raise IssuerError(
                f"`npm ci` in {issuer_dir} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )


class TestIssuer:
    """A running test issuer. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        port: int = 0,
        log_path: str | os.PathLike[str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.client_id = client_id
        self.port = port
        self.ready_timeout = ready_timeout
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="test-issuer-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        else:
            self.log_path = Path(log_path)
        self._proc: subprocess.Popen[str] | None = None
        self._url: str | None = None
        self._client: httpx.Client | None = None
        self._extra_stdout: list[str] = []
        self.start_seconds: float | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> TestIssuer:
        if self._proc is not None:
            return self
        node = _require_tool("node")
        if not ISSUER_SCRIPT.is_file():
            raise IssuerError(f"missing {ISSUER_SCRIPT}")
        ensure_installed()

        env = dict(os.environ)
        env["TEST_CLIENT_ID"] = self.client_id
        env.pop("NODE_OPTIONS", None)
        env.setdefault("NO_COLOR", "1")

        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [node, str(ISSUER_SCRIPT), "--port", str(self.port)],
                cwd=ISSUER_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            )
        lines: queue.Queue[str | None] = queue.Queue()
        assert self._proc.stdout is not None
        threading.Thread(
            target=self._pump_stdout, args=(self._proc.stdout, lines), name="test-issuer-stdout", daemon=True
        ).start()

        deadline = started + self.ready_timeout
        while self._url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail_start(f"no {READY_PREFIX.strip()} line within {self.ready_timeout} s")
            try:
                line = lines.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                if self._proc.poll() is not None:
                    self._fail_start(f"node exited with status {self._proc.returncode}")
                continue
            if line is None:
                self._fail_start(f"node closed its stdout (exit status {self._proc.poll()})")
            elif line.startswith(READY_PREFIX):
                self._url = line[len(READY_PREFIX) :].strip()
            else:
                self._extra_stdout.append(line)
        self.start_seconds = time.monotonic() - started
        self._client = httpx.Client(base_url=self._url, timeout=10.0, trust_env=False)
        return self

    @staticmethod
    def _pump_stdout(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _fail_start(self, why: str) -> None:
        self.stop()
        raise IssuerError(
            f"test issuer did not start: {why}.\nstdout: {self._extra_stdout}\n"
            f"log ({self.log_path}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> TestIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- facts ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The issuer URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        if self._url is None:
            raise IssuerError("the test issuer is not running")
        return self._url

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/oauth/token"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.url}/oauth/authorize"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the issuer's stderr log (oidc-provider warnings, errors)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    @property
    def http(self) -> httpx.Client:
        """An httpx client with ``base_url`` set to the issuer (no proxies from the environment)."""
        if self._client is None:
            raise IssuerError("the test issuer is not running")
        return self._client

    def discovery(self) -> dict[str, Any]:
        """The OpenID discovery document."""
        return self._json(self.http.get("/.well-known/openid-configuration"))

    # -- hooks ----------------------------------------------------------------

    def override(
        self,
        path: str = "/oauth/token",
        status: int | None = None,
        *,
        content_type: str | None = "application/json",
        body: str | None = None,
        json: Any = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        close: bool = False,
        delay_ms: int = 0,
        match: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with a raw response.

        ``status`` with ``body`` (text) or ``json`` (serialised) and ``content_type`` (``None`` sends no
        Content-Type) and extra ``headers``; or ``close=True`` to destroy the connection without an
        answer; ``delay_ms`` waits first (with neither status nor close, the real answer follows the
        delay). ``match`` limits the override to requests whose body fields (form or JSON) have these
        values, e.g. ``{"grant_type": "refresh_token"}``. Requests are counted in :meth:`stats` either way.
        """
        payload: dict[str, Any] = {
            "path": path,
            "content_type": "" if content_type is None else content_type,
            "times": times,
            "headers": headers or {},
            "close": close,
            "delay_ms": delay_ms,
        }
        if status is not None:
            payload["status"] = status
        if body is not None:
            payload["body"] = body
        elif json is not None:
            payload["json"] = json
        if match is not None:
            payload["match"] = match
        self._json(self.http.post("/__test__/override", json=payload))

    def override_token(
        self,
        status: int | None = None,
        *,
        content_type: str | None = "application/json",
        body: str | None = None,
        json: Any = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        close: bool = False,
        delay_ms: int = 0,
        match: dict[str, str] | None = None,
    ) -> None:
        """:meth:`override` for ``/oauth/token``."""
        self.override(
            "/oauth/token",
            status,
            content_type=content_type,
            body=body,
            json=json,
            times=times,
            headers=headers,
            close=close,
            delay_ms=delay_ms,
            match=match,
        )

    def reset(self) -> None:
        """Clear overrides, counters, recorded requests, account claims and device settings."""
        self._json(self.http.post("/__test__/reset", json={}))

    def stats(self) -> dict[str, Any]:
        """``{"counts": {path: n}, "overridden": {path: n}, "pending_overrides": {...}, "requests": [...]}``.

        Per-interaction paths are folded (``/interaction/:uid``). ``requests`` lists recent POSTs to
        ``/oauth/token``, ``/oauth/revoke``, ``/oauth/device/auth`` and the Codex device endpoints with
        ``content_type``, parsed ``fields`` and a few headers (``user-agent``, ``originator``, ``accept``).
        """
        return self._json(self.http.get("/__test__/stats"))

    def count(self, path: str) -> int:
        """How many requests reached ``path`` since the last reset (overridden ones included)."""
        counts: dict[str, int] = self.stats()["counts"]
        return int(counts.get(path, 0))

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded API POSTs (optionally only those to ``path``), oldest first."""
        recorded: list[dict[str, Any]] = self.stats()["requests"]
        return [r for r in recorded if path is None or r["path"] == path]

    def set_account(
        self,
        login: str,
        *,
        email: str | None = None,
        auth: dict[str, Any] | None = None,
        access_auth: dict[str, Any] | None = None,
        **profile: Any,
    ) -> None:
        """Change the claims issued for ``login`` until the next reset.

        ``auth`` is merged into the id_token's (and access token's) ``https://api.openai.com/auth`` object,
        ``access_auth`` into the access token's only; a ``None`` value removes that key. ``email`` and
        other profile claims (``email_verified``, ``name``) replace the defaults.
        """
        payload: dict[str, Any] = {"login": login, **profile}
        if email is not None:
            payload["email"] = email
        if auth is not None:
            payload["auth"] = auth
        if access_auth is not None:
            payload["access_auth"] = access_auth
        self._json(self.http.post("/__test__/account", json=payload))

    def set_device(self, *, interval: str | None) -> None:
        """The ``interval`` the Codex-style ``/api/accounts/deviceauth/usercode`` returns (None: omitted)."""
        self._json(self.http.post("/__test__/device", json={"interval": interval}))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise IssuerError(
                f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
            )
        data: dict[str, Any] = response.json()
        return data
