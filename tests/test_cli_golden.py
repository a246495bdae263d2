"""The console script against what the released Rust CLI 0.169.0 did on loopback (issue 3, golden lines).

The golden lines below were observed from Codex CLI 0.169.0 (timestamps cut). Ours must contain each of them,
in order, line for line — except where DECISIONS.md chooses otherwise, which is spelled out per scenario:
- the redirect URI stays the PR-era ``http://localhost:PORT/auth/callback`` (0.169.0 uses 127.0.0.1);
- 0.169.0's ``oauth token connection failed; retrying with system proxy`` is a later feature we do not have;
- our extra D-11 lines (attempt, binding, browser, route, classification, final outcome) sit between them;
- on the terminal, a transport failure's text ends with its cause (``...: connection refused``) and an invalid
  token response's with what is wrong with it (security.md C5-C9, D1, D7 ask for the cause; 0.169.0 prints the
  top error only); the golden text is the prefix and the test says so where it applies.
The golden browser-flow line ``If your browser did not open, navigate to this URL to authenticate:`` (captured
with a browser) is pinned in tests/test_headless.py; these runs use ``--no-browser``.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx

from tests.conftest import normalize_line
from tests.support.cli import CliRun, callback_base, cli_env

GOLDEN_ACCESS_DENIED = [
    " INFO codex_cli::login: starting browser login flow",
    " INFO codex_login::server: received login callback path=/auth/callback has_code=false has_state=true "
    "has_error=true state_valid=true",
    ' WARN codex_login::server: oauth callback returned error error_code="access_denied" has_error_description=true',
]
GOLDEN_STATE_MISMATCH = [
    " INFO codex_login::server: received login callback path=/auth/callback has_code=true has_state=true "
    "has_error=false state_valid=false",
    " WARN codex_login::server: login callback state mismatch path=/auth/callback has_code=true has_state=true "
    "has_error=false",
]
# 0.169.0 against auth.openai.com with no network; we point the issuer at a closed loopback port instead,
# so the issuer text is normalized to ISSUER below.
GOLDEN_TRANSPORT = [
    " INFO codex_login::server: received login callback path=/auth/callback has_code=true has_state=true "
    "has_error=false state_valid=true",
    " INFO codex_login::server: starting oauth token exchange issuer=ISSUER/ token_endpoint=ISSUER/oauth/token "
    "redirect_uri=http://localhost:PORT/auth/callback",
    "ERROR codex_login::server: oauth token exchange transport failure is_timeout=false is_connect=true "
    "is_request=true error=error sending request for url (ISSUER/oauth/token)",
    "ERROR codex_login::server: login callback token exchange failed",
]


def _is_subsequence(expected: list[str], actual: list[str]) -> bool:
    it = iter(actual)
    return all(any(line == candidate for candidate in it) for line in expected)


def _log_lines(log_dir: Path, issuer: str) -> list[str]:
    text = (log_dir / "codex-login.log").read_text()
    text = text.replace(issuer, "ISSUER")
    return [normalize_line(line) for line in text.splitlines()]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(codex_home: Path, issuer: str) -> CliRun:
    args = ["--no-browser", "--port", "0", "--issuer", issuer, "-c", f"log_dir={codex_home / 'log'}"]
    return CliRun(args, cli_env(codex_home))


def test_access_denied_matches_golden_terminal_and_log(codex_home: Path) -> None:
    issuer = f"http://127.0.0.1:{_closed_port()}"
    run = _start(codex_home, issuer)
    try:
        base, state = callback_base(run.auth_url())
        page = httpx.get(f"{base}/auth/callback", params={
            "error": "access_denied", "error_description": "User cancelled <b>x</b>", "state": state,
        })
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["connection"] == "close"
        assert "<title>Codex Sign-in Error</title>" in page.text
        assert "User cancelled &lt;b&gt;x&lt;/b&gt;" in page.text
        assert run.finish() == 1
    finally:
        run.kill()
    golden_terminal = [
        "OAuth callback error: Sign-in failed: User cancelled <b>x</b>",
        "Error logging in: Sign-in failed: User cancelled <b>x</b>",
    ]
    assert _is_subsequence(golden_terminal, run.stderr_lines), run.stderr_lines
    assert any(re.fullmatch(r"Attempt ID: la_[0-9a-f]{8}; log: .*codex-login\.log\. Run .*", line)
               for line in run.stderr_lines)
    lines = _log_lines(codex_home / "log", issuer)
    assert _is_subsequence(GOLDEN_ACCESS_DENIED, lines), lines


def test_state_mismatch_and_favicon_match_golden(codex_home: Path) -> None:
    issuer = f"http://127.0.0.1:{_closed_port()}"
    run = _start(codex_home, issuer)
    try:
        base, _state = callback_base(run.auth_url())
        bad = httpx.get(f"{base}/auth/callback?code=abc&state=WRONG")
        assert (bad.status_code, bad.text) == (400, "State mismatch")
        assert bad.headers["content-type"].lower().startswith("text/plain; charset=utf-8")
        favicon = httpx.get(f"{base}/favicon.ico")
        assert (favicon.status_code, favicon.text) == (404, "Not Found")
        assert run.proc.poll() is None  # still waiting
        httpx.get(f"{base}/cancel")
        assert run.finish() == 1
    finally:
        run.kill()
    assert "Error logging in: Login cancelled" in run.stderr_lines
    assert _is_subsequence(GOLDEN_STATE_MISMATCH, _log_lines(codex_home / "log", issuer))


def test_transport_failure_matches_golden(codex_home: Path) -> None:
    issuer = f"http://127.0.0.1:{_closed_port()}"
    run = _start(codex_home, issuer)
    try:
        base, state = callback_base(run.auth_url())
        page = httpx.get(f"{base}/auth/callback?code=thecode123&state={state}")
        assert "Token exchange failed" in page.text
        assert run.finish() == 1
    finally:
        run.kill()
    display = f"error sending request for url ({issuer}/oauth/token)"  # the golden text; then our cause
    assert f"Token exchange error: {display}: connection refused" in run.stderr_lines
    assert f"Error logging in: Token exchange failed: {display}: connection refused" in run.stderr_lines
    lines = _log_lines(codex_home / "log", issuer)
    assert _is_subsequence(GOLDEN_TRANSPORT, lines), lines
    assert "thecode123" not in (codex_home / "log" / "codex-login.log").read_text()


def test_terminal_text_of_the_browser_flow(codex_home: Path) -> None:
    issuer = f"http://127.0.0.1:{_closed_port()}"
    run = _start(codex_home, issuer)
    try:
        url = run.auth_url()
        port = callback_base(url)[0].rsplit(":", 1)[1]
        httpx.get(f"http://127.0.0.1:{port}/cancel")
        run.finish()
    finally:
        run.kill()
    start = run.stderr_lines.index(f"Starting local login server on http://localhost:{port}.")
    assert run.stderr_lines[start + 1:start + 6] == [
        "Open this URL in your browser to sign in:",
        "",
        url,
        "",
        "On a remote or headless machine? Use `codex-login --device-auth` instead.",
    ]
    assert url.startswith(f"{issuer}/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann"
                          f"&redirect_uri=http%3A%2F%2Flocalhost%3A{port}%2Fauth%2Fcallback"
                          "&scope=openid%20profile%20email%20offline_access&code_challenge=")
    assert "&code_challenge_method=S256&id_token_add_organizations=true&codex_cli_simplified_flow=true&state=" in url
    assert url.endswith("&originator=codex_cli_rs")


def test_json_log_format_carries_the_same_events(codex_home: Path) -> None:
    """D-12: ``login_log_format = "json"`` writes tracing-subscriber's JSON shape, one object per line."""
    import json

    issuer = f"http://127.0.0.1:{_closed_port()}"
    (codex_home / "config.toml").write_text('login_log_format = "json"\n')
    run = _start(codex_home, issuer)
    try:
        base, state = callback_base(run.auth_url())
        httpx.get(f"{base}/auth/callback", params={"error": "access_denied", "state": state})
        assert run.finish() == 1
    finally:
        run.kill()
    records = [json.loads(line) for line in (codex_home / "log" / "codex-login.log").read_text().splitlines()]
    attempt = records[0]["span"]["attempt"]
    assert re.fullmatch(r"la_[0-9a-f]{8}", attempt)
    for record in records:
        assert set(record) >= {"timestamp", "level", "fields", "target"}
        assert record["timestamp"].endswith("Z")
        assert record["span"] == {"attempt": attempt, "name": "login"}
    by_message = {r["fields"]["message"]: r for r in records}
    callback = by_message["received login callback"]
    assert callback["target"] == "codex_login::server" and callback["level"] == "INFO"
    assert callback["fields"] == {
        "message": "received login callback", "path": "/auth/callback", "has_code": False, "has_state": True,
        "has_error": True, "state_valid": True,
    }
    assert by_message["oauth callback returned error"]["fields"]["error_code"] == "access_denied"
    assert by_message["login finished"]["fields"]["outcome"] == "denied"
