"""The event catalogue is documented (ASVS 16.1.1: a logging inventory) and its messages are constants."""

from __future__ import annotations

from pathlib import Path

from codex_login.diagnostics import events

DOC = Path(__file__).resolve().parent.parent / "docs" / "diagnostics.md"


def catalogue() -> dict[str, str]:
    return {name: value for name, value in vars(events).items() if name.startswith("MSG_") and isinstance(value, str)}


def test_every_event_message_is_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    missing = [message for message in catalogue().values() if f"`{message}`" not in doc]
    assert missing == []


def test_event_messages_are_unique_single_lines() -> None:
    messages = list(catalogue().values())
    assert len(messages) == len(set(messages)) > 40
    for message in messages:
        assert message == message.strip() and "\n" not in message and "%" not in message
