"""The ``codex-login`` command: parse arguments, dispatch to one command module, print, exit.

Also what every command uses to start: :func:`settings_from_args` (the configuration, with the reference's
error texts) and :func:`err`. Only argparse and the standard library are imported here (the configuration's
modules when it is loaded); each command imports what it needs when it runs.
``codex-login --help``, a plain ``codex-login status [--json]`` and a plain ``codex-login`` (the browser sign-in
with every default) do not even import argparse (see :func:`_fast_args`): importing it and building the parser
costs about half of what starting the interpreter does, and 25-30 ms before a sign-in prints its URL.
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import TextIO

    from ._settings import Settings

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


def _add_common(parser: "argparse.ArgumentParser", *, suppress: bool) -> None:
    import argparse

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


def build_parser() -> "argparse.ArgumentParser":
    import argparse

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


#: ``build_parser().format_help()`` at the width argparse picks for 80 columns (also its width when stdout is
#: not a terminal), as Python 3.11's argparse lays it out. tests/test_import_budget.py keeps it equal to the
#: parser's own text; any other width or Python version takes the argparse path.
HELP_TEXT_80_COLUMNS = """\
usage: codex-login [-h] [-c key=value] [--issuer URL] [--client-id ID]
                   [--device-auth] [--with-api-key] [--port N] [--no-browser]
                   [--timeout SECONDS]
                   COMMAND ...

Sign in to Codex (browser, device code or API key), check and diagnose sign-
in.

positional arguments:
  COMMAND
    status              show whether and how you are signed in (exit 1 when
                        not)
    logout              remove stored credentials and revoke them at the
                        issuer
    doctor              check everything sign-in depends on
    log                 show recent sign-in attempts as timelines
    bundle              write a redacted support bundle (zip)
    app-server          serve the sign-in API as JSON-RPC over stdio

options:
  -h, --help            show this help message and exit
  -c key=value, --config key=value
                        override a config.toml value (parsed as TOML, else
                        taken as a string); repeatable
  --issuer URL          OAuth issuer (default https://auth.openai.com)
  --client-id ID        OAuth client ID (default app_EMoamEEZ73f0CkXaXp7hrann)

sign-in:
  --device-auth         sign in with a device code (no local browser)
  --with-api-key        read an API key from stdin (e.g. `printenv
                        OPENAI_API_KEY | codex-login --with-api-key`)
  --port N              loopback port for the browser callback (default 1455;
                        0 = any free port)
  --no-browser          print the sign-in URL without opening a browser
  --timeout SECONDS     give up waiting for the browser after SECONDS (default
                        600; 0 = no limit)

Without a subcommand: sign in with the browser. Logs: $CODEX_HOME/log/codex-
login.log (see `codex-login log`).
"""
HELP_TEXT_PYTHON = (3, 11)


def terminal_columns() -> int:
    """The column count argparse formats help for (``shutil.get_terminal_size().columns``, without shutil)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return 80
    try:
        size = os.get_terminal_size(stdout.fileno())
    except (ValueError, OSError):
        return 80
    return size.columns or 80


def _stored_help_applies(argv: "Sequence[str]") -> bool:
    """``--help`` alone, where argparse would print exactly :data:`HELP_TEXT_80_COLUMNS`."""
    return (
        len(argv) == 1
        and argv[0] in ("-h", "--help")
        and sys.version_info[:2] == HELP_TEXT_PYTHON
        and terminal_columns() == 80
    )


class _Namespace:
    """Attributes, like ``argparse.Namespace`` (``types.SimpleNamespace`` would cost importing ``types``)."""

    command: str | None  # what main() dispatches on

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def _fast_args(argv: "Sequence[str]") -> _Namespace | None:
    """The namespace argparse would build for exactly nothing (the browser sign-in), ``status`` or
    ``status --json``, else None.

    Only those spellings are taken here: abbreviations, ``-c`` overrides, options before the subcommand and
    every error go through argparse, so its texts and exit codes stay the only ones.
    """
    if argv and (argv[0] != "status" or len(argv) > 2 or (len(argv) == 2 and argv[1] != "--json")):
        return None
    # Attribute for attribute what ``build_parser().parse_args(argv)`` returns (a test compares them).
    defaults = _Namespace(
        overrides=[],
        issuer=None,
        client_id=None,
        device_auth=False,
        with_api_key=False,
        api_key=None,
        port=None,
        no_browser=False,
        timeout=None,
        command=None,
    )
    if argv:
        defaults.__dict__.update(command="status", json=len(argv) == 2)
    return defaults


def err(line: str, stream: "TextIO | None" = None) -> None:
    """Print one line to stderr (the reference prints all login messages there).

    A message that cannot be shown is dropped, never a reason to fail: stderr closed at start (``2>&-``,
    ``sys.stderr`` is None; print would then write to stdout, into ``status --json``), or its reader gone
    (``codex-login 2>&1 | head -1``: a sign-in that saved its credentials still exits 0).
    """
    target = stream if stream is not None else sys.stderr
    if target is None:
        return
    # The last net before the terminal (DECISIONS §4): no registered secret in a message, whatever detail it
    # carries. Nothing is registered before the redaction module is loaded (``status`` never loads it).
    redact = sys.modules.get("codex_login.diagnostics.redact")
    if redact is not None:
        line = redact.SECRETS.scrub(line)
    try:
        print(line, file=target, flush=True)
    except OSError as err:
        import errno  # here: `status` starts without it

        # The reader is gone (EPIPE) or the terminal is (EIO): so is every later message. Anything else (a
        # non-blocking terminal's EAGAIN) loses this message only.
        if isinstance(err, BrokenPipeError) or err.errno == errno.EIO:
            mute(target)


def mute(stream: "TextIO") -> None:
    """Point a stream whose reader has gone at /dev/null: its buffered text and any later write go nowhere,
    instead of failing again at exit (where a failed flush turns the exit status into 120)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
    except (AttributeError, OSError, ValueError):
        pass


def _hold_closed_standard_fds() -> None:
    """Started with stdout or stderr closed (``>&-``, ``2>&-``): hold fds 1 and 2 on /dev/null so that no file
    opened later (auth.json's temporary file, the log) is given one of them and receives terminal output."""
    for fd in (1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def settings_from_args(args: "argparse.Namespace") -> "Settings | None":
    """The configuration the arguments select, or None after printing the reference's error (exit 1 then).

    Every command loads its configuration through this (``commands.common.config_from_args`` makes a
    ``Config`` of it); it is here rather than in ``commands.common`` so that ``status`` imports one module less.
    """
    from ._settings import parse_override, resolve_settings
    from .errors import ConfigError

    overrides: list[str] = list(getattr(args, "overrides", None) or [])
    try:
        for item in overrides:
            parse_override(item)
    except ConfigError as exc:
        err(f"Error parsing -c overrides: {exc}")
        return None
    try:
        return resolve_settings(
            overrides,
            issuer=getattr(args, "issuer", None),
            client_id=getattr(args, "client_id", None),
        )
    except ConfigError as exc:
        err(f"Error loading configuration: {exc}")
        return None


def _parse(argv: "Sequence[str]") -> "argparse.Namespace":
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
    if args.timeout is not None and not 0 <= args.timeout < float("inf"):  # nan compares false: refused too
        parser.error("--timeout must be 0 (no limit) or a positive number of seconds")
    return args


def before_exit() -> None:
    """What the process entry points (``bin/codex-login``, ``python -m codex_login``) do once :func:`main` has
    returned, before the interpreter tears down; never called by :func:`main`, which tests run in process.

    After a command that loaded the HTTP stack (httpx, ssl, asyncio: a sign-in, logout, the app server...)
    the teardown's cycle collections walk every object it left, 40-60 ms on a small VM between "Successfully
    logged in" and the prompt (issue 9). Frozen objects are skipped; atexit handlers (the wait for a save in
    flight) and the flushing of stdout and stderr still run. ``status`` and ``--help`` never load httpx and
    exit as the interpreter always does, so their start-up stays comparable with ``python -c pass``.
    """
    if "httpx" in sys.modules:
        import gc

        gc.freeze()


def main(argv: "Sequence[str] | None" = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if _stored_help_applies(arguments):
        # What argparse's help action does: write (ignoring a closed or missing stdout), then exit 0.
        try:
            sys.stdout.write(HELP_TEXT_80_COLUMNS)
        except (AttributeError, OSError):
            pass
        raise SystemExit(0)
    if sys.stdout is None or sys.stderr is None:
        _hold_closed_standard_fds()
    args: argparse.Namespace | _Namespace = _fast_args(arguments) or _parse(arguments)
    module_name, _, func_name = COMMANDS[args.command].partition(":")
    try:
        # ``__import__`` rather than importlib.import_module: importing importlib also imports warnings.
        # Inside the try: a Ctrl-C while the command's modules load is still a clean exit 130.
        __import__(module_name)
        handler = getattr(sys.modules[module_name], func_name)
        code: int = handler(args)
    except KeyboardInterrupt:
        err("Interrupted.")
        return 130
    except BrokenPipeError:
        if not _stdout_is_gone():
            raise
        # The reader of the command's output went away (`codex-login status --json | head -c1`): end as a
        # process killed by SIGPIPE does (git, gh: 128 + 13), without a traceback.
        return 141
    return code


def _stdout_is_gone() -> bool:
    """Whether stdout is what broke: a pipe whose reader has gone polls as an error (POLLERR)."""
    if sys.stdout is None:
        return False
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        gone = True  # no poll() (Windows) or no descriptor: the broken pipe can only have been the output
    if gone:
        mute(sys.stdout)
    return gone


if __name__ == "__main__":
    raise SystemExit(main())
