"""The canary test of ``codex-login app-server`` (security §3.3), in the style of tests/test_canary.py.

One app server per log format runs a whole session against the scripted issuer: ``account/read`` of a
previous API-key sign-in, ChatGPT sign-ins that fail in each shape (the token endpoint's 4xx whose
``error_description`` echoes the code, its 4xx with a JSON description, its 5xx with a non-JSON body, the
callback's error with a description, a callback with the wrong state then a cancel, a plain cancel), one that
succeeds, ``account/read`` of it, ``account/logout`` against a revoke endpoint that echoes each token, an
``apiKey`` login with a canary key, ``account/read`` again and a last logout. The app server does not refresh
tokens (``account/read``'s ``refreshToken`` is only validated), so there is no refresh to drive.

Canaries are the hardening harness's (run-time values: code, tokens, an id_token with canary claims, the API
keys, plus the state and the challenge read from each ``authUrl``, the verifier from the token request). The
sinks: every JSON-RPC line the server wrote (responses and notifications, :data:`PROTOCOL`), its stderr (with
the log lines mirrored there by ``CODEX_LOGIN_LOG_STDERR=1`` at ``RUST_LOG=trace``), the log file, the
callback pages, every other file in CODEX_HOME and a bundle of it; each searched in every encoding, any
8-character window of a core, then the second net.

What the client may receive is allowed narrowly, each with a positive control that it is there: the
``authUrl`` of each ``account/login/start`` answer (state and challenge), taken out of the protocol text
only where it is that answer's ``authUrl``; the ``error`` of ``account/login/completed`` (DECISIONS §4, "the
returned error"), searched as the terminal's ``Error logging in:`` is, so only what may be shown there is
allowed in it; the account's email in ``account/read``'s answer after the ChatGPT sign-in (the client asked
for it), taken out of exactly that field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.hardening.conftest import (
    AUTHORIZE_URL,
    BUNDLE,
    LOG,
    PAGE,
    TERMINAL,
    Harness,
    RawReply,
    assert_no_traceback,
    find_leaks,
    open_harness,
    raw_exchange,
    read_log,
    request_bytes,
)
from tests.support.scripted_issuer import Answer, Recorded
from tests.test_app_server import NOT_COMPLETED, AppServerProcess, split_notification

Message = dict[str, Any]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with open_harness(tmp_path) as world:
        yield world


class Session:
    """One app server on the harness's CODEX_HOME; keeps every page and the returned errors apart."""

    def __init__(
        self, harness: Harness, log_format: str, *args: str, env: dict[str, str | None] | None = None
    ) -> None:
        self.harness = harness
        environ = harness.env({
            "CODEX_LOGIN_APP_SERVER_PORT": "0",
            "CODEX_LOGIN_LOG_STDERR": "1",
            "RUST_LOG": "trace",
            "PYTHONWARNINGS": "always",
            **(env or {}),
        })
        self.server = AppServerProcess(
            environ, ["--issuer", harness.issuer.url, "-c", f"login_log_format={log_format}", *args],
            harness.tmp / "app-server.stderr",
        )
        self.auth_urls: list[str] = []
        self.returned_errors: list[str] = []

    def start(self) -> tuple[str, int, str]:
        """``account/login/start`` (chatgpt): the login ID, the callback port and the state (now canaries)."""
        result = self.server.request("account/login/start", {"type": "chatgpt"})["result"]
        url = result["authUrl"]
        self.auth_urls.append(url)
        query = parse_qs(urlsplit(url).query)
        state, challenge = query["state"][0], query["code_challenge"][0]
        number = len(self.auth_urls)
        self.harness.canaries.add_value(f"state#{number}", state, allowed=(AUTHORIZE_URL,))
        self.harness.canaries.add_value(f"code_challenge#{number}", challenge, allowed=(AUTHORIZE_URL,))
        port = urlsplit(query["redirect_uri"][0]).port
        assert port is not None
        return result["loginId"], port, state

    def callback(self, port: int, query: str) -> RawReply:
        reply = raw_exchange(port, request_bytes(port, f"/auth/callback?{query}"))
        self.harness.pages.append(reply)
        return reply

    def good_callback(self, port: int, state: str) -> RawReply:
        return self.callback(port, f"code={quote(self.harness.canaries['code'])}&state={quote(state)}")

    def completed(self, login_id: str | None) -> Message:
        method, params = split_notification(self.server.notification("account/login/completed", timeout=20))
        assert method == "account/login/completed" and params["loginId"] == login_id
        if params["error"] is not None:
            self.returned_errors.append(params["error"])
        return params

    def failed_sign_in(self, query: str | None = None) -> str:
        """A sign-in the issuer or the callback makes fail: its returned error."""
        login_id, port, state = self.start()
        page = self.callback(port, query.replace("{state}", quote(state)) if query else self.good_query(state))
        assert page.status == 200 and "Sign-in could not be completed" in page.text  # the branded error page
        params = self.completed(login_id)
        assert params["success"] is False
        error: str = params["error"]
        return error

    def good_query(self, state: str) -> str:
        return f"code={quote(self.harness.canaries['code'])}&state={quote(state)}"


def echo_token(request: Recorded) -> Answer:
    token = request.form.get("token", "")
    return Answer.json(400, {
        "error": "invalid_request", "error_description": f"token {token} ({token[:20]}, {token.upper()}) is unknown",
    })


def protocol_text(raw_lines: list[bytes], auth_urls: list[str], email: str) -> dict[str, str]:
    """Each JSON-RPC line, with what the client may receive taken out of exactly the field that carries it."""
    texts: dict[str, str] = {}
    for index, raw in enumerate(raw_lines):
        message = json.loads(raw)
        result = message.get("result")
        if isinstance(result, dict) and result.get("authUrl") in auth_urls:
            result["authUrl"] = "<authorize-url>"
        account = result.get("account") if isinstance(result, dict) else None
        if isinstance(account, dict) and account.get("email") == email:
            account["email"] = "<the account's email>"
        params = message.get("params")
        if message.get("method") == "account/login/completed" and isinstance(params, dict) and params["error"]:
            params["error"] = "<returned error>"  # searched as the terminal's "Error logging in:" line
        texts[f"protocol[{index}]"] = json.dumps(message, ensure_ascii=False)
    return texts


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_canary_reaches_a_forbidden_app_server_sink(harness: Harness, log_format: str) -> None:
    canaries, issuer = harness.canaries, harness.issuer
    session = Session(harness, log_format)
    server = session.server
    try:
        server.initialize()
        assert server.request("account/read")["result"]["account"] == {"type": "apiKey"}  # the previous sign-in

        # The token endpoint refuses the code, quoting it whole and URL-encoded.
        code = canaries["code"]
        issuer.token = Answer.json(400, {
            "error": "invalid_grant", "error_description": f"code {code} was already used ({quote(code)})",
        })
        error = session.failed_sign_in()
        assert error.startswith("Login server error: Token exchange failed: ")
        assert "code <redacted> was already used" in error  # positive control: the description, scrubbed

        # A JSON description: shown and logged (parity), as for the CLI.
        description = canaries.add("description", "CNRYdesc", allowed=(PAGE, TERMINAL, LOG, BUNDLE))
        issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": description})
        assert description in session.failed_sign_in()

        # A non-JSON 5xx body: in the returned error and on the page, never in the log.
        body = canaries.add("body", "CNRYbody", allowed=(PAGE, TERMINAL))
        issuer.token = Answer.text(502, f"<html><p>upstream {body} failed</p></html>", "text/html")
        assert f"upstream {body} failed" in session.failed_sign_in()

        # The callback's own error with a description.
        callback_description = canaries.add("callback_description", "CNRYcbdesc", allowed=(PAGE, TERMINAL))
        hostile = quote(f"{callback_description}\r\n\x1b[2J<script>x</script>", safe="")
        error = session.failed_sign_in(f"error=access_denied&error_description={hostile}&state={{state}}")
        assert callback_description in error and "\x1b" not in error

        # The wrong state, then a cancel; then a plain cancel.
        login_id, port, _ = session.start()
        wrong = canaries.add("wrong_state", "CNRYws")
        assert session.callback(port, f"code={quote(code)}&state={wrong}").status == 400
        assert server.request("account/login/cancel", {"loginId": login_id})["result"] == {"status": "canceled"}
        assert session.completed(login_id)["error"] == NOT_COMPLETED
        login_id, _, _ = session.start()
        assert server.request("account/login/cancel", {"loginId": login_id})["result"] == {"status": "canceled"}
        assert session.completed(login_id)["error"] == NOT_COMPLETED

        # A sign-in that succeeds, then the account it read.
        harness.use_canary_tokens(issuer)
        login_id, port, state = session.start()
        assert session.good_callback(port, state).status == 302
        assert session.completed(login_id) == {
            "loginId": login_id, "success": True, "error": None, "onboardingEntrypoint": None,
        }
        assert split_notification(server.notification("account/updated"))[1] == {"authMode": "chatgpt", "planType": "pro"}
        saved = json.loads(harness.auth_path.read_text())
        assert saved["tokens"]["refresh_token"] == canaries["refresh_token"]  # positive control
        assert saved["OPENAI_API_KEY"] == canaries["api_key"]
        read = server.request("account/read")["result"]
        assert read["account"] == {"type": "chatgpt", "email": canaries["email"], "planType": "pro"}

        # Logout against a revoke endpoint that echoes each token it refuses.
        issuer.routes["/oauth/revoke"] = echo_token
        assert server.request("account/logout")["result"] == {}
        revoked = [r.form["token"] for r in issuer.requests if r.path == "/oauth/revoke"]
        assert revoked == [canaries["refresh_token"], canaries["access_token"]]
        assert split_notification(server.notification("account/updated"))[1] == {"authMode": None, "planType": None}

        # An API-key login with a canary key, read back, logged out.
        key = canaries.add("app_api_key", "sk-proj-CNRYapp")
        assert server.request("account/login/start", {"type": "apiKey", "apiKey": key})["result"] == {"type": "apiKey"}
        assert session.completed(None)["success"] is True
        assert json.loads(harness.auth_path.read_text())["OPENAI_API_KEY"] == key  # positive control
        assert server.request("account/read")["result"]["account"] == {"type": "apiKey"}
        assert server.request("account/logout")["result"] == {}
        server.close_stdin()
        assert server.wait() == 0
        stderr = server.stderr()
    finally:
        server.stop()

    # Positive controls: the revocations were refused and said so (scrubbed); each attempt is in the log.
    assert stderr.count("could not revoke tokens at the issuer") == 2 and "is unknown" in stderr
    log = "".join(read_log(harness.codex_home / "log").values())
    assert log.count("login finished") == 8  # seven ChatGPT sign-ins, one API-key login
    assert "login finished" in stderr  # the mirrored log lines are part of the stderr sink
    harness.collect_bundle()
    assert harness.bundle

    sinks = harness.sinks()
    sinks.terminal = "\n".join([sinks.terminal, stderr, *session.returned_errors])
    sinks.authorize_urls += session.auth_urls
    sinks.protocol = protocol_text(server.raw_lines, session.auth_urls, canaries["email"])
    assert_no_traceback(stderr)
    leaks = find_leaks(canaries.items.values(), sinks)
    assert not leaks, "canaries leaked:\n" + "\n".join(leaks)


def test_a_keyring_that_echoes_what_it_is_given_or_holds_reaches_no_app_server_sink(harness: Harness) -> None:
    """The keyring store with a backend whose refusals quote the value it was given (a save) or holds (a
    delete): the API-key login's and the logout's JSON-RPC errors, the ChatGPT sign-in's returned error,
    stderr and the log show the backend's text with none of it."""
    from tests.test_stored_secrets import echo_keyring, seed_keyring

    store, env = echo_keyring(harness, "set,delete")
    seed_keyring(harness, store)
    session = Session(harness, "text", "-c", "cli_auth_credentials_store=keyring", env=env)
    server = session.server
    try:
        server.initialize()
        key = harness.canaries.add("app_api_key", "sk-proj-CNRYapp")
        answer = server.request("account/login/start", {"type": "apiKey", "apiKey": key})
        assert answer["error"]["message"].startswith("failed to save api key: failed to write OAuth tokens to keyring: ")
        assert "set refused for Codex Auth|cli|" in answer["error"]["message"]  # positive control: the backend's text
        login_id, port, state = session.start()
        assert session.good_callback(port, state).status == 200  # the credentials could not be saved
        error = session.completed(login_id)["error"]
        assert "set refused for Codex Auth|cli|" in error and "<redacted" in error
        answer = server.request("account/logout")
        assert answer["error"]["message"].startswith("logout failed: failed to delete auth from keyring: ")
        assert "holding <redacted" in answer["error"]["message"]
        server.close_stdin()
        assert server.wait() == 0
        stderr = server.stderr()
    finally:
        server.stop()
    sinks = harness.sinks()
    sinks.terminal = "\n".join([sinks.terminal, stderr, *session.returned_errors])
    sinks.authorize_urls += session.auth_urls
    sinks.protocol = protocol_text(server.raw_lines, session.auth_urls, harness.canaries["email"])
    assert_no_traceback(stderr)
    leaks = find_leaks(harness.canaries.items.values(), sinks)
    assert not leaks, "canaries leaked:\n" + "\n".join(leaks)
