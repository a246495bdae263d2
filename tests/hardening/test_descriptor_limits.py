"""Security matrix §4, rows B5/B6 (and DECISIONS D-7) under a low RLIMIT_NOFILE: the loopback server's connection
cap, and what happens when the process runs out of file descriptors for real.

* idle connections beyond the cap close the oldest one that has not sent a whole request: the process keeps
  spare descriptors, and the real callback succeeds while they are open;
* a worker whose preparation failed for lack of descriptors builds its HTTP client again for the callback
  (it does not keep the error);
* running out of descriptors for the callback itself is reported as such (503 to the browser, the attempt's
  failure ``too_many_open_files``), not as an internal error.

The descriptor faults are real: a child interpreter lowers its own soft RLIMIT_NOFILE (to 0 while the worker
prepares, from an audit hook on the worker's first audited step, so the moment is exact), and the kernel answers
EMFILE.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.hardening.conftest import Expect, Harness, RawReply, fd_count, raw_exchange, request_bytes
from tests.support.scripted_issuer import ScriptedIssuer

LIMIT = 256
IDLE = 600  # well over the limit: the cap is reached, and made room under, hundreds of times


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def test_b6_idle_connections_over_the_descriptor_limit_leave_spare_descriptors_and_the_callback_succeeds(
    harness: Harness,
) -> None:
    run = harness.login(preexec_fn=_low_limit)
    assert run.port is not None
    pid = run.proc.pid
    counts: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                counts.append(fd_count(pid))
            except OSError:
                return  # exited

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", run.port)))
        redirect = harness.callback(run, harness.good_query(run), timeout=30)
        assert redirect.status == 302, (redirect.status, redirect.text)
        page = harness.get(run, "/success")
        run.end_attempt()
        assert page.status == 200
    finally:
        stop.set()
        sampler.join(5)
        for sock in idle:
            sock.close()
    harness.finish(run, Expect(rc=0, success=True))
    # The cap kept descriptors free for the exchange, the save and the log: the process never came near its
    # limit (without a cap it accepted until EMFILE and stayed there until the idle connections timed out).
    assert counts and max(counts) <= LIMIT - 32, f"the process held up to {max(counts)} of {LIMIT} descriptors"
    assert len(harness.issuer.token_requests()) == 1


# A child interpreter: a login server whose worker prepares with no descriptor to spare; then, per argv[3],
# "restored": the limit is restored before the callback; "one": exactly one descriptor is left (the callback's).
_CHILD = """
import os, resource, sys, threading
from pathlib import Path
from codex_login.http import HttpSettings
from codex_login.server import ServerOptions, run_login_server

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
armed = [True]

def exhaust(event, args):
    if armed[0] and threading.current_thread().name == "codex-login-worker":
        armed[0] = False
        resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))

sys.addaudithook(exhaust)
server = run_login_server(ServerOptions(
    codex_home=Path(sys.argv[1]), issuer=sys.argv[2], port=0, open_browser=False, force_state="s" * 43,
    http=HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0), timeout=30, success_grace=1,
))
assert server.wait_prepared(30) and not armed[0]
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
if sys.argv[3] == "one":
    lowest = os.open(os.devnull, os.O_RDONLY)  # the lowest free number: every one below it is taken
    os.close(lowest)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest + 1, hard))
print(server.actual_port, flush=True)
try:
    result = server.block_until_done(30)
except Exception as err:
    print("failed", getattr(err, "failure_class", None), err, flush=True)
else:
    print("signed in", result.store, flush=True)
"""


def _child_sign_in(tmp_path: Path, issuer: ScriptedIssuer, mode: str) -> tuple[RawReply, str, str]:
    """Run the child, send it the real callback; the answer to it, the child's last line and its stderr."""
    home = tmp_path / "child-home"
    home.mkdir(mode=0o700)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(home), issuer.url, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_PROXY": "*"},
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        reply = raw_exchange(port, request_bytes(port, f"/auth/callback?code=c&state={'s' * 43}"), timeout=20)
        if reply.status == 302:
            raw_exchange(port, request_bytes(port, "/success"))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return reply, out.strip().splitlines()[-1], err


def test_a_preparation_that_ran_out_of_descriptors_is_retried_for_the_callback(tmp_path: Path) -> None:
    with ScriptedIssuer() as issuer:
        reply, last, err = _child_sign_in(tmp_path, issuer, "restored")
        assert reply.status == 302, (last, err)
        assert last == "signed in file"
        assert len(issuer.token_requests()) == 1
    assert (tmp_path / "child-home" / "auth.json").exists()
    assert "Traceback" not in err


def test_running_out_of_descriptors_for_the_callback_says_so(tmp_path: Path) -> None:
    with ScriptedIssuer() as issuer:
        reply, last, err = _child_sign_in(tmp_path, issuer, "one")
        assert reply.status == 503, (last, err)
        assert reply.text == "Service Unavailable: too many open files. Return to your terminal."
        assert last == (
            "failed too_many_open_files Sign-in failed: too many open files (the login server ran out of file "
            "descriptors)"
        )
        assert issuer.token_requests() == []
    assert not (tmp_path / "child-home" / "auth.json").exists()
    assert "Traceback" not in err
