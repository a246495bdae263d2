"""The error hierarchy of codex-login.

Every failure a caller can meet is a :class:`LoginError`. Its ``str()`` is the full, caller-visible text
(the terminal's ``Error logging in: ...``), already stripped of control characters by whoever raised it.
``kind`` mirrors the Rust ``io::ErrorKind`` the reference returns, and ``failure_class`` is the stable key
into the advice table (``diagnostics.advice``) and the ``login finished`` event.

Exceptions are raised ``from None`` wherever the cause could carry a URL, a body or a token: the chain
is part of what tracebacks and crash reporters print.

The exceptions of the sign-in flows (:class:`PortInUseError` ... :class:`DeviceCodeError`) are written in
``_flow_errors`` and created on first use (``__getattr__`` below), yet are this module's in every respect
(``from codex_login.errors import TransportError``, their ``__module__``, pickling): ``codex-login status``
needs only the classes defined here, and creating a class costs about 0.25% of the interpreter's start.
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar

    from ._flow_errors import (
        CallbackError,
        DeviceCodeError,
        LoginCancelled,
        LoginTimedOut,
        PersistError,
        PortInUseError,
        TokenEndpointError,
        TransportError,
    )

__all__ = [
    "CallbackError",
    "ConfigError",
    "DeviceCodeError",
    "ErrorKind",
    "LoginCancelled",
    "LoginError",
    "LoginTimedOut",
    "PersistError",
    "PortInUseError",
    "StorageError",
    "TokenEndpointError",
    "TransportError",
]


class ErrorKind:
    """The reference's ``io::ErrorKind`` values that sign-in uses.

    Used like an enum: one shared member per value (compare with ``is``), with ``name``, ``value``, an enum's
    ``repr`` and ``str``, and copies and pickles that are the member itself. It is not an ``enum.Enum`` (no
    iteration, no lookup by value): every command imports this module, ``codex-login status`` too, and
    importing ``enum`` (with the ``functools`` and ``collections`` it brings) costs about 40% of what starting
    the interpreter does.
    """

    __slots__ = ("name", "value")

    PERMISSION_DENIED: "ClassVar[ErrorKind]"
    INVALID_DATA: "ClassVar[ErrorKind]"
    INVALID_INPUT: "ClassVar[ErrorKind]"
    INTERRUPTED: "ClassVar[ErrorKind]"
    TIMED_OUT: "ClassVar[ErrorKind]"
    NOT_FOUND: "ClassVar[ErrorKind]"
    ADDR_IN_USE: "ClassVar[ErrorKind]"
    OTHER: "ClassVar[ErrorKind]"

    name: str
    value: str

    def __init__(self, name: str, value: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to {name!r} of an ErrorKind member")

    def __reduce__(self) -> "tuple[object, tuple[type[ErrorKind], str]]":
        return getattr, (ErrorKind, self.name)

    def __repr__(self) -> str:
        return f"<ErrorKind.{self.name}: {self.value!r}>"

    def __str__(self) -> str:
        return f"ErrorKind.{self.name}"


ErrorKind.PERMISSION_DENIED = ErrorKind("PERMISSION_DENIED", "PermissionDenied")
ErrorKind.INVALID_DATA = ErrorKind("INVALID_DATA", "InvalidData")
ErrorKind.INVALID_INPUT = ErrorKind("INVALID_INPUT", "InvalidInput")
ErrorKind.INTERRUPTED = ErrorKind("INTERRUPTED", "Interrupted")
ErrorKind.TIMED_OUT = ErrorKind("TIMED_OUT", "TimedOut")
ErrorKind.NOT_FOUND = ErrorKind("NOT_FOUND", "NotFound")
ErrorKind.ADDR_IN_USE = ErrorKind("ADDR_IN_USE", "AddrInUse")
ErrorKind.OTHER = ErrorKind("OTHER", "Other")


class LoginError(Exception):
    """Base class: a sign-in (or sign-in related command) could not be completed."""

    kind: ErrorKind = ErrorKind.OTHER
    failure_class: str = "error"

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        failure_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        if failure_class is not None:
            self.failure_class = failure_class
        # Set by the flow that raised it, so the terminal can print it next to the failure.
        self.attempt_id: str | None = None

    def __str__(self) -> str:
        return self.message


class ConfigError(LoginError):
    """config.toml, ``-c`` overrides, CODEX_HOME or a flag is unusable."""

    failure_class = "config"


class StorageError(LoginError):
    """auth.json or the keyring could not be read, written or deleted."""

    failure_class = "storage"


_FLOW_ERRORS = frozenset(__all__) - {"ConfigError", "ErrorKind", "LoginError", "StorageError"}

if not TYPE_CHECKING:  # type checkers see the import above, and no module-wide __getattr__

    def __getattr__(name: str) -> object:
        if name not in _FLOW_ERRORS:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from . import _flow_errors

        value = getattr(_flow_errors, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | _FLOW_ERRORS)
