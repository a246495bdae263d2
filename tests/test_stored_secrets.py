"""Secrets read back from a store never reach a sink through a keyring backend's or an issuer's error text.

A keyring backend is a third party: its exceptions are shown (``failed to write OAuth tokens to keyring:
{err}``), and some quote what they were given or hold. An issuer's revoke or refresh endpoint may echo the
token it refused. The commands that read stored credentials (``status``, ``logout``, ``doctor``, the refresh,
the bundle) and the saves that follow a sign-in must scrub those texts with the values they know.

The backend is :mod:`tests.support.keyring_backends.echo_keyring`, loaded by the console script through
``PYTHON_KEYRING_BACKEND`` with its directory first on ``PYTHONPATH``. The canaries and sinks are the
hardening harness's (security §3.3): every encoding, any 8-character window of a core, then the second net.
Every row has a positive control that the hostile text really was produced and shown (scrubbed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.hardening.conftest import (
    TERMINAL,
    Expect,
    Harness,
    assert_no_traceback,
    find_leaks,
    open_harness,
    read_log,
)
from tests.support.scripted_issuer import Answer, Recorded

ECHO_DIR = Path(__file__).parent / "support" / "keyring_backends"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    with open_harness(tmp_path) as world:
        yield world


def echo_keyring(harness: Harness, fail: str) -> tuple[Path, dict[str, str | None]]:
    """The keyring file and the environment that makes ``codex-login`` use the echoing backend (the worktree's
    source stays on the path, after the backend's directory)."""
    store = harness.tmp / "echo-keyring.json"
    path = os.pathsep.join(filter(None, [str(ECHO_DIR), os.environ.get("PYTHONPATH")]))
    env: dict[str, str | None] = {
        "PYTHON_KEYRING_BACKEND": "echo_keyring.EchoKeyring",
        "PYTHONPATH": path,
        "ECHO_KEYRING_FILE": str(store),
        "ECHO_KEYRING_FAIL": fail,
    }
    return store, env


def chatgpt_record(harness: Harness) -> dict[str, object]:
    """A stored ChatGPT sign-in whose every secret is a canary (and an API key beside the tokens)."""
    c = harness.canaries
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": c["old_api_key"],
        "tokens": {
            "id_token": c["id_token"],
            "access_token": c["access_token"],
            "refresh_token": c["refresh_token"],
            "account_id": c["account_id"],
        },
        "last_refresh": "2025-01-01T00:00:00Z",
    }


def seed_keyring(harness: Harness, store: Path) -> None:
    from codex_login.storage import KEYRING_SERVICE, store_key

    value = json.dumps(chatgpt_record(harness), separators=(",", ":"))
    store.write_text(json.dumps({f"{KEYRING_SERVICE}|{store_key(harness.codex_home)}": value}))


def seed_file(harness: Harness) -> None:
    harness.auth_path.write_text(json.dumps(chatgpt_record(harness), indent=2))
    harness.auth_path.chmod(0o600)
    harness.accept_current_auth()


def no_leaks(harness: Harness) -> None:
    sinks = harness.sinks()
    assert_no_traceback(sinks.terminal)
    leaks = find_leaks(harness.canaries.items.values(), sinks)
    assert not leaks, "canaries leaked:\n" + "\n".join(leaks)


def log_text(harness: Harness) -> str:
    return "".join(read_log(harness.codex_home / "log").values())


# --------------------------------------------------------------------------------------------- saving


@pytest.mark.parametrize("mode", ["keyring", "auto"])
def test_a_sign_in_whose_keyring_save_echoes_the_value(harness: Harness, mode: str) -> None:
    """The backend refuses the new credentials quoting them whole (tokens, account ID, email in the ID token):
    keyring mode fails, auto falls back to auth.json with a warning; neither shows what was refused."""
    _, env = echo_keyring(harness, "set")
    run = harness.login("-c", f"cli_auth_credentials_store={mode}", env=env)
    if mode == "keyring":
        harness.terminal_page(run)
        harness.finish(run, Expect(rc=1, bundle=True))
    else:
        harness.complete(run)
        harness.finish(run, Expect(rc=0, success=True, bundle=True))
    # Positive control: the backend's message is shown, with what it quoted scrubbed.
    assert "set refused for Codex Auth|cli|" in run.stderr and "<redacted" in run.stderr
    assert harness.bundle


def test_an_api_key_login_whose_keyring_save_echoes_the_value(harness: Harness) -> None:
    key = harness.canaries.add("stdin_api_key", "sk-proj-CNRYstdin")
    _, env = echo_keyring(harness, "set")
    run = harness.cli("--with-api-key", "-c", "cli_auth_credentials_store=keyring", env=env,
                      stdin=f"{key}\n".encode())
    harness.finish(run, Expect(rc=1, own_tokens=False, attempts=1))
    assert "set refused for Codex Auth|cli|" in run.stderr and "<redacted" in run.stderr


# --------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("mode", ["keyring", "auto"])
def test_status_and_doctor_when_the_keyring_refuses_to_read(harness: Harness, mode: str) -> None:
    store, env = echo_keyring(harness, "get")
    seed_keyring(harness, store)
    seed_file(harness)
    # status shows the account to the person who asks for it (auto reads auth.json after the keyring failed).
    for name in ("email", "account_id"):
        harness.canaries.items[name] = replace(harness.canaries.items[name], allowed=frozenset({TERMINAL}))
    status = harness.cli("-c", f"cli_auth_credentials_store={mode}", "status", env=env)
    status_json = harness.cli("-c", f"cli_auth_credentials_store={mode}", "status", "--json", env=env)
    doctor = harness.cli("-c", f"cli_auth_credentials_store={mode}", "doctor", "--issuer", harness.issuer.url, env=env)
    for run in (status, status_json, doctor):
        run.wait_exit(60)
        run.checked = True
    assert "get refused for Codex Auth|cli|" in status.stderr  # positive control: the backend's own text
    assert "get refused for Codex Auth|" in doctor.stdout  # the probe reads an account of its own
    if mode == "auto":
        assert f"Account ID: {harness.canaries['account_id']}" in status.stderr
    harness.collect_bundle()
    no_leaks(harness)


def test_logout_when_the_keyring_refuses_to_delete_what_it_holds(harness: Harness) -> None:
    store, env = echo_keyring(harness, "delete")
    seed_keyring(harness, store)
    run = harness.cli("-c", "cli_auth_credentials_store=keyring", "logout", env=env)
    assert run.wait_exit(60) == 1
    run.checked = True
    assert run.stderr.startswith("Error logging out: failed to delete auth from keyring: delete refused for ")
    assert "holding <redacted" in run.stderr  # positive control: the held value was quoted, and scrubbed
    harness.collect_bundle()
    no_leaks(harness)


def echo_token(status: int) -> Callable[[Recorded], Answer]:
    """An endpoint that refuses the token it was sent, quoting it whole, cut and upper-cased."""

    def answer(request: Recorded) -> Answer:
        token = request.form.get("token") or request.form.get("refresh_token") or ""
        return Answer.json(status, {
            "error": "invalid_request",
            "error_description": f"token {token} ({token[:20]}, {token.upper()}) is not known",
        })

    return answer


def test_logout_whose_revocation_echoes_the_tokens(harness: Harness) -> None:
    seed_file(harness)
    harness.issuer.routes["/oauth/revoke"] = echo_token(400)
    run = harness.cli("logout", "--issuer", harness.issuer.url, env={})
    assert run.wait_exit(60) == 0
    run.checked = True
    revoked = [parse_qs(r.body.decode())["token"][0] for r in harness.issuer.requests if r.path == "/oauth/revoke"]
    assert revoked == [harness.canaries["refresh_token"], harness.canaries["access_token"]]
    # Positive control: both refusals are shown, their quotes of the token scrubbed.
    assert run.stderr.count("Warning: could not revoke tokens at the issuer: failed to revoke") == 2
    assert run.stderr.count("is not known") == 2
    harness.collect_bundle()
    assert any(name.endswith(".json") for name in harness.bundle)
    no_leaks(harness)


# --------------------------------------------------------------------------------------------- refresh


@pytest.mark.parametrize("failure", ["endpoint-echoes-the-token", "keyring-save-echoes-the-value"])
def test_a_refresh_of_stored_tokens_shows_none_of_them(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """In process (the refresh is a library call): the stored tokens are refreshed with an endpoint that
    refuses the refresh token quoting it, or that succeeds while the keyring refuses the rotated value quoting
    it. The returned error (``str``, ``repr``, the formatted chain) and the log are the sinks."""
    import traceback

    import keyring

    from codex_login.diagnostics.logfile import LOG_FILE_NAME, init_login_file_logging
    from codex_login.errors import LoginError
    from codex_login.http import HttpSettings
    from codex_login.refresh import refresh_tokens
    from tests.hardening.conftest import Sinks
    from tests.hardening.conftest import find_leaks as leaks_in
    from tests.support.keyring_backends.echo_keyring import EchoKeyring
    from tests.support.scripted_issuer import tokens_answer

    store, env = echo_keyring(harness, "set" if failure.startswith("keyring") else "")
    for name in ("ECHO_KEYRING_FILE", "ECHO_KEYRING_FAIL"):
        monkeypatch.setenv(name, env[name] or "")
    seed_keyring(harness, store)
    previous = keyring.get_keyring()
    keyring.set_keyring(EchoKeyring())
    c = harness.canaries
    new_access = c.add("new_access_token", "CNRYnewacc")
    new_refresh = c.add("new_refresh_token", "CNRYnewref")
    if failure.startswith("endpoint"):
        harness.issuer.token = echo_token(500)
    else:
        harness.issuer.token = tokens_answer(access_token=new_access, refresh_token=new_refresh)
    handle = init_login_file_logging(harness.tmp / "log", env={"RUST_LOG": "trace"})
    try:
        with pytest.raises(LoginError) as caught:
            refresh_tokens(harness.codex_home, "keyring", issuer=harness.issuer.url, force=True,
                           http_settings=HttpSettings(env={}, total_timeout=5))
    finally:
        handle.close()
        keyring.set_keyring(previous)
    sent = [r for r in harness.issuer.token_requests() if r.form.get("grant_type") == "refresh_token"]
    assert [r.form["refresh_token"] for r in sent] == [c["refresh_token"]]
    error = caught.value
    shown = "\n".join([str(error), repr(error), *traceback.format_exception(error)])
    # Positive controls: the endpoint's or the backend's text is in the error, its quotes scrubbed.
    assert ("is not known" if failure.startswith("endpoint") else "set refused for Codex Auth|cli|") in str(error)
    sinks = Sinks(log={LOG_FILE_NAME: (harness.tmp / "log" / LOG_FILE_NAME).read_text()}, terminal=shown)
    assert "refresh" in sinks.log[LOG_FILE_NAME]
    found = leaks_in(c.items.values(), sinks)
    assert not found, "canaries leaked:\n" + "\n".join(found)
