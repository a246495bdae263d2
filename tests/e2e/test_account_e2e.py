"""Device sign-in, refresh and revocation against the real OpenID provider (oidc-provider) and Chromium.

* RFC 8628 through the console script: ``codex-login --device-auth`` prints the verification URL and the
  user code; headless Chromium opens that URL at the provider and confirms the code; the CLI's polling
  picks the tokens up and saves them.
* The Codex dialect through the library, at the issuer's Codex-style endpoints (``/codex/device``).
* Refresh: rotation, then the provider's reuse detection (a replayed refresh token is ``invalid_grant``,
  which revokes the grant) surfacing as the reference's generic message.
* Logout: the refresh token it revoked no longer refreshes.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO

import pytest

from codex_login.device_code import DeviceCode, DeviceLoginOptions, run_device_code_login
from codex_login.http import HttpSettings
from codex_login.refresh import MSG_GENERIC, RefreshTokenError, refresh_tokens
from codex_login.storage import load_auth
from tests.e2e.conftest import CliEnvFactory, CodexLogin
from tests.support.browser_agent import run_agent
from tests.support.issuer import TestIssuer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

HTTP = HttpSettings(env={}, total_timeout=10.0, connect_timeout=10.0)
PROMPT_URL = re.compile(r"1\. Open this link in your browser and sign in to your account\n   (\S+)\n")
PROMPT_CODE = re.compile(r"2\. Enter this one-time code \(expires in \d+ minutes?\)\n   (\S+)\n")


def _pump(stream: IO[str], chunks: queue.Queue[str | None]) -> None:
    for line in iter(stream.readline, ""):
        chunks.put(line)
    chunks.put(None)


def _read_prompt(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[str, str]:
    """The verification URL and user code the CLI printed on stdout."""
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    seen = ""
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            break
        if line is None:
            break
        seen += line
        url, code = PROMPT_URL.search(seen), PROMPT_CODE.search(seen)
        if url and code:
            return url.group(1), code.group(1)
    stderr = proc.stderr.read() if proc.stderr is not None and proc.poll() is not None else ""
    raise AssertionError(f"no device prompt on stdout:\n{seen}\nstderr:\n{stderr}")


def device_sign_in(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, tmp_path: Path, codex_home: Path
) -> str:
    """``codex-login --device-auth`` with Chromium entering the code; returns the CLI's stderr."""
    env = cli_env(codex_home=codex_home)
    proc = codex_login.start(["--device-auth", "--port", "0", "--issuer", issuer.url], env)
    try:
        url, user_code = _read_prompt(proc)
        # verification_uri_complete: the provider's own page, with the code already in it.
        assert url.startswith(f"{issuer.url}/device")
        assert user_code in url
        agent = run_agent(
            url, tmp_path / f"agent-{codex_home.name}", env=env.env, script="device", user_code=user_code,
            issuer=issuer.url, timeout=60,
        )
        assert agent.ok, agent.describe()
        assert agent.actions == ["confirm_device", "login", "consent"]
        proc.wait(timeout=60)
        stderr = proc.stderr.read() if proc.stderr is not None else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, stderr
    return stderr


def test_rfc8628_device_sign_in_through_the_cli(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, tmp_path: Path, codex_home: Path
) -> None:
    stderr = device_sign_in(issuer, codex_login, cli_env, tmp_path, codex_home)
    assert stderr.splitlines() == ["Successfully logged in"]
    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["auth_mode"] == "chatgpt" and saved["OPENAI_API_KEY"] is None
    assert saved["tokens"]["account_id"] == "acct_alice" and saved["tokens"]["refresh_token"]
    auth = load_auth(codex_home)
    assert auth is not None and auth.tokens is not None and auth.tokens.id_token.email == "alice@example.com"

    polls = [r for r in issuer.requests("/oauth/token") if r["fields"].get("grant_type", "").endswith("device_code")]
    assert len(polls) >= 1 and polls[-1]["media_type"] == "application/x-www-form-urlencoded"
    device_auth = issuer.requests("/oauth/device/auth")
    assert [r["fields"]["scope"] for r in device_auth] == ["openid profile email offline_access"]

    log = (codex_home / "log" / "codex-login.log").read_text()
    assert "device code requested dialect=rfc8628 status=200 OK interval_effective=5" in log
    assert "login finished outcome=success flow=device" in log
    for secret in (saved["tokens"]["refresh_token"], saved["tokens"]["access_token"]):
        assert secret not in log

    status = codex_login.run(["status", "--json"], cli_env(codex_home=codex_home))
    facts = json.loads(status.stdout)
    assert status.returncode == 0 and facts["email"] == "alice@example.com" and facts["plan"] == "pro"
    assert facts["expires_at"] is not None  # the provider's access tokens are JWTs with exp


def test_codex_dialect_at_the_real_issuer(issuer: TestIssuer, tmp_path: Path, codex_home: Path) -> None:
    issuer.set_device(interval="1")
    agents: list[bool] = []
    drivers: list[threading.Thread] = []

    def enter_code(code: DeviceCode) -> None:
        assert code.verification_url == f"{issuer.url}/codex/device"

        def drive() -> None:
            result = run_agent(
                code.verification_url, tmp_path / "agent", script="device", user_code=code.user_code, timeout=60
            )
            agents.append(result.ok)

        driver = threading.Thread(target=drive, daemon=True)
        drivers.append(driver)
        driver.start()

    options = DeviceLoginOptions(
        codex_home=codex_home, issuer=issuer.url, dialect="codex", http=HTTP, min_interval=1.0
    )
    result = run_device_code_login(options, on_code=enter_code)
    assert result.account_id == "acct_alice" and result.store == "file"
    drivers[0].join(timeout=60)
    assert agents == [True]
    exchange = [r for r in issuer.requests("/oauth/token") if r["fields"].get("grant_type") == "authorization_code"]
    assert exchange[-1]["fields"]["redirect_uri"] == f"{issuer.url}/deviceauth/callback"


def test_refresh_rotation_and_reuse_detection(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, tmp_path: Path, codex_home: Path
) -> None:
    device_sign_in(issuer, codex_login, cli_env, tmp_path, codex_home)
    original = (codex_home / "auth.json").read_bytes()
    first = load_auth(codex_home)
    assert first is not None and first.tokens is not None

    rotated = refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=HTTP, force=True)
    assert rotated.tokens is not None
    assert rotated.tokens.refresh_token != first.tokens.refresh_token
    assert rotated.tokens.access_token != first.tokens.access_token
    stored = load_auth(codex_home)
    assert stored is not None and stored.tokens is not None
    assert stored.tokens.refresh_token == rotated.tokens.refresh_token
    refreshes = [r for r in issuer.requests("/oauth/token") if r["fields"].get("grant_type") == "refresh_token"]
    assert [r["media_type"] for r in refreshes] == ["application/json"]  # the reference's JSON body

    # A copy of the old auth.json elsewhere spends the already-used refresh token: reuse.
    stale_home = tmp_path / "stale-home"
    stale_home.mkdir(mode=0o700)
    (stale_home / "auth.json").write_bytes(original)
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(stale_home, "file", issuer=issuer.url, http_settings=HTTP, force=True)
    assert str(caught.value) == MSG_GENERIC and caught.value.permanent
    assert (stale_home / "auth.json").read_bytes() == original  # a failed refresh changes nothing

    # The provider revoked the whole grant on reuse: the rotated token is dead too.
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=HTTP, force=True)
    assert str(caught.value) == MSG_GENERIC


def test_logout_revokes_at_the_real_provider(
    issuer: TestIssuer, codex_login: CodexLogin, cli_env: CliEnvFactory, tmp_path: Path, codex_home: Path
) -> None:
    device_sign_in(issuer, codex_login, cli_env, tmp_path, codex_home)
    copy_home = tmp_path / "copy-home"
    copy_home.mkdir(mode=0o700)
    shutil.copy(codex_home / "auth.json", copy_home / "auth.json")

    proc = codex_login.run(["logout", "--issuer", issuer.url], cli_env(codex_home=codex_home))
    assert proc.returncode == 0 and proc.stderr == "Successfully logged out\n"
    assert not (codex_home / "auth.json").exists()
    revocations = issuer.requests("/oauth/revoke")
    assert [r["fields"]["token_type_hint"] for r in revocations] == ["refresh_token", "access_token"]
    assert all(r["media_type"] == "application/x-www-form-urlencoded" for r in revocations)

    # The revoked refresh token no longer works.
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(copy_home, "file", issuer=issuer.url, http_settings=HTTP, force=True)
    assert str(caught.value) == MSG_GENERIC
    log = (codex_home / "log" / "codex-login.log").read_text()
    assert "token revoked token_kind=refresh_token" in log and "token revoked token_kind=access_token" in log
