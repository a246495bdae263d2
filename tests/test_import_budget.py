"""What ``codex-login status`` and ``codex-login --help`` import (issue 9), checked through the console script.

Start-up time is mostly import time, and an import added anywhere on the ``status`` path silently costs
every user on every run. These tests assert *which* modules get loaded, never how long anything takes:
``python -X importtime`` runs the installed console script and lists every module it imported.

``status`` may load the standard library it cannot do without (``json``, ``datetime``, ``pathlib`` and
what those import, plus ``re``, which pip's console-script wrapper imports anyway) and the few codex-login
modules that read the configuration and the stored credentials; none of the heavy or networked modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codex_login import cli
from codex_login.storage import AuthDotJson, FileStore, TokenData
from tests.support.scripted_issuer import id_token_for, make_jwt

CONSOLE_SCRIPT = Path(sys.executable).parent / "codex-login"

#: Never imported by ``status`` or ``--help``: the network stack, logging, the heavy helpers and everything
#: that stands for "an import crept in" (typing and dataclasses each cost about what starting Python does).
FORBIDDEN = frozenset({
    "typing",
    "dataclasses",
    "inspect",
    "ast",
    "dis",
    "tokenize",
    "argparse",
    "gettext",
    "shutil",
    "textwrap",
    "tomllib",
    "threading",
    "copy",
    "contextlib",
    "logging",
    "asyncio",
    "concurrent",
    "selectors",
    "socket",
    "ssl",
    "http",
    "email",
    "urllib.request",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "certifi",
    "truststore",
    "keyring",
    "hashlib",
    "hmac",
    "secrets",
    "random",
    "base64",
    "uuid",
    "subprocess",
    "signal",
    "tempfile",
    "zipfile",
    "platform",
    "locale",
    "importlib.util",
    "importlib.metadata",
    "webbrowser",
})

#: The codex-login modules ``status`` may load (its command, the configuration and the stored credentials).
STATUS_MODULES = frozenset({
    "codex_login",
    "codex_login.cli",
    "codex_login.commands",
    "codex_login.commands.common",
    "codex_login.commands.status",
    "codex_login.account",
    "codex_login.config",
    "codex_login.errors",
    "codex_login._frozen",
    "codex_login.storage",
    "codex_login.token_data",
})


def imported_modules(
    args: list[str], codex_home: Path, **env_extra: str
) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run the console script under ``-X importtime``; every module it imported, and the finished process."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONDONTWRITEBYTECODE", "COLUMNS", "LINES"}}
    env.update({"CODEX_HOME": str(codex_home), **env_extra})
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(CONSOLE_SCRIPT), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    modules.discard("imported package")  # the header line
    return modules, proc


def forbidden_in(modules: set[str]) -> set[str]:
    """Forbidden modules and their submodules (``http`` also catches ``http.client``)."""
    return {m for m in modules if m in FORBIDDEN or any(m.startswith(f + ".") for f in FORBIDDEN)}


def chatgpt_auth() -> AuthDotJson:
    access = make_jwt({
        "exp": int(time.time()) + 3600,
        "https://api.openai.com/auth": {"chatgpt_plan_type": "plus", "chatgpt_account_id": "acct_1"},
    })
    return AuthDotJson.from_chatgpt_tokens(TokenData.from_tokens(id_token_for(), access, "rt_import_budget"))


@pytest.mark.parametrize("stored", ["nothing", "chatgpt", "apikey"])
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_status_imports_nothing_heavy(codex_home: Path, stored: str, as_json: bool) -> None:
    if stored == "chatgpt":
        FileStore(codex_home).save(chatgpt_auth())
    elif stored == "apikey":
        FileStore(codex_home).save(AuthDotJson.from_api_key("sk-proj-importbudget0123456789"))
    args = ["status", "--json"] if as_json else ["status"]

    modules, proc = imported_modules(args, codex_home)

    expected_first = {"nothing": "Not logged in", "chatgpt": "Logged in using ChatGPT"}.get(
        stored, "Logged in using an API key - sk-proj-***56789"
    )
    assert proc.returncode == (1 if stored == "nothing" else 0), proc.stderr[-2000:]
    if as_json:
        assert f'"logged_in": {"false" if stored == "nothing" else "true"}' in proc.stdout
    else:
        assert expected_first in proc.stderr
    assert "codex_login.commands.status" in modules  # the command really ran under -X importtime
    assert forbidden_in(modules) == set()
    own = {m for m in modules if m == "codex_login" or m.startswith("codex_login.")}
    assert own <= STATUS_MODULES, sorted(own - STATUS_MODULES)


def test_status_with_a_config_file_adds_only_tomllib(codex_home: Path) -> None:
    """Parsing config.toml needs tomllib, and with it whatever tomllib imports (``typing`` among them)."""
    (codex_home / "config.toml").write_text('cli_auth_credentials_store = "file"\n', encoding="utf-8")
    tomllib_alone = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tomllib"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tomllib_closure = {
        line.rsplit("|", 1)[1].strip() for line in tomllib_alone.stderr.splitlines() if line.startswith("import time:")
    }

    modules, proc = imported_modules(["status"], codex_home)

    assert proc.returncode == 1 and "Not logged in" in proc.stderr
    assert "tomllib" in modules
    assert forbidden_in(modules) - tomllib_closure == set()


def test_status_with_options_goes_through_argparse_with_the_same_result(codex_home: Path) -> None:
    """Anything but the exact fast-path spellings is argparse's job (here an abbreviation and an override)."""
    modules, proc = imported_modules(["status", "-c", 'issuer="https://auth.openai.com"', "--js"], codex_home)

    assert proc.returncode == 1
    assert '"logged_in": false' in proc.stdout
    assert "argparse" in modules


def test_fast_status_namespace_is_what_argparse_builds() -> None:
    parser = cli.build_parser()
    for argv in (["status"], ["status", "--json"]):
        fast = cli._fast_status_args(argv)
        assert fast is not None
        assert vars(fast) == vars(parser.parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [[], ["--help"], ["status", "--js"], ["status", "--json", "--json"], ["-c", "a=b", "status"],
     ["status", "-c", "a=b"], ["status", "extra"], ["logout"], ["--no-browser"]],
)
def test_fast_status_path_takes_only_the_exact_spellings(argv: list[str]) -> None:
    assert cli._fast_status_args(argv) is None


def test_help_prints_exactly_what_argparse_prints_at_80_columns(
    codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    expected = cli.build_parser().format_help()

    modules, proc = imported_modules(["--help"], codex_home, COLUMNS="80")

    assert proc.returncode == 0
    assert proc.stdout == expected
    if sys.version_info[:2] == cli.HELP_TEXT_PYTHON:
        # The stored text is printed without importing argparse (or anything else of codex-login).
        assert expected == cli.HELP_TEXT_80_COLUMNS
        assert forbidden_in(modules) == set()
        assert {m for m in modules if m.startswith("codex_login")} == {"codex_login", "codex_login.cli"}
    else:
        assert "argparse" in modules  # another Python lays help out differently: argparse prints it


def test_help_at_another_width_is_argparse_at_that_width(
    codex_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    expected = cli.build_parser().format_help()

    modules, proc = imported_modules(["--help"], codex_home, COLUMNS="132")

    assert proc.returncode == 0
    assert proc.stdout == expected
    assert "argparse" in modules


def test_terminal_columns_follows_shutil(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path decides like argparse does (``shutil.get_terminal_size``) which width it prints for."""
    import shutil

    for value in ("80", "132", "0", "-3", "wide", None):
        if value is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", value)
        assert cli.terminal_columns() == shutil.get_terminal_size().columns, value
