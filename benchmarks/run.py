"""Run the codex-login benchmarks and print one table: medians, and ratios to baselines measured in the same run.

    .venv/bin/python -m benchmarks.run            # everything (several minutes)
    .venv/bin/python -m benchmarks.run --quick    # fewer rounds, for a first look
    .venv/bin/python -m benchmarks.run --only startup,callback

Benchmarks: ``startup`` (``--help`` and ``status`` against ``python -c pass``), ``callback`` (callback latency
and the peak RSS of a whole sign-in), ``load`` (1,000 idle connections and 1,000 junk requests),
``e2e`` (a whole sign-in with the real test issuer and headless Chromium, split into phases).

Nothing here is part of the test suite, and nothing asserts a time: the table says which targets were met on
this machine, in this run. The exit status is 0 unless a benchmark could not run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # ``python benchmarks/run.py``: make the ``benchmarks`` and ``tests`` packages importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    CONSOLE_SCRIPT,
    REPO_ROOT,
    Section,
    load_average,
    machine_lines,
    render_table,
    script_interpreter,
)

ALL = ("startup", "callback", "load", "e2e")


def _python_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.strip()


def _reexec_in_venv() -> None:
    """``python benchmarks/run.py`` with an interpreter codex-login is not installed in (a pyenv shim, the
    system Python): run again with the repository's ``.venv/bin/python``, the one the benchmarks measure."""
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    if CONSOLE_SCRIPT.exists() or not venv_python.exists():
        return
    os.chdir(REPO_ROOT)
    os.execv(venv_python, [str(venv_python), "-m", "benchmarks.run", *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    _reexec_in_venv()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and attempts (noisier)")
    parser.add_argument("--rounds", type=int, default=None, help="start-up rounds (default 100; quick 20)")
    parser.add_argument("--attempts", type=int, default=None, help="callback attempts per kind (default 100; quick 15)")
    parser.add_argument("--load-runs", type=int, default=None, help="load runs per moment (default 3; quick 1)")
    parser.add_argument("--sign-ins", type=int, default=None, help="full sign-ins (default 3; quick 1)")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    rounds = args.rounds or (20 if args.quick else 100)
    attempts = args.attempts or (15 if args.quick else 100)
    load_runs = args.load_runs or (1 if args.quick else 3)
    sign_ins = args.sign_ins or (1 if args.quick else 3)

    # Children never see it (see common.bench_env); dropping it here too keeps this process's imports cached.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    python = script_interpreter()
    print("codex-login benchmarks")
    for line in machine_lines(python, _python_version(python)):
        print(f"  {line}")
    print(flush=True)

    sections: list[Section] = []
    started = time.monotonic()
    if "startup" in chosen:
        from benchmarks import startup

        print(f"start-up: {rounds} rounds...", flush=True)
        sections.append(startup.run(rounds))
    if "callback" in chosen:
        from benchmarks import callback

        print(f"callback latency and memory: {attempts} attempts of each kind...", flush=True)
        sections.extend(callback.run(attempts))
    if "load" in chosen:
        from benchmarks import load

        print(f"load: {load_runs} run(s) per moment...", flush=True)
        sections.append(load.run(load_runs))
    if "e2e" in chosen:
        from benchmarks import e2e

        print(f"full sign-in with oidc-provider and Chromium: {sign_ins} run(s)...", flush=True)
        sections.append(e2e.run(sign_ins))
    print()
    print(render_table(sections))
    print()
    print(f"finished in {time.monotonic() - started:.0f} s; load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
