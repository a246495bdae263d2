"""``codex-login bundle [-o FILE] [--yes]``: write a redacted support bundle (see :mod:`codex_login.bundle`).

Steps: run the doctor (spinner on stderr when it is a terminal), collect the members, scan every member for
secret patterns (a hit refuses the bundle: exit 1, naming the member and the pattern class only), show on
stderr what the bundle will contain, then write it. When stdin is a terminal it asks ``[y/N]`` first unless
``--yes``; when stdin is not a terminal (a script, a pipe) it writes without asking.

The default file is ``codex-login-bundle-<UTC time>.zip`` in the current directory; ``-o FILE`` names it,
``-o DIR`` puts the default name in DIR. An existing file is never overwritten. Everything this command
prints goes to stderr. Exit 0 when the bundle was written, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import config_from_args, err


def _confirm(question: str) -> bool:
    print(question, end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        print(file=sys.stderr)
        return False
    return answer.strip().lower() in ("y", "yes")


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config is None:
        return 1
    from ..bundle import build_bundle, default_bundle_name, scan_bundle, write_bundle
    from ..diagnostics.redact import sanitize_terminal_text
    from ..doctor import run_doctor
    from .doctor import Spinner

    spinner = Spinner(sys.stderr)
    try:
        report = run_doctor(config, progress=spinner.update)
        spinner.update("collecting the bundle")
        bundle = build_bundle(config, doctor=report)
    finally:
        spinner.stop()

    hits = scan_bundle(bundle)
    if hits:
        for hit in hits:
            err(f"Refusing to write the bundle: {hit.member} contains text that looks like a secret ({hit.pattern}).")
        err("Nothing was written. Check that file by hand before sharing anything from it.")
        return 1

    target = Path(args.output) if args.output else Path(default_bundle_name(bundle.created))
    if target.is_dir():
        target = target / default_bundle_name(bundle.created)
    for line in bundle.preview_lines():
        err(sanitize_terminal_text(line))
    err("Every member was scanned for secret patterns (tokens, keys, codes, authorization headers): none found.")
    asked = not args.yes and _stdin_is_terminal()
    if asked and not _confirm(sanitize_terminal_text(f"Write it to {target}? [y/N] ")):
        err("Nothing was written.")
        return 1
    data = bundle.to_zip_bytes()
    try:
        write_bundle(data, target)
    except FileExistsError:
        err(sanitize_terminal_text(f"Error: {target} already exists; choose another name with -o FILE."))
        return 1
    except OSError as exc:
        err(sanitize_terminal_text(f"Error: could not write {target}: {exc.strerror or exc}"))
        return 1
    err(sanitize_terminal_text(f"Wrote {target} ({len(data)} bytes, mode 0600). Send this file to support."))
    return 0
