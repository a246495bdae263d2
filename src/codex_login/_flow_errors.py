"""The exceptions of the sign-in flows, created when ``codex_login.errors`` is first asked for one of them.

They belong to ``codex_login.errors`` (see its docstring): import them from there.
"""

from __future__ import annotations

from .errors import ErrorKind, LoginError


class PortInUseError(LoginError):
    """No loopback port could be bound for the callback server."""

    kind = ErrorKind.ADDR_IN_USE
    failure_class = "port_in_use"


class CallbackError(LoginError):
    """The browser came back with an OAuth error, without a code, or for another workspace."""

    kind = ErrorKind.PERMISSION_DENIED
    failure_class = "denied"


class TokenEndpointError(LoginError):
    """The token endpoint answered, but not with usable tokens (non-2xx, not JSON, missing field)."""

    failure_class = "token_http_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        failure_class: str | None = None,
    ) -> None:
        super().__init__(message, failure_class=failure_class)
        self.status = status
        self.error_code = error_code


class TransportError(LoginError):
    """No HTTP answer at all: connect, TLS, proxy, DNS, timeout or a closed connection.

    ``transport_kind`` is one of ``connect``, ``tls``, ``proxy``, ``dns``, ``timeout``, ``closed``,
    ``protocol``, ``ca_config``.
    """

    failure_class = "transport"

    def __init__(
        self,
        message: str,
        *,
        transport_kind: str,
        display: str | None = None,
        error_class: str | None = None,
        errno: int | None = None,
        is_timeout: bool = False,
        is_connect: bool = False,
        is_request: bool = False,
    ) -> None:
        super().__init__(message, failure_class=f"transport_{transport_kind}")
        self.transport_kind = transport_kind
        # ``display`` is the reqwest-style text the reference logs (`error sending request for url (...)`),
        # URL already redacted with R-2's extended keys (it goes to the log); the message adds the cause for the
        # person at the terminal.
        self.display = display if display is not None else message
        self.error_class = error_class or type(self).__name__
        self.errno = errno
        self.is_timeout = is_timeout
        self.is_connect = is_connect
        self.is_request = is_request


class PersistError(LoginError):
    """Credentials were obtained but could not be stored."""

    failure_class = "persist_failed"


class LoginCancelled(LoginError):
    """The attempt was cancelled (``/cancel``, Ctrl-C, a newer login, the library's ``cancel()``)."""

    kind = ErrorKind.INTERRUPTED
    failure_class = "cancelled"


class LoginTimedOut(LoginError):
    """The attempt ran out of time (``--timeout``, the device code's 15 minutes)."""

    kind = ErrorKind.TIMED_OUT
    failure_class = "timeout"


class DeviceCodeError(LoginError):
    """The device-code flow failed (not enabled, rejected, expired)."""

    failure_class = "device_code"


for _error in (
    PortInUseError,
    CallbackError,
    TokenEndpointError,
    TransportError,
    PersistError,
    LoginCancelled,
    LoginTimedOut,
    DeviceCodeError,
):
    _error.__module__ = "codex_login.errors"
