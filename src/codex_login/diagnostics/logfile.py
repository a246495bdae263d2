"""The durable login log, ``codex-login.log`` (reference §14.4; DECISIONS D-6; security R-9, R-10, V-v).

What it guarantees:

* Only our own loggers feed it: the handler is attached to the loggers in :data:`ROOT_TARGETS` and nowhere
  else, and those loggers stop propagating. Third-party loggers (httpx, httpcore, urllib3...) never reach
  the file, whatever ``RUST_LOG`` says.
* The directory: created (with any missing parents) mode 0700. An existing directory must be owned by the
  effective user and not writable by group or others. A symlink as ``log_dir`` is accepted only when it
  points to a directory owned by the effective user with no group or other permission bits at all (0700,
  0500...): a symlink to ``/tmp/x`` or to somebody else's directory is refused. The checks are made on the
  opened directory (``fstat`` of a directory descriptor), and the file is opened and rotated relative to
  that descriptor, so swapping the path afterwards changes nothing.
* The file: ``O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC`` with mode 0600 (a symlink gives ``ELOOP``, its
  target untouched; ``O_NONBLOCK`` during the open so a planted FIFO cannot hang us); then ``fstat`` must
  show a regular file owned by the effective user with exactly one link (a hard link to another file is
  refused), and any other mode (an old 0644 file, or a umask-narrowed one) is set to 0600 with ``fchmod``.
* Bounded (D-6): before a write that would take the file past ``max_bytes`` (5 MiB), ``codex-login.log``
  becomes ``codex-login.log.1`` (older generations shift up to ``.N``, ``N = backups``, the oldest dropped)
  and a fresh file is opened with the same checks.
* Shared by several processes (an app-server and a CLI sign-in, say): before each write the handler compares
  the file at the path with the one it holds (``st_dev``/``st_ino``, as ``WatchedFileHandler`` does) and
  reopens, with the same checks, when another process has rotated or removed it; rotation itself is done
  under an ``flock`` on the directory, and the size is looked at again once the lock is held.
* A failing write (ENOSPC, EFBIG, EBADF...) never dumps the record or its arguments (CPython's default
  ``handleError`` prints ``Arguments: (...)``, V-v): the handler disables itself and writes exactly one
  line, ``Warning: login log disabled: <strerror>``, to stderr. Sign-in goes on.
* Each line is also passed through :func:`~codex_login.diagnostics.redact.scrub_all` (registered secrets,
  then secret-shaped patterns) before it is escaped, as a second net.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal, TextIO

from codex_login.diagnostics.envfilter import EnvFilter
from codex_login.diagnostics.format import TracingJsonFormatter, TracingTextFormatter
from codex_login.diagnostics.record import target_of
from codex_login.diagnostics.redact import sanitize_terminal_text, scrub_all

__all__ = [
    "DEFAULT_BACKUPS",
    "DEFAULT_MAX_BYTES",
    "LOG_FILE_NAME",
    "ROOT_TARGETS",
    "LogFileError",
    "LoginLogHandle",
    "LoginStreamHandler",
    "RotatingLoginFileHandler",
    "attach_stream_handler",
    "init_login_file_logging",
    "make_formatter",
    "open_log_file",
]

LOG_FILE_NAME: Final = "codex-login.log"
ROOT_TARGETS: Final = ("codex_cli", "codex_core", "codex_login")
DEFAULT_MAX_BYTES: Final = 5 * 1024 * 1024
DEFAULT_BACKUPS: Final = 3

Stage = Literal["create_dir", "open"]

_FILE_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class LogFileError(Exception):
    """The log directory or file cannot be used. ``str()`` is the reason only (the OS error text)."""

    def __init__(self, stage: Stage, path: Path, detail: str, errno: int | None = None) -> None:
        super().__init__(detail)
        self.stage: Stage = stage
        self.path = path
        self.detail = detail
        self.errno = errno

    def __str__(self) -> str:
        return self.detail

    @property
    def strerror(self) -> str:
        """The reason without the ``(os error N)`` suffix (``Too many levels of symbolic links``)."""
        suffix = f" (os error {self.errno})"
        return self.detail[: -len(suffix)] if self.errno and self.detail.endswith(suffix) else self.detail


def _os_error_text(exc: OSError) -> str:
    """Like Rust's ``io::Error`` display: ``Not a directory (os error 20)``."""
    text = exc.strerror or type(exc).__name__
    return f"{text} (os error {exc.errno})" if exc.errno else text


def _error(stage: Stage, path: Path, exc: OSError) -> LogFileError:
    return LogFileError(stage, path, _os_error_text(exc), exc.errno)


# --------------------------------------------------------------------------------------------- opening


def _create_dirs(log_dir: Path) -> None:
    """Create ``log_dir`` and its missing parents, each mode 0700 (``os.makedirs`` gives parents 0777)."""
    path = os.path.abspath(log_dir)
    missing: list[str] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue
        fd = os.open(directory, _DIR_FLAGS | os.O_NOFOLLOW)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != 0o700:
                os.fchmod(fd, 0o700)  # a restrictive umask may have taken the owner's bits
        finally:
            os.close(fd)


def _open_dir(log_dir: Path) -> int:
    """Create if needed, open and check the log directory; the descriptor of the directory."""
    try:
        _create_dirs(log_dir)
        text = os.fspath(log_dir)
        text = text.rstrip("/") or "/"
        is_link = stat.S_ISLNK(os.lstat(text).st_mode)
        dfd = os.open(text, _DIR_FLAGS)
    except OSError as exc:
        raise _error("create_dir", log_dir, exc) from None
    try:
        st = os.fstat(dfd)
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != os.geteuid():
            raise LogFileError("open", log_dir, f"refusing log directory {log_dir}: not owned by the current user")
        if is_link and mode & 0o077:
            raise LogFileError(
                "open",
                log_dir,
                f"refusing log directory {log_dir}: a symlink to a directory with mode {mode:04o}"
                " (through a symlink only a directory closed to group and others, such as 0700, is accepted)",
            )
        if mode & 0o022:
            raise LogFileError(
                "open", log_dir, f"refusing log directory {log_dir}: writable by group or others (mode {mode:04o})"
            )
    except OSError as exc:
        os.close(dfd)
        raise _error("open", log_dir, exc) from None
    except LogFileError:
        os.close(dfd)
        raise
    return dfd


def _open_file_at(dfd: int, path: Path) -> int:
    """Open ``codex-login.log`` in the directory ``dfd`` with every check of the module docstring."""
    try:
        fd = os.open(LOG_FILE_NAME, _FILE_FLAGS, 0o600, dir_fd=dfd)
    except OSError as exc:
        raise _error("open", path, exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LogFileError("open", path, "not a regular file")
        if st.st_uid != os.geteuid():
            raise LogFileError("open", path, "not owned by the current user")
        if st.st_nlink != 1:
            raise LogFileError("open", path, f"the file has {st.st_nlink} hard links")
        if stat.S_IMODE(st.st_mode) != 0o600:  # wider (an old 0644 file), or narrowed by an odd umask
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except OSError as exc:
        os.close(fd)
        raise _error("open", path, exc) from None
    except LogFileError:
        os.close(fd)
        raise
    return fd


def open_log_file(log_dir: Path) -> int:
    """Create/check ``log_dir`` and open ``log_dir/codex-login.log`` for appending; the file descriptor.

    Raises :class:`LogFileError` with ``stage`` ``create_dir`` (the directory cannot be created or opened)
    or ``open`` (an unsafe directory, or the file cannot be opened or fails a check).
    """
    dfd = _open_dir(log_dir)
    try:
        return _open_file_at(dfd, Path(log_dir) / LOG_FILE_NAME)
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------------------------- handlers


def _failure_reason(exc: BaseException | None) -> str:
    if isinstance(exc, LogFileError):
        reason = exc.strerror
    elif isinstance(exc, OSError):
        reason = exc.strerror or f"os error {exc.errno}"
    else:
        reason = f"unexpected {type(exc).__name__}" if exc is not None else "unknown error"
    return sanitize_terminal_text(reason, 200)


def _write_warning(stream: TextIO | None, line: str) -> None:
    target = stream if stream is not None else sys.stderr
    try:
        target.write(sanitize_terminal_text(line) + "\n")
        target.flush()
    except Exception:  # stderr itself is gone: nothing more to do
        return


_LOCK_WAIT_SECONDS: Final = 0.2


def _lock_dir(dfd: int) -> bool | None:
    """Take the rotation lock on the log directory: ``True`` when held, ``False`` if another process kept it
    for too long, ``None`` where the directory cannot be locked at all (NFS emulates flock with byte-range
    locks, which an exclusive lock on a read-only descriptor cannot take: EBADF).

    Bounded: a peer stopped while holding it (a suspended terminal) must not stall a sign-in's logging. Without
    the lock the write goes ahead and rotation waits (see ``_rotate_retry_at``); where there is no lock to take,
    rotation goes on without it, as it did before processes were serialised.
    """
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        except OSError:
            return None


class RotatingLoginFileHandler(logging.Handler):
    """Appends one formatted line per record to ``log_dir/codex-login.log``, rotating at ``max_bytes``.

    Writes go straight to the descriptor with ``os.write`` under the handler lock (no buffering, so a crash
    loses nothing already logged). ``watch_interval`` (seconds) is how often, at most, the handler checks
    that another process has not rotated the file away from it, and how long it leaves rotation alone after a
    peer held the rotation lock past its wait. ``warn_stream`` receives the one warning if
    the handler gives up (default: ``sys.stderr`` at that moment).
    """

    watch_interval: float = 1.0

    def __init__(
        self,
        log_dir: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        warn_stream: TextIO | None = None,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / LOG_FILE_NAME
        self.max_bytes = max_bytes
        self.backups = max(0, backups)
        self.warn_stream = warn_stream
        self.failed = False
        self._fd = -1
        self._identity = (0, 0)  # (st_dev, st_ino) of the file behind _fd
        self._next_watch = 0.0
        self._rotate_retry_at = 0.0  # rotation is not tried before this (monotonic) time: a peer held the lock
        self._dfd = _open_dir(self.log_dir)
        try:
            self._adopt(_open_file_at(self._dfd, self.path))
        except LogFileError:
            os.close(self._dfd)
            raise

    def _adopt(self, fd: int) -> None:
        st = os.fstat(fd)
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)

    def fileno(self) -> int:
        """The current descriptor of ``codex-login.log`` (-1 once closed or disabled)."""
        return self._fd

    def emit(self, record: logging.LogRecord) -> None:
        if self._fd < 0:
            return
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            self._write(data)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _write(self, data: bytes) -> None:
        # Another process sharing the log (an app-server, a second sign-in) may have rotated the file we hold
        # open: it is then codex-login.log.N, or gone, and our lines would land there and be dropped with it.
        # So, like logging.handlers.WatchedFileHandler, compare the path's file with ours and reopen when they
        # differ. That stat costs ~3 us against lseek's 0.3 us (issue 9: ~8 events lie on the callback's path),
        # so it is made at most once per watch_interval: the first line after a pause (the quiet process's
        # case) is always checked, and a line of a burst that follows another process's rotation by less than
        # the interval lands in codex-login.log.1: one generation older, not lost. Rotation always checks.
        now = time.monotonic()
        if now >= self._next_watch:
            self._next_watch = now + self.watch_interval
            size = self._size_of_current_file()
        else:
            # The file's size, other processes' appends included, without building a stat result.
            size = os.lseek(self._fd, 0, os.SEEK_END)
        if self.max_bytes > 0 and size > 0 and size + len(data) > self.max_bytes and now >= self._rotate_retry_at:
            self._rotate_and_write(data, now)
            return
        self._write_all(data)

    def _size_of_current_file(self) -> int:
        """The size of ``codex-login.log``, reopening it first if it is no longer the file we hold."""
        try:
            st = os.stat(LOG_FILE_NAME, dir_fd=self._dfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == self._identity:
            return st.st_size
        # Rotated or removed by someone else (or replaced: the reopen's checks refuse a symlink or a stranger's
        # file, and the handler then disables itself with its one warning).
        self._reopen()
        return os.lseek(self._fd, 0, os.SEEK_END)

    def _reopen(self) -> None:
        os.close(self._fd)
        self._fd = -1
        self._adopt(_open_file_at(self._dfd, self.path))

    def _rotate_and_write(self, data: bytes, now: float) -> None:
        # Processes sharing log_dir rotate one at a time (flock on the directory: no extra file to create and
        # check), and each looks again once it holds the lock: the one before it may have rotated already.
        locked = _lock_dir(self._dfd)
        if locked is False:
            # A peer holds the lock (stopped mid-rotation?): write, and do not wait for it again on every line
            # (each would sleep 0.2 s under the handler lock, the callback's events included) until later.
            self._rotate_retry_at = now + self.watch_interval
            self._write_all(data)
            return
        try:
            size = self._size_of_current_file()
            if size > 0 and size + len(data) > self.max_bytes:
                self._rotate()
            self._write_all(data)
        finally:
            if locked:
                fcntl.flock(self._dfd, fcntl.LOCK_UN)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            if written <= 0:
                raise OSError(0, "short write")
            view = view[written:]

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        dfd = self._dfd
        for generation in range(self.backups - 1, 0, -1):
            try:
                os.rename(
                    f"{LOG_FILE_NAME}.{generation}", f"{LOG_FILE_NAME}.{generation + 1}", src_dir_fd=dfd, dst_dir_fd=dfd
                )
            except OSError:
                continue  # a missing (or odd) generation: keep going, the newest ones matter most
        try:
            if self.backups > 0:
                os.rename(LOG_FILE_NAME, f"{LOG_FILE_NAME}.1", src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                os.unlink(LOG_FILE_NAME, dir_fd=dfd)
        except FileNotFoundError:
            pass
        self._adopt(_open_file_at(dfd, self.path))

    def handleError(self, record: logging.LogRecord) -> None:
        """Never print the record or its arguments: disable the handler with one fixed warning line."""
        self.disable(_failure_reason(sys.exc_info()[1]))

    def disable(self, reason: str) -> None:
        if self.failed:
            return
        self.failed = True
        self._close_fds()
        _write_warning(self.warn_stream, f"Warning: login log disabled: {reason}")

    def _close_fds(self) -> None:
        for name in ("_fd", "_dfd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                setattr(self, name, -1)
                try:
                    os.close(fd)
                except OSError:
                    continue

    def close(self) -> None:
        self.acquire()
        try:
            self._close_fds()
        finally:
            self.release()
        super().close()


class LoginStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler (stderr, a pipe) with the same one-warning failure handling as the file."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        self.failed = True
        # The warning goes to stderr (when the stream is stderr and broken, it is lost quietly).
        _write_warning(None, f"Warning: login log disabled: {_failure_reason(sys.exc_info()[1])}")


# --------------------------------------------------------------------------------------------- attaching


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``login_log_format`` (``text`` or ``json``), with the second-net scrubber."""
    if log_format == "text":
        return TracingTextFormatter(scrubber=scrub_all)
    if log_format == "json":
        return TracingJsonFormatter(scrubber=scrub_all)
    raise ValueError(f"unknown login log format {log_format!r} (expected 'text' or 'json')")


_STATE_LOCK = threading.RLock()
_ATTACHED: dict[str, list[tuple[logging.Handler, EnvFilter]]] = {}
_SAVED: dict[str, tuple[int, bool]] = {}
_FILE_HANDLES: dict[str, LoginLogHandle] = {}


def _attach(handler: logging.Handler, envfilter: EnvFilter) -> None:
    with _STATE_LOCK:
        for name in ROOT_TARGETS:
            logger = logging.getLogger(name)
            entries = _ATTACHED.setdefault(name, [])
            if not entries:
                _SAVED[name] = (logger.level, logger.propagate)
            entries.append((handler, envfilter))
            logger.addHandler(handler)
            logger.propagate = False
            _update_level(name)


def _detach(handler: logging.Handler) -> None:
    with _STATE_LOCK:
        for name in ROOT_TARGETS:
            logger = logging.getLogger(name)
            entries = _ATTACHED.get(name, [])
            entries[:] = [(h, f) for h, f in entries if h is not handler]
            logger.removeHandler(handler)
            if entries:
                _update_level(name)
            elif name in _SAVED:
                level, propagate = _SAVED.pop(name)
                logger.setLevel(level)
                logger.propagate = propagate


def _update_level(name: str) -> None:
    target = target_of(name)
    logging.getLogger(name).setLevel(min(f.max_level_for(target) for _h, f in _ATTACHED[name]))


class LoginLogHandle:
    """What :func:`init_login_file_logging` and :func:`attach_stream_handler` return."""

    def __init__(self, path: Path | None, handler: logging.Handler | None, key: str | None = None) -> None:
        self.path = path
        self.handler = handler
        self._key = key
        self._closed = handler is None

    @property
    def active(self) -> bool:
        """Attached and still writing (``False`` after a failure disabled it, or after :meth:`close`)."""
        return not self._closed and self.handler is not None and not getattr(self.handler, "failed", False)

    def close(self) -> None:
        """Detach the handler from our loggers (restoring their level and propagation) and close it."""
        with _STATE_LOCK:
            if self._closed:
                return
            self._closed = True
            if self._key is not None and _FILE_HANDLES.get(self._key) is self:
                del _FILE_HANDLES[self._key]
        if self.handler is not None:
            _detach(self.handler)
            self.handler.close()

    def __enter__(self) -> LoginLogHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LoginLogHandle(path={self.path!r}, active={self.active})"


def init_login_file_logging(
    log_dir: Path | None,
    *,
    log_format: str = "text",
    env: Mapping[str, str] = os.environ,
    stderr: TextIO | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
) -> LoginLogHandle:
    """Start writing the login log to ``log_dir/codex-login.log`` (reference §14.4). Never raises for
    file-system trouble: it prints one warning to ``stderr`` and returns an inactive handle.

    ``log_dir=None`` means the caller could not resolve a directory (and said so): an inactive handle.
    Calling again for the same directory while its handle is open returns that handle unchanged.
    """
    formatter = make_formatter(log_format)
    if log_dir is None:
        return LoginLogHandle(None, None)
    log_dir = Path(log_dir)
    path = log_dir / LOG_FILE_NAME
    key = os.path.abspath(log_dir)
    with _STATE_LOCK:
        existing = _FILE_HANDLES.get(key)
        if existing is not None:
            return existing
        try:
            handler = RotatingLoginFileHandler(log_dir, max_bytes=max_bytes, backups=backups, warn_stream=stderr)
        except LogFileError as exc:
            if exc.stage == "create_dir":
                _write_warning(stderr, f"Warning: failed to create login log directory {log_dir}: {exc}")
            else:
                _write_warning(stderr, f"Warning: failed to open login log file {path}: {exc}")
            return LoginLogHandle(path, None)
        except Exception as exc:  # sign-in must go on whatever happens here
            _write_warning(stderr, f"Warning: failed to initialize login log file {path}: {_failure_reason(exc)}")
            return LoginLogHandle(path, None)
        handler.setFormatter(formatter)
        envfilter = EnvFilter.from_env(env)
        handler.addFilter(envfilter)
        _attach(handler, envfilter)
        handle = LoginLogHandle(path, handler, key)
        _FILE_HANDLES[key] = handle
        return handle


def attach_stream_handler(
    stream: TextIO, log_format: str = "text", env: Mapping[str, str] = os.environ
) -> LoginLogHandle:
    """Send our events (never third-party ones) to ``stream`` too, with the same filter and formats."""
    handler = LoginStreamHandler(stream)
    handler.setFormatter(make_formatter(log_format))
    envfilter = EnvFilter.from_env(env)
    handler.addFilter(envfilter)
    _attach(handler, envfilter)
    return LoginLogHandle(None, handler)
