"""Proof that the end-to-end test bed works, without the codex_login package.

A stand-in client (a stdlib loopback server plus httpx) signs in through headless Chromium against the
real test issuer, exactly as codex-login will: authorization code + PKCE (S256), native loopback
redirect, token exchange, refresh rotation; and the issuer's test hooks answer as documented.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest

from tests.e2e.conftest import CliEnvFactory
from tests.support.browser_agent import AgentResult, run_agent
from tests.support.chromium import CHROMIUM_FLAGS, require_chromium
from tests.support.issuer import AUTH_CLAIM, TestIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HTTP_TIMEOUT = 10.0
CALLBACK_TIMEOUT = 45.0


# ---------------------------------------------------------------------------
# A stand-in for codex-login's loopback server
# ---------------------------------------------------------------------------


class CallbackServer:
    """Serves ``/auth/callback`` on 127.0.0.1 (any free port) and hands over each query it receives."""

    def __init__(self) -> None:
        self.queries: queue.Queue[dict[str, str]] = queue.Queue()
        received = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/auth/callback":
                    self.send_error(404)
                    return
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                received.put(query)
                body = b"<!DOCTYPE html><html><body><h1>callback received</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="callback-server", daemon=True)
        self.thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self.port}/auth/callback"

    def next_query(self, timeout: float = CALLBACK_TIMEOUT) -> dict[str, str]:
        return self.queries.get(timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    server = CallbackServer()
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------------------
# OAuth helpers (what codex-login does, in a few lines)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorize_url(issuer: TestIssuer, redirect_uri: str, pkce: Pkce, state: str) -> str:
    """The authorize URL with the reference's parameters, in its order and encoding."""
    params = [
        ("response_type", "code"),
        ("client_id", issuer.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile email offline_access"),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", "codex_cli_rs"),
    ]
    return f"{issuer.authorize_endpoint}?{urlencode(params, quote_via=quote, safe='')}"


def jwt_payload(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


@dataclass(frozen=True)
class SignIn:
    query: dict[str, str]
    agent: AgentResult
    pkce: Pkce
    state: str
    redirect_uri: str


def browser_sign_in(
    issuer: TestIssuer,
    server: CallbackServer,
    tmp_path: Path,
    *,
    script: str = "signin",
    login: str = "alice",
) -> SignIn:
    pkce = Pkce.new()
    state = secrets.token_urlsafe(32)
    url = authorize_url(issuer, server.redirect_uri, pkce, state)
    agent = run_agent(url, tmp_path / f"browser-{script}", script=script, login=login, timeout=30)
    assert agent.ok, agent.describe()
    query = server.next_query(timeout=5)
    return SignIn(query=query, agent=agent, pkce=pkce, state=state, redirect_uri=server.redirect_uri)


def exchange_code(issuer: TestIssuer, sign_in: SignIn) -> httpx.Response:
    return httpx.post(
        issuer.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": sign_in.query["code"],
            "redirect_uri": sign_in.redirect_uri,
            "client_id": issuer.client_id,
            "code_verifier": sign_in.pkce.verifier,
        },
        timeout=HTTP_TIMEOUT,
        trust_env=False,
    )


def refresh(issuer: TestIssuer, refresh_token: str) -> httpx.Response:
    """A refresh as the Codex CLI sends it: a JSON body."""
    return httpx.post(
        issuer.token_endpoint,
        json={"client_id": issuer.client_id, "grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=HTTP_TIMEOUT,
        trust_env=False,
    )


# ---------------------------------------------------------------------------
# (a) discovery
# ---------------------------------------------------------------------------


def test_discovery_lists_the_expected_endpoints(issuer: TestIssuer) -> None:
    doc = issuer.discovery()
    base = issuer.url
    assert base.startswith("http://127.0.0.1:")
    assert doc["issuer"] == base
    assert doc["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert doc["token_endpoint"] == f"{base}/oauth/token"
    assert doc["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert doc["device_authorization_endpoint"] == f"{base}/oauth/device/auth"
    assert doc["jwks_uri"] == f"{base}/jwks"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"} <= set(
        doc["grant_types_supported"]
    )
    assert {"openid", "profile", "email", "offline_access"} <= set(doc["scopes_supported"])
    assert AUTH_CLAIM in doc["claims_supported"]
    keys = issuer.http.get("/jwks").json()["keys"]
    assert keys, "the issuer publishes signing keys"


# ---------------------------------------------------------------------------
# (b) a full authorization-code + PKCE sign-in through Chromium
# ---------------------------------------------------------------------------


def test_browser_sign_in_issues_codex_shaped_tokens(
    issuer: TestIssuer, callback_server: CallbackServer, tmp_path: Path
) -> None:
    sign_in = browser_sign_in(issuer, callback_server, tmp_path, login="bob")

    # The browser ended on our loopback server, via the localhost redirect URI.
    assert sign_in.agent.final_url.startswith(f"http://localhost:{callback_server.port}/auth/callback?")
    assert sign_in.agent.status == 200
    assert "callback received" in sign_in.agent.text
    assert sign_in.agent.screenshot.stat().st_size > 0
    assert sign_in.agent.actions == ["login", "consent"]
    assert sign_in.query["state"] == sign_in.state
    assert sign_in.query["iss"] == issuer.url  # RFC 9207
    assert "error" not in sign_in.query

    response = exchange_code(issuer, sign_in)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert isinstance(tokens["refresh_token"], str) and tokens["refresh_token"]
    assert isinstance(tokens["access_token"], str) and tokens["access_token"]

    claims = jwt_payload(tokens["id_token"])
    assert claims["sub"] == "bob"
    assert claims["email"] == "bob@example.com"
    assert claims["aud"] == issuer.client_id
    assert claims["iss"] == issuer.url
    assert claims[AUTH_CLAIM] == {
        "chatgpt_account_id": "acct_bob",
        "chatgpt_plan_type": "pro",
        "chatgpt_user_id": "user_bob",
    }
    # The access token is a JWT too, carrying the plan type (the success page reads it from there).
    assert jwt_payload(tokens["access_token"])[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"

    # The authorization code is single-use.
    again = exchange_code(issuer, sign_in)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"

    recorded = issuer.requests("/oauth/token")
    assert recorded[0]["fields"]["grant_type"] == "authorization_code"
    assert recorded[0]["fields"]["code_verifier"] == sign_in.pkce.verifier


def test_account_hook_changes_the_issued_claims(
    issuer: TestIssuer, callback_server: CallbackServer, tmp_path: Path
) -> None:
    issuer.set_account(
        "carol",
        email="carol@corp.example",
        auth={"organization_id": "org_1", "chatgpt_plan_type": "team", "chatgpt_user_id": None},
        access_auth={"chatgpt_plan_type": "enterprise"},
    )
    sign_in = browser_sign_in(issuer, callback_server, tmp_path, login="carol")
    tokens = exchange_code(issuer, sign_in).json()
    id_claims = jwt_payload(tokens["id_token"])
    assert id_claims["email"] == "carol@corp.example"
    assert id_claims[AUTH_CLAIM] == {
        "chatgpt_account_id": "acct_carol",
        "chatgpt_plan_type": "team",
        "organization_id": "org_1",
    }
    assert jwt_payload(tokens["access_token"])[AUTH_CLAIM]["chatgpt_plan_type"] == "enterprise"


# ---------------------------------------------------------------------------
# (c) cancelling in the browser
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["cancel_login", "cancel_consent"])
def test_cancel_yields_access_denied(
    issuer: TestIssuer, callback_server: CallbackServer, tmp_path: Path, script: str
) -> None:
    sign_in = browser_sign_in(issuer, callback_server, tmp_path, script=script)
    assert sign_in.query["error"] == "access_denied"
    assert sign_in.query["error_description"] == "End-User aborted interaction"
    assert sign_in.query["state"] == sign_in.state
    assert "code" not in sign_in.query
    expected = ["cancel_login"] if script == "cancel_login" else ["login", "cancel_consent"]
    assert sign_in.agent.actions == expected


# ---------------------------------------------------------------------------
# (d) the token override hook
# ---------------------------------------------------------------------------


def test_token_override_answers_503_html_then_recovers(issuer: TestIssuer) -> None:
    issuer.override_token(503, content_type="text/html", body="<h1>down</h1>", headers={"x-request-id": "req_test_1"})
    form = {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": issuer.client_id}
    overridden = httpx.post(issuer.token_endpoint, data=form, timeout=HTTP_TIMEOUT, trust_env=False)
    assert overridden.status_code == 503
    assert overridden.headers["content-type"] == "text/html"
    assert overridden.headers["x-request-id"] == "req_test_1"
    assert overridden.text == "<h1>down</h1>"

    # times=1: the next request reaches the real provider.
    real = httpx.post(issuer.token_endpoint, data=form, timeout=HTTP_TIMEOUT, trust_env=False)
    assert real.status_code == 400
    assert real.json()["error"] == "invalid_grant"

    stats = issuer.stats()
    assert stats["counts"]["/oauth/token"] == 2
    assert stats["overridden"]["/oauth/token"] == 1


def test_token_override_can_drop_the_connection_and_match_grant_types(issuer: TestIssuer) -> None:
    issuer.override_token(close=True)
    form = {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": issuer.client_id}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(issuer.token_endpoint, data=form, timeout=HTTP_TIMEOUT, trust_env=False)

    issuer.override_token(401, json={"error": "refresh_token_expired"}, match={"grant_type": "refresh_token"})
    code_form = {"grant_type": "authorization_code", "code": "x", "client_id": issuer.client_id}
    not_matched = httpx.post(issuer.token_endpoint, data=code_form, timeout=HTTP_TIMEOUT, trust_env=False)
    assert not_matched.status_code == 400  # the real provider answered
    matched = httpx.post(issuer.token_endpoint, json=form, timeout=HTTP_TIMEOUT, trust_env=False)
    assert matched.status_code == 401
    assert matched.json() == {"error": "refresh_token_expired"}

    issuer.override_token(500, times=5)
    issuer.reset()
    assert issuer.stats()["counts"] == {}
    after_reset = httpx.post(issuer.token_endpoint, data=form, timeout=HTTP_TIMEOUT, trust_env=False)
    assert after_reset.status_code == 400


# ---------------------------------------------------------------------------
# (e) refresh token rotation
# ---------------------------------------------------------------------------


def test_refresh_tokens_rotate_and_a_replay_is_invalid_grant(
    issuer: TestIssuer, callback_server: CallbackServer, tmp_path: Path
) -> None:
    sign_in = browser_sign_in(issuer, callback_server, tmp_path)
    first = exchange_code(issuer, sign_in).json()

    rotated = refresh(issuer, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert jwt_payload(second["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct_alice"

    replay = refresh(issuer, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"

    # The JSON bodies were accepted (converted to a form for the provider) and recorded as JSON.
    refreshes = [r for r in issuer.requests("/oauth/token") if r["fields"].get("grant_type") == "refresh_token"]
    assert [r["media_type"] for r in refreshes] == ["application/json", "application/json"]


# ---------------------------------------------------------------------------
# The BROWSER command, the Codex-style device flow, and Chromium itself
# ---------------------------------------------------------------------------


def test_webbrowser_runs_the_agent_from_the_cli_environment(
    issuer: TestIssuer, callback_server: CallbackServer, cli_env: CliEnvFactory
) -> None:
    """What codex-login will do: ``webbrowser.open(url)`` with BROWSER from the fixture."""
    env = cli_env(script="signin", login="dave")
    pkce = Pkce.new()
    url = authorize_url(issuer, callback_server.redirect_uri, pkce, "state-webbrowser")
    opener = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1]) else 1)"
    proc = subprocess.run(
        [sys.executable, "-c", opener, url],
        env=env.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # the agent never writes to the opener's terminal
    result = env.browser_result(timeout=5)
    assert result.ok, result.describe()
    query = callback_server.next_query(timeout=5)
    assert query["state"] == "state-webbrowser" and "code" in query
    assert env.env["NO_PROXY"] == "127.0.0.1,localhost,::1"
    assert env.env["CODEX_HOME"] == str(env.codex_home)


def test_codex_style_device_flow(issuer: TestIssuer, tmp_path: Path) -> None:
    client = issuer.http
    started = client.post("/api/accounts/deviceauth/usercode", json={"client_id": issuer.client_id})
    assert started.status_code == 200
    device = started.json()
    assert set(device) == {"device_auth_id", "user_code", "interval"}
    poll = {"device_auth_id": device["device_auth_id"], "user_code": device["user_code"]}
    assert client.post("/api/accounts/deviceauth/token", json=poll).status_code == 403  # pending

    agent = run_agent(
        f"{issuer.url}/codex/device", tmp_path / "browser", script="device", user_code=device["user_code"]
    )
    assert agent.ok, agent.describe()
    assert agent.actions == ["enter_user_code", "login", "consent"]

    granted = client.post("/api/accounts/deviceauth/token", json=poll)
    assert granted.status_code == 200
    body = granted.json()
    tokens = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": body["authorization_code"],
            "redirect_uri": f"{issuer.url}/deviceauth/callback",
            "client_id": issuer.client_id,
            "code_verifier": body["code_verifier"],
        },
    )
    assert tokens.status_code == 200, tokens.text
    assert jwt_payload(tokens.json()["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct_alice"


def test_rfc8628_device_flow(issuer: TestIssuer, tmp_path: Path) -> None:
    """The standard device flow: the agent opens verification_uri_complete (code prefilled)."""
    client = issuer.http
    started = client.post(
        "/oauth/device/auth", data={"client_id": issuer.client_id, "scope": "openid profile email offline_access"}
    )
    assert started.status_code == 200, started.text
    device = started.json()
    assert device["verification_uri"] == f"{issuer.url}/device"
    grant = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device["device_code"],
        "client_id": issuer.client_id,
    }
    pending = client.post("/oauth/token", data=grant)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

    agent = run_agent(
        device["verification_uri_complete"], tmp_path / "browser", script="device", user_code=device["user_code"]
    )
    assert agent.ok, agent.describe()
    assert agent.actions == ["confirm_device", "login", "consent"]  # the code came in the URL

    tokens = client.post("/oauth/token", data=grant)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["refresh_token"]
    assert jwt_payload(tokens.json()["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == "acct_alice"


def test_chromium_runs_headless_from_the_command_line(tmp_path: Path) -> None:
    require_chromium()
    from tests.support.chromium import throwaway_profile

    with throwaway_profile(tmp_path) as profile:
        proc = subprocess.run(
            profile.command("--dump-dom", "data:text/html,<p>chromium-ok</p>"),
            env=profile.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "chromium-ok" in proc.stdout
    assert "--no-sandbox" in CHROMIUM_FLAGS


def test_agent_reports_a_dead_loopback_server(issuer: TestIssuer, tmp_path: Path) -> None:
    """When nothing listens at the redirect URI the agent fails fast, naming the URL it could not load."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    redirect_uri = f"http://localhost:{dead_port}/auth/callback"
    url = authorize_url(issuer, redirect_uri, Pkce.new(), "state-dead")
    agent = run_agent(url, tmp_path / "browser", timeout=30)
    assert not agent.ok
    assert agent.status is None
    assert agent.navigations[-1]["url"].startswith(redirect_uri)
    assert agent.navigations[-1]["failure"] == "net::ERR_CONNECTION_REFUSED"
    assert agent.error is not None and redirect_uri in agent.error
    assert (agent.result_dir / "error.txt").is_file()
