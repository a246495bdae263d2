"""Security matrix §4, group G: the durable log is broken in every way we can arrange, and sign-in still works.

tests/test_logfile.py covers the handler itself (O_NOFOLLOW, fstat checks, rotation, the one-warning
``handleError``). Here the same faults meet the real console script end to end: the sign-in completes
(exit 0, credentials saved, INV-1), stderr carries exactly one warning line about the log and never a
``--- Logging error ---`` dump, a traceback or a secret (INV-2, INV-7), and whatever log file does get
written still holds one event per line (INV-5).

Faults that bind root too: ``ENOTDIR`` (a path under a regular file), ``EISDIR`` (a directory where the
file should be), ``ELOOP`` (a symlink opened with ``O_NOFOLLOW``), ``EFBIG`` (``RLIMIT_FSIZE`` with
``SIGXFSZ`` ignored), a directory owned by someone else (``chown``), and sysfs, which refuses to create
files even for root (the "read-only log_dir" row).

Pinned choices: a hard-linked log file is refused; an existing 0644 log file is tightened to 0600 and used;
a symlinked ``log_dir`` is accepted only to a directory of ours with mode 0700 (or stricter).
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from codex_login.diagnostics.format import parse_json_line, parse_text_line
from codex_login.diagnostics.logfile import LOG_FILE_NAME
from tests.hardening.conftest import CliRun, Expect, Harness, read_log, request_bytes

FILLER = "2026-01-01T00:00:00.000000Z  INFO codex_cli::login: filler line n=1\n"


def warnings_about_the_log(run: CliRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("Warning:") and "log" in line]


def sign_in_despite(harness: Harness, log_dir: Path, *, logged: bool) -> CliRun:
    """A sign-in with ``log_dir``; it must succeed. ``logged``: whether a usable log file results."""
    run = harness.login(log_dir=log_dir)
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True, log=logged, attempts=1 if logged else 0))
    return run


def assert_one_warning(run: CliRun, *fragments: str) -> None:
    found = warnings_about_the_log(run)
    assert len(found) == 1, run.stderr
    for fragment in fragments:
        assert fragment in found[0], found[0]
    assert "--- Logging error ---" not in run.stderr and "Arguments:" not in run.stderr


def test_g1_a_log_dir_that_cannot_be_created(harness: Harness, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    run = sign_in_despite(harness, blocker / "log", logged=False)
    assert_one_warning(run, "Warning: failed to create login log directory", "Not a directory")


def test_g2_a_log_dir_where_no_file_can_be_created(harness: Harness) -> None:
    run = sign_in_despite(harness, Path("/sys/kernel"), logged=False)
    assert_one_warning(run, "/sys/kernel")


def test_g3_the_log_file_is_a_directory(harness: Harness, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    (log_dir / LOG_FILE_NAME).mkdir(parents=True)
    log_dir.chmod(0o700)
    run = sign_in_despite(harness, log_dir, logged=False)
    assert_one_warning(run, "Warning: failed to open login log file")


def test_g4_a_symlinked_log_file_never_writes_its_target(harness: Harness, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).symlink_to(victim)
    run = sign_in_despite(harness, log_dir, logged=False)
    assert_one_warning(run, "Warning: failed to open login log file")
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == digest
    assert (log_dir / LOG_FILE_NAME).is_symlink()


def _symlinked_dir(tmp_path: Path, mode: int, owner: int | None) -> Path:
    target = tmp_path / f"target-{mode:o}-{owner}"
    target.mkdir()
    target.chmod(mode)
    if owner is not None:
        os.chown(target, owner, owner)
    link = tmp_path / f"link-{mode:o}-{owner}"
    link.symlink_to(target)
    return link


def test_g4_a_symlinked_log_dir_to_a_world_writable_directory_is_refused(harness: Harness, tmp_path: Path) -> None:
    link = _symlinked_dir(tmp_path, 0o777, None)
    run = sign_in_despite(harness, link, logged=False)
    assert_one_warning(run, "refusing log directory")
    assert list(link.resolve().iterdir()) == []


def test_g4_a_symlinked_log_dir_owned_by_someone_else_is_refused(harness: Harness, tmp_path: Path) -> None:
    link = _symlinked_dir(tmp_path, 0o700, 65534)
    run = sign_in_despite(harness, link, logged=False)
    assert_one_warning(run, "refusing log directory", "not owned by the current user")
    assert list(link.resolve().iterdir()) == []


def test_g4_a_symlinked_log_dir_to_our_own_private_directory_is_used(harness: Harness, tmp_path: Path) -> None:
    link = _symlinked_dir(tmp_path, 0o700, None)
    run = sign_in_despite(harness, link, logged=True)
    assert warnings_about_the_log(run) == []
    assert (link.resolve() / LOG_FILE_NAME).stat().st_size > 0


def test_g5_a_hard_linked_log_file_is_refused(harness: Harness, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    other = tmp_path / "other.txt"
    other.write_text("")
    os.link(other, log_dir / LOG_FILE_NAME)
    run = harness.login(log_dir=log_dir)
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True, attempts=0))  # the (empty) file exists; nothing written
    assert_one_warning(run, "hard links")
    assert other.read_text() == ""


def test_g5_a_loose_log_file_is_tightened_to_0600_and_used(harness: Harness, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).write_text(FILLER)
    (log_dir / LOG_FILE_NAME).chmod(0o644)
    run = sign_in_despite(harness, log_dir, logged=True)
    assert warnings_about_the_log(run) == []
    assert stat.S_IMODE((log_dir / LOG_FILE_NAME).stat().st_mode) == 0o600


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_g6_a_full_disk_disables_the_log_with_one_warning(harness: Harness, tmp_path: Path) -> None:
    limit = 64 * 1024
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    (log_dir / LOG_FILE_NAME).write_text(FILLER * (limit // len(FILLER) + 1))
    run = harness.login(log_dir=log_dir, preexec_fn=_file_size_limit(limit))
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True, attempts=0))
    assert_one_warning(run, "Warning: login log disabled: File too large")


def test_g7_an_oversized_log_is_rotated(harness: Harness, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir(mode=0o700)
    old = FILLER * (6 * 1024 * 1024 // len(FILLER) + 1)
    (log_dir / LOG_FILE_NAME).write_text(old)
    sign_in_despite(harness, log_dir, logged=True)
    assert (log_dir / f"{LOG_FILE_NAME}.1").read_text() == old
    current = log_dir / LOG_FILE_NAME
    assert current.stat().st_size < 64 * 1024 and stat.S_IMODE(current.stat().st_mode) == 0o600
    assert "login finished outcome=success" in current.read_text()


def test_g8_a_flood_of_junk_requests_keeps_the_log_small(harness: Harness) -> None:
    run = harness.login()
    port = run.port
    assert port is not None
    log = harness.codex_home / "log" / LOG_FILE_NAME
    before = log.stat().st_size
    kinds = [
        request_bytes(port, "/auth/callback?code=x&state=wrong"),  # state mismatch: the noisiest kind
        request_bytes(port, "/auth/callback?state=wrong", host="evil.example"),
        request_bytes(port, "/auth/callback", method="POST"),
        request_bytes(port, "/auth/callback?a=%ZZ"),
    ]
    sent = 0
    lock = threading.Lock()
    deadline = time.monotonic() + 60

    def flood(kind: bytes, count: int) -> None:
        nonlocal sent
        for _ in range(count):
            assert time.monotonic() < deadline, "the flood took too long"
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(kind)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
            with lock:
                sent += 1

    threads = [threading.Thread(target=flood, args=(kinds[i % len(kinds)], 1250)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(70)
    assert sent == 10_000
    growth = log.stat().st_size - before
    assert growth <= 1024 * 1024, f"the log grew by {growth} bytes for 10 000 junk requests"
    harness.complete(run)
    harness.finish(run, Expect(rc=0, success=True, budget=90))
    # Nothing is lost: 20 refusals of each kind are logged, and one line counts the rest.
    logged: dict[str, int] = {}
    counted: dict[str, object] = {}
    for line in log.read_text().splitlines():
        parsed = parse_text_line(line)
        assert parsed is not None
        if parsed.message in ("login server rejected request", "login callback state mismatch"):
            reason = str(parsed.fields.get("reason", "state_mismatch"))
            logged[reason] = logged.get(reason, 0) + 1
        elif parsed.message == "login server rejected more requests than were logged":
            counted[str(parsed.fields["reason"])] = parsed.fields["count"]
    kinds_seen = ("state_mismatch", "unexpected_host", "bad_method", "malformed_query")
    assert logged == dict.fromkeys(kinds_seen, 20)
    assert counted == dict.fromkeys(kinds_seen, 2500 - 20)


def test_g9_maximum_verbosity_adds_no_third_party_lines(harness: Harness) -> None:
    for rust_log in ("trace", "trace,httpx=trace,httpcore=trace,hyper=trace,reqwest=trace"):
        harness.accept_current_auth()
        run = harness.login(env={"RUST_LOG": rust_log, "PYTHONWARNINGS": "always"})
        harness.complete(run)
        harness.finish(run, Expect(rc=0, success=True, attempts=len(harness.runs)))
    for text in read_log(harness.codex_home / "log").values():
        for line in text.splitlines():
            parsed = parse_text_line(line)
            assert parsed is not None
            assert parsed.target.split("::")[0] in ("codex_cli", "codex_core", "codex_login"), line


def test_g10_timestamps_are_utc_whatever_the_time_zone(harness: Harness) -> None:
    for log_format in ("text", "json"):
        harness.accept_current_auth()
        started = datetime.now(UTC)
        run = harness.login(log_format=log_format, env={"TZ": "Asia/Kolkata"}, log_dir=harness.tmp / log_format)
        harness.complete(run)
        harness.finish(run, Expect(rc=0, success=True, log_format=log_format))
        ended = datetime.now(UTC)
        text = (harness.tmp / log_format / LOG_FILE_NAME).read_text()
        for line in text.splitlines():
            parsed = parse_json_line(line) if log_format == "json" else parse_text_line(line)
            assert parsed is not None
            assert (line.split('"timestamp":"')[1][:27] if log_format == "json" else line[:27]).endswith("Z")
            assert started.replace(microsecond=0) <= parsed.timestamp <= ended, (parsed.timestamp, started)
