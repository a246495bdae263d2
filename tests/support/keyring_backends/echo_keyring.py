"""A keyring backend whose errors quote what it was given and what it holds (loaded by name in subprocesses).

``codex-login`` is pointed at it with ``PYTHON_KEYRING_BACKEND=echo_keyring.EchoKeyring`` and this directory
put first on ``PYTHONPATH``. Entries live in the JSON file ``ECHO_KEYRING_FILE`` (the test and the console
script see the same keyring); ``ECHO_KEYRING_FAIL`` names the operations that fail (``get``, ``set``,
``delete``, comma-separated). A failing ``set`` quotes the password it was given and a failing ``delete`` the
value it holds for that entry (codex-login read it just before), raw, ``repr``-quoted and upper-cased, as
careless backends and wrappers do: each is a secret that must not reach the terminal, the log or a protocol
message. A failing ``get`` quotes only the entry's name: what a backend holds but never handed over cannot be
scrubbed by value.
"""

from __future__ import annotations

import json
import os

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError


class EchoKeyring(KeyringBackend):
    priority = 1  # a plain number is what keyring reads (selected by name only, never by priority here)

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    @staticmethod
    def _entries() -> dict[str, str]:
        try:
            with open(os.environ["ECHO_KEYRING_FILE"], encoding="utf-8") as f:
                entries: dict[str, str] = json.load(f)
        except FileNotFoundError:
            return {}
        return entries

    @staticmethod
    def _write(entries: dict[str, str]) -> None:
        with open(os.environ["ECHO_KEYRING_FILE"], "w", encoding="utf-8") as f:
            json.dump(entries, f)

    @staticmethod
    def _fails(operation: str) -> bool:
        return operation in os.environ.get("ECHO_KEYRING_FAIL", "").split(",")

    def _refuse(self, operation: str, key: str, given: str | None = None) -> KeyringError:
        held = self._entries().get(key) if operation == "delete" else None
        parts = [f"{operation} refused for {key}"]
        if given is not None:
            parts.append(f"given {given!r} ({given.upper()})")
        if held is not None:
            parts.append(f"holding {held} ({held.upper()})")
        return KeyringError("; ".join(parts))

    def get_password(self, service: str, username: str) -> str | None:
        key = f"{service}|{username}"
        if self._fails("get"):
            raise self._refuse("get", key)
        return self._entries().get(key)

    def set_password(self, service: str, username: str, password: str) -> None:
        key = f"{service}|{username}"
        if self._fails("set"):
            raise self._refuse("set", key, password)
        entries = self._entries()
        entries[key] = password
        self._write(entries)

    def delete_password(self, service: str, username: str) -> None:
        key = f"{service}|{username}"
        if self._fails("delete"):
            raise self._refuse("delete", key)
        entries = self._entries()
        if entries.pop(key, None) is None:
            raise PasswordDeleteError("not found")
        self._write(entries)
