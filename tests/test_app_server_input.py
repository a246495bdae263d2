"""The app server's input reader (``_LineReader``) over a real pipe: line boundaries across reads, the size
limit, the end of input, and waking up for a closed output. Signals racing the wait are covered by the
signal tests in test_app_server.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from codex_login.app_server import MAX_LINE_BYTES, _LineReader


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    try:
        yield read_fd, write_fd
    finally:
        for fd in (read_fd, write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def feed(write_fd: int, *chunks: bytes, close: bool = True) -> threading.Thread:
    """Write ``chunks`` one by one from a thread (a pipe holds only 64 KiB), then close the write end."""

    def run() -> None:
        for chunk in chunks:
            os.write(write_fd, chunk)
        if close:
            os.close(write_fd)

    writer = threading.Thread(target=run, daemon=True)
    writer.start()
    return writer


def read_all(reader: _LineReader) -> list[bytes | None]:
    never = threading.Event()
    out: list[bytes | None] = []
    while (line := reader.next_line(never)) != b"":
        out.append(line)
    return out


def test_lines_keep_their_newlines_across_reads(pipe: tuple[int, int]) -> None:
    reader = _LineReader(pipe[0])
    feed(pipe[1], b'{"id": 1', b', "method": "x"}\n{"id"', b": 2}\n\n", b"last without newline").join(5)
    assert read_all(reader) == [b'{"id": 1, "method": "x"}\n', b'{"id": 2}\n', b"\n", b"last without newline"]


def test_a_line_at_the_limit_passes_and_one_byte_more_is_dropped_whole(pipe: tuple[int, int]) -> None:
    reader = _LineReader(pipe[0])
    at_limit = b"a" * MAX_LINE_BYTES + b"\n"
    over = b"b" * (MAX_LINE_BYTES + 1) + b"\n"
    feed(pipe[1], at_limit, over[:1000], over[1000:], b"after\n", b"c" * (MAX_LINE_BYTES + 1))
    assert read_all(reader) == [at_limit, None, b"after\n", None]


def test_a_closed_output_ends_the_wait_without_input(pipe: tuple[int, int]) -> None:
    reader = _LineReader(pipe[0])
    closed = threading.Event()
    threading.Timer(0.3, closed.set).start()
    assert reader.next_line(closed) == b""


def test_input_already_waiting_comes_before_the_end(pipe: tuple[int, int]) -> None:
    reader = _LineReader(pipe[0])
    feed(pipe[1], b"one\n", close=False).join(5)
    closed = threading.Event()
    assert reader.next_line(closed) == b"one\n"


def test_the_reader_stays_a_few_lines_ahead_of_the_server(pipe: tuple[int, int]) -> None:
    """Lines are read ahead only up to LINES_AHEAD: the pipe holds back a client that writes faster."""
    from codex_login.app_server import LINES_AHEAD

    reader = _LineReader(pipe[0])
    total = LINES_AHEAD * 4
    writer = feed(pipe[1], *[b"x" * 60_000 + b"\n" for _ in range(total)])
    writer.join(1.0)
    assert writer.is_alive()  # blocked: the reader took LINES_AHEAD lines (and a pipe's worth), no more
    never = threading.Event()
    got = [reader.next_line(never) for _ in range(total)]
    writer.join(5)
    assert not writer.is_alive()
    assert got == [b"x" * 60_000 + b"\n"] * total and reader.next_line(never) == b""
