"""The app server's input reader (``_LineReader``) over a real pipe: line boundaries across reads, the size
limit, the end of input, and waking up for a closed output. Signals racing the wait are covered by the
signal tests in test_app_server.py."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from codex_login.app_server import MAX_LINE_BYTES, _LineReader


class Pipe:
    """One test's pipe, with the threads that use it.

    Its descriptors are closed only once no thread of the test can use them any more: a closed number is
    reused at once (the next test's ``os.pipe()`` gets the same two), and a reader thread of this test still
    between two reads would then take the next test's lines. CI saw exactly that: the test after
    ``test_input_already_waiting_comes_before_the_end`` lost lines to that test's reader and hung.
    """

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self._write_open = True
        self._lock = threading.Lock()
        self._writers: list[threading.Thread] = []
        self._readers: list[_LineReader] = []

    def reader(self) -> _LineReader:
        reader = _LineReader(self.read_fd)
        self._readers.append(reader)
        return reader

    def feed(self, *chunks: bytes, close: bool = True) -> threading.Thread:
        """Write ``chunks`` one by one from a thread (a pipe holds only 64 KiB), then close the write end."""

        def run() -> None:
            for chunk in chunks:
                os.write(self.write_fd, chunk)
            if close:
                self.close_write()

        writer = threading.Thread(target=run, daemon=True)
        self._writers.append(writer)
        writer.start()
        return writer

    def close_write(self) -> None:
        """Close the write end once (whoever comes first: the writer thread or the teardown)."""
        with self._lock:
            if self._write_open:
                self._write_open = False
                os.close(self.write_fd)

    def close(self) -> None:
        """After the test: the writers finish, the input ends, each reader reads to its end; then the read end
        is closed. Whatever is still running after that (a failed test) keeps its descriptor open."""
        for writer in self._writers:
            writer.join(10)
        if any(writer.is_alive() for writer in self._writers):
            return
        self.close_write()
        at_once = threading.Event()
        at_once.set()
        deadline = time.monotonic() + 10
        for reader in self._readers:
            while reader.thread.is_alive() and time.monotonic() < deadline:
                reader.next_line(at_once)  # takes a waiting line, making room for the reader's next one
                reader.thread.join(0.01)
        if not any(reader.thread.is_alive() for reader in self._readers):
            os.close(self.read_fd)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    ends = Pipe()
    try:
        yield ends
    finally:
        ends.close()


def read_all(reader: _LineReader) -> list[bytes | None]:
    never = threading.Event()
    out: list[bytes | None] = []
    while (line := reader.next_line(never)) != b"":
        out.append(line)
    return out


def test_lines_keep_their_newlines_across_reads(pipe: Pipe) -> None:
    reader = pipe.reader()
    pipe.feed(b'{"id": 1', b', "method": "x"}\n{"id"', b": 2}\n\n", b"last without newline").join(5)
    assert read_all(reader) == [b'{"id": 1, "method": "x"}\n', b'{"id": 2}\n', b"\n", b"last without newline"]


def test_a_line_at_the_limit_passes_and_one_byte_more_is_dropped_whole(pipe: Pipe) -> None:
    reader = pipe.reader()
    at_limit = b"a" * MAX_LINE_BYTES + b"\n"
    over = b"b" * (MAX_LINE_BYTES + 1) + b"\n"
    pipe.feed(at_limit, over[:1000], over[1000:], b"after\n", b"c" * (MAX_LINE_BYTES + 1))
    assert read_all(reader) == [at_limit, None, b"after\n", None]


def test_a_closed_output_ends_the_wait_without_input(pipe: Pipe) -> None:
    reader = pipe.reader()
    closed = threading.Event()
    threading.Timer(0.3, closed.set).start()
    assert reader.next_line(closed) == b""


def test_input_already_waiting_comes_before_the_end(pipe: Pipe) -> None:
    reader = pipe.reader()
    pipe.feed(b"one\n", close=False).join(5)
    closed = threading.Event()
    assert reader.next_line(closed) == b"one\n"


def test_the_reader_stays_a_few_lines_ahead_of_the_server(pipe: Pipe) -> None:
    """Lines are read ahead only up to LINES_AHEAD: the pipe holds back a client that writes faster."""
    from codex_login.app_server import LINES_AHEAD

    reader = pipe.reader()
    total = LINES_AHEAD * 4
    writer = pipe.feed(*[b"x" * 60_000 + b"\n" for _ in range(total)])
    writer.join(1.0)
    assert writer.is_alive()  # blocked: the reader took LINES_AHEAD lines (and a pipe's worth), no more
    never = threading.Event()
    got = [reader.next_line(never) for _ in range(total)]
    writer.join(5)
    assert not writer.is_alive()
    assert got == [b"x" * 60_000 + b"\n"] * total and reader.next_line(never) == b""
