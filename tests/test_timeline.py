"""The attempt timeline: reading the log (both formats, rotated files, hostile files), grouping by attempt,
marking steps, and ``codex-login log`` against the logs of real failing sign-ins."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from codex_login.diagnostics import events as ev
from codex_login.diagnostics.advice import ADVICE, UNFINISHED, advice_for
from codex_login.diagnostics.format import render_json_line, render_text_line
from codex_login.diagnostics.logfile import LOG_FILE_NAME, init_login_file_logging
from codex_login.diagnostics.record import Display, FieldValue
from codex_login.diagnostics.timeline import (
    Attempt,
    group_attempts,
    load_attempts,
    log_files,
    read_entries,
    render_attempt,
)
from codex_login.errors import LoginError
from codex_login.http import HttpSettings
from codex_login.server import LoginServer, ServerOptions, run_login_server
from tests.support.loopback import LoopbackServer
from tests.support.scripted_issuer import Answer, ScriptedIssuer, id_token_for, tokens_answer

CLI = Path(sys.executable).parent / "codex-login"
T0 = datetime(2026, 3, 6, 22, 9, 3, 431699, tzinfo=UTC).timestamp()
INFO, WARN, ERROR = 20, 30, 40
STATE = "timeline_state_0123456789_abcdefghijklmnop"


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """The real console script, with this test's environment (plus ``env``)."""
    return subprocess.run(
        [str(CLI), *args],
        env={**os.environ, **(env or {})},
        input=stdin if stdin is not None else "",
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def line(
    offset: float,
    message: str,
    fields: dict[str, FieldValue] | None = None,
    *,
    attempt: str | None = "la_0000000a",
    level: int = INFO,
    target: str = "codex_login::server",
    json_format: bool = False,
) -> str:
    """A log line exactly as the formatters write it."""
    render = render_json_line if json_format else render_text_line
    return render(
        created=T0 + offset, levelno=level, target=target, message=message, fields=fields or {}, attempt=attempt
    )


def finished(offset: float, outcome: str, failure: str | None = None, **kw: object) -> str:
    fields: dict[str, FieldValue] = {"outcome": Display(outcome), "flow": Display("browser"),
                                     "duration_ms": int(offset * 1000)}
    if failure is not None:
        fields["failure"] = Display(failure)
    return line(offset, ev.MSG_FINISHED, fields, level=INFO if outcome == "success" else WARN,
                target="codex_cli::login", **kw)  # type: ignore[arg-type]


def started(offset: float, **kw: object) -> str:
    return line(offset, ev.MSG_ATTEMPT_STARTED, {"flow": Display("browser")}, target="codex_cli::login",
                **kw)  # type: ignore[arg-type]


def write_log(log_dir: Path, lines: list[str], name: str = LOG_FILE_NAME) -> None:
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(log_dir / name, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def token_403_attempt(attempt: str, base: float = 0.0) -> list[str]:
    return [
        started(base, attempt=attempt),
        line(base + 0.001, ev.MSG_SERVER_BOUND, {"port": 1455}, attempt=attempt),
        line(base + 3.0, ev.MSG_CALLBACK, {"state_valid": True, "has_code": True}, attempt=attempt),
        line(base + 3.001, ev.MSG_EXCHANGE_START, attempt=attempt),
        line(base + 3.002, ev.MSG_TOKEN_ROUTE, {"ca_source": Display("system")}, attempt=attempt),
        line(base + 3.2, ev.MSG_TOKEN_RESPONSE, {"status": Display("403 Forbidden")}, attempt=attempt),
        line(base + 3.2, ev.MSG_NON_SUCCESS, {"status": Display("403 Forbidden"), "error_code": "unknown"},
             level=WARN, attempt=attempt),
        line(base + 3.201, ev.MSG_CALLBACK_EXCHANGE_FAILED, level=ERROR, attempt=attempt),
        finished(base + 3.202, "error", "token_forbidden", attempt=attempt),
    ]


# --------------------------------------------------------------------------------------------- unit


def test_a_failed_attempt_becomes_a_timeline(tmp_path: Path) -> None:
    write_log(tmp_path, token_403_attempt("la_0000000a"))
    (attempt,) = load_attempts(tmp_path)
    assert attempt.attempt_id == "la_0000000a"
    assert attempt.flow == "browser"
    assert (attempt.outcome, attempt.failure_class, attempt.duration_ms) == ("error", "token_forbidden", 3202)
    assert [s.mark for s in attempt.steps] == ["ok", "ok", "ok", "ok", "ok", "warn", "fail", "fail", "fail"]
    assert attempt.failed_step is not None and attempt.failed_step.message == ev.MSG_NON_SUCCESS
    assert attempt.last_ok is not None and attempt.last_ok.message == ev.MSG_TOKEN_ROUTE
    assert [round(s.offset, 3) for s in attempt.steps][:3] == [0.0, 0.001, 3.0]
    assert attempt.advice is ADVICE["token_forbidden"]
    text = "\n".join(render_attempt(attempt))
    assert "Attempt la_0000000a: browser sign-in started 2026-03-06 22:09:03 UTC: error (token_forbidden)" in text
    assert "  +3.200 s  FAIL  oauth token exchange returned non-success status" in text
    assert "Last step that succeeded: +3.002 s oauth token request route ca_source=system" in text
    assert "Failed at: +3.200 s oauth token exchange returned non-success status" in text
    assert f"What went wrong (token_forbidden): {ADVICE['token_forbidden'].title}." in text
    for n, step in enumerate(ADVICE["token_forbidden"].try_next, 1):
        assert f"    {n}. {step}" in text
    doc = attempt.to_json()
    assert doc["failed_step"] == attempt.failed_step.to_json()
    assert doc["advice"] == ADVICE["token_forbidden"].to_json()
    assert json.loads(json.dumps(doc)) == doc


@pytest.mark.parametrize("json_format", [False, True], ids=["text", "json"])
def test_after_the_device_fallback_the_advice_leaves_device_auth_out(tmp_path: Path, json_format: bool) -> None:
    """The browser sign-in that ``--device-auth`` fell back to says so on its first line (the issuer has no
    device sign-in); the attempt's advice then suggests everything but ``--device-auth``."""
    fields: dict[str, FieldValue] = {"flow": Display("browser"), "fallback_from": Display("device")}
    write_log(tmp_path, [
        line(0, ev.MSG_ATTEMPT_STARTED, fields, target="codex_cli::login", json_format=json_format),
        line(0.1, ev.MSG_TIMED_OUT, {"after_seconds": 600}, level=WARN, json_format=json_format),
        finished(600.1, "timeout", "timeout", json_format=json_format),
        started(700, attempt="la_0000000b", json_format=json_format),
        line(700.1, ev.MSG_TIMED_OUT, {"after_seconds": 600}, level=WARN, attempt="la_0000000b", json_format=json_format),
        finished(1300.1, "timeout", "timeout", attempt="la_0000000b", json_format=json_format),
    ])
    fell_back, plain = load_attempts(tmp_path)
    assert (fell_back.fallback_from, plain.fallback_from) == ("device", None)
    assert fell_back.advice is not None and plain.advice is ADVICE["timeout"]
    assert fell_back.advice.try_next == advice_for("timeout", without="`codex-login --device-auth`").try_next
    text = "\n".join(render_attempt(fell_back))
    assert "device-auth" not in text
    assert "    1. Forward the port from your computer: `ssh -L 1455:localhost:1455 <host>`" in text
    assert "device-auth" not in json.dumps(fell_back.to_json()["advice"])
    assert "device-auth" in "\n".join(render_attempt(plain))


def test_a_successful_attempt_has_no_failure_and_no_advice(tmp_path: Path) -> None:
    write_log(tmp_path, [
        started(0),
        line(0.1, ev.MSG_CALLBACK, {"state_valid": True}),
        line(0.2, ev.MSG_CREDENTIALS_SAVED, {"store": Display("file")}),
        finished(0.3, "success"),
    ])
    (attempt,) = load_attempts(tmp_path)
    assert attempt.succeeded and attempt.advice is None and attempt.failed_step is None
    assert attempt.last_ok is not None and attempt.last_ok.message == ev.MSG_FINISHED
    assert "  Signed in." in render_attempt(attempt)
    assert attempt.to_json()["advice"] is None


def test_interleaved_attempts_are_grouped_and_ordered_by_start(tmp_path: Path) -> None:
    a, b = token_403_attempt("la_0000000a"), token_403_attempt("la_0000000b", base=0.5)
    write_log(tmp_path, [x for pair in zip(a, b, strict=True) for x in pair])
    attempts = load_attempts(tmp_path)
    assert [x.attempt_id for x in attempts] == ["la_0000000a", "la_0000000b"]
    assert all(len(x.steps) == 9 for x in attempts)
    assert attempts[1].steps[0].offset == 0.0  # offsets are per attempt


def test_spanless_lines_join_the_next_attempt_within_one_second(tmp_path: Path) -> None:
    write_log(tmp_path, [
        line(-3.0, ev.MSG_DEVICE_FLOW, attempt=None, target="codex_cli::login"),  # too early: ignored
        line(-0.4, ev.MSG_BROWSER_FLOW, attempt=None, target="codex_cli::login"),  # joins la_0000000a
        *token_403_attempt("la_0000000a"),
        line(9.0, ev.MSG_API_KEY_FLOW, attempt=None, target="codex_cli::login"),  # no attempt follows: ignored
    ])
    (attempt,) = load_attempts(tmp_path)
    assert attempt.steps[0].message == ev.MSG_BROWSER_FLOW
    assert attempt.steps[0].offset == 0.0 and round(attempt.steps[1].offset, 3) == 0.4
    messages = [s.message for s in attempt.steps]
    assert ev.MSG_DEVICE_FLOW not in messages and ev.MSG_API_KEY_FLOW not in messages
    assert len(attempt.entries) == 10


def test_an_attempt_without_an_end_is_unfinished(tmp_path: Path) -> None:
    write_log(tmp_path, [started(0), line(0.1, ev.MSG_SERVER_BOUND, {"port": 1455})])
    (attempt,) = load_attempts(tmp_path)
    assert attempt.outcome == UNFINISHED and attempt.failure_class is None and attempt.duration_ms is None
    assert attempt.advice is ADVICE[UNFINISHED]
    text = "\n".join(render_attempt(attempt))
    assert ": unfinished" in text and ADVICE[UNFINISHED].title in text


def test_an_end_without_a_failure_class_uses_the_outcome(tmp_path: Path) -> None:
    write_log(tmp_path, [started(0), finished(0.5, "denied")])
    (attempt,) = load_attempts(tmp_path)
    assert attempt.failure_class == "denied" and attempt.advice is ADVICE["denied"]
    assert attempt.failed_step is not None and attempt.failed_step.message == ev.MSG_FINISHED


def test_rotated_files_are_read_oldest_first_and_formats_mix(tmp_path: Path) -> None:
    old = token_403_attempt("la_00000001", base=-100)
    split = token_403_attempt("la_00000002")
    write_log(tmp_path, old, "codex-login.log.2")
    write_log(tmp_path, split[:4], "codex-login.log.1")
    write_log(tmp_path, [
        line(3.1, ev.MSG_TOKEN_RESPONSE, {"status": Display("403 Forbidden")}, attempt="la_00000002",
             json_format=True),
        line(3.2, ev.MSG_NON_SUCCESS, {"status": Display("403 Forbidden")}, level=WARN, attempt="la_00000002",
             json_format=True),
        finished(3.3, "error", "token_forbidden", attempt="la_00000002", json_format=True),
    ])
    write_log(tmp_path, started(50, attempt="la_00000009").splitlines(), "codex-login.log.bak")  # not ours
    write_log(tmp_path, started(50, attempt="la_00000008").splitlines(), "codex-login.log.0")  # not a generation
    assert [p.name for p in log_files(tmp_path)] == ["codex-login.log.2", "codex-login.log.1", LOG_FILE_NAME]
    attempts = load_attempts(tmp_path)
    assert [a.attempt_id for a in attempts] == ["la_00000001", "la_00000002"]
    second = attempts[1]
    assert [e.source for e in second.entries] == ["codex-login.log.1"] * 4 + [LOG_FILE_NAME] * 3
    assert second.failure_class == "token_forbidden"
    assert second.failed_step is not None and second.failed_step.message == ev.MSG_NON_SUCCESS
    assert second.entries[-1].raw.startswith("{")  # the raw JSON line is kept for the bundle


def test_hostile_files_are_skipped_without_following_or_hanging(tmp_path: Path) -> None:
    victim = tmp_path / "victim.log"
    victim.write_text("\n".join(token_403_attempt("la_0000dead")) + "\n", encoding="utf-8")
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    (log_dir / LOG_FILE_NAME).symlink_to(victim)  # O_NOFOLLOW: never read through
    os.mkfifo(log_dir / "codex-login.log.1")  # O_NONBLOCK and a regular-file check: never waits
    (log_dir / "codex-login.log.2").mkdir()
    write_log(log_dir, ["garbage", "", "\x1b[31m not a log line", *token_403_attempt("la_0000000c")],
              "codex-login.log.3")
    attempts = load_attempts(log_dir)
    assert [a.attempt_id for a in attempts] == ["la_0000000c"]


def test_only_the_tail_of_a_huge_file_is_read(tmp_path: Path) -> None:
    filler = [started(float(i) * 10, attempt=f"la_{i:08x}") for i in range(200)]
    write_log(tmp_path, filler + token_403_attempt("la_0000ffff", base=5000))
    entries = read_entries(tmp_path, max_bytes_per_file=4096)
    assert entries[-1].line.attempt == "la_0000ffff"
    assert len(entries) < 40  # the head was not read
    assert all(e.raw == e.raw.strip() and e.line is not None for e in entries)  # cut at a line start


def test_rendering_escapes_what_the_file_holds(tmp_path: Path) -> None:
    hostile = "x\x1b]8;;http://evil\x07click\x1b[2J\r\nFAKE LINE\u202e"
    write_log(tmp_path, [
        started(0),
        line(0.1, ev.MSG_NON_SUCCESS, {"error_message": hostile}, level=WARN),
        line(0.2, ev.MSG_NON_SUCCESS, {"error_message": hostile}, level=WARN, json_format=True),
        finished(0.3, "error", "token_http_error"),
    ])
    (attempt,) = load_attempts(tmp_path)
    assert attempt.steps[1].fields["error_message"] == hostile  # read back exactly...
    rendered = render_attempt(attempt)
    for text in rendered:  # ...but printed inert, one line each
        assert text.isprintable(), repr(text)
    assert any("\\u{1b}]8;;http://evil\\u{7}click" in text for text in rendered)


def test_an_absurd_duration_is_treated_as_absent(tmp_path: Path) -> None:
    huge = "1" + "0" * 400  # an int, but too large for the float division behind "took ... s"
    text_end = finished(2.5, "error", "timeout").replace("duration_ms=2500", f"duration_ms={huge}")
    json_end = finished(2.5, "error", "timeout", json_format=True, attempt="la_0000000b")
    json_end = json_end.replace('"duration_ms":2500', f'"duration_ms":{huge}')
    negative_end = finished(2.5, "error", "timeout", attempt="la_0000000c").replace("=2500", "=-5")
    assert huge in text_end and huge in json_end and "duration_ms=-5" in negative_end
    write_log(tmp_path, [
        started(0), text_end,
        started(0, attempt="la_0000000b"), json_end,
        started(0, attempt="la_0000000c"), negative_end,
    ])
    attempts = load_attempts(tmp_path)
    assert len(attempts) == 3
    for attempt in attempts:
        assert attempt.duration_ms == 2500  # the span of its lines, as for a final line without one
        assert "took 2.500 s" in render_attempt(attempt)[0]


def test_grouping_is_pure_over_entries() -> None:
    assert group_attempts([]) == []


# --------------------------------------------------------------------------------------------- real sign-ins


@pytest.fixture
def home_log(codex_home: Path) -> Iterator[Path]:
    """The durable log where the CLI looks for it (CODEX_HOME/log), written by the real handler."""
    handle = init_login_file_logging(codex_home / "log", log_format="text", env={})
    try:
        yield codex_home / "log"
    finally:
        handle.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class HeldPort:
    """Something that is not a login server holding a port on both loopback families; it accepts and hangs up
    at once, so a /cancel request is answered quickly."""

    def __init__(self) -> None:
        self.listeners = [HangUp(8)]
        self.port: int = self.listeners[0].port
        self.listeners.append(HangUp(8, self.port, "::1"))

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()


class HangUp(LoopbackServer):
    def handle(self, conn: socket.socket) -> None:
        conn.close()


@dataclass
class SignIn:
    name: str
    failure: str
    failed_at: str
    last_ok: str
    run: Callable[[ScriptedIssuer, Path], None]


def _options(home: Path, issuer: str, **overrides: object) -> ServerOptions:
    options = ServerOptions(
        codex_home=home, issuer=issuer, port=0, open_browser=False, force_state=STATE,
        http=HttpSettings(env={}, total_timeout=2.0, connect_timeout=2.0), timeout=30, success_grace=1,
    )
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


def _wait(server: LoginServer) -> None:
    try:
        server.block_until_done(20)
    except LoginError:
        pass


def _callback(query: str, *, token: Answer | None = None, **overrides: object) -> Callable[[ScriptedIssuer, Path], None]:
    def run(issuer: ScriptedIssuer, home: Path) -> None:
        if token is not None:
            issuer.token = token
        # Values given as callables (a closed port, a dead proxy) are made when the sign-in runs.
        chosen = {k: (v() if callable(v) else v) for k, v in overrides.items()}
        url = str(chosen.pop("issuer", issuer.url))
        server = run_login_server(_options(home, url, **chosen))
        httpx.get(f"http://127.0.0.1:{server.actual_port}/auth/callback?{query}", timeout=20)
        _wait(server)

    return run


def _cancel(issuer: ScriptedIssuer, home: Path) -> None:
    server = run_login_server(_options(home, issuer.url))
    httpx.get(f"http://127.0.0.1:{server.actual_port}/cancel", timeout=10)
    _wait(server)


def _port_in_use(issuer: ScriptedIssuer, home: Path) -> None:
    held = HeldPort()
    try:
        with pytest.raises(LoginError):
            run_login_server(_options(home, issuer.url, port=held.port))
    finally:
        held.close()


def _unsavable(issuer: ScriptedIssuer, home: Path) -> None:
    blocker = home / "not-a-dir"
    blocker.write_text("x")
    _callback(f"code=abc&state={STATE}", codex_home=blocker / "sub")(issuer, home)


CODE = f"code=abc&state={STATE}"
SIGN_INS = [
    SignIn("access_denied", "denied", ev.MSG_OAUTH_ERROR, ev.MSG_CALLBACK,
           _callback(f"error=access_denied&error_description=nope&state={STATE}")),
    SignIn("missing_code", "missing_code", ev.MSG_CALLBACK_MISSING_CODE, ev.MSG_CALLBACK, _callback(f"state={STATE}")),
    SignIn("token_invalid_grant", "token_invalid_grant", ev.MSG_NON_SUCCESS, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, token=Answer.json(400, {"error": "invalid_grant", "error_description": "used"}))),
    SignIn("token_403", "token_forbidden", ev.MSG_NON_SUCCESS, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, token=Answer.text(403, "<html>blocked</html>", "text/html"))),
    SignIn("token_503", "token_server_error", ev.MSG_NON_SUCCESS, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, token=Answer.json(503, {"error": "temporarily_unavailable"}))),
    SignIn("token_not_json", "token_invalid_response", ev.MSG_INVALID_TOKEN_RESPONSE, ev.MSG_TOKEN_RESPONSE,
           _callback(CODE, token=Answer.text(200, "<html>captive portal</html>", "text/html"))),
    SignIn("connection_refused", "transport_connect", ev.MSG_TRANSPORT_FAILURE, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, issuer=lambda: f"http://127.0.0.1:{closed_port()}")),
    SignIn("connection_closed", "transport_closed", ev.MSG_TRANSPORT_FAILURE, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, token=Answer(close=True))),
    SignIn("read_timeout", "transport_timeout", ev.MSG_TRANSPORT_FAILURE, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, token=Answer(hang=1.5), http=HttpSettings(env={}, total_timeout=0.5))),
    SignIn("dead_proxy", "transport_proxy", ev.MSG_TRANSPORT_FAILURE, ev.MSG_TOKEN_ROUTE,
           _callback(CODE, http=lambda: HttpSettings(env={"HTTP_PROXY": f"http://127.0.0.1:{closed_port()}"},
                                                     total_timeout=2.0))),
    SignIn("workspace", "workspace_restriction", ev.MSG_WORKSPACE_DENIED, ev.MSG_EXCHANGE_OK,
           _callback(CODE, token=tokens_answer(id_token=id_token_for(account_id="acct_other")),
                     forced_chatgpt_workspace_id=("org-required",))),
    SignIn("save_failure", "persist_failed", ev.MSG_CREDENTIALS_NOT_SAVED, ev.MSG_API_KEY_EXCHANGE_OK, _unsavable),
    SignIn("cancelled", "cancelled", ev.MSG_CANCELLED, ev.MSG_SERVER_BOUND, _cancel),
    SignIn("port_in_use", "port_in_use", ev.MSG_BIND_FAILED, ev.MSG_ATTEMPT_STARTED, _port_in_use),
]


def _check_text(text: str, sign_in: SignIn, attempt_id: str) -> None:
    advice = advice_for(sign_in.failure)
    assert f"Attempt {attempt_id}: browser sign-in started " in text
    assert f"FAIL  {sign_in.failed_at}" in text
    assert f" {sign_in.failed_at}" in text.split("Failed at: +", 1)[1].splitlines()[0]
    assert f" {sign_in.last_ok}" in text.split("Last step that succeeded: +", 1)[1].splitlines()[0]
    assert f"What went wrong ({sign_in.failure}): {advice.title}." in text
    for n, step in enumerate(advice.try_next, 1):
        assert f"    {n}. {step}" in text


@pytest.mark.parametrize("sign_in", SIGN_INS, ids=[s.name for s in SIGN_INS])
def test_log_shows_the_failing_step_and_advice_of_real_sign_ins(
    sign_in: SignIn, codex_home: Path, home_log: Path
) -> None:
    with ScriptedIssuer() as issuer:
        sign_in.run(issuer, codex_home)
    attempts = load_attempts(home_log)
    assert len(attempts) == 1
    attempt: Attempt = attempts[0]
    assert attempt.failure_class == sign_in.failure

    as_json = run_cli("log", "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["files"] == [LOG_FILE_NAME]
    (shown,) = document["attempts"]
    assert shown["attempt_id"] == attempt.attempt_id
    assert shown["failure_class"] == sign_in.failure
    assert shown["failed_step"]["message"] == sign_in.failed_at
    assert shown["failed_step"]["mark"] == "fail"
    assert shown["last_ok_step"]["message"] == sign_in.last_ok
    assert shown["advice"] == advice_for(sign_in.failure).to_json()
    assert shown["steps"][-1]["message"] == ev.MSG_FINISHED

    as_text = run_cli("log", "--attempt", attempt.attempt_id)
    assert as_text.returncode == 0, as_text.stderr
    _check_text(as_text.stdout, sign_in, attempt.attempt_id)


def test_log_of_a_console_script_sign_in_that_timed_out(codex_home: Path) -> None:
    login = run_cli("--issuer", f"http://127.0.0.1:{closed_port()}", "--port", "0", "--no-browser",
                    "--timeout", "1")
    assert login.returncode == 1
    attempt_id = login.stderr.split("Attempt ID: ", 1)[1][:11]
    shown = run_cli("log")
    assert shown.returncode == 0, shown.stderr
    _check_text(shown.stdout, SignIn("cli_timeout", "timeout", ev.MSG_TIMED_OUT, ev.MSG_SERVER_BOUND, _cancel),
                attempt_id)
    assert "+0.000 s  ok    starting browser login flow" in shown.stdout


def test_last_n_attempt_id_and_empty_logs(codex_home: Path) -> None:
    empty = run_cli("log")
    assert empty.returncode == 1 and "No sign-in attempts in" in empty.stderr and empty.stdout == ""
    empty_json = run_cli("log", "--json")
    assert empty_json.returncode == 1 and json.loads(empty_json.stdout)["attempts"] == []
    write_log(codex_home / "log", [
        *token_403_attempt("la_00000001", base=0),
        *token_403_attempt("la_00000002", base=10),
        *token_403_attempt("la_00000003", base=20),
    ])
    last = run_cli("log")
    assert last.returncode == 0
    assert "Attempt la_00000003" in last.stdout and "Attempt la_00000001" not in last.stdout
    assert "the last 1 of 3 attempts" in last.stderr
    two = run_cli("log", "--last", "2", "--json")
    assert [a["attempt_id"] for a in json.loads(two.stdout)["attempts"]] == ["la_00000002", "la_00000003"]
    one = run_cli("log", "--attempt", "la_00000001")
    assert one.returncode == 0 and "Attempt la_00000001" in one.stdout and "la_00000002" not in one.stdout
    missing = run_cli("log", "--attempt", "la_\x1b[31mnope")
    assert missing.returncode == 1 and "\x1b" not in missing.stderr and "No attempt la_" in missing.stderr
    bad = run_cli("log", "--last", "0")
    assert bad.returncode == 2
    elsewhere = run_cli("log", "-c", f"log_dir={codex_home / 'nowhere'}")
    assert elsewhere.returncode == 1 and str(codex_home / "nowhere") in elsewhere.stderr
