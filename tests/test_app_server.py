"""``codex-login app-server``: JSON-RPC lines over stdio, driven as a real subprocess of the console script.

Every read from the server is bounded; every process is reaped. ChatGPT sign-ins run against the scripted
issuer, with the browser's callback sent by httpx to the redirect URI the authorize URL names.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.scripted_issuer import Answer, ScriptedIssuer

CLI = Path(sys.executable).parent / "codex-login"
API_KEY = "sk-test-1234567890abcdef-CNRYapikey"
CODE = "CNRYauthcode0123456789"
CLIENT_INFO = {"name": "probe", "version": "0.0.1", "title": None}
READ_TIMEOUT = 15.0
NOT_COMPLETED = "Login server error: Login was not completed"

Message = dict[str, Any]


class ServerGone(AssertionError):
    """stdout closed while a message was expected."""


class AppServerProcess:
    """One ``codex-login app-server`` subprocess: send lines, read messages with timeouts."""

    def __init__(self, env: dict[str, str], args: list[str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr_file = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [str(CLI), *args, "app-server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
        )
        self.raw_lines: list[bytes] = []
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._backlog: list[Message] = []
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.raw_lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    # --- sending ---

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Message) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def send_request(self, method: str, params: Message | None = None) -> int:
        request_id = next(self._ids)
        message: Message = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    # --- receiving ---

    def next_message(self, timeout: float = READ_TIMEOUT) -> Message:
        """The next line from stdout, whatever it is (the backlog first)."""
        if self._backlog:
            return self._backlog.pop(0)
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout} s; stderr:\n{self.stderr()}") from None
        if line is None:
            self._queue.put(None)
            raise ServerGone(f"stdout closed; stderr:\n{self.stderr()}")
        parsed = json.loads(line)
        assert isinstance(parsed, dict)
        return parsed

    def wait_for(self, predicate: Any, timeout: float = READ_TIMEOUT) -> Message:
        """The first message matching ``predicate``; others stay queued in order."""
        for index, message in enumerate(self._backlog):
            if predicate(message):
                return self._backlog.pop(index)
        deadline = time.monotonic() + timeout
        skipped: list[Message] = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching message within {timeout} s; got {skipped}")
                try:
                    line = self._queue.get(timeout=remaining)
                except queue.Empty:
                    continue
                if line is None:
                    self._queue.put(None)
                    raise ServerGone(f"stdout closed; got {skipped}; stderr:\n{self.stderr()}")
                message = json.loads(line)
                if predicate(message):
                    return message  # type: ignore[no-any-return]
                skipped.append(message)
        finally:
            self._backlog.extend(skipped)

    def response(self, request_id: int, timeout: float = READ_TIMEOUT) -> Message:
        return self.wait_for(lambda m: m.get("id") == request_id and "method" not in m, timeout)

    def notification(self, method: str, timeout: float = READ_TIMEOUT) -> Message:
        return self.wait_for(lambda m: m.get("method") == method and "id" not in m, timeout)

    def request(self, method: str, params: Message | None = None, timeout: float = READ_TIMEOUT) -> Message:
        return self.response(self.send_request(method, params), timeout)

    def initialize(self, client_info: Message | None = None) -> Message:
        answer = self.request("initialize", {"clientInfo": client_info or CLIENT_INFO})
        self.send({"method": "initialized"})
        return answer

    def assert_quiet(self, seconds: float = 0.3) -> None:
        """Nothing more arrives on stdout for a moment."""
        assert not self._backlog, self._backlog
        with contextlib.suppress(queue.Empty):
            line = self._queue.get(timeout=seconds)
            raise AssertionError(f"unexpected message: {line!r}")

    # --- ending ---

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def stderr(self) -> str:
        self._stderr_file.flush()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.close_stdin()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr_file.close()


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


@pytest.fixture
def server_env(codex_home: Path) -> dict[str, str]:
    """The subprocess environment: the test's isolated environment, any free loopback port."""
    env = dict(os.environ)
    env["CODEX_LOGIN_APP_SERVER_PORT"] = "0"
    env["CODEX_HOME"] = str(codex_home)
    return env


class Launcher:
    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.started: list[AppServerProcess] = []

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> AppServerProcess:
        stderr_path = self.tmp_path / f"app-server-{len(self.started)}.stderr"
        server = AppServerProcess(env or self.env, list(args), stderr_path)
        self.started.append(server)
        return server


@pytest.fixture
def launch(server_env: dict[str, str], tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(server_env, tmp_path)
    try:
        yield launcher
    finally:
        for server in launcher.started:
            server.stop()


def log_text(codex_home: Path) -> str:
    path = codex_home / "log" / "codex-login.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def completed(login_id: str | None, success: bool, error: str | None) -> Message:
    return {"loginId": login_id, "success": success, "error": error, "onboardingEntrypoint": None}


def split_notification(message: Message) -> tuple[str, Message]:
    """(method, params) after checking the notification's shape: no id, an integer emittedAtMs."""
    assert set(message) == {"method", "params", "emittedAtMs"}, message
    assert isinstance(message["emittedAtMs"], int)
    assert abs(message["emittedAtMs"] / 1000 - time.time()) < 120
    return message["method"], message["params"]


def callback_target(auth_url: str) -> tuple[str, str, int]:
    """(redirect_uri, state, port) from an authorize URL."""
    query = parse_qs(urlsplit(auth_url).query)
    redirect_uri = query["redirect_uri"][0]
    port = urlsplit(redirect_uri).port
    assert port is not None
    return redirect_uri, query["state"][0], port


def send_callback(auth_url: str, code: str = CODE) -> httpx.Response:
    redirect_uri, state, _ = callback_target(auth_url)
    return httpx.get(redirect_uri, params={"code": code, "state": state}, follow_redirects=True, timeout=15)


def port_closed(port: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            return True
        time.sleep(0.05)
    return False


def start_chatgpt(server: AppServerProcess) -> tuple[str, str]:
    answer = server.request("account/login/start", {"type": "chatgpt"})
    result = answer["result"]
    assert set(result) == {"type", "loginId", "authUrl"}
    assert result["type"] == "chatgpt"
    return result["loginId"], result["authUrl"]


# --- handshake and reading the account ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("version_id", "shown"),
    [("12", "12.0.0"), ("22.04", "22.4.0"), ("1.2.3", "1.2.3"), ("1.2.", "1.2.0"), ("1.2.3.4", "1.2.3.4"), ("rolling", "rolling")],
)
def test_the_os_version_reads_as_os_info_prints_it(version_id: str, shown: str) -> None:
    # The golden user agent of the Rust CLI on Debian 12 (VERSION_ID="12"): "probe/0.169.0 (Debian 12.0.0; x86_64) ..."
    from codex_login.app_server import os_version_text

    assert os_version_text(version_id) == shown


def test_the_user_agent_names_the_os_as_the_rust_cli_does() -> None:
    import platform

    from codex_login.app_server import user_agent

    agent = user_agent("probe", "probe", "0.0.1", {"TERM": "xterm"})
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        release = {"NAME": "Linux"}  # no os-release: the kernel's release stands in for the version
    name = release["NAME"].split(" ")[0]
    assert f"({name} " in agent and agent.endswith(") xterm (probe; 0.0.1)")
    if release.get("VERSION_ID", "").isdigit():
        assert f"({name} {release['VERSION_ID']}.0.0; " in agent


def test_initialize_and_account_read_when_logged_out(launch: Launcher, codex_home: Path) -> None:
    server = launch()
    answer = server.initialize()
    assert set(answer) == {"id", "result"}
    result = answer["result"]
    assert set(result) == {"userAgent", "codexHome", "platformFamily", "platformOs"}
    assert result["userAgent"].startswith("probe/")
    assert result["userAgent"].endswith("(probe; 0.0.1)")
    assert result["userAgent"].isascii()
    assert result["codexHome"] == str(codex_home.resolve())
    assert result["platformFamily"] == ("windows" if sys.platform == "win32" else "unix")
    assert result["platformOs"] == {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform)

    # The `initialized` notification is not answered: the next line is the next request's answer.
    read_id = server.send_request("account/read", {"refreshToken": False})
    assert server.next_message() == {
        "id": read_id,
        "result": {"account": None, "userId": None, "requiresOpenaiAuth": True, "workspaceRouting": None},
    }
    # params may be left out.
    assert server.request("account/read")["result"]["account"] is None


def test_requests_before_initialize_are_refused(launch: Launcher) -> None:
    server = launch()
    for method, params in (
        ("account/read", {}),
        ("account/login/start", {"type": "apiKey", "apiKey": API_KEY}),
        ("account/logout", None),
    ):
        request_id = server.send_request(method, params)
        assert server.next_message() == {"error": {"code": -32600, "message": "Not initialized"}, "id": request_id}
    assert server.initialize()["result"]["userAgent"].startswith("probe/")
    again = server.request("initialize", {"clientInfo": CLIENT_INFO})
    assert again["error"] == {"code": -32600, "message": "Already initialized"}
    # Nothing was saved by the refused login.
    assert server.request("account/read")["result"]["account"] is None


def test_client_name_must_be_a_header_value(launch: Launcher) -> None:
    server = launch()
    answer = server.request("initialize", {"clientInfo": {"name": "bad\nname", "version": "1"}})
    assert answer["error"] == {
        "code": -32600,
        "message": "Invalid clientInfo.name: 'bad\nname'. Must be a valid HTTP header value.",
    }
    # Still not initialized; a good name then works.
    assert server.request("account/read")["error"]["message"] == "Not initialized"
    assert "result" in server.initialize()


# --- API key ----------------------------------------------------------------------------------------


def test_api_key_login_completes_updates_and_reads_back(launch: Launcher, codex_home: Path) -> None:
    server = launch()
    server.initialize()
    request_id = server.send_request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})
    assert server.next_message() == {"id": request_id, "result": {"type": "apiKey"}}
    assert split_notification(server.next_message()) == (
        "account/login/completed",
        completed(None, True, None),
    )
    assert split_notification(server.next_message()) == (
        "account/updated",
        {"authMode": "apikey", "planType": None},
    )
    assert server.request("account/read", {})["result"] == {
        "account": {"type": "apiKey"},
        "userId": None,
        "requiresOpenaiAuth": True,
        "workspaceRouting": None,
    }
    stored = json.loads((codex_home / "auth.json").read_text())
    assert stored["auth_mode"] == "apikey"
    assert stored["OPENAI_API_KEY"] == API_KEY
    assert (codex_home / "auth.json").stat().st_mode & 0o777 == 0o600

    server.close_stdin()
    assert server.wait() == 0
    log = log_text(codex_home)
    assert "login attempt started flow=api_key" in log
    assert "credentials saved store=file" in log
    assert "login finished outcome=success flow=api_key" in log
    assert API_KEY not in log
    assert API_KEY not in server.stderr()


def test_logout_removes_credentials_and_updates(launch: Launcher, codex_home: Path) -> None:
    server = launch()
    server.initialize()
    server.request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})
    server.notification("account/login/completed")
    server.notification("account/updated")
    assert (codex_home / "auth.json").exists()

    logout_id = server.send_request("account/logout")
    assert server.next_message() == {"id": logout_id, "result": {}}
    assert split_notification(server.next_message()) == ("account/updated", {"authMode": None, "planType": None})
    assert not (codex_home / "auth.json").exists()
    assert server.request("account/read")["result"]["account"] is None
    # Logging out again is not an error.
    assert server.request("account/logout")["result"] == {}


def test_ephemeral_store_keeps_the_key_in_the_process(launch: Launcher, codex_home: Path) -> None:
    server = launch("-c", "cli_auth_credentials_store=ephemeral")
    server.initialize()
    server.request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})
    assert split_notification(server.notification("account/updated"))[1]["authMode"] == "apikey"
    assert server.request("account/read")["result"]["account"] == {"type": "apiKey"}
    assert not (codex_home / "auth.json").exists()


def test_api_key_that_cannot_be_saved_is_an_internal_error(launch: Launcher, codex_home: Path) -> None:
    (codex_home / "auth.json").mkdir()  # a directory where the file goes: the rename fails (EISDIR)
    server = launch()
    server.initialize()
    answer = server.request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})
    assert answer["error"]["code"] == -32603
    assert answer["error"]["message"].startswith("failed to save api key: ")
    assert API_KEY not in answer["error"]["message"]
    server.assert_quiet()  # no completion, no update


def test_unusable_api_key_is_refused(launch: Launcher, codex_home: Path) -> None:
    server = launch()
    server.initialize()
    answer = server.request("account/login/start", {"type": "apiKey", "apiKey": "  "})
    assert answer["error"] == {"code": -32600, "message": "Invalid API key: the API key is empty"}
    answer = server.request("account/login/start", {"type": "apiKey", "apiKey": "sk-two words"})
    assert answer["error"] == {
        "code": -32600,
        "message": "Invalid API key: the API key contains whitespace or control characters",
    }
    assert not (codex_home / "auth.json").exists()
    server.assert_quiet()


# --- ChatGPT ----------------------------------------------------------------------------------------


def test_chatgpt_login_completes_against_the_issuer(launch: Launcher, issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, auth_url = start_chatgpt(server)
    assert uuid.UUID(login_id).version == 4
    assert auth_url.startswith(f"{issuer.url}/oauth/authorize?response_type=code&")
    query = parse_qs(urlsplit(auth_url).query)
    assert query["originator"] == ["probe"]
    redirect_uri, state, port = callback_target(auth_url)
    assert redirect_uri == f"http://localhost:{port}/auth/callback"

    page = send_callback(auth_url)
    assert page.status_code == 200
    assert "Signed in" in page.text or "success" in page.text.lower()

    method, params = split_notification(server.next_message())
    assert (method, params) == ("account/login/completed", completed(login_id, True, None))
    assert split_notification(server.next_message()) == (
        "account/updated",
        {"authMode": "chatgpt", "planType": "pro"},
    )
    assert server.request("account/read")["result"] == {
        "account": {"type": "chatgpt", "email": "user@example.com", "planType": "pro"},
        "userId": "user_1",
        "requiresOpenaiAuth": True,
        "workspaceRouting": None,
    }
    token_requests = issuer.token_requests()
    assert len(token_requests) == 1
    assert token_requests[0].form["code"] == CODE
    assert token_requests[0].form["redirect_uri"] == redirect_uri
    stored = json.loads((codex_home / "auth.json").read_text())
    assert stored["auth_mode"] == "chatgpt"
    assert stored["tokens"]["access_token"] == "access-123"
    assert port_closed(port)

    # Logout removes the credentials, then revokes the refresh token and the access token at the issuer.
    issuer.routes["/oauth/revoke"] = Answer(200)
    logout_id = server.send_request("account/logout")
    assert server.next_message() == {"id": logout_id, "result": {}}
    assert split_notification(server.next_message()) == ("account/updated", {"authMode": None, "planType": None})
    assert not (codex_home / "auth.json").exists()
    revocations = [(r.form["token_type_hint"], r.form["token"]) for r in issuer.requests if r.path == "/oauth/revoke"]
    assert revocations == [("refresh_token", "refresh-123"), ("access_token", "access-123")]

    server.close_stdin()
    assert server.wait() == 0
    log = log_text(codex_home)
    assert "login attempt started flow=browser" in log
    assert "credentials saved store=file" in log
    assert "login finished outcome=success flow=browser" in log
    for secret in (CODE, state, "access-123", "refresh-123", "sk-exchanged-api-key"):
        assert secret not in log
        assert secret not in server.stderr()


def test_cancel_ends_the_login(launch: Launcher, issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, auth_url = start_chatgpt(server)
    _, _, port = callback_target(auth_url)

    cancel_id = server.send_request("account/login/cancel", {"loginId": login_id})
    assert server.next_message() == {"id": cancel_id, "result": {"status": "canceled"}}
    assert split_notification(server.next_message()) == (
        "account/login/completed",
        completed(login_id, False, NOT_COMPLETED),
    )
    assert port_closed(port)
    # Cancelling again, or an unknown login, finds nothing; a malformed id is refused.
    assert server.request("account/login/cancel", {"loginId": login_id})["result"] == {"status": "notFound"}
    assert server.request("account/login/cancel", {"loginId": str(uuid.uuid4())})["result"] == {"status": "notFound"}
    assert server.request("account/login/cancel", {"loginId": "not-a-uuid"})["error"] == {
        "code": -32600,
        "message": "invalid login id: not-a-uuid",
    }
    server.assert_quiet()
    assert not (codex_home / "auth.json").exists()
    assert issuer.token_requests() == []
    assert "login cancelled reason=client_cancel" in log_text(codex_home)


def test_a_completion_owed_is_sent_even_when_stdin_closes_right_after(
    launch: Launcher, issuer: ScriptedIssuer, codex_home: Path
) -> None:
    # The cancel cleared the active login before its waiter had sent the completion, and the end of input
    # then joined nothing: the process exited without it (6 runs in 6 on a 2-CPU machine).
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, _ = start_chatgpt(server)
    cancel_id = server.send_request("account/login/cancel", {"loginId": login_id})
    assert server.next_message() == {"id": cancel_id, "result": {"status": "canceled"}}
    server.close_stdin()
    assert server.wait() == 0
    assert split_notification(server.next_message()) == (
        "account/login/completed",
        completed(login_id, False, NOT_COMPLETED),
    )


def test_the_client_opens_the_url_unless_asked_otherwise(
    launch: Launcher, server_env: dict[str, str], issuer: ScriptedIssuer, tmp_path: Path
) -> None:
    # As the reference's app server (open_browser: false): the editor opens authUrl; a second tab here was
    # one too many. CODEX_LOGIN_APP_SERVER_OPEN_BROWSER=1 opens it here as well.
    for setting, opened in (("", False), ("1", True)):
        marker = tmp_path / f"opened-{setting or 'default'}"
        env = {**server_env, "BROWSER": f"touch {marker} %s", "CODEX_LOGIN_APP_SERVER_OPEN_BROWSER": setting}
        server = launch("--issuer", issuer.url, env=env)
        server.initialize()
        login_id, _ = start_chatgpt(server)
        deadline = time.monotonic() + 5
        while opened and not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.request("account/login/cancel", {"loginId": login_id})
        server.notification("account/login/completed")
        server.close_stdin()
        assert server.wait() == 0
        assert marker.exists() is opened


def test_a_lone_surrogate_is_a_parse_error_as_serde_json_says(launch: Launcher, issuer: ScriptedIssuer) -> None:
    # Python's json accepts "\ud800"; as a client name it became the originator and every ChatGPT sign-in of
    # the session then failed with an internal error (UnicodeEncodeError).
    server = launch("--issuer", issuer.url)
    server.send_raw(b'{"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "a\\ud800", "version": "1"}}}\n')
    assert server.next_message() == {"error": {"code": -32700, "message": "Parse error: lone surrogate in a string"},
                                     "id": None}
    server.initialize()
    login_id, _ = start_chatgpt(server)
    server.request("account/login/cancel", {"loginId": login_id})


def test_a_second_login_cancels_the_first(launch: Launcher, issuer: ScriptedIssuer) -> None:
    server = launch("--issuer", issuer.url)
    server.initialize()
    first_id, first_url = start_chatgpt(server)
    second_request = server.send_request("account/login/start", {"type": "chatgpt"})
    # The first one's completion comes before the second one's answer.
    assert split_notification(server.next_message()) == (
        "account/login/completed",
        completed(first_id, False, NOT_COMPLETED),
    )
    answer = server.next_message()
    assert answer["id"] == second_request
    second_id, second_url = answer["result"]["loginId"], answer["result"]["authUrl"]
    assert second_id != first_id
    assert port_closed(callback_target(first_url)[2])

    assert send_callback(second_url).status_code == 200
    assert split_notification(server.next_message()) == (
        "account/login/completed",
        completed(second_id, True, None),
    )
    assert split_notification(server.next_message())[0] == "account/updated"


def test_api_key_login_cancels_a_running_chatgpt_login(launch: Launcher, issuer: ScriptedIssuer) -> None:
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, _ = start_chatgpt(server)
    request_id = server.send_request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})
    assert split_notification(server.next_message())[1] == completed(login_id, False, NOT_COMPLETED)
    assert server.next_message() == {"id": request_id, "result": {"type": "apiKey"}}
    assert split_notification(server.next_message())[1] == completed(None, True, None)


def test_failed_token_exchange_completes_with_the_error(
    launch: Launcher, issuer: ScriptedIssuer, codex_home: Path
) -> None:
    issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": "code expired"})
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, auth_url = start_chatgpt(server)
    page = send_callback(auth_url)
    assert page.status_code == 200  # the branded error page, as the reference
    method, params = split_notification(server.next_message())
    assert method == "account/login/completed"
    assert params["loginId"] == login_id
    assert params["success"] is False
    assert params["error"].startswith("Login server error: Token exchange failed: ")
    assert "400 Bad Request" in params["error"]
    server.assert_quiet()  # no account/updated after a failure
    assert not (codex_home / "auth.json").exists()
    # stderr names the attempt, and the log has the attempt's lines under that ID.
    stderr = server.stderr()
    assert f"Sign-in {login_id} failed: Token exchange failed: " in stderr
    attempt = stderr.split("Attempt ID: ")[1][:11]
    assert attempt.startswith("la_")
    assert f"login{{attempt={attempt}}}: codex_cli::login: login finished outcome=error" in log_text(codex_home)


def test_login_times_out(launch: Launcher, server_env: dict[str, str], issuer: ScriptedIssuer) -> None:
    server = launch("--issuer", issuer.url, env={**server_env, "CODEX_LOGIN_APP_SERVER_LOGIN_TIMEOUT": "1"})
    server.initialize()
    login_id, _ = start_chatgpt(server)
    method, params = split_notification(server.next_message(timeout=20))
    assert method == "account/login/completed"
    assert params["loginId"] == login_id
    assert params["success"] is False
    assert params["error"].startswith("Login server error: Login timed out after 1 seconds")


def test_originator_override_variable_wins(launch: Launcher, server_env: dict[str, str]) -> None:
    server = launch(env={**server_env, "CODEX_INTERNAL_ORIGINATOR_OVERRIDE": "codex_vscode"})
    assert server.initialize()["result"]["userAgent"].startswith("codex_vscode/")
    _, auth_url = start_chatgpt(server)
    assert parse_qs(urlsplit(auth_url).query)["originator"] == ["codex_vscode"]


def test_forced_login_method_refuses_the_other_kind(launch: Launcher, codex_home: Path) -> None:
    (codex_home / "config.toml").write_text('forced_login_method = "api"\n')
    server = launch()
    server.initialize()
    assert server.request("account/login/start", {"type": "chatgpt"})["error"] == {
        "code": -32600,
        "message": "ChatGPT login is disabled. Use API key login instead.",
    }
    assert server.request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})["result"] == {"type": "apiKey"}

    other = launch("-c", 'forced_login_method="chatgpt"')
    other.initialize()
    assert other.request("account/login/start", {"type": "apiKey", "apiKey": API_KEY})["error"] == {
        "code": -32600,
        "message": "API key login is disabled. Use ChatGPT login instead.",
    }


def test_chatgpt_account_without_email_is_refused_as_the_reference(launch: Launcher, codex_home: Path) -> None:
    from tests.support.scripted_issuer import make_jwt

    id_token = make_jwt({"https://api.openai.com/auth": {"chatgpt_plan_type": "pro"}})
    (codex_home / "auth.json").write_text(
        json.dumps(
            {
                "auth_mode": "chatgpt",
                "OPENAI_API_KEY": None,
                "tokens": {"id_token": id_token, "access_token": "a", "refresh_token": "r", "account_id": None},
            }
        )
    )
    server = launch()
    server.initialize()
    assert server.request("account/read")["error"] == {
        "code": -32600,
        "message": "email and plan type are required for chatgpt authentication",
    }


# --- protocol errors --------------------------------------------------------------------------------


def test_unknown_method(launch: Launcher) -> None:
    server = launch()
    server.initialize()
    request_id = server.send_request("account/unknown", {})
    assert server.next_message() == {
        "error": {"code": -32601, "message": "Method not found: account/unknown"},
        "id": request_id,
    }
    # Unknown methods are "not found" even before initialize, and string ids are echoed as given.
    server.send({"id": "abc", "method": "thread/start"})
    assert server.next_message() == {
        "error": {"code": -32601, "message": "Method not found: thread/start"},
        "id": "abc",
    }


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("account/login/start", {}, "Invalid request: missing field `type`"),
        ("account/login/start", {"type": "apiKey"}, "Invalid request: missing field `apiKey`"),
        (
            "account/login/start",
            {"type": "apiKey", "apiKey": 12345},
            "Invalid request: invalid type: a number, expected `apiKey` to be a string",
        ),
        (
            "account/login/start",
            {"type": "deviceCode"},
            "Invalid request: unknown variant `deviceCode`, expected one of `apiKey`, `chatgpt`",
        ),
        ("account/login/start", None, "Invalid request: missing field `params`"),
        ("account/login/cancel", {}, "Invalid request: missing field `loginId`"),
        (
            "account/read",
            {"refreshToken": "yes"},
            "Invalid request: invalid type: a string, expected `refreshToken` to be a boolean",
        ),
        ("account/read", [1, 2], "Invalid request: invalid type: an array, expected `params` to be an object"),
    ],
)
def test_invalid_params(launch: Launcher, method: str, params: Any, message: str) -> None:
    server = launch()
    server.initialize()
    request: Message = {"id": 7, "method": method}
    if params is not None:
        request["params"] = params
    server.send(request)
    assert server.next_message() == {"error": {"code": -32600, "message": message}, "id": 7}
    assert server.request("account/read")["result"]["account"] is None


def test_invalid_initialize_params(launch: Launcher) -> None:
    server = launch()
    assert server.request("initialize", {})["error"] == {
        "code": -32600,
        "message": "Invalid request: missing field `clientInfo`",
    }
    assert server.request("initialize", {"clientInfo": {"name": "x"}})["error"] == {
        "code": -32600,
        "message": "Invalid request: missing field `version`",
    }
    assert "result" in server.initialize()


def test_garbage_never_kills_the_server(launch: Launcher) -> None:
    server = launch()
    garbage: list[tuple[bytes, Message]] = [
        (b"garbage\n", {"code": -32700}),
        (b"{\n", {"code": -32700}),
        (b"\xff\xfe\x00\n", {"code": -32700, "message": "Parse error: the line is not valid UTF-8"}),
        (b'{"id": 1, "method": NaN}\n', {"code": -32700}),
        (b"[1, 2]\n", {"code": -32600}),
        (b"null\n", {"code": -32600}),
        (b'{"id": true, "method": "initialize"}\n', {"code": -32600}),
        (b'{"id": 1.5, "method": "initialize"}\n', {"code": -32600}),
        (b'{"id": 3}\n', {"code": -32600, "message": "Invalid request: missing field `method`"}),
        (b'{"id": 4, "method": 5}\n', {"code": -32600, "message": "Invalid request: `method` must be a string"}),
        (b"[" * 100_000 + b"\n", {"code": -32700}),
        (
            b"x" * (2 * 1024 * 1024) + b"\n",
            {"code": -32700, "message": "Parse error: message longer than 1048576 bytes"},
        ),
    ]
    for line, expected in garbage:
        server.send_raw(line)
        answer = server.next_message()
        assert set(answer) == {"error", "id"}, (line[:40], answer)
        assert answer["id"] in (None, 3, 4), (line[:40], answer)
        for key, value in expected.items():
            assert answer["error"][key] == value, (line[:40], answer)
    # Blank lines, notifications and responses to requests never sent are not answered at all.
    server.send_raw(b"\n   \n")
    server.send({"method": "initialized"})
    server.send({"method": "some/notification", "params": {"x": 1}})
    server.send({"id": 99, "result": {}})
    server.send({"id": 98, "error": {"code": 1, "message": "no"}})
    server.assert_quiet()
    assert "result" in server.initialize()
    assert server.proc.poll() is None


def test_stdout_carries_only_protocol(
    launch: Launcher, server_env: dict[str, str], issuer: ScriptedIssuer, codex_home: Path
) -> None:
    # A BROWSER command that prints to stdout and tries to read stdin: neither may touch the protocol.
    noisy = "sh -c 'echo BROWSER-STDOUT-NOISE; head -c 64 >/dev/null; echo BROWSER-STDERR-NOISE >&2' %s"
    env = {**server_env, "BROWSER": noisy, "CODEX_LOGIN_LOG_STDERR": "1", "CODEX_LOGIN_APP_SERVER_OPEN_BROWSER": "1"}
    issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": "bad <b>code</b>"})
    server = launch("--issuer", issuer.url, env=env)
    server.initialize()
    _, auth_url = start_chatgpt(server)
    time.sleep(0.5)  # let the browser command run
    # Requests after the browser started are read whole: the browser command did not eat them.
    for _ in range(3):
        assert server.request("account/read")["result"]["account"] is None
    send_callback(auth_url)
    server.notification("account/login/completed")
    server.close_stdin()
    assert server.wait() == 0
    assert server.raw_lines
    for line in server.raw_lines:
        assert line.endswith(b"\n")
        assert isinstance(json.loads(line), dict)
    stderr = server.stderr()
    assert "BROWSER-STDOUT-NOISE" in stderr
    assert "BROWSER-STDERR-NOISE" in stderr
    # The login server's notices and the log lines (CODEX_LOGIN_LOG_STDERR=1) went to stderr.
    assert "Token exchange error: " in stderr
    assert "codex_login::server: login server listening" in stderr
    assert "login attempt started" in log_text(codex_home)


def test_end_of_input_ends_the_process_and_the_login(launch: Launcher, issuer: ScriptedIssuer) -> None:
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, auth_url = start_chatgpt(server)
    server.close_stdin()
    assert split_notification(server.next_message())[1] == completed(login_id, False, NOT_COMPLETED)
    assert server.wait() == 0
    assert port_closed(callback_target(auth_url)[2])
    with pytest.raises(ServerGone):
        server.next_message(timeout=5)


def test_end_of_input_without_anything_running(launch: Launcher) -> None:
    server = launch()
    server.close_stdin()
    assert server.wait() == 0
    assert server.raw_lines == []


@pytest.mark.parametrize(
    "stop", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_cancels_the_login_and_exits(
    launch: Launcher, issuer: ScriptedIssuer, codex_home: Path, stop: tuple[int, int, str]
) -> None:
    signum, exit_code, reason = stop
    server = launch("--issuer", issuer.url)
    server.initialize()
    login_id, auth_url = start_chatgpt(server)
    server.proc.send_signal(signum)
    assert split_notification(server.next_message())[1] == completed(login_id, False, NOT_COMPLETED)
    assert server.wait() == exit_code
    assert port_closed(callback_target(auth_url)[2])
    assert f"login cancelled reason={reason}" in log_text(codex_home)


def test_bad_port_variable_is_a_startup_error(launch: Launcher, server_env: dict[str, str]) -> None:
    server = launch(env={**server_env, "CODEX_LOGIN_APP_SERVER_PORT": "70000"})
    assert server.wait() == 1
    assert server.raw_lines == []
    assert "CODEX_LOGIN_APP_SERVER_PORT must be a port number between 0 and 65535" in server.stderr()
