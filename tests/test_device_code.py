"""Device-code sign-in against the scripted issuer: the Codex dialect, RFC 8628, the CLI and its fallback.

Library tests run the flow with a fake clock (no test sleeps through a poll interval); CLI tests run the
real console script as a subprocess and only use scripts whose first poll succeeds.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from codex_login.config import CLIENT_ID
from codex_login.device_code import (
    DEFAULT_MIN_INTERVAL,
    DeviceCode,
    DeviceCodeNotEnabled,
    DeviceLoginOptions,
    effective_interval,
    render_device_prompt,
    run_device_code_login,
    url_problem,
)
from codex_login.errors import ErrorKind, LoginCancelled, LoginError, LoginTimedOut, TransportError
from codex_login.http import HttpSettings
from codex_login.server import LoginSuccess
from tests.conftest import LoginLog
from tests.support.scripted_issuer import Answer, Recorded, ScriptedIssuer, id_token_for, tokens_answer

CLI = str(Path(sys.executable).parent / "codex-login")
USERCODE = "/api/accounts/deviceauth/usercode"
POLL = "/api/accounts/deviceauth/token"
DEVICE_ID = "deviceauth_CNRYdev0123456789"
USER_CODE = "CNRY-USER"
AUTH_CODE = "authcode_CNRY0123456789"
VERIFIER = "verifier_CNRY0123456789abcdef"
PENDING = Answer.json(403, {"error": "authorization_pending"})
AUTHORIZED = Answer.json(
    200, {"authorization_code": AUTH_CODE, "code_challenge": "challenge", "code_verifier": VERIFIER}
)
CANARIES = (DEVICE_ID, USER_CODE, AUTH_CODE, VERIFIER, "access-token-123", "refresh-token-123")

ATTEMPT = (
    " INFO codex_cli::login: login attempt started flow=device issuer=http://127.0.0.1:PORT/ "
    'client_id="app_EMoamEEZ73f0CkXaXp7hrann" version=V store=file'
)
EXCHANGE = [
    " INFO codex_login::server: starting oauth token exchange issuer=http://127.0.0.1:PORT/ "
    "token_endpoint=http://127.0.0.1:PORT/oauth/token redirect_uri=http://127.0.0.1:PORT/deviceauth/callback",
    " INFO codex_login::server: oauth token request route ca_source=system proxy=none",
]


class FakeClock:
    """Monotonic time that only moves when the flow sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


def sequence(*answers: Answer) -> Callable[[Recorded], Answer]:
    """Answer with each of ``answers`` in turn; the last one repeats."""
    queue = list(answers)

    def answer(_rec: Recorded) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def usercode(interval: object = "5", **extra: object) -> Answer:
    payload: dict[str, object] = {"device_auth_id": DEVICE_ID, "user_code": USER_CODE, **extra}
    if interval is not None:
        payload["interval"] = interval
    return Answer.json(200, payload)


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        scripted.token = tokens_answer(
            id_token=id_token_for(account_id="acct_321"),
            access_token="access-token-123",
            refresh_token="refresh-token-123",
        )
        yield scripted


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def options(codex_home: Path, issuer_url: str, clock: FakeClock, **overrides: object) -> DeviceLoginOptions:
    opts = DeviceLoginOptions(
        codex_home=codex_home,
        issuer=issuer_url,
        http=HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0),
        clock=clock,
        sleep=clock.sleep,
    )
    for key, value in overrides.items():
        setattr(opts, key, value)
    return opts


def run(opts: DeviceLoginOptions) -> tuple[LoginSuccess | LoginError, list[DeviceCode]]:
    shown: list[DeviceCode] = []
    try:
        return run_device_code_login(opts, on_code=shown.append), shown
    except LoginError as err:
        return err, shown


def norm(log: LoginLog) -> list[str]:
    return log.normalized()


def assert_no_canaries(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text


# --------------------------------------------------------------------------------------------- Codex dialect


def test_ctrl_c_during_the_save_lets_the_sign_in_succeed(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The device sign-in saves in the main thread, where Ctrl-C's KeyboardInterrupt lands anywhere: one that
    arrives during the save is held until it ends, and a saved sign-in succeeds (it used to be reported as
    cancelled, exit 130, with the new credentials already in auth.json)."""
    issuer.routes[USERCODE] = usercode(interval="0")
    issuer.routes[POLL] = sequence(AUTHORIZED)
    real_replace = os.replace

    def replace_after_ctrl_c(src: str, dst: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # its handler runs at the next bytecode: inside the save
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_ctrl_c)
    try:
        result, _shown = run(options(codex_home, issuer.url, clock))
    except KeyboardInterrupt:  # caught here: reaching pytest it would end the whole run
        pytest.fail("Ctrl-C stopped a device sign-in whose save had begun")
    assert isinstance(result, LoginSuccess), result
    assert json.loads((codex_home / "auth.json").read_text())["tokens"]["access_token"] == "access-token-123"
    lines = norm(login_log)
    assert not [line for line in lines if "login cancelled" in line]
    assert [line for line in lines if "login finished outcome=success" in line]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler



def test_codex_dialect_success_after_pending(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[USERCODE] = usercode(interval="0")
    issuer.routes[POLL] = sequence(Answer.json(404, {}), PENDING, AUTHORIZED)
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess), result
    assert result.store == "file" and result.account_id == "acct_321" and result.email == "user@example.com"
    assert result.attempt_id.startswith("la_")
    # The URL is built locally from the issuer, never taken from the server (S-8628-4).
    assert [c.verification_url for c in shown] == [f"{issuer.url}/codex/device"]
    assert shown[0].user_code == USER_CODE and shown[0].interval == DEFAULT_MIN_INTERVAL
    assert clock.sleeps == [5.0, 5.0]  # interval "0" is clamped to 5 s, not a hot loop

    saved = json.loads((codex_home / "auth.json").read_text())
    assert list(saved) == ["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"]
    assert saved["auth_mode"] == "chatgpt"
    assert saved["OPENAI_API_KEY"] is None  # the device flow makes no API-key exchange
    assert saved["tokens"]["access_token"] == "access-token-123"
    assert saved["tokens"]["refresh_token"] == "refresh-token-123"
    assert saved["tokens"]["account_id"] == "acct_321"

    paths = [r.path for r in issuer.requests]
    assert paths == ["/.well-known/openid-configuration", USERCODE, POLL, POLL, POLL, "/oauth/token"]
    assert json.loads(issuer.requests[1].body) == {"client_id": CLIENT_ID}
    assert json.loads(issuer.requests[2].body) == {"device_auth_id": DEVICE_ID, "user_code": USER_CODE}
    exchange = issuer.token_requests()
    assert len(exchange) == 1
    assert exchange[0].form == {
        "grant_type": "authorization_code",
        "code": AUTH_CODE,
        "redirect_uri": f"{issuer.url}/deviceauth/callback",
        "client_id": CLIENT_ID,
        "code_verifier": VERIFIER,
    }
    assert norm(login_log) == [
        ATTEMPT,
        " INFO codex_login::device_code_auth: device code requested dialect=codex status=200 OK "
        "interval_effective=5",
        " INFO codex_login::device_code_auth: device code authorized polls=3",
        *EXCHANGE,
        ' INFO codex_login::server: oauth token endpoint response status=200 OK content_type="application/json" '
        "body_len=N",
        " INFO codex_login::server: oauth token exchange succeeded status=200 OK",
        " INFO codex_login::device_code_auth: credentials saved store=file",
        " INFO codex_cli::login: login finished outcome=success flow=device duration_ms=N",
    ]
    for line in login_log.lines():
        assert f"login{{attempt={result.attempt_id}}}: " in line
    assert_no_canaries("\n".join(login_log.lines()))


def test_default_issuer_uses_the_codex_dialect_without_discovery(codex_home: Path, clock: FakeClock) -> None:
    # No network is reachable for auth.openai.com through a dead proxy: the first request tells the dialect.
    dead = HttpSettings(env={"HTTPS_PROXY": "http://127.0.0.1:9"}, total_timeout=2.0, connect_timeout=2.0)
    result, _ = run(options(codex_home, "https://auth.openai.com", clock, http=dead))
    assert isinstance(result, TransportError)
    assert "https://auth.openai.com/api/accounts/deviceauth/usercode" in str(result)


def test_usercode_404_means_not_enabled(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, DeviceCodeNotEnabled)
    assert result.kind is ErrorKind.NOT_FOUND
    assert str(result) == (
        "device code login is not enabled for this Codex server. Use the browser login or verify the server URL."
    )
    assert shown == [] and not (codex_home / "auth.json").exists()
    assert norm(login_log) == [
        ATTEMPT,
        " WARN codex_login::device_code_auth: device code request failed dialect=codex status=404 Not Found",
        " WARN codex_cli::login: login finished outcome=error flow=device duration_ms=N failure=device_not_enabled",
    ]


def test_usercode_503_is_an_error(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[USERCODE] = Answer.json(503, {"error": "temporarily_unavailable"})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginError) and not isinstance(result, DeviceCodeNotEnabled)
    assert str(result) == "device code request failed with status 503 Service Unavailable"
    assert not (codex_home / "auth.json").exists()
    assert norm(login_log)[1:] == [
        " WARN codex_login::device_code_auth: device code request failed dialect=codex "
        'status=503 Service Unavailable error_code="temporarily_unavailable"',
        " WARN codex_cli::login: login finished outcome=error flow=device duration_ms=N failure=device_code",
    ]


def test_poll_401_is_an_error(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = sequence(PENDING, Answer.json(401, {"error": "authorization_declined"}))
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginError)
    assert str(result) == "device auth failed with status 401 Unauthorized"
    assert not (codex_home / "auth.json").exists() and issuer.token_requests() == []
    assert norm(login_log)[2:] == [
        " WARN codex_login::device_code_auth: device code poll failed status=401 Unauthorized polls=2 "
        'error_code="authorization_declined"',
        " WARN codex_cli::login: login finished outcome=error flow=device duration_ms=N failure=device_code",
    ]


def test_codex_poll_slow_down_adds_five_seconds_for_good(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    # S-8628-2: a 403/404 naming slow_down is honoured in the Codex dialect too, +5 s for every later poll.
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = sequence(
        Answer.json(403, {"error": "slow_down"}),
        Answer.json(404, {"error": "slow_down"}),
        PENDING,
        Answer.text(403, "", "text/plain"),  # the Codex backend's pending answer: no JSON body
        AUTHORIZED,
    )
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess), result
    assert clock.sleeps == [10.0, 15.0, 15.0, 15.0]
    assert len([r for r in issuer.requests if r.path == POLL]) == 5
    assert " INFO codex_login::device_code_auth: device code authorized polls=5" in norm(login_log)
    assert_no_canaries("\n".join(login_log.lines()))


def test_token_exchange_failure_is_wrapped(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": "refresh token expired"})
    previous = b'{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-old"}'
    (codex_home / "auth.json").write_bytes(previous)
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginError)
    assert str(result) == (
        "device code exchange failed: token endpoint returned status 400 Bad Request: refresh token expired"
    )
    assert result.failure_class == "token_invalid_grant"
    assert (codex_home / "auth.json").read_bytes() == previous  # a failed login changes nothing
    assert norm(login_log)[2:] == [
        " INFO codex_login::device_code_auth: device code authorized polls=1",
        *EXCHANGE,
        ' INFO codex_login::server: oauth token endpoint response status=400 Bad Request content_type="application/json" '
        "body_len=N",
        " WARN codex_login::server: oauth token exchange returned non-success status status=400 Bad Request "
        'error_code="invalid_grant" error_message="refresh token expired"',
        " WARN codex_cli::login: login finished outcome=error flow=device duration_ms=N failure=token_invalid_grant",
    ]


def test_an_echoed_device_auth_id_is_scrubbed_from_the_returned_error(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    # The exchange's error text was scrubbed of the code and verifier only; the device auth ID, registered as
    # a secret, reached stderr ("Error logging in with device code: ...").
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": f"device {DEVICE_ID} is spent"})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginError)
    assert str(result) == (
        "device code exchange failed: token endpoint returned status 400 Bad Request: "
        "device <redacted:device_auth_id> is spent"
    )
    assert DEVICE_ID not in "\n".join(login_log.lines())


def test_no_api_key_exchange_even_when_it_would_fail(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock
) -> None:
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    issuer.api_key = Answer.json(500, {"error": "server_error"})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess)
    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["OPENAI_API_KEY"] is None and saved["tokens"]["access_token"] == "access-token-123"
    assert all("token-exchange" not in r.form.get("grant_type", "") for r in issuer.requests)


def test_workspace_mismatch_is_denied(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    result, _ = run(options(codex_home, issuer.url, clock, forced_chatgpt_workspace_id=("org-required",)))
    assert isinstance(result, LoginError)
    assert result.kind is ErrorKind.PERMISSION_DENIED
    assert str(result) == "Login is restricted to workspace id org-required."
    assert not (codex_home / "auth.json").exists()
    assert norm(login_log)[-2:] == [
        " WARN codex_login::server: login workspace restriction failed reason=mismatch",
        " WARN codex_cli::login: login finished outcome=denied flow=device duration_ms=N "
        "failure=workspace_restriction",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 5.0),
        ("0", 5.0),
        ("-1", 5.0),
        ("abc", 5.0),
        ("", 5.0),
        ("nan", 5.0),
        ("inf", 5.0),
        (True, 5.0),
        (7, 7.0),
        ("12", 12.0),
        (" 6.5 ", 6.5),
        ("999999", 60.0),
        (3600, 60.0),
    ],
)
def test_interval_is_clamped(raw: object, expected: float) -> None:
    assert effective_interval(raw) == expected
    # The minimum is injectable (tests, e2e); the maximum stays.
    assert effective_interval(raw, minimum=0.01) == (5.0 if expected == 5.0 else expected)


@pytest.mark.parametrize("raw", ["0", 12, "999999"])
def test_polling_honours_the_clamped_interval(
    raw: object, issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock
) -> None:
    issuer.routes[USERCODE] = usercode(interval=raw)
    issuer.routes[POLL] = sequence(PENDING, PENDING, AUTHORIZED)
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess)
    assert clock.sleeps == [effective_interval(raw)] * 2


def test_fifteen_minute_cap_on_a_fake_clock(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[USERCODE] = usercode(interval="0")
    issuer.routes[POLL] = PENDING
    started = clock.now
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginTimedOut)
    assert str(result) == "device auth timed out after 15 minutes"
    assert clock.now - started == 900.0
    polls = [r for r in issuer.requests if r.path == POLL]
    assert len(polls) == 900 // 5 + 1  # at most one poll per 5 s (S-8628-1)
    assert all(s == 5.0 for s in clock.sleeps)
    assert norm(login_log)[-2:] == [
        " WARN codex_login::device_code_auth: login timed out after_seconds=900",
        " WARN codex_cli::login: login finished outcome=timeout flow=device duration_ms=N failure=timeout",
    ]


def test_cancel_event_stops_polling(issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock) -> None:
    import threading

    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = PENDING
    cancel = threading.Event()
    clock.on_sleep = cancel.set
    result, _ = run(options(codex_home, issuer.url, clock, cancel_event=cancel))
    assert isinstance(result, LoginCancelled) and str(result) == "Login was not completed"
    assert len([r for r in issuer.requests if r.path == POLL]) == 1


def test_invalid_answers_are_errors_without_an_exchange(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock
) -> None:
    issuer.routes[USERCODE] = Answer.text(200, "<html>portal</html>", "text/html")
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device code response is invalid: the body is not a JSON object"
    issuer.routes[USERCODE] = Answer.text(200, "[" * 50_000 + "]" * 50_000, "application/json")  # RecursionError
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device code response is invalid: the body is not a JSON object"
    issuer.routes[USERCODE] = Answer.json(200, {"user_code": USER_CODE})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device code response is invalid: the field 'device_auth_id' is missing"
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = Answer.json(200, {"authorization_code": AUTH_CODE})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device auth response is invalid: the field 'code_verifier' is missing"
    assert issuer.token_requests() == [] and not (codex_home / "auth.json").exists()


def test_usercode_alias_and_numeric_interval(issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock) -> None:
    issuer.routes[USERCODE] = Answer.json(200, {"device_auth_id": DEVICE_ID, "usercode": USER_CODE, "interval": 6})
    issuer.routes[POLL] = sequence(PENDING, AUTHORIZED)
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess)
    assert shown[0].user_code == USER_CODE and clock.sleeps == [6.0]


# --------------------------------------------------------------------------------------------- the prompt


def _code(user_code: str, url: str = "https://auth.example/codex/device") -> DeviceCode:
    return DeviceCode(
        dialect="codex",
        verification_url=url,
        user_code=user_code,
        interval=5.0,
        expires_in=900.0,
        requested_at=0.0,
        device_secret="x",
        poll_url="https://auth.example/poll",
    )


def test_prompt_text_and_colours() -> None:
    plain = render_device_prompt(_code("ABCD-EFGH"), color=False, version="9.9.9")
    assert plain == (
        "Welcome to codex-login [v9.9.9]\n"
        "Sign in to Codex from the command line\n"
        "\n"
        "Follow these steps to sign in with ChatGPT using device code authorization:\n"
        "\n"
        "1. Open this link in your browser and sign in to your account\n"
        "   https://auth.example/codex/device\n"
        "\n"
        "2. Enter this one-time code (expires in 15 minutes)\n"
        "   ABCD-EFGH\n"
        "\n"
        "Device codes are a common phishing target. Never share this code.\n"
        "\n"
    )
    coloured = render_device_prompt(_code("ABCD-EFGH"), color=True, version="9.9.9")
    assert "\x1b[94mABCD-EFGH\x1b[0m" in coloured
    assert "\x1b[90mDevice codes are a common phishing target. Never share this code.\x1b[0m" in coloured
    assert re.sub(r"\x1b\[\d+m", "", coloured) == plain


def test_hostile_user_code_is_sanitized() -> None:
    hostile = "AB\x1b[31mCD\r\nEF\x1b]8;;https://evil\x07GH" + "Z" * 10_000
    text = render_device_prompt(_code(hostile), color=False)
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    code_line = text.splitlines()[9]
    assert code_line.startswith("   ABCD EFGH")
    assert len(code_line) <= 3 + 64


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://a\x1b[31m.example/",
        "https://user:pw@host/",
        "https://",
        "http://evil.example.net/activate",  # plain http off the machine: the issuer's own rule (S-8628-4)
        "http://[::1/device",  # a bracket left open (urlsplit: ValueError)
        "https://auth.example.com\x85/device",  # a C1 control (NEL): would reach the terminal
        "https://auth.example.com:99999/device",  # no such port: shown to the user, useless to open
    ],
)
def test_bad_verification_urls_are_refused(url: str) -> None:
    assert url_problem(url) is not None


def test_a_verification_url_may_carry_a_query_and_a_loopback_host_may_be_plain_http() -> None:
    assert url_problem("https://auth.example.com/activate?user_code=ABCD-EFGH") is None
    assert url_problem("http://127.0.0.1:8080/device#code") is None


# --------------------------------------------------------------------------------------------- RFC 8628

DISCOVERY = "/.well-known/openid-configuration"
DEVICE_AUTH = "/oauth/device/auth"
DEVICE_CODE = "devicecode_CNRY0123456789abcdef"


def discovery(scripted: ScriptedIssuer, **extra: object) -> Answer:
    doc = {
        "issuer": scripted.url,
        "token_endpoint": f"{scripted.url}/oauth/token",
        "device_authorization_endpoint": f"{scripted.url}{DEVICE_AUTH}",
        **extra,
    }
    return Answer.json(200, {k: v for k, v in doc.items() if v is not None})


def device_auth(**extra: object) -> Answer:
    payload: dict[str, object] = {
        "device_code": DEVICE_CODE,
        "user_code": USER_CODE,
        "verification_uri": "http://127.0.0.1/device",
        "verification_uri_complete": f"http://127.0.0.1/device?user_code={USER_CODE}",
        "expires_in": 600,
        **extra,
    }
    return Answer.json(200, {k: v for k, v in payload.items() if v is not None})


@pytest.mark.parametrize("case", [
    (30, 30.0, "the device code expired after 30 seconds"),
    ("120", 120.0, "the device code expired after 2 minutes"),  # a numeric string, as some providers send
    (3600, 900.0, "device auth timed out after 15 minutes"),  # capped: the reference's text
])
def test_rfc8628_expiry_ends_the_wait_with_its_own_message(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, case: tuple[object, float, str]
) -> None:
    expires_in, seconds, message = case
    # An expired code said "timed out after 15 minutes" after 30 s; a string expires_in was ignored (15 min).
    issuer.routes[DISCOVERY] = discovery(issuer)
    issuer.routes[DEVICE_AUTH] = device_auth(expires_in=expires_in)
    issuer.token = token_error("authorization_pending")
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginTimedOut) and str(result) == message
    assert shown[0].expires_in == seconds
    assert sum(clock.sleeps) == seconds


def token_error(error: str) -> Answer:
    return Answer.json(400, {"error": error})


def test_rfc8628_pending_slow_down_then_success(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    issuer.routes[DISCOVERY] = discovery(issuer)
    issuer.routes[DEVICE_AUTH] = device_auth()
    issuer.token = sequence(
        token_error("authorization_pending"),
        token_error("slow_down"),
        token_error("authorization_pending"),
        tokens_answer(id_token=id_token_for(account_id="acct_321"), access_token="access-token-123",
                      refresh_token="refresh-token-123"),
    )
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess), result
    assert shown[0].dialect == "rfc8628"
    assert shown[0].verification_url == f"http://127.0.0.1/device?user_code={USER_CODE}"
    assert shown[0].expires_in_minutes == 10
    # Interval missing -> 5 s before every poll; slow_down adds 5 s for this and every later poll.
    assert clock.sleeps == [5.0, 5.0, 10.0, 10.0]
    assert issuer.requests[1].form == {"client_id": CLIENT_ID, "scope": "openid profile email offline_access"}
    polls = issuer.token_requests()
    assert len(polls) == 4
    assert polls[0].form == {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": DEVICE_CODE,
        "client_id": CLIENT_ID,
    }
    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["tokens"]["refresh_token"] == "refresh-token-123" and saved["OPENAI_API_KEY"] is None
    assert norm(login_log) == [
        ATTEMPT,
        " INFO codex_login::device_code_auth: device code requested dialect=rfc8628 status=200 OK "
        "interval_effective=5",
        ' INFO codex_login::device_code_auth: oauth token endpoint response status=200 OK '
        'content_type="application/json" body_len=N',
        " INFO codex_login::device_code_auth: device code authorized polls=4",
        " INFO codex_login::device_code_auth: credentials saved store=file",
        " INFO codex_cli::login: login finished outcome=success flow=device duration_ms=N",
    ]
    text = "\n".join(login_log.lines())
    assert_no_canaries(text)
    assert DEVICE_CODE not in text


RFC_ERRORS = [
    ("access_denied", LoginError, "device authorization was denied: access_denied", "device_denied", "denied"),
    (
        "expired_token",
        LoginTimedOut,
        "the device code expired before sign-in was completed; run `codex-login --device-auth` again",
        "device_code_expired",
        "timeout",
    ),
    ("invalid_grant", LoginError, "device auth failed with status 400 Bad Request: invalid_grant", "device_code", "error"),
]


@pytest.mark.parametrize("case", RFC_ERRORS, ids=[c[0] for c in RFC_ERRORS])
def test_rfc8628_terminal_errors(
    case: tuple[str, type[LoginError], str, str, str],
    issuer: ScriptedIssuer,
    codex_home: Path,
    clock: FakeClock,
    login_log: LoginLog,
) -> None:
    error, expect_type, message, failure, outcome = case
    issuer.routes[DISCOVERY] = discovery(issuer)
    issuer.routes[DEVICE_AUTH] = device_auth()
    issuer.token = sequence(token_error("authorization_pending"), token_error(error))
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, expect_type)
    assert str(result) == message and result.failure_class == failure
    assert not (codex_home / "auth.json").exists()
    assert norm(login_log)[-2:] == [
        f' WARN codex_login::device_code_auth: device code poll failed status=400 Bad Request polls=2 error_code="{error}"',
        f" WARN codex_cli::login: login finished outcome={outcome} flow=device duration_ms=N failure={failure}",
    ]


# The Codex dialect's 403/404 answers naming access_denied or expired_token, with what the RFC 8628 dialect expects.
CODEX_STOP_ERRORS = [
    (status, *case) for case in RFC_ERRORS if case[0] in ("access_denied", "expired_token") for status in (403, 404)
]


@pytest.mark.parametrize("case", CODEX_STOP_ERRORS, ids=[f"{c[0]}-{c[1]}" for c in CODEX_STOP_ERRORS])
def test_codex_poll_access_denied_and_expired_token_stop_polling(
    case: tuple[int, str, type[LoginError], str, str, str],
    issuer: ScriptedIssuer,
    codex_home: Path,
    clock: FakeClock,
    login_log: LoginLog,
) -> None:
    # S-8628-2: they stop at once, with the RFC 8628 dialect's errors, failure classes and events.
    status, error, expect_type, message, failure, outcome = case
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = sequence(PENDING, Answer.json(status, {"error": error}))
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, expect_type)
    assert str(result) == message and result.failure_class == failure
    assert clock.sleeps == [5.0]
    assert len([r for r in issuer.requests if r.path == POLL]) == 2
    assert not (codex_home / "auth.json").exists() and issuer.token_requests() == []
    status_text = "403 Forbidden" if status == 403 else "404 Not Found"
    assert norm(login_log)[-2:] == [
        f' WARN codex_login::device_code_auth: device code poll failed status={status_text} polls=2 error_code="{error}"',
        f" WARN codex_cli::login: login finished outcome={outcome} flow=device duration_ms=N failure={failure}",
    ]
    assert_no_canaries("\n".join(login_log.lines()))


def test_rfc8628_not_enabled_and_bad_answers(issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock) -> None:
    issuer.routes[DISCOVERY] = discovery(issuer)
    issuer.routes[DEVICE_AUTH] = Answer.json(400, {"error": "unauthorized_client"})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, DeviceCodeNotEnabled)
    issuer.routes[DEVICE_AUTH] = Answer.json(500, {"error": "server_error", "error_description": "down"})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device code request failed with status 500 Internal Server Error: down"
    issuer.routes[DEVICE_AUTH] = device_auth(verification_uri_complete=None, verification_uri="javascript:alert(1)")
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device code response is invalid: the verification URL is refused: it must be an https:// URL"
    issuer.routes[DEVICE_AUTH] = device_auth(device_code=None)
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == "device code response is invalid: the field 'device_code' is missing"
    assert issuer.token_requests() == []


def test_rfc8628_invalid_token_answer(issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock) -> None:
    issuer.routes[DISCOVERY] = discovery(issuer)
    issuer.routes[DEVICE_AUTH] = device_auth()
    issuer.token = Answer.json(200, {"access_token": "a", "token_type": "Bearer"})
    result, _ = run(options(codex_home, issuer.url, clock))
    assert str(result) == (
        "device code exchange failed: OAuth token response is invalid: the field 'id_token' is missing or not a string"
    )


def test_discovery_without_device_endpoint_uses_the_codex_dialect(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock
) -> None:
    issuer.routes[DISCOVERY] = discovery(issuer, device_authorization_endpoint=None)
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess) and shown[0].dialect == "codex"
    # A discovery document that names another issuer is ignored (OIDC Discovery §4.3).
    issuer.routes[DISCOVERY] = discovery(issuer, issuer="https://elsewhere.example")
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess) and shown[0].dialect == "codex"
    # A discovery request the issuer drops without an answer: the usercode request goes ahead, as the
    # reference's (which never asks for discovery) would.
    issuer.routes[DISCOVERY] = Answer(close=True)
    result, shown = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, LoginSuccess) and shown[0].dialect == "codex"


def test_unreachable_issuer_is_a_transport_error(codex_home: Path, clock: FakeClock, login_log: LoginLog) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, _ = run(options(codex_home, f"http://127.0.0.1:{port}", clock))
    assert isinstance(result, TransportError) and result.transport_kind == "connect"
    assert norm(login_log)[1:] == [
        "ERROR codex_login::device_code_auth: device code transport failure kind=connect error_class=ConnectError "
        "error=error sending request for url (http://127.0.0.1:PORT/.well-known/openid-configuration)",
        " WARN codex_cli::login: login finished outcome=error flow=device duration_ms=N failure=transport_connect",
    ]


def test_transport_failure_logs_a_discovered_endpoint_with_extended_redaction(
    issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock, login_log: LoginLog
) -> None:
    # A discovery document may name an endpoint carrying ?apikey=/&secret=: the parity (12-key) redaction
    # left those values in codex-login.log (DECISIONS §4: no sensitive query value in the log).
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/device?apikey=CNRYdiscoveredkey&secret=CNRYdiscoveredsecret&x=1"
    issuer.routes[DISCOVERY] = discovery(issuer, device_authorization_endpoint=endpoint)
    result, _ = run(options(codex_home, issuer.url, clock))
    assert isinstance(result, TransportError) and result.transport_kind == "connect"
    text = "\n".join(login_log.lines())
    assert "CNRYdiscovered" not in text
    assert (
        "error=error sending request for url "
        "(http://127.0.0.1:PORT/device?apikey=%3Credacted%3E&secret=%3Credacted%3E&x=1)"
    ) in "\n".join(norm(login_log))


# --------------------------------------------------------------------------------------------- the CLI


def cli_env(codex_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)


def test_cli_device_success_prints_the_prompt_on_stdout(issuer: ScriptedIssuer, codex_home: Path) -> None:
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    proc = run_cli(["--device-auth", "--port", "0", "--issuer", issuer.url], cli_env(codex_home))
    out, errs = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, errs
    assert f"   {issuer.url}/codex/device\n" in out
    assert f"   {USER_CODE}\n" in out
    assert "Device codes are a common phishing target. Never share this code." in out
    assert "\x1b" not in out  # stdout is a pipe: no colours
    assert errs.splitlines() == ["Successfully logged in"]
    assert json.loads((codex_home / "auth.json").read_text())["tokens"]["account_id"] == "acct_321"
    log = (codex_home / "log" / "codex-login.log").read_text()
    assert re.search(r"INFO login\{attempt=la_[0-9a-f]{8}\}: codex_cli::login: starting device code login flow", log)
    assert "login finished outcome=success flow=device" in log
    assert_no_canaries(log)


def test_cli_device_with_stdout_closed_is_a_clean_error(issuer: ScriptedIssuer, codex_home: Path) -> None:
    # `>&-`: Python has no sys.stdout at all, and the prompt's write raised AttributeError (a traceback).
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    proc = subprocess.run(
        ["sh", "-c", f'exec "{CLI}" --device-auth --port 0 --issuer {issuer.url} >&-'],
        env=cli_env(codex_home), capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )
    errs = proc.stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in errs
    assert errs.splitlines()[0] == (
        "Error logging in with device code: could not print the device code on stdout: it is closed"
    )
    assert not (codex_home / "auth.json").exists()


def test_cli_device_hostile_user_code(issuer: ScriptedIssuer, codex_home: Path) -> None:
    hostile = "AB\x1b[2J\x1b]0;pwned\x07CD\r\n" + "Q" * 10_000
    issuer.routes[USERCODE] = Answer.json(200, {"device_auth_id": DEVICE_ID, "user_code": hostile})
    issuer.routes[POLL] = AUTHORIZED
    proc = run_cli(["--device-auth", "--port", "0", "--issuer", issuer.url], cli_env(codex_home))
    assert proc.returncode == 0, proc.stderr
    assert b"\x1b" not in proc.stdout and b"\r" not in proc.stdout and b"\x07" not in proc.stdout
    assert len(proc.stdout) < 1000
    assert json.loads(issuer.requests[-2].body)["user_code"] == hostile  # the raw code goes back to the server
    log = (codex_home / "log" / "codex-login.log").read_text()
    assert "QQQQ" not in log and "pwned" not in log


def test_cli_device_error_prints_the_reference_text(issuer: ScriptedIssuer, codex_home: Path) -> None:
    issuer.routes[USERCODE] = Answer.json(503, {})
    proc = run_cli(["--device-auth", "--port", "0", "--issuer", issuer.url], cli_env(codex_home))
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 1
    assert lines[0] == "Error logging in with device code: device code request failed with status 503 Service Unavailable"
    assert lines[1].startswith("Try next: Sign in with the browser instead: `codex-login`")
    assert re.fullmatch(
        r"Attempt ID: la_[0-9a-f]{8}; log: .*codex-login\.log\. Run `codex-login log --attempt "
        r"la_[0-9a-f]{8}` for the timeline\.",
        lines[2],
    )
    assert proc.stdout == b""


def test_cli_forced_api_login_refuses_device_auth(issuer: ScriptedIssuer, codex_home: Path) -> None:
    proc = run_cli(
        ["-c", 'forced_login_method="api"', "--device-auth", "--port", "0", "--issuer", issuer.url], cli_env(codex_home)
    )
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == ["ChatGPT login is disabled. Use API key login instead."]
    assert issuer.requests == []


def _read_until(lines: queue.Queue[str | None], pattern: re.Pattern[str], timeout: float) -> tuple[str, re.Match[str]]:
    seen = ""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            break
        seen += line
        found = pattern.search(line)
        if found:
            return seen, found
    raise AssertionError(f"no {pattern.pattern!r} in stderr within {timeout} s:\n{seen}")


def _pump(stream: IO[bytes], lines: queue.Queue[str | None], sink: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        text = raw.decode()
        sink.append(text)
        lines.put(text)
    lines.put(None)


@pytest.mark.parametrize("where", ["usercode", "poll"])
def test_cli_device_failure_advice_points_away_from_the_device_flow(
    issuer: ScriptedIssuer, codex_home: Path, where: str
) -> None:
    """The device-code request or its polling refused with a 5xx: the advice does not start by sending the user
    back to ``--device-auth`` (nor tell them to "enter the code promptly") but to the browser sign-in."""
    if where == "usercode":
        issuer.routes["/api/accounts/deviceauth/usercode"] = Answer.text(503, "down")
    else:
        issuer.routes["/api/accounts/deviceauth/usercode"] = usercode(interval="1")
        issuer.routes["/api/accounts/deviceauth/token"] = Answer.text(500, "down")
    result = run_cli(["--device-auth", "--issuer", issuer.url, "--port", "0"], cli_env(codex_home))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0].startswith("Error logging in with device code: device ")
    assert lines[1] == (
        "Try next: Sign in with the browser instead: `codex-login` (over SSH, forward the port with "
        "`ssh -L 1455:localhost:1455 <host>`, or paste the address the browser could not open into the waiting "
        "codex-login)."
    )
    assert lines[2].startswith("Attempt ID: la_")


def test_cli_not_enabled_falls_back_to_the_browser(issuer: ScriptedIssuer, codex_home: Path) -> None:
    # No device route at all: discovery 404 -> Codex dialect -> usercode 404 -> browser sign-in.
    proc = subprocess.Popen(
        [CLI, "--device-auth", "--issuer", issuer.url, "--port", "0", "--timeout", "30"],
        env=cli_env(codex_home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    everything: list[str] = []
    pump = threading.Thread(target=_pump, args=(proc.stderr, lines, everything), daemon=True)
    pump.start()
    try:
        seen, found = _read_until(lines, re.compile(r"^(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)$"), 20)
        assert seen.splitlines()[0] == "Device code login is not enabled; falling back to browser login."
        query = parse_qs(urlsplit(found.group(1)).query)
        redirect = query["redirect_uri"][0]
        port = urlsplit(redirect).port
        response = httpx.get(
            f"http://127.0.0.1:{port}/auth/callback",
            params={"code": "abc", "state": query["state"][0]},
            follow_redirects=True,
            timeout=15,
        )
        assert response.status_code == 200 and "Signed in to Codex" in response.text
        assert proc.wait(timeout=30) == 0, "".join(everything)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    pump.join(timeout=10)
    assert everything[-1] == "Successfully logged in\n"
    assert proc.stdout is not None and proc.stdout.read() == b""
    saved = json.loads((codex_home / "auth.json").read_text())
    assert saved["tokens"]["account_id"] == "acct_321"
    log = (codex_home / "log" / "codex-login.log").read_text()
    assert "failure=device_not_enabled" in log and "login finished outcome=success flow=browser" in log


@pytest.mark.parametrize(("signum", "code", "reason"), [(15, 143, "terminated"), (2, 130, "interrupted")])
def test_cli_signals_end_the_attempt_with_one_final_event(
    issuer: ScriptedIssuer, codex_home: Path, signum: int, code: int, reason: str
) -> None:
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = PENDING
    proc = subprocess.Popen(
        [CLI, "--device-auth", "--port", "0", "--issuer", issuer.url],
        env=cli_env(codex_home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines, []), daemon=True).start()
        _read_until(lines, re.compile("Never share this code"), 20)
        deadline = time.monotonic() + 20
        while not any(r.path == POLL for r in issuer.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signum)
        _, errs = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == code, errs
    assert errs.decode().splitlines()[0] == f"Error logging in with device code: Login was not completed ({reason})"
    from tests.conftest import normalize_line

    log = (codex_home / "log" / "codex-login.log").read_text()
    assert [normalize_line(line) for line in log.splitlines()][-2:] == [
        f" WARN codex_login::device_code_auth: login cancelled reason={reason}",
        " WARN codex_cli::login: login finished outcome=cancelled flow=device duration_ms=N failure=cancelled",
    ]
    assert len(re.findall(r"login finished", log)) == 1
    assert not (codex_home / "auth.json").exists()


def test_colour_only_on_a_terminal_without_no_color() -> None:
    import io
    import pty

    from codex_login.device_code import stream_supports_color

    controller, terminal = pty.openpty()
    try:
        with open(terminal, "w", closefd=False) as tty:
            assert stream_supports_color(tty, env={})
            assert not stream_supports_color(tty, env={"NO_COLOR": "1"})
            assert not stream_supports_color(tty, env={"TERM": "dumb"})
    finally:
        os.close(terminal)
        os.close(controller)
    assert not stream_supports_color(io.StringIO(), env={})


def test_explicit_dialects(issuer: ScriptedIssuer, codex_home: Path, clock: FakeClock) -> None:
    from codex_login.errors import ConfigError

    result, _ = run(options(codex_home, issuer.url, clock, dialect="morse"))
    assert isinstance(result, ConfigError) and "unknown device-code dialect 'morse'" in str(result)
    assert issuer.requests == []
    # rfc8628 without a discovery document: the conventional endpoint path.
    issuer.routes[DEVICE_AUTH] = device_auth()
    issuer.token = tokens_answer(id_token=id_token_for(account_id="acct_321"))
    result, shown = run(options(codex_home, issuer.url, clock, dialect="rfc8628"))
    assert isinstance(result, LoginSuccess) and shown[0].dialect == "rfc8628"
    # codex: no discovery request at all.
    issuer.requests.clear()
    issuer.routes[USERCODE] = usercode()
    issuer.routes[POLL] = AUTHORIZED
    result, shown = run(options(codex_home, issuer.url, clock, dialect="codex"))
    assert isinstance(result, LoginSuccess) and issuer.requests[0].path == USERCODE
