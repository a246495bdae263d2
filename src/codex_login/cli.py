"""The ``codex-login`` command: parse arguments, dispatch to one command module, print, exit.

Only argparse and the standard library are imported here; each command imports what it needs when it runs,
so ``codex-login status`` and ``--help`` start about as fast as the interpreter.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand -> "module:function". Modules are imported only when their command runs.
COMMANDS = {
    None: "codex_login.commands.login:run",
    "status": "codex_login.commands.status:run",
    "logout": "codex_login.commands.logout:run",
    "doctor": "codex_login.commands.doctor:run",
    "log": "codex_login.commands.log:run",
    "bundle": "codex_login.commands.bundle:run",
    "app-server": "codex_login.commands.app_server:run",
}

API_KEY_HINT = "printenv OPENAI_API_KEY | codex-login --with-api-key"


def _add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-c",
        "--config",
        dest="overrides",
        action="append",
        metavar="key=value",
        default=argparse.SUPPRESS if suppress else [],
        help="override a config.toml value (parsed as TOML, else taken as a string); repeatable",
    )
    parser.add_argument(
        "--issuer", metavar="URL", default=default, help="OAuth issuer (default https://auth.openai.com)"
    )
    parser.add_argument(
        "--client-id",
        metavar="ID",
        default=default,
        help="OAuth client ID (default app_EMoamEEZ73f0CkXaXp7hrann)",
    )
    # The reference's hidden spellings.
    parser.add_argument("--experimental_issuer", dest="issuer", default=default, help=argparse.SUPPRESS)
    parser.add_argument("--experimental_client-id", dest="client_id", default=default, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codex-login",
        description="Sign in to Codex (browser, device code or API key), check and diagnose sign-in.",
        epilog="Without a subcommand: sign in with the browser. "
        "Logs: $CODEX_HOME/log/codex-login.log (see `codex-login log`).",
    )
    _add_common(parser, suppress=False)
    flow = parser.add_argument_group("sign-in")
    flow.add_argument(
        "--device-auth", action="store_true", help="sign in with a device code (no local browser)"
    )
    flow.add_argument(
        "--with-api-key", action="store_true", help=f"read an API key from stdin (e.g. `{API_KEY_HINT}`)"
    )
    flow.add_argument("--api-key", metavar="API_KEY", help=argparse.SUPPRESS)
    flow.add_argument(
        "--port",
        type=int,
        default=None,
        metavar="N",
        help="loopback port for the browser callback (default 1455; 0 = any free port)",
    )
    flow.add_argument(
        "--no-browser", action="store_true", help="print the sign-in URL without opening a browser"
    )
    flow.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting for the browser after SECONDS (default 600; 0 = no limit)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = sub.add_parser("status", help="show whether and how you are signed in (exit 1 when not)")
    _add_common(status, suppress=True)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    logout = sub.add_parser("logout", help="remove stored credentials and revoke them at the issuer")
    _add_common(logout, suppress=True)

    doctor = sub.add_parser("doctor", help="check everything sign-in depends on")
    _add_common(doctor, suppress=True)
    doctor.add_argument("--json", action="store_true", help="machine-readable output")

    log = sub.add_parser("log", help="show recent sign-in attempts as timelines")
    _add_common(log, suppress=True)
    pick = log.add_mutually_exclusive_group()
    pick.add_argument("--last", type=int, default=None, metavar="N", help="the last N attempts (default 1)")
    pick.add_argument("--attempt", metavar="ID", help="one attempt by its ID (la_...)")
    log.add_argument("--json", action="store_true", help="machine-readable output")

    bundle = sub.add_parser("bundle", help="write a redacted support bundle (zip)")
    _add_common(bundle, suppress=True)
    bundle.add_argument("-o", "--output", metavar="FILE", help="where to write it")
    bundle.add_argument("--yes", action="store_true", help="write without asking after the preview")

    app = sub.add_parser("app-server", help="serve the sign-in API as JSON-RPC over stdio")
    _add_common(app, suppress=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None and (
        args.device_auth
        or args.with_api_key
        or args.port is not None
        or args.no_browser
        or args.timeout is not None
        or args.api_key is not None
    ):
        parser.error(f"sign-in options cannot be combined with `{args.command}`")
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.timeout is not None and args.timeout < 0:
        parser.error("--timeout must be 0 (no limit) or a positive number of seconds")
    module_name, _, func_name = COMMANDS[args.command].partition(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
