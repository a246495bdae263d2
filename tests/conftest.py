"""Shared fixtures: an isolated CODEX_HOME, a clean proxy/CA environment, and the login log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codex_login.diagnostics.logfile import LOG_FILE_NAME, init_login_file_logging
from codex_login.diagnostics.redact import SECRETS
from tests.support.tls_servers import TlsIssuer

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reaches a real proxy, a real browser, the real ~/.codex, or inherits RUST_LOG."""
    for var in (*PROXY_VARS, "RUST_LOG", "CODEX_CA_CERTIFICATE", "CODEX_INTERNAL_ORIGINATOR_OVERRIDE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    monkeypatch.setenv("BROWSER", "true")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir(exist_ok=True)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """The secret registry is process-wide, as in a real process: what one test's sign-in registered (a code
    like ``device code``, say) must not scrub the lines the next test expects."""
    yield
    SECRETS.clear()


@pytest.fixture
def codex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "codex-home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("CODEX_HOME", str(home))
    return home


@dataclass
class LoginLog:
    """The durable log of the test, read back as lines."""

    path: Path

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return self.path.read_text(encoding="utf-8").splitlines()

    def normalized(self) -> list[str]:
        return [normalize_line(line) for line in self.lines()]


_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ")
_SPAN = re.compile(r"login\{attempt=la_[0-9a-f]{8}\}: ")
_PORT = re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+")
_NUMBERS = re.compile(r"\b(port|body_len|duration_ms|attempts)=\d+")
_ERRNO_CLASS = re.compile(r"version=\S+")


def normalize_line(line: str) -> str:
    """Drop what varies between runs (timestamp, attempt ID, ports, sizes, durations), keep the rest."""
    line = _TS.sub("", line)
    line = _SPAN.sub("", line)
    line = _PORT.sub(r"\1:PORT", line)
    line = _NUMBERS.sub(r"\1=N", line)
    return _ERRNO_CLASS.sub("version=V", line)


@pytest.fixture
def login_log(tmp_path: Path) -> Iterator[LoginLog]:
    handle = init_login_file_logging(tmp_path / "log", log_format="text", env={})
    try:
        yield LoginLog(tmp_path / "log" / LOG_FILE_NAME)
    finally:
        handle.close()


@pytest.fixture
def tls_issuer(tmp_path: Path) -> Iterator[TlsIssuer]:
    """An HTTPS issuer on loopback with a certificate from its own CA (``ca``, ``ca_pem``)."""
    issuer = TlsIssuer(tmp_path)
    try:
        yield issuer
    finally:
        issuer.close()
