"""Security matrix §4, group I (device code, the Codex dialect), through the real console script.

tests/test_device_code.py covers the flow in process with a fake clock (I2 interval clamping, I3 the 15-minute
cap, the RFC 8628 dialect) and the prompt's sanitising (I6). What is tested here is what a user of
``codex-login --device-auth`` meets when the poll answer is unusable (I4, I5): the attempt stops at the first
such answer with a one-line error naming what was wrong (never the body), exit 1, no token request, the previous
``auth.json`` unchanged, and the seven invariants of :meth:`Harness.finish` (the device auth id, the user code
and the body are canaries: the body may reach no sink, the user code only the terminal).
"""

from __future__ import annotations

import json

import pytest

from tests.hardening.conftest import TERMINAL, Expect, Harness, read_log
from tests.support.scripted_issuer import Answer

USERCODE = "/api/accounts/deviceauth/usercode"
POLL = "/api/accounts/deviceauth/token"


def log_text(harness: Harness) -> str:
    return "".join(read_log(harness.codex_home / "log").values())


def device_row(harness: Harness, poll: Answer) -> str:
    """A device sign-in whose first poll gets ``poll``; returns stderr once the invariants held."""
    user_code = harness.canaries.add("user_code", "CNRYuc", allowed=(TERMINAL,))
    device_auth_id = harness.canaries.add("device_auth_id", "CNRYdai")
    harness.issuer.routes[USERCODE] = Answer.json(
        200, {"device_auth_id": device_auth_id, "user_code": user_code, "interval": "5"}
    )
    harness.issuer.routes[POLL] = poll
    run = harness.cli("--device-auth", "--port", "0", "--issuer", harness.issuer.url)
    harness.finish(run, Expect(rc=1, budget=15))
    assert user_code in run.stdout  # positive control: the prompt was shown before the poll failed
    polls = [r for r in harness.issuer.requests if r.path == POLL]
    assert len(polls) == 1  # stopped at the first unusable answer: no retry, no sleep through an interval
    assert json.loads(polls[0].body) == {"device_auth_id": device_auth_id, "user_code": user_code}
    assert harness.issuer.token_requests() == []  # I5: nothing was exchanged
    lines = run.stderr.splitlines()
    assert lines[0].startswith("Error logging in with device code: "), run.stderr
    assert "failure=device_code" in log_text(harness) and "outcome=error" in log_text(harness)
    return lines[0]


@pytest.mark.parametrize(
    ("status", "content_type", "shown"),
    [
        (500, "text/html", "device auth failed with status 500 Internal Server Error"),
        (502, "text/html", "device auth failed with status 502 Bad Gateway"),
        (200, "text/html", "device auth response is invalid: the body is not a JSON object"),
        (200, "application/json", "device auth response is invalid: the body is not a JSON object"),
    ],
    ids=["500-html", "502-html", "200-html", "200-bad-json"],
)
def test_i4_an_unusable_poll_answer_stops_with_an_error_and_the_body_goes_nowhere(
    harness: Harness, status: int, content_type: str, shown: str
) -> None:
    body = harness.canaries.add("poll_body", "CNRYpoll")  # allowed in no sink: not the log, not even stderr
    text = f"<html><script>alert(1)</script>portal {body}</html>"
    if content_type == "application/json":
        text = '{"authorization_code": "' + body  # truncated JSON
    line = device_row(harness, Answer.text(status, text, content_type))
    assert line == f"Error logging in with device code: {shown}"
    assert f"device code poll failed status={status} " in log_text(harness)


@pytest.mark.parametrize(
    ("payload", "missing"),
    [
        ({"code_verifier": "CNRYver-unused", "code_challenge": "x"}, "authorization_code"),
        ({"authorization_code": "CNRYcode-unused", "code_challenge": "x"}, "code_verifier"),
        ({"authorization_code": "", "code_verifier": "CNRYver-unused"}, "authorization_code"),
        ({"authorization_code": 12345, "code_verifier": "CNRYver-unused"}, "authorization_code"),
        ({"authorization_code": "CNRYcode-unused", "code_verifier": None}, "code_verifier"),
    ],
    ids=["no-code", "no-verifier", "empty-code", "numeric-code", "null-verifier"],
)
def test_i5_a_poll_success_without_code_or_verifier_is_an_error_without_exchange(
    harness: Harness, payload: dict[str, object], missing: str
) -> None:
    line = device_row(harness, Answer.json(200, payload))
    assert line == f"Error logging in with device code: device auth response is invalid: the field {missing!r} is missing"
    log = log_text(harness)
    assert "device code poll failed status=200 OK" in log and "CNRY" not in log


def test_i6_a_hostile_user_code_is_shown_sanitized_and_cut_and_logged_nowhere(harness: Harness) -> None:
    core = harness.canaries.add("user_code", "CNRYuc", allowed=(TERMINAL,))
    hostile = f"AB\x1b[2J\x1b]8;;http://evil.example\x07{core}\r\nFORGED LINE\u202e\x9b31m" + "Q" * 10_000
    device_auth_id = harness.canaries.add("device_auth_id", "CNRYdai")
    harness.issuer.routes[USERCODE] = Answer.json(
        200, {"device_auth_id": device_auth_id, "user_code": hostile, "interval": "5"}
    )
    harness.issuer.routes[POLL] = Answer.json(
        200, {"authorization_code": harness.canaries["code"], "code_verifier": "CNRYverifier0123456789abcdef"}
    )
    harness.canaries.add_value("device_verifier", "CNRYverifier0123456789abcdef")
    run = harness.cli("--device-auth", "--port", "0", "--issuer", harness.issuer.url)
    harness.finish(run, Expect(rc=0, success=True, budget=15))
    for stream in (run.stdout_bytes(), run.stderr_bytes()):
        for raw in (b"\x1b", b"\x07", b"\r", "\u202e".encode(), "\x9b".encode()):
            assert raw not in stream, (raw, stream[:300])
    assert core in run.stdout  # positive control: the code is shown, so the user can type it
    assert len(run.stdout) < 1000 and "QQQQ" * 20 not in run.stdout  # cut, not 10 KB on the terminal
    assert not any(line.startswith("FORGED LINE") for line in run.stdout.splitlines())
    # The raw code goes back to the issuer as it came.
    polls = [r for r in harness.issuer.requests if r.path == POLL]
    assert json.loads(polls[0].body)["user_code"] == hostile
