"""codex-login: sign in to Codex from the command line, with first-class login diagnostics.

The public API is re-exported lazily so that ``import codex_login`` (and ``codex-login status``) stays as
cheap as the interpreter: nothing heavy is imported until a name is used.
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

# ``typing`` costs about as much to import as the interpreter takes to start: type checkers see this
# constant as True, the interpreter never imports anything under it.
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS = {
    "ServerOptions": "server",
    "LoginServer": "server",
    "LoginSuccess": "server",
    "run_login_server": "server",
    "LoginError": "errors",
    "ConfigError": "errors",
    "TransportError": "errors",
    "TokenEndpointError": "errors",
    "LoginCancelled": "errors",
    "LoginTimedOut": "errors",
    "PersistError": "errors",
    "Config": "config",
    "load_config": "config",
    "load_auth": "storage",
    "DeviceLoginOptions": "device_code",
    "run_device_code_login": "device_code",
    "login_with_api_key": "api_key",
    "logout": "account",
    "read_status": "account",
    "refresh_tokens": "refresh",
    "redact_sensitive_url_parts": "diagnostics.redact",
    "sanitize_url_for_logging": "diagnostics.redact",
}

if TYPE_CHECKING:
    from typing import Any

    from .account import logout, read_status
    from .api_key import login_with_api_key
    from .config import Config, load_config
    from .device_code import DeviceLoginOptions, run_device_code_login
    from .diagnostics.redact import redact_sensitive_url_parts, sanitize_url_for_logging
    from .errors import (
        ConfigError,
        LoginCancelled,
        LoginError,
        LoginTimedOut,
        PersistError,
        TokenEndpointError,
        TransportError,
    )
    from .refresh import refresh_tokens
    from .server import LoginServer, LoginSuccess, ServerOptions, run_login_server
    from .storage import load_auth

__all__ = [
    "Config",
    "ConfigError",
    "DeviceLoginOptions",
    "LoginCancelled",
    "LoginError",
    "LoginServer",
    "LoginSuccess",
    "LoginTimedOut",
    "PersistError",
    "ServerOptions",
    "TokenEndpointError",
    "TransportError",
    "__version__",
    "load_auth",
    "load_config",
    "login_with_api_key",
    "logout",
    "read_status",
    "redact_sensitive_url_parts",
    "refresh_tokens",
    "run_device_code_login",
    "run_login_server",
    "sanitize_url_for_logging",
]


def __getattr__(name: str) -> "Any":
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codex_login' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
