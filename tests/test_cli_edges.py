"""The command line at its edges: arguments no sign-in can use, flags combined, and standard streams that are
closed or whose reader has gone. Each case once ended in a traceback, a wrong exit code or stray output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.cli import CONSOLE_SCRIPT, cli_env

API_KEY_AUTH = '{"auth_mode": "apikey", "OPENAI_API_KEY": "sk-CNRYedgeskeyvalue12345"}'


@pytest.fixture
def reader_gone() -> Iterator[int]:
    """The write end of a pipe whose read end is already closed: what `codex-login ... | head -c0` leaves."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    yield write_end
    os.close(write_end)


def run(args: Sequence[str], codex_home: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    options: dict[str, object] = {"stdin": subprocess.DEVNULL, "capture_output": True}
    options.update(kwargs)
    if "stdout" in kwargs or "stderr" in kwargs:
        options.pop("capture_output")
        options.setdefault("stdout", subprocess.PIPE)
        options.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(CONSOLE_SCRIPT), *args], env=cli_env(codex_home), text=True, timeout=60, **options
    )


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-1"])
def test_a_timeout_that_is_not_a_finite_number_is_a_usage_error(codex_home: Path, value: str) -> None:
    # nan and inf passed the `< 0` check; the wait's countdown then raised (math.ceil) after the URL was out.
    done = run(["--timeout", value, "--no-browser", "--port", "0"], codex_home)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "codex-login: error: --timeout must be 0 (no limit) or a positive number of seconds"
    )
    assert "Traceback" not in done.stderr and not (codex_home / "log").exists()


def test_an_issuer_with_an_open_bracket_is_a_configuration_error(codex_home: Path) -> None:
    expected = "Error loading configuration: invalid issuer URL: its host is not a valid IPv6 address in brackets\n"
    done = run(["--issuer", "https://[::1", "status"], codex_home)
    assert (done.returncode, done.stderr, done.stdout) == (1, expected, "")
    (codex_home / "config.toml").write_text('issuer = "https://[::1"\n')
    done = run(["status"], codex_home)
    where = f"{codex_home / 'config.toml'}, line 1: "
    assert (done.returncode, done.stderr, done.stdout) == (1, expected.replace(": ", f": {where}", 1), "")


@pytest.mark.parametrize("flags", [["--with-api-key"], ["--api-key", "sk-CNRYflagkey"]], ids=["with-api-key", "api-key"])
def test_device_auth_is_dispatched_before_the_api_key_flags(codex_home: Path, flags: list[str]) -> None:
    # reference-spec §14.1: status, --device-auth, --api-key, --with-api-key, browser. With ChatGPT sign-in
    # disabled, a device sign-in is refused with the reference's text; the key on stdin is never read.
    done = run(
        ["-c", 'forced_login_method="api"', "--device-auth", "--port", "0", *flags],
        codex_home,
        input="sk-CNRYstdinkey",
        stdin=None,
    )
    assert (done.returncode, done.stderr) == (1, "ChatGPT login is disabled. Use API key login instead.\n")
    assert not (codex_home / "auth.json").exists()


def test_status_json_whose_reader_has_gone_exits_as_sigpipe_would(codex_home: Path, reader_gone: int) -> None:
    (codex_home / "auth.json").write_text(API_KEY_AUTH)
    done = run(["status", "--json"], codex_home, stdout=reader_gone)
    assert (done.returncode, done.stderr) == (141, "")  # 128 + SIGPIPE, as git and gh end; no traceback


def test_messages_whose_reader_has_gone_do_not_change_the_outcome(codex_home: Path, reader_gone: int) -> None:
    (codex_home / "auth.json").write_text(API_KEY_AUTH)
    assert run(["status"], codex_home, stderr=reader_gone).returncode == 0
    done = run(["logout"], codex_home, stderr=reader_gone)
    assert (done.returncode, done.stdout) == (0, "")
    assert not (codex_home / "auth.json").exists()
    assert run(["status"], codex_home, stderr=reader_gone).returncode == 1


def test_with_stderr_closed_nothing_meant_for_it_reaches_stdout(codex_home: Path) -> None:
    # `2>&-`: sys.stderr is None and print(file=None) wrote the messages to stdout, into `status --json`.
    env = cli_env(codex_home)
    closed = f"exec {CONSOLE_SCRIPT} status --json 2>&-"
    done = subprocess.run(["sh", "-c", closed], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and json.loads(done.stdout)["logged_in"] is False
    (codex_home / "config.toml").write_text('cli_auth_credentials_store = "auto"\n')  # no keyring here: a notice
    (codex_home / "auth.json").write_text(API_KEY_AUTH)
    done = subprocess.run(["sh", "-c", closed], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["auth_mode"] == "apikey"  # the keyring's failure notice went nowhere
    done = subprocess.run(["sh", "-c", f"exec {CONSOLE_SCRIPT} status 2>&-"], env=env, capture_output=True, text=True)
    assert done.stdout == ""


def test_a_warning_event_without_a_log_handler_prints_nothing() -> None:
    # No durable log (log_dir unusable) or an embedding program without logging set up: warnings went to
    # stderr through logging.lastResort as bare lines ("token revocation failed").
    code = (
        "from codex_login.diagnostics import events\n"
        "events.revoke_failed(token_kind='refresh_token', status='503', kind='http')\n"
        "events.finished(outcome='failure', failure_class='transport', duration_ms=1, flow='browser')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")
