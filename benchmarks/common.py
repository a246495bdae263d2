"""What every benchmark shares: the interpreter and console script under test, a clean environment,
measured child processes, statistics, the machine description and the results table."""

from __future__ import annotations

import math
import os
import platform
import re
import select
import signal
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The console script installed beside the interpreter running the benchmarks (``.venv/bin/codex-login``).
CONSOLE_SCRIPT = Path(sys.executable).parent / "codex-login"
_SHEBANG = re.compile(rb"#!(\S+)")


class BenchmarkError(RuntimeError):
    """A benchmark could not run (missing console script, a subprocess that misbehaved...)."""


def console_script() -> Path:
    if not CONSOLE_SCRIPT.exists():
        raise BenchmarkError(
            f"{CONSOLE_SCRIPT} does not exist: run the benchmarks with the interpreter of the environment "
            "codex-login is installed in, e.g. `.venv/bin/python -m benchmarks.run`"
        )
    return CONSOLE_SCRIPT


def script_interpreter() -> str:
    """The interpreter the console script runs (its shebang): the baselines must use exactly this one,
    not a shim or another Python that happens to be first on PATH."""
    head = console_script().read_bytes()[:512]
    match = _SHEBANG.match(head)
    if match is None:
        raise BenchmarkError(f"{CONSOLE_SCRIPT} has no #! line")
    return os.fsdecode(match.group(1))


def bench_env(home: Path, codex_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child environment like a user's, but isolated: own HOME and CODEX_HOME, no proxies, no RUST_LOG.

    ``PYTHONDONTWRITEBYTECODE`` is dropped: with it set every start recompiles every module, which no
    installed copy does (an installed package has its bytecode compiled).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy")
        and not key.startswith(("CODEX_", "E2E_"))
        and key not in {"PYTHONDONTWRITEBYTECODE", "RUST_LOG", "COLUMNS", "LINES", "PYTHONPROFILEIMPORTTIME"}
    }
    env.update({
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        "BROWSER": "true",
        # Never touch a real keyring (file mode does not, but a stray config must not either).
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    })
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class ChildRun:
    """One finished child process: wall time, CPU time (user + system), peak RSS and exit code."""

    wall: float
    cpu: float
    maxrss_kib: int
    exit_code: int


def reap(pid: int) -> tuple[int, float, int]:
    """Wait for ``pid``: (exit code, CPU seconds, peak RSS in KiB) from ``wait4``'s rusage of that child."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def run_child(argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 30.0) -> ChildRun:
    """Spawn ``argv`` with stdin, stdout and stderr on /dev/null, wait for it (killed after ``timeout``)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
        started = time.perf_counter()
        pid = os.posix_spawn(argv[0], list(argv), dict(env), file_actions=actions)
    finally:
        os.close(devnull)
    if not wait_exit(pid, timeout):
        os.kill(pid, signal.SIGKILL)
        reap(pid)
        raise BenchmarkError(f"{list(argv)!r} did not finish within {timeout} s")
    code, cpu, rss = reap(pid)
    return ChildRun(time.perf_counter() - started, cpu, rss, code)


def wait_exit(pid: int, timeout: float) -> bool:
    """Whether child ``pid`` exits within ``timeout`` seconds (it is not reaped: call :func:`reap`).

    A pidfd becomes readable the moment the process exits, so this neither polls nor adds a thread.
    """
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(pidfd)


# ------------------------------------------------------------------------------------ codex-login.log


def log_instants(log_path: Path) -> dict[str, float]:
    """Seconds since the epoch of each message of ``codex-login.log`` (its first occurrence), parsed with
    ``parse_text_line``. ``api key exchange succeeded`` and ``failed`` both count as ``api key exchange``: the
    issuer decides which, and either ends that step."""
    from codex_login.diagnostics.format import parse_text_line

    marks: dict[str, float] = {}
    for line in log_path.read_text(encoding="utf-8").splitlines():
        parsed = parse_text_line(line)
        if parsed is None:
            raise BenchmarkError(f"not a log line: {line!r}")
        message = parsed.message
        if message.startswith("api key exchange"):
            message = "api key exchange"
        marks.setdefault(message, parsed.timestamp.timestamp())
    return marks


# ------------------------------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


# ------------------------------------------------------------------------------------------ results


@dataclass
class Row:
    """One line of the results table."""

    benchmark: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    ok: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or math.isnan(self.baseline):
            return None
        return self.value / self.baseline


@dataclass
class Section:
    """The rows of one benchmark plus free-form lines (details, caveats)."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:g} {unit}".strip()


def render_table(sections: Sequence[Section]) -> str:
    """A plain-text table: medians (or the named statistic), baselines of the same run and ratios."""
    header = ("benchmark", "metric", "value", "baseline (same run)", "ratio", "target", "met")
    lines: list[tuple[str, ...]] = [header]
    for section in sections:
        for row in section.rows:
            base = "" if row.baseline is None else f"{_fmt(row.baseline, row.unit)} {row.baseline_name}".strip()
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
            met = "" if row.ok is None else ("yes" if row.ok else "NO")
            lines.append((row.benchmark, row.metric, _fmt(row.value, row.unit), base, ratio, row.target, met))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    for section in sections:
        if section.notes:
            out.append("")
            out.append(f"{section.title}:")
            out.extend(f"  {note}" for note in section.notes)
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_lines(python: str, python_version: str) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"nproc: {usable} (os.cpu_count {os.cpu_count()})",
        f"CPU: {cpu_model()}",
        f"Python: {python_version} ({python})",
        f"OS: {platform.system()} {platform.release()} {platform.machine()}",
        f"load average at start: {load_average()}",
    ]
