"""``codex-login app-server`` end to end: the real test issuer (oidc-provider) and headless Chromium.

As an editor does, the client opens ``authUrl`` itself (here: it starts the scripted browser agent with it; the
app server, like the reference's, opens no browser), the agent signs in on the issuer's login and consent
pages, the loopback server exchanges the code, and the client learns of it only through
``account/login/completed`` and ``account/updated`` on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import CliEnv, CliEnvFactory
from tests.support.browser_agent import AGENT_PATH
from tests.support.issuer import TestIssuer
from tests.test_app_server import AppServerProcess, split_notification

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CLIENT_INFO = {"name": "e2e_client", "version": "9.9.9", "title": "E2E"}
SIGN_IN_TIMEOUT = 90.0


@pytest.fixture
def started() -> Iterator[list[AppServerProcess]]:
    servers: list[AppServerProcess] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def launch(env: CliEnv, issuer: TestIssuer, tmp_path: Path, started: list[AppServerProcess]) -> AppServerProcess:
    environ = {**env.env, "CODEX_LOGIN_APP_SERVER_PORT": "0"}
    server = AppServerProcess(environ, ["--issuer", issuer.url], tmp_path / f"app-server-{len(started)}.stderr")
    started.append(server)
    answer = server.request("initialize", {"clientInfo": CLIENT_INFO})
    assert answer["result"]["codexHome"] == str(env.codex_home.resolve())
    server.send({"method": "initialized"})
    return server


def open_as_the_client(env: CliEnv, auth_url: str) -> subprocess.Popen[bytes]:
    """What an editor does with ``authUrl``: open it (the app server does not: one tab, not two)."""
    return subprocess.Popen([sys.executable, str(AGENT_PATH), auth_url], env=env.env)


def test_sign_in_read_and_log_out_through_the_real_browser(
    issuer: TestIssuer, cli_env: CliEnvFactory, codex_home: Path, tmp_path: Path, started: list[AppServerProcess]
) -> None:
    env = cli_env(script="signin", login="alice")
    server = launch(env, issuer, tmp_path, started)
    assert server.request("account/read")["result"]["account"] is None

    start = server.request("account/login/start", {"type": "chatgpt"})["result"]
    login_id, auth_url = start["loginId"], start["authUrl"]
    assert auth_url.startswith(f"{issuer.authorize_endpoint}?")
    query = parse_qs(urlsplit(auth_url).query)
    assert query["originator"] == ["e2e_client"]
    redirect_uri = query["redirect_uri"][0]
    browser = open_as_the_client(env, auth_url)

    method, params = split_notification(server.next_message(timeout=SIGN_IN_TIMEOUT))
    assert (method, params) == (
        "account/login/completed",
        {"loginId": login_id, "success": True, "error": None, "onboardingEntrypoint": None},
    ), server.stderr()
    assert split_notification(server.next_message()) == (
        "account/updated",
        {"authMode": "chatgpt", "planType": "pro"},
    )
    agent = env.browser_result(timeout=30)
    assert agent.ok, agent.describe()
    assert browser.wait(timeout=30) == 0
    assert urlsplit(agent.final_url).path == "/success"

    account = server.request("account/read", {"refreshToken": False})["result"]
    assert account["account"] == {"type": "chatgpt", "email": "alice@example.com", "planType": "pro"}
    assert account["requiresOpenaiAuth"] is True
    token_requests = [
        r for r in issuer.requests("/oauth/token") if r["fields"].get("grant_type") == "authorization_code"
    ]
    assert len(token_requests) == 1
    assert token_requests[0]["fields"]["redirect_uri"] == redirect_uri
    stored = json.loads((codex_home / "auth.json").read_text())
    assert stored["auth_mode"] == "chatgpt"
    refresh_token = stored["tokens"]["refresh_token"]

    logout_id = server.send_request("account/logout")
    assert server.next_message() == {"id": logout_id, "result": {}}
    assert split_notification(server.next_message()) == ("account/updated", {"authMode": None, "planType": None})
    assert not (codex_home / "auth.json").exists()
    assert server.request("account/read")["result"]["account"] is None
    revoked = [r["fields"].get("token_type_hint") for r in issuer.requests("/oauth/revoke")]
    assert revoked[:1] == ["refresh_token"], revoked

    server.close_stdin()
    assert server.wait() == 0
    log = (codex_home / "log" / "codex-login.log").read_text()
    assert "login finished outcome=success flow=browser" in log
    assert "logout finished removed=true" in log
    for secret in (refresh_token, stored["tokens"]["access_token"], query["state"][0]):
        assert secret not in log
        assert secret not in server.stderr()


def test_cancel_on_the_issuer_page_completes_with_the_error(
    issuer: TestIssuer, cli_env: CliEnvFactory, codex_home: Path, tmp_path: Path, started: list[AppServerProcess]
) -> None:
    env = cli_env(script="cancel_login", login="bob")
    server = launch(env, issuer, tmp_path, started)
    start = server.request("account/login/start", {"type": "chatgpt"})["result"]
    login_id = start["loginId"]
    browser = open_as_the_client(env, start["authUrl"])

    method, params = split_notification(server.next_message(timeout=SIGN_IN_TIMEOUT))
    assert (method, params) == (
        "account/login/completed",
        {
            "loginId": login_id,
            "success": False,
            "error": "Login server error: Sign-in failed: End-User aborted interaction",
            "onboardingEntrypoint": None,
        },
    ), server.stderr()
    agent = env.browser_result(timeout=30)
    assert agent.ok, agent.describe()
    assert browser.wait(timeout=30) == 0
    assert "Sign-in failed: End-User aborted interaction" in agent.text
    assert not (codex_home / "auth.json").exists()
    assert server.request("account/read")["result"]["account"] is None
    server.assert_quiet()  # no account/updated after a failed sign-in
