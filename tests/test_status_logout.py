"""``codex-login status`` and ``codex-login logout`` through the console script, plus the library calls.

Status reads files written by the Rust CLI (tests/fixtures/rust_*.json); logout revokes at the scripted
issuer's revocation endpoint and always removes the local credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from codex_login.account import logout, mask_api_key, read_status, revoke_tokens
from codex_login.errors import LoginError
from codex_login.http import HttpSettings
from codex_login.storage import KEYRING_SERVICE, AuthDotJson, TokenData, load_auth, store_key
from tests.hardening.conftest import CanarySet, Sinks, find_leaks
from tests.support.memory_keyring import MemoryKeyring
from tests.support.scripted_issuer import Answer, ScriptedIssuer, id_token_for, make_jwt

CLI = str(Path(sys.executable).parent / "codex-login")
FIXTURES = Path(__file__).parent / "fixtures"
REFRESH = "rt_CNRYlogout0123456789"
ACCESS = "at_CNRYlogout0123456789"


def cli_env(codex_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    env.update(extra)
    return env


def run_cli(codex_home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env=cli_env(codex_home, **(env or {})),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def use_fixture(codex_home: Path, name: str) -> None:
    (codex_home / "auth.json").write_bytes((FIXTURES / name).read_bytes())


def chatgpt_auth(*, iss: str | None = None, email: str = "user@example.com") -> AuthDotJson:
    payload: dict[str, object] = {
        "email": email,
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct_9", "chatgpt_plan_type": "team"},
        "exp": int(time.time()) + 3600,
    }
    if iss is not None:
        payload["iss"] = iss
    return AuthDotJson.from_chatgpt_tokens(TokenData.from_tokens(make_jwt(payload), ACCESS, REFRESH))


def seed_chatgpt(codex_home: Path, **kwargs: str) -> None:
    (codex_home / "auth.json").write_text(chatgpt_auth(**kwargs).to_pretty_json())


# --------------------------------------------------------------------------------------------- status

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((in )?\d+ (second|minute|hour|day)s?( ago)?\)"


def test_status_of_the_rust_chatgpt_file(codex_home: Path) -> None:
    use_fixture(codex_home, "rust_chatgpt_auth.json")
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 0 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[:4] == [
        "Logged in using ChatGPT",
        "  Account: user@example.com",
        "  Plan: Plus",
        "  Account ID: acc-fixture-1234",
    ]
    assert lines[4] == f"  Credentials: auth.json, {codex_home / 'auth.json'}"
    assert re.fullmatch(r"  Access token expired: 2026-03-16T22:09:36Z \(\d+ days ago\)", lines[5]), lines[5]
    assert re.fullmatch(r"  Last refresh: 2026-03-06T22:09:36Z \(\d+ days ago\)", lines[6]), lines[6]
    assert len(lines) == 7

    proc = run_cli(codex_home, "status", "--json")
    assert proc.returncode == 0 and proc.stderr == ""
    assert json.loads(proc.stdout) == {
        "logged_in": True,
        "auth_mode": "chatgpt",
        "store": "file",
        "store_location": str(codex_home / "auth.json"),
        "store_reason": None,
        "email": "user@example.com",
        "plan": "plus",
        "account_id": "acc-fixture-1234",
        "expires_at": "2026-03-16T22:09:36Z",
        "last_refresh": "2026-03-06T22:09:36.685438Z",
        "api_key_masked": None,
    }


@pytest.mark.parametrize(
    ("fixture", "first_line", "masked"),
    [
        ("rust_apikey_auth.json", "Logged in using an API key - sk-fixtu***bcdef", "sk-fixtu***bcdef"),
        # No auth_mode and a non-null key: apikey (reference §11.2), even with tokens beside it.
        ("legacy_python_auth.json", "Logged in using an API key - sk-legac***xture", "sk-legac***xture"),
    ],
)
def test_status_of_api_key_files(codex_home: Path, fixture: str, first_line: str, masked: str) -> None:
    use_fixture(codex_home, fixture)
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 0
    assert proc.stderr.splitlines()[0] == first_line
    assert f"  Credentials: auth.json, {codex_home / 'auth.json'}" in proc.stderr.splitlines()
    facts = json.loads(run_cli(codex_home, "status", "--json").stdout)
    assert facts["auth_mode"] == "apikey" and facts["api_key_masked"] == masked and facts["email"] is None


def test_status_without_account_claims(codex_home: Path) -> None:
    use_fixture(codex_home, "rust_chatgpt_no_account_auth.json")
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[:2] == ["Logged in using ChatGPT", "  Account: profile@example.com"]
    assert not any(line.startswith(("  Plan:", "  Account ID:", "  Access token")) for line in lines)


def test_status_not_logged_in(codex_home: Path) -> None:
    proc = run_cli(codex_home, "status")
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, "Not logged in\n", "")
    proc = run_cli(codex_home, "status", "--json")
    assert proc.returncode == 1
    facts = json.loads(proc.stdout)
    assert facts["logged_in"] is False and facts["auth_mode"] is None and facts["store"] == "file"
    assert not (codex_home / "log").exists()  # status writes no log


def test_status_errors(codex_home: Path) -> None:
    (codex_home / "auth.json").write_text("{not json")
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 1
    assert proc.stderr == (
        f"Error checking login status: failed to parse {codex_home / 'auth.json'}: "
        "invalid JSON at line 1 column 2 (Expecting property name enclosed in double quotes)\n"
    )
    proc = run_cli(codex_home, "status", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["logged_in"] is False
    (codex_home / "auth.json").unlink()
    (codex_home / "auth.json").mkdir()
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 1
    assert proc.stderr == f"Error checking login status: failed to read {codex_home / 'auth.json'}: Is a directory\n"
    (codex_home / "auth.json").rmdir()
    (codex_home / "auth.json").write_text('{"auth_mode": "apikey", "OPENAI_API_KEY": null}')
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Unexpected error retrieving API key: ")


def test_status_short_keys_are_fully_masked(codex_home: Path) -> None:
    (codex_home / "auth.json").write_text('{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-1234567890"}')
    proc = run_cli(codex_home, "status")
    assert proc.stderr.splitlines()[0] == "Logged in using an API key - ***"
    assert mask_api_key("sk-12345678901") == "sk-12345***78901"


def test_status_sanitizes_claims(codex_home: Path) -> None:
    seed_chatgpt(codex_home, email="evil\x1b]0;owned\x07@example.com\r\nInjected: yes")
    proc = run_cli(codex_home, "status")
    assert proc.returncode == 0
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr and "\x07" not in proc.stderr
    assert proc.stderr.splitlines()[1] == "  Account: evil@example.com Injected: yes"
    assert proc.stderr.splitlines()[2] == "  Plan: Team"


def test_status_json_keeps_claims_exact_but_prints_only_ascii(codex_home: Path) -> None:
    """A bidi override (U+202E), a C1 control (the 8-bit CSI U+009B) and a line separator in a claim are
    escaped in ``status --json`` (security E5): a terminal shows them as \\u escapes, a JSON reader gets them
    back exactly."""
    email = "r\u202eevil\u009b31m\u2028\u00fc@example.com"
    seed_chatgpt(codex_home, email=email)
    proc = run_cli(codex_home, "status", "--json")
    assert proc.returncode == 0
    assert proc.stdout.isascii(), proc.stdout
    assert json.loads(proc.stdout)["email"] == email


def test_status_reports_the_keyring_fallback(codex_home: Path) -> None:
    use_fixture(codex_home, "rust_apikey_auth.json")
    fail = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    proc = run_cli(codex_home, "-c", 'cli_auth_credentials_store="auto"', "status", env=fail)
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("failed to load CLI auth from keyring, falling back to file storage: ")
    assert lines[1] == "Logged in using an API key - sk-fixtu***bcdef"
    assert lines[2].startswith(f"  Credentials: auth.json (keyring fallback), {codex_home / 'auth.json'} "
                               "(keyring unavailable: failed to load CLI auth from keyring: ")
    proc = run_cli(codex_home, "-c", 'cli_auth_credentials_store="auto"', "status", "--json", env=fail)
    facts = json.loads(proc.stdout)
    assert facts["store"] == "file_fallback" and facts["store_reason"].startswith("failed to load CLI auth")
    proc = run_cli(codex_home, "-c", 'cli_auth_credentials_store="keyring"', "status", env=fail)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error checking login status: failed to load CLI auth from keyring: ")


def test_status_imports_nothing_heavy(codex_home: Path) -> None:
    use_fixture(codex_home, "rust_chatgpt_auth.json")
    probe = (
        "import sys\n"
        "from codex_login.cli import main\n"
        "code = main(['status'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'httpx', 'httpcore', 'keyring', 'asyncio', 'ssl', 'logging', 'truststore', 'h11', 'socket'})\n"
        "print(code, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env(codex_home), capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "0 []", proc.stderr


def _auth_with_token_shaped_fields(canaries: CanarySet) -> dict[str, object]:
    """A record whose account ID is its own access token and whose plan is a token-shaped value."""
    access = canaries.add("access_token", "CNRYacc")
    plan = canaries.add("plan", "CNRYplan")
    id_token = make_jwt({
        "email": "user@example.com",
        "https://api.openai.com/auth": {"chatgpt_plan_type": plan, "chatgpt_account_id": "acct_9"},
    })
    canaries.add_value("id_token", id_token)
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": id_token, "access_token": access,
            "refresh_token": canaries.add("refresh_token", "CNRYref"), "account_id": access,
        },
    }


@pytest.mark.parametrize("record", ["auth_mode", "fields"])
def test_token_shaped_values_in_auth_json_reach_no_sink(codex_home: Path, tmp_path: Path, record: str) -> None:
    """auth.json is the user's to edit: a token in ``auth_mode`` (an unsupported mode, quoted by the parse
    error), in ``tokens.account_id`` or in the plan claim must not be printed by ``status``, ``status --json``,
    ``doctor --json``, ``log`` or the bundle (DECISIONS §4: tokens only in storage)."""
    canaries = CanarySet()
    if record == "auth_mode":
        doc: dict[str, object] = {"auth_mode": canaries.add("access_token", "CNRYacc"), "OPENAI_API_KEY": None}
    else:
        doc = _auth_with_token_shaped_fields(canaries)
    (codex_home / "auth.json").write_text(json.dumps(doc))
    runs = [run_cli(codex_home, *argv) for argv in (["status"], ["status", "--json"], ["doctor", "--json"], ["log"])]
    target = tmp_path / "bundle.zip"
    runs.append(run_cli(codex_home, "bundle", "-o", str(target), "--yes"))
    assert runs[-1].returncode == 0, runs[-1].stderr
    with zipfile.ZipFile(target) as archive:
        bundle = {info.filename: archive.read(info).decode() for info in archive.infolist()}
    sinks = Sinks(terminal="\n".join(p.stdout + p.stderr for p in runs), bundle=bundle)
    leaks = find_leaks(canaries.items.values(), sinks)
    assert not leaks, "\n".join(leaks)
    # Positive controls: the problem is named, and what is no secret is still shown.
    if record == "auth_mode":
        assert "unsupported auth_mode" in runs[0].stderr and runs[0].returncode == 1
    else:
        assert runs[0].returncode == 0 and "Account: user@example.com" in runs[0].stderr
        facts = json.loads(runs[1].stdout)
        assert facts["email"] == "user@example.com" and facts["account_id"] is None and facts["plan"] is None
        assert json.loads(next(v for k, v in bundle.items() if k.endswith("credentials.json")))["present"] is True


def test_status_still_quotes_a_mode_or_plan_name(codex_home: Path) -> None:
    (codex_home / "auth.json").write_text('{"auth_mode": "agentIdentity"}')
    assert 'unsupported auth_mode "agentIdentity"' in run_cli(codex_home, "status").stderr
    doc = {"auth_mode": "chatgpt", "tokens": {
        "id_token": make_jwt({"https://api.openai.com/auth": {"chatgpt_plan_type": "free_workspace"}}),
        "access_token": ACCESS, "refresh_token": REFRESH, "account_id": "acct_9",
    }}
    (codex_home / "auth.json").write_text(json.dumps(doc))
    facts = json.loads(run_cli(codex_home, "status", "--json").stdout)
    assert facts["plan"] == "free_workspace" and facts["account_id"] == "acct_9"


# --------------------------------------------------------------------------------------------- logout


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


def revoke_requests(issuer: ScriptedIssuer, path: str = "/oauth/revoke") -> list[dict[str, str]]:
    return [r.form for r in issuer.requests if r.path == path]


def test_logout_revokes_and_removes(issuer: ScriptedIssuer, codex_home: Path) -> None:
    seed_chatgpt(codex_home)
    issuer.routes["/oauth/revoke"] = Answer(200)
    proc = run_cli(codex_home, "logout", "--issuer", issuer.url)
    assert proc.returncode == 0
    assert proc.stderr == "Successfully logged out\n"
    assert not (codex_home / "auth.json").exists()
    assert revoke_requests(issuer) == [
        {"token": REFRESH, "token_type_hint": "refresh_token", "client_id": "app_EMoamEEZ73f0CkXaXp7hrann"},
        {"token": ACCESS, "token_type_hint": "access_token", "client_id": "app_EMoamEEZ73f0CkXaXp7hrann"},
    ]
    assert issuer.requests[0].path == "/.well-known/openid-configuration"
    assert issuer.requests[1].headers["content-type"] == "application/x-www-form-urlencoded"
    log = (codex_home / "log" / "codex-login.log").read_text()
    from tests.conftest import normalize_line

    assert [normalize_line(line) for line in log.splitlines()] == [
        " INFO codex_login::auth: logout finished removed=true stores=file",
        " INFO codex_login::auth: token revoked token_kind=refresh_token",
        " INFO codex_login::auth: token revoked token_kind=access_token",
    ]
    assert REFRESH not in log and ACCESS not in log


def test_logout_during_a_refresh_in_flight_removes_and_revokes_everything(
    issuer: ScriptedIssuer, codex_home: Path
) -> None:
    """A logout while a refresh waits for the issuer's answer: the logout removes and revokes what is stored
    without waiting for the refresh (which no longer holds the auth lock over its request), and the refresh
    then saves nothing and revokes the tokens it got. It used to save them after "Successfully logged out"
    (before the auth lock), then to make the logout wait for it (and time out after 10 s on a slow issuer)."""
    import threading

    from codex_login.refresh import refresh_tokens

    seed_chatgpt(codex_home)
    answered = threading.Event()
    logged_out = threading.Event()

    def answer_after_the_logout(request: object) -> Answer:
        answered.set()
        logged_out.wait(60)
        return Answer.json(200, {"access_token": "at_new_0123456789", "refresh_token": "rt_new_0123456789"})

    issuer.token = answer_after_the_logout
    issuer.routes["/oauth/revoke"] = Answer(200)
    settings = HttpSettings(env={"CODEX_REFRESH_TOKEN_URL_OVERRIDE": f"{issuer.url}/oauth/token"}, total_timeout=30)
    failures: list[LoginError] = []

    def refresh() -> None:
        try:
            refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=settings, force=True)
        except LoginError as err:
            failures.append(err)

    refreshing = threading.Thread(target=refresh)
    refreshing.start()
    try:
        assert answered.wait(30), "the refresh never reached the issuer"
        result = logout(codex_home, "file", issuer=issuer.url, http_settings=settings)
    finally:
        logged_out.set()
        refreshing.join(30)
    assert result.removed and not (codex_home / "auth.json").exists()
    assert [err.failure_class for err in failures] == ["not_logged_in"]
    assert [form["token"] for form in revoke_requests(issuer)] == [
        REFRESH,
        ACCESS,
        "rt_new_0123456789",
        "at_new_0123456789",
    ]


def test_logout_uses_the_discovered_revocation_endpoint(issuer: ScriptedIssuer, codex_home: Path) -> None:
    seed_chatgpt(codex_home)
    issuer.routes["/.well-known/openid-configuration"] = Answer.json(
        200, {"issuer": issuer.url, "revocation_endpoint": f"{issuer.url}/token/revocation"}
    )
    issuer.routes["/token/revocation"] = Answer(200)
    proc = run_cli(codex_home, "logout", "--issuer", issuer.url)
    assert proc.returncode == 0 and proc.stderr == "Successfully logged out\n"
    assert len(revoke_requests(issuer, "/token/revocation")) == 2


def test_logout_revokes_at_the_issuer_that_issued_the_tokens(issuer: ScriptedIssuer, codex_home: Path) -> None:
    seed_chatgpt(codex_home, iss=issuer.url)
    issuer.routes["/oauth/revoke"] = Answer(200)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        configured = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = run_cli(codex_home, "logout", "--issuer", configured)
    assert proc.returncode == 0 and proc.stderr == "Successfully logged out\n"
    assert len(revoke_requests(issuer)) == 2


def test_failed_revocation_warns_and_still_removes(issuer: ScriptedIssuer, codex_home: Path) -> None:
    seed_chatgpt(codex_home)
    issuer.routes["/oauth/revoke"] = Answer.json(503, {"error": "temporarily_unavailable"})
    proc = run_cli(codex_home, "logout", "--issuer", issuer.url)
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [
        "Warning: could not revoke tokens at the issuer: failed to revoke refresh_token: "
        "503 Service Unavailable: temporarily_unavailable",
        "Warning: could not revoke tokens at the issuer: failed to revoke access_token: "
        "503 Service Unavailable: temporarily_unavailable",
        "Successfully logged out",
    ]
    assert not (codex_home / "auth.json").exists()
    log = (codex_home / "log" / "codex-login.log").read_text()
    assert "WARN codex_login::auth: token revocation failed token_kind=refresh_token status=503 Service " in log


def test_unreachable_issuer_still_logs_out(codex_home: Path) -> None:
    seed_chatgpt(codex_home)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_cli(codex_home, "logout", "--issuer", f"http://127.0.0.1:{port}")
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert lines[0] == (
        "Warning: could not revoke tokens at the issuer: failed to revoke refresh_token: error sending request "
        f"for url (http://127.0.0.1:{port}/oauth/revoke): connection refused"
    )
    assert lines[-1] == "Successfully logged out"
    assert not (codex_home / "auth.json").exists()
    assert REFRESH not in proc.stderr


def test_logout_when_not_logged_in_and_for_api_keys(issuer: ScriptedIssuer, codex_home: Path) -> None:
    proc = run_cli(codex_home, "logout", "--issuer", issuer.url)
    assert (proc.returncode, proc.stderr) == (0, "Not logged in\n")
    use_fixture(codex_home, "rust_apikey_auth.json")
    proc = run_cli(codex_home, "logout", "--issuer", issuer.url)
    assert (proc.returncode, proc.stderr) == (0, "Successfully logged out\n")
    assert issuer.requests == []  # an API key has nothing to revoke


def test_logout_error(codex_home: Path) -> None:
    (codex_home / "auth.json").mkdir()
    proc = run_cli(codex_home, "logout")
    assert proc.returncode == 1
    assert proc.stderr == f"Error logging out: failed to delete {codex_home / 'auth.json'}: Is a directory\n"


def test_logout_removes_an_unparsable_file(codex_home: Path) -> None:
    (codex_home / "auth.json").write_text("{broken")
    proc = run_cli(codex_home, "logout")
    assert (proc.returncode, proc.stderr) == (0, "Successfully logged out\n")
    assert not (codex_home / "auth.json").exists()


# --------------------------------------------------------------------------------------------- library


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_logout_clears_every_store(issuer: ScriptedIssuer, codex_home: Path, memory_keyring: MemoryKeyring) -> None:
    issuer.routes["/oauth/revoke"] = Answer(200)
    other = chatgpt_auth()
    assert other.tokens is not None
    other.tokens.refresh_token = "rt_in_keyring_0123456789"
    memory_keyring.set_password(KEYRING_SERVICE, store_key(codex_home), other.to_compact_json())
    seed_chatgpt(codex_home)
    result = logout(
        codex_home, "file", issuer=issuer.url, http_settings=HttpSettings(env={}, total_timeout=5.0)
    )
    assert result.removed and result.removed_from == ["file", "keyring"]
    assert memory_keyring.entries == {} and not (codex_home / "auth.json").exists()
    revoked = [r["token"] for r in revoke_requests(issuer)]
    assert revoked == [REFRESH, ACCESS, "rt_in_keyring_0123456789", ACCESS]
    assert all(o.ok for o in result.revocations) and result.revoke_errors == []


def test_logout_in_keyring_mode(issuer: ScriptedIssuer, codex_home: Path, memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(KEYRING_SERVICE, store_key(codex_home), chatgpt_auth().to_compact_json())
    result = logout(codex_home, "keyring", issuer=issuer.url, revoke=False)
    assert result.removed_from == ["keyring"] and memory_keyring.entries == {}
    assert issuer.requests == []
    assert not logout(codex_home, "keyring", issuer=issuer.url).removed


def test_ephemeral_logout_and_status(codex_home: Path) -> None:
    from codex_login.storage import create_store

    create_store(codex_home, "ephemeral").save(AuthDotJson.from_api_key("sk-ephemeral-0123456789"))
    facts = read_status(codex_home, "ephemeral")
    assert facts.logged_in and facts.store == "ephemeral" and facts.api_key_masked == "sk-ephem***56789"
    result = logout(codex_home, "ephemeral", revoke=False)
    assert result.removed_from == ["ephemeral"]
    assert load_auth(codex_home, "ephemeral") is None


def test_revoke_tokens_reports_each_outcome(issuer: ScriptedIssuer) -> None:
    tokens = TokenData.from_tokens(id_token_for(), ACCESS, REFRESH)
    answers = iter([Answer(200), Answer.json(400, {"error": "unsupported_token_type"})])
    issuer.routes["/oauth/revoke"] = lambda _rec: next(answers)
    outcomes = revoke_tokens(tokens, issuer=issuer.url, http_settings=HttpSettings(env={}, total_timeout=5.0))
    assert [(o.token_kind, o.ok) for o in outcomes] == [("refresh_token", True), ("access_token", False)]
    assert outcomes[1].error == "failed to revoke access_token: 400 Bad Request: unsupported_token_type"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_a_logout_stopped_during_a_hung_revocation_has_removed_everything_and_the_next_run_works(
    issuer: ScriptedIssuer, codex_home: Path, signum: signal.Signals
) -> None:
    """Local removal comes before the revocation: a logout stopped while the issuer never answers the
    revocation has already removed auth.json (no half-removed state, no temporary file), released the auth
    lock, and the next status, sign-in and logout work."""
    seed_chatgpt(codex_home)
    arrived, release = threading.Event(), threading.Event()

    def hang(_request: object) -> Answer:
        arrived.set()
        release.wait(60)
        return Answer(200)

    issuer.routes["/oauth/revoke"] = hang
    proc = subprocess.Popen(
        [CLI, "logout", "--issuer", issuer.url],
        env=cli_env(codex_home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert arrived.wait(30), "the revocation never reached the issuer"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == (130 if signum == signal.SIGINT else -signum), err
    assert "Traceback" not in err
    assert sorted(p.name for p in codex_home.iterdir()) == [".auth.lock", "log"]
    status = run_cli(codex_home, "status")
    assert (status.returncode, status.stderr) == (1, "Not logged in\n")
    signed_in = subprocess.run(
        [CLI, "--with-api-key"],
        env=cli_env(codex_home),
        input="sk-after-logout\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert signed_in.returncode == 0, signed_in.stderr
    assert json.loads((codex_home / "auth.json").read_text())["OPENAI_API_KEY"] == "sk-after-logout"
    again = run_cli(codex_home, "logout", "--issuer", issuer.url)
    assert (again.returncode, again.stderr) == (0, "Successfully logged out\n")
    assert sorted(p.name for p in codex_home.iterdir()) == [".auth.lock", "log"]


# A sign-in's save (store_lock, then FileStore.save: what the browser, device and API-key sign-ins do) that
# stops between the fsync of its temporary file and the rename, until the test writes a line on its stdin.
PAUSED_SAVE = """
import os, sys
from codex_login.storage import AuthDotJson, FileStore, store_lock
real_replace = os.replace

def paused_replace(src, dst):
    print("paused", flush=True)
    sys.stdin.readline()
    real_replace(src, dst)

os.replace = paused_replace
with store_lock(sys.argv[1], "file"):
    FileStore(sys.argv[1]).save(AuthDotJson.from_api_key("sk-saved-new"))
print("saved", flush=True)
"""


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (logout waiting for the auth lock polls with it open)."""
    fds = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(FileNotFoundError):
        return any(os.path.realpath(fd) == str(path) for fd in fds.iterdir())
    return False


def test_status_and_logout_during_a_sign_in_save(codex_home: Path) -> None:
    """At the worst moment of a save (temporary file complete, not renamed yet, the auth lock held): status
    reads the whole old record; a logout waits for the lock instead of removing the old file under the save,
    then removes the new one, so "Successfully logged out" is true and nothing is left behind."""
    (codex_home / "auth.json").write_text(AuthDotJson.from_api_key("sk-stored-old-0123456789abcdef").to_pretty_json())
    saver = subprocess.Popen(
        [sys.executable, "-c", PAUSED_SAVE, str(codex_home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    logout_proc: subprocess.Popen[str] | None = None
    try:
        assert saver.stdout is not None and saver.stdin is not None
        assert saver.stdout.readline() == "paused\n"
        assert len([p for p in codex_home.iterdir() if p.name.startswith(".auth.json.tmp-")]) == 1
        status = run_cli(codex_home, "status")
        assert (status.returncode, status.stderr.splitlines()[0]) == (0, "Logged in using an API key - sk-store***bcdef")
        logout_proc = subprocess.Popen(
            [CLI, "logout"], env=cli_env(codex_home), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 30
        while not holds_open(logout_proc.pid, codex_home / ".auth.lock"):
            assert logout_proc.poll() is None, "logout ended while the save held the auth lock"
            assert time.monotonic() < deadline, "logout never opened the auth lock"
            time.sleep(0.01)
        assert load_auth(codex_home) == AuthDotJson.from_api_key("sk-stored-old-0123456789abcdef")  # still waiting, nothing removed
        saver.stdin.write("go\n")
        saver.stdin.flush()
        assert saver.stdout.readline() == "saved\n"
        _, logout_err = logout_proc.communicate(timeout=30)
    finally:
        for proc in (saver, logout_proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert saver.wait(timeout=10) == 0
    assert (logout_proc.returncode, logout_err) == (0, "Successfully logged out\n")
    assert sorted(p.name for p in codex_home.iterdir()) == [".auth.lock", "log"]
