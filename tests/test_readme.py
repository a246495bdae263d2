"""README.md's examples hold: the usage block names the parser's commands and flags, and the library example
signs in as written."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import pytest

from codex_login.cli import build_parser
from codex_login.server import LoginServer, LoginSuccess
from tests.support.scripted_issuer import ScriptedIssuer

README = Path(__file__).resolve().parent.parent / "README.md"


def block(heading: str, language: str = "") -> str:
    found = re.search(rf"## {heading}\n\n(?:[^`]*\n)?```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert found, heading
    return found[1]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def visible_options(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    """The option strings of each option ``--help`` shows (hidden ones and ``-h`` left out)."""
    return [
        tuple(action.option_strings)
        for action in parser._actions
        if action.option_strings and action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)
    ]


def test_the_usage_block_names_every_command_and_flag_of_the_parser() -> None:
    parser = build_parser()
    commands = subparsers(parser)
    synopses: dict[str | None, str] = {}
    common = ""
    for line in block("Using it").strip().splitlines():
        synopsis = line.split("   ")[0]  # the description column starts after three spaces or more
        if not synopsis:
            continue
        if synopsis.startswith("COMMON:"):
            common = synopsis
            continue
        words = synopsis.split()
        assert words[:2] == ["codex-login", "[COMMON]"], line
        command = words[2] if words[2] in commands else None
        synopses[command] = synopses.get(command, "") + " " + synopsis
    assert set(synopses) == {None, *commands}
    for command, synopsis in synopses.items():
        own = commands[command] if command else parser
        flags = re.findall(r"(?<![\w-])--?[a-z][a-z-]*", synopsis + " " + common)
        for flag in flags:
            assert flag in own._option_string_actions, (command, flag)
        for options in visible_options(own):
            assert set(options) & set(flags), (command, options)


# No ":" in it: a BROWSER value is a ":"-separated list of commands.
BROWSER_SCRIPT = """
import sys, urllib.parse, urllib.request
query = urllib.parse.parse_qs(urllib.parse.urlsplit(sys.argv[1]).query)
back = dict(code="readme-code", state=query["state"][0])
opener = urllib.request.build_opener(urllib.request.ProxyHandler(dict()))
opener.open(query["redirect_uri"][0] + "?" + urllib.parse.urlencode(back), timeout=30).read()
"""


def test_the_library_example_signs_in_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = block("Library", "python")
    (tmp_path / ".codex").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))  # its Path("~/.codex").expanduser()
    # The example opens the browser (the default): this one comes back to the callback as a user's would.
    monkeypatch.setenv("BROWSER", f"{shlex.quote(sys.executable)} -c {shlex.quote(BROWSER_SCRIPT)} %s")
    with ScriptedIssuer() as issuer:
        # The one change: the scripted issuer signs in instead of the default https://auth.openai.com.
        runnable = example.replace("port=0)", f"port=0, issuer={issuer.url!r})")
        assert runnable != example
        namespace: dict[str, object] = {}
        exec(compile(runnable, str(README), "exec"), namespace)
    server, result = namespace["server"], namespace["result"]
    assert isinstance(server, LoginServer) and isinstance(result, LoginSuccess)
    assert (tmp_path / ".codex" / "auth.json").is_file()
    assert capsys.readouterr().out.split() == [server.auth_url, str(server.actual_port), server.attempt_id]
