"""Security matrix §4, groups F and H together: every way of signing in stopped at every stage by a signal
(SIGINT, SIGTERM, SIGKILL) or by a crash inside the save, and what the next run finds.

test_process_faults.py (H4) stops the browser sign-in with SIGINT and SIGTERM while it listens, waits and
exchanges the code, and test_tokens_storage_matrix.py (F6) crashes a browser sign-in between the write and the
rename of auth.json. What is added here:

* SIGKILL of the browser sign-in (no handler runs: the kernel closes the port and releases the locks);
* the device sign-in stopped by each signal while it polls and during a token exchange the issuer never
  answers, and crashed inside its save;
* the API-key sign-in stopped by each signal while it reads the key, and crashed inside its save;
* after every row, the next run: ``status`` reads the previous sign-in (byte-identical, 0600: INV-1),
  and a new sign-in takes the auth lock, saves, and removes any temporary file a crash left.

Every row ends with :meth:`Harness.finish` (the seven invariants).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.hardening.conftest import (
    TERMINAL,
    CliRun,
    Expect,
    Harness,
    parse_log_lines,
    read_log,
    send_callback_quietly,
)
from tests.support.scripted_issuer import Answer, Recorded

USERCODE = "/api/accounts/deviceauth/usercode"
POLL = "/api/accounts/deviceauth/token"
CRASH_HOOK = {"CODEX_LOGIN_TEST_CRASH_AFTER_TEMP_WRITE": "1"}
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


def signal_id(signum: int) -> str:
    return signal.Signals(signum).name


class HungToken:
    """A token endpoint that never answers while the row runs (released at the end so the issuer can stop)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, _request: Recorded) -> Answer:
        self.arrived.set()
        self.release.wait(60)
        return Answer(close=True)


@pytest.fixture
def hung_token(harness: Harness) -> Iterator[HungToken]:
    hung = HungToken()
    try:
        yield hung
    finally:
        hung.release.set()


def temp_files(harness: Harness) -> list[str]:
    return sorted(p.name for p in harness.codex_home.iterdir() if p.name.startswith(".auth.json.tmp-"))


def wait_for_request(harness: Harness, path: str) -> None:
    deadline = time.monotonic() + 20
    while not any(r.path == path for r in harness.issuer.requests):
        assert time.monotonic() < deadline, f"no request for {path} arrived"
        time.sleep(0.02)


def assert_next_run_works(harness: Harness, left_by_crash: tuple[str, ...] = ()) -> None:
    """``status`` sees the previous sign-in untouched; a new API-key sign-in gets the lock at once, saves a
    0600 auth.json and removes the temporary file a crashed save left."""
    ended = sum(
        event.message == "login finished"
        for text in read_log(harness.codex_home / "log").values()
        for event in parse_log_lines(text, "text")
    )
    status = harness.cli("status")
    harness.finish(status, Expect(rc=0, attempts=ended, log=False, budget=15, extra_files=left_by_crash))
    assert "Logged in using an API key" in status.stderr, status.stderr
    key = harness.canaries.add("next_api_key", "sk-proj-CNRYnext")
    signed_in = harness.cli("--with-api-key", stdin=f"{key}\n".encode())
    harness.finish(signed_in, Expect(rc=0, success=True, own_tokens=False, attempts=ended + 1, budget=15))
    assert signed_in.stderr.splitlines()[-1] == "Successfully logged in"
    assert f'"OPENAI_API_KEY": "{key}"' in harness.auth_path.read_text()
    assert temp_files(harness) == []


def expected_exit(signum: int) -> int:
    """The CLI's own exit code for the signals it handles; SIGKILL ends it as the kernel does."""
    handled: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
    return handled.get(signum, -signum)


# --------------------------------------------------------------------------------------------- browser


@pytest.mark.parametrize("stage", ["listening", "token-exchange"])
def test_a_killed_browser_sign_in_keeps_the_old_file_and_the_next_run_works(
    harness: Harness, hung_token: HungToken, stage: str
) -> None:
    harness.issuer.token = hung_token
    run = harness.login()
    if stage == "token-exchange":
        threading.Thread(target=send_callback_quietly, args=(run, harness.good_query(run)), daemon=True).start()
        assert hung_token.arrived.wait(20), "the token request never arrived"
    run.signal(signal.SIGKILL)
    harness.finish(run, Expect(rc=-signal.SIGKILL, attempts=0, budget=(time.monotonic() - run.started) + 5))
    assert_next_run_works(harness)


# --------------------------------------------------------------------------------------------- device


def start_device(harness: Harness, poll: Answer | None = None, env: dict[str, str] | None = None) -> CliRun:
    user_code = harness.canaries.add("user_code", "CNRYuc", allowed=(TERMINAL,))
    device_auth_id = harness.canaries.add("device_auth_id", "CNRYdai")
    harness.issuer.routes[USERCODE] = Answer.json(
        200, {"device_auth_id": device_auth_id, "user_code": user_code, "interval": "5"}
    )
    verifier = harness.canaries.add("device_verifier", "CNRYverifier")
    harness.issuer.routes[POLL] = poll or Answer.json(
        200, {"authorization_code": harness.canaries["code"], "code_verifier": verifier}
    )
    return harness.cli("--device-auth", "--port", "0", "--issuer", harness.issuer.url, env=env)


@pytest.mark.parametrize("signum", SIGNALS, ids=signal_id)
@pytest.mark.parametrize("stage", ["polling", "token-exchange"])
def test_a_stopped_device_sign_in_keeps_the_old_file_and_the_next_run_works(
    harness: Harness, hung_token: HungToken, stage: str, signum: int
) -> None:
    harness.issuer.token = hung_token
    if stage == "polling":
        run = start_device(harness, Answer.json(403, {"error": "authorization_pending"}))
        wait_for_request(harness, POLL)
    else:
        run = start_device(harness)
        assert hung_token.arrived.wait(20), "the token request never arrived"
    run.signal(signum)
    handled = signum != signal.SIGKILL
    harness.finish(run, Expect(rc=expected_exit(signum), attempts=1 if handled else 0, budget=20))
    if handled:
        reason = "interrupted" if signum == signal.SIGINT else "terminated"
        assert f"Error logging in with device code: Login was not completed ({reason})" in run.stderr
    assert_next_run_works(harness)


def test_a_device_sign_in_crashing_inside_its_save_keeps_the_old_file_and_the_next_run_cleans_up(
    harness: Harness,
) -> None:
    run = start_device(harness, env=CRASH_HOOK)
    run.proc.wait(20)
    harness.finish(run, Expect(rc=137, attempts=0, budget=20, extra_files=tuple(_one_temp_file(harness))))
    assert_next_run_works(harness, left_by_crash=tuple(temp_files(harness)))


def _one_temp_file(harness: Harness) -> list[str]:
    """The crashed save's complete temporary file: there is exactly one (a credential copy, 0600)."""
    left = temp_files(harness)
    assert len(left) == 1, left
    assert (harness.codex_home / left[0]).stat().st_mode & 0o777 == 0o600
    return left


# --------------------------------------------------------------------------------------------- API key


@pytest.mark.parametrize("signum", SIGNALS, ids=signal_id)
def test_an_api_key_sign_in_stopped_while_reading_the_key_keeps_the_old_file(harness: Harness, signum: int) -> None:
    partial = harness.canaries.add("partial_key", "sk-proj-CNRYpart")
    run = harness.cli("--with-api-key", stdin=partial.encode(), close_stdin=False)  # no newline, no EOF yet
    run.wait_for("Reading API key from stdin")
    run.signal(signum)
    # SIGTERM is not handled here (nothing to clean up yet): the process ends as the signal says.
    rc = 130 if signum == signal.SIGINT else -signum
    harness.finish(run, Expect(rc=rc, attempts=0, log=False, budget=15))
    assert_next_run_works(harness)


def test_an_api_key_sign_in_crashing_inside_its_save_keeps_the_old_file_and_the_next_run_cleans_up(
    harness: Harness,
) -> None:
    key = harness.canaries.add("crashed_key", "sk-proj-CNRYcrash")
    run = harness.cli("--with-api-key", stdin=f"{key}\n".encode(), env=CRASH_HOOK)
    run.proc.wait(15)
    harness.finish(run, Expect(rc=137, attempts=0, budget=15, extra_files=tuple(_one_temp_file(harness))))
    assert_next_run_works(harness, left_by_crash=tuple(temp_files(harness)))
