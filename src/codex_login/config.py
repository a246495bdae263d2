"""Configuration: ``CODEX_HOME``, ``config.toml`` and ``-c key=value`` overrides.

Only stdlib at import time: ``codex-login status`` reads this and must start as fast as the interpreter.
So ``tomllib`` is imported only when there is TOML to parse, and :class:`Config` is a plain class rather than
a dataclass (importing ``dataclasses`` imports ``inspect``, which costs as much as starting Python).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from urllib.parse import urlsplit

from ._frozen import FrozenRecord
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


class StoreModeName(enum.StrEnum):
    """``cli_auth_credentials_store`` values (mirrors ``storage.StoreMode`` without importing it)."""

    FILE = "file"
    KEYRING = "keyring"
    AUTO = "auto"
    EPHEMERAL = "ephemeral"


class Config(FrozenRecord):
    """Everything a sign-in command needs to know, resolved once. Immutable, compared and hashed by value.

    Written out by hand with what ``@dataclass(frozen=True)`` would generate (see the module docstring).
    """

    _FIELDS = (
        "codex_home",
        "log_dir",
        "issuer",
        "client_id",
        "credentials_store",
        "forced_login_method",
        "forced_chatgpt_workspace_id",
        "login_log_format",
        "http_timeout",
        "originator",
    )

    codex_home: Path
    log_dir: Path
    issuer: str
    client_id: str
    credentials_store: StoreModeName
    forced_login_method: str | None
    forced_chatgpt_workspace_id: tuple[str, ...]
    login_log_format: str
    http_timeout: float
    originator: str

    def __init__(  # noqa: PLR0917 - positional, like the dataclass it replaces
        self,
        codex_home: Path,
        log_dir: Path,
        issuer: str = DEFAULT_ISSUER,
        client_id: str = CLIENT_ID,
        credentials_store: StoreModeName = StoreModeName.FILE,
        forced_login_method: str | None = None,
        forced_chatgpt_workspace_id: tuple[str, ...] = (),
        login_log_format: str = "text",
        http_timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS,
        originator: str = DEFAULT_ORIGINATOR,
    ) -> None:
        values = (
            codex_home,
            log_dir,
            issuer,
            client_id,
            credentials_store,
            forced_login_method,
            forced_chatgpt_workspace_id,
            login_log_format,
            http_timeout,
            originator,
        )
        self._assign(values)


def find_codex_home(env: Mapping[str, str] | None = None) -> Path:
    """Resolve ``CODEX_HOME`` with the reference's checks and texts (reference-spec §15)."""
    env = os.environ if env is None else env
    value = env.get("CODEX_HOME", "")
    if value:
        path = Path(value)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ConfigError(
                f"CODEX_HOME points to {value!r}, but that path does not exist", kind=ErrorKind.NOT_FOUND
            ) from None
        except OSError as err:
            raise ConfigError(f"failed to read CODEX_HOME {value!r}: {err.strerror}") from None
        import stat as _stat

        if not _stat.S_ISDIR(st.st_mode):
            raise ConfigError(
                f"CODEX_HOME points to {value!r}, but that path is not a directory",
                kind=ErrorKind.INVALID_INPUT,
            )
        try:
            return path.resolve(strict=True)
        except OSError as err:
            raise ConfigError(f"failed to canonicalize CODEX_HOME {value!r}: {err.strerror}") from None
    home = env.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        raise ConfigError("Could not find home directory")
    return Path(home) / ".codex"


def parse_override(item: str) -> tuple[list[str], Any]:
    """``key=value`` -> (dotted key parts, value). The value is TOML when it parses, else a literal string."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"Invalid override (missing '='): {item}")
    import tomllib

    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
    return key.split("."), value


def _read_config_file(codex_home: Path) -> dict[str, Any]:
    path = codex_home / CONFIG_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not valid UTF-8"
        raise ConfigError(f"failed to read {path}: {reason}") from None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # tomllib's message names the line and column: "Expected '=' ... (at line 3, column 5)".
        raise ConfigError(f"{path}: {err}") from None


def _issuer_problem(issuer: str) -> str | None:
    """Why an issuer URL is refused before any network or browser action (security V-t, D4), or None."""
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in issuer):
        return "it contains whitespace or control characters"
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http"):
        return "it must be an https:// URL"
    if not parts.hostname:
        return "it has no host"
    if parts.username is not None or parts.password is not None:
        return "it must not contain a user name or password"
    if parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        return "it must not contain a query or a fragment"
    if parts.scheme == "http" and not _is_loopback_host(parts.hostname):
        return "plain http:// is only allowed for a loopback issuer (127.0.0.1, ::1, localhost)"
    try:
        _ = parts.port
    except ValueError:
        return "its port is not a number between 0 and 65535"
    return None


def _is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_issuer(issuer: str) -> str:
    """Return the issuer unchanged, or raise :class:`ConfigError` without echoing secrets it may hold."""
    problem = _issuer_problem(issuer)
    if problem is not None:
        raise ConfigError(f"invalid issuer URL: {problem}", kind=ErrorKind.INVALID_INPUT)
    return issuer


def _as_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def load_config(
    overrides: Sequence[str] = (),
    *,
    issuer: str | None = None,
    client_id: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    codex_home: Path | None = None,
) -> Config:
    """Build the :class:`Config` from CODEX_HOME, its config.toml, ``-c`` overrides and flags.

    Raises :class:`ConfigError`; the CLI prefixes it with ``Error loading configuration:``.
    A relative ``log_dir`` in config.toml resolves against CODEX_HOME; in ``-c`` against the cwd.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    parsed_overrides = [parse_override(item) for item in overrides]
    home = codex_home if codex_home is not None else find_codex_home(env)
    table = _read_config_file(home)

    merged: dict[str, tuple[Any, Path]] = {k: (v, home) for k, v in table.items()}
    for parts, value in parsed_overrides:
        if len(parts) == 1:
            merged[parts[0]] = (value, cwd)

    def get(key: str) -> Any:
        entry = merged.get(key)
        return None if entry is None else entry[0]

    log_dir = home / "log"
    if (entry := merged.get("log_dir")) is not None:
        raw = Path(os.path.expanduser(_as_str("log_dir", entry[0])))
        log_dir = raw if raw.is_absolute() else entry[1] / raw

    store_raw = get("cli_auth_credentials_store")
    store = StoreModeName.FILE
    if store_raw is not None:
        try:
            store = StoreModeName(_as_str("cli_auth_credentials_store", store_raw))
        except ValueError:
            raise ConfigError(
                f"cli_auth_credentials_store: unknown value {store_raw!r} (expected file, keyring, auto or ephemeral)"
            ) from None

    method = get("forced_login_method")
    if method is not None:
        method = _as_str("forced_login_method", method)
        if method not in ("chatgpt", "api"):
            raise ConfigError(f"forced_login_method: unknown value {method!r} (expected chatgpt or api)")

    workspace_raw = get("forced_chatgpt_workspace_id")
    workspaces: tuple[str, ...] = ()
    if isinstance(workspace_raw, str):
        workspaces = (workspace_raw,) if workspace_raw.strip() else ()
    elif isinstance(workspace_raw, list):
        workspaces = tuple(_as_str("forced_chatgpt_workspace_id", w) for w in workspace_raw if str(w).strip())
    elif workspace_raw is not None:
        raise ConfigError("forced_chatgpt_workspace_id: expected a string or a list of strings")

    log_format = get("login_log_format") or "text"
    if log_format not in ("text", "json"):
        raise ConfigError(f"login_log_format: unknown value {log_format!r} (expected text or json)")

    http_timeout = get("login_http_timeout")
    timeout_value = DEFAULT_HTTP_TIMEOUT_SECONDS
    if http_timeout is not None:
        if isinstance(http_timeout, bool) or not isinstance(http_timeout, int | float) or http_timeout <= 0:
            raise ConfigError("login_http_timeout: expected a positive number of seconds")
        timeout_value = float(http_timeout)

    chosen_issuer = issuer if issuer is not None else (get("issuer") or DEFAULT_ISSUER)
    validate_issuer(_as_str("issuer", chosen_issuer))
    chosen_client = client_id if client_id is not None else (get("client_id") or CLIENT_ID)

    return Config(
        codex_home=home,
        log_dir=log_dir,
        issuer=chosen_issuer,
        client_id=_as_str("client_id", chosen_client),
        credentials_store=store,
        forced_login_method=method,
        forced_chatgpt_workspace_id=workspaces,
        login_log_format=log_format,
        http_timeout=timeout_value,
        originator=env.get(ORIGINATOR_OVERRIDE_ENV) or DEFAULT_ORIGINATOR,
    )
