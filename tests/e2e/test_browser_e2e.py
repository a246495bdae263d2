"""The browser sign-in end to end: the real ``codex-login`` command, the real provider, the real browser.

Every test runs the console script as a subprocess against the test issuer (npm oidc-provider) with
``BROWSER`` set to the headless-Chromium agent, so codex-login's own browser opening starts the browser
that signs in. What a user meets is checked where the user meets it: the exit status and terminal lines,
``auth.json``, the page the browser ends on, and ``$CODEX_HOME/log/codex-login.log``.

* success: the saved credentials, the success page, the whole log timeline under one attempt span;
* the user cancels on the provider's login or consent page (``access_denied``);
* ``invalid_grant`` from the provider: a code redeemed twice (a proxy that replays the token request) and
  a code delivered to another attempt (whose PKCE verifier does not match the code's challenge);
* the issuer goes away: it drops the token connection, it is stopped between the browser step and the
  exchange, or it cannot be reached at all;
* ``status`` and ``logout`` after a real sign-in.

Facts about the provider these tests rely on (oidc-provider 8.8.1, checked against its source): every
``invalid_grant`` answer carries the same ``error_description`` ("grant request is invalid", the detail stays
on the server); the PKCE check comes before the "already consumed" check, so a POST with a wrong verifier
does not spend a code, and a code can only be redeemed twice with the right verifier; a reused code makes
the provider revoke what the first redemption issued.
"""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from codex_login.pkce import challenge_for, generate_pkce
from tests.e2e.conftest import (
    CliEnvFactory,
    CodexLogin,
    LoginLogFile,
    RunningLogin,
    assert_in_order,
    read_login_log,
    save_screenshot,
)
from tests.support.browser_agent import AgentResult, browser_command, run_agent
from tests.support.issuer import AUTH_CLAIM, TestIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: Bounds for one sign-in: the CLI's own --timeout, the subprocess, and the browser agent.
LOGIN_TIMEOUT = "60"
PROCESS_TIMEOUT = 90.0
AGENT_TIMEOUT = 60.0
HTTP_TIMEOUT = 10.0

CANCEL_DESCRIPTION = "End-User aborted interaction"  # what oidc-provider's Cancel links send
INVALID_GRANT_DESCRIPTION = "grant request is invalid"  # oidc-provider's text for every invalid_grant
INVALID_GRANT_ERROR = (
    "Token exchange failed: token endpoint returned status 400 Bad Request: " + INVALID_GRANT_DESCRIPTION
)
AUTH_KEYS = ["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"]
TOKEN_KEYS = ["id_token", "access_token", "refresh_token", "account_id"]
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
LISTENING = re.compile(r"Starting local login server on http://localhost:(\d+)\.")

SUCCESS_TIMELINE = [
    "starting browser login flow",
    "login attempt started",
    "login server listening",
    "browser opened",
    "received login callback",
    "starting oauth token exchange",
    "oauth token endpoint response",
    "oauth token exchange succeeded",
    "credentials saved",
    "success page served",
    "login finished",
]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def login_args(issuer_url: str, *extra: str, port: int = 0) -> list[str]:
    return ["--issuer", issuer_url, "--port", str(port), "--timeout", LOGIN_TIMEOUT, *extra]


def listening_port(stderr: str) -> int:
    found = LISTENING.search(stderr)
    assert found, f"no 'Starting local login server' line:\n{stderr}"
    return int(found.group(1))


def authorize_query(stderr: str) -> dict[str, str]:
    """The parameters of the authorize URL the CLI printed."""
    for line in stderr.splitlines():
        if "/oauth/authorize?" in line:
            return {key: values[0] for key, values in parse_qs(urlsplit(line.strip()).query).items()}
    raise AssertionError(f"no authorize URL on stderr:\n{stderr}")


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **replace: str) -> str:
    parts = urlsplit(url)
    query = query_of(url)
    query.update(replace)
    return urlunsplit(parts._replace(query=urlencode(query)))


def jwt_payload(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def seed_auth(codex_home: Path) -> bytes:
    """An existing sign-in (the Rust CLI's file): a failed attempt must leave it byte for byte."""
    data = (FIXTURES / "rust_chatgpt_auth.json").read_bytes()
    path = codex_home / "auth.json"
    path.write_bytes(data)
    path.chmod(0o600)
    return data


def only_attempt(log: LoginLogFile) -> str:
    ids = log.attempt_ids()
    assert len(ids) == 1 and re.fullmatch(r"la_[0-9a-f]{8}", ids[0]), ids
    return ids[0]


def messages(log: LoginLogFile, attempt_id: str) -> list[str]:
    return [event.message for event in log.for_attempt(attempt_id)]


def event(log: LoginLogFile, attempt_id: str, message: str) -> dict[str, Any]:
    found = [e for e in log.for_attempt(attempt_id) if e.message == message]
    assert len(found) == 1, f"{message!r} appears {len(found)} times:\n" + "\n".join(log.lines)
    return dict(found[0].fields)


def assert_every_line_in_span(log: LoginLogFile, attempt_id: str) -> None:
    """D-10: each line of this attempt's run carries ``login{attempt=...}`` (one attempt per process here)."""
    for line in log.lines:
        assert f" login{{attempt={attempt_id}}}: " in line, line


def code_grants(issuer: TestIssuer) -> list[dict[str, str]]:
    """The authorization-code token requests the provider received, oldest first."""
    return [
        r["fields"] for r in issuer.requests("/oauth/token") if r["fields"].get("grant_type") == "authorization_code"
    ]


def refresh(issuer: TestIssuer, refresh_token: str) -> httpx.Response:
    return issuer.http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": issuer.client_id},
    )


def deliver(url: str, result_dir: Path) -> AgentResult:
    """Open a callback URL in a fresh browser (the user pasting an address into the address bar)."""
    agent = run_agent(url, result_dir, script="open_only", timeout=AGENT_TIMEOUT)
    assert agent.ok and agent.status == 200, agent.describe()
    return agent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_error_page(agent: AgentResult, *, message: str, code: str, details: str, attempt_id: str) -> None:
    """The branded error page, every slot escaped for HTML (the DOM text equals what was put in)."""
    page = agent.html
    assert "<title>Codex Sign-in Error</title>" in page
    assert "<h1>Sign-in could not be completed</h1>" in page
    assert f'<p class="message">{html.escape(message, quote=False)}</p>' in page
    assert f"<code>{html.escape(code, quote=False)}</code>" in page
    assert f"<code>{html.escape(details, quote=False)}</code>" in page
    assert f"<code>{attempt_id}</code>" in page  # D-10: the attempt ID the terminal and the log show
    text = agent.text
    for slot in (message, code, details, attempt_id):
        assert slot in text, text


# ---------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------


def test_browser_sign_in_end_to_end(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path
) -> None:
    # "cmd %s &" runs the browser in the background, so "browser opened" is logged as soon as it starts, before
    # the callback can arrive; a blocking BROWSER counts as opened after a 2 s wait, which a fast sign-in may beat.
    env = cli_env(login="grace", extra={"BROWSER": browser_command() + " &"})
    proc = codex_login.run(login_args(issuer.url), env, timeout=PROCESS_TIMEOUT)
    agent = env.browser_result(AGENT_TIMEOUT)

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "Successfully logged in"
    assert "Error" not in proc.stderr and proc.stdout == ""
    port = listening_port(proc.stderr)
    printed = authorize_query(proc.stderr)
    assert printed["redirect_uri"] == f"http://localhost:{port}/auth/callback"

    # auth.json: the reference's schema and key order, 0600, the provider's tokens.
    auth_path = codex_home / "auth.json"
    assert stat.S_IMODE(auth_path.stat().st_mode) == 0o600
    saved = json.loads(auth_path.read_text(encoding="utf-8"))
    assert list(saved) == AUTH_KEYS
    assert list(saved["tokens"]) == TOKEN_KEYS
    assert saved["auth_mode"] == "chatgpt"
    assert saved["OPENAI_API_KEY"] is None  # the provider refuses the API-key token exchange
    assert saved["tokens"]["account_id"] == "acct_grace"
    assert RFC3339_UTC.fullmatch(saved["last_refresh"]), saved["last_refresh"]
    assert auth_path.read_text(encoding="utf-8") == json.dumps(saved, indent=2)  # 2-space pretty JSON

    tokens = saved["tokens"]
    id_claims = jwt_payload(tokens["id_token"])
    assert id_claims["iss"] == issuer.url and id_claims["aud"] == issuer.client_id
    assert id_claims["sub"] == "grace" and id_claims["email"] == "grace@example.com"
    assert id_claims[AUTH_CLAIM]["chatgpt_account_id"] == "acct_grace"
    assert jwt_payload(tokens["access_token"])[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"
    [grant] = code_grants(issuer)
    assert grant["redirect_uri"] == printed["redirect_uri"] and grant["client_id"] == issuer.client_id
    assert challenge_for(grant["code_verifier"]) == printed["code_challenge"]
    # The saved refresh token is one the provider issued: it refreshes.
    assert refresh(issuer, tokens["refresh_token"]).status_code == 200

    # The browser ended on the success page, served by this attempt.
    assert agent.ok, agent.describe()
    assert agent.actions == ["login", "consent"]
    assert agent.final_url == f"http://localhost:{port}/success" and agent.status == 200
    assert "Signed in to Codex" in agent.text
    assert "Pro" in agent.text and "grace@example.com" not in agent.text  # the plan, never an identity claim
    save_screenshot(agent, "success-page")

    # The log: the whole timeline, in order, under one attempt span; the page shows the same attempt ID.
    log = read_login_log(codex_home)
    attempt_id = only_attempt(log)
    assert_every_line_in_span(log, attempt_id)
    assert f"Attempt {attempt_id}" in agent.text
    assert_in_order(messages(log, attempt_id), SUCCESS_TIMELINE)
    assert event(log, attempt_id, "login server listening")["port"] == port
    assert event(log, attempt_id, "browser opened") == {"opener": "BROWSER"}
    assert event(log, attempt_id, "received login callback") == {
        "path": "/auth/callback", "has_code": True, "has_state": True, "has_error": False, "state_valid": True,
    }
    assert event(log, attempt_id, "starting oauth token exchange") == {
        "issuer": issuer.url + "/",
        "token_endpoint": issuer.token_endpoint,
        "redirect_uri": printed["redirect_uri"],
    }
    assert event(log, attempt_id, "oauth token endpoint response")["status"] == "200 OK"
    assert event(log, attempt_id, "oauth token exchange succeeded") == {"status": "200 OK"}
    assert event(log, attempt_id, "credentials saved") == {"store": "file"}
    finished = event(log, attempt_id, "login finished")
    assert finished["outcome"] == "success" and finished["flow"] == "browser" and "failure" not in finished
    assert log.events[-1].message == "login finished"

    # DECISIONS §4: no code, state, verifier or token in the log.
    text = log.path.read_text(encoding="utf-8")
    for secret in (grant["code"], grant["code_verifier"], printed["state"], *tokens.values()):
        assert secret and secret not in text


def test_status_and_logout_after_a_real_sign_in(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path
) -> None:
    env = cli_env()
    signed_in = codex_login.run(login_args(issuer.url), env, timeout=PROCESS_TIMEOUT)
    assert signed_in.returncode == 0, signed_in.stderr
    env.browser_result(AGENT_TIMEOUT)
    refresh_token = json.loads((codex_home / "auth.json").read_text())["tokens"]["refresh_token"]

    status = codex_login.run(["status"], env)
    assert status.returncode == 0, status.stderr
    lines = status.stderr.splitlines()
    assert lines[0] == "Logged in using ChatGPT"
    assert "  Account: alice@example.com" in lines and "  Plan: Pro" in lines
    assert "  Account ID: acct_alice" in lines
    assert status.stdout == ""

    logout = codex_login.run(["--issuer", issuer.url, "logout"], env)
    assert logout.returncode == 0, logout.stderr
    assert logout.stderr.splitlines() == ["Successfully logged out"]
    assert not (codex_home / "auth.json").exists()
    revoked = [r["fields"] for r in issuer.requests("/oauth/revoke")]
    assert any(fields.get("token") == refresh_token for fields in revoked), revoked
    assert refresh(issuer, refresh_token).json()["error"] == "invalid_grant"  # the provider forgot it

    after = codex_login.run(["status"], env)
    assert after.returncode == 1
    assert after.stderr.splitlines() == ["Not logged in"]


# ---------------------------------------------------------------------------
# The user cancels at the provider
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["cancel_login", "cancel_consent"])
def test_cancel_at_the_provider(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path, script: str
) -> None:
    actions = ["cancel_login"] if script == "cancel_login" else ["login", "cancel_consent"]
    before = seed_auth(codex_home)
    env = cli_env(script=script)
    proc = codex_login.run(login_args(issuer.url), env, timeout=PROCESS_TIMEOUT)
    agent = env.browser_result(AGENT_TIMEOUT)

    message = f"Sign-in failed: {CANCEL_DESCRIPTION}"
    assert proc.returncode == 1, proc.stderr
    assert f"OAuth callback error: {message}" in proc.stderr.splitlines()
    assert f"Error logging in: {message}" in proc.stderr.splitlines()
    assert (codex_home / "auth.json").read_bytes() == before
    assert code_grants(issuer) == []

    log = read_login_log(codex_home)
    attempt_id = only_attempt(log)
    assert f"Attempt ID: {attempt_id}" in proc.stderr

    assert agent.ok, agent.describe()
    assert agent.actions == actions
    port = listening_port(proc.stderr)
    assert agent.final_url.startswith(f"http://localhost:{port}/auth/callback?error=access_denied&")
    assert agent.status == 200  # terminal pages are 200 (the reference's e2e tests rely on it)
    assert_error_page(agent, message=message, code="access_denied", details=CANCEL_DESCRIPTION, attempt_id=attempt_id)
    if script == "cancel_consent":
        save_screenshot(agent, "error-access-denied")

    assert_every_line_in_span(log, attempt_id)
    assert_in_order(
        messages(log, attempt_id),
        ["starting browser login flow", "login server listening", "received login callback",
         "oauth callback returned error", "login finished"],
    )
    assert event(log, attempt_id, "received login callback") == {
        "path": "/auth/callback", "has_code": False, "has_state": True, "has_error": True, "state_valid": True,
    }
    assert any(
        line.endswith(
            f' WARN login{{attempt={attempt_id}}}: codex_login::server: oauth callback returned error '
            'error_code="access_denied" has_error_description=true'
        )
        for line in log.lines
    ), log.lines
    finished = event(log, attempt_id, "login finished")
    assert (finished["outcome"], finished["failure"]) == ("denied", "denied")
    assert "starting oauth token exchange" not in messages(log, attempt_id)
    assert CANCEL_DESCRIPTION not in log.path.read_text()  # the description reaches the page, never the log


# ---------------------------------------------------------------------------
# invalid_grant from the provider
# ---------------------------------------------------------------------------


class ReplayingProxy:
    """An HTTP forward proxy that sends every authorization-code token request to the provider twice.

    Some middleboxes retry a POST whose answer was slow; here the provider sees the same code (with the right
    verifier) twice: the first answer (tokens) is kept in :attr:`discarded`, the client gets the second.
    Everything else is passed through once.
    """

    HOP_BY_HOP = frozenset({"host", "connection", "proxy-connection", "keep-alive", "content-length",
                            "transfer-encoding", "proxy-authorization"})

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        self.discarded: list[httpx.Response] = []
        proxy = self
        upstream = httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False)
        self._upstream = upstream

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ReplayingProxy.HOP_BY_HOP}
                proxy.forwarded.append(f"{self.command} {self.path}")
                replay = self.command == "POST" and urlsplit(self.path).path == "/oauth/token" and (
                    b"grant_type=authorization_code" in body
                )
                if replay:
                    proxy.discarded.append(upstream.request(self.command, self.path, headers=headers, content=body))
                answer = upstream.request(self.command, self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ReplayingProxy.HOP_BY_HOP and name.lower() != "content-encoding":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.content)
                self.close_connection = True

            do_GET = _forward
            do_POST = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="replaying-proxy", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._upstream.close()


@pytest.fixture
def replaying_proxy() -> Iterator[ReplayingProxy]:
    proxy = ReplayingProxy()
    try:
        yield proxy
    finally:
        proxy.close()


def assert_invalid_grant(proc_stderr: str, agent: AgentResult, log: LoginLogFile, attempt_id: str) -> None:
    """What codex-login makes of the provider's ``invalid_grant``: terminal, page and log."""
    assert f"Token exchange error: token endpoint returned status 400 Bad Request: {INVALID_GRANT_DESCRIPTION}" in (
        proc_stderr.splitlines()
    )
    assert f"Error logging in: {INVALID_GRANT_ERROR}" in proc_stderr.splitlines()
    assert f"Attempt ID: {attempt_id}" in proc_stderr
    assert_error_page(
        agent, message=INVALID_GRANT_ERROR, code="token_exchange_failed", details=INVALID_GRANT_ERROR,
        attempt_id=attempt_id,
    )
    assert_in_order(
        messages(log, attempt_id),
        ["received login callback", "starting oauth token exchange", "oauth token endpoint response",
         "oauth token exchange returned non-success status", "login callback token exchange failed",
         "login finished"],
    )
    assert any(
        line.endswith(
            f" WARN login{{attempt={attempt_id}}}: codex_login::server: oauth token exchange returned non-success "
            f'status status=400 Bad Request error_code="invalid_grant" error_message="{INVALID_GRANT_DESCRIPTION}"'
        )
        for line in log.lines
    ), "\n".join(log.lines)
    response = event(log, attempt_id, "oauth token endpoint response")
    assert response["status"] == "400 Bad Request" and response["content_type"].startswith("application/json")
    finished = event(log, attempt_id, "login finished")
    assert finished["outcome"] == "error", finished
    assert "credentials saved" not in messages(log, attempt_id)


def test_reused_code_is_invalid_grant(
    issuer: TestIssuer,
    codex_login: CodexLogin,
    cli_env: CliEnvFactory,
    codex_home: Path,
    replaying_proxy: ReplayingProxy,
) -> None:
    """A code the provider already redeemed. Only a request with the right verifier can spend a code (the
    provider checks PKCE first), so the code reaches the provider twice through a proxy that replays
    codex-login's own token request."""
    before = seed_auth(codex_home)
    # Only codex-login's token requests go through the proxy (NO_PROXY emptied); Chromium never uses one.
    proxy_env = {"HTTP_PROXY": replaying_proxy.url, "http_proxy": replaying_proxy.url, "NO_PROXY": "", "no_proxy": ""}
    env = cli_env(login="heidi", extra=proxy_env)
    proc = codex_login.run(login_args(issuer.url), env, timeout=PROCESS_TIMEOUT)
    agent = env.browser_result(AGENT_TIMEOUT)

    assert proc.returncode == 1, proc.stderr
    assert (codex_home / "auth.json").read_bytes() == before

    # The provider saw one code twice with the right verifier: the first redemption worked...
    first, second = code_grants(issuer)
    assert first == second
    [discarded] = replaying_proxy.discarded
    assert discarded.status_code == 200, discarded.text
    assert jwt_payload(discarded.json()["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct_heidi"
    # ...and the second one, which codex-login got, is the provider's reuse detection, which also revokes
    # everything the first redemption issued.
    reuse_revoked = refresh(issuer, discarded.json()["refresh_token"])
    assert reuse_revoked.status_code == 400 and reuse_revoked.json()["error"] == "invalid_grant"

    assert agent.ok, agent.describe()
    assert agent.actions == ["login", "consent"]
    log = read_login_log(codex_home)
    attempt_id = only_attempt(log)
    assert_every_line_in_span(log, attempt_id)
    assert_invalid_grant(proc.stderr, agent, log, attempt_id)
    assert event(log, attempt_id, "oauth token request route")["proxy"] == replaying_proxy.url
    save_screenshot(agent, "error-invalid-grant")


def test_wrong_verifier_is_invalid_grant(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path, tmp_path: Path
) -> None:
    """Attempt A's code delivered to attempt B with B's state: B's verifier does not match A's challenge.

    B takes A's port over, so the redirect URI is the same and the verifier is the only thing that differs.
    """
    port = free_port()
    env_a = cli_env(script="intercept_callback")
    first: RunningLogin = codex_login.spawn(login_args(issuer.url, port=port), env_a)
    second: RunningLogin | None = None
    try:
        query_a = query_of(first.wait_for_line("/oauth/authorize?").strip())
        agent_a = env_a.browser_result(AGENT_TIMEOUT)
        assert agent_a.ok and agent_a.callback_url, agent_a.describe()
        callback_a = agent_a.callback_url
        assert callback_a.startswith(f"http://localhost:{port}/auth/callback?code=")
        assert query_of(callback_a)["state"] == query_a["state"]

        second = codex_login.spawn(login_args(issuer.url, "--no-browser", port=port), cli_env())
        query_b = query_of(second.wait_for_line("/oauth/authorize?").strip())
        assert first.finish(30) == 1
        assert "Error logging in: Login cancelled" in first.stderr_lines

        assert query_b["redirect_uri"] == query_a["redirect_uri"]
        assert query_b["code_challenge"] != query_a["code_challenge"]
        agent = deliver(with_query(callback_a, state=query_b["state"]), tmp_path / "deliver")
        assert second.finish(PROCESS_TIMEOUT) == 1, second.stderr
    finally:
        first.kill()
        if second is not None:
            second.kill()

    [grant] = code_grants(issuer)
    assert grant["code"] == query_of(callback_a)["code"]
    assert grant["redirect_uri"] == query_a["redirect_uri"]
    assert challenge_for(grant["code_verifier"]) == query_b["code_challenge"] != query_a["code_challenge"]
    assert not (codex_home / "auth.json").exists()

    log = read_login_log(codex_home)
    attempt_a, attempt_b = log.attempt_ids()
    assert_invalid_grant(second.stderr, agent, log, attempt_b)
    assert event(log, attempt_b, "sent cancel request to previous login server") == {"port": port, "answered": True}
    assert event(log, attempt_a, "login cancelled") == {"reason": "cancel_request"}
    assert event(log, attempt_a, "login finished")["outcome"] == "cancelled"
    save_screenshot(agent, "error-wrong-verifier")


def test_a_leaked_code_without_the_verifier_cannot_be_spent(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path, tmp_path: Path
) -> None:
    """Someone who sees the code but not the verifier gets invalid_grant, and the user's sign-in still works."""
    env = cli_env(script="intercept_callback")
    proc = codex_login.spawn(login_args(issuer.url), env)
    try:
        agent = env.browser_result(AGENT_TIMEOUT)
        assert agent.ok and agent.callback_url, agent.describe()
        query = query_of(agent.callback_url)
        stolen = issuer.http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": urlunsplit(urlsplit(agent.callback_url)._replace(query="")),
                "client_id": issuer.client_id,
                "code_verifier": generate_pkce().code_verifier,
            },
        )
        assert stolen.status_code == 400
        assert stolen.json() == {"error": "invalid_grant", "error_description": INVALID_GRANT_DESCRIPTION}

        page = deliver(agent.callback_url, tmp_path / "deliver")
        assert proc.finish(PROCESS_TIMEOUT) == 0, proc.stderr
    finally:
        proc.kill()
    assert proc.stderr_lines[-1] == "Successfully logged in"
    assert "Signed in to Codex" in page.text
    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["tokens"]["account_id"] == "acct_alice"
    assert [grant["code"] for grant in code_grants(issuer)] == [query["code"], query["code"]]


# ---------------------------------------------------------------------------
# The issuer goes away
# ---------------------------------------------------------------------------


def assert_transport_failure(
    proc_stderr: str, log: LoginLogFile, attempt_id: str, *, token_endpoint: str, detail: str,
    is_connect: bool, kind: str, error_class: str,
) -> None:
    shown = f"error sending request for url ({token_endpoint})"
    assert f"Token exchange error: {shown}: {detail}" in proc_stderr.splitlines()
    assert f"Error logging in: Token exchange failed: {shown}: {detail}" in proc_stderr.splitlines()
    assert_in_order(
        messages(log, attempt_id),
        ["received login callback", "starting oauth token exchange", "oauth token request route",
         "oauth token exchange transport failure", "oauth token transport error classified",
         "login callback token exchange failed", "login finished"],
    )
    assert event(log, attempt_id, "oauth token exchange transport failure") == {
        "is_timeout": False, "is_connect": is_connect, "is_request": True, "error": shown,
    }
    classified = event(log, attempt_id, "oauth token transport error classified")
    assert (classified["kind"], classified["error_class"]) == (kind, error_class), classified
    assert "oauth token endpoint response" not in messages(log, attempt_id)
    finished = event(log, attempt_id, "login finished")
    assert (finished["outcome"], finished["failure"]) == ("error", f"transport_{kind}")


def test_issuer_drops_the_token_connection(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path
) -> None:
    before = seed_auth(codex_home)
    issuer.override_token(close=True, match={"grant_type": "authorization_code"})
    env = cli_env()
    proc = codex_login.run(login_args(issuer.url), env, timeout=PROCESS_TIMEOUT)
    agent = env.browser_result(AGENT_TIMEOUT)

    assert proc.returncode == 1, proc.stderr
    assert (codex_home / "auth.json").read_bytes() == before
    assert issuer.stats()["overridden"]["/oauth/token"] == 1
    log = read_login_log(codex_home)
    attempt_id = only_attempt(log)
    detail = "the server closed the connection without a complete answer"
    assert_transport_failure(
        proc.stderr, log, attempt_id, token_endpoint=issuer.token_endpoint, detail=detail,
        is_connect=False, kind="closed", error_class="RemoteProtocolError",
    )
    assert agent.ok, agent.describe()
    message = f"Token exchange failed: error sending request for url ({issuer.token_endpoint}): {detail}"
    assert_error_page(agent, message=message, code="token_exchange_failed", details=message, attempt_id=attempt_id)


def test_issuer_stopped_between_the_browser_and_the_exchange(
    codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path, tmp_path: Path
) -> None:
    before = seed_auth(codex_home)
    env = cli_env(script="intercept_callback")
    with TestIssuer(log_path=tmp_path / "short-lived-issuer.log") as short_lived:
        proc = codex_login.spawn(login_args(short_lived.url), env)
        token_endpoint = short_lived.token_endpoint
        try:
            agent = env.browser_result(AGENT_TIMEOUT)
            assert agent.ok and agent.callback_url, agent.describe()
        except BaseException:
            proc.kill()
            raise
    assert not short_lived.running
    try:
        page = deliver(agent.callback_url, tmp_path / "deliver")
        assert proc.finish(PROCESS_TIMEOUT) == 1, proc.stderr
    finally:
        proc.kill()

    assert (codex_home / "auth.json").read_bytes() == before
    log = read_login_log(codex_home)
    attempt_id = only_attempt(log)
    assert_transport_failure(
        proc.stderr, log, attempt_id, token_endpoint=token_endpoint, detail="connection refused",
        is_connect=True, kind="connect", error_class="ConnectError",
    )
    assert "Token exchange failed" in page.text and "token_exchange_failed" in page.text


def test_issuer_unreachable_before_the_browser(
    codex_login: CodexLogin, cli_env: CliEnvFactory, codex_home: Path
) -> None:
    """Nothing listens at the issuer: the browser cannot load the sign-in page, so no callback ever comes."""
    dead_issuer = f"http://127.0.0.1:{free_port()}"
    env = cli_env()
    args = ["--issuer", dead_issuer, "--port", "0", "--timeout", "10"]
    proc = codex_login.run(args, env, timeout=PROCESS_TIMEOUT)
    agent = env.browser_result(AGENT_TIMEOUT)

    assert not agent.ok
    # Every navigation went to the dead issuer and none got an answer. (Chromium, when busy, may log a second,
    # aborted attempt at the same URL after the refused one, so the refusal is not always the last entry.)
    assert agent.navigations, agent.describe()
    assert all(nav["url"].startswith(f"{dead_issuer}/oauth/authorize?") for nav in agent.navigations)
    assert all(nav["status"] is None for nav in agent.navigations)
    assert agent.navigations[0]["failure"] == "net::ERR_CONNECTION_REFUSED", agent.describe()

    port = listening_port(proc.stderr)
    assert proc.returncode == 1, proc.stderr
    assert (
        f"Error logging in: Login timed out after 10 seconds: the browser never came back to "
        f"http://localhost:{port}/auth/callback"
    ) in proc.stderr.splitlines()
    assert not (codex_home / "auth.json").exists()
    log = read_login_log(codex_home)
    attempt_id = only_attempt(log)
    assert f"Attempt ID: {attempt_id}" in proc.stderr
    assert_in_order(
        messages(log, attempt_id),
        ["starting browser login flow", "login server listening", "login timed out", "login finished"],
    )
    assert event(log, attempt_id, "login timed out") == {"after_seconds": 10}
    finished = event(log, attempt_id, "login finished")
    assert (finished["outcome"], finished["failure"]) == ("timeout", "timeout")
    # No callback, so no exchange: the log tells a browser that never came back from a failed exchange.
    assert not {"received login callback", "starting oauth token exchange"} & set(messages(log, attempt_id))
