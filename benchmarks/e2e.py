"""A whole browser sign-in with the real test issuer (oidc-provider) and headless Chromium, split into phases.

``codex-login --issuer URL --port 0`` runs as a user would run it, with ``BROWSER`` set to the scripted browser
agent (``tests/support/browser_agent.py``: headless Chromium that signs in and consents on the issuer's pages).
The time split comes from the log's own timestamps (``$CODEX_HOME/log/codex-login.log``, parsed with
``parse_text_line``), plus the spawn and exit instants taken by the benchmark on the same (system) clock:

* start-up: spawn -> ``login server listening`` (the URL exists);
* browser: ``login server listening`` -> ``received login callback`` (Chromium starts, loads the issuer's
  pages, signs in and consents: the issuer and the browser, not codex-login);
* callback: ``received login callback`` -> ``starting oauth token exchange``;
* token exchange: -> ``oauth token exchange succeeded`` (the issuer's token endpoint included);
* API-key exchange: -> ``api key exchange succeeded``/``failed``;
* save: -> ``credentials saved``;
* browser fetches ``/success``: -> ``login finished`` (Chromium follows the 302 and loads the page);
* exit: -> the process has exited (the benchmark's clock).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import BenchmarkError, Row, Section, bench_env, console_script, log_instants, median

PHASES = (
    ("start-up", "spawn", "login server listening"),
    ("browser (Chromium + issuer pages)", "login server listening", "received login callback"),
    ("callback handling", "received login callback", "starting oauth token exchange"),
    ("token exchange", "starting oauth token exchange", "oauth token exchange succeeded"),
    ("API-key exchange", "oauth token exchange succeeded", "api key exchange"),
    ("save", "api key exchange", "credentials saved"),
    ("browser fetches /success", "credentials saved", "login finished"),
    ("exit", "login finished", "exit"),
    ("total", "spawn", "exit"),
)


def _instants(log_path: Path, spawn: float, exit_: float) -> dict[str, float]:
    """Seconds since the epoch of each phase boundary: the log's (first occurrence of each message), spawn, exit."""
    return {"spawn": spawn, "exit": exit_, **log_instants(log_path)}


def one_sign_in(issuer_url: str, root: Path) -> dict[str, float]:
    from tests.support.browser_agent import agent_env, browser_command, wait_for_result

    home = root / "home"
    codex_home = root / "codex-home"
    results = root / "browser"
    for directory in (home / ".config", home / ".cache", home / ".local" / "share", codex_home, results):
        directory.mkdir(parents=True, exist_ok=True)
    env = bench_env(
        home,
        codex_home,
        {
            "BROWSER": browser_command(),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            **agent_env(results, script="signin", timeout=60, issuer=issuer_url),
        },
    )
    # Output to files, not pipes: the browser command inherits codex-login's stdout and stderr (as a terminal
    # browser must), and waiting for a pipe's end would time the browser agent's exit, not codex-login's.
    with (root / "stdout").open("w+b") as out, (root / "stderr").open("w+b") as err:
        spawn = time.time()
        proc = subprocess.run(
            [str(console_script()), "--issuer", issuer_url, "--port", "0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=180,
            check=False,
        )
        exit_ = time.time()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0 or "Successfully logged in" not in stderr:
        raise BenchmarkError(f"the sign-in failed (exit {proc.returncode}): {stderr[-3000:]}")
    agent = wait_for_result(results, 30)
    if not agent.ok:
        raise BenchmarkError(agent.describe())
    marks = _instants(codex_home / "log" / "codex-login.log", spawn, exit_)
    missing = {start for _, start, _ in PHASES} | {end for _, _, end in PHASES}
    missing -= set(marks)
    if missing:
        raise BenchmarkError(f"the log lacks {sorted(missing)}")
    return {name: (marks[end] - marks[start]) * 1000 for name, start, end in PHASES}


def run(runs: int) -> Section:
    from tests.support.issuer import TestIssuer

    section = Section("full sign-in (oidc-provider + Chromium)")
    splits: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="codex-login-bench-e2e-") as tmp,
        TestIssuer(log_path=Path(tmp) / "issuer.log") as issuer,
    ):
        for index in range(runs):
            splits.append(one_sign_in(issuer.url, Path(tmp) / f"run-{index}"))
    for name, _, _ in PHASES:
        values = [split[name] for split in splits]
        section.rows.append(Row("sign-in", f"{name} (median)", median(values), "ms"))
    section.notes.append(
        f"{runs} sign-in(s); phases from codex-login.log timestamps (microseconds), spawn/exit from the "
        "benchmark on the same clock"
    )
    for index, split in enumerate(splits):
        section.notes.append(f"run {index + 1}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in split.items()))
    return section
