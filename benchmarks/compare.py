"""Compare this working tree with a git revision, interleaved: the success callback and ``status``.

    .venv/bin/python -m benchmarks.compare main            # 60 rounds (about 3 minutes)
    .venv/bin/python -m benchmarks.compare HEAD~3 --rounds 100
    .venv/bin/python -m benchmarks.compare /tmp/experiment # a patched copy of src/ and bin/

Medians move by a millisecond or more between runs on a shared VM, so two separate ``benchmarks.run`` tables
cannot show a change of that size. Here each round runs both versions back to back, in a shuffled order, so
both see the same machine: the revision from a temporary ``git worktree`` (or a directory holding a copy of
``src/`` and ``bin/``, patched for an experiment), this tree from the repository,
each run as ``python <tree>/bin/codex-login`` with its own ``src`` first on ``PYTHONPATH`` (the installed console
script may not match an older revision's package). Same measurements as ``callback`` (the success path minus
the token endpoint's own time, against the raw issuer, with its steps; and, of the same sign-ins, the time
from the spawn to the authorize URL and the process's CPU time) and ``startup`` (``status`` wall time, signed
out and with a ChatGPT sign-in), same interpreter.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.callback import SUCCESS_STEPS, Attempts, one_attempt
from benchmarks.common import REPO_ROOT, bench_env, median, percentile, run_child, script_interpreter
from benchmarks.issuer import RawIssuer
from benchmarks.startup import write_homes

VERSIONS = ("revision", "this tree")


def _compiled(src: Path) -> Path:
    """``src``, its modules compiled (as this tree's are after a first run)."""
    subprocess.run([script_interpreter(), "-m", "compileall", "-q", str(src)], check=True, timeout=120)
    return src


def _worktree(revision: str, into: Path) -> Path:
    """The revision checked out at ``into``; its ``src``, compiled."""
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "--quiet", str(into), revision],
        check=True,
        timeout=120,
    )
    return _compiled(into / "src")


def _remove_worktree(path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(path)], check=False, timeout=120
    )


def _status_homes(root: Path) -> dict[str, Path]:
    """Two of the start-up benchmark's CODEX_HOMEs: nothing stored, a ChatGPT sign-in."""
    homes = write_homes(root)
    return {"signed out": homes["logged-out"], "ChatGPT": homes["chatgpt"]}


class Comparison:
    """The measurements of both versions, and how to take one of each."""

    def __init__(self, root: Path, revision_src: Path, issuer: RawIssuer) -> None:
        self.root = root
        self.revision_src = revision_src
        self.issuer = issuer
        self.python = script_interpreter()
        self.home = root / "home"
        self.home.mkdir()
        self.status_homes = _status_homes(root)
        self.callbacks = {version: Attempts() for version in VERSIONS}
        self.status: dict[tuple[str, str], list[float]] = {(h, v): [] for h in self.status_homes for v in VERSIONS}
        self.baseline: list[float] = []
        self._attempts = 0

    def tree_of(self, version: str) -> Path:
        return self.revision_src.parent if version == "revision" else REPO_ROOT

    def env_of(self, version: str) -> dict[str, str]:
        # Each version's src first on the path (this tree's too, so both search the same path entries).
        return {"PYTHONPATH": str(self.tree_of(version) / "src")}

    def command_of(self, version: str) -> list[str]:
        return [self.python, str(self.tree_of(version) / "bin" / "codex-login")]

    def steps(self) -> list[tuple[str, str, str]]:
        """One round: (what, version, status home) for everything measured, in a shuffled order."""
        steps = [("pass", "", "")]
        for version in VERSIONS:
            steps.append(("callback", version, ""))
            steps += [("status", version, label) for label in self.status_homes]
        random.shuffle(steps)
        return steps

    def measure(self, what: str, version: str, label: str) -> None:
        if what == "pass":
            run = run_child([self.python, "-c", "pass"], bench_env(self.home, self.home))
            self.baseline.append(run.wall * 1000)
        elif what == "status":
            env = bench_env(self.home, self.status_homes[label], self.env_of(version))
            self.status[(label, version)].append(run_child([*self.command_of(version), "status"], env).wall * 1000)
        else:
            self._attempts += 1
            root = self.root / f"callback-{self._attempts}"
            one_attempt(
                self.issuer,
                root,
                success=True,
                into=self.callbacks[version],
                extra_env=self.env_of(version),
                command=self.command_of(version),
            )

    def report(self, revision: str, rounds: int) -> list[str]:
        base = median(self.baseline)
        lines = [
            f"{rounds} interleaved rounds; {revision} (revision) against this tree",
            f"  python -c pass: {base:.2f} ms",
        ]
        for version in VERSIONS:
            data = self.callbacks[version].latency_ms
            lines.append(
                f"  success callback minus token endpoint, {version}: median {median(data):.2f} ms, "
                f"p90 {percentile(data, 90):.2f} ms, min {min(data):.2f} ms"
            )
        both = " / ".join(f"{median(self.callbacks[v].url_ms):.1f}" for v in VERSIONS)
        lines.append(f"  spawn -> authorize URL printed (median), revision / this tree: {both} ms")
        both = " / ".join(f"{median(self.callbacks[v].cpu_ms):.0f}" for v in VERSIONS)
        lines.append(f"  CPU time of a whole sign-in (median), revision / this tree: {both} ms")
        lines.append("  its steps (medians, from codex-login.log), revision / this tree:")
        for label, _, _ in SUCCESS_STEPS:
            both = " / ".join(f"{median([s[label] for s in self.callbacks[v].steps_ms]):.2f}" for v in VERSIONS)
            lines.append(f"    {label}: {both} ms")
        for label in self.status_homes:
            for version in VERSIONS:
                wall = median(self.status[(label, version)])
                lines.append(f"  status {label}, {version}: {wall:.2f} ms ({wall / base:.3f}x python -c pass)")
        return lines


def _other_tree(revision: str) -> Path | None:
    """``revision`` as a directory holding a copy of the project (``src/codex_login`` and ``bin/codex-login``:
    a patched copy, for an experiment), or None when it is a git revision."""
    path = Path(revision)
    if (path / "src" / "codex_login").is_dir() and (path / "bin" / "codex-login").is_file():
        return _compiled(path / "src")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__.splitlines()[0])
    parser.add_argument(
        "revision",
        help="a git revision to compare with (main, HEAD~2, a commit...), or a directory with a copy of the "
        "project's src/ and bin/ (a patched copy, for an experiment)",
    )
    parser.add_argument("--rounds", type=int, default=60, help="rounds; each runs every measurement of both")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codex-login-compare-") as tmp:
        root = Path(tmp)
        copy_src = _other_tree(args.revision)
        revision_src = copy_src or _worktree(args.revision, root / "revision")
        try:
            with RawIssuer() as issuer:
                comparison = Comparison(root, revision_src, issuer)
                for _ in range(args.rounds):
                    for step in comparison.steps():
                        comparison.measure(*step)
        finally:
            if copy_src is None:
                _remove_worktree(root / "revision")
    print("\n".join(comparison.report(args.revision, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
