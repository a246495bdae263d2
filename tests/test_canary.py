"""The canary test (issue 3; security §3.3): secrets made at run time must never reach a sink they are
forbidden in, whatever the scenario, the log format or the verbosity.

Canaries (new random values every run; nothing secret-shaped is committed): the authorization code, the
state and the PKCE challenge (read from the printed authorize URL) and verifier (read from the token
request), the access and refresh tokens, an id_token JWT whose email, account id and signature are
canaries, the API key the issuer exchanges, a previous ``auth.json``'s key, an API key piped to
``--with-api-key``, a proxy's user and password, an issuer's userinfo and query, token-endpoint bodies (a
non-JSON body, a JSON ``error_description``, and one echoing the code), a callback ``error_description``,
and the device flow's user code, device auth id, authorization code and verifier.

Every scenario runs through the console script twice into one CODEX_HOME, at the default verbosity and
with ``RUST_LOG=trace`` (and ``PYTHONWARNINGS=always``), in the text and in the JSON log format; then
``codex-login bundle`` packs that home. The sinks are the log files, stdout and stderr, every HTTP answer
of the loopback server, every bundle member, and every other file in CODEX_HOME. Each canary is looked
for raw, URL-quoted, form-quoted, HTML-escaped, JSON-escaped, base64/base64url at any alignment, and as any
8-character window of its random core; then the second net looks for JWTs, ``sk-`` keys, ``Bearer``
credentials and ``code=``/``state=``-style parameters (tests/hardening/conftest.py, INV-2).

What DECISIONS §4 allows is allowed: the authorize URL (state, challenge) on the terminal; backend detail
and error descriptions on the page and in the returned error (the terminal's ``Error logging in:``); the
parsed JSON error fields of the token endpoint in the log; the user code on the terminal. The email is
allowed nowhere a sign-in writes (not even on the success page); only ``status``, which these scenarios do
not run, shows the account to the person who asks for it, as ``gh auth status`` does. Positive controls keep the suite from passing vacuously: the log holds each attempt's
timeline, the non-JSON body is in the returned error and on the page, the allowed JSON description is in
the log, ``auth.json`` holds the token canaries after a success, the user code is on the terminal.

A last scenario runs the library API in process with the test-only ``force_state``/``force_verifier``
hooks, and also searches the returned exception's ``str``, ``repr`` and formatted chain.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from codex_login.diagnostics.logfile import LOG_FILE_NAME, init_login_file_logging
from tests.hardening.conftest import (
    AUTHORIZE_URL,
    BUNDLE,
    LOG,
    PAGE,
    TERMINAL,
    CanarySet,
    Expect,
    Harness,
    Sinks,
    find_leaks,
    free_port,
    new_core,
    open_harness,
    raw_exchange,
    read_log,
    request_bytes,
    standard_canaries,
)
from tests.support.scripted_issuer import Answer, ScriptedIssuer

VERBOSITY: list[dict[str, str | None]] = [{}, {"RUST_LOG": "trace", "PYTHONWARNINGS": "always"}]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with open_harness(tmp_path) as world:
        yield world


def log_text(harness: Harness) -> str:
    return "".join(read_log(harness.codex_home / "log").values())


@dataclass
class Scenario:
    """``attempt`` runs one attempt (start, act, :meth:`Harness.finish`) and returns whether it signed in;
    ``controls`` checks the positive controls once both attempts ran."""

    name: str
    attempt: Callable[[Harness, str, dict[str, str | None], int], bool]
    controls: Callable[[Harness], None]
    logged: bool = True


def _expect(harness: Harness, log_format: str, number: int, *, rc: int, success: bool = False) -> Expect:
    return Expect(rc=rc, success=success, log_format=log_format, attempts=number, bundle=number == len(VERBOSITY))


def _after(harness: Harness, success: bool) -> None:
    if success:  # the next attempt starts from what this one saved
        harness.accept_current_auth()


# --------------------------------------------------------------------------------------------- scenarios


def success(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    run = harness.login(log_format=log_format, env=env)
    harness.complete(run)
    harness.finish(run, _expect(harness, log_format, number, rc=0, success=True))
    return True


def success_controls(harness: Harness) -> None:
    saved = json.loads(harness.auth_path.read_text())
    assert saved["tokens"]["access_token"] == harness.canaries["access_token"]
    assert saved["tokens"]["id_token"] == harness.canaries["id_token"]
    assert saved["OPENAI_API_KEY"] == harness.canaries["api_key"]
    assert log_text(harness).count("credentials saved") == len(VERBOSITY)


def wrong_state_then_success(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    run = harness.login(log_format=log_format, env=env)
    wrong = harness.canaries.add(f"wrong_state#{number}", "CNRYws")
    assert harness.callback(run, f"code={harness.canaries['code']}&state={wrong}").status == 400
    harness.complete(run)
    harness.finish(run, _expect(harness, log_format, number, rc=0, success=True))
    return True


def callback_description(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    description = harness.canaries.add(f"callback_description#{number}", "CNRYcbdesc", allowed=(PAGE, TERMINAL))
    run = harness.login(log_format=log_format, env=env)
    hostile = quote(f"{description}\r\n\x1b[2J<script>x</script>", safe="")
    harness.terminal_page(run, f"error=access_denied&error_description={hostile}&state={quote(run.state or '')}")
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    assert f"Error logging in: Sign-in failed: {description} " in run.stderr  # positive control
    assert description in harness.pages[-1].text
    return False


def callback_description_echoes_state(
    harness: Harness, log_format: str, env: dict[str, str | None], number: int
) -> bool:
    """An issuer whose error_description quotes the state it refused, whole, cut to 20 characters and
    upper-cased: the description may be shown, the state only in the authorize URL (DECISIONS §4)."""
    run = harness.login(log_format=log_format, env=env)
    state = run.state or ""
    echo = quote(f"state {state} / {state[:20]} / {state.upper()} is not valid", safe="")
    page = harness.terminal_page(run, f"error=invalid_request&error_description={echo}&state={quote(state)}")
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    # Positive controls: the description itself is still shown, its echoes of the state are not.
    assert "is not valid" in run.stderr and "is not valid" in page.text
    assert "&lt;redacted:state&gt;" in page.text and "<redacted:state>" in run.stderr
    return False


def token_non_json_body(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    body = harness.canaries.add(f"body#{number}", "CNRYbody", allowed=(PAGE, TERMINAL))
    harness.issuer.token = Answer.text(500, f"<html><p>upstream {body} failed</p></html>", "text/html")
    run = harness.login(log_format=log_format, env=env)
    page = harness.terminal_page(run)
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    # Positive controls: the body is in the returned error and on the page (escaped), never in the log.
    assert f"upstream {body} failed" in run.stderr and f"upstream {body} failed" in page.text
    return False


def token_json_description(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    description = harness.canaries.add(f"description#{number}", "CNRYdesc", allowed=(PAGE, TERMINAL, LOG, BUNDLE))
    harness.issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": description})
    run = harness.login(log_format=log_format, env=env)
    harness.terminal_page(run)
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    assert description in run.stderr
    assert description in log_text(harness)  # positive control: parsed JSON error fields are logged (parity)
    return False


def token_echoes_the_code(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    code = harness.canaries["code"]
    harness.issuer.token = Answer.json(
        400, {"error": "invalid_grant", "error_description": f"code {code} was already used ({quote(code)})"}
    )
    run = harness.login(log_format=log_format, env=env)
    page = harness.terminal_page(run)
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    assert "code &lt;redacted&gt; was already used" in page.text and "code <redacted> was already used" in run.stderr
    return False


def dead_proxy(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    user = harness.canaries.add(f"proxy_user#{number}", "CNRYpu")
    password = harness.canaries.add(f"proxy_password#{number}", "CNRYpw")
    proxy = f"http://{user}:{password}@127.0.0.1:{free_port()}"
    proxy_env = {**env, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_PROXY": None, "no_proxy": None}
    run = harness.login(log_format=log_format, env=proxy_env)
    harness.terminal_page(run)
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    assert "the proxy http://127.0.0.1:" in run.stderr
    return False


def proxy_credentials_echoed(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    """A proxy is configured (the issuer on loopback is exempt through NO_PROXY) and the token endpoint's
    error description echoes the proxy's user and password: the description may be logged and shown, the
    credentials never (DECISIONS §4: a proxy only as scheme://host:port)."""
    user = harness.canaries.add(f"proxy_user#{number}", "CNRYpu")
    password = harness.canaries.add(f"proxy_password#{number}", "CNRYpw")
    proxy = f"http://{user}:{password}@proxy.invalid:3128"
    proxy_env = {**env, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.1,localhost,::1"}
    harness.issuer.token = Answer.json(400, {
        "error": "invalid_grant", "error_description": f"upstream saw {user}:{password} ({password[:20]}) failed",
    })
    run = harness.login(log_format=log_format, env=proxy_env)
    harness.terminal_page(run)
    harness.finish(run, _expect(harness, log_format, number, rc=1))
    assert "upstream saw <redacted:proxy_user>:<redacted:proxy_password>" in run.stderr  # positive control
    return False


def refused_issuer(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    password = harness.canaries.add(f"issuer_password#{number}", "CNRYiup")
    query = harness.canaries.add(f"issuer_query#{number}", "CNRYiq")
    runs = [
        harness.cli("--issuer", f"https://user:{password}@auth.example.com", "--port", "0", "--no-browser", env=env),
        harness.cli("-c", f"issuer=https://auth.example.com/?token={query}", "--port", "0", "--no-browser", env=env),
    ]
    for run, where in zip(runs, ("", "-c issuer: "), strict=True):
        harness.finish(run, Expect(rc=1, attempts=0, log=False, bundle=number == len(VERBOSITY) and run is runs[-1]))
        assert run.stderr.startswith(f"Error loading configuration: {where}invalid issuer URL: it must not contain")
    return False


def api_key_on_stdin(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    key = harness.canaries.add(f"stdin_api_key#{number}", "sk-proj-CNRYstdin", suffix="T3BlbkFJ" + new_core())
    run = harness.cli("--with-api-key", "-c", f"login_log_format={log_format}", env=env, stdin=f"{key}\n".encode())
    harness.finish(run, Expect(rc=0, success=True, own_tokens=False, log_format=log_format, attempts=number))
    assert json.loads(harness.auth_path.read_text())["OPENAI_API_KEY"] == key  # positive control
    harness.accept_current_auth()
    status = harness.cli("status", env=env)
    harness.finish(status, Expect(rc=0, log_format=log_format, attempts=number, bundle=number == len(VERBOSITY)))
    assert status.stderr.startswith("Logged in using an API key - sk-proj-***")
    return False


def device_code(harness: Harness, log_format: str, env: dict[str, str | None], number: int) -> bool:
    canaries = harness.canaries
    user_code = canaries.add(f"user_code#{number}", "CNRYuc", allowed=(TERMINAL,))
    device_auth_id = canaries.add(f"device_auth_id#{number}", "CNRYdai")
    code = canaries.add(f"device_code#{number}", "CNRYdcode")
    verifier = canaries.add(f"device_verifier#{number}", "CNRYdver")
    harness.issuer.routes["/api/accounts/deviceauth/usercode"] = Answer.json(
        200, {"device_auth_id": device_auth_id, "user_code": user_code, "interval": "5"}
    )
    harness.issuer.routes["/api/accounts/deviceauth/token"] = Answer.json(
        200, {"authorization_code": code, "code_verifier": verifier, "code_challenge": "x"}
    )
    run = harness.cli(
        "--device-auth", "--port", "0", "--issuer", harness.issuer.url, "-c", f"login_log_format={log_format}", env=env
    )
    harness.finish(run, _expect(harness, log_format, number, rc=0, success=True))
    assert user_code in run.stdout  # positive control: the user must be able to type it
    exchange = [r for r in harness.issuer.token_requests() if r.form.get("code") == code]
    assert len(exchange) == 1 and exchange[0].form["code_verifier"] == verifier
    polls = [r for r in harness.issuer.requests if r.path == "/api/accounts/deviceauth/token"]
    assert json.loads(polls[-1].body) == {"device_auth_id": device_auth_id, "user_code": user_code}
    return True


def no_controls(_harness: Harness) -> None:
    return


def failure_controls(harness: Harness) -> None:
    assert json.loads(harness.auth_path.read_text())["OPENAI_API_KEY"] == harness.canaries["old_api_key"]


SCENARIOS = [
    Scenario("success", success, success_controls),
    Scenario("wrong-state", wrong_state_then_success, success_controls),
    Scenario("callback-description", callback_description, failure_controls),
    Scenario("callback-description-echoes-state", callback_description_echoes_state, failure_controls),
    Scenario("token-non-json", token_non_json_body, failure_controls),
    Scenario("token-json-description", token_json_description, failure_controls),
    Scenario("token-echoes-code", token_echoes_the_code, failure_controls),
    Scenario("dead-proxy", dead_proxy, failure_controls),
    Scenario("proxy-credentials-echoed", proxy_credentials_echoed, failure_controls),
    Scenario("refused-issuer", refused_issuer, failure_controls, logged=False),
    Scenario("api-key-stdin", api_key_on_stdin, no_controls),
    Scenario("device-code", device_code, no_controls),
]


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_no_canary_reaches_a_forbidden_sink(harness: Harness, scenario: Scenario, log_format: str) -> None:
    for number, env in enumerate(VERBOSITY, 1):
        signed_in = scenario.attempt(harness, log_format, env, number)
        _after(harness, signed_in)
    scenario.controls(harness)
    assert harness.bundle, "the bundle was not collected"
    if scenario.logged:  # positive control: the log holds each attempt's timeline
        log = log_text(harness)
        assert log.count("login attempt started") == len(VERBOSITY)
        assert log.count("login finished") == len(VERBOSITY)


# --------------------------------------------------------------------------------------------- in process


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("outcome", ["success", "token-refused", "transport"])
def test_library_api_with_forced_state_and_verifier(tmp_path: Path, log_format: str, outcome: str) -> None:
    """The test-only hooks give the state and the verifier canary values; the returned exception (``str``,
    ``repr`` and the formatted chain with causes and contexts) is one more sink."""
    from codex_login.errors import LoginError
    from codex_login.http import HttpSettings
    from codex_login.server import LoginSuccess, ServerOptions, run_login_server

    canaries: CanarySet = standard_canaries()
    # The state may be printed inside the authorize URL only (DECISIONS §4); the verifier nowhere.
    state = canaries.add("state", "CNRYstate", suffix="x" * 8, allowed=(AUTHORIZE_URL,))
    verifier = canaries.add("verifier", "CNRYverifier", suffix="v" * 40)
    code = canaries["code"]
    home = tmp_path / "codex-home"
    home.mkdir(mode=0o700)
    handle = init_login_file_logging(tmp_path / "log", log_format=log_format, env={"RUST_LOG": "trace"})
    notices: list[str] = []
    try:
        with ScriptedIssuer() as issuer:
            issuer.token = Answer.json(200, {
                "id_token": canaries["id_token"], "access_token": canaries["access_token"],
                "refresh_token": canaries["refresh_token"],
            })
            issuer.api_key = Answer.json(200, {"access_token": canaries["api_key"]})
            if outcome == "token-refused":
                issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": f"{code}/{verifier}"})
            issuer_url = issuer.url if outcome != "transport" else f"http://127.0.0.1:{free_port()}"
            server = run_login_server(
                ServerOptions(
                    codex_home=home, issuer=issuer_url, port=0, open_browser=False,
                    force_state=state, force_verifier=verifier, http=HttpSettings(env={}, total_timeout=5),
                    timeout=30, success_grace=0.5, notice=notices.append,
                )
            )
            assert f"state={state}" in server.auth_url
            reply = raw_exchange(
                server.actual_port, request_bytes(server.actual_port, f"/auth/callback?code={code}&state={state}")
            )
            outcome_value: LoginSuccess | LoginError
            try:
                outcome_value = server.block_until_done(10)
            except LoginError as err:
                outcome_value = err
            if outcome == "success":
                assert reply.status == 302 and isinstance(outcome_value, LoginSuccess)
                assert issuer.token_requests()[0].form["code_verifier"] == verifier
            else:
                assert isinstance(outcome_value, LoginError)
    finally:
        handle.close()
    exception_text = ""
    if isinstance(outcome_value, BaseException):
        exception_text = "\n".join(
            [str(outcome_value), repr(outcome_value), *traceback.format_exception(outcome_value)]
        )
    sinks = Sinks(
        log={LOG_FILE_NAME: (tmp_path / "log" / LOG_FILE_NAME).read_text()},
        terminal="\n".join([*notices, exception_text]),
        pages=[reply.raw.decode("utf-8", "replace")],
        authorize_urls=[server.auth_url],
    )
    challenge = server.auth_url.split("code_challenge=")[1].split("&")[0]
    canaries.add_value("code_challenge", challenge, allowed=(AUTHORIZE_URL,))
    leaks = find_leaks(canaries.items.values(), sinks)
    assert not leaks, "\n".join(leaks)
    assert "login finished" in sinks.log[LOG_FILE_NAME]  # positive control
    if outcome == "success":
        assert json.loads((home / "auth.json").read_text())["tokens"]["refresh_token"] == canaries["refresh_token"]
    else:
        assert not (home / "auth.json").exists()
        assert exception_text  # the returned error was searched too
