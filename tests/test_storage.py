"""storage: the auth.json schema (byte parity with the Rust CLI), atomic 0600 writes, symlink policy, the
keyring / auto / ephemeral stores and their warnings, and the cross-process auth lock (security F1-F10)."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend

from codex_login import storage
from codex_login.errors import ErrorKind, LoginError, PersistError, StorageError
from codex_login.storage import (
    KEYRING_SERVICE,
    AuthDotJson,
    AuthMode,
    AuthParseError,
    AuthSaveError,
    AutoStore,
    EphemeralStore,
    FileStore,
    KeyringStore,
    StoreInfo,
    StoreMode,
    TokenData,
    auth_lock,
    create_store,
    format_timestamp,
    load_auth,
    parse_timestamp,
    store_key,
)
from codex_login.token_data import AUTH_CLAIM, parse_id_token
from tests.support.memory_keyring import MemoryKeyring

FIXTURES = Path(__file__).parent / "fixtures"
RUST_FIXTURES = ["rust_chatgpt_auth.json", "rust_apikey_auth.json", "rust_chatgpt_no_account_auth.json"]
CANARY = "CANARYs3cr3t"
SRC = str(Path(__file__).resolve().parents[1] / "src")


# ---------------------------------------------------------------------------------------------------------
# Helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(payload: object) -> str:
    header = b64url(b'{"alg":"none","typ":"JWT"}')
    return f"{header}.{b64url(json.dumps(payload, separators=(',', ':')).encode())}.{b64url(b'sig')}"


def chatgpt_auth(prefix: str = "t", *, api_key: str | None = None, last_refresh: datetime | None = None) -> AuthDotJson:
    id_token = make_jwt({"email": f"{prefix}@example.com", AUTH_CLAIM: {"chatgpt_account_id": f"{prefix}-acc"}})
    tokens = TokenData.from_tokens(id_token, f"{prefix}-access", f"{prefix}-refresh")
    return AuthDotJson.from_chatgpt_tokens(
        tokens, api_key, last_refresh or datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC)
    )


def tree(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def temp_files(directory: Path) -> list[str]:
    return [name for name in tree(directory) if name.startswith(".auth.json.tmp-")]


def snapshot(path: Path) -> tuple[bytes, int, int, int]:
    st_ = path.stat()
    return path.read_bytes(), st_.st_ino, stat.S_IMODE(st_.st_mode), st_.st_mtime_ns


def run_python(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports codex_login from this checkout."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = SRC + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-B", "-c", textwrap.dedent(code), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=preexec_fn,
    )


class HangingKeyring(MemoryKeyring):
    """A keyring that does not answer until released (a locked D-Bus keyring)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(30)
        super().set_password(service, username, password)


def fail_backend() -> KeyringBackend:
    """keyring's "no backend available" keyring: every call raises NoKeyringError."""
    return keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]


def join_stuck_keyring_calls() -> None:
    for worker in list(storage._HUNG_CALL):
        worker.join(10)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "codex-home"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture(autouse=True)
def _restore_keyring_backend() -> Iterator[None]:
    """Tests install their own backends; put back whatever keyring had (even "not chosen yet")."""
    previous = keyring.core._keyring_backend
    try:
        yield
    finally:
        join_stuck_keyring_calls()
        keyring.core._keyring_backend = previous


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


@pytest.fixture
def no_keyring() -> None:
    keyring.set_keyring(fail_backend())


@pytest.fixture
def hanging_keyring() -> Iterator[HangingKeyring]:
    backend = HangingKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        backend.release.set()


# ---------------------------------------------------------------------------------------------------------
# Schema, key order, format


def test_api_key_record_pretty_and_compact() -> None:
    auth = AuthDotJson.from_api_key("sk-abc")
    assert auth.to_pretty_json() == '{\n  "auth_mode": "apikey",\n  "OPENAI_API_KEY": "sk-abc"\n}'
    assert auth.to_compact_json() == '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-abc"}'


def test_openai_api_key_always_written_and_optional_keys_omitted() -> None:
    assert AuthDotJson().to_pretty_json() == '{\n  "OPENAI_API_KEY": null\n}'
    assert AuthDotJson().to_compact_json() == '{"OPENAI_API_KEY":null}'


def test_chatgpt_record_key_order_and_layout() -> None:
    auth = chatgpt_auth()
    assert auth.tokens is not None
    auth.tokens.account_id = None
    id_token = auth.tokens.id_token.raw_jwt
    assert auth.to_pretty_json() == (
        "{\n"
        '  "auth_mode": "chatgpt",\n'
        '  "OPENAI_API_KEY": null,\n'
        '  "tokens": {\n'
        f'    "id_token": "{id_token}",\n'
        '    "access_token": "t-access",\n'
        '    "refresh_token": "t-refresh",\n'
        '    "account_id": null\n'
        "  },\n"
        '  "last_refresh": "2026-03-06T22:09:36.685438Z"\n'
        "}"
    )
    assert auth.to_compact_json() == (
        '{"auth_mode":"chatgpt","OPENAI_API_KEY":null,"tokens":{'
        f'"id_token":"{id_token}","access_token":"t-access","refresh_token":"t-refresh","account_id":null}},'
        '"last_refresh":"2026-03-06T22:09:36.685438Z"}'
    )


def test_account_id_comes_from_the_id_token_claim() -> None:
    auth = chatgpt_auth("acme")
    assert auth.tokens is not None
    assert auth.tokens.account_id == "acme-acc"
    assert auth.auth_mode is AuthMode.CHATGPT


def test_strings_are_escaped_like_serde_json() -> None:
    auth = AuthDotJson.from_api_key('ключ "q" \\ \n\t\r\b\f \x01\x1f \x7f \u2028 😀')
    expected_value = '"ключ \\"q\\" \\\\ \\n\\t\\r\\b\\f \\u0001\\u001f \x7f \u2028 😀"'
    assert auth.to_compact_json() == '{"auth_mode":"apikey","OPENAI_API_KEY":' + expected_value + "}"


@pytest.mark.parametrize(
    ("value", "nanos", "expected"),
    [
        (datetime(2026, 3, 6, 22, 9, 36, tzinfo=UTC), None, "2026-03-06T22:09:36Z"),
        (datetime(2026, 3, 6, 22, 9, 36, 685000, tzinfo=UTC), None, "2026-03-06T22:09:36.685Z"),
        (datetime(2026, 3, 6, 22, 9, 36, 685400, tzinfo=UTC), None, "2026-03-06T22:09:36.685400Z"),
        (datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC), None, "2026-03-06T22:09:36.685438Z"),
        (datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC), 685438123, "2026-03-06T22:09:36.685438123Z"),
        (datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC), 685438000, "2026-03-06T22:09:36.685438Z"),
        (datetime(2026, 3, 6, 22, 9, 36, 685438), None, "2026-03-06T22:09:36.685438Z"),  # naive = UTC
        (
            datetime(2026, 3, 7, 3, 39, 36, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            None,
            "2026-03-06T22:09:36.000001Z",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), None, "0999-01-02T03:04:05Z"),
    ],
)
def test_format_timestamp_matches_chrono_autosi(value: datetime, nanos: int | None, expected: str) -> None:
    assert format_timestamp(value, nanos) == expected


@pytest.mark.parametrize(
    ("text", "expected", "nanos"),
    [
        ("2026-03-06T22:09:36.685438123Z", datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC), 685438123),
        ("2026-03-06T22:09:36.685438Z", datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC), 685438000),
        ("2026-03-06T22:09:36.6Z", datetime(2026, 3, 6, 22, 9, 36, 600000, tzinfo=UTC), 600000000),
        ("2026-03-06T22:09:36Z", datetime(2026, 3, 6, 22, 9, 36, tzinfo=UTC), 0),
        ("2026-03-06T22:09:36.123456789999Z", datetime(2026, 3, 6, 22, 9, 36, 123456, tzinfo=UTC), 123456789),
        ("2026-03-06t22:09:36z", datetime(2026, 3, 6, 22, 9, 36, tzinfo=UTC), 0),
        ("2026-03-06 22:09:36Z", datetime(2026, 3, 6, 22, 9, 36, tzinfo=UTC), 0),
        ("2026-03-07T03:39:36.5+05:30", datetime(2026, 3, 6, 22, 9, 36, 500000, tzinfo=UTC), 500000000),
        ("2026-03-06T20:09:36-0200", datetime(2026, 3, 6, 22, 9, 36, tzinfo=UTC), 0),
    ],
)
def test_parse_timestamp(text: str, expected: datetime, nanos: int) -> None:
    assert parse_timestamp(text) == (expected, nanos)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-03-06",
        "2026-03-06T22:09:36",
        "2026-13-06T22:09:36Z",
        "2026-03-06T24:00:00Z",
        "2026-03-06T22:09:36.Z",
        "2026-03-06T22:09:60Z",
        "2026-03-06T22:09:36+24:00",
        " 2026-03-06T22:09:36Z",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_resolved_mode() -> None:
    assert AuthDotJson(openai_api_key="sk").resolved_mode() is AuthMode.API_KEY
    assert AuthDotJson().resolved_mode() is AuthMode.CHATGPT
    assert AuthDotJson(auth_mode=AuthMode.CHATGPT, openai_api_key="sk").resolved_mode() is AuthMode.CHATGPT
    assert AuthDotJson(auth_mode=AuthMode.CHATGPT_AUTH_TOKENS).resolved_mode() is AuthMode.CHATGPT_AUTH_TOKENS


def test_repr_hides_every_secret() -> None:
    auth = chatgpt_auth(CANARY, api_key=f"sk-{CANARY}")
    auth.extra["future_secret"] = CANARY
    assert auth.tokens is not None
    text = repr(auth)
    for secret in (auth.tokens.access_token, auth.tokens.refresh_token, auth.tokens.id_token.raw_jwt, "sk-"):
        assert secret not in text
    assert "future_secret" not in text
    assert f"{CANARY}@example.com" in text  # the email is not a secret


def test_enums() -> None:
    assert [m.value for m in AuthMode] == ["apikey", "chatgpt", "chatgptAuthTokens"]
    assert [m.value for m in StoreMode] == ["file", "keyring", "auto", "ephemeral"]


# ---------------------------------------------------------------------------------------------------------
# Fixtures written by the Rust CLI, both directions


@pytest.mark.parametrize("name", RUST_FIXTURES)
def test_rust_fixture_round_trips_byte_identically(name: str, home: Path) -> None:
    data = (FIXTURES / name).read_bytes()
    assert not data.endswith(b"\n")  # serde_json's to_string_pretty writes no trailing newline
    auth = AuthDotJson.from_json(data)
    assert auth.to_pretty_json().encode() == data
    assert FileStore(home).save(auth) == "file"
    assert (home / "auth.json").read_bytes() == data
    assert FileStore(home).load() == auth


def test_rust_chatgpt_fixture_fields() -> None:
    auth = AuthDotJson.from_json((FIXTURES / "rust_chatgpt_auth.json").read_text())
    assert auth.auth_mode is AuthMode.CHATGPT
    assert auth.openai_api_key is None
    assert auth.tokens is not None
    info = auth.tokens.id_token
    assert (info.email, info.chatgpt_account_id, info.chatgpt_plan_type, info.chatgpt_user_id) == (
        "user@example.com",
        "acc-fixture-1234",
        "plus",
        "user-fixture-5678",
    )
    assert auth.tokens.account_id == "acc-fixture-1234"
    assert auth.tokens.refresh_token == "rt_fixture.0123456789abcdefghijklmnopqrstuvwxyz"
    assert auth.last_refresh == datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC)
    assert auth.last_refresh_text() == "2026-03-06T22:09:36.685438123Z"
    assert auth.extra == {}


def test_rust_apikey_fixture_fields_and_fresh_record_is_identical() -> None:
    text = (FIXTURES / "rust_apikey_auth.json").read_text()
    auth = AuthDotJson.from_json(text)
    assert auth == AuthDotJson(auth_mode=AuthMode.API_KEY, openai_api_key="sk-fixture-0123456789abcdef")
    assert AuthDotJson.from_api_key("sk-fixture-0123456789abcdef").to_pretty_json() == text


def test_fresh_chatgpt_record_matches_the_rust_fixture_layout() -> None:
    """Built from scratch (not loaded), the same data gives the fixture's bytes, except that a Python
    datetime has microseconds: chrono would write the same instant with 6 digits too."""
    text = (FIXTURES / "rust_chatgpt_auth.json").read_text()
    loaded = AuthDotJson.from_json(text)
    assert loaded.tokens is not None
    fresh = AuthDotJson(
        auth_mode=AuthMode.CHATGPT,
        openai_api_key=None,
        tokens=TokenData.from_tokens(
            loaded.tokens.id_token.raw_jwt, loaded.tokens.access_token, loaded.tokens.refresh_token
        ),
        last_refresh=datetime(2026, 3, 6, 22, 9, 36, 685438, tzinfo=UTC),
    )
    assert fresh == loaded
    assert fresh.to_pretty_json() == text.replace(".685438123Z", ".685438Z")


def test_nanoseconds_are_dropped_when_last_refresh_changes() -> None:
    auth = AuthDotJson.from_json((FIXTURES / "rust_chatgpt_auth.json").read_text())
    auth.last_refresh = datetime(2026, 4, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert auth.last_refresh_text() == "2026-04-01T00:00:00.250Z"
    assert '"last_refresh": "2026-04-01T00:00:00.250Z"' in auth.to_pretty_json()


def test_python_era_file_without_auth_mode_loads() -> None:
    auth = AuthDotJson.from_json((FIXTURES / "legacy_python_auth.json").read_text())
    assert auth.auth_mode is None
    assert auth.resolved_mode() is AuthMode.API_KEY
    assert auth.last_refresh == datetime(2025, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert auth.tokens is not None
    assert auth.tokens.id_token.email == "user@example.com"
    written = auth.to_pretty_json()
    assert not written.startswith('{\n  "auth_mode"')
    assert AuthDotJson.from_json(written) == auth


def test_file_without_auth_mode_or_api_key_is_chatgpt() -> None:
    doc = {"tokens": {"id_token": make_jwt({}), "access_token": "a", "refresh_token": "r"}}
    auth = AuthDotJson.from_json(json.dumps(doc))
    assert auth.resolved_mode() is AuthMode.CHATGPT
    assert auth.openai_api_key is None
    assert auth.tokens is not None
    assert auth.tokens.account_id is None


def test_unknown_keys_are_preserved_after_the_known_ones() -> None:
    text = json.dumps(
        {
            "future_top": {"nested": [1, 2.5, None, True]},
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": make_jwt({"email": "x@example.com"}),
                "access_token": "a",
                "refresh_token": "r",
                "account_id": None,
                "token_extra": "kept",
            },
            "last_refresh": "2026-03-06T22:09:36.685438123Z",
            "another": [],
        }
    )
    auth = AuthDotJson.from_json(text)
    assert auth.extra == {"future_top": {"nested": [1, 2.5, None, True]}, "another": []}
    assert auth.tokens is not None
    assert auth.tokens.extra == {"token_extra": "kept"}
    auth.tokens.access_token = "a2"
    written = json.loads(auth.to_pretty_json())
    assert list(written) == ["auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh", "future_top", "another"]
    assert list(written["tokens"]) == ["id_token", "access_token", "refresh_token", "account_id", "token_extra"]
    assert written["tokens"]["access_token"] == "a2"
    assert written["future_top"] == {"nested": [1, 2.5, None, True]}


def test_extra_cannot_shadow_known_keys() -> None:
    auth = AuthDotJson.from_api_key("sk-real")
    auth.extra["OPENAI_API_KEY"] = "sk-shadow"
    auth.extra["auth_mode"] = "chatgpt"
    assert auth.to_compact_json() == '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-real"}'


json_values: st.SearchStrategy[object] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@st.composite
def auth_records(draw: st.DrawFn) -> AuthDotJson:
    tokens = None
    if draw(st.booleans()):
        claims: dict[str, object] = {}
        email = draw(st.one_of(st.none(), st.text()))
        if email is not None:
            claims["email"] = email
        if draw(st.booleans()):
            claims[AUTH_CLAIM] = {"chatgpt_account_id": draw(st.text()), "chatgpt_plan_type": draw(st.text())}
        tokens = TokenData(
            parse_id_token(make_jwt(claims)),
            draw(st.text()),
            draw(st.text()),
            draw(st.one_of(st.none(), st.text())),
            draw(
                st.dictionaries(
                    st.text().filter(lambda k: k not in {"id_token", "access_token", "refresh_token", "account_id"}),
                    json_values,
                    max_size=2,
                )
            ),
        )
    return AuthDotJson(
        auth_mode=draw(st.one_of(st.none(), st.sampled_from(list(AuthMode)))),
        openai_api_key=draw(st.one_of(st.none(), st.text())),
        tokens=tokens,
        last_refresh=draw(st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)))),
        extra=draw(
            st.dictionaries(
                st.text().filter(lambda k: k not in {"auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"}),
                json_values,
                max_size=3,
            )
        ),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(auth_records())
def test_what_we_write_parses_back(auth: AuthDotJson) -> None:
    for text in (auth.to_pretty_json(), auth.to_compact_json()):
        again = AuthDotJson.from_json(text)
        assert again == auth
        assert again.to_pretty_json() == auth.to_pretty_json()
    pretty = auth.to_pretty_json()
    assert json.loads(pretty) == json.loads(auth.to_compact_json())
    assert pretty == json.dumps(json.loads(pretty), indent=2, ensure_ascii=False)


CANARY_JWT = make_jwt({"email": CANARY})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'{{"OPENAI_API_KEY": "{CANARY}",\n  oops}}', "invalid JSON at line 2 column 3 ("),
        ("", "invalid JSON at line 1 column 1 ("),
        (f'["{CANARY}"]', "expected a JSON object at the top level"),
        (f'{{"OPENAI_API_KEY": 5, "x": "{CANARY}"}}', "OPENAI_API_KEY must be a string or null"),
        ('{"auth_mode": "agentIdentity"}', 'unsupported auth_mode "agentIdentity"'),
        (f'{{"auth_mode": "{CANARY} <x>"}}', "unsupported auth_mode"),
        ('{"auth_mode": 1}', "auth_mode must be a string"),
        (f'{{"tokens": "{CANARY}"}}', "tokens must be an object"),
        (
            f'{{"tokens": {{"id_token": "{CANARY_JWT}", "refresh_token": "{CANARY}"}}}}',
            "tokens.access_token is missing",
        ),
        (
            f'{{"tokens": {{"id_token": 1, "access_token": "{CANARY}", "refresh_token": "r"}}}}',
            "tokens.id_token must be a string",
        ),
        (
            f'{{"tokens": {{"id_token": "{CANARY}", "access_token": "a", "refresh_token": "r"}}}}',
            "tokens.id_token: invalid ID token format",
        ),
        (
            f'{{"tokens": {{"id_token": "{CANARY_JWT}", "access_token": "a", "refresh_token": "r", "account_id": 1}}}}',
            "tokens.account_id must be a string or null",
        ),
        (f'{{"last_refresh": "{CANARY}"}}', "last_refresh is not an RFC 3339 timestamp"),
        ('{"last_refresh": 1700000000}', "last_refresh must be a string"),
        (f'{{"OPENAI_API_KEY": "{CANARY}", "x": NaN}}', "invalid JSON"),
        (f'{{"OPENAI_API_KEY": "{CANARY}\\ud800"}}', "invalid JSON: a string holds an unpaired surrogate"),
        ("[" * 100_000, "invalid JSON"),
    ],
)
def test_malformed_records_name_the_problem_never_the_content(text: str, message: str) -> None:
    with pytest.raises(AuthParseError) as info:
        AuthDotJson.from_json(text)
    assert str(info.value).startswith(message)
    assert CANARY not in str(info.value)
    assert info.value.kind is ErrorKind.INVALID_DATA
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(AuthParseError, match=r"^stream did not contain valid UTF-8$"):
        AuthDotJson.from_json(b'{"OPENAI_API_KEY": "\xff"}')


# ---------------------------------------------------------------------------------------------------------
# FileStore


def test_load_missing_returns_none(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "does-not-exist").load() is None


def test_save_creates_codex_home_0700_and_file_0600(tmp_path: Path) -> None:
    """Security F4: a missing CODEX_HOME (and its missing parents) is created with 0700."""
    old_umask = os.umask(0o022)
    try:
        home = tmp_path / "a" / "b" / "codex-home"
        store = FileStore(home)
        assert store.save(AuthDotJson.from_api_key("sk-1")) == "file"
    finally:
        os.umask(old_umask)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", home):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "auth.json").stat().st_mode) == 0o600
    assert tree(home) == ["auth.json"]
    assert (home / "auth.json").read_text() == AuthDotJson.from_api_key("sk-1").to_pretty_json()


def test_directory_sync_runs_in_save_unless_deferred_then_once_in_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fsync of CODEX_HOME (which makes the rename durable) is part of save(); a store told to defer
    it leaves it to sync(), which runs it once. auth.json is complete and in place either way."""
    synced: list[str] = []
    real = storage._fsync_directory

    def recording(directory: str) -> None:
        synced.append(directory)
        real(directory)

    monkeypatch.setattr(storage, "_fsync_directory", recording)
    home = tmp_path / "home"
    FileStore(home).save(AuthDotJson.from_api_key("sk-1"))
    assert synced == [str(home)]
    for store in (FileStore(home), AutoStore(home), KeyringStore(home)):
        synced.clear()
        store.defer_directory_sync()
        target = store if isinstance(store, FileStore) else store.file
        target.save(AuthDotJson.from_api_key("sk-2"))
        assert synced == []
        assert json.loads((home / "auth.json").read_text())["OPENAI_API_KEY"] == "sk-2"
        store.sync()
        store.sync()
        assert synced == [str(home)]
    synced.clear()
    EphemeralStore(home).sync()  # stores that write no file have nothing to sync
    FileStore(home).sync()  # nothing saved: nothing to sync
    assert synced == []


def test_existing_codex_home_mode_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "existing-home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    FileStore(home).save(AuthDotJson.from_api_key("sk-1"))
    assert stat.S_IMODE(home.stat().st_mode) == 0o755


def test_old_0644_file_becomes_0600(home: Path) -> None:
    """Security F2: the reference keeps an existing file's mode; the atomic replace gives 0600."""
    auth_file = home / "auth.json"
    auth_file.write_text("{}")
    auth_file.chmod(0o644)
    old_umask = os.umask(0)
    try:
        FileStore(home).save(AuthDotJson.from_api_key("sk-2"))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600


def test_save_replaces_atomically_with_a_new_inode(home: Path) -> None:
    store = FileStore(home)
    store.save(AuthDotJson.from_api_key("sk-1"))
    inode = (home / "auth.json").stat().st_ino
    store.save(AuthDotJson.from_api_key("sk-2"))
    assert (home / "auth.json").stat().st_ino != inode
    loaded = store.load()
    assert loaded is not None
    assert loaded.openai_api_key == "sk-2"
    assert temp_files(home) == []


def test_symlinked_auth_json_is_never_written_through_or_replaced(home: Path, tmp_path: Path) -> None:
    """Security F3 (pinned policy): refuse. The target keeps its bytes, the link stays a link."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim_hash = hashlib.sha256(victim.read_bytes()).hexdigest()
    (home / "auth.json").symlink_to(victim)
    store = FileStore(home)
    with pytest.raises(AuthSaveError) as info:
        store.save(AuthDotJson.from_api_key(f"sk-{CANARY}"))
    assert str(info.value) == (f"{home / 'auth.json'} is a symbolic link; refusing to write credentials through it")
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim_hash
    assert (home / "auth.json").is_symlink()
    assert temp_files(home) == []
    with pytest.raises(StorageError, match=r"is a symbolic link; refusing to read credentials through it$"):
        store.load()


def test_symlink_to_a_valid_auth_file_is_not_read(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(AuthDotJson.from_api_key(f"sk-{CANARY}").to_pretty_json())
    (home / "auth.json").symlink_to(elsewhere)
    with pytest.raises(StorageError) as info:
        FileStore(home).load()
    assert CANARY not in str(info.value)


def test_codex_home_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    """Security F10 as root: ENOTDIR. The error is both a StorageError and a PersistError."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    store = FileStore(blocker / "codex-home")
    with pytest.raises(AuthSaveError) as info:
        store.save(AuthDotJson.from_api_key(f"sk-{CANARY}"))
    err = info.value
    assert str(err) == f"failed to create {blocker / 'codex-home'}: Not a directory"
    assert isinstance(err, StorageError) and isinstance(err, PersistError) and isinstance(err, LoginError)
    assert err.failure_class == "persist_failed"
    assert CANARY not in str(err)
    assert blocker.read_text() == "not a directory"


def test_codex_home_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(AuthSaveError, match=r"Not a directory$"):
        FileStore(blocker).save(AuthDotJson.from_api_key("sk"))


def test_auth_json_directory_fails_cleanly(home: Path) -> None:
    """EISDIR on the rename: the directory is untouched and the temporary file is removed."""
    (home / "auth.json").mkdir()
    (home / "auth.json" / "keep").write_text("x")
    with pytest.raises(AuthSaveError) as info:
        FileStore(home).save(AuthDotJson.from_api_key(f"sk-{CANARY}"))
    assert str(info.value) in {
        f"failed to write {home / 'auth.json'}: Is a directory",
        f"failed to write {home / 'auth.json'}: Directory not empty",
    }
    assert (home / "auth.json" / "keep").read_text() == "x"
    assert temp_files(home) == []
    with pytest.raises(StorageError, match=r"failed to read .*auth\.json: Is a directory$"):
        FileStore(home).load()


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def test_disk_full_keeps_the_old_file_and_removes_the_temp_file(home: Path) -> None:
    """Security F5: RLIMIT_FSIZE with SIGXFSZ ignored makes write() fail with EFBIG (works as root)."""
    store = FileStore(home)
    store.save(AuthDotJson.from_api_key("sk-old"))
    before = snapshot(home / "auth.json")
    code = """
        import json, sys
        from codex_login.storage import AuthDotJson, AuthSaveError, FileStore
        try:
            FileStore(sys.argv[1]).save(AuthDotJson.from_api_key("sk-" + "x" * 8192))
        except AuthSaveError as err:
            print(json.dumps({"error": str(err)}))
        else:
            print(json.dumps({"error": None}))
    """
    proc = run_python(code, str(home), preexec_fn=_limit_file_size)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["error"] == f"failed to write {home / 'auth.json'}: File too large"
    assert snapshot(home / "auth.json") == before
    assert temp_files(home) == []
    assert tree(home) == ["auth.json"]


class _SignalRaised(Exception):
    """What the device sign-in's SIGTERM handler raises (``DeviceLoginStopped``): an ``Exception``, not an
    ``OSError``, landing wherever the main thread is, a save included."""


#: The system calls of FileStore.save, in order, from the temporary file's creation to the rename.
_SAVE_STEPS = ("open", "fchmod", "write", "fsync", "close", "replace")


@pytest.mark.parametrize("fault", ["OSError", "KeyboardInterrupt", "signal-handler-exception"])
@pytest.mark.parametrize("step", _SAVE_STEPS)
def test_a_save_failing_at_any_step_keeps_the_old_file_and_leaves_no_temp_file(
    home: Path, monkeypatch: pytest.MonkeyPatch, step: str, fault: str
) -> None:
    """Each step of the save fails in turn: with an I/O error (disk full, EIO), with Ctrl-C's
    KeyboardInterrupt, or with the exception a signal handler raises (the device sign-in saves in the main
    thread, where its SIGTERM handler raises). The previous auth.json keeps its bytes, inode and 0600 mode,
    no temporary file stays in CODEX_HOME, the lock is free and the next save works."""
    store = FileStore(home)
    store.save(AuthDotJson.from_api_key("sk-old"))
    before = snapshot(home / "auth.json")
    temp_prefix = os.fspath(home / storage.TEMP_PREFIX)
    real_open, real = os.open, getattr(os, step)
    temp_fds: list[int] = []
    calls: list[str] = []

    def recording_open(path: str, flags: int, mode: int = 0o777) -> int:
        if step == "open" and path.startswith(temp_prefix):
            return failing(path)  # type: ignore[return-value]
        fd = real_open(path, flags, mode)
        if path.startswith(temp_prefix):
            temp_fds.append(fd)
        return fd

    def failing(*args: object) -> object:
        # The lock and the directory sync open, sync and close descriptors too: fail only the temporary file's.
        if step != "open" and args[0] not in temp_fds:
            return real(*args)
        calls.append(step)
        if step == "close":
            real(*args)  # close(2) frees the descriptor even when it reports an error
        if fault == "OSError":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        raise KeyboardInterrupt() if fault == "KeyboardInterrupt" else _SignalRaised()

    monkeypatch.setattr(os, "open", recording_open)
    if step == "replace":
        temp_fds.append(-1)
        monkeypatch.setattr(os, "replace", lambda src, dst: failing(-1))
    elif step != "open":
        monkeypatch.setattr(os, step, failing)
    expected: type[BaseException] = {
        "OSError": AuthSaveError,
        "KeyboardInterrupt": KeyboardInterrupt,
        "signal-handler-exception": _SignalRaised,
    }[fault]
    with auth_lock(home), pytest.raises(expected) as info:
        FileStore(home).save(AuthDotJson.from_api_key("sk-new"))
    monkeypatch.undo()
    assert calls == [step]
    if fault == "OSError":
        assert str(info.value) == f"failed to write {home / 'auth.json'}: Input/output error"
    assert snapshot(home / "auth.json") == before
    assert tree(home) == [".auth.lock", "auth.json"]
    proc = run_python(LOCK_CHILD, str(home), "5")  # another process gets the lock at once
    assert proc.stdout.strip() == "acquired"
    store.save(AuthDotJson.from_api_key("sk-next"))
    loaded = store.load()
    assert loaded is not None and loaded.openai_api_key == "sk-next"
    assert tree(home) == [".auth.lock", "auth.json"]


def test_crash_after_temp_write_never_truncates_and_next_save_cleans_up(home: Path) -> None:
    """Security F6: a crash between write and rename leaves the old file; the complete temporary file left
    behind is removed by the next save."""
    store = FileStore(home)
    store.save(AuthDotJson.from_api_key("sk-old"))
    before = snapshot(home / "auth.json")
    code = """
        import sys
        from codex_login.storage import AuthDotJson, FileStore
        FileStore(sys.argv[1]).save(AuthDotJson.from_api_key("sk-new"))
        print("not reached")
    """
    proc = run_python(code, str(home), env={"CODEX_LOGIN_TEST_CRASH_AFTER_TEMP_WRITE": "1"})
    assert proc.returncode == 137
    assert "not reached" not in proc.stdout
    assert snapshot(home / "auth.json") == before
    leftovers = temp_files(home)
    assert len(leftovers) == 1
    leftover = home / leftovers[0]
    assert leftover.read_text() == AuthDotJson.from_api_key("sk-new").to_pretty_json()
    assert stat.S_IMODE(leftover.stat().st_mode) == 0o600

    store.save(AuthDotJson.from_api_key("sk-third"))
    assert temp_files(home) == []
    loaded = store.load()
    assert loaded is not None
    assert loaded.openai_api_key == "sk-third"


def test_stale_temp_cleanup_spares_live_writers(home: Path) -> None:
    live = home / f".auth.json.tmp-{os.getppid()}-aaaaaaaaaaaa"
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dead = home / f".auth.json.tmp-{dead_pid}-bbbbbbbbbbbb"
    ancient = home / f".auth.json.tmp-{os.getppid()}-cccccccccccc"
    garbage = home / ".auth.json.tmp-notapid"
    unrelated = home / "notes.txt"
    for path in (live, dead, ancient, garbage, unrelated):
        path.write_text("x")
    two_hours_ago = time.time() - 7200
    os.utime(ancient, (two_hours_ago, two_hours_ago))
    FileStore(home).save(AuthDotJson.from_api_key("sk"))
    assert tree(home) == sorted(["auth.json", live.name, unrelated.name])


def test_load_malformed_file_names_path_and_position_not_content(home: Path) -> None:
    (home / "auth.json").write_text(f'{{\n  "OPENAI_API_KEY": "{CANARY}",\n    ,\n}}')
    with pytest.raises(AuthParseError) as info:
        FileStore(home).load()
    message = str(info.value)
    assert message.startswith(f"failed to parse {home / 'auth.json'}: invalid JSON at line 3 column 5 (")
    assert CANARY not in message


def test_load_malformed_id_token_fails_like_the_reference(home: Path) -> None:
    doc = {"tokens": {"id_token": f"{CANARY}.x", "access_token": CANARY, "refresh_token": CANARY}}
    (home / "auth.json").write_text(json.dumps(doc))
    with pytest.raises(AuthParseError) as info:
        FileStore(home).load()
    assert str(info.value) == f"failed to parse {home / 'auth.json'}: tokens.id_token: invalid ID token format"


def test_load_fifo_does_not_hang(home: Path) -> None:
    os.mkfifo(home / "auth.json")
    with pytest.raises(StorageError, match=r"not a regular file$"):
        FileStore(home).load()


def test_delete(home: Path, tmp_path: Path) -> None:
    store = FileStore(home)
    store.save(AuthDotJson.from_api_key("sk"))
    assert store.delete() is True
    assert store.delete() is False
    assert tree(home) == []
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (home / "auth.json").symlink_to(victim)
    assert store.delete() is True
    assert victim.read_text() == "keep"


def test_delete_failure_is_a_storage_error(home: Path) -> None:
    (home / "auth.json").mkdir()
    with pytest.raises(StorageError, match=r"^failed to delete .*auth\.json: Is a directory$"):
        FileStore(home).delete()


def test_file_store_describe(home: Path) -> None:
    assert FileStore(home).describe() == StoreInfo("file", str(home / "auth.json"))


def test_concurrent_readers_never_see_a_partial_file(home: Path) -> None:
    """Atomic replace: a reader polling while another process rewrites sees only complete records."""
    store = FileStore(home)
    store.save(AuthDotJson.from_api_key("sk-" + "a" * 4000))
    code = """
        import sys
        from codex_login.storage import AuthDotJson, FileStore
        store = FileStore(sys.argv[1])
        for i in range(150):
            store.save(AuthDotJson.from_api_key("sk-" + ("b" if i % 2 else "c") * (4000 + i)))
    """
    writer = subprocess.Popen(
        [sys.executable, "-B", "-c", textwrap.dedent(code), str(home)],
        env={**os.environ, "PYTHONPATH": SRC},
    )
    reads = 0
    try:
        while writer.poll() is None:
            loaded = store.load()
            assert loaded is not None and loaded.openai_api_key is not None
            assert loaded.openai_api_key.startswith("sk-")
            reads += 1
    finally:
        writer.wait(60)
    assert writer.returncode == 0
    assert reads > 0
    assert temp_files(home) == []


# ---------------------------------------------------------------------------------------------------------
# Keyring key


def test_store_key_hashes_the_canonical_path(home: Path, tmp_path: Path) -> None:
    expected = "cli|" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    assert store_key(home) == expected
    link = tmp_path / "link-to-home"
    link.symlink_to(home)
    assert store_key(link) == expected
    assert store_key(str(home) + "/") == expected


def test_store_key_falls_back_to_the_raw_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "home"
    assert store_key(missing) == "cli|" + hashlib.sha256(str(missing).encode()).hexdigest()[:16]


def _home_behind_a_link(tmp_path: Path) -> Path:
    """A CODEX_HOME that does not exist yet, reached through a symlink (``~/.codex`` with ``$HOME`` a link):
    its store key changes from the raw path's hash to the canonical path's once the directory is created."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    return tmp_path / "link" / ".codex"


def test_keyring_store_built_before_codex_home_exists_saves_where_later_reads_look(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    """What a sign-in does: build the store, then take the auth lock (which creates CODEX_HOME), then save."""
    home = _home_behind_a_link(tmp_path)
    raw_key = store_key(home)
    store = KeyringStore(home)
    auth = AuthDotJson.from_api_key("sk-new")
    with auth_lock(home):
        store.save(auth)
    assert store_key(home) != raw_key  # the directory now exists: the canonical path is hashed
    assert memory_keyring.entries == {(KEYRING_SERVICE, store_key(home)): auth.to_compact_json()}
    assert KeyringStore(home).load() == auth
    assert store.describe() == StoreInfo("keyring", f"Codex Auth / {store_key(home)}")
    assert store.delete() is True
    assert memory_keyring.entries == {}


def test_ephemeral_store_built_before_codex_home_exists_saves_where_later_reads_look(tmp_path: Path) -> None:
    home = _home_behind_a_link(tmp_path)
    store = EphemeralStore(home)
    home.mkdir()  # e.g. a log directory or another process creates it meanwhile
    auth = AuthDotJson.from_api_key("sk-new")
    try:
        store.save(auth)
        assert EphemeralStore(home).load() == auth
    finally:
        store.delete()


# ---------------------------------------------------------------------------------------------------------
# KeyringStore


def test_keyring_save_load_and_fallback_file_removed(home: Path, memory_keyring: MemoryKeyring) -> None:
    (home / "auth.json").write_text("stale")
    auth = chatgpt_auth()
    store = KeyringStore(home)
    assert store.save(auth) == "keyring"
    assert memory_keyring.entries == {(KEYRING_SERVICE, store_key(home)): auth.to_compact_json()}
    assert tree(home) == []
    assert store.load() == auth
    assert store.warnings == []
    assert store.describe() == StoreInfo("keyring", f"Codex Auth / {store_key(home)}")


def test_keyring_reads_what_the_rust_cli_stored(home: Path, memory_keyring: MemoryKeyring) -> None:
    compact = json.dumps(json.loads((FIXTURES / "rust_chatgpt_auth.json").read_text()), separators=(",", ":"))
    memory_keyring.entries[(KEYRING_SERVICE, store_key(home))] = compact
    store = KeyringStore(home)
    loaded = store.load()
    assert loaded is not None
    assert loaded.to_compact_json() == compact


def test_keyring_missing_entry_is_none(home: Path, memory_keyring: MemoryKeyring) -> None:
    assert KeyringStore(home).load() is None
    assert memory_keyring.entries == {}


def test_keyring_unavailable_save_fails_and_writes_no_file(home: Path, no_keyring: None) -> None:
    """Security F8, keyring mode: a clear error and no file write."""
    store = KeyringStore(home)
    with pytest.raises(AuthSaveError) as info:
        store.save(AuthDotJson.from_api_key(f"sk-{CANARY}"))
    assert str(info.value).startswith("failed to write OAuth tokens to keyring: No recommended backend")
    assert isinstance(info.value, PersistError)
    assert CANARY not in str(info.value)
    assert tree(home) == []
    info_ = store.describe()
    assert info_.name == "keyring"
    assert info_.reason is not None and info_.reason.startswith("No recommended backend")


def test_keyring_unavailable_load_error(home: Path, no_keyring: None) -> None:
    with pytest.raises(StorageError, match=r"^failed to load CLI auth from keyring: No recommended backend"):
        KeyringStore(home).load()


def test_keyring_invalid_json_is_an_error_without_content(home: Path, memory_keyring: MemoryKeyring) -> None:
    memory_keyring.entries[(KEYRING_SERVICE, store_key(home))] = f"{{not json {CANARY}"
    with pytest.raises(AuthParseError) as info:
        KeyringStore(home).load()
    assert str(info.value).startswith("failed to deserialize CLI auth from keyring: invalid JSON at line 1 column 2")
    assert CANARY not in str(info.value)


def test_keyring_fallback_file_removal_failure_is_a_warning(home: Path, memory_keyring: MemoryKeyring) -> None:
    (home / "auth.json").mkdir()
    store = KeyringStore(home)
    assert store.save(AuthDotJson.from_api_key("sk")) == "keyring"
    assert store.warnings == [
        f"failed to remove CLI auth fallback file: failed to delete {home / 'auth.json'}: Is a directory"
    ]


def test_keyring_save_on_a_read_only_home_warns_only_about_an_auth_json_that_exists(
    home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """unlink on a read-only mount fails with EROFS whether or not the file is there (simulated: chmod does
    not stop root in CI). A missing auth.json is nothing to remove; one that is there is still reported."""
    auth_file = os.fspath(home / "auth.json")
    real_unlink = os.unlink

    def read_only_unlink(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if os.fspath(path) == auth_file:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), auth_file)
        real_unlink(path)

    monkeypatch.setattr(os, "unlink", read_only_unlink)
    store = KeyringStore(home)
    assert store.save(AuthDotJson.from_api_key("sk")) == "keyring"
    assert store.warnings == []
    (home / "auth.json").write_text("{}")
    assert store.save(AuthDotJson.from_api_key("sk")) == "keyring"
    assert store.warnings == [
        f"failed to remove CLI auth fallback file: failed to delete {auth_file}: Read-only file system"
    ]


def test_keyring_delete_removes_entry_and_file(home: Path, memory_keyring: MemoryKeyring) -> None:
    store = KeyringStore(home)
    store.save(AuthDotJson.from_api_key("sk"))
    (home / "auth.json").write_text("{}")
    assert store.delete() is True
    assert memory_keyring.entries == {}
    assert tree(home) == []
    assert store.delete() is False
    (home / "auth.json").write_text("{}")
    assert store.delete() is True  # the file alone counts


def test_keyring_delete_error(home: Path, no_keyring: None) -> None:
    (home / "auth.json").write_text("{}")
    with pytest.raises(StorageError, match=r"^failed to delete auth from keyring: No recommended backend"):
        KeyringStore(home).delete()
    assert tree(home) == ["auth.json"]  # parity: the file is not touched when the keyring fails


def test_keyring_timeout(home: Path, hanging_keyring: HangingKeyring) -> None:
    store = KeyringStore(home, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(
        StorageError, match=r"^failed to load CLI auth from keyring: keyring did not answer within 0\.2 s$"
    ):
        store.load()
    assert time.monotonic() - started < 2
    # While the first call is stuck, later calls fail at once instead of stacking threads.
    started = time.monotonic()
    with pytest.raises(AuthSaveError, match=r"keyring did not answer within 0\.2 s$"):
        store.save(AuthDotJson.from_api_key("sk"))
    assert time.monotonic() - started < 0.15
    hanging_keyring.release.set()
    join_stuck_keyring_calls()
    assert store.save(AuthDotJson.from_api_key("sk")) == "keyring"
    loaded = store.load()
    assert loaded is not None
    assert loaded.openai_api_key == "sk"


class SlowToWrite(MemoryKeyring):
    """Reads answer at once; writes and deletes wait until released (an unlock prompt answered late)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(30)
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(30)
        super().delete_password(service, username)


def test_a_keyring_write_that_misses_its_deadline_says_it_may_still_land(home: Path) -> None:
    """The abandoned write is not cancelled: the error must not promise that the old credentials are kept."""
    backend = SlowToWrite()
    keyring.set_keyring(backend)
    old, new = AuthDotJson.from_api_key(f"sk-old-{CANARY}"), AuthDotJson.from_api_key(f"sk-new-{CANARY}")
    entry = (KEYRING_SERVICE, store_key(home))
    backend.entries[entry] = old.to_compact_json()
    store = KeyringStore(home, timeout=0.2)
    try:
        with pytest.raises(AuthSaveError) as info:
            store.save(new)
    finally:
        backend.release.set()
    assert str(info.value) == (
        "failed to write OAuth tokens to keyring: keyring did not answer within 0.2 s; "
        "the keyring may still store them when it answers"
    )
    assert CANARY not in str(info.value)
    join_stuck_keyring_calls()
    assert backend.entries[entry] == new.to_compact_json()  # what the message warned about


def test_a_keyring_delete_that_misses_its_deadline_says_it_may_still_happen(home: Path) -> None:
    backend = SlowToWrite()
    keyring.set_keyring(backend)
    backend.entries[(KEYRING_SERVICE, store_key(home))] = AuthDotJson.from_api_key("sk").to_compact_json()
    try:
        with pytest.raises(StorageError) as info:
            KeyringStore(home, timeout=0.2).delete_entry()
    finally:
        backend.release.set()
    assert str(info.value) == (
        "failed to delete auth from keyring: keyring did not answer within 0.2 s; "
        "the keyring may still delete it when it answers"
    )
    join_stuck_keyring_calls()
    assert backend.entries == {}


def test_keyring_package_missing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    missing = "the keyring store needs the optional dependency: pip install 'codex-login[keyring]'"
    with pytest.raises(StorageError) as info:
        KeyringStore(home).load()
    assert str(info.value) == f"failed to load CLI auth from keyring: {missing}"
    auto = AutoStore(home)
    assert auto.save(AuthDotJson.from_api_key("sk")) == "file_fallback"
    assert auto.warnings == [
        f"failed to save auth to keyring, falling back to file storage: failed to write OAuth tokens to keyring: {missing}"
    ]


# ---------------------------------------------------------------------------------------------------------
# AutoStore


def test_auto_prefers_the_keyring(home: Path, memory_keyring: MemoryKeyring) -> None:
    (home / "auth.json").write_text("stale")
    store = AutoStore(home)
    auth = AuthDotJson.from_api_key("sk")
    assert store.save(auth) == "keyring"
    assert tree(home) == []
    assert store.load() == auth
    assert store.warnings == []
    assert store.describe() == StoreInfo("keyring", f"Codex Auth / {store_key(home)}")


def test_auto_falls_back_to_the_file_with_the_parity_warning(home: Path, no_keyring: None) -> None:
    """Security F8, auto mode: file fallback with a warning."""
    store = AutoStore(home)
    auth = AuthDotJson.from_api_key(f"sk-{CANARY}")
    assert store.save(auth) == "file_fallback"
    assert (home / "auth.json").read_text() == auth.to_pretty_json()
    assert len(store.warnings) == 1
    assert store.warnings[0].startswith(
        "failed to save auth to keyring, falling back to file storage: "
        "failed to write OAuth tokens to keyring: No recommended backend"
    )
    assert CANARY not in store.warnings[0]
    described = store.describe()
    assert (described.name, described.location) == ("file_fallback", str(home / "auth.json"))
    assert described.reason is not None and "No recommended backend" in described.reason

    fresh = AutoStore(home)
    assert fresh.load() == auth
    assert fresh.warnings[0].startswith(
        "failed to load CLI auth from keyring, falling back to file storage: "
        "failed to load CLI auth from keyring: No recommended backend"
    )
    assert fresh.describe().name == "file_fallback"


def test_auto_uses_the_file_when_the_keyring_is_empty(home: Path, memory_keyring: MemoryKeyring) -> None:
    auth = AuthDotJson.from_api_key("sk")
    FileStore(home).save(auth)
    store = AutoStore(home)
    assert store.describe() == StoreInfo(
        "file", str(home / "auth.json"), "the keyring holds no credentials for this CODEX_HOME"
    )
    assert store.load() == auth
    assert store.warnings == []
    assert store.describe().name == "file"


def test_auto_describe_probe_before_any_operation(home: Path, memory_keyring: MemoryKeyring) -> None:
    assert AutoStore(home).describe() == StoreInfo("keyring", f"Codex Auth / {store_key(home)}")
    assert tree(home) == []


def test_auto_invalid_keyring_json_warns_and_uses_the_file(home: Path, memory_keyring: MemoryKeyring) -> None:
    """Security F9: treated as the file's state (here: not logged in), with a warning that has no content."""
    memory_keyring.entries[(KEYRING_SERVICE, store_key(home))] = f"[{CANARY}"
    store = AutoStore(home)
    assert store.load() is None
    assert len(store.warnings) == 1
    assert store.warnings[0].startswith(
        "failed to load CLI auth from keyring, falling back to file storage: "
        "failed to deserialize CLI auth from keyring: invalid JSON"
    )
    assert CANARY not in store.warnings[0]


def test_auto_timeout_falls_back(home: Path, hanging_keyring: HangingKeyring) -> None:
    store = AutoStore(home, timeout=0.2)
    assert store.save(AuthDotJson.from_api_key("sk")) == "file_fallback"
    assert store.warnings == [
        "failed to save auth to keyring, falling back to file storage: "
        "failed to write OAuth tokens to keyring: keyring did not answer within 0.2 s; "
        "the keyring may still store them when it answers"
    ]
    assert store.describe().reason == (
        "failed to write OAuth tokens to keyring: keyring did not answer within 0.2 s; "
        "the keyring may still store them when it answers"
    )


def test_auto_delete(home: Path, memory_keyring: MemoryKeyring) -> None:
    store = AutoStore(home)
    store.save(AuthDotJson.from_api_key("sk"))
    (home / "auth.json").write_text("{}")
    assert store.delete() is True
    assert memory_keyring.entries == {}
    assert tree(home) == []
    assert store.delete() is False


def test_auto_delete_with_unavailable_keyring_still_removes_the_file(home: Path, no_keyring: None) -> None:
    store = AutoStore(home)
    store.save(AuthDotJson.from_api_key("sk"))
    store.warnings.clear()
    assert store.delete() is True
    assert tree(home) == []
    assert len(store.warnings) == 1
    assert store.warnings[0].startswith(
        "failed to delete auth from keyring, removing the file only: failed to delete auth from keyring: "
    )


# ---------------------------------------------------------------------------------------------------------
# EphemeralStore, create_store, load_auth


def test_ephemeral_store_is_process_wide_and_in_memory_only(home: Path, tmp_path: Path) -> None:
    other_home = tmp_path / "other"
    auth = chatgpt_auth()
    first = EphemeralStore(home)
    assert first.load() is None
    assert first.save(auth) == "ephemeral"
    second = EphemeralStore(home)
    loaded = second.load()
    assert loaded == auth
    assert loaded is not auth
    assert EphemeralStore(other_home).load() is None
    assert loaded is not None and loaded.tokens is not None
    loaded.tokens.access_token = "mutated"
    assert first.load() == auth  # the stored copy is not shared
    assert tree(home) == []
    assert first.describe() == StoreInfo("ephemeral", f"process memory ({store_key(home)})")
    assert second.delete() is True
    assert first.load() is None
    assert first.delete() is False


@pytest.mark.parametrize(
    ("mode", "cls"),
    [
        (StoreMode.FILE, FileStore),
        (StoreMode.KEYRING, KeyringStore),
        (StoreMode.AUTO, AutoStore),
        (StoreMode.EPHEMERAL, EphemeralStore),
        ("file", FileStore),
        ("auto", AutoStore),
    ],
)
def test_create_store(home: Path, mode: StoreMode | str, cls: type) -> None:
    assert type(create_store(home, mode)) is cls


def test_create_store_rejects_unknown_mode(home: Path) -> None:
    with pytest.raises(ValueError):
        create_store(home, "vault")


def test_load_auth_collects_warnings(home: Path, no_keyring: None) -> None:
    FileStore(home).save(AuthDotJson.from_api_key("sk"))
    warnings: list[str] = []
    loaded = load_auth(home, StoreMode.AUTO, warnings)
    assert loaded is not None and loaded.openai_api_key == "sk"
    assert len(warnings) == 1 and warnings[0].startswith("failed to load CLI auth from keyring, falling back")
    assert load_auth(home) == loaded


def test_file_mode_never_imports_keyring(home: Path) -> None:
    """``status`` stays fast: storage (file mode) imports only the standard library."""
    FileStore(home).save(AuthDotJson.from_api_key("sk"))
    code = """
        import sys
        from codex_login.storage import load_auth
        before = set(sys.modules)
        assert load_auth(sys.argv[1]).openai_api_key == "sk"
        third_party = sorted(
            m for m in sys.modules if m.split(".")[0] in {"keyring", "httpx", "truststore", "jaraco"}
        )
        print(",".join(third_party) or "none")
    """
    proc = run_python(code, str(home))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none"


# ---------------------------------------------------------------------------------------------------------
# auth_lock


LOCK_CHILD = """
    import sys, time
    from codex_login.errors import StorageError
    from codex_login.storage import auth_lock
    try:
        with auth_lock(sys.argv[1], timeout=float(sys.argv[2])):
            print("acquired", flush=True)
    except StorageError as err:
        print("refused:" + str(err), flush=True)
"""


def test_lock_excludes_a_second_process(home: Path) -> None:
    """Security F7: the lock file is 0600, and another process waits for it, then times out."""
    with auth_lock(home):
        lock_file = home / ".auth.lock"
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
        started = time.monotonic()
        proc = run_python(LOCK_CHILD, str(home), "0.3")
        waited = time.monotonic() - started
        assert proc.stdout.startswith("refused:timed out after 0.3 s waiting for the auth lock ")
        assert waited >= 0.3
    proc = run_python(LOCK_CHILD, str(home), "5")
    assert proc.stdout.strip() == "acquired"


def test_lock_waits_for_release(home: Path) -> None:
    released = threading.Event()

    def hold() -> None:
        with auth_lock(home):
            released.wait(5)
            time.sleep(0.3)

    holder = threading.Thread(target=hold)
    with auth_lock(home):
        pass  # create the file
    holder.start()
    time.sleep(0.1)
    child = subprocess.Popen(
        [sys.executable, "-B", "-c", textwrap.dedent(LOCK_CHILD), str(home), "10"],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        text=True,
    )
    released.set()
    out, _ = child.communicate(timeout=30)
    holder.join()
    assert out.strip() == "acquired"


def test_lock_is_reentrant_in_a_thread_and_excludes_other_threads(home: Path) -> None:
    outcome: list[str] = []

    def other_thread() -> None:
        try:
            with auth_lock(home, timeout=0.2):
                outcome.append("acquired")
        except StorageError as err:
            outcome.append(f"refused:{err.kind.value}")

    with auth_lock(home), auth_lock(home):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert outcome == ["refused:TimedOut"]
    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert outcome == ["refused:TimedOut", "acquired"]


def test_lock_creates_codex_home(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    with auth_lock(home):
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / ".auth.lock").exists()


def test_store_lock_takes_the_on_disk_lock_except_for_ephemeral_credentials(tmp_path: Path) -> None:
    ephemeral_home = tmp_path / "memory-only"
    with storage.store_lock(ephemeral_home, StoreMode.EPHEMERAL):
        pass
    assert not ephemeral_home.exists()  # process memory: nothing created on disk
    for mode in (StoreMode.FILE, StoreMode.KEYRING, StoreMode.AUTO):
        home = tmp_path / mode.value
        with storage.store_lock(home, mode):
            assert (home / ".auth.lock").exists()
            proc = run_python(LOCK_CHILD, str(home), "0.1")
            assert proc.stdout.startswith("refused:timed out"), proc.stdout


def _read_only_lock_path(monkeypatch: pytest.MonkeyPatch, home: Path) -> list[int]:
    """Make opening ``home/.auth.lock`` for writing (or creating it) fail with EROFS, as on a read-only
    mount. chmod cannot stand in for that: CI runs as root, where permissions do not stop writes.
    Returns the flags of every open of the lock path."""
    real_open = os.open
    lock_path = os.fspath(home / ".auth.lock")
    flags_seen: list[int] = []

    def fake_open(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if os.fspath(path) == lock_path:
            flags_seen.append(flags)
            if flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), lock_path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    return flags_seen


def test_lock_on_a_read_only_home_opens_an_existing_lock_file_read_only(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flock needs no write access: an existing lock file on a read-only CODEX_HOME still excludes others,
    for a keyring save. auth_lock (refresh, the file store) stays strict: a refresh must fail before it
    spends the refresh token at the issuer, not after, when its new tokens cannot be saved."""
    (home / ".auth.lock").touch(mode=0o600)
    flags_seen = _read_only_lock_path(monkeypatch, home)
    with pytest.raises(StorageError, match="failed to open the auth lock"):
        with auth_lock(home):
            pass
    with storage.store_lock(home, "keyring"):
        assert flags_seen[-1] & (os.O_RDWR | os.O_WRONLY | os.O_CREAT) == 0
        proc = run_python(LOCK_CHILD, str(home), "0.2")  # a process whose os.open is the real one
        assert proc.stdout.startswith("refused:timed out after 0.2 s waiting for the auth lock "), proc.stdout
    proc = run_python(LOCK_CHILD, str(home), "5")
    assert proc.stdout.strip() == "acquired"


def test_a_lock_file_that_cannot_be_created_stops_only_the_file_store(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only CODEX_HOME without a lock file: nobody can hold one, so a keyring (or auto) save goes ahead;
    the strict lock (file store, refresh) still reports the read-only file system."""
    _read_only_lock_path(monkeypatch, home)
    for mode in (StoreMode.KEYRING, StoreMode.AUTO):
        with storage.store_lock(home, mode):
            pass
    read_only = f"failed to open the auth lock {home / '.auth.lock'}: Read-only file system"
    with pytest.raises(StorageError) as info, storage.store_lock(home, StoreMode.FILE):
        pass
    assert str(info.value) == read_only
    with pytest.raises(StorageError) as info, auth_lock(home):
        pass
    assert str(info.value) == read_only
    assert tree(home) == []


def test_a_codex_home_that_cannot_be_created_stops_only_the_file_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "missing" / "home"

    def read_only_mkdir(path: str | os.PathLike[str], mode: int = 0o777, **kwargs: int) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    with storage.store_lock(home, StoreMode.KEYRING):
        pass
    with pytest.raises(StorageError, match=r"^failed to create .*: Read-only file system$"):
        with storage.store_lock(home, StoreMode.FILE):
            pass
    assert not (tmp_path / "missing").exists()


def test_a_lock_file_that_exists_but_cannot_be_opened_is_not_skipped(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else's unreadable lock file may be held: even a keyring save must not go ahead without it."""
    (home / ".auth.lock").touch(mode=0o600)
    real_open = os.open
    lock_path = os.fspath(home / ".auth.lock")

    def denied(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if os.fspath(path) == lock_path:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), lock_path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(StorageError, match=r"^failed to open the auth lock .*: Permission denied$"):
        with storage.store_lock(home, StoreMode.KEYRING):
            pass


def test_a_lock_that_cannot_be_taken_is_a_storage_error_naming_it(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flock can fail outright (NFS refuses an exclusive lock on a read-only descriptor with EBADF): callers
    get a StorageError about the lock, not a bare OSError, and the descriptor is closed."""
    closed: list[int] = []
    real_close = os.close

    def ebadf(fd: int) -> bool:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def recording_close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(storage, "_try_lock", ebadf)
    monkeypatch.setattr(os, "close", recording_close)
    with pytest.raises(StorageError) as info, auth_lock(home, timeout=0.1):
        pass
    assert str(info.value) == f"failed to lock the auth lock {home / '.auth.lock'}: Bad file descriptor"
    assert len(closed) == 1


def test_lock_refuses_a_symlinked_lock_file(home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (home / ".auth.lock").symlink_to(victim)
    with pytest.raises(StorageError, match="failed to open the auth lock"), auth_lock(home, timeout=0.1):
        pass
    assert victim.read_text() == "keep"


def test_two_writers_under_the_lock_leave_one_complete_record(home: Path) -> None:
    """Security F7: two processes released together; the final file parses and is one writer's."""
    barrier = home.parent / "go"
    code = """
        import os, sys, time
        from codex_login.storage import AuthDotJson, FileStore, auth_lock
        home, name, barrier = sys.argv[1], sys.argv[2], sys.argv[3]
        while not os.path.exists(barrier):
            time.sleep(0.005)
        for i in range(20):
            with auth_lock(home):
                FileStore(home).save(AuthDotJson.from_api_key(f"sk-{name}-" + "z" * 3000))
    """
    env = {**os.environ, "PYTHONPATH": SRC}
    writers = [
        subprocess.Popen([sys.executable, "-B", "-c", textwrap.dedent(code), str(home), name, str(barrier)], env=env)
        for name in ("one", "two")
    ]
    time.sleep(0.2)
    barrier.write_text("go")
    for writer in writers:
        assert writer.wait(60) == 0
    loaded = FileStore(home).load()
    assert loaded is not None and loaded.openai_api_key is not None
    assert loaded.openai_api_key.startswith(("sk-one-", "sk-two-"))
    assert temp_files(home) == []
