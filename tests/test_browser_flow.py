"""The browser sign-in through the library API against the scripted issuer, with its exact log lines.

Each scenario asserts the outcome (returned error, page, auth.json) and the exact lines the durable log
holds (timestamps, attempt IDs, ports, sizes and durations normalized). A final test asserts that no two
scenarios leave the same lines: support can tell every failure apart from the log alone (issue 3).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from codex_login.errors import ErrorKind, LoginError
from codex_login.http import HttpSettings
from codex_login.server import LoginServer, LoginSuccess, ServerOptions, run_login_server
from tests.conftest import LoginLog
from tests.support.scripted_issuer import Answer, ScriptedIssuer, id_token_for, make_jwt, tokens_answer

STATE = "test_state_0123456789_abcdefghijklmnopqrstu"

ATTEMPT_START = [
    " INFO codex_cli::login: login attempt started flow=browser issuer=http://127.0.0.1:PORT/ "
    'client_id="app_EMoamEEZ73f0CkXaXp7hrann" version=V store=file',
    " INFO codex_login::server: login server listening port=N addresses=A fallback=false attempts=N",
    " INFO codex_login::server: browser not opened reason=disabled",
]
CALLBACK_OK = (
    " INFO codex_login::server: received login callback path=/auth/callback has_code=true "
    "has_state=true has_error=false state_valid=true"
)
EXCHANGE_START = [
    " INFO codex_login::server: starting oauth token exchange issuer=http://127.0.0.1:PORT/ "
    "token_endpoint=http://127.0.0.1:PORT/oauth/token redirect_uri=http://localhost:PORT/auth/callback",
    " INFO codex_login::server: oauth token request route ca_source=system proxy=none",
]


def norm(lines: list[str]) -> list[str]:
    import re

    return [re.sub(r"addresses=\S+", "addresses=A", line) for line in lines]


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        yield scripted


def start(codex_home: Path, issuer_url: str, **overrides: object) -> LoginServer:
    options = ServerOptions(
        codex_home=codex_home,
        issuer=issuer_url,
        port=0,
        open_browser=False,
        force_state=STATE,
        http=HttpSettings(env={}, total_timeout=2.0, connect_timeout=2.0),
        timeout=30,
        success_grace=5,
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    return run_login_server(options)


def callback(server: LoginServer, query: str, *, follow: bool = True) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{server.actual_port}/auth/callback?{query}", follow_redirects=follow, timeout=15
    )


def outcome(server: LoginServer) -> LoginSuccess | LoginError:
    try:
        return server.block_until_done(15)
    except LoginError as err:
        return err


@dataclass
class Scenario:
    name: str
    prepare: Callable[[ScriptedIssuer, Path], dict[str, object]]
    query: str
    expect_lines: list[str]
    expect_error: str | None
    page_contains: tuple[str, ...] = ()


def _token(answer: Answer) -> Callable[[ScriptedIssuer, Path], dict[str, object]]:
    def prepare(issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
        issuer.token = answer
        return {}

    return prepare


def _nothing(_issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
    return {}


def _closed_port_issuer(issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {"issuer": f"http://127.0.0.1:{port}"}


def _dead_proxy(issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {
        "http": HttpSettings(
            env={"HTTP_PROXY": f"http://proxyuser:CNRYproxypw@127.0.0.1:{port}"}, total_timeout=2.0
        )
    }


def _untrusted_tls(issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    tls_issuer = ScriptedIssuer(tls=context).__enter__()
    return {"issuer": tls_issuer.url, "cleanup": tls_issuer}


def _workspace(issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
    issuer.token = tokens_answer(id_token=id_token_for(account_id="acct_other"))
    return {"forced_chatgpt_workspace_id": ("org-required",)}


def _unsavable(issuer: ScriptedIssuer, home: Path) -> dict[str, object]:
    blocker = home / "not-a-dir"
    blocker.write_text("x")
    return {"codex_home": blocker / "sub"}


def _hang(issuer: ScriptedIssuer, _home: Path) -> dict[str, object]:
    issuer.token = Answer(hang=4.0)
    return {"http": HttpSettings(env={}, total_timeout=1.0, connect_timeout=1.0)}


def exchange_failed(response: str, middle: list[str], failure: str) -> list[str]:
    return [
        CALLBACK_OK,
        *EXCHANGE_START,
        *([response] if response else []),
        *middle,
        "ERROR codex_login::server: login callback token exchange failed",
        f" WARN codex_cli::login: login finished outcome=error flow=browser duration_ms=N failure={failure}",
    ]


def response_line(status: str, content_type: str) -> str:
    return (
        f" INFO codex_login::server: oauth token endpoint response status={status} "
        f'content_type="{content_type}" body_len=N'
    )


SCENARIOS = [
    Scenario(
        "access_denied",
        _nothing,
        f"error=access_denied&error_description=User%20cancelled&state={STATE}",
        [
            " INFO codex_login::server: received login callback path=/auth/callback has_code=false "
            "has_state=true has_error=true state_valid=true",
            ' WARN codex_login::server: oauth callback returned error error_code="access_denied" '
            "has_error_description=true",
            " WARN codex_cli::login: login finished outcome=denied flow=browser duration_ms=N failure=denied",
        ],
        "Sign-in failed: User cancelled",
        ("Sign-in could not be completed", "User cancelled", "access_denied"),
    ),
    Scenario(
        "missing_code",
        _nothing,
        f"state={STATE}",
        [
            " INFO codex_login::server: received login callback path=/auth/callback has_code=false "
            "has_state=true has_error=false state_valid=true",
            " WARN codex_login::server: login callback missing authorization code",
            " WARN codex_cli::login: login finished outcome=error flow=browser duration_ms=N failure=missing_code",
        ],
        "Missing authorization code. Sign-in could not be completed.",
        ("missing_authorization_code",),
    ),
    Scenario(
        "token_400_json",
        _token(Answer.json(400, {"error": "invalid_grant", "error_description": "refresh token expired"})),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("400 Bad Request", "application/json"),
            [
                " WARN codex_login::server: oauth token exchange returned non-success status status=400 Bad Request "
                'error_code="invalid_grant" error_message="refresh token expired"'
            ],
            "token_invalid_grant",
        ),
        "Token exchange failed: token endpoint returned status 400 Bad Request: refresh token expired",
        ("token_exchange_failed", "refresh token expired"),
    ),
    Scenario(
        "token_401_json",
        _token(
            Answer.json(
                401, {"error": {"code": "proxy_auth_required", "message": "proxy authentication required"}}
            )
        ),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("401 Unauthorized", "application/json"),
            [
                " WARN codex_login::server: oauth token exchange returned non-success status status=401 Unauthorized "
                'error_code="proxy_auth_required" error_message="proxy authentication required"'
            ],
            "token_forbidden",
        ),
        "Token exchange failed: token endpoint returned status 401 Unauthorized: proxy authentication required",
    ),
    Scenario(
        "token_403_html",
        _token(Answer.text(403, "<html><b>blocked</b></html>", "text/html")),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("403 Forbidden", "text/html"),
            [
                " WARN codex_login::server: oauth token exchange returned non-success status status=403 Forbidden "
                'error_code="unknown" error_message="unknown"'
            ],
            "token_forbidden",
        ),
        "Token exchange failed: token endpoint returned status 403 Forbidden: <html><b>blocked</b></html>",
        ("&lt;b&gt;blocked&lt;/b&gt;",),
    ),
    Scenario(
        "token_503_json",
        _token(Answer.json(503, {"error": "temporarily_unavailable"})),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("503 Service Unavailable", "application/json"),
            [
                " WARN codex_login::server: oauth token exchange returned non-success status "
                'status=503 Service Unavailable error_code="temporarily_unavailable" error_message="unknown"'
            ],
            "token_server_error",
        ),
        "Token exchange failed: token endpoint returned status 503 Service Unavailable: temporarily_unavailable",
    ),
    Scenario(
        "token_500_empty",
        _token(Answer(500)),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("500 Internal Server Error", "none"),
            [
                " WARN codex_login::server: oauth token exchange returned non-success status "
                'status=500 Internal Server Error error_code="unknown" error_message="unknown"'
            ],
            "token_server_error",
        ),
        "Token exchange failed: token endpoint returned status 500 Internal Server Error: unknown error",
    ),
    Scenario(
        "token_200_not_json",
        _token(Answer.text(200, "<html>captive portal</html>", "text/html")),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("200 OK", "text/html"),
            ["ERROR codex_login::server: oauth token response invalid status=200 OK reason=not_json"],
            "token_invalid_response",
        ),
        "Token exchange failed: OAuth token response is invalid: the body is not JSON",
    ),
    Scenario(
        "token_200_missing_field",
        _token(Answer.json(200, {"id_token": id_token_for(), "access_token": "a"})),
        f"code=abc&state={STATE}",
        exchange_failed(
            response_line("200 OK", "application/json"),
            [
                "ERROR codex_login::server: oauth token response invalid status=200 OK reason=missing_field "
                "field=refresh_token"
            ],
            "token_invalid_response",
        ),
        "Token exchange failed: OAuth token response is invalid: the field 'refresh_token' is missing or not a string",
    ),
    Scenario(
        "connection_closed",
        _token(Answer(close=True)),
        f"code=abc&state={STATE}",
        exchange_failed(
            "",
            [
                "ERROR codex_login::server: oauth token exchange transport failure is_timeout=false is_connect=false "
                "is_request=true error=error sending request for url (http://127.0.0.1:PORT/oauth/token)",
                "ERROR codex_login::server: oauth token transport error classified kind=closed "
                "error_class=RemoteProtocolError",
            ],
            "transport_closed",
        ),
        "the server closed the connection without a complete answer",
    ),
    Scenario(
        "connection_refused",
        _closed_port_issuer,
        f"code=abc&state={STATE}",
        exchange_failed(
            "",
            [
                "ERROR codex_login::server: oauth token exchange transport failure is_timeout=false is_connect=true "
                "is_request=true error=error sending request for url (http://127.0.0.1:PORT/oauth/token)",
                "ERROR codex_login::server: oauth token transport error classified kind=connect "
                "error_class=ConnectError errno=111",
            ],
            "transport_connect",
        ),
        "connection refused",
    ),
    Scenario(
        "read_timeout",
        _hang,
        f"code=abc&state={STATE}",
        exchange_failed(
            "",
            [
                "ERROR codex_login::server: oauth token exchange transport failure is_timeout=true is_connect=false "
                "is_request=true error=error sending request for url (http://127.0.0.1:PORT/oauth/token)",
                "ERROR codex_login::server: oauth token transport error classified kind=timeout "
                "error_class=ReadTimeout",
            ],
            "transport_timeout",
        ),
        "timed out",
    ),
    Scenario(
        "tls_untrusted_certificate",
        _untrusted_tls,
        f"code=abc&state={STATE}",
        [
            CALLBACK_OK,
            " INFO codex_login::server: starting oauth token exchange issuer=https://127.0.0.1:PORT/ "
            "token_endpoint=https://127.0.0.1:PORT/oauth/token redirect_uri=http://localhost:PORT/auth/callback",
            " INFO codex_login::server: oauth token request route ca_source=system proxy=none",
            "ERROR codex_login::server: oauth token exchange transport failure is_timeout=false is_connect=true "
            "is_request=true error=error sending request for url (https://127.0.0.1:PORT/oauth/token)",
            "ERROR codex_login::server: oauth token transport error classified kind=tls error_class=ConnectError",
            "ERROR codex_login::server: login callback token exchange failed",
            " WARN codex_cli::login: login finished outcome=error flow=browser duration_ms=N failure=transport_tls",
        ],
        "TLS certificate verification failed",
    ),
    Scenario(
        "dead_proxy",
        _dead_proxy,
        f"code=abc&state={STATE}",
        [
            CALLBACK_OK,
            EXCHANGE_START[0],
            " INFO codex_login::server: oauth token request route ca_source=system proxy=http://127.0.0.1:PORT",
            "ERROR codex_login::server: oauth token exchange transport failure is_timeout=false is_connect=true "
            "is_request=true error=error sending request for url (http://127.0.0.1:PORT/oauth/token)",
            "ERROR codex_login::server: oauth token transport error classified kind=proxy "
            "error_class=ConnectError errno=111",
            "ERROR codex_login::server: login callback token exchange failed",
            " WARN codex_cli::login: login finished outcome=error flow=browser duration_ms=N failure=transport_proxy",
        ],
        "the proxy http://127.0.0.1:",
    ),
    Scenario(
        "workspace_mismatch",
        _workspace,
        f"code=abc&state={STATE}",
        [
            CALLBACK_OK,
            *EXCHANGE_START,
            response_line("200 OK", "application/json"),
            " INFO codex_login::server: oauth token exchange succeeded status=200 OK",
            " WARN codex_login::server: login workspace restriction failed reason=mismatch",
            " WARN codex_cli::login: login finished outcome=denied flow=browser duration_ms=N "
            "failure=workspace_restriction",
        ],
        "Login is restricted to workspace id org-required.",
        ("Login is restricted to workspace id org-required",),
    ),
    Scenario(
        "save_failure",
        _unsavable,
        f"code=abc&state={STATE}",
        [
            CALLBACK_OK,
            *EXCHANGE_START,
            response_line("200 OK", "application/json"),
            " INFO codex_login::server: oauth token exchange succeeded status=200 OK",
            " INFO codex_login::server: api key exchange succeeded",
            "ERROR codex_login::server: credentials could not be saved store=file error_class=StorageError",
            " WARN codex_cli::login: login finished outcome=error flow=browser duration_ms=N failure=persist_failed",
        ],
        "Sign-in completed but credentials could not be saved locally.",
        ("persist_failed",),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_failure_scenarios_leave_exact_lines(
    scenario: Scenario, issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    previous = b'{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-old"}'
    (codex_home / "auth.json").write_bytes(previous)
    overrides = scenario.prepare(issuer, codex_home)
    url = str(overrides.pop("issuer", issuer.url))
    cleanup = overrides.pop("cleanup", None)
    home = overrides.pop("codex_home", codex_home)
    assert isinstance(home, Path)
    server = start(home, url, **overrides)
    response = callback(server, scenario.query)
    result = outcome(server)
    assert isinstance(result, LoginError), result
    assert scenario.expect_error is not None
    assert scenario.expect_error in str(result)
    assert result.attempt_id == server.attempt_id
    assert response.status_code == 200  # terminal pages are 200 with Connection: close (reference §5)
    assert response.headers["connection"] == "close"
    assert server.attempt_id in response.text
    for text in scenario.page_contains:
        assert text in response.text
    assert (codex_home / "auth.json").read_bytes() == previous  # nothing lost
    if isinstance(cleanup, ScriptedIssuer):
        cleanup.__exit__(None, None, None)
    scheme = url.split(":", 1)[0]
    start_lines = [ATTEMPT_START[0].replace("issuer=http://", f"issuer={scheme}://"), *ATTEMPT_START[1:]]
    assert norm(login_log.normalized()) == [*start_lines, *scenario.expect_lines]


def test_success_saves_credentials_and_logs_the_timeline(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    server = start(codex_home, issuer.url, forced_chatgpt_workspace_id=("acct_123",))
    assert "allowed_workspace_id=acct_123" in server.auth_url
    response = callback(server, f"code=abc&state={STATE}")
    assert response.status_code == 200
    assert "Signed in to Codex" in response.text
    assert [str(r.url).split("?")[0] for r in response.history] == [
        f"http://127.0.0.1:{server.actual_port}/auth/callback"
    ]
    assert response.history[0].headers["location"] == f"http://localhost:{server.actual_port}/success"
    result = server.block_until_done(10)
    assert isinstance(result, LoginSuccess)
    assert result.store == "file"
    saved = json.loads((codex_home / "auth.json").read_text())
    assert list(saved) == ["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"]
    assert saved["OPENAI_API_KEY"] == "sk-exchanged-api-key"
    assert saved["tokens"]["access_token"] == "access-123"
    assert saved["tokens"]["refresh_token"] == "refresh-123"
    assert saved["tokens"]["account_id"] == "acct_123"
    assert (codex_home / "auth.json").stat().st_mode & 0o777 == 0o600
    # Only the two token requests: the worker's rehearsal (issue 9) talks to a loopback issuer of its own.
    assert [r.path for r in issuer.requests] == ["/oauth/token", "/oauth/token"]
    token_request = issuer.token_requests()[0]
    assert token_request.form["grant_type"] == "authorization_code"
    assert token_request.form["code"] == "abc"
    assert token_request.form["redirect_uri"] == f"http://localhost:{server.actual_port}/auth/callback"
    assert len(token_request.form["code_verifier"]) == 86
    assert norm(login_log.normalized()) == [
        *ATTEMPT_START,
        CALLBACK_OK,
        *EXCHANGE_START,
        response_line("200 OK", "application/json"),
        " INFO codex_login::server: oauth token exchange succeeded status=200 OK",
        " INFO codex_login::server: api key exchange succeeded",
        " INFO codex_login::server: credentials saved store=file",
        " INFO codex_login::server: success page served",
        " INFO codex_cli::login: login finished outcome=success flow=browser duration_ms=N",
    ]
    for line in login_log.lines():
        assert f"login{{attempt={server.attempt_id}}}: " in line


def test_success_redirect_is_written_before_the_directory_sync(
    issuer: ScriptedIssuer, codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9: the worker writes the redirect itself and syncs CODEX_HOME after it; the attempt still
    ends with auth.json saved and its directory synced once."""
    from codex_login import storage

    events: list[str] = []
    real = storage._fsync_directory

    def recording(directory: str) -> None:
        events.append(f"sync {directory}")
        real(directory)

    monkeypatch.setattr(storage, "_fsync_directory", recording)
    server = start(codex_home, issuer.url)
    redirect = callback(server, f"code=abc&state={STATE}", follow=False)
    events.append(f"redirect {redirect.status_code}")
    assert redirect.headers["location"] == f"http://localhost:{server.actual_port}/success"
    assert redirect.headers["connection"] == "close"
    page = httpx.get(f"http://127.0.0.1:{server.actual_port}/success", timeout=15)
    assert page.status_code == 200
    assert isinstance(server.block_until_done(10), LoginSuccess)
    assert json.loads((codex_home / "auth.json").read_text())["tokens"]["access_token"] == "access-123"
    assert sorted(events) == ["redirect 302", f"sync {codex_home}"]


def test_ephemeral_sign_in_takes_no_on_disk_lock(issuer: ScriptedIssuer, tmp_path: Path) -> None:
    """Ephemeral credentials stay in process memory: the save must not take $CODEX_HOME/.auth.lock, which
    would create CODEX_HOME (and fail on a read-only one). The device-code and API-key sign-ins already skip it."""
    from codex_login.storage import load_auth

    home = tmp_path / "never-created"
    server = start(home, issuer.url, store_mode="ephemeral")
    assert callback(server, f"code=abc&state={STATE}").status_code == 200
    result = server.block_until_done(10)
    assert isinstance(result, LoginSuccess) and result.store == "ephemeral"
    assert not home.exists()
    saved = load_auth(home, "ephemeral")
    assert saved is not None and saved.tokens is not None and saved.tokens.access_token == "access-123"


def test_an_attempt_ended_at_once_is_done_only_after_its_tls_setup(issuer: ScriptedIssuer, codex_home: Path) -> None:
    """A /cancel right after the start ends the attempt while the worker may still load the TLS trust store;
    block_until_done returns once that step is over, so a process exiting then does not run OpenSSL's exit-time
    cleanup under a thread still using it (the fuzzer's exit crashed on exactly that)."""
    for _ in range(5):
        server = start(codex_home, issuer.url)
        response = httpx.get(f"http://127.0.0.1:{server.actual_port}/cancel", timeout=15)
        assert response.status_code == 200
        assert isinstance(outcome(server), LoginError)
        assert server.wait_prepared(0)


def test_no_http_client_at_all_fails_the_callback_instead_of_hanging(
    issuer: ScriptedIssuer, codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx is imported by the worker (issue 9): if no HTTP client can be built there at all (httpx missing
    from a broken install), the callback is still answered and the attempt ends with an internal error."""
    from codex_login import server as server_module

    def no_client(_settings: object = None) -> object:
        raise ImportError("No module named 'httpx'")

    monkeypatch.setattr(server_module, "HttpClient", no_client)
    server = start(codex_home, issuer.url)
    answer = callback(server, f"code=abc&state={STATE}", follow=False)
    assert answer.status_code == 500
    failure = outcome(server)
    assert isinstance(failure, LoginError) and failure.failure_class == "internal_error"
    assert "ImportError" in str(failure)
    assert issuer.token_requests() == []
    assert not (codex_home / "auth.json").exists()


def test_wait_prepared_waits_for_the_workers_tls_setup(issuer: ScriptedIssuer, codex_home: Path) -> None:
    """What a program that exits right after starting a server (the fuzz harness) waits on."""
    server = start(codex_home, issuer.url)
    assert server.wait_prepared(10)
    assert server._worker is not None and server._worker.prepared.is_set()
    server.cancel()
    assert isinstance(outcome(server), LoginError)


PREPARE_FAILS = """
import sys, threading
from pathlib import Path
from codex_login.http import HttpSettings
from codex_login.server import ServerOptions, run_login_server

def watchdogs():
    return [t for t in threading.enumerate() if t.name == "codex-login-http-deadline"]

servers = []
for _ in range(3):
    options = ServerOptions(
        codex_home=Path(sys.argv[1]), issuer=sys.argv[2], port=0, open_browser=False, http=HttpSettings(env={})
    )
    server = run_login_server(options)
    assert server.wait_prepared(30)
    servers.append(server)
for thread in watchdogs():
    thread.join(10)  # a closed watchdog ends at once; a leaked one never does
print(len(watchdogs()), flush=True)
for server in servers:
    server.cancel()
"""


def test_a_failed_prepare_closes_its_http_client(issuer: ScriptedIssuer, codex_home: Path, tmp_path: Path) -> None:
    """The worker's prepare step builds an HTTP client (whose deadline watchdog thread it starts), then reads the
    page templates: in an install missing one, that raises and the worker falls back to a client of its own.
    The first client was never closed, so every sign-in left a watchdog thread behind (three here)."""
    import shutil
    import subprocess
    import sys

    import codex_login

    broken = tmp_path / "broken-install"
    shutil.copytree(Path(codex_login.__file__).parent, broken / "codex_login")
    (broken / "codex_login" / "assets" / "error.html").unlink()
    proc = subprocess.run(
        [sys.executable, "-c", PREPARE_FAILS, str(codex_home), issuer.url],
        env={**os.environ, "PYTHONPATH": str(broken)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0"]


def test_state_mismatch_keeps_waiting_then_succeeds(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    server = start(codex_home, issuer.url)
    bad = callback(server, "code=abc&state=WRONG")
    assert bad.status_code == 400 and bad.text == "State mismatch"
    assert not server.done
    assert issuer.token_requests() == []
    good = callback(server, f"code=abc&state={STATE}")
    assert good.status_code == 200
    assert isinstance(server.block_until_done(10), LoginSuccess)
    lines = norm(login_log.normalized())
    assert lines[3:5] == [
        " INFO codex_login::server: received login callback path=/auth/callback has_code=true has_state=true "
        "has_error=false state_valid=false",
        " WARN codex_login::server: login callback state mismatch path=/auth/callback has_code=true "
        "has_state=true has_error=false",
    ]


def test_cancel_request_and_timeout_end_the_attempt(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    server = start(codex_home, issuer.url)
    cross_site = httpx.get(
        f"http://127.0.0.1:{server.actual_port}/cancel", headers={"Origin": "https://evil"}
    )
    assert cross_site.status_code == 403
    assert not server.done
    response = httpx.get(f"http://127.0.0.1:{server.actual_port}/cancel")
    assert response.status_code == 200 and response.text == "Login cancelled"
    err = outcome(server)
    assert isinstance(err, LoginError) and err.kind is ErrorKind.INTERRUPTED
    assert str(err) == "Login cancelled"
    cancel_lines = norm(login_log.normalized())[3:]
    assert cancel_lines == [
        " WARN codex_login::server: login server rejected request reason=cross_site path=/cancel http_status=403",
        " WARN codex_login::server: login cancelled reason=cancel_request",
        " WARN codex_cli::login: login finished outcome=cancelled flow=browser duration_ms=N failure=cancelled",
    ]
    timed = start(codex_home, issuer.url, timeout=0.3)
    err2 = outcome(timed)
    assert isinstance(err2, LoginError) and err2.kind is ErrorKind.TIMED_OUT
    assert "Login timed out after 0.3 seconds" in str(err2)
    assert norm(login_log.normalized())[-2:] == [
        " WARN codex_login::server: login timed out after_seconds=0.3",
        " WARN codex_cli::login: login finished outcome=timeout flow=browser duration_ms=N failure=timeout",
    ]
    library_cancel = start(codex_home, issuer.url)
    library_cancel.cancel()
    err3 = outcome(library_cancel)
    assert isinstance(err3, LoginError) and str(err3) == "Login was not completed"


def test_no_two_failure_scenarios_leave_the_same_lines() -> None:
    seen: dict[tuple[str, ...], str] = {}
    for scenario in SCENARIOS:
        key = tuple(scenario.expect_lines)
        assert key not in seen, f"{scenario.name} is indistinguishable from {seen[key]}"
        seen[key] = scenario.name


def test_routes_host_check_and_success_before_callback(issuer: ScriptedIssuer, codex_home: Path) -> None:
    server = start(codex_home, issuer.url)
    base = f"http://127.0.0.1:{server.actual_port}"
    assert httpx.get(f"{base}/favicon.ico").status_code == 404
    early = httpx.get(f"{base}/success")
    assert early.status_code == 404 and not server.done  # D-3: /success before saving changes nothing
    foreign = httpx.get(f"{base}/auth/callback?code=a&state={STATE}", headers={"Host": "evil.example"})
    assert foreign.status_code == 400
    assert httpx.post(f"{base}/auth/callback").status_code == 405
    head = httpx.head(f"{base}/nothing")
    assert head.status_code == 404 and head.content == b""
    for header in ("content-security-policy", "referrer-policy", "cache-control", "x-content-type-options"):
        assert header in early.headers
    assert issuer.token_requests() == []
    assert callback(server, f"code=abc&state={STATE}").status_code == 200
    assert isinstance(server.block_until_done(10), LoginSuccess)
    again = callback(server, f"code=abc&state={STATE}") if not server.done else None
    assert again is None or again.status_code == 400
    assert len(issuer.token_requests()) == 1


def test_library_cancel_keeps_the_attempt_span(issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog) -> None:
    server = start(codex_home, issuer.url)
    server.cancel()  # from this thread, outside any attempt span
    assert isinstance(outcome(server), LoginError)
    for line in login_log.lines():
        assert f"login{{attempt={server.attempt_id}}}: " in line, line


@pytest.mark.parametrize("ending", ["cancel", "timeout"])
def test_an_attempt_ended_while_the_save_waits_for_the_lock_writes_nothing(
    issuer: ScriptedIssuer, codex_home: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """INV-1: auth.json changes only when the outcome is success. Another process holds the auth lock; the
    worker, done with both exchanges, waits for it to save; a /cancel (or the timeout) ends the attempt
    meanwhile. Once the lock is free the worker must not write: the attempt already failed."""
    import fcntl
    import threading

    from codex_login import storage

    before = '{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-old-key-0000000000"\n}'
    (codex_home / "auth.json").write_text(before)
    waiting, acquired = threading.Event(), threading.Event()
    real_acquire = storage._acquire_file_lock

    def observed(path: str, deadline: float, timeout: float, read_only_ok: bool = False) -> int:
        waiting.set()
        try:
            return real_acquire(path, deadline, timeout, read_only_ok)
        finally:
            acquired.set()

    monkeypatch.setattr(storage, "_acquire_file_lock", observed)
    other = os.open(codex_home / ".auth.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # another codex-login saving or refreshing right now
        server = start(codex_home, issuer.url, timeout=2 if ending == "timeout" else 30)
        answers: list[int | str] = []

        def browse() -> None:
            try:
                answers.append(callback(server, f"code=abc&state={STATE}", follow=False).status_code)
            except httpx.HTTPError as err:
                answers.append(type(err).__name__)

        browser = threading.Thread(target=browse)
        browser.start()
        assert waiting.wait(10), "the worker never tried to take the auth lock"
        if ending == "cancel":
            httpx.get(f"http://127.0.0.1:{server.actual_port}/cancel", timeout=15)
        failure = outcome(server)
        assert isinstance(failure, LoginError)
        assert failure.failure_class == {"cancel": "cancelled", "timeout": "timeout"}[ending]
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    assert acquired.wait(10)
    with storage.auth_lock(codex_home):  # the worker's save, if any, is over once the lock is free again
        assert (codex_home / "auth.json").read_text() == before
    browser.join(15)
    assert answers == ["RemoteProtocolError"]  # the attempt was over: no redirect to /success, no page
    assert [r.path for r in issuer.requests] == ["/oauth/token", "/oauth/token"]  # both exchanges were done


def wait_for_line(login_log: LoginLog, text: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not any(text in line for line in login_log.lines()):
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.02)


def test_a_browser_opened_after_the_cancel_is_neither_reported_nor_logged(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    """An opener that returns after the attempt ended (a cancel while it ran) logs nothing after the attempt's
    final event (D-11); one that has not started yet opens nothing (the app server's client cancels at once)."""
    import threading

    release = threading.Event()
    opened: list[str] = []

    def slow_opener(url: str) -> tuple[bool, str, str | None]:
        opened.append(url)
        release.wait(10)
        return True, "editor", None

    server = start(codex_home, issuer.url, open_browser=True, browser_opener=slow_opener)
    deadline = time.monotonic() + 10
    while not opened and time.monotonic() < deadline:
        time.sleep(0.01)
    server.cancel()
    assert isinstance(outcome(server), LoginError)
    release.set()
    time.sleep(0.3)  # the opener's thread goes on: give it the time to (wrongly) log
    text = "\n".join(login_log.lines())
    assert "login finished outcome=cancelled" in text
    assert "browser opened" not in text


def test_a_browser_command_still_running_when_the_attempt_ends_is_logged_as_opened_before_the_end(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``BROWSER`` command runs until its browser exits, and open_browser waits up to 2 s for it to fail; an
    attempt that ends within that wait (a quick sign-in, a cancel) still says which opener ran: ``browser opened``
    is logged by the attempt's end, before its final event, and never after it (D-11)."""
    started = tmp_path / "started"
    script = f"import pathlib, sys, time; pathlib.Path({str(started)!r}).touch(); time.sleep(3)"
    monkeypatch.setenv("BROWSER", f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} %s")
    server = start(codex_home, issuer.url, open_browser=True)
    deadline = time.monotonic() + 10
    while not started.exists():
        assert time.monotonic() < deadline, "the BROWSER command never ran"
        time.sleep(0.01)
    server.cancel()
    assert isinstance(outcome(server), LoginError)
    lines = login_log.lines()
    opened = [i for i, line in enumerate(lines) if "codex_login::server: browser opened opener=BROWSER" in line]
    finished = [i for i, line in enumerate(lines) if "login finished outcome=cancelled" in line]
    assert len(opened) == 1 and len(finished) == 1
    assert opened[0] < finished[0]


def test_the_authorize_url_is_kept_out_of_a_browser_openers_logged_error(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    """DECISIONS §4: free text that carries the authorize URL (a library opener's error message) reaches the
    log without it: the URL is replaced, and state and code_challenge would be scrubbed anyway (R-3)."""
    server = start(
        codex_home,
        issuer.url,
        open_browser=True,
        browser_opener=lambda url: (False, "editor", f"could not open {url}"),
    )
    wait_for_line(login_log, "browser could not be opened")  # a cancel first would open (and log) nothing
    server.cancel()
    assert isinstance(outcome(server), LoginError)
    text = "\n".join(login_log.lines())
    assert "reason=could not open <authorize URL>" in text
    assert STATE not in text
    assert server._pkce.code_challenge not in text
    assert server._pkce.code_verifier not in text


def test_the_pkce_challenge_is_a_registered_secret(
    issuer: ScriptedIssuer, codex_home: Path, login_log: LoginLog
) -> None:
    """An opener's text that holds the URL in another form (HTML-escaped here) is not caught by replacing the
    URL nor by the URL redaction; the registry must know the challenge as it knows the state."""
    server = start(
        codex_home,
        issuer.url,
        open_browser=True,
        browser_opener=lambda url: (False, "editor", "could not open " + url.replace("&", "&amp;")),
    )
    wait_for_line(login_log, "browser could not be opened")
    server.cancel()
    assert isinstance(outcome(server), LoginError)
    text = "\n".join(login_log.lines())
    assert "browser could not be opened" in text
    assert server._pkce.code_challenge not in text
    assert "<redacted:code_challenge>" in text
    assert STATE not in text


@pytest.mark.parametrize(("owner", "onboarded", "shown"), [(True, False, True), (True, True, False), (False, False, False)])
def test_the_success_page_asks_an_org_owner_to_finish_setting_up(
    issuer: ScriptedIssuer, codex_home: Path, owner: bool, onboarded: bool, shown: bool
) -> None:
    # reference §12.4: needs_setup = !completed_platform_onboarding && is_org_owner (it was always false).
    auth = {"chatgpt_plan_type": "pro", "chatgpt_account_id": "acct_1", "is_org_owner": owner,
            "completed_platform_onboarding": onboarded}
    payload = {"email": "owner@example.com", "exp": int(time.time()) + 3600, "https://api.openai.com/auth": auth}
    issuer.token = tokens_answer(id_token=make_jwt(payload))
    server = start(codex_home, issuer.url)
    page = callback(server, f"code=abc&state={STATE}")
    assert page.status_code == 200 and "Signed in to Codex" in page.text
    assert ("Finish setting up your API organization" in page.text) is shown
    assert ('/org-setup" rel="noreferrer noopener"' in page.text) is shown  # a plain link: no token, no query
    success = server.block_until_done(10)
    assert isinstance(success, LoginSuccess) and success.needs_setup is shown
