"""The loopback server under load: 1,000 idle connections and 1,000 junk requests, and the real callback.

For each run a fresh ``codex-login --no-browser --port 0`` waits for the browser. A separate load process
(:mod:`benchmarks.junk`) opens 1,000 idle connections (they never send a byte) and sends 1,000 junk
requests (at most 200 in flight), and the benchmark sends the real callback (``code`` + the right ``state``),
timed to the 302 minus the token endpoint's own time, at one of three moments:

* ``idle``: once the server has accepted the idle connections (no junk);
* ``idle, error page``: the same, but the callback is ``error=access_denied`` (the error page, no token
  exchange): the closest to the Rust CLI's "a real callback was still answered in 4 ms" with 1,000 idle
  connections (its callback's exchange failed at once, with no network to the issuer);
* ``after junk``: with the idle connections still open, right after the 1,000 junk requests were answered;
* ``during junk``: when half of the junk has been sent, so the callback queues behind whatever junk the
  server has not answered yet: the hardest case.

Measured on the server process: open file descriptors (``/proc/PID/fd``), resident memory (``VmRSS``) before,
at the peak and after, and its CPU time per junk request; the load process checks that every junk
connection got an answer and was closed by the server, and that the idle ones were closed by the server's
header deadline.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.callback import wait_until_idle
from benchmarks.common import REPO_ROOT, BenchmarkError, Row, Section, median
from benchmarks.issuer import RawIssuer
from benchmarks.login_process import LoginProcess, browser_get

LATENCY_TARGET_MS = 50.0
SAMPLE_SECONDS = 0.05


def still_running(pid: int) -> bool:
    """Whether ``pid`` is still running (not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchmarkError(f"no VmRSS for {pid}")


@dataclass
class LoadRun:
    latency_ms: float = 0.0
    fds: dict[str, int] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)
    maxrss_mib: float = 0.0
    junk_cpu_ms: float = 0.0


class JunkProcess:
    def __init__(self, port: int, idle: int, junk: int) -> None:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = str(REPO_ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.junk", str(port), str(idle), str(junk)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchmarkError(f"the load process did not say {prefix!r} within {timeout} s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise BenchmarkError(f"the load process ended before {prefix!r}")
            if line.startswith(prefix):
                return line

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise BenchmarkError("the load process did not exit") from None


MODES = ("idle", "idle, error page", "after junk", "during junk")
JUNK_MODES = ("after junk", "during junk")
DENIED_MODE = "idle, error page"


def cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def one_run(issuer: RawIssuer, root: Path, mode: str, idle: int, junk: int) -> LoadRun:
    result = LoadRun()
    login = LoginProcess(issuer.url, root)
    load: JunkProcess | None = None
    try:
        login.wait_ready()
        wait_until_idle(login.pid)
        pid = login.pid
        result.fds["before"] = open_fds(pid)
        result.rss_mib["before"] = rss_kib(pid) / 1024
        load = JunkProcess(login.port, idle, junk if mode in JUNK_MODES else 0)
        connected = int(load.expect("idle ", 60).split()[1])
        if connected != idle:
            raise BenchmarkError(f"only {connected} of {idle} idle connections could be opened")
        deadline = time.monotonic() + 10
        while open_fds(pid) < result.fds["before"] + idle and time.monotonic() < deadline:
            time.sleep(SAMPLE_SECONDS)  # until the server has accepted them all
        # Accepting is not the end of it: each connection is then set up on the loop. "Idle connections
        # open" means that is done, so wait until the server is quiet again.
        wait_until_idle(pid)
        result.fds["with idle connections"] = open_fds(pid)
        cpu_before = cpu_ms(pid)
        load.go()
        if mode == "during junk":
            load.expect("half", 60)
        elif mode == "after junk":
            load.expect("junk-done", 60)
        denied = mode == DENIED_MODE
        reply = browser_get(login.port, login.denied_target() if denied else login.success_target())
        issuer_seconds = sum(s.seconds for s in issuer.served_between(reply.started, reply.finished))
        if reply.status != (200 if denied else 302):
            raise BenchmarkError(f"the real callback under load got {reply.status}: {reply.body[:200]!r}")
        result.latency_ms = (reply.seconds - issuer_seconds) * 1000
        # The peak so far: the error page ends the attempt, so that process may be exiting by now.
        peak_fds, peak_rss = result.fds["with idle connections"], rss_kib(pid) if still_running(pid) else 0
        while mode != "after junk":
            if still_running(pid):
                peak_fds = max(peak_fds, open_fds(pid))
                peak_rss = max(peak_rss, rss_kib(pid))
            try:
                line = load.lines.get(timeout=SAMPLE_SECONDS)
            except queue.Empty:
                continue
            if line is None:
                raise BenchmarkError("the load process ended before finishing its junk")
            if line == "junk-done":
                break
        result.junk_cpu_ms = cpu_ms(pid) - cpu_before
        if still_running(pid):
            peak_fds, peak_rss = max(peak_fds, open_fds(pid)), max(peak_rss, rss_kib(pid))
            result.fds["after the junk"] = open_fds(pid)
        result.fds["peak"] = peak_fds
        result.rss_mib["peak"] = max(peak_rss / 1024, result.rss_mib["before"])
        result.summary = json.loads(load.expect("{", 60))
        load.finish()
        # The attempt settles by itself 10 s after the 302 when no browser fetches /success; under heavy load
        # the idle connections may outlive that, so the process may be gone by now.
        if still_running(pid):
            result.fds["after the idle ones were closed"] = open_fds(pid)
            result.rss_mib["after"] = rss_kib(pid) / 1024
            if not denied:
                page = browser_get(login.port, "/success")
                if page.status != 200:
                    raise BenchmarkError(f"/success answered {page.status}")
        code, maxrss, _ = login.finish()
        if code != (1 if denied else 0):
            raise BenchmarkError(f"codex-login exited {code}: {login.stderr_lines[-10:]!r}")
        result.maxrss_mib = maxrss / 1024
    except BaseException:
        login.kill()
        if load is not None and load.proc.poll() is None:
            load.proc.kill()
            load.proc.wait(10)
        raise
    return result


def run(runs: int, idle: int = 1000, junk: int = 1000) -> Section:
    section = Section("load")
    results: dict[str, list[LoadRun]] = {mode: [] for mode in MODES}
    with RawIssuer() as issuer, tempfile.TemporaryDirectory(prefix="codex-login-bench-load-") as tmp:
        for index in range(runs):
            for mode in MODES:
                path = Path(tmp) / f"{mode.replace(' ', '-')}-{index}"
                results[mode].append(one_run(issuer, path, mode, idle, junk))
    labels = {
        "idle": f"callback, {idle} idle connections open",
        DENIED_MODE: f"error-page callback (access_denied), {idle} idle connections open",
        "after junk": f"callback right after {junk} junk requests ({idle} idle open)",
        "during junk": f"callback amid {junk} junk requests ({idle} idle open)",
    }
    for mode in MODES:
        latencies = [r.latency_ms for r in results[mode]]
        section.rows.append(
            Row("load", labels[mode] + " (median)", median(latencies), "ms",
                target=f"<= {LATENCY_TARGET_MS:g} ms", ok=median(latencies) <= LATENCY_TARGET_MS)
        )
    everything = [r for mode in MODES for r in results[mode]]
    with_junk = [r for mode in JUNK_MODES for r in results[mode]]
    all_closed = all(r.summary.get("idle_closed") == idle for r in everything) and all(
        r.summary.get("junk_closed") == junk and r.summary.get("junk_answered") == junk for r in with_junk
    )
    measured_after = [r for r in everything if "after the idle ones were closed" in r.fds]
    back_to_start = all(r.fds["after the idle ones were closed"] <= r.fds["before"] + 2 for r in measured_after)
    rss_growth = max(r.rss_mib["peak"] - r.rss_mib["before"] for r in everything)
    per_junk = median([r.junk_cpu_ms / junk for r in with_junk])
    section.rows.append(
        Row("load", "every junk and idle connection answered/closed by the server", float(all_closed), "",
            target="all", ok=all_closed)
    )
    section.rows.append(
        Row("load", "server fds back to the start afterwards", float(back_to_start), "", target="yes",
            ok=back_to_start if measured_after else None)
    )
    section.rows.append(
        Row("load", "RSS growth under load (max)", rss_growth, "MiB",
            baseline=max(r.rss_mib["before"] for r in everything), baseline_name="RSS before")
    )
    section.rows.append(Row("load", "server CPU per junk request (median)", per_junk, "ms"))
    section.notes.append(
        f"{runs} run(s) per moment; junk sent with at most 200 requests in flight; latencies minus the token "
        "endpoint's own time; fds/RSS of the codex-login process (1 = yes in the yes/no rows)"
    )
    for mode in MODES:
        for index, r in enumerate(results[mode]):
            section.notes.append(
                f"{mode} #{index + 1}: callback {r.latency_ms:.2f} ms; fds "
                + ", ".join(f"{k} {v}" for k, v in r.fds.items())
                + "; RSS "
                + ", ".join(f"{k} {v:.1f}" for k, v in r.rss_mib.items())
                + f" MiB; peak RSS of the process {r.maxrss_mib:.1f} MiB"
            )
            s = r.summary
            section.notes.append(
                f"  junk {s.get('junk')}: answered {s.get('junk_answered')}, closed by the server "
                f"{s.get('junk_closed')}, slowest {float(str(s.get('junk_seconds_max', 0))):.2f} s; idle "
                f"{s.get('idle')}: closed by the server {s.get('idle_closed')} after at most "
                f"{float(str(s.get('idle_closed_after_max', 0))):.1f} s; server CPU during the junk "
                f"{r.junk_cpu_ms:.0f} ms"
            )
            if s.get("statuses"):
                section.notes.append(f"  answers by kind: {json.dumps(s.get('statuses'), sort_keys=True)}")
    return section
