"""``codex-login --with-api-key`` through the real console script (pipes, and a pty for the TTY case)."""

from __future__ import annotations

import json
import os
import pty
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from codex_login.api_key import ApiKeyReadError, api_key_problem, login_with_api_key, read_api_key
from codex_login.errors import ErrorKind, LoginError
from codex_login.storage import load_auth

CLI = str(Path(sys.executable).parent / "codex-login")
KEY = "sk-proj-CNRYkey0123456789abcdefXYZ"
READING = "Reading API key from stdin..."
OLD = b'{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-old-key-0000000000"\n}'


def cli_env(codex_home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    env.update(extra)
    return env


def run_cli(
    codex_home: Path, stdin: bytes, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [CLI, *args, "--with-api-key"],
        input=stdin,
        env=cli_env(codex_home, **(env or {})),
        capture_output=True,
        timeout=30,
    )


def log_lines(codex_home: Path) -> list[str]:
    from tests.conftest import normalize_line

    path = codex_home / "log" / "codex-login.log"
    return [normalize_line(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_piped_key_is_saved_in_the_reference_shape(codex_home: Path) -> None:
    proc = run_cli(codex_home, f"  {KEY}\r\n".encode())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().splitlines() == [READING, "Successfully logged in"]
    assert proc.stdout == b""
    auth_file = codex_home / "auth.json"
    assert auth_file.read_text() == f'{{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "{KEY}"\n}}'
    assert auth_file.stat().st_mode & 0o777 == 0o600
    assert log_lines(codex_home) == [
        " INFO codex_cli::login: starting api key login flow",
        " INFO codex_cli::login: login attempt started flow=api_key issuer=https://auth.openai.com/ "
        'client_id="app_EMoamEEZ73f0CkXaXp7hrann" version=V store=file',
        f" INFO codex_login::auth: api key received key_len={len(KEY)} looks_like_openai_key=true",
        " INFO codex_login::auth: credentials saved store=file",
        " INFO codex_cli::login: login finished outcome=success flow=api_key duration_ms=N",
    ]
    assert KEY not in (codex_home / "log" / "codex-login.log").read_text()


def test_key_replaces_chatgpt_credentials(codex_home: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "rust_chatgpt_auth.json"
    (codex_home / "auth.json").write_bytes(fixture.read_bytes())
    proc = run_cli(codex_home, KEY.encode())
    assert proc.returncode == 0, proc.stderr
    auth = load_auth(codex_home)
    assert auth is not None and auth.tokens is None and auth.openai_api_key == KEY


def test_tty_on_stdin_is_refused(codex_home: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [CLI, "--with-api-key"],
            stdin=terminal,
            env=cli_env(codex_home),
            capture_output=True,
            timeout=30,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [
        "--with-api-key expects the API key on stdin. Try piping it, e.g. "
        "`printenv OPENAI_API_KEY | codex-login --with-api-key`."
    ]
    assert not (codex_home / "auth.json").exists()


@pytest.mark.parametrize("stdin", [b"", b"   \n\t\r\n"], ids=["empty", "whitespace"])
def test_empty_input(codex_home: Path, stdin: bytes) -> None:
    (codex_home / "auth.json").write_bytes(OLD)
    proc = run_cli(codex_home, stdin)
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [READING, "No API key provided via stdin."]
    assert (codex_home / "auth.json").read_bytes() == OLD


@pytest.mark.parametrize(
    ("stdin", "reason"),
    [
        (b"\xff\xfesk-abc", "stream did not contain valid UTF-8"),
        (b"sk-" + b"a" * (10 * 1024 * 1024), "the input is longer than 8192 bytes; an API key is much shorter"),
    ],
    ids=["invalid_utf8", "ten_megabytes"],
)
def test_unreadable_input(codex_home: Path, stdin: bytes, reason: str) -> None:
    (codex_home / "auth.json").write_bytes(OLD)
    proc = run_cli(codex_home, stdin)
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [READING, f"Failed to read API key from stdin: {reason}"]
    assert (codex_home / "auth.json").read_bytes() == OLD


# The tail is a canary: "def" alone also turned up in a random attempt ID (la_25ffdefd), failing a CI run.
@pytest.mark.parametrize("stdin", [b"sk-abc CNRYtail", b"sk-abc\nCNRYtail", b"sk-abc\x00CNRYtail", b"sk-abc\x1b[31mCNRYtail"])
def test_inner_whitespace_and_controls_are_refused(codex_home: Path, stdin: bytes) -> None:
    (codex_home / "auth.json").write_bytes(OLD)
    proc = run_cli(codex_home, stdin)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 1
    assert lines[:2] == [READING, "Error logging in: the API key contains whitespace or control characters"]
    assert lines[2] == "Try next: Pipe exactly the key: `printenv OPENAI_API_KEY | codex-login --with-api-key`."
    assert lines[3].startswith("Attempt ID: la_")
    assert b"CNRYtail" not in proc.stderr  # the input is never echoed
    assert (codex_home / "auth.json").read_bytes() == OLD
    assert log_lines(codex_home)[-1] == (
        " WARN codex_cli::login: login finished outcome=error flow=api_key duration_ms=N failure=invalid_api_key"
    )


def test_forced_chatgpt_login_refuses_api_keys(codex_home: Path) -> None:
    proc = run_cli(codex_home, KEY.encode(), "-c", 'forced_login_method="chatgpt"')
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == ["API key login is disabled. Use ChatGPT login instead."]
    assert not (codex_home / "auth.json").exists()


def _limit_file_size() -> None:
    # Writes past 64 bytes fail with EFBIG (not a signal): the new auth.json cannot be written.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


def test_failed_save_keeps_the_previous_credentials(codex_home: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "rust_chatgpt_auth.json"
    previous = fixture.read_bytes()
    (codex_home / "auth.json").write_bytes(previous)
    proc = subprocess.run(
        [CLI, "--with-api-key"],
        input=(KEY + "-" + "x" * 64).encode(),
        env=cli_env(codex_home),
        capture_output=True,
        timeout=30,
        preexec_fn=_limit_file_size,
    )
    errors = proc.stderr.decode()
    assert proc.returncode == 1
    assert f"Error logging in: failed to write {codex_home / 'auth.json'}: File too large" in errors
    assert KEY not in errors
    assert (codex_home / "auth.json").read_bytes() == previous  # nothing lost (security J6)
    assert [p.name for p in codex_home.iterdir() if p.name.startswith(".auth.json.tmp")] == []


def test_keyring_modes_without_a_keyring(codex_home: Path) -> None:
    fail = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    proc = run_cli(codex_home, KEY.encode(), "-c", 'cli_auth_credentials_store="keyring"', env=fail)
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines()[1].startswith(
        "Error logging in: failed to write OAuth tokens to keyring: "
    )
    assert not (codex_home / "auth.json").exists()

    proc = run_cli(codex_home, KEY.encode(), "-c", 'cli_auth_credentials_store="auto"', env=fail)
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == 0, lines
    assert lines[0] == READING
    assert lines[1].startswith("failed to save auth to keyring, falling back to file storage: ")
    assert lines[-1] == "Successfully logged in"
    assert json.loads((codex_home / "auth.json").read_text())["OPENAI_API_KEY"] == KEY
    assert log_lines(codex_home)[-2] == " INFO codex_login::auth: credentials saved store=file_fallback"


# --------------------------------------------------------------------------------------------- library


def test_library_login_with_api_key(codex_home: Path) -> None:
    assert login_with_api_key(codex_home, f" {KEY}\n", "file") == "file"
    auth = load_auth(codex_home)
    assert auth is not None and auth.openai_api_key == KEY
    other = codex_home / "memory"
    assert login_with_api_key(other, KEY, "ephemeral") == "ephemeral"
    assert not other.exists()
    assert load_auth(other, "ephemeral") is not None
    with pytest.raises(LoginError) as caught:
        login_with_api_key(codex_home, "sk-a b", "file")
    assert caught.value.kind is ErrorKind.INVALID_INPUT and caught.value.failure_class == "invalid_api_key"
    assert "sk-a" not in str(caught.value)


def test_library_keyring_login_into_a_missing_codex_home_is_found_by_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default ~/.codex not created yet, $HOME reached through a symlink: the key is saved under the
    entry later reads look up (the canonical path's hash), not the one of the path before it existed."""
    import keyring
    import keyring.core

    from codex_login.storage import KEYRING_SERVICE, store_key
    from tests.support.memory_keyring import MemoryKeyring

    backend = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    home = tmp_path / "link" / ".codex"
    assert login_with_api_key(home, KEY, "keyring") == "keyring"
    assert list(backend.entries) == [(KEYRING_SERVICE, store_key(home))]
    auth = load_auth(home, "keyring")
    assert auth is not None and auth.openai_api_key == KEY


def test_library_keyring_login_with_a_read_only_codex_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyring mode writes nothing in CODEX_HOME: a read-only one (no .auth.lock yet) must not fail the login.
    os.open raises EROFS for the lock file as a read-only mount would (chmod does not stop root in CI)."""
    import errno

    import keyring.core

    from tests.support.memory_keyring import MemoryKeyring

    backend = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    home = tmp_path / "read-only-home"
    home.mkdir()
    lock_path = str(home / ".auth.lock")
    real_open = os.open

    def read_only(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if os.fspath(path) == lock_path and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), lock_path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert login_with_api_key(home, KEY, "keyring") == "keyring"
    auth = load_auth(home, "keyring")
    assert auth is not None and auth.openai_api_key == KEY
    assert list(home.iterdir()) == []


def test_read_api_key_limits() -> None:
    import io

    assert read_api_key(io.BytesIO(b"\n sk-x \n")) == "sk-x"
    assert read_api_key(io.BytesIO(b"a" * 8192)) == "a" * 8192
    with pytest.raises(ApiKeyReadError):
        read_api_key(io.BytesIO(b"a" * 8193))
    assert api_key_problem("sk-\u2028x") is not None
    assert api_key_problem("sk-ok") is None


class Stopped(Exception):
    """What the test's SIGTERM handler raises (the device sign-in's does the same): the default would end pytest."""


def stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise Stopped


@pytest.mark.parametrize(("signum", "stopped"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Stopped)],
                         ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("outcome", ["saved", "save fails"])
def test_a_stop_signal_during_the_save_waits_for_its_outcome(
    codex_home: Path, monkeypatch: pytest.MonkeyPatch, signum: signal.Signals, stopped: type[BaseException],
    outcome: str
) -> None:
    """Ctrl-C (or SIGTERM) arriving while the key is being saved is held until the save ends. Saved: the sign-in
    succeeds and the signal is dropped (it used to raise right after the rename: "not completed", exit 130, with
    the new key saved). The save failed: the signal takes effect then, and the old credentials stay."""
    login_with_api_key(codex_home, "sk-old-key-0123456789", "file")
    before = (codex_home / "auth.json").read_bytes()
    real_replace = os.replace

    def replace_after_a_signal(src: str, dst: str) -> None:
        os.kill(os.getpid(), signum)  # its handler runs at the next bytecode: inside the save
        if outcome == "save fails":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_a_signal)
    previous_term = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        if outcome == "saved":
            try:
                where = login_with_api_key(codex_home, "sk-new-key-0123456789", "file")
            except stopped:  # caught here: a KeyboardInterrupt reaching pytest would end the whole run
                pytest.fail("the signal stopped a sign-in whose save had begun")
            assert where == "file"
        else:
            with pytest.raises(stopped):
                login_with_api_key(codex_home, "sk-new-key-0123456789", "file")
        assert signal.getsignal(signal.SIGTERM) is stop_on_sigterm  # the handlers are back
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    stored = load_auth(codex_home)
    assert stored is not None
    if outcome == "saved":
        assert stored.openai_api_key == "sk-new-key-0123456789"
    else:
        assert (codex_home / "auth.json").read_bytes() == before
    assert not [p.name for p in codex_home.iterdir() if p.name.startswith(".auth.json.tmp-")]
