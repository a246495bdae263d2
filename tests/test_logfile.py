"""codex-login.log: file hygiene, faults that bind root too, rotation, filtering, and failure handling."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codex_login.diagnostics.envfilter import OFF, TRACE
from codex_login.diagnostics.format import ParsedLine, TracingTextFormatter, parse_json_line, parse_text_line
from codex_login.diagnostics.logfile import (
    LOG_FILE_NAME,
    ROOT_TARGETS,
    LogFileError,
    LoginLogHandle,
    RotatingLoginFileHandler,
    attach_stream_handler,
    init_login_file_logging,
    open_log_file,
)
from codex_login.diagnostics.record import Display, attempt_span, emit
from codex_login.diagnostics.redact import SECRETS

SERVER = logging.getLogger("codex_login.server")
CLI = logging.getLogger("codex_cli.login")
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def handles() -> Iterator[list[LoginLogHandle]]:
    opened: list[LoginLogHandle] = []
    yield opened
    for handle in opened:
        handle.close()


def start(handles: list[LoginLogHandle], log_dir: Path, **kwargs: object) -> tuple[LoginLogHandle, io.StringIO]:
    err = io.StringIO()
    kwargs.setdefault("env", {})
    handle = init_login_file_logging(log_dir, stderr=err, **kwargs)  # type: ignore[arg-type]
    handles.append(handle)
    return handle, err


def callback_event(**extra: object) -> None:
    fields: dict[str, object] = {"path": Display("/auth/callback"), "has_code": True, **extra}
    emit(SERVER, logging.INFO, "received login callback", fields)  # type: ignore[arg-type]


def digest(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode


def lines(path: Path | None) -> list[str]:
    assert path is not None
    return path.read_text(encoding="utf-8").splitlines()


def parsed_lines(path: Path | None) -> list[ParsedLine]:
    parsed = [parse_text_line(line) for line in lines(path)]
    assert all(p is not None for p in parsed)
    return [p for p in parsed if p is not None]


# ------------------------------------------------------------------------------------------------ happy path


def test_creates_dirs_0700_and_file_0600_and_writes_lines(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "a" / "b" / "log"
    old_umask = os.umask(0)
    try:
        handle, err = start(handles, log_dir)
    finally:
        os.umask(old_umask)
    assert handle.active and err.getvalue() == ""
    assert handle.path == log_dir / LOG_FILE_NAME
    for directory in (tmp_path / "a", tmp_path / "a" / "b", log_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    with attempt_span("la_0123abcd"):
        callback_event()
    emit(CLI, logging.INFO, "starting browser login flow")
    first, second = lines(handle.path)
    assert first.endswith(
        "  INFO login{attempt=la_0123abcd}: codex_login::server: received login callback"
        " path=/auth/callback has_code=true"
    )
    assert second.endswith("  INFO codex_cli::login: starting browser login flow")
    assert stat.S_IMODE(handle.path.stat().st_mode) == 0o600


def test_umask_that_removes_owner_bits_still_gives_0700_and_0600(tmp_path: Path) -> None:
    old_umask = os.umask(0o777)
    try:
        fd = open_log_file(tmp_path / "log")
    finally:
        os.umask(old_umask)
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "log" / LOG_FILE_NAME).stat().st_mode) == 0o600


def test_open_log_file_flags(tmp_path: Path) -> None:
    fd = open_log_file(tmp_path / "log")
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        assert flags & os.O_APPEND
        assert flags & os.O_ACCMODE == os.O_WRONLY
        assert not flags & os.O_NONBLOCK
    finally:
        os.close(fd)


def test_existing_log_is_appended_never_truncated(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).write_text("old line\n")
    (log_dir / LOG_FILE_NAME).chmod(0o600)
    start(handles, log_dir)
    callback_event()
    assert lines(log_dir / LOG_FILE_NAME)[0] == "old line"
    assert len(lines(log_dir / LOG_FILE_NAME)) == 2


def test_existing_0644_file_is_tightened_to_0600(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o755)
    path = log_dir / LOG_FILE_NAME
    path.write_text("keep\n")
    path.chmod(0o644)
    handle, err = start(handles, log_dir)
    assert handle.active and err.getvalue() == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "keep\n"


def test_json_format(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log", log_format="json")
    with attempt_span("la_0123abcd"):
        callback_event(error_code="access_denied")
    (line,) = lines(tmp_path / "log" / LOG_FILE_NAME)
    obj = json.loads(line)
    assert obj["fields"] == {
        "message": "received login callback",
        "path": "/auth/callback",
        "has_code": True,
        "error_code": "access_denied",
    }
    assert obj["span"] == {"attempt": "la_0123abcd", "name": "login"}
    parsed = parse_json_line(line)
    assert parsed is not None and parsed.target == "codex_login::server"


def test_unknown_format_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xml"):
        init_login_file_logging(tmp_path / "log", log_format="xml", env={})


def test_no_log_dir_means_an_inactive_handle_and_no_warning(handles: list[LoginLogHandle]) -> None:
    err = io.StringIO()
    handle = init_login_file_logging(None, env={}, stderr=err)
    assert not handle.active and handle.path is None and err.getvalue() == ""
    handle.close()


def test_idempotent_for_the_same_path(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    first, _ = start(handles, tmp_path / "log")
    second, _ = start(handles, tmp_path / "log" / ".." / "log")
    assert first is second
    callback_event()
    assert len(lines(tmp_path / "log" / LOG_FILE_NAME)) == 1


def test_close_detaches_and_restores_loggers(tmp_path: Path) -> None:
    before = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in ROOT_TARGETS}
    handle = init_login_file_logging(tmp_path / "log", env={})
    for name in ROOT_TARGETS:
        logger = logging.getLogger(name)
        assert not logger.propagate
        assert logger.level == logging.INFO
        assert handle.handler in logger.handlers
    handle.close()
    handle.close()
    assert not handle.active
    callback_event()
    assert lines(tmp_path / "log" / LOG_FILE_NAME) == []
    after = {name: (logging.getLogger(name).level, logging.getLogger(name).propagate) for name in ROOT_TARGETS}
    assert after == before
    again = init_login_file_logging(tmp_path / "log", env={})  # a new handle after close
    try:
        assert again is not handle and again.active
    finally:
        again.close()


def test_handle_is_a_context_manager(tmp_path: Path) -> None:
    with init_login_file_logging(tmp_path / "log", env={}) as handle:
        assert handle.active
    assert not handle.active


# ------------------------------------------------------------------------------------------------ filtering


def test_default_filter_drops_debug(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log")
    emit(SERVER, logging.DEBUG, "debug detail")
    callback_event()
    assert [p.message for p in parsed_lines(tmp_path / "log" / LOG_FILE_NAME)] == ["received login callback"]


def test_rust_log_directives_apply(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log", env={"RUST_LOG": "codex_login::server=debug,codex_cli=off"})
    assert logging.getLogger("codex_login").level == logging.DEBUG
    assert logging.getLogger("codex_cli").level == OFF
    emit(SERVER, logging.DEBUG, "debug detail")
    emit(logging.getLogger("codex_login.oauth"), logging.DEBUG, "not this one")
    emit(CLI, logging.ERROR, "nor this")
    messages = [p.message for p in parsed_lines(tmp_path / "log" / LOG_FILE_NAME)]
    assert messages == ["debug detail"]


def test_rust_log_target_prefix_selects_our_loggers(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    # RUST_LOG=codex=debug is how Codex users widen every codex_* crate at once; it gave an empty log.
    start(handles, tmp_path / "log", env={"RUST_LOG": "codex=debug"})
    emit(SERVER, logging.DEBUG, "debug detail")
    emit(CLI, logging.DEBUG, "cli detail")
    emit(SERVER, TRACE, "not trace")
    messages = [p.message for p in parsed_lines(tmp_path / "log" / LOG_FILE_NAME)]
    assert messages == ["debug detail", "cli detail"]


def test_span_directive_selects_events_of_the_attempt(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log", env={"RUST_LOG": "codex_login[login]=debug"})
    emit(SERVER, logging.DEBUG, "outside the span")
    with attempt_span("la_0123abcd"):
        emit(SERVER, logging.DEBUG, "inside the span")
    messages = [p.message for p in parsed_lines(tmp_path / "log" / LOG_FILE_NAME)]
    assert messages == ["inside the span"]


def test_third_party_loggers_never_reach_the_file(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log", env={"RUST_LOG": "trace,httpx=trace,httpcore=trace"})
    others = [
        "httpx",
        "httpcore.connection",
        "urllib3.connectionpool",
        "http.client",
        "codex_login_extra",
        "asyncio",
        "",
    ]
    for name in others:
        logger = logging.getLogger(name)
        saved = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            logger.warning("HTTP Request: POST https://auth.openai.com/oauth/token?code=CNRYthirdparty")
            logger.debug("third party debug CNRYthirdparty")
        finally:
            logger.setLevel(saved)
    emit(SERVER, 5, "trace level event")
    content = (tmp_path / "log" / LOG_FILE_NAME).read_text()
    assert "CNRYthirdparty" not in content
    (line,) = content.splitlines()
    assert " TRACE codex_login::server: trace level event" in line


def test_registered_secrets_and_patterns_are_scrubbed(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log")
    try:
        SECRETS.add("code", "CNRYcode0123456")
        callback_event(error=Display("server echoed CNRYcode0123456 and Bearer CNRYbearer99"))
    finally:
        SECRETS.clear()
    content = (tmp_path / "log" / LOG_FILE_NAME).read_text()
    assert "CNRY" not in content
    assert "<redacted:code>" in content and "Bearer <redacted>" in content


def test_concurrent_writers_give_whole_lines(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    start(handles, tmp_path / "log", max_bytes=20_000, backups=50)

    def work(n: int) -> None:
        for i in range(100):
            callback_event(worker=n, i=i, pad="x" * 50)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = set()
    for path in (tmp_path / "log").iterdir():
        assert path.stat().st_size <= 20_000
        for line in lines(path):
            parsed = parse_text_line(line)
            assert parsed is not None and parsed.fields["pad"] == "x" * 50
            seen.add((parsed.fields["worker"], parsed.fields["i"]))
    assert len(seen) == 800


# ------------------------------------------------------------------------------------------------ faults


def test_enotdir_log_dir_under_a_file(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    (tmp_path / "file").write_text("x")
    log_dir = tmp_path / "file" / "sub"
    handle, err = start(handles, log_dir)
    assert not handle.active
    assert err.getvalue() == (
        f"Warning: failed to create login log directory {log_dir}: Not a directory (os error 20)\n"
    )
    with pytest.raises(LogFileError) as info:
        open_log_file(log_dir)
    assert info.value.stage == "create_dir" and info.value.errno == 20 and info.value.path == log_dir
    assert str(info.value) == "Not a directory (os error 20)" and info.value.strerror == "Not a directory"
    callback_event()  # sign-in goes on; nothing else happens


def test_log_dir_is_a_file(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    (tmp_path / "log").write_text("x")
    handle, err = start(handles, tmp_path / "log")
    assert not handle.active
    assert err.getvalue().startswith(f"Warning: failed to create login log directory {tmp_path / 'log'}: ")


def test_eisdir_log_file_is_a_directory(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    (tmp_path / "log" / LOG_FILE_NAME).mkdir(parents=True)
    (tmp_path / "log").chmod(0o700)
    handle, err = start(handles, tmp_path / "log")
    assert not handle.active
    assert err.getvalue() == (
        f"Warning: failed to open login log file {tmp_path / 'log' / LOG_FILE_NAME}: Is a directory (os error 21)\n"
    )
    with pytest.raises(LogFileError) as info:
        open_log_file(tmp_path / "log")
    assert info.value.stage == "open"


def test_eloop_symlinked_log_file_leaves_the_victim_untouched(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    before = digest(victim)
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).symlink_to(victim)
    handle, err = start(handles, log_dir)
    callback_event()
    assert not handle.active
    assert err.getvalue() == (
        f"Warning: failed to open login log file {log_dir / LOG_FILE_NAME}:"
        " Too many levels of symbolic links (os error 40)\n"
    )
    assert digest(victim) == before


def test_dangling_symlink_is_not_followed_to_create_a_file(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).symlink_to(tmp_path / "created-by-us")
    handle, err = start(handles, log_dir)
    assert not handle.active and "os error 40" in err.getvalue()
    assert not (tmp_path / "created-by-us").exists()


def test_hard_linked_log_file_is_refused(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    other = tmp_path / "other"
    other.write_text("other file\n")
    other.chmod(0o644)
    before = digest(other)
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    os.link(other, log_dir / LOG_FILE_NAME)
    handle, err = start(handles, log_dir)
    callback_event()
    assert not handle.active
    assert err.getvalue() == (
        f"Warning: failed to open login log file {log_dir / LOG_FILE_NAME}: the file has 2 hard links\n"
    )
    assert digest(other) == before


def test_fifo_log_file_is_refused_without_hanging(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    os.mkfifo(log_dir / LOG_FILE_NAME)
    started = time.monotonic()
    handle, err = start(handles, log_dir)
    assert time.monotonic() - started < 5
    assert not handle.active
    assert err.getvalue().startswith(f"Warning: failed to open login log file {log_dir / LOG_FILE_NAME}: ")


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702])
def test_group_or_world_writable_log_dir_is_refused(tmp_path: Path, handles: list[LoginLogHandle], mode: int) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    log_dir.chmod(mode)
    handle, err = start(handles, log_dir)
    assert not handle.active
    assert err.getvalue() == (
        f"Warning: failed to open login log file {log_dir / LOG_FILE_NAME}: refusing log directory {log_dir}:"
        f" writable by group or others (mode {mode & 0o7777:04o})\n"
    )
    assert not (log_dir / LOG_FILE_NAME).exists()


def test_existing_0755_log_dir_is_accepted(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    log_dir.chmod(0o755)
    handle, err = start(handles, log_dir)
    assert handle.active and err.getvalue() == ""


@AS_ROOT
def test_log_dir_owned_by_someone_else_is_refused(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    os.chown(log_dir, 65534, 65534)
    handle, err = start(handles, log_dir)
    assert not handle.active
    assert "not owned by the current user" in err.getvalue()


@AS_ROOT
def test_log_file_owned_by_someone_else_is_refused(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).write_text("")
    os.chown(log_dir / LOG_FILE_NAME, 65534, 65534)
    handle, err = start(handles, log_dir)
    assert not handle.active
    assert err.getvalue() == (
        f"Warning: failed to open login log file {log_dir / LOG_FILE_NAME}: not owned by the current user\n"
    )


def test_symlinked_log_dir_to_own_0700_dir_is_allowed(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "log").symlink_to(real)
    handle, err = start(handles, tmp_path / "log")
    assert handle.active and err.getvalue() == ""
    callback_event()
    assert len(lines(real / LOG_FILE_NAME)) == 1


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o1777, 0o750])
def test_symlinked_log_dir_to_an_open_dir_is_refused(tmp_path: Path, handles: list[LoginLogHandle], mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    (tmp_path / "log").symlink_to(shared)
    handle, err = start(handles, tmp_path / "log")
    assert not handle.active
    assert err.getvalue().startswith(f"Warning: failed to open login log file {tmp_path / 'log' / LOG_FILE_NAME}:")
    assert not (shared / LOG_FILE_NAME).exists()


@AS_ROOT
def test_symlinked_log_dir_to_someone_elses_dir_is_refused(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    (tmp_path / "log").symlink_to(theirs)
    handle, err = start(handles, tmp_path / "log")
    assert not handle.active and "not owned by the current user" in err.getvalue()
    assert not (theirs / LOG_FILE_NAME).exists()


def test_warning_with_control_characters_in_the_path_stays_one_line(
    tmp_path: Path, handles: list[LoginLogHandle]
) -> None:
    (tmp_path / "f\x1b[31m\nx").write_text("")
    _, err = start(handles, tmp_path / "f\x1b[31m\nx" / "sub")
    assert err.getvalue().count("\n") == 1 and "\x1b" not in err.getvalue()


# ------------------------------------------------------------------------------------------------ write faults


def test_disk_full_in_process_dev_full(
    tmp_path: Path, handles: list[LoginLogHandle], capsys: pytest.CaptureFixture[str]
) -> None:
    handle, err = start(handles, tmp_path / "log")
    handler = handle.handler
    assert isinstance(handler, RotatingLoginFileHandler)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, handler.fileno())
    finally:
        os.close(full)
    callback_event(secret_arg="CNRYdiskfull")
    SERVER.info("args %s", "CNRYdiskfull")
    callback_event()
    assert err.getvalue() == "Warning: login log disabled: No space left on device\n"
    assert not handle.active
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_bad_file_descriptor(tmp_path: Path, handles: list[LoginLogHandle], capsys: pytest.CaptureFixture[str]) -> None:
    handle, err = start(handles, tmp_path / "log")
    handler = handle.handler
    assert isinstance(handler, RotatingLoginFileHandler)
    os.close(handler.fileno())
    callback_event()
    callback_event()
    assert err.getvalue() == "Warning: login log disabled: Bad file descriptor\n"
    assert capsys.readouterr().err == ""


FSIZE_SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from codex_login.diagnostics.logfile import init_login_file_logging
    from codex_login.diagnostics.record import Display, emit

    canary = sys.argv[2]
    handle = init_login_file_logging(Path(sys.argv[1]), env={})
    assert handle.active
    log = logging.getLogger("codex_login.server")
    for i in range(300):
        emit(log, logging.INFO, "received login callback", {"path": Display("/auth/callback"), "n": i, "c": canary})
        log.warning("percent args %s", canary)
        log.error("bad args %d", canary)
    print("login continues", handle.active)
    """
)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_disk_full_subprocess_rlimit_fsize(tmp_path: Path) -> None:
    canary = "CNRYfsize" + os.urandom(4).hex()
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("RUST_LOG", None)
    proc = subprocess.run(
        [sys.executable, "-c", FSIZE_SCRIPT, str(tmp_path / "log"), canary],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limit_file_size,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "login continues False\n"
    assert proc.stderr == "Warning: login log disabled: File too large\n"
    assert "Logging error" not in proc.stderr and "Arguments" not in proc.stderr and canary not in proc.stderr
    assert (tmp_path / "log" / LOG_FILE_NAME).stat().st_size <= 4096


# ------------------------------------------------------------------------------------------------ rotation


def test_rotation_keeps_n_backups(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    handle, err = start(handles, tmp_path / "log", max_bytes=2000, backups=3)
    for i in range(200):
        callback_event(i=i)
    names = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert names == [LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", f"{LOG_FILE_NAME}.2", f"{LOG_FILE_NAME}.3"]
    numbers: list[object] = []
    for name in reversed(names[1:]):
        numbers += [p.fields["i"] for p in parsed_lines(tmp_path / "log" / name)]
    numbers += [p.fields["i"] for p in parsed_lines(handle.path)]
    assert numbers == list(range(200 - len(numbers), 200))  # the newest lines, contiguous, none lost between files
    for name in names:
        path = tmp_path / "log" / name
        assert path.stat().st_size <= 2000
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert err.getvalue() == "" and handle.active


def test_rotation_counts_what_other_processes_appended(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    """The size checked before each write is the file's, not what this handler wrote (issue 9 reads it with
    lseek instead of fstat): another codex-login appending to the same log pushes it to rotation too."""
    handle, err = start(handles, tmp_path / "log", max_bytes=2000, backups=1)
    callback_event(i=0)
    assert handle.path is not None
    other = os.open(handle.path, os.O_WRONLY | os.O_APPEND)  # another process's descriptor of the same file
    try:
        os.write(other, b"x" * 1800 + b"\n")
    finally:
        os.close(other)
    callback_event(i=1)
    rotated = (tmp_path / "log" / f"{LOG_FILE_NAME}.1").read_bytes()
    assert rotated.endswith(b"x" * 1800 + b"\n") and rotated.count(b"\n") == 2
    assert [p.fields["i"] for p in parsed_lines(handle.path)] == [1]
    assert err.getvalue() == "" and handle.active


def test_rotation_without_backups_starts_over(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    handle, _ = start(handles, tmp_path / "log", max_bytes=1000, backups=0)
    for i in range(50):
        callback_event(i=i)
    assert [p.name for p in (tmp_path / "log").iterdir()] == [LOG_FILE_NAME]
    assert handle.path is not None and handle.path.stat().st_size <= 1000


def test_preexisting_6_mib_log_is_rotated(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    big = log_dir / LOG_FILE_NAME
    big.write_bytes((b"y" * 1023 + b"\n") * 6 * 1024)
    big.chmod(0o644)
    _, err = start(handles, log_dir)
    callback_event()
    assert (log_dir / f"{LOG_FILE_NAME}.1").stat().st_size == 6 * 1024 * 1024
    assert len(lines(big)) == 1
    assert stat.S_IMODE(big.stat().st_mode) == 0o600
    assert err.getvalue() == ""


def test_rotation_into_a_blocked_generation_disables_with_one_warning(
    tmp_path: Path, handles: list[LoginLogHandle]
) -> None:
    handle, err = start(handles, tmp_path / "log", max_bytes=500, backups=1)
    (tmp_path / "log" / f"{LOG_FILE_NAME}.1").mkdir()
    (tmp_path / "log" / f"{LOG_FILE_NAME}.1" / "keep").write_text("")
    for i in range(20):
        callback_event(i=i)
    assert not handle.active
    assert err.getvalue().startswith("Warning: login log disabled: ")
    assert err.getvalue().count("\n") == 1


def test_rotation_reopen_through_a_planted_symlink_is_refused(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    before = digest(victim)
    handle, err = start(handles, tmp_path / "log", max_bytes=400, backups=2)
    handler = handle.handler
    assert isinstance(handler, RotatingLoginFileHandler)
    real_rotate = handler._rotate

    def racing_rotate() -> None:
        # Between the rename and the reopen, someone plants a symlink where the new file will be.
        real_rename = os.rename

        def rename_then_plant(src: str, dst: str, **kwargs: int) -> None:
            real_rename(src, dst, **kwargs)
            if src == LOG_FILE_NAME:
                (tmp_path / "log" / LOG_FILE_NAME).symlink_to(victim)

        os.rename = rename_then_plant  # type: ignore[assignment]
        try:
            real_rotate()
        finally:
            os.rename = real_rename

    handler._rotate = racing_rotate  # type: ignore[method-assign]
    for i in range(20):
        callback_event(i=i)
    assert not handle.active
    assert err.getvalue() == "Warning: login log disabled: Too many levels of symbolic links\n"
    assert digest(victim) == before


def _writer(log_dir: Path, *, max_bytes: int, backups: int) -> RotatingLoginFileHandler:
    """A handler with its own descriptors, as another process sharing log_dir would have."""
    handler = RotatingLoginFileHandler(log_dir, max_bytes=max_bytes, backups=backups)
    handler.setFormatter(TracingTextFormatter())
    return handler


def _line(handler: RotatingLoginFileHandler, text: str) -> None:
    handler.emit(logging.LogRecord("codex_login.server", logging.INFO, __file__, 1, text, (), None))


def test_a_quiet_writer_follows_a_rotation_made_by_another_process(tmp_path: Path) -> None:
    # The quiet process kept writing into the file the chatty one had renamed and then dropped: its newest
    # lines were lost.
    quiet = _writer(tmp_path, max_bytes=1000, backups=1)
    chatty = _writer(tmp_path, max_bytes=1000, backups=1)
    try:
        _line(quiet, "quiet first")
        for i in range(60):  # several rotations: the quiet writer's file is renamed, then dropped
            _line(chatty, f"chatty {i:03d}")
        quiet._next_watch = 0.0  # its pause has lasted longer than watch_interval
        _line(quiet, "quiet newest")
    finally:
        quiet.close()
        chatty.close()
    current = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    assert current[-1].endswith("quiet newest")
    assert "chatty 059" in current[-2]
    assert stat.S_IMODE((tmp_path / LOG_FILE_NAME).stat().st_mode) == 0o600


def test_a_writer_whose_file_was_rotated_does_not_rotate_again(tmp_path: Path) -> None:
    # Both writers see the size cap reached; the second must look again (under the lock) and find the fresh
    # file, not rotate a second time and drop the generation the first one just made.
    first = _writer(tmp_path, max_bytes=1000, backups=1)
    second = _writer(tmp_path, max_bytes=1000, backups=1)
    second.watch_interval = 3600.0  # its next write is a burst's: no watch, only the size check
    try:
        _line(second, "second early")
        for i in range(7):  # 7 lines of 106 bytes after second's 68: 810 of the 1000 bytes
            _line(first, f"first {i:03d} " + "x" * 40)
        _line(first, "first rotates " + "x" * 200)
        _line(second, "second late " + "y" * 400)
    finally:
        first.close()
        second.close()
    rotated = (tmp_path / f"{LOG_FILE_NAME}.1").read_text()
    assert "second early" in rotated and "first 006" in rotated
    current = (tmp_path / LOG_FILE_NAME).read_text().splitlines()
    assert current[0].endswith("first rotates " + "x" * 200)
    assert current[-1].endswith("second late " + "y" * 400)


def test_rotation_waits_for_the_directory_lock_and_never_blocks_the_write(tmp_path: Path) -> None:
    handler = _writer(tmp_path, max_bytes=500, backups=2)
    handler.watch_interval = 0.0  # retry the rotation at the next line (by default: a second later)
    peer = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # another process, in the middle of a rotation
    try:
        _line(handler, "a" * 400)
        fcntl.flock(peer, fcntl.LOCK_EX)
        started = time.monotonic()
        _line(handler, "b" * 400)  # over the cap, but the peer holds the lock
        assert time.monotonic() - started < 2.0
        assert not (tmp_path / f"{LOG_FILE_NAME}.1").exists()
        fcntl.flock(peer, fcntl.LOCK_UN)
        _line(handler, "c" * 400)
    finally:
        os.close(peer)
        handler.close()
    assert "b" * 400 in (tmp_path / f"{LOG_FILE_NAME}.1").read_text()
    assert (tmp_path / LOG_FILE_NAME).read_text().rstrip("\n").endswith("c" * 400)
    assert not handler.failed


def test_a_held_rotation_lock_delays_one_line_not_every_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # After a lock wait that timed out, every later line waited for the lock again (0.2 s each, under the
    # handler lock: 8 lines took 1.4 s, the sign-in callback's events included). Now rotation is not tried
    # again before watch_interval has passed.
    from codex_login.diagnostics import logfile

    attempts: list[int] = []

    def held_by_a_peer(dfd: int) -> bool | None:
        attempts.append(dfd)
        return False  # what _lock_dir says once its bounded wait is over

    monkeypatch.setattr(logfile, "_lock_dir", held_by_a_peer)
    handler = _writer(tmp_path, max_bytes=500, backups=2)
    try:
        _line(handler, "a" * 400)
        for letter in "bcdefgh":
            _line(handler, letter * 400)  # each over the cap
    finally:
        handler.close()
    assert len(attempts) == 1
    assert not handler.failed and not (tmp_path / f"{LOG_FILE_NAME}.1").exists()


def test_rotation_goes_on_where_the_directory_cannot_be_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NFS emulates flock with byte-range locks: an exclusive lock on the directory's read-only descriptor is
    # EBADF. That error disabled the whole log at the first rotation; rotation now goes on unlocked.
    real = fcntl.flock

    def nfs_flock(fd: int, operation: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        real(fd, operation)

    monkeypatch.setattr(fcntl, "flock", nfs_flock)  # the module logfile calls through
    handler = _writer(tmp_path, max_bytes=500, backups=2)
    try:
        for letter in "abc":
            _line(handler, letter * 400)
    finally:
        handler.close()
    assert not handler.failed
    assert "b" * 400 in (tmp_path / f"{LOG_FILE_NAME}.1").read_text()
    assert (tmp_path / LOG_FILE_NAME).read_text().rstrip("\n").endswith("c" * 400)


# ------------------------------------------------------------------------------------------------ streams


def test_stream_handler(handles: list[LoginLogHandle]) -> None:
    stream = io.StringIO()
    handle = attach_stream_handler(stream, "text", {"RUST_LOG": "trace"})
    handles.append(handle)
    callback_event()
    logging.getLogger("httpx").warning("HTTP Request: third party")
    (line,) = stream.getvalue().splitlines()
    assert "codex_login::server: received login callback" in line
    handle.close()
    callback_event()
    assert len(stream.getvalue().splitlines()) == 1


def test_stream_and_file_together_use_the_lowest_level(tmp_path: Path, handles: list[LoginLogHandle]) -> None:
    file_handle, _ = start(handles, tmp_path / "log")
    stream = io.StringIO()
    stream_handle = attach_stream_handler(stream, "json", {"RUST_LOG": "codex_login=debug"})
    handles.append(stream_handle)
    assert logging.getLogger("codex_login").level == logging.DEBUG
    emit(SERVER, logging.DEBUG, "debug only on the stream")
    assert lines(tmp_path / "log" / LOG_FILE_NAME) == []
    assert json.loads(stream.getvalue())["fields"]["message"] == "debug only on the stream"
    stream_handle.close()
    assert logging.getLogger("codex_login").level == logging.INFO
    assert file_handle.active


def test_broken_stream_gives_one_warning_and_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    handle = attach_stream_handler(stream)
    try:
        stream.close()
        SERVER.warning("args %s", "CNRYstream")
        callback_event()
        err = capsys.readouterr().err
        assert err == "Warning: login log disabled: unexpected ValueError\n"
        assert not handle.active
    finally:
        handle.close()


# ------------------------------------------------------------------------------------------------ time zones


def test_tz_kolkata_file_timestamps_are_utc(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import logging, sys
        from pathlib import Path
        from codex_login.diagnostics.logfile import init_login_file_logging
        from codex_login.diagnostics.record import emit
        init_login_file_logging(Path(sys.argv[1]), env={})
        emit(logging.getLogger("codex_cli.login"), logging.INFO, "starting browser login flow")
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC, "TZ": "Asia/Kolkata"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "log")], env=env, check=True, timeout=60)
    (line,) = lines(tmp_path / "log" / LOG_FILE_NAME)
    parsed = parse_text_line(line)
    assert parsed is not None
    assert line[26] == "Z"
    assert abs(parsed.timestamp - datetime.now(UTC)) < timedelta(minutes=2)
