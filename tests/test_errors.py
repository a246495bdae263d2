"""``errors``: ``ErrorKind`` behaves like the enum it replaced, and the lazily created flow errors are
``codex_login.errors``' own classes in every observable way."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import pytest

from codex_login import errors
from codex_login.errors import ErrorKind, LoginError

FLOW_ERRORS = [
    "PortInUseError",
    "CallbackError",
    "TokenEndpointError",
    "TransportError",
    "PersistError",
    "LoginCancelled",
    "LoginTimedOut",
    "DeviceCodeError",
]
KINDS = {
    "PERMISSION_DENIED": "PermissionDenied",
    "INVALID_DATA": "InvalidData",
    "INVALID_INPUT": "InvalidInput",
    "INTERRUPTED": "Interrupted",
    "TIMED_OUT": "TimedOut",
    "NOT_FOUND": "NotFound",
    "ADDR_IN_USE": "AddrInUse",
    "OTHER": "Other",
}


@pytest.mark.parametrize(("name", "value"), KINDS.items())
def test_error_kind_members_behave_like_enum_members(name: str, value: str) -> None:
    member = getattr(ErrorKind, name)
    assert (member.name, member.value) == (name, value)
    assert repr(member) == f"<ErrorKind.{name}: {value!r}>"
    assert str(member) == f"{member}" == f"ErrorKind.{name}"
    assert copy.copy(member) is member and copy.deepcopy(member) is member
    assert pickle.loads(pickle.dumps(member)) is member
    with pytest.raises(AttributeError):
        member.value = "changed"


def test_error_kind_members_are_distinct() -> None:
    members = [getattr(ErrorKind, name) for name in KINDS]
    assert len({id(member) for member in members}) == len(KINDS)
    assert ErrorKind.OTHER != ErrorKind.NOT_FOUND
    assert LoginError("x").kind is ErrorKind.OTHER


@pytest.mark.parametrize("name", FLOW_ERRORS)
def test_flow_errors_are_this_modules_classes(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, LoginError)
    assert cls.__module__ == "codex_login.errors" and cls.__qualname__ == name
    assert getattr(errors, name) is cls
    assert name in errors.__all__
    error = errors.PersistError("stored nothing")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is errors.PersistError and str(again) == "stored nothing"


def test_flow_errors_keep_their_kinds_and_classes() -> None:
    assert errors.PortInUseError("x").kind is ErrorKind.ADDR_IN_USE
    assert errors.CallbackError("x").failure_class == "denied"
    assert errors.LoginTimedOut("x").kind is ErrorKind.TIMED_OUT
    assert errors.TransportError("x", transport_kind="dns").failure_class == "transport_dns"


def test_unknown_names_are_still_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchError'"):
        errors.NoSuchError  # type: ignore[attr-defined]  # noqa: B018


def test_importing_errors_creates_no_flow_error() -> None:
    probe = "import sys, codex_login.errors; print('codex_login._flow_errors' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "False"
