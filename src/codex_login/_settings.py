"""The configuration resolved with strings: ``CODEX_HOME``, ``config.toml`` and ``-c key=value`` overrides.

:func:`resolve_settings` does all of :func:`codex_login.config.load_config`'s work (the reference's checks,
its error texts) and returns :class:`Settings`, whose paths are strings and whose store mode is its name;
``load_config`` turns that into :class:`~codex_login.config.Config` (``pathlib.Path`` fields, a ``StoreModeName``).
``codex-login status`` uses :class:`Settings` directly: it must start about as fast as the interpreter, and
``pathlib`` (which imports ``re``, ``fnmatch`` and ``urllib.parse``) and ``enum`` each cost a large share of that.
``tomllib`` is imported only for ``-c`` overrides and for a config.toml beyond the plain subset that
``_toml_subset`` reads (strings, booleans, integers, arrays of them, tables), ``urllib.parse`` only for an
issuer other than the default.

Paths come out exactly as ``str()`` of the ``pathlib.Path`` that ``load_config`` computed before this module
existed (see :func:`pathlib_form`), so ``Config`` and ``status`` print the same paths.
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

import os
import stat

from .errors import ConfigError, ErrorKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

DEFAULT_ISSUER = "https://auth.openai.com"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
DEFAULT_PORT = 1455
FALLBACK_PORT = 1457
DEFAULT_ORIGINATOR = "codex_cli_rs"
ORIGINATOR_OVERRIDE_ENV = "CODEX_INTERNAL_ORIGINATOR_OVERRIDE"
DEFAULT_LOGIN_TIMEOUT_SECONDS = 600.0
DEFAULT_HTTP_TIMEOUT_SECONDS = 60.0
CONFIG_FILE_NAME = "config.toml"
#: ``cli_auth_credentials_store`` values, in the order of ``config.StoreModeName`` and ``storage.StoreMode``.
STORE_MODES = ("file", "keyring", "auto", "ephemeral")


def pathlib_form(text: str) -> str:
    """``str(pathlib.Path(text))``, without importing pathlib when ``text`` is already in that form.

    On POSIX ``Path`` only drops empty and ``.`` components (``a//b/./c/`` is ``a/b/c``) and keeps a leading
    ``//``; a path with at most one leading slash and no such component is its own normal form.
    """
    if os.sep == "/" and os.altsep is None:
        rest = text[1:] if text.startswith("/") else text
        if rest and "" not in (parts := rest.split("/")) and "." not in parts:
            return text
    from pathlib import Path

    return str(Path(text))


#: The characters Rust's ``Debug`` for ``str`` escapes by name.
_RUST_NAMED_ESCAPES = {"\0": "\\0", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\", '"': '\\"'}
#: The Unicode categories it writes as ``\u{..}``: those its ``is_printable`` tables leave out (generated from
#: these categories, the space excepted) and the combining marks (its grapheme-extend escape, near enough).
_RUST_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs", "Mn", "Me"})


def rust_debug_str(text: str) -> str:
    r"""``text`` as Rust's ``format!("{:?}", text)`` prints it: double-quoted, with ``\\``, ``\"``, ``\t``,
    ``\n``, ``\r``, ``\0`` and ``\u{hex}`` escapes. The reference's error texts quote paths this way."""
    out = []
    for ch in text:
        named = _RUST_NAMED_ESCAPES.get(ch)
        if named is not None:
            out.append(named)
        elif " " <= ch <= "~" or (ch >= "\xa0" and not _rust_escapes_non_ascii(ch)):
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


def _rust_escapes_non_ascii(ch: str) -> bool:
    # Only an error text about a non-ASCII path gets here: status does not load unicodedata otherwise.
    import unicodedata

    return unicodedata.category(ch) in _RUST_ESCAPED_CATEGORIES


def rust_io_error_text(err: OSError) -> str:
    """How Rust's ``io::Error`` displays an OS error: ``No such file or directory (os error 2)``."""
    if err.errno is None:
        return err.strerror or type(err).__name__
    return f"{os.strerror(err.errno)} (os error {err.errno})"


class Settings:
    """:class:`~codex_login.config.Config`'s fields, with ``str`` paths and the store mode's name.

    A plain class, not a ``FrozenRecord``: ``codex-login status`` would import ``_frozen`` for it.
    """

    __slots__ = (
        "client_id",
        "codex_home",
        "credentials_store",
        "forced_chatgpt_workspace_id",
        "forced_login_method",
        "http_timeout",
        "issuer",
        "log_dir",
        "login_log_format",
        "originator",
    )

    codex_home: str
    log_dir: str
    issuer: str
    client_id: str
    #: One of :data:`STORE_MODES`.
    credentials_store: str
    forced_login_method: str | None
    forced_chatgpt_workspace_id: tuple[str, ...]
    login_log_format: str
    http_timeout: float
    originator: str

    def __init__(  # noqa: PLR0917 - positional, in the order of Config's fields
        self,
        codex_home: str,
        log_dir: str,
        issuer: str,
        client_id: str,
        credentials_store: str,
        forced_login_method: str | None,
        forced_chatgpt_workspace_id: tuple[str, ...],
        login_log_format: str,
        http_timeout: float,
        originator: str,
    ) -> None:
        self.codex_home = codex_home
        self.log_dir = log_dir
        self.issuer = issuer
        self.client_id = client_id
        self.credentials_store = credentials_store
        self.forced_login_method = forced_login_method
        self.forced_chatgpt_workspace_id = forced_chatgpt_workspace_id
        self.login_log_format = login_log_format
        self.http_timeout = http_timeout
        self.originator = originator


def codex_home_dir(env: "Mapping[str, str] | None" = None) -> str:
    """Resolve ``CODEX_HOME`` with the reference's checks and texts (reference-spec §15)."""
    env = os.environ if env is None else env
    value = env.get("CODEX_HOME", "")
    if value:
        path = pathlib_form(value)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ConfigError(
                f"CODEX_HOME points to {rust_debug_str(value)}, but that path does not exist",
                kind=ErrorKind.NOT_FOUND,
            ) from None
        except OSError as err:
            raise ConfigError(
                f"failed to read CODEX_HOME {rust_debug_str(value)}: {rust_io_error_text(err)}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(
                f"CODEX_HOME points to {rust_debug_str(value)}, but that path is not a directory",
                kind=ErrorKind.INVALID_INPUT,
            )
        try:
            return pathlib_form(os.path.realpath(path, strict=True))
        except OSError as err:
            raise ConfigError(
                f"failed to canonicalize CODEX_HOME {rust_debug_str(value)}: {rust_io_error_text(err)}"
            ) from None
    home = env.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        raise ConfigError("Could not find home directory")
    return pathlib_form(os.path.join(home, ".codex"))


def parse_override(item: str) -> "tuple[list[str], Any]":
    """``key=value`` -> (dotted key parts, value). The value is TOML when it parses, else a literal string."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"Invalid override (missing '='): {item}")
    import tomllib

    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    # ValueError: an integer past Python's 4300-digit limit; RecursionError: arrays nested past the parser's depth
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
    return key.split("."), value


def _read_config_file(codex_home: str) -> "tuple[dict[str, Any], str]":
    """config.toml's table and its text ({} and "" when there is none)."""
    path = os.path.join(codex_home, CONFIG_FILE_NAME)
    try:
        # newline="": universal newlines would turn a lone CR (which TOML refuses) into a line break.
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}, ""
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not valid UTF-8"
        raise ConfigError(f"failed to read {path}: {reason}") from None
    from ._toml_subset import loads as loads_plain_toml

    # The subset splits lines at LF and refuses any CR: a CRLF file (valid TOML) keeps this fast path, while
    # a lone CR falls through to tomllib, which reads the file as it is and names the line.
    table = loads_plain_toml(text.replace("\r\n", "\n"))
    if table is not None:
        return table, text
    import tomllib

    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        # tomllib's message names the line and column: "Expected '=' ... (at line 3, column 5)", except when the
        # file ends inside an array, a string or a table: "(at end of document)". DECISIONS §1 wants the line
        # named, so that one says the file's last line.
        message = str(err)
        if message.endswith("(at end of document)"):
            lines = text.count("\n") + (0 if text.endswith("\n") else 1)
            message = f"{message[:-1]}, after line {lines})"
        raise ConfigError(f"{path}: {message}") from None
    except ValueError:
        # tomllib hands an integer to int(), which refuses more than 4300 digits (a ValueError that is not a
        # TOMLDecodeError, and whose text speaks of sys.set_int_max_str_digits).
        raise ConfigError(f"{path}: an integer has too many digits to be read") from None
    except RecursionError:
        # Arrays or inline tables nested thousands deep: tomllib recurses once per level.
        raise ConfigError(f"{path}: values are nested too deeply to be read") from None


def issuer_problem(issuer: str) -> str | None:
    """Why an issuer URL is refused before any network or browser action (security V-t, D4), or None."""
    if issuer == DEFAULT_ISSUER:
        return None  # it passes every check (a test keeps it so): no need to import urllib.parse for it
    return url_problem(issuer, what="issuer")


def url_problem(url: str, *, what: str, query_allowed: bool = False) -> str | None:
    """Why ``url`` is refused as the ``what`` (``"issuer"``, ``"host"``) of a sign-in, or None.

    One rule for the issuer the user gives and for the URLs a server gives back (discovered endpoints, a
    device answer's verification URL, which may carry a query): https, or plain http to a loopback host only
    (traffic that never leaves the machine); a host and a valid port; no user info; no whitespace or control
    characters (C0, DEL, C1), which no real URL holds and which would reach a terminal.
    """
    if any(ord(ch) < 0x21 or 0x7F <= ord(ch) <= 0x9F for ch in url):
        return "it contains whitespace or control characters"
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # "Invalid IPv6 URL": a bracket left open
        return "its host is not a valid IPv6 address in brackets"
    if parts.scheme not in ("https", "http"):
        return "it must be an https:// URL"
    if not host:
        return "it has no host"
    if parts.username is not None or parts.password is not None:
        return "it must not contain a user name or password"
    if not query_allowed and (parts.query or parts.fragment or "?" in url or "#" in url):
        return "it must not contain a query or a fragment"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"plain http:// is only allowed for a loopback {what} (127.0.0.1, ::1, localhost)"
    try:
        _ = parts.port
    except ValueError:
        return "its port is not a number between 0 and 65535"
    return None


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: where plain http:// is allowed (traffic never leaves the machine)."""
    if host.lower() == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_issuer(issuer: str) -> str:
    """Return the issuer unchanged, or raise :class:`ConfigError` without echoing secrets it may hold."""
    problem = issuer_problem(issuer)
    if problem is not None:
        raise ConfigError(f"invalid issuer URL: {problem}", kind=ErrorKind.INVALID_INPUT)
    return issuer


def _key_line(text: str, key: str) -> int | None:
    """The line of config.toml where the top-level ``key`` is set (bare or quoted), or None."""
    import re

    name = re.escape(key)
    match = re.search(rf"""^[ \t]*(?:{name}|"{name}"|'{name}')[ \t]*=""", text, re.MULTILINE)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def resolve_settings(
    overrides: "Sequence[str]" = (),
    *,
    issuer: str | None = None,
    client_id: str | None = None,
    env: "Mapping[str, str] | None" = None,
    cwd: str | None = None,
    codex_home: str | None = None,
) -> Settings:
    """Everything :func:`codex_login.config.load_config` documents, as :class:`Settings`.

    Raises :class:`ConfigError`; the CLI prefixes it with ``Error loading configuration:``.
    A relative ``log_dir`` in config.toml resolves against CODEX_HOME; in ``-c`` against the cwd.
    """
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    parsed_overrides = [parse_override(item) for item in overrides]
    home = codex_home if codex_home is not None else codex_home_dir(env)
    table, text = _read_config_file(home)

    merged: dict[str, tuple[Any, str]] = {k: (v, home) for k, v in table.items()}
    for parts, value in parsed_overrides:
        if len(parts) == 1:
            merged[parts[0]] = (value, cwd)
    overridden = {parts[0] for parts, _ in parsed_overrides if len(parts) == 1}

    def get(key: str) -> "Any":
        entry = merged.get(key)
        return None if entry is None else entry[0]

    def bad(key: str, problem: str, *, kind: ErrorKind | None = None, named: bool = True) -> ConfigError:
        """A value's problem, said where the value was set: config.toml's path and line, or ``-c``."""
        if key in overridden:
            where = f"-c {key}"
        else:
            line = _key_line(text, key)
            where = os.path.join(home, CONFIG_FILE_NAME) + ("" if line is None else f", line {line}")
            where += f": {key}" if named else ""
        return ConfigError(f"{where}: {problem}", kind=kind)

    def as_str(key: str, value: "Any") -> str:
        if not isinstance(value, str):
            raise bad(key, f"expected a string, got {type(value).__name__}")
        return value

    log_dir = os.path.join(home, "log")
    if (entry := merged.get("log_dir")) is not None:
        # An absolute log_dir replaces the base, exactly like ``Path`` joining does.
        log_dir = os.path.join(entry[1], os.path.expanduser(as_str("log_dir", entry[0])))

    store = get("cli_auth_credentials_store")
    if store is None:
        store = "file"
    elif as_str("cli_auth_credentials_store", store) not in STORE_MODES:
        raise bad(
            "cli_auth_credentials_store", f"unknown value {store!r} (expected file, keyring, auto or ephemeral)"
        )

    method = get("forced_login_method")
    if method is not None:
        method = as_str("forced_login_method", method)
        if method not in ("chatgpt", "api"):
            raise bad("forced_login_method", f"unknown value {method!r} (expected chatgpt or api)")

    workspace_raw = get("forced_chatgpt_workspace_id")
    workspaces: tuple[str, ...] = ()
    if isinstance(workspace_raw, str):
        workspaces = (workspace_raw,) if workspace_raw.strip() else ()
    elif isinstance(workspace_raw, list):
        workspaces = tuple(as_str("forced_chatgpt_workspace_id", w) for w in workspace_raw if str(w).strip())
    elif workspace_raw is not None:
        raise bad("forced_chatgpt_workspace_id", "expected a string or a list of strings")

    log_format = get("login_log_format") or "text"
    if log_format not in ("text", "json"):
        raise bad("login_log_format", f"unknown value {log_format!r} (expected text or json)")

    http_timeout = get("login_http_timeout")
    timeout_value = DEFAULT_HTTP_TIMEOUT_SECONDS
    if http_timeout is not None:
        # nan and inf compare false; past a day, sockets refuse the deadline (time_t overflow from ~1e12 s).
        if isinstance(http_timeout, bool) or not isinstance(http_timeout, int | float) or not 0 < http_timeout <= 86400:
            raise bad("login_http_timeout", "expected a positive number of seconds, at most 86400 (a day)")
        timeout_value = float(http_timeout)

    if issuer is not None:
        chosen_issuer = issuer
        validate_issuer(chosen_issuer)  # --issuer: the user's own flag, no place to name
    else:
        chosen_issuer = as_str("issuer", get("issuer") or DEFAULT_ISSUER)
        if (problem := issuer_problem(chosen_issuer)) is not None:
            raise bad("issuer", f"invalid issuer URL: {problem}", kind=ErrorKind.INVALID_INPUT, named=False)
    chosen_client = client_id if client_id is not None else (get("client_id") or CLIENT_ID)

    return Settings(
        home,
        pathlib_form(log_dir),
        chosen_issuer,
        as_str("client_id", chosen_client),
        store,
        method,
        workspaces,
        log_format,
        timeout_value,
        env.get(ORIGINATOR_OVERRIDE_ENV) or DEFAULT_ORIGINATOR,
    )
