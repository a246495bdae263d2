"""Token refresh against the scripted issuer: request shape, merge and rotation, the reference's messages,
and two processes racing for the lock (only one refresh request may reach the issuer)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_login.config import CLIENT_ID
from codex_login.errors import ErrorKind, LoginError
from codex_login.http import HttpSettings
from codex_login.refresh import (
    MSG_EXPIRED,
    MSG_GENERIC,
    MSG_INVALIDATED,
    MSG_REUSED,
    RefreshTokenError,
    needs_refresh,
    refresh_tokens,
)
from codex_login.storage import AuthDotJson, FileStore, TokenData, load_auth, store_lock
from tests.conftest import LoginLog
from tests.support.scripted_issuer import Answer, ScriptedIssuer, id_token_for, make_jwt

OLD_REFRESH = "rt_CNRYold0123456789"
NEW_REFRESH = "rt_CNRYnew0123456789"
SETTINGS = HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0)


def access_token(expires_in: int, plan: str = "pro") -> str:
    return make_jwt(
        {"exp": int(time.time()) + expires_in, "https://api.openai.com/auth": {"chatgpt_plan_type": plan}}
    )


def seed(codex_home: Path, *, expires_in: int = 3600, last_refresh_days: float = 0.0) -> AuthDotJson:
    tokens = TokenData.from_tokens(id_token_for(account_id="acct_1"), access_token(expires_in), OLD_REFRESH)
    auth = AuthDotJson.from_chatgpt_tokens(
        tokens, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=last_refresh_days)
    )
    (codex_home / "auth.json").write_text(auth.to_pretty_json())
    return auth


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


def refreshed_answer(**fields: object) -> Answer:
    return Answer.json(200, fields)


# --------------------------------------------------------------------------------------------- needs_refresh


def test_needs_refresh_rules(codex_home: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    assert not needs_refresh(seed(codex_home, expires_in=3600), now)
    assert needs_refresh(seed(codex_home, expires_in=299), now)  # within 5 minutes of exp
    assert needs_refresh(seed(codex_home, expires_in=-10), now)
    assert needs_refresh(seed(codex_home, expires_in=3600, last_refresh_days=8.01), now)
    assert not needs_refresh(seed(codex_home, expires_in=3600, last_refresh_days=7.9), now)
    opaque = seed(codex_home)
    assert opaque.tokens is not None
    opaque.tokens.access_token = "opaque-access-token"
    assert not needs_refresh(opaque, now)
    assert not needs_refresh(AuthDotJson.from_api_key("sk-x"), now)


# --------------------------------------------------------------------------------------------- success


def test_refresh_rotates_and_saves(issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog) -> None:
    seed(codex_home, expires_in=60)
    new_access = access_token(3600, plan="plus")
    new_id = id_token_for(account_id="acct_1", email="new@example.com")
    issuer.token = refreshed_answer(id_token=new_id, access_token=new_access, refresh_token=NEW_REFRESH)
    before = dt.datetime.now(dt.UTC)
    auth = refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    request = issuer.token_requests()[0]
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {
        "client_id": CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": OLD_REFRESH,
    }
    assert auth.tokens is not None and auth.tokens.refresh_token == NEW_REFRESH
    stored = load_auth(codex_home)
    assert stored is not None and stored.tokens is not None
    assert stored.tokens.refresh_token == NEW_REFRESH
    assert stored.tokens.access_token == new_access
    assert stored.tokens.id_token.email == "new@example.com"
    assert stored.tokens.account_id == "acct_1"
    assert stored.last_refresh is not None and stored.last_refresh >= before.replace(microsecond=0)
    assert list(json.loads((codex_home / "auth.json").read_text())) == [
        "auth_mode",
        "OPENAI_API_KEY",
        "tokens",
        "last_refresh",
    ]
    assert login_log.normalized() == [
        " INFO codex_login::auth: starting token refresh token_endpoint=http://127.0.0.1:PORT/oauth/token",
        ' INFO codex_login::auth: oauth token endpoint response status=200 OK content_type="application/json" '
        "body_len=N",
        " INFO codex_login::auth: token refresh succeeded status=200 OK rotated=true",
    ]
    text = "\n".join(login_log.lines())
    assert OLD_REFRESH not in text and NEW_REFRESH not in text and new_access not in text


def test_refresh_without_rotation_keeps_the_other_tokens(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    seeded = seed(codex_home, expires_in=60)
    assert seeded.tokens is not None
    issuer.token = refreshed_answer(access_token="new-access")
    auth = refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    assert auth.tokens is not None
    assert auth.tokens.access_token == "new-access"
    assert auth.tokens.refresh_token == OLD_REFRESH
    assert auth.tokens.id_token.raw_jwt == seeded.tokens.id_token.raw_jwt
    assert login_log.normalized()[-1] == " INFO codex_login::auth: token refresh succeeded status=200 OK rotated=false"


def test_fresh_tokens_are_not_refreshed_unless_forced(issuer: ScriptedIssuer, codex_home: Path) -> None:
    seed(codex_home, expires_in=3600)
    issuer.token = refreshed_answer(access_token="forced-access", refresh_token=NEW_REFRESH)
    auth = refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    assert auth.tokens is not None and auth.tokens.refresh_token == OLD_REFRESH
    assert issuer.token_requests() == []
    # The caller read a refresh token that is no longer stored: someone refreshed already, even when forced.
    auth = refresh_tokens(
        codex_home, "file", issuer=issuer.url, http_settings=SETTINGS, force=True, seen_refresh_token="rt_other"
    )
    assert issuer.token_requests() == []
    auth = refresh_tokens(
        codex_home, "file", issuer=issuer.url, http_settings=SETTINGS, force=True, seen_refresh_token=OLD_REFRESH
    )
    assert auth.tokens is not None and auth.tokens.access_token == "forced-access"
    assert len(issuer.token_requests()) == 1


def test_refresh_url_override(issuer: ScriptedIssuer, codex_home: Path) -> None:
    seed(codex_home, expires_in=60)
    issuer.routes["/custom/refresh"] = refreshed_answer(access_token="overridden")
    settings = HttpSettings(
        env={"CODEX_REFRESH_TOKEN_URL_OVERRIDE": f"{issuer.url}/custom/refresh"}, total_timeout=5.0
    )
    auth = refresh_tokens(codex_home, "file", issuer="https://auth.openai.com", http_settings=settings)
    assert auth.tokens is not None and auth.tokens.access_token == "overridden"
    assert [r.path for r in issuer.requests] == ["/custom/refresh"]


def test_refresh_override_with_sensitive_query_values_stays_out_of_the_log(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    # The refresh endpoint is logged (token_endpoint=...); a gateway override may carry ?apikey=/&password=,
    # which only R-2's extended list names.
    seed(codex_home, expires_in=60)
    issuer.routes["/custom/refresh"] = refreshed_answer(access_token="overridden")
    query = "apikey=CNRYapikey&password=CNRYpassword&session=CNRYsession&secret=CNRYsecret"
    settings = HttpSettings(
        env={"CODEX_REFRESH_TOKEN_URL_OVERRIDE": f"{issuer.url}/custom/refresh?{query}"}, total_timeout=5.0
    )
    refresh_tokens(codex_home, "file", issuer="https://auth.openai.com", http_settings=settings)
    assert [r.path for r in issuer.requests] == [f"/custom/refresh?{query}"]
    text = "\n".join(login_log.lines())
    assert "CNRY" not in text
    assert "/custom/refresh?apikey=%3Credacted%3E&password=%3Credacted%3E" in text


# --------------------------------------------------------------------------------------------- failures


PERMANENT = [
    (401, {"error": {"code": "refresh_token_expired", "message": "expired"}}, MSG_EXPIRED, "refresh_token_expired"),
    (401, {"error": "refresh_token_reused"}, MSG_REUSED, "refresh_token_reused"),
    (401, {"error": {"code": "refresh_token_invalidated"}}, MSG_INVALIDATED, "refresh_token_invalidated"),
    (401, {"error": "something_else"}, MSG_GENERIC, "refresh_token_invalid"),
    (401, {}, MSG_GENERIC, "refresh_token_invalid"),
    # oidc-provider (RFC 6749 §5.2) answers 400 invalid_grant for an expired, reused or revoked token.
    (400, {"error": "invalid_grant", "error_description": "grant request is invalid"}, MSG_GENERIC,
     "refresh_token_invalid"),
]


@pytest.mark.parametrize("case", PERMANENT, ids=["expired", "reused", "invalidated", "other", "empty", "invalid_grant"])
def test_permanent_failures_use_the_reference_messages(
    case: tuple[int, dict[str, object], str, str], issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    status, body, message, failure = case
    seed(codex_home, expires_in=60)
    before = (codex_home / "auth.json").read_bytes()
    issuer.token = Answer.json(status, body)
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    err = caught.value
    assert str(err) == message and err.permanent and err.failure_class == failure
    assert err.kind is ErrorKind.PERMISSION_DENIED and err.status == status
    assert (codex_home / "auth.json").read_bytes() == before
    last = login_log.normalized()[-1]
    assert last.startswith(f"ERROR codex_login::auth: token refresh failed status={status} "), last
    assert last.endswith(f"reason={failure}")


def test_transient_failures(issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog) -> None:
    seed(codex_home, expires_in=60)
    issuer.token = Answer.text(500, f"upstream down, token {OLD_REFRESH}")
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    assert str(caught.value) == "Failed to refresh token: 500 Internal Server Error: upstream down, token <redacted>"
    assert not caught.value.permanent and caught.value.failure_class == "refresh_http_error"

    issuer.token = Answer.text(200, "<html>captive portal</html>", "text/html")
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    assert caught.value.failure_class == "refresh_invalid_response"

    # Nested past the decoder's depth: RecursionError, not ValueError, once escaped as a traceback.
    issuer.token = Answer.text(200, "[" * 50_000 + "]" * 50_000, "application/json")
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    assert caught.value.failure_class == "refresh_invalid_response"

    issuer.token = refreshed_answer(id_token="not-a-jwt", access_token="a")
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=issuer.url, http_settings=SETTINGS)
    assert str(caught.value) == "Failed to refresh token: the new ID token is invalid: invalid ID token format"
    stored = load_auth(codex_home)
    assert stored is not None and stored.tokens is not None and stored.tokens.refresh_token == OLD_REFRESH

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RefreshTokenError) as caught:
        refresh_tokens(codex_home, "file", issuer=f"http://127.0.0.1:{port}", http_settings=SETTINGS)
    assert caught.value.failure_class == "transport_connect"
    assert str(caught.value).startswith(f"Failed to refresh token: error sending request for url (http://127.0.0.1:{port}")
    assert login_log.normalized()[-1] == (
        'ERROR codex_login::auth: token refresh failed status=none error_code="unknown" reason=transport_connect'
    )
    assert OLD_REFRESH not in "\n".join(login_log.lines())


def test_nothing_to_refresh(codex_home: Path) -> None:
    with pytest.raises(LoginError) as caught:
        refresh_tokens(codex_home, "file")
    assert caught.value.failure_class == "not_logged_in"
    (codex_home / "auth.json").write_text(AuthDotJson.from_api_key("sk-x").to_pretty_json())
    with pytest.raises(LoginError):
        refresh_tokens(codex_home, "file")


# --------------------------------------------------------------------------------------------- two processes

RACER = textwrap.dedent(
    """
    import json, sys
    from codex_login.http import HttpSettings
    from codex_login.refresh import refresh_tokens
    home, url, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    kwargs = {"force": True, "seen_refresh_token": sys.argv[4]} if mode == "forced" else {}
    print("ready", flush=True)
    sys.stdin.readline()
    auth = refresh_tokens(home, "file", issuer=url, http_settings=HttpSettings(env={}, total_timeout=10.0), **kwargs)
    print(json.dumps({"access": auth.tokens.access_token, "refresh": auth.tokens.refresh_token}), flush=True)
    """
)


@pytest.mark.parametrize("mode", ["proactive", "forced"])
def test_two_processes_spend_the_refresh_token_once(issuer: ScriptedIssuer, codex_home: Path, mode: str) -> None:
    seed(codex_home, expires_in=60)
    # A slow answer keeps the first process inside the lock while the second one waits for it.
    answer = refreshed_answer(access_token="access-after-race", refresh_token=NEW_REFRESH)
    answer.hang = 1.0
    issuer.token = answer
    env = dict(os.environ)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(codex_home), issuer.url, mode, OLD_REFRESH],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # release both at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"access": "access-after-race", "refresh": NEW_REFRESH}
    assert len(issuer.token_requests()) == 1
    assert json.loads(issuer.token_requests()[0].body)["refresh_token"] == OLD_REFRESH


# ------------------------------------------------------------------------- a refresh in flight, other writers

CLI = str(Path(sys.executable).parent / "codex-login")

SLOW_REFRESHER = textwrap.dedent(
    """
    import json, sys
    from codex_login.http import HttpSettings
    from codex_login.refresh import refresh_tokens
    from codex_login.errors import LoginError
    try:
        auth = refresh_tokens(sys.argv[1], "file", issuer=sys.argv[2], http_settings=HttpSettings(env={}))
    except LoginError as err:
        print(json.dumps({"failure": err.failure_class, "message": str(err)}), flush=True)
    else:
        print(json.dumps({"refresh": auth.tokens.refresh_token}), flush=True)
    """
)


class HeldAnswer:
    """A token endpoint that answers only when the test says so: the refresh stays in flight meanwhile."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: object) -> Answer:
        self.arrived.set()
        self.release.wait(120)
        return self.answer


@contextlib.contextmanager
def refresh_in_flight(issuer: ScriptedIssuer, codex_home: Path) -> Iterator[tuple[HeldAnswer, subprocess.Popen[str]]]:
    """A refresher process whose request has reached the token endpoint and waits there for ``release``."""
    seed(codex_home, expires_in=60)
    held = HeldAnswer(refreshed_answer(access_token="access-from-refresh", refresh_token=NEW_REFRESH))
    issuer.token = held
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_REFRESHER, str(codex_home), issuer.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.arrived.wait(60), "the refresh request never reached the token endpoint"
        yield held, proc
    finally:
        held.release.set()
        if proc.poll() is None:
            proc.communicate(timeout=60)


def refresher_result(held: HeldAnswer, proc: subprocess.Popen[str]) -> dict[str, str]:
    held.release.set()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return result


def test_logout_does_not_wait_for_a_refresh_in_flight_and_its_tokens_are_not_saved(
    issuer: ScriptedIssuer, codex_home: Path
) -> None:
    """The refresh's request is held at the token endpoint (no answer until the logout is over): logout goes
    ahead at once rather than waiting for the refresh (it used to time out after 10 s with the refresh
    holding the auth lock for its whole 60 s deadline), and the refresh then drops its new tokens instead of
    signing the person back in."""
    issuer.routes["/oauth/revoke"] = Answer.json(200, {})
    with refresh_in_flight(issuer, codex_home) as (held, proc):
        logout = subprocess.run(
            [CLI, "logout", "--issuer", issuer.url],
            env={**os.environ, "CODEX_HOME": str(codex_home)},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert not held.release.is_set()  # the refresh was still waiting for its answer all along
        assert (logout.returncode, logout.stderr.splitlines()[-1:]) == (0, ["Successfully logged out"]), logout.stderr
        assert not (codex_home / "auth.json").exists()
        assert refresher_result(held, proc) == {
            "failure": "not_logged_in",
            "message": "Not logged in with ChatGPT: the credentials were removed (logout) while the refresh was in "
            "flight, so the new tokens were not saved",
        }
    assert not (codex_home / "auth.json").exists()
    assert len(issuer.token_requests()) == 1
    # The logout revoked what it removed, the refresh what it got and did not save.
    revoked = [r.form["token"] for r in issuer.requests if r.path == "/oauth/revoke"]
    assert revoked == [OLD_REFRESH, revoked[1], NEW_REFRESH, "access-from-refresh"]


def test_sign_in_saves_do_not_wait_for_a_refresh_in_flight_and_win_over_it(
    issuer: ScriptedIssuer, codex_home: Path
) -> None:
    # An API-key sign-in (the real CLI) while the refresh waits for its answer: saved at once, and kept.
    with refresh_in_flight(issuer, codex_home) as (held, proc):
        saved = subprocess.run(
            [CLI, "--with-api-key"],
            env={**os.environ, "CODEX_HOME": str(codex_home)},
            input="sk-signed-in-meanwhile\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not held.release.is_set()
        assert saved.returncode == 0, saved.stderr
        assert refresher_result(held, proc)["failure"] == "not_logged_in"
    stored = load_auth(codex_home)
    assert stored is not None and stored.openai_api_key == "sk-signed-in-meanwhile" and stored.tokens is None
    # A ChatGPT sign-in's save (store_lock, as the browser and device flows save): the refresh returns it.
    with refresh_in_flight(issuer, codex_home) as (held, proc):
        fresh = AuthDotJson.from_chatgpt_tokens(
            TokenData.from_tokens(id_token_for(account_id="acct_2"), access_token(3600), "rt_CNRYsignin0123456789")
        )
        with store_lock(codex_home, "file", timeout=0.5):
            FileStore(codex_home).save(fresh)
        assert not held.release.is_set()
        assert refresher_result(held, proc) == {"refresh": "rt_CNRYsignin0123456789"}
    stored = load_auth(codex_home)
    assert stored == fresh


def test_a_refresh_waits_for_another_one_on_the_refresh_lock(codex_home: Path) -> None:
    """Refreshes serialize on .refresh.lock (the auth lock stays free meanwhile); a wait that runs out says
    which lock and who holds it."""
    from codex_login.refresh import refresh_lock_timeout
    from codex_login.storage import refresh_lock

    seed(codex_home, expires_in=60)
    waiter = textwrap.dedent(
        """
        import sys
        from codex_login.storage import refresh_lock, auth_lock
        from codex_login.errors import StorageError
        with auth_lock(sys.argv[1], timeout=0.5):
            print("auth lock free", flush=True)
        try:
            with refresh_lock(sys.argv[1], timeout=0.2):
                print("taken", flush=True)
        except StorageError as err:
            print(f"refused:{err}", flush=True)
        """
    )
    with refresh_lock(codex_home, timeout=1.0):
        proc = subprocess.run(
            [sys.executable, "-c", waiter, str(codex_home)], capture_output=True, text=True, timeout=60
        )
    assert proc.stdout.splitlines() == [
        "auth lock free",
        f"refused:timed out after 0.2 s waiting for the refresh lock {codex_home / '.refresh.lock'}: another "
        "codex-login process is refreshing the ChatGPT tokens; try again when it has finished",
    ], proc.stderr
    # How long a refresh waits for it: a 60 s request, and for the load and the save a 10 s lock and a 5 s keyring call.
    assert refresh_lock_timeout(HttpSettings(total_timeout=60.0)) == 90.0


# ------------------------------------------------------------------------- a refresh stopped half-way


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGKILL", "crash-in-save"])
def test_a_refresh_stopped_in_flight_or_in_its_save_keeps_the_stored_tokens_and_the_locks_usable(
    issuer: ScriptedIssuer, codex_home: Path, stop: str
) -> None:
    """A process refreshing is stopped while its request waits at the token endpoint (a signal), or between
    the write and the rename of its save (the crash hook): auth.json keeps its bytes and mode, and the next
    refresh takes both locks at once, saves, and removes the temporary file the crash left."""
    seed(codex_home, expires_in=60)
    auth_file = codex_home / "auth.json"
    auth_file.chmod(0o600)
    before = (auth_file.read_bytes(), auth_file.stat().st_mode)
    crash = stop == "crash-in-save"
    held = HeldAnswer(refreshed_answer(access_token="access-lost", refresh_token="rt_CNRYlost0123456789"))
    if crash:
        held.release.set()  # answered at once: the process dies in its save
    issuer.token = held
    env = {**os.environ, **({"CODEX_LOGIN_TEST_CRASH_AFTER_TEMP_WRITE": "1"} if crash else {})}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_REFRESHER, str(codex_home), issuer.url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.arrived.wait(60), "the refresh request never reached the token endpoint"
        if not crash:
            proc.send_signal(getattr(signal, stop))
        out, _ = proc.communicate(timeout=60)
    finally:
        held.release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == (137 if crash else -getattr(signal, stop)), out
    assert (auth_file.read_bytes(), auth_file.stat().st_mode) == before
    left = sorted(p.name for p in codex_home.iterdir() if p.name.startswith(".auth.json.tmp-"))
    assert len(left) == (1 if crash else 0)
    issuer.token = refreshed_answer(access_token="access-next", refresh_token=NEW_REFRESH)
    auth = refresh_tokens(codex_home, issuer=issuer.url, http_settings=SETTINGS)
    assert auth.tokens is not None and auth.tokens.refresh_token == NEW_REFRESH
    assert sorted(p.name for p in codex_home.iterdir()) == [".auth.lock", ".refresh.lock", "auth.json"]
    stored = load_auth(codex_home)
    assert stored is not None and stored.tokens is not None and stored.tokens.access_token == "access-next"
