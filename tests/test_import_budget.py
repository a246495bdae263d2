"""What ``codex-login status`` and ``codex-login --help`` import (issue 9), checked through the console script.

Start-up time is mostly import time, and an import added anywhere on the ``status`` path silently costs
every user on every run. These tests assert *which* modules get loaded, never how long anything takes:
``python -X importtime`` runs the installed console script and lists every module it imported.

The console script is the project's own ``bin/codex-login`` (pip's generated wrapper starts with ``import re``);
through it, ``status`` loads no standard-library module beyond what ``python -c pass`` loads except the JSON
accelerator ``_json`` (no ``json``, ``re``, ``datetime``, ``pathlib``, ``enum``...), and only the codex-login
modules that resolve the configuration and read the stored credentials. A plain ``config.toml`` adds the
subset reader ``_toml_subset``; one beyond that subset adds ``tomllib`` and what it imports.
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

#: Never imported by ``status`` or ``--help``: what it used to import and each costs a share of start-up
#: (``re``, ``enum`` and ``typing`` each about half of starting Python), the network stack, logging, the heavy
#: helpers and everything that stands for "an import crept in".
FORBIDDEN = frozenset({
    "__future__",
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
    "json",
    "re",
    "datetime",
    "_datetime",
    "math",
    "pathlib",
    "fnmatch",
    "ntpath",
    "urllib",
    "ipaddress",
    "enum",
    "functools",
    "collections",
    "operator",
    "keyword",
    "reprlib",
    "types",
    "string",
    "warnings",
    "importlib",
    "binascii",
    "base64",
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
    "uuid",
    "subprocess",
    "signal",
    "tempfile",
    "zipfile",
    "platform",
    "locale",
    "webbrowser",
})

#: The standard-library modules ``status`` may load beyond those ``python -c pass`` loads.
STATUS_STDLIB = frozenset({"_json"})

#: The codex-login modules ``status`` loads: its command, the configuration and the stored credentials.
STATUS_MODULES = frozenset({
    "codex_login",
    "codex_login.cli",
    "codex_login.commands",
    "codex_login.commands.status",
    "codex_login.errors",
    "codex_login._settings",
    "codex_login._credentials",
    "codex_login._fastjson",
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


def interpreter_modules() -> set[str]:
    """What ``python -c pass`` imports (the interpreter's own start, ``site`` and ``.pth`` files included)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True, timeout=60
    )
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


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
    assert own == STATUS_MODULES, sorted(own ^ STATUS_MODULES)
    stdlib = modules - own - interpreter_modules()
    assert stdlib <= STATUS_STDLIB, sorted(stdlib - STATUS_STDLIB)
    # JSON's accelerator (a shared library to load) only when there is JSON to read or write.
    assert ("_json" in modules) == (stored != "nothing" or as_json)


def test_status_with_a_plain_config_file_adds_only_the_subset_reader(codex_home: Path) -> None:
    (codex_home / "config.toml").write_text(
        'model = "gpt-5-codex"\ncli_auth_credentials_store = "file"\n\n[projects."/src"]\ntrust_level = "trusted"\n',
        encoding="utf-8",
    )

    modules, proc = imported_modules(["status"], codex_home)

    assert proc.returncode == 1 and "Not logged in" in proc.stderr
    assert forbidden_in(modules) == set()
    assert {m for m in modules if m.startswith("codex_login")} == STATUS_MODULES | {"codex_login._toml_subset"}
    assert modules - interpreter_modules() - STATUS_MODULES <= STATUS_STDLIB | {"codex_login._toml_subset"}


def test_status_with_other_toml_adds_only_tomllib(codex_home: Path) -> None:
    """TOML beyond the subset (here a float) is tomllib's, with whatever tomllib imports (``typing`` among them)."""
    (codex_home / "config.toml").write_text('cli_auth_credentials_store = "file"\nx = 1.5\n', encoding="utf-8")
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
    assert {m for m in modules if m.startswith("codex_login")} == STATUS_MODULES | {"codex_login._toml_subset"}


def test_the_console_script_is_the_projects_own_wrapper() -> None:
    """``bin/codex-login`` as installed (pip rewrites only its ``#!``), not pip's wrapper with its ``import re``."""
    source = (Path(__file__).parents[1] / "bin" / "codex-login").read_text(encoding="utf-8").splitlines()
    installed = CONSOLE_SCRIPT.read_text(encoding="utf-8").splitlines()
    assert source[0] == "#!python"
    assert installed[0] == f"#!{sys.executable}" or Path(installed[0][2:]).resolve() == Path(sys.executable).resolve()
    assert installed[1:] == source[1:]
    assert "import re" not in installed


def test_the_browser_sign_in_imports_httpx_only_in_its_worker() -> None:
    """What a browser sign-in imports before it prints the URL (the command, the server, the HTTP client's
    settings) does not import httpx: the worker imports it while the browser is away."""
    code = (
        "import sys, codex_login.commands.login, codex_login.server, codex_login.http, codex_login.oauth; "
        "from codex_login.http import HttpSettings; HttpSettings(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore', 'h11')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("preload", ["", "import httpx; "], ids=["status-like", "after-httpx"])
def test_before_exit_freezes_the_heap_only_after_the_http_stack_was_loaded(preload: str) -> None:
    """The entry points call ``before_exit`` (teardown without the cycle collector's walks) only where it pays:
    after a command that loaded httpx; a ``status`` or ``--help`` process exits as the interpreter always does."""
    code = f"{preload}import gc; from codex_login.cli import before_exit; before_exit(); print(gc.get_freeze_count())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    frozen = int(proc.stdout)
    assert (frozen > 1000) if preload else (frozen == 0), frozen
    for entry in (CONSOLE_SCRIPT.read_text(encoding="utf-8"), (Path(cli.__file__).parent / "__main__.py").read_text(encoding="utf-8")):
        assert "before_exit()" in entry


def test_status_with_options_goes_through_argparse_with_the_same_result(codex_home: Path) -> None:
    """Anything but the exact fast-path spellings is argparse's job (here an abbreviation and an override)."""
    modules, proc = imported_modules(["status", "-c", 'issuer="https://auth.openai.com"', "--js"], codex_home)

    assert proc.returncode == 1
    assert '"logged_in": false' in proc.stdout
    assert "argparse" in modules


def test_fast_namespaces_are_what_argparse_builds() -> None:
    parser = cli.build_parser()
    for argv in ([], ["status"], ["status", "--json"]):
        fast = cli._fast_args(argv)
        assert fast is not None
        assert vars(fast) == vars(parser.parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["status", "--js"], ["status", "--json", "--json"], ["-c", "a=b", "status"],
     ["status", "-c", "a=b"], ["status", "extra"], ["logout"], ["--no-browser"], ["--device-auth"], [""]],
)
def test_fast_path_takes_only_the_exact_spellings(argv: list[str]) -> None:
    assert cli._fast_args(argv) is None


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
