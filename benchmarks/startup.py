"""Start-up: ``codex-login --help`` and ``codex-login status`` against ``python -c pass``.

Every command is started as a fresh process, many times, interleaved with the baselines in the same run
(each round runs every command once, in a shuffled order), and timed from spawn to exit (wall) and by the
child's own CPU time (user + system from ``wait4``; less sensitive to other load on the machine).

The commands run through the installed console script: the project's own ``bin/codex-login`` (``sys`` and
``codex_login.cli`` only), with the interpreter its ``#!`` names. The second baseline, ``python -c "import re"``,
is what pip's generated console-script wrapper would add before codex-login even starts (its template begins
with ``import re``): that is why the project ships its own.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    BenchmarkError,
    Row,
    Section,
    bench_env,
    console_script,
    median,
    run_child,
    script_interpreter,
)
from benchmarks.issuer import chatgpt_tokens

TARGET_RATIO = 1.3


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    env: dict[str, str]
    #: Whether the ratio target applies (the baselines themselves have none).
    targeted: bool
    expect_exit: int


def write_homes(root: Path) -> dict[str, Path]:
    """Four CODEX_HOMEs: nothing stored, a ChatGPT sign-in, an API key, a ChatGPT sign-in with a config.toml."""
    from codex_login.storage import AuthDotJson, FileStore, TokenData

    homes = {name: root / name for name in ("logged-out", "chatgpt", "apikey", "chatgpt-config")}
    for path in homes.values():
        path.mkdir(mode=0o700)
    tokens = chatgpt_tokens()
    for name in ("chatgpt", "chatgpt-config"):
        FileStore(homes[name]).save(
            AuthDotJson.from_chatgpt_tokens(
                TokenData.from_tokens(tokens["id_token"], tokens["access_token"], tokens["refresh_token"]),
                api_key="sk-bench-" + "k" * 40,
            )
        )
    # What a Codex user's config.toml looks like: parsing it needs tomllib (which imports typing).
    (homes["chatgpt-config"] / "config.toml").write_text(
        'model = "gpt-5-codex"\nmodel_reasoning_effort = "high"\ncli_auth_credentials_store = "file"\n\n'
        '[projects."/home/user/src"]\ntrust_level = "trusted"\n',
        encoding="utf-8",
    )
    FileStore(homes["apikey"]).save(AuthDotJson.from_api_key("sk-proj-" + "a" * 48))
    return homes


def _commands(root: Path) -> list[Command]:
    python = script_interpreter()
    script = str(console_script())
    homes = write_homes(root)
    user_home = root / "user-home"
    user_home.mkdir()

    def env(home: str) -> dict[str, str]:
        return bench_env(user_home, homes[home])

    return [
        Command("python -c pass", [python, "-c", "pass"], env("logged-out"), False, 0),
        Command('python -c "import re"', [python, "-c", "import re"], env("logged-out"), False, 0),
        Command("--help", [script, "--help"], env("logged-out"), True, 0),
        Command("status logged out", [script, "status"], env("logged-out"), True, 1),
        Command("status ChatGPT", [script, "status"], env("chatgpt"), True, 0),
        Command("status API key", [script, "status"], env("apikey"), True, 0),
        Command("status ChatGPT + config.toml", [script, "status"], env("chatgpt-config"), True, 0),
    ]


def _check_outputs(commands: list[Command]) -> None:
    """Each command must do its real job (right exit code, right first line) before it is timed."""
    expected = {"status logged out": "Not logged in", "status ChatGPT": "Logged in using ChatGPT"}  # prefixes
    for command in commands:
        proc = subprocess.run(command.argv, env=command.env, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != command.expect_exit:
            raise BenchmarkError(f"{command.name}: exit {proc.returncode}, stderr: {proc.stderr[-2000:]}")
        for prefix, line in expected.items():
            if command.name.startswith(prefix) and not proc.stderr.startswith(line):
                raise BenchmarkError(f"{command.name}: unexpected output {proc.stderr[:300]!r}")
        if command.name.startswith("status API key") and "Logged in using an API key - sk-proj-***" not in proc.stderr:
            raise BenchmarkError(f"{command.name}: unexpected output {proc.stderr[:300]!r}")
        if command.name.startswith("--help") and not proc.stdout.startswith("usage: codex-login"):
            raise BenchmarkError(f"{command.name}: unexpected output {proc.stdout[:300]!r}")


def run(rounds: int, seed: int = 9) -> Section:
    section = Section("start-up")
    with tempfile.TemporaryDirectory(prefix="codex-login-bench-startup-") as tmp:
        commands = _commands(Path(tmp))
        _check_outputs(commands)
        wall: dict[str, list[float]] = {c.name: [] for c in commands}
        cpu: dict[str, list[float]] = {c.name: [] for c in commands}
        order = list(commands)
        shuffle = random.Random(seed)
        for command in commands:  # one untimed warm-up each: page cache, bytecode already compiled
            run_child(command.argv, command.env)
        for _ in range(rounds):
            shuffle.shuffle(order)
            for command in order:
                result = run_child(command.argv, command.env)
                if result.exit_code != command.expect_exit:
                    raise BenchmarkError(f"{command.name} exited {result.exit_code}")
                wall[command.name].append(result.wall * 1000)
                cpu[command.name].append(result.cpu * 1000)
    base_wall = median(wall["python -c pass"])
    base_cpu = median(cpu["python -c pass"])
    for command in commands:
        value = median(wall[command.name])
        ratio = value / base_wall
        section.rows.append(
            Row(
                "start-up",
                command.name + " (wall, median)",
                value,
                "ms",
                baseline=base_wall,
                baseline_name="python -c pass",
                target=f"<= {TARGET_RATIO}x" if command.targeted else "",
                ok=(ratio <= TARGET_RATIO) if command.targeted else None,
            )
        )
    section.notes.append(
        f"{rounds} interleaved rounds; PYTHONDONTWRITEBYTECODE unset (bytecode compiled, as installed); "
        f"interpreter {script_interpreter()}"
    )
    section.notes.append("CPU time (user+system of the child, median) and its ratio to python -c pass:")
    for command in commands:
        value = median(cpu[command.name])
        section.notes.append(f"  {command.name}: {value:.2f} ms ({value / base_cpu:.2f}x)")
    return section
