"""Where credentials live: ``auth.json``, the OS keyring, or process memory (reference §11, DECISIONS D-6).

The record is :class:`AuthDotJson`, serialized exactly like the Rust CLI's serde output, so either CLI reads
what the other wrote:

* keys in struct order: ``auth_mode`` (omitted when absent), ``OPENAI_API_KEY`` (always, ``null`` when
  absent), ``tokens`` (omitted when absent; ``account_id`` inside is always written), ``last_refresh``
  (omitted when absent; RFC 3339 UTC with ``Z``, sub-second digits as chrono's ``AutoSi``: none, 3, 6 or 9);
* ``auth.json`` is serde_json ``to_string_pretty`` (2-space indent, no trailing newline), the keyring value
  is the compact form.

Beyond the reference:

* unknown top-level keys (and unknown keys inside ``tokens``) read from a file are kept in ``extra`` and
  written back after the known keys, so a load-modify-save (refresh) never drops what a newer CLI wrote;
* a ``last_refresh`` with nanoseconds keeps them across load and save of the same instant;
* ``auth.json`` is written atomically: a ``0600`` temporary file ``.auth.json.tmp-<pid>-<random>`` in the
  same directory, ``fsync``, ``os.replace``, ``fsync`` of the directory. A failed save leaves the previous
  file as it was and removes its temporary file, also when what ended it is a signal handler's exception;
  temporary files left by a crashed process are removed by the next save. The result is ``0600`` even when
  the old file was ``0644``;
* a symbolic link at ``auth.json`` is never followed: loading refuses it, saving refuses to replace it
  (``os.replace`` would only swap the link itself, never write through it, but silently turning a link the
  user made into a file is not ours to decide);
* every keyring call runs with a deadline (a locked D-Bus keyring can hang forever);
* :func:`auth_lock` serializes the short local sequences that load, save or remove credentials (a sign-in's
  save, logout, the two ends of a refresh) across processes; :func:`refresh_lock` serializes refreshes, over
  their network round trip, so two processes never spend the same single-use refresh token.

Test-only fault hook: when the environment variable ``CODEX_LOGIN_TEST_CRASH_AFTER_TEMP_WRITE`` is ``1``,
:meth:`FileStore.save` calls ``os._exit(137)`` right after the temporary file is written and synced, before
the rename. It exists so tests can prove a crash never leaves a truncated ``auth.json``; nothing else sets it.

Reading and checking auth.json is ``_credentials``' (``codex-login status`` reads through it without importing
this module); :class:`AuthDotJson` puts the library's types on what it reads.

No error message carries file content, a token or a key. ``keyring`` is imported when a keyring store is
first used, ``threading``, ``copy`` and ``contextlib`` when something needs them. The records are plain
classes rather than dataclasses: importing ``dataclasses`` (which imports ``inspect``) costs as much as
starting Python.
"""

from __future__ import annotations

import _thread
import datetime as _dt
import enum
import errno
import json
import os
import stat
import sys
import time
from abc import ABC, abstractmethod

from codex_login.errors import ErrorKind, PersistError, StorageError
from codex_login.token_data import IdTokenInfo, parse_id_token

from ._credentials import (
    _TOP_LEVEL_KEYS,
    AUTH_FILE_NAME,
    MAX_AUTH_FILE_BYTES,
    AuthParseError,
    StoredAuth,
    format_rfc3339_fields,
    parse_auth_json,
    parse_rfc3339,
    read_auth_file,
    resolved_mode,
    stored_auth_from_dict,
)
from ._credentials import os_error_text as _os_error_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import contextlib
    import threading
    from collections.abc import Callable, Iterator
    from types import ModuleType

    StrPath = str | os.PathLike[str]

__all__ = [
    "AUTH_FILE_NAME",
    "CRASH_HOOK_ENV",
    "KEYRING_SERVICE",
    "LOCK_FILE_NAME",
    "MAX_AUTH_FILE_BYTES",
    "REFRESH_LOCK_FILE_NAME",
    "AuthDotJson",
    "AuthMode",
    "AuthParseError",
    "AuthSaveError",
    "AutoStore",
    "CredentialStore",
    "EphemeralStore",
    "FileStore",
    "KeyringStore",
    "StoreInfo",
    "StoreMode",
    "TokenData",
    "auth_lock",
    "create_store",
    "format_timestamp",
    "load_auth",
    "parse_timestamp",
    "refresh_lock",
    "store_key",
    "store_lock",
]

LOCK_FILE_NAME = ".auth.lock"
REFRESH_LOCK_FILE_NAME = ".refresh.lock"
TEMP_PREFIX = ".auth.json.tmp-"
KEYRING_SERVICE = "Codex Auth"
CRASH_HOOK_ENV = "CODEX_LOGIN_TEST_CRASH_AFTER_TEMP_WRITE"
KEYRING_MISSING = "the keyring store needs the optional dependency: pip install 'codex-login[keyring]'"

#: A temporary file this old is stale even if a process with its PID is alive (PID reuse).
STALE_TEMP_SECONDS = 3600.0
DEFAULT_KEYRING_TIMEOUT = 5.0
#: How long a save or a logout waits for the auth lock. Its holders only load, save or remove credentials
#: (file I/O, keyring calls with their own 5 s deadline): none holds it over a network round trip.
DEFAULT_LOCK_TIMEOUT = 10.0
LOCK_POLL_SECONDS = 0.05

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


# ---------------------------------------------------------------------------------------------------------
# Errors


class AuthSaveError(StorageError, PersistError):
    """Credentials could not be saved. Both a :class:`StorageError` and a :class:`PersistError`."""

    failure_class = "persist_failed"


# ---------------------------------------------------------------------------------------------------------
# Enums and the record


class AuthMode(enum.StrEnum):
    """``auth_mode`` in auth.json (reference ``AuthMode``, camelCase serde)."""

    API_KEY = "apikey"
    CHATGPT = "chatgpt"
    CHATGPT_AUTH_TOKENS = "chatgptAuthTokens"


class StoreMode(enum.StrEnum):
    """``cli_auth_credentials_store`` in config.toml (reference ``AuthCredentialsStoreMode``)."""

    FILE = "file"
    KEYRING = "keyring"
    AUTO = "auto"
    EPHEMERAL = "ephemeral"


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def parse_timestamp(text: str) -> tuple[_dt.datetime, int]:
    """Parse an RFC 3339 timestamp (any number of fractional digits, any offset under 24 hours; ASCII digits).

    Returns the instant as an aware UTC ``datetime`` (truncated to microseconds) and the sub-second part in
    nanoseconds (0..999 999 999; digits beyond the ninth are dropped, as chrono does). Raises ``ValueError``
    (``OverflowError`` when the instant in UTC is outside years 1 to 9999).
    """
    seconds, nanos = parse_rfc3339(text)
    return _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanos // 1000), nanos


def format_timestamp(value: _dt.datetime, nanos: int | None = None) -> str:
    """RFC 3339 UTC with ``Z``, like chrono's serde output (``SecondsFormat::AutoSi``).

    ``nanos`` overrides the sub-second part (it must agree with ``value.microsecond``). A naive ``value`` is
    taken to be UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    else:
        value = value.astimezone(_dt.UTC)
    if nanos is None:
        nanos = value.microsecond * 1000
    return format_rfc3339_fields(value.year, value.month, value.day, value.hour, value.minute, value.second, nanos)


class TokenData:
    """The ``tokens`` object. ``access_token`` and ``refresh_token`` are secrets and stay out of ``repr``.

    Mutable, compared by value, unhashable: what ``@dataclass`` would generate, written out.
    """

    id_token: IdTokenInfo
    access_token: str
    refresh_token: str
    account_id: str | None
    #: Unknown keys read from storage, written back after the known ones.
    extra: dict[str, object]

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, like a dataclass

    def __init__(
        self,
        id_token: IdTokenInfo,
        access_token: str,
        refresh_token: str,
        account_id: str | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        self.id_token = id_token
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.account_id = account_id
        self.extra = {} if extra is None else extra

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TokenData) and other.__class__ is self.__class__:
            return (self.id_token, self.access_token, self.refresh_token, self.account_id, self.extra) == (
                other.id_token,
                other.access_token,
                other.refresh_token,
                other.account_id,
                other.extra,
            )
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(id_token={self.id_token!r}, account_id={self.account_id!r})"

    @classmethod
    def from_tokens(cls, id_token: str, access_token: str, refresh_token: str) -> TokenData:
        """Build from a token response: parses the ID token (raises ``TokenDataError``) and takes
        ``account_id`` from its ``chatgpt_account_id`` claim, as ``persist_tokens_async`` does."""
        info = parse_id_token(id_token)
        return cls(info, access_token, refresh_token, info.chatgpt_account_id)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "id_token": self.id_token.raw_jwt,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "account_id": self.account_id,
        }
        for key, value in self.extra.items():
            if key not in out:
                out[key] = value
        return out


class AuthDotJson:
    """The stored credentials (reference ``AuthDotJson``).

    Mutable, compared by value, unhashable: what ``@dataclass`` would generate, written out. The API key and
    ``extra`` stay out of ``repr``.
    """

    auth_mode: AuthMode | None
    openai_api_key: str | None
    tokens: TokenData | None
    #: Aware UTC. When loaded, the exact nanoseconds are remembered and written back for the same instant.
    last_refresh: _dt.datetime | None
    #: Unknown top-level keys read from storage, written back after the known ones. May hold secrets.
    extra: dict[str, object]
    #: Not part of equality: the loaded ``last_refresh`` and its nanoseconds.
    _last_refresh_exact: tuple[_dt.datetime, int] | None

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, like a dataclass

    def __init__(
        self,
        auth_mode: AuthMode | None = None,
        openai_api_key: str | None = None,
        tokens: TokenData | None = None,
        last_refresh: _dt.datetime | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        self.auth_mode = auth_mode
        self.openai_api_key = openai_api_key
        self.tokens = tokens
        self.last_refresh = last_refresh
        self.extra = {} if extra is None else extra
        self._last_refresh_exact = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AuthDotJson) and other.__class__ is self.__class__:
            return (self.auth_mode, self.openai_api_key, self.tokens, self.last_refresh, self.extra) == (
                other.auth_mode,
                other.openai_api_key,
                other.tokens,
                other.last_refresh,
                other.extra,
            )
        return NotImplemented

    def __repr__(self) -> str:
        return (
            f"{type(self).__qualname__}(auth_mode={self.auth_mode!r}, tokens={self.tokens!r}, "
            f"last_refresh={self.last_refresh!r})"
        )

    # -- construction ---------------------------------------------------------------------------------

    @classmethod
    def from_api_key(cls, api_key: str) -> AuthDotJson:
        """What ``login --with-api-key`` writes: ``{"auth_mode": "apikey", "OPENAI_API_KEY": ...}``."""
        return cls(auth_mode=AuthMode.API_KEY, openai_api_key=api_key)

    @classmethod
    def from_chatgpt_tokens(
        cls, tokens: TokenData, api_key: str | None = None, now: _dt.datetime | None = None
    ) -> AuthDotJson:
        """What a ChatGPT sign-in writes (reference ``persist_tokens_async``); ``last_refresh`` is now."""
        return cls(
            auth_mode=AuthMode.CHATGPT,
            openai_api_key=api_key,
            tokens=tokens,
            last_refresh=now if now is not None else _dt.datetime.now(_dt.UTC),
        )

    def resolved_mode(self) -> AuthMode:
        """``auth_mode``; when absent, apikey if ``OPENAI_API_KEY`` is non-null, else chatgpt."""
        if self.auth_mode is not None:
            return self.auth_mode
        return AuthMode(resolved_mode(None, self.openai_api_key))

    # -- serialization --------------------------------------------------------------------------------

    def last_refresh_text(self) -> str | None:
        """``last_refresh`` as it is written (nanoseconds kept when loaded and unchanged)."""
        if self.last_refresh is None:
            return None
        exact = self._last_refresh_exact
        if exact is not None and exact[0] == self.last_refresh:
            return format_timestamp(self.last_refresh, exact[1])
        return format_timestamp(self.last_refresh)

    def to_dict(self) -> dict[str, object]:
        """The JSON object, keys in the reference's order, then preserved unknown keys."""
        out: dict[str, object] = {}
        if self.auth_mode is not None:
            out["auth_mode"] = AuthMode(self.auth_mode).value
        out["OPENAI_API_KEY"] = self.openai_api_key
        if self.tokens is not None:
            out["tokens"] = self.tokens.to_dict()
        text = self.last_refresh_text()
        if text is not None:
            out["last_refresh"] = text
        for key, value in self.extra.items():
            if key not in _TOP_LEVEL_KEYS:
                out[key] = value
        return out

    def to_pretty_json(self) -> str:
        """serde_json ``to_string_pretty``: what ``auth.json`` holds (no trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    def to_compact_json(self) -> str:
        """serde_json ``to_string``: what the keyring holds."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> AuthDotJson:
        """Parse stored credentials. Raises :class:`AuthParseError`, whose message never quotes content."""
        return cls.from_stored(parse_auth_json(text))

    @classmethod
    def from_dict(cls, doc: object) -> AuthDotJson:
        """Validate a parsed JSON value the way the reference's serde derive does."""
        return cls.from_stored(stored_auth_from_dict(doc))

    @classmethod
    def from_stored(cls, stored: StoredAuth) -> AuthDotJson:
        """The record of validated auth.json content; the exact ``last_refresh`` is kept for saving."""
        tokens: TokenData | None = None
        if stored.tokens is not None:
            read = stored.tokens
            info = IdTokenInfo.from_claims(read.id_token)
            tokens = TokenData(info, read.access_token, read.refresh_token, read.account_id, read.extra)
        last_refresh: _dt.datetime | None = None
        exact: tuple[_dt.datetime, int] | None = None
        if stored.last_refresh is not None:
            seconds, nanos = stored.last_refresh
            last_refresh = _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
            exact = (last_refresh, nanos)
        auth = cls(
            auth_mode=None if stored.auth_mode is None else AuthMode(stored.auth_mode),
            openai_api_key=stored.openai_api_key,
            tokens=tokens,
            last_refresh=last_refresh,
            extra=stored.extra,
        )
        auth._last_refresh_exact = exact
        return auth


# ---------------------------------------------------------------------------------------------------------
# Store interface


class StoreInfo:
    """Where credentials are (or would be) kept, for ``status`` and ``doctor``.

    Immutable, compared and hashed by value: what ``@dataclass(frozen=True)`` would generate, written out.
    """

    #: ``file``, ``keyring``, ``file_fallback`` or ``ephemeral``.
    name: str
    #: The auth.json path, ``Codex Auth / cli|...`` for the keyring, or a description of process memory.
    location: str
    #: Why the keyring is not in use (its error), or why the file is used in auto mode.
    reason: str | None

    def __init__(self, name: str, location: str, reason: str | None = None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "reason", reason)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoreInfo) and other.__class__ is self.__class__:
            return (self.name, self.location, self.reason) == (other.name, other.location, other.reason)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.name, self.location, self.reason))

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(name={self.name!r}, location={self.location!r}, reason={self.reason!r})"


class CredentialStore(ABC):
    """A place for :class:`AuthDotJson`. ``warnings`` collects fallbacks for the CLI to print."""

    #: The :class:`StoreMode` value this store implements.
    name: str = ""

    def __init__(self, warnings: list[str] | None = None) -> None:
        self.warnings: list[str] = warnings if warnings is not None else []

    @abstractmethod
    def load(self) -> AuthDotJson | None:
        """The stored credentials, ``None`` when there are none. Raises :class:`StorageError`."""

    @abstractmethod
    def save(self, auth: AuthDotJson) -> str:
        """Store ``auth``; return the name of the store that holds it (``file``, ``keyring``,
        ``file_fallback``, ``ephemeral``). Raises :class:`AuthSaveError`."""

    @abstractmethod
    def delete(self) -> bool:
        """Remove stored credentials; True if anything was removed. Raises :class:`StorageError`."""

    @abstractmethod
    def describe(self) -> StoreInfo:
        """Which store is in use, where, and why."""

    def defer_directory_sync(self) -> None:
        """Let :meth:`save` leave the fsync of CODEX_HOME to :meth:`sync` (stores that write files).

        auth.json is written to a temporary file, fsynced and renamed over the old one before :meth:`save`
        returns, so whoever reads it sees the whole old or the whole new file. Syncing the directory only
        makes the rename survive a power cut; the browser sign-in does it after its answer is sent, which
        takes a fifth of a millisecond or more off the callback (issue 9).
        """
        return  # stores that write no file have nothing to defer

    def sync(self) -> None:
        """Finish what :meth:`defer_directory_sync` left from the last :meth:`save`; nothing otherwise."""
        return


def store_key(codex_home: StrPath) -> str:
    """``cli|`` + 16 hex of sha256(canonical CODEX_HOME, or the path as given when that fails)."""
    import hashlib

    raw = os.fspath(codex_home)
    try:
        canonical = os.path.realpath(raw, strict=True)
    except (OSError, ValueError):
        canonical = raw
    text = os.fsencode(canonical).decode("utf-8", "replace")
    return "cli|" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# File store


def _ensure_dir(path: str) -> None:
    """``mkdir -p`` with 0700 for every directory created; existing directories are left alone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if parent and parent != os.path.abspath(path):
            _ensure_dir(parent)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path) from None
        return
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: alive, someone else's
    return True


def _remove_stale_temp_files(directory: str) -> None:
    """Remove ``.auth.json.tmp-<pid>-*`` left by a process that died (or that are over an hour old)."""
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        pid_text = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        old = now - st.st_mtime > STALE_TEMP_SECONDS
        pid = int(pid_text) if pid_text.isdigit() else -1
        if pid == os.getpid() and not old:
            continue  # possibly another thread's save in flight
        if old or not _pid_alive(pid):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _fsync_directory(directory: str) -> None:
    # Best effort: the rename has happened; some filesystems (and Windows) cannot sync a directory.
    try:
        fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileStore(CredentialStore):
    """``$CODEX_HOME/auth.json`` (reference ``FileAuthStorage``, made atomic and symlink-safe)."""

    name = "file"

    def __init__(self, codex_home: StrPath, warnings: list[str] | None = None) -> None:
        super().__init__(warnings)
        self.codex_home = os.fspath(codex_home)
        self.auth_file = os.path.join(self.codex_home, AUTH_FILE_NAME)
        self._defer_sync = False
        self._sync_pending = False

    def defer_directory_sync(self) -> None:
        self._defer_sync = True

    def sync(self) -> None:
        if self._sync_pending:
            self._sync_pending = False
            _fsync_directory(self.codex_home)

    def exists(self) -> bool:
        """Whether something (file, link, directory) is at the auth.json path."""
        return os.path.lexists(self.auth_file)

    def load(self) -> AuthDotJson | None:
        path = self.auth_file
        raw = read_auth_file(path)
        if raw is None:
            return None
        try:
            return AuthDotJson.from_json(raw)
        except AuthParseError as err:
            raise AuthParseError(f"failed to parse {path}: {err.message}") from None

    def save(self, auth: AuthDotJson) -> str:
        path = self.auth_file
        try:
            data = auth.to_pretty_json().encode("utf-8")
        except (UnicodeEncodeError, ValueError, TypeError):
            raise AuthSaveError(f"failed to write {path}: the credentials cannot be encoded as JSON") from None
        try:
            _ensure_dir(self.codex_home)
        except OSError as err:
            raise AuthSaveError(f"failed to create {self.codex_home}: {_os_error_text(err)}") from None
        if os.path.islink(path):
            raise AuthSaveError(f"{path} is a symbolic link; refusing to write credentials through it")
        _remove_stale_temp_files(self.codex_home)
        tmp = os.path.join(self.codex_home, f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
        except OSError as err:
            raise AuthSaveError(f"failed to write {path}: {_os_error_text(err)}") from None
        try:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, 0o600)  # the umask may have taken bits away; never adds any
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                if os.environ.get(CRASH_HOOK_ENV) == "1":
                    os._exit(137)  # test-only fault hook, see the module docstring
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException as err:
            # Not only I/O errors: a signal handler's exception lands here too when the save runs in the main
            # thread (Ctrl-C's KeyboardInterrupt, the device sign-in's SIGTERM). The temporary file is a copy
            # of the credentials and goes with any of them; the old auth.json was never touched.
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if not isinstance(err, OSError):
                raise
            raise AuthSaveError(f"failed to write {path}: {_os_error_text(err)}") from None
        if self._defer_sync:
            self._sync_pending = True
        else:
            _fsync_directory(self.codex_home)
        return "file"

    def delete(self) -> bool:
        try:
            os.unlink(self.auth_file)
        except FileNotFoundError:
            return False
        except OSError as err:
            # unlink on a read-only mount fails with EROFS even when there is no file: nothing to remove is
            # not an error (a keyring save would otherwise warn about an auth.json that does not exist).
            # Checked only here, after a failure, so a delete costs no extra system call otherwise.
            if err.errno == errno.EROFS and not os.path.lexists(self.auth_file):
                return False
            raise StorageError(f"failed to delete {self.auth_file}: {_os_error_text(err)}") from None
        return True

    def describe(self) -> StoreInfo:
        return StoreInfo("file", self.auth_file)


# ---------------------------------------------------------------------------------------------------------
# Keyring store


class _KeyringCallError(Exception):
    """A keyring call failed or timed out; ``str()`` is safe to show.

    ``still_running``: this call timed out and its worker is still waiting on the keyring, so the call may
    yet take effect (a write may land after it was reported as failed).
    """

    def __init__(self, message: str, *, still_running: bool = False) -> None:
        super().__init__(message)
        self.still_running = still_running


# ``_thread.allocate_lock`` is what ``threading.Lock`` is; importing threading waits until a thread is needed.
_HUNG_GUARD = _thread.allocate_lock()
#: The worker of a keyring call that timed out, while it may still be stuck.
_HUNG_CALL: list[threading.Thread] = []


def _stored_secrets(value: str) -> list[tuple[str, str]]:
    """(kind, secret) of a keyring value: the value itself, then each token, the API key and the account ID.

    A value that does not parse is still scrubbed whole (and in any copied run of it, see ``SecretRegistry``).
    """
    found = [("keyring_value", value)]
    try:
        auth = AuthDotJson.from_json(value)
    except (AuthParseError, ValueError):
        return found
    found.append(("api_key", auth.openai_api_key or ""))
    if auth.tokens is not None:
        found += [
            ("id_token", auth.tokens.id_token.raw_jwt),
            ("access_token", auth.tokens.access_token),
            ("refresh_token", auth.tokens.refresh_token),
            ("account_id", auth.tokens.account_id or ""),
        ]
    return found


def _describe_exception(err: BaseException, held: str | None = None) -> str:
    """A keyring backend's exception as text that is safe to show.

    Backends are third parties and some quote what they were given or hold (a refused ``set_password`` with
    the whole JSON value): ``held``, the value this call wrote or the entry's value read just before, is
    scrubbed from it with its tokens, API key and account ID, and so is every registered secret and secret
    shape (the second net). Its tokens and key are registered, as every flow registers its secrets, so a
    later echo elsewhere is scrubbed too. The redaction module is imported here, on the error path only:
    ``status`` reads the keyring without it.
    """
    text = str(err).strip()
    if not text:
        return type(err).__name__
    from .diagnostics.redact import SECRETS, SecretRegistry, scrub_all

    if held:
        local = SecretRegistry()  # the whole value and the account ID: shown by status, so not registered
        for kind, secret in _stored_secrets(held):
            local.add(kind, secret)
            if kind in ("api_key", "id_token", "access_token", "refresh_token"):
                SECRETS.add(kind, secret)
        text = local.scrub(text)
    return scrub_all(text)


def _call_with_deadline(
    func: Callable[..., object], args: tuple[object, ...], timeout: float, held: str | None = None
) -> object:
    """Run a keyring call in a daemon thread; give up after ``timeout`` seconds.

    While an earlier call is still stuck, later calls fail at once instead of piling up threads. ``held``: the
    secret value the call writes, or the one the entry holds, scrubbed from the backend's error.
    """
    message = f"keyring did not answer within {timeout:g} s"
    with _HUNG_GUARD:
        if _HUNG_CALL:
            if _HUNG_CALL[0].is_alive():
                raise _KeyringCallError(message)
            _HUNG_CALL.clear()
    from ._threads import call_with_timeout

    worker, result, failure = call_with_timeout(lambda: func(*args), timeout, "codex-login-keyring")
    if worker.is_alive():
        with _HUNG_GUARD:
            _HUNG_CALL[:] = [worker]
        raise _KeyringCallError(message, still_running=True)
    if failure is not None:
        raise _KeyringCallError(_describe_exception(failure, held))
    return result


def _import_keyring() -> ModuleType:
    try:
        import keyring
    except ImportError:
        raise _KeyringCallError(KEYRING_MISSING) from None
    return keyring


class KeyringStore(CredentialStore):
    """The OS keyring: service ``Codex Auth``, account ``cli|<sha256(CODEX_HOME)[:16]>``, compact JSON.

    After a successful save the auth.json fallback file is removed (parity).
    """

    name = "keyring"

    def __init__(
        self,
        codex_home: StrPath,
        warnings: list[str] | None = None,
        *,
        timeout: float = DEFAULT_KEYRING_TIMEOUT,
    ) -> None:
        super().__init__(warnings)
        self.codex_home = os.fspath(codex_home)
        self.timeout = timeout
        self.file = FileStore(self.codex_home, self.warnings)
        #: The message of the last keyring failure, for :meth:`describe`.
        self.last_error: str | None = None

    @property
    def account(self) -> str:
        """The keyring account, worked out afresh at every use, as the reference does.

        The key hashes the canonical CODEX_HOME, or the raw path while it does not exist, and a sign-in builds
        its store before the auth lock creates the directory. A key fixed at construction saved under the raw
        path's hash while every later read looked under the canonical one ("Successfully logged in", then
        "Not logged in"). Each operation works it out once: one ``realpath``, as construction did before.
        """
        return store_key(self.codex_home)

    def defer_directory_sync(self) -> None:
        self.file.defer_directory_sync()

    def sync(self) -> None:
        self.file.sync()

    def _call(self, method: str, *args: object, held: str | None = None) -> object:
        try:
            module = _import_keyring()
            return _call_with_deadline(getattr(module, method), args, self.timeout, held)
        except _KeyringCallError as err:
            self.last_error = str(err)
            raise

    def read_raw(self) -> str | None:
        """The stored value (a secret) or None. Raises ``StorageError`` (``failed to load ...``)."""
        try:
            value = self._call("get_password", KEYRING_SERVICE, self.account)
        except _KeyringCallError as err:
            raise StorageError(f"failed to load CLI auth from keyring: {err}") from None
        self.last_error = None
        if value is None or isinstance(value, str):
            return value
        raise StorageError("failed to load CLI auth from keyring: the backend returned a non-string value")

    def load(self) -> AuthDotJson | None:
        value = self.read_raw()
        if value is None:
            return None
        try:
            return AuthDotJson.from_json(value)
        except AuthParseError as err:
            raise AuthParseError(f"failed to deserialize CLI auth from keyring: {err.message}") from None

    def save(self, auth: AuthDotJson) -> str:
        try:
            value = auth.to_compact_json()
        except (ValueError, TypeError):
            raise AuthSaveError(
                "failed to write OAuth tokens to keyring: the credentials cannot be encoded as JSON"
            ) from None
        try:
            self._call("set_password", KEYRING_SERVICE, self.account, value, held=value)
        except _KeyringCallError as err:
            # A write that missed its deadline is abandoned, not cancelled: if the keyring answers later
            # (an unlock prompt accepted late), the new credentials are stored after all. Say so rather
            # than claim the old ones are certainly kept. Undoing the late write from the worker was
            # considered and rejected: after a refresh the old refresh token is already spent, and in auto
            # mode auth.json holds these same new credentials, which a restored keyring entry would hide.
            late = "; the keyring may still store them when it answers" if err.still_running else ""
            raise AuthSaveError(f"failed to write OAuth tokens to keyring: {err}{late}") from None
        self.last_error = None
        try:
            self.file.delete()
        except StorageError as err:
            self.warnings.append(f"failed to remove CLI auth fallback file: {err}")
        return "keyring"

    def delete_entry(self) -> bool:
        """Remove the keyring entry only; True if it existed."""
        account = self.account  # once: the existence check and the delete must name the same entry
        existed = False  # until the check answers: a timed-out check deleted nothing
        try:
            value = self._call("get_password", KEYRING_SERVICE, account)
            existed = value is not None
            if existed:
                held = value if isinstance(value, str) else None
                self._call("delete_password", KEYRING_SERVICE, account, held=held)
        except _KeyringCallError as err:
            late = "; the keyring may still delete it when it answers" if err.still_running and existed else ""
            raise StorageError(f"failed to delete auth from keyring: {err}{late}") from None
        self.last_error = None
        return existed

    def delete(self) -> bool:
        removed_entry = self.delete_entry()
        removed_file = self.file.delete()
        return removed_entry or removed_file

    def location(self) -> str:
        return f"{KEYRING_SERVICE} / {self.account}"

    def describe(self) -> StoreInfo:
        return StoreInfo("keyring", self.location(), self.last_error)


# ---------------------------------------------------------------------------------------------------------
# Auto store


class AutoStore(CredentialStore):
    """Keyring first; on a keyring failure, auth.json with a warning (reference ``AutoAuthStorage``)."""

    name = "auto"

    def __init__(
        self,
        codex_home: StrPath,
        warnings: list[str] | None = None,
        *,
        timeout: float = DEFAULT_KEYRING_TIMEOUT,
    ) -> None:
        super().__init__(warnings)
        self.keyring = KeyringStore(codex_home, self.warnings, timeout=timeout)
        self.file = self.keyring.file
        self._info: StoreInfo | None = None

    def defer_directory_sync(self) -> None:
        self.file.defer_directory_sync()

    def sync(self) -> None:
        self.file.sync()

    def _fallback(self, err: StorageError) -> None:
        self._info = StoreInfo("file_fallback", self.file.auth_file, err.message)

    def load(self) -> AuthDotJson | None:
        try:
            auth = self.keyring.load()
        except StorageError as err:
            self.warnings.append(f"failed to load CLI auth from keyring, falling back to file storage: {err}")
            self._fallback(err)
            return self.file.load()
        if auth is not None:
            self._info = StoreInfo("keyring", self.keyring.location())
            return auth
        auth = self.file.load()
        if auth is not None:
            self._info = StoreInfo("file", self.file.auth_file, "the keyring holds no credentials for this CODEX_HOME")
        else:
            self._info = StoreInfo("keyring", self.keyring.location())
        return auth

    def save(self, auth: AuthDotJson) -> str:
        try:
            where = self.keyring.save(auth)
        except StorageError as err:
            self.warnings.append(f"failed to save auth to keyring, falling back to file storage: {err}")
            self.file.save(auth)
            self._fallback(err)
            return "file_fallback"
        self._info = StoreInfo("keyring", self.keyring.location())
        return where

    def delete(self) -> bool:
        """Remove the keyring entry and auth.json.

        Unlike the reference (which fails without touching the file), an unavailable keyring does not stop
        auth.json from being removed: it is recorded as a warning.
        """
        try:
            removed_entry = self.keyring.delete_entry()
        except StorageError as err:
            self.warnings.append(f"failed to delete auth from keyring, removing the file only: {err}")
            self._fallback(err)
            removed_entry = False
        removed_file = self.file.delete()
        return removed_entry or removed_file

    def describe(self) -> StoreInfo:
        """What the last load/save/delete used; before any, a probe of the keyring (no parsing)."""
        if self._info is not None:
            return self._info
        try:
            value = self.keyring.read_raw()
        except StorageError as err:
            return StoreInfo("file_fallback", self.file.auth_file, err.message)
        if value is None and self.file.exists():
            return StoreInfo("file", self.file.auth_file, "the keyring holds no credentials for this CODEX_HOME")
        return StoreInfo("keyring", self.keyring.location())


# ---------------------------------------------------------------------------------------------------------
# Ephemeral store

_EPHEMERAL: dict[str, AuthDotJson] = {}
_EPHEMERAL_GUARD = _thread.allocate_lock()


class EphemeralStore(CredentialStore):
    """Process memory only, keyed like the keyring account (reference ``EphemeralAuthStorage``)."""

    name = "ephemeral"

    def __init__(self, codex_home: StrPath, warnings: list[str] | None = None) -> None:
        super().__init__(warnings)
        self.codex_home = os.fspath(codex_home)

    @property
    def key(self) -> str:
        """Worked out at every use, like :attr:`KeyringStore.account` (CODEX_HOME may appear meanwhile)."""
        return store_key(self.codex_home)

    def load(self) -> AuthDotJson | None:
        import copy

        key = self.key
        with _EPHEMERAL_GUARD:
            auth = _EPHEMERAL.get(key)
            return copy.deepcopy(auth) if auth is not None else None

    def save(self, auth: AuthDotJson) -> str:
        import copy

        key = self.key
        with _EPHEMERAL_GUARD:
            _EPHEMERAL[key] = copy.deepcopy(auth)
        return "ephemeral"

    def delete(self) -> bool:
        key = self.key
        with _EPHEMERAL_GUARD:
            return _EPHEMERAL.pop(key, None) is not None

    def describe(self) -> StoreInfo:
        return StoreInfo("ephemeral", f"process memory ({self.key})")


# ---------------------------------------------------------------------------------------------------------
# Entry points


def create_store(
    codex_home: StrPath,
    mode: StoreMode | str = StoreMode.FILE,
    *,
    keyring_timeout: float = DEFAULT_KEYRING_TIMEOUT,
) -> CredentialStore:
    """The store for ``cli_auth_credentials_store``. Nothing is read and ``keyring`` is not imported yet."""
    mode = StoreMode(mode)
    if mode is StoreMode.FILE:
        return FileStore(codex_home)
    if mode is StoreMode.KEYRING:
        return KeyringStore(codex_home, timeout=keyring_timeout)
    if mode is StoreMode.AUTO:
        return AutoStore(codex_home, timeout=keyring_timeout)
    return EphemeralStore(codex_home)


def load_auth(
    codex_home: StrPath,
    mode: StoreMode | str = StoreMode.FILE,
    warnings: list[str] | None = None,
) -> AuthDotJson | None:
    """Load the stored credentials; fallback warnings are appended to ``warnings`` when given."""
    store = create_store(codex_home, mode)
    try:
        return store.load()
    finally:
        if warnings is not None:
            warnings.extend(store.warnings)


# ---------------------------------------------------------------------------------------------------------
# Cross-process lock


class _LockState:
    __slots__ = ("depth", "fd", "guard")

    def __init__(self) -> None:
        import threading

        self.guard = threading.RLock()
        self.depth = 0
        self.fd = -1


_LOCKS: dict[str, _LockState] = {}
_LOCKS_GUARD = _thread.allocate_lock()


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


#: Errors that say "this process may not write here" (a read-only mount, a directory or lock file that
#: belongs to someone else, an immutable file), as opposed to a broken path.
_UNWRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class _NoLockFile(StorageError):
    """``.auth.lock`` does not exist and cannot be created: no process can be holding it."""


#: Each lock file's name in messages, and who holds it (the timeout message says what the wait was for).
_LOCK_PURPOSE = {
    LOCK_FILE_NAME: ("auth lock", "another codex-login or Codex process is saving or removing credentials"),
    REFRESH_LOCK_FILE_NAME: ("refresh lock", "another codex-login process is refreshing the ChatGPT tokens"),
}


def _lock_label(path: str) -> str:
    return _LOCK_PURPOSE[os.path.basename(path)][0]


def _open_lock_file(path: str, read_only_ok: bool) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
    except OSError as err:
        failure = err
    message = f"failed to open the {_lock_label(path)} {path}: {_os_error_text(failure)}"
    if not read_only_ok or failure.errno not in _UNWRITABLE_ERRNOS:
        # Strict for the file store and for refresh (auth_lock): a CODEX_HOME it cannot write must stop a
        # refresh before it spends the refresh token at the issuer, not when the new tokens cannot be saved.
        raise StorageError(message) from None
    # A read-only CODEX_HOME (or a lock file another user made): flock needs no write access, so an existing
    # lock file is opened read-only and locked like any other. Only tried after the usual open failed, so
    # the common path makes the one system call it always made.
    try:
        return os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except FileNotFoundError:
        raise _NoLockFile(message) from None
    except OSError:
        raise StorageError(message) from None


def _acquire_file_lock(path: str, deadline: float, timeout: float, read_only_ok: bool = False) -> int:
    fd = _open_lock_file(path, read_only_ok)
    try:
        while True:
            try:
                locked = _try_lock(fd)
            except OSError as err:  # e.g. NFS, where an exclusive lock needs a writable descriptor
                raise StorageError(f"failed to lock the {_lock_label(path)} {path}: {_os_error_text(err)}") from None
            if locked:
                return fd
            if time.monotonic() >= deadline:
                label, holder = _LOCK_PURPOSE[os.path.basename(path)]
                raise StorageError(
                    f"timed out after {timeout:g} s waiting for the {label} {path}: {holder}; "
                    "try again when it has finished",
                    kind=ErrorKind.TIMED_OUT,
                )
            time.sleep(LOCK_POLL_SECONDS)
    except BaseException:
        os.close(fd)
        raise


def auth_lock(codex_home: StrPath, timeout: float = DEFAULT_LOCK_TIMEOUT) -> contextlib.AbstractContextManager[None]:
    """Hold the exclusive lock ``$CODEX_HOME/.auth.lock`` (``flock``; file created 0600).

    Held around the short local sequences that change the stored credentials: a sign-in's save, logout's
    removal, and the load and the save of a refresh, so a refresh whose request was in flight during a logout
    or a new sign-in sees it before it saves (see :mod:`codex_login.refresh`). Never held over a network round
    trip (:func:`refresh_lock` is). Waits up to ``timeout`` seconds (polling every 50 ms), then raises
    :class:`StorageError`.
    Re-entrant within a process: a nested ``auth_lock`` in the same thread does not deadlock, and other
    threads of the process wait like other processes do. CODEX_HOME is created (0700) if missing; one that
    cannot be written is an error here (see :func:`store_lock` for the keyring's leniency).
    """
    import contextlib  # here, not at the top: ``codex-login status`` imports this module and never locks

    return contextlib.contextmanager(_hold_auth_lock)(codex_home, timeout)


def refresh_lock(codex_home: StrPath, timeout: float) -> contextlib.AbstractContextManager[None]:
    """Hold the exclusive lock ``$CODEX_HOME/.refresh.lock``, taken before :func:`auth_lock`, never after it.

    Held by a refresh from its load, over the request, to its save, so two processes never spend the same
    refresh token (single use: the second spend gets ``refresh_token_reused`` and may revoke the grant).
    Only refreshes take it, so a save or a logout never waits for a refresh's network round trip. Like
    :func:`auth_lock`: re-entrant in a process, CODEX_HOME created if missing, ``StorageError`` on timeout.
    """
    import contextlib

    return contextlib.contextmanager(_hold_auth_lock)(codex_home, timeout, False, REFRESH_LOCK_FILE_NAME)


def store_lock(
    codex_home: StrPath, mode: StoreMode | str, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """The lock to hold while saving a sign-in to the store of ``mode``.

    :func:`auth_lock` for the stores on disk or in the keyring (keyring and auto go ahead without it when it
    cannot exist, see below). Ephemeral credentials live in this process's
    memory, which no other process reads: there is nothing to serialize with, and taking the on-disk lock
    would create CODEX_HOME and ``.auth.lock`` (or fail on a read-only CODEX_HOME) for a store that never
    touches the disk.
    """
    import contextlib

    mode = StoreMode(mode)
    if mode is StoreMode.EPHEMERAL:
        return contextlib.nullcontext()
    if mode is StoreMode.FILE:
        return auth_lock(codex_home, timeout)
    # The keyring needs nothing written in CODEX_HOME. When the lock file does not exist and cannot be
    # created there (read-only or someone else's directory), no process can be holding it, so the save goes
    # ahead without it rather than failing a keyring sign-in over a file it never needed. If auto mode
    # then falls back to auth.json, that write fails with its own, clearer error. The file store keeps the
    # strict lock: it could not write there anyway, and refresh (load-modify-save) uses auth_lock itself.
    return contextlib.contextmanager(_hold_auth_lock)(codex_home, timeout, True)


def _hold_auth_lock(
    codex_home: StrPath, timeout: float, skip_if_impossible: bool = False, name: str = LOCK_FILE_NAME
) -> Iterator[None]:
    home = os.fspath(codex_home)
    path = os.path.join(home, name)
    key = os.path.abspath(path)
    deadline = time.monotonic() + timeout
    with _LOCKS_GUARD:
        state = _LOCKS.setdefault(key, _LockState())
    if not state.guard.acquire(timeout=max(timeout, 0.0)):
        raise StorageError(
            f"timed out after {timeout:g} s waiting for the {_lock_label(path)} {path} (held by another thread)",
            kind=ErrorKind.TIMED_OUT,
        )
    try:
        if state.depth == 0:
            state.fd = _open_and_lock(home, path, deadline, timeout, skip_if_impossible)
        state.depth += 1
        try:
            yield
        finally:
            state.depth -= 1
            if state.depth == 0:
                fd, state.fd = state.fd, -1
                if fd >= 0:
                    os.close(fd)  # releases the flock
    finally:
        state.guard.release()


def _open_and_lock(home: str, path: str, deadline: float, timeout: float, skip_if_impossible: bool) -> int:
    """The locked descriptor, or -1 when ``skip_if_impossible`` and the lock file cannot exist (see
    :func:`store_lock`); this thread still holds the in-process guard either way."""
    try:
        _ensure_dir(home)
    except OSError as err:
        if skip_if_impossible and err.errno in _UNWRITABLE_ERRNOS:
            return -1  # CODEX_HOME cannot be created, so neither can anyone's lock file in it
        raise StorageError(f"failed to create {home}: {_os_error_text(err)}") from None
    try:
        return _acquire_file_lock(path, deadline, timeout, read_only_ok=skip_if_impossible)
    except _NoLockFile:
        if skip_if_impossible:
            return -1
        raise
