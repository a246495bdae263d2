"""``codex-login log [--last N | --attempt ID] [--json]``: recent sign-in attempts as timelines.

Reads ``codex-login.log`` and its rotated generations under the configured ``log_dir`` (see
:mod:`codex_login.diagnostics.timeline`). The timelines go to stdout, oldest first (the most recent attempt
last, next to the prompt); ``--json`` prints one object ``{"log_dir", "files", "attempts": [...]}``.
Exit 0 when something was shown; 1 when the log holds no attempt (or not the one asked for), or the
configuration cannot be loaded; 2 for ``--last`` below 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from .common import config_from_args, err


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config is None:
        return 1
    from ..diagnostics.logfile import LOG_FILE_NAME
    from ..diagnostics.redact import sanitize_terminal_text
    from ..diagnostics.timeline import load_attempts, log_files, render_attempts

    if args.last is not None and args.last < 1:
        err("--last must be 1 or more")
        return 2
    log_path = config.log_dir / LOG_FILE_NAME
    attempts = load_attempts(config.log_dir)
    if args.attempt is not None:
        chosen = [attempt for attempt in attempts if attempt.attempt_id == args.attempt]
        missing = f"No attempt {sanitize_terminal_text(args.attempt, 64)} in {log_path} or its rotated files."
    else:
        chosen = attempts[-(args.last or 1):]
        missing = f"No sign-in attempts in {log_path} yet."
    if args.json:
        document = {
            "log_dir": str(config.log_dir),
            "files": [path.name for path in log_files(config.log_dir)],
            "attempts": [attempt.to_json() for attempt in chosen],
        }
        print(json.dumps(document, indent=2, ensure_ascii=True))
    elif chosen:
        sys.stdout.write(render_attempts(chosen))
        sys.stdout.flush()
    if not chosen:
        err(sanitize_terminal_text(missing))
        return 1
    if args.attempt is None and not args.json and len(attempts) > len(chosen):
        err(sanitize_terminal_text(
            f"(the last {len(chosen)} of {len(attempts)} attempts in {log_path}; use --last N for more)"
        ))
    return 0
