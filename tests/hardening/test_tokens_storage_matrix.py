"""Security matrix §4, groups E (the id_token) and F (credential storage), through the real sign-in.

tests/test_token_data.py already covers the parser row by row (formats, base64, JSON, the 256 KiB cap,
hostile claims returned verbatim, no signature check) and tests/test_storage.py the stores (atomic 0600
writes, the 0644 fix, symlink refusal, ENOTDIR/EISDIR, disk full, the crash hook, the lock, keyring
fallbacks, invalid keyring JSON). What is left, and tested here, is what a user of ``codex-login`` meets:
the same faults arriving through a token response or a save at the end of a real browser sign-in, checked
with the seven invariants. F1 ("an existing auth.json survives any failing row unchanged") is INV-1 of the
harness: every row of the hardening suite starts with a previous sign-in on disk and checks it after.

Pinned choices: a symlinked ``auth.json`` is refused (the link and its target stay as they are); the
signature of the id_token is not checked (claims are used for display and the workspace restriction only).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import signal
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.hardening.conftest import PAGE, CliRun, Expect, Harness, make_jwt_with, read_log
from tests.support.scripted_issuer import Answer, Recorded, b64url, tokens_answer


def log_text(harness: Harness) -> str:
    return "".join(read_log(harness.codex_home / "log").values())


def answer_with_id_token(harness: Harness, id_token: str) -> None:
    harness.issuer.token = tokens_answer(
        id_token=id_token,
        access_token=harness.canaries["access_token"],
        refresh_token=harness.canaries["refresh_token"],
    )


def claims(harness: Harness, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "email": harness.canaries["email"],
        "https://api.openai.com/auth": {"chatgpt_account_id": harness.canaries["account_id"], "chatgpt_plan_type": "pro"},
    }
    payload.update(changes)
    return payload


# --------------------------------------------------------------------------------------------- group E

HEADER = b64url(b'{"alg":"none"}')


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("{c}", "invalid ID token format"),
        ("{c}.b", "invalid ID token format"),
        ("a..{c}", "invalid ID token format"),
        ("a.b.c.{c}", "invalid ID token format"),
        (HEADER + ".{c}%%%.sig", "invalid ID token payload (base64)"),
        (HEADER + ".{c}==.sig", "invalid ID token payload (base64)"),
        (HEADER + "." + b64url(b'["array"]') + ".{c}", "invalid ID token payload (JSON)"),
        (HEADER + "." + b64url(b"not json at all") + ".{c}", "invalid ID token payload (JSON)"),
        (HEADER + "." + b64url(json.dumps({"pad": "x" * 300_000}).encode()) + ".{c}", "invalid ID token payload (base64)"),
        # Valid JSON nested past the decoder's depth (RecursionError, not ValueError, from json.loads).
        (HEADER + "." + b64url(b"[" * 50_000 + b"]" * 50_000) + ".{c}", "invalid ID token payload (JSON)"),
    ],
    ids=["one-part", "two-parts", "empty-part", "four-parts", "bad-base64", "padded", "array", "not-json", "300KB",
         "nested"],
)
def test_e1_e2_an_unusable_id_token_fails_without_echo_or_write(harness: Harness, shape: str, message: str) -> None:
    token = shape.replace("{c}", harness.canaries.add("bad_id_token", "CNRYidt"))
    answer_with_id_token(harness, token)
    run = harness.login()
    page = harness.terminal_page(run)
    assert message in page.text
    harness.finish(run, Expect(rc=1))
    assert f"Error logging in: Token exchange failed: {message}" in run.stderr
    assert "outcome=error" in log_text(harness)


def test_e3_no_auth_claim_signs_in_without_an_account(harness: Harness) -> None:
    answer_with_id_token(harness, make_jwt_with({"email": harness.canaries["email"]}, "sig"))
    run = harness.login()
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert json.loads(harness.auth_path.read_text())["tokens"]["account_id"] is None


def test_e3_no_auth_claim_is_denied_when_a_workspace_is_forced(harness: Harness) -> None:
    answer_with_id_token(harness, make_jwt_with({"email": harness.canaries["email"]}, "sig"))
    run = harness.login("-c", 'forced_chatgpt_workspace_id="org-required"')
    page = harness.terminal_page(run)
    assert "did not include an chatgpt_account_id claim" in page.text
    harness.finish(run, Expect(rc=1))


@pytest.mark.parametrize("alg", ["none", "RS256", "HS256", "ES512"])
def test_e4_the_signature_is_not_checked(harness: Harness, alg: str) -> None:
    """Pinned (parity, OIDC Core 3.1.3.7: TLS to the token endpoint): a future signature check must change
    this test deliberately."""
    answer_with_id_token(harness, make_jwt_with(claims(harness), harness.canaries["signature"] + "garbage", alg=alg))
    run = harness.login()
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))


def test_e5_hostile_claims_never_reach_the_log_or_the_terminal(harness: Harness) -> None:
    core = harness.canaries.add("hostile_email", "CNRYmail")  # shown nowhere, not even on the success page
    email = f"<script>alert(1)</script>\r\n\x1b[31m{core}\u202e@evil.example"
    plan_core = harness.canaries.add("hostile_plan", "CNRYplan", allowed=(PAGE,))
    plan = f"<script>alert(1)</script>pro\x1b]8;;http://evil.example\x07{plan_core}"
    payload = claims(harness, email=email)
    payload["https://api.openai.com/auth"]["chatgpt_plan_type"] = plan
    answer_with_id_token(harness, make_jwt_with(payload, harness.canaries["signature"]))
    run = harness.login()
    page = harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text  # the plan's
    assert plan_core in page.text and core not in page.text
    assert b"\x1b" not in page.body and b"\x07" not in page.body
    for raw in (b"\x1b", b"\x07", b"\r"):
        assert raw not in run.stderr_bytes()


# --------------------------------------------------------------------------------------------- group F


def test_f2_a_loose_auth_json_is_replaced_with_a_0600_one(harness: Harness) -> None:
    harness.auth_path.chmod(0o644)
    run = harness.login()
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))  # INV-1 on success: a regular 0600 file


def test_f3_a_symlinked_auth_json_is_refused_and_its_target_untouched(harness: Harness, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text('{"precious": true}')
    before = hashlib.sha256(victim.read_bytes()).hexdigest(), victim.stat().st_mtime_ns
    harness.auth_path.unlink()
    harness.auth_path.symlink_to(victim)
    harness.accept_current_auth()
    run = harness.login()
    page = harness.terminal_page(run)
    assert "Sign-in completed but credentials could not be saved locally." in page.text
    harness.finish(run, Expect(rc=1))
    assert harness.auth_path.is_symlink() and os.readlink(harness.auth_path) == str(victim)
    assert (hashlib.sha256(victim.read_bytes()).hexdigest(), victim.stat().st_mtime_ns) == before
    assert "Error logging in: Sign-in completed but credentials could not be saved locally." in run.stderr
    assert "credentials could not be saved store=file" in log_text(harness)


def test_f4_a_missing_default_codex_home_is_created_0700(harness: Harness, tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    home.mkdir()
    harness.codex_home = home / ".codex"
    harness.accept_current_auth()
    run = harness.login(env={"CODEX_HOME": None, "HOME": str(home)})
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert stat.S_IMODE(harness.codex_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((harness.codex_home / "log").stat().st_mode) == 0o700


def _file_size_limit(limit: int) -> Any:
    def apply() -> None:
        # As root too: writes past `limit` bytes fail with EFBIG instead of killing the process (SIGXFSZ).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_f5_disk_full_during_the_save_keeps_the_old_file(harness: Harness) -> None:
    # An id_token big enough that auth.json cannot be written under the limit, while the log (a few lines)
    # still fits: the save is what fails.
    payload = claims(harness, padding="p" * 12_000)
    answer_with_id_token(harness, make_jwt_with(payload, harness.canaries["signature"]))
    run = harness.login(preexec_fn=_file_size_limit(10_000))
    page = harness.terminal_page(run)
    assert "Sign-in completed but credentials could not be saved locally." in page.text
    harness.finish(run, Expect(rc=1))  # INV-1 (old file intact) and INV-6 (temp file removed)
    assert "File too large" in run.stderr
    assert "credentials could not be saved store=file error_class=" in log_text(harness)


USERCODE = "/api/accounts/deviceauth/usercode"
POLL = "/api/accounts/deviceauth/token"


def _device_or_api_key_sign_in(harness: Harness, flow: str, preexec_fn: Any) -> CliRun:
    """A device or API-key sign-in whose credentials take over 5000 bytes (a padded id_token, a long key)."""
    if flow == "api-key":
        key = harness.canaries.add("long_api_key", "sk-proj-CNRYlong", suffix="k" * 6000)
        return harness.cli("--with-api-key", stdin=f"{key}\n".encode(), preexec_fn=preexec_fn)
    answer_with_id_token(harness, make_jwt_with(claims(harness, padding="p" * 12_000), harness.canaries["signature"]))
    harness.issuer.routes[USERCODE] = Answer.json(
        200, {"device_auth_id": harness.canaries.add("device_auth_id", "CNRYdai"), "user_code": "AB12-CD34"}
    )
    verifier = harness.canaries.add("device_verifier", "CNRYverifier")
    harness.issuer.routes[POLL] = Answer.json(
        200, {"authorization_code": harness.canaries["code"], "code_verifier": verifier}
    )
    return harness.cli("--device-auth", "--port", "0", "--issuer", harness.issuer.url, preexec_fn=preexec_fn)


@pytest.mark.parametrize("flow", ["device", "api-key"])
def test_f5_disk_full_during_a_device_or_api_key_save_keeps_the_old_file(harness: Harness, flow: str) -> None:
    run = _device_or_api_key_sign_in(harness, flow, _file_size_limit(5000))
    harness.finish(run, Expect(rc=1, budget=15))  # INV-1 (old file intact) and INV-6 (temp file removed)
    assert f"failed to write {harness.auth_path}: File too large" in run.stderr
    assert "credentials could not be saved store=file error_class=" in log_text(harness)


def _read_only(home: Path) -> Any:
    """CODEX_HOME 0500, and every write refused (RLIMIT_FSIZE 0): permissions do not bind root, the size limit
    does, so the save fails for every user (EACCES creating the temporary file, or EFBIG writing it) and the
    row runs the same way as root and as anyone else. The log cannot be written either (G6)."""
    home.chmod(0o500)
    return _file_size_limit(0)


@pytest.mark.parametrize("flow", ["device", "api-key"])
def test_f10_a_read_only_codex_home_fails_the_save_and_keeps_the_old_file(harness: Harness, flow: str) -> None:
    (harness.codex_home / ".auth.lock").touch(0o600)  # an earlier run's lock file: the save itself is refused
    run = _device_or_api_key_sign_in(harness, flow, _read_only(harness.codex_home))
    try:
        harness.finish(run, Expect(rc=1, budget=15, attempts=0, log=False))
    finally:
        harness.codex_home.chmod(0o700)
    failure = rf"failed to write {re.escape(str(harness.auth_path))}: (Permission denied|File too large)"
    shown = re.search(failure, run.stderr)
    assert shown is not None, run.stderr
    assert os.geteuid() == 0 or shown.group(1) == "Permission denied"


def test_f6_a_crash_between_write_and_rename_never_truncates(harness: Harness) -> None:
    crashing = harness.login(env={"CODEX_LOGIN_TEST_CRASH_AFTER_TEMP_WRITE": "1"})
    reply = harness.callback(crashing, harness.good_query(crashing))
    crashing.end_attempt()
    assert reply.status is None  # the process died before answering
    temp = [p.name for p in harness.codex_home.iterdir() if p.name.startswith(".auth.json.tmp-")]
    assert len(temp) == 1
    assert stat.S_IMODE((harness.codex_home / temp[0]).stat().st_mode) == 0o600  # a credential copy, private
    # A crash writes no "login finished" (os._exit); the old auth.json is whole; the temp file stays behind.
    harness.finish(crashing, Expect(rc=137, attempts=0, extra_files=(temp[0],)))
    json.loads(harness.auth_path.read_text())
    # The next sign-in succeeds and removes the dead process's temp file.
    healthy = harness.login()
    harness.complete(healthy)
    harness.finish(healthy, Expect(rc=0, success=True, attempts=1))


def test_f7_two_sign_ins_finishing_together_leave_one_whole_record(harness: Harness) -> None:
    other = {name: harness.canaries.add(f"{name}_b", prefix) for name, prefix in
             (("access_token", "CNRYaccB"), ("refresh_token", "CNRYrefB"))}
    mine = json.loads(harness.issuer.token.body) if isinstance(harness.issuer.token, Answer) else {}
    theirs = {**mine, **other}

    def by_code(request: Recorded) -> Answer:
        return Answer.json(200, theirs if request.form.get("code") == "second-code-value" else mine)

    harness.issuer.token = by_code
    first, second = harness.login(), harness.login()
    barrier = threading.Barrier(2)
    replies: dict[str, int | None] = {}

    def finish_one(name: str, run: Any, code: str | None) -> None:
        barrier.wait(5)
        replies[name] = harness.callback(run, harness.good_query(run, code)).status

    threads = [threading.Thread(target=finish_one, args=("first", first, None)),
               threading.Thread(target=finish_one, args=("second", second, "second-code-value"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert replies == {"first": 302, "second": 302}
    for run in (first, second):
        harness.get(run, "/success")
        run.end_attempt()
    harness.finish(first, Expect(rc=0, success=True, own_tokens=False, attempts=2))
    harness.finish(second, Expect(rc=0, success=True, own_tokens=False, attempts=2))
    saved = json.loads(harness.auth_path.read_text())["tokens"]
    pair = (saved["access_token"], saved["refresh_token"])
    assert pair in {(mine["access_token"], mine["refresh_token"]), (other["access_token"], other["refresh_token"])}


def test_f8_keyring_mode_without_a_keyring_fails_and_writes_no_file(harness: Harness) -> None:
    run = harness.login(
        "-c", "cli_auth_credentials_store=keyring", env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    )
    page = harness.terminal_page(run)
    assert "Sign-in completed but credentials could not be saved locally." in page.text
    harness.finish(run, Expect(rc=1))
    assert "credentials could not be saved store=keyring" in log_text(harness)


def test_f8_auto_mode_without_a_keyring_falls_back_to_the_file(harness: Harness) -> None:
    run = harness.login(
        "-c", "cli_auth_credentials_store=auto", env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    )
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True))
    assert "keyring" in run.stderr.lower()  # the parity warning about the fallback
    assert "credentials saved store=file" in log_text(harness)


# A keyring backend that keeps its entries in a JSON file (TEST_KEYRING_FILE), so the test and the console
# script see the same keyring; loaded by name through PYTHON_KEYRING_BACKEND.
FILE_KEYRING = """
import json
import os

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    def _entries(self):
        try:
            with open(os.environ["TEST_KEYRING_FILE"]) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _write(self, entries):
        with open(os.environ["TEST_KEYRING_FILE"], "w") as f:
            json.dump(entries, f)

    def get_password(self, service, username):
        return self._entries().get(service + "|" + username)

    def set_password(self, service, username, password):
        entries = self._entries()
        entries[service + "|" + username] = password
        self._write(entries)

    def delete_password(self, service, username):
        entries = self._entries()
        if entries.pop(service + "|" + username, None) is None:
            raise PasswordDeleteError("not found")
        self._write(entries)
"""


def file_keyring(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    """The keyring file and the environment that makes ``codex-login`` use it (the worktree's source stays
    first on the path)."""
    (tmp_path / "file_keyring.py").write_text(FILE_KEYRING)
    store = tmp_path / "keyring.json"
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return store, {"PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring", "PYTHONPATH": path,
                   "TEST_KEYRING_FILE": str(store)}


def keyring_entry(harness: Harness, store: Path) -> str | None:
    from codex_login.storage import KEYRING_SERVICE, store_key

    entries: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    return entries.get(f"{KEYRING_SERVICE}|{store_key(harness.codex_home)}")


@pytest.mark.parametrize("mode", ["keyring", "auto"])
def test_f8_a_keyring_save_removes_the_file_fallback(harness: Harness, tmp_path: Path, mode: str) -> None:
    store, env = file_keyring(tmp_path)
    run = harness.login("-c", f"cli_auth_credentials_store={mode}", env=env)
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True, in_keyring=True))
    saved = keyring_entry(harness, store)
    assert saved is not None and json.loads(saved)["tokens"]["refresh_token"] == harness.canaries["refresh_token"]
    assert "credentials saved store=keyring" in log_text(harness)


@pytest.mark.parametrize(("mode", "rc"), [("auto", 0), ("keyring", 1)])
def test_f9_invalid_json_in_the_keyring_is_reported_without_its_content(
    harness: Harness, tmp_path: Path, mode: str, rc: int
) -> None:
    """auto: a warning, then the file's state (here the previous API-key sign-in); keyring: an error (parity,
    the reference propagates the parse failure). Neither prints what the keyring holds."""
    from codex_login.storage import KEYRING_SERVICE, store_key

    store, env = file_keyring(tmp_path)
    junk = harness.canaries.add("keyring_junk", "CNRYkeyring")
    store.write_text(json.dumps({f"{KEYRING_SERVICE}|{store_key(harness.codex_home)}": f'{{"auth_mode": {junk}'}))
    run = harness.cli("-c", f"cli_auth_credentials_store={mode}", "status", env=env)
    harness.finish(run, Expect(rc=rc, attempts=0, log=False))
    lines = run.stderr.splitlines()
    if mode == "auto":
        assert lines[0].startswith("failed to load CLI auth from keyring, falling back to file storage: "
                                   "failed to deserialize CLI auth from keyring: invalid JSON")
        assert lines[1].startswith("Logged in using an API key - sk-old-")
    else:
        assert lines == [lines[0]] and lines[0].startswith(
            "Error checking login status: failed to deserialize CLI auth from keyring: invalid JSON")


def test_f10_an_unwritable_auth_location_fails_after_the_exchange_without_printing_tokens(harness: Harness) -> None:
    harness.auth_path.unlink()
    harness.auth_path.mkdir()
    (harness.auth_path / "keep").write_text("x")  # a non-empty directory: the rename fails even as root
    harness.accept_current_auth()
    run = harness.login()
    page = harness.terminal_page(run)
    assert "Sign-in completed but credentials could not be saved locally." in page.text
    harness.finish(run, Expect(rc=1))
    assert len(harness.issuer.token_requests()) == 1
    assert (harness.auth_path / "keep").read_text() == "x"


@pytest.mark.parametrize("how", ["CODEX_HOME", "HOME"])
def test_f10_a_codex_home_under_a_regular_file_is_refused_before_any_request(
    harness: Harness, tmp_path: Path, how: str
) -> None:
    """Decided differently from the matrix ("a clear error after the exchange"): the reference checks
    ``CODEX_HOME`` when it reads its configuration (reference §15), so an ``ENOTDIR`` home (which binds root
    too) ends the command before the browser, the port or the issuer is touched; nothing is exchanged for
    tokens that could not be saved. The default home (``$HOME/.codex``) fails on reading its config.toml."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env: dict[str, str | None] = (
        {"CODEX_HOME": str(blocker / "home")} if how == "CODEX_HOME" else {"CODEX_HOME": None, "HOME": str(blocker)}
    )
    run = harness.login(env=env, wait=False)
    harness.finish(run, Expect(rc=1, budget=10, attempts=0, log=False))
    expected = (
        f'Error loading configuration: failed to read CODEX_HOME "{blocker / "home"}": Not a directory (os error 20)'
        if how == "CODEX_HOME"
        else f"Error loading configuration: failed to read {blocker / '.codex' / 'config.toml'}: Not a directory"
    )
    assert run.stderr.splitlines() == [expected]
    assert harness.issuer.requests == [] and run.port is None
    assert blocker.read_text() == "not a directory"
