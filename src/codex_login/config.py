"""Configuration: ``CODEX_HOME``, ``config.toml`` and ``-c key=value`` overrides.

The work is done by ``_settings`` with plain strings (``codex-login status`` uses that directly, without
``pathlib`` or ``enum``); this module gives it the library's types: :class:`Config` with ``Path`` fields and
a :class:`StoreModeName`. :class:`Config` is a plain class rather than a dataclass (importing ``dataclasses``
imports ``inspect``, which costs as much as starting Python).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from ._frozen import FrozenRecord
from ._settings import (
    CLIENT_ID,
    CONFIG_FILE_NAME,
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    DEFAULT_ISSUER,
    DEFAULT_LOGIN_TIMEOUT_SECONDS,
    DEFAULT_ORIGINATOR,
    DEFAULT_PORT,
    FALLBACK_PORT,
    ORIGINATOR_OVERRIDE_ENV,
    Settings,
    codex_home_dir,
    parse_override,
    resolve_settings,
    validate_issuer,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CLIENT_ID",
    "CONFIG_FILE_NAME",
    "DEFAULT_HTTP_TIMEOUT_SECONDS",
    "DEFAULT_ISSUER",
    "DEFAULT_LOGIN_TIMEOUT_SECONDS",
    "DEFAULT_ORIGINATOR",
    "DEFAULT_PORT",
    "FALLBACK_PORT",
    "ORIGINATOR_OVERRIDE_ENV",
    "Config",
    "StoreModeName",
    "config_from_settings",
    "find_codex_home",
    "load_config",
    "parse_override",
    "validate_issuer",
]


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
    return Path(codex_home_dir(env))


def config_from_settings(settings: Settings) -> Config:
    """The :class:`Config` of resolved :class:`~codex_login._settings.Settings`."""
    return Config(
        codex_home=Path(settings.codex_home),
        log_dir=Path(settings.log_dir),
        issuer=settings.issuer,
        client_id=settings.client_id,
        credentials_store=StoreModeName(settings.credentials_store),
        forced_login_method=settings.forced_login_method,
        forced_chatgpt_workspace_id=settings.forced_chatgpt_workspace_id,
        login_log_format=settings.login_log_format,
        http_timeout=settings.http_timeout,
        originator=settings.originator,
    )


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
    settings = resolve_settings(
        overrides,
        issuer=issuer,
        client_id=client_id,
        env=env,
        cwd=None if cwd is None else os.fspath(cwd),
        codex_home=None if codex_home is None else os.fspath(codex_home),
    )
    return config_from_settings(settings)
