"""The loopback server's fuzz target (fuzz/fuzz_loopback.py, atheris) in CI: a fixed run budget under a
~20 s wall-clock cap, from a fixed seed, with a dictionary of the request's tokens so coverage guidance
reaches the server's checks quickly. Any oracle violation makes libFuzzer exit non-zero with the input.

A second test proves the oracle is not vacuous: the response checker refuses each kind of bad answer.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ_TARGET = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_loopback.py"
RUN_BUDGET = 40_000
WALL_CLOCK_CAP = 20
DICTIONARY = [
    "GET ", "HEAD ", "POST ", " HTTP/1.1", "\r\n", "\r\n\r\n", "Host: ", "127.0.0.1:", "localhost:", "[::1]:",
    "/auth/callback", "/success", "/cancel", "?", "&", "=", "%", "%00", "%ZZ", "%FF", "+",
    "code=", "state=", "error=", "error_description=", "iss=", "access_denied",
    "Origin: ", "Sec-Fetch-Site: ", "Sec-Fetch-Dest: ", "none", "cross-site", "document", "image",
    "Content-Length: ", "Transfer-Encoding: chunked", "#", "\x00", "\x1b",
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
]


def dictionary_entry(token: str) -> str:
    r"""libFuzzer's dictionary syntax: printable ASCII as is, ``\`` and ``\"`` escaped, the rest ``\xNN``."""
    out = []
    for byte in token.encode("utf-8"):
        char = chr(byte)
        out.append("\\" + char if char in '\\"' else char if 0x20 <= byte < 0x7F else f"\\x{byte:02X}")
    return '"' + "".join(out) + '"\n'


def load_target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_loopback", FUZZ_TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_loopback_server_survives_a_bounded_fuzzing_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    dictionary = tmp_path / "requests.dict"
    dictionary.write_text("".join(dictionary_entry(token) for token in DICTIONARY))
    command = [
        sys.executable, str(FUZZ_TARGET),
        f"-runs={RUN_BUDGET}", f"-max_total_time={WALL_CLOCK_CAP}", "-seed=20260306", "-max_len=20000",
        "-len_control=20", "-timeout=10", f"-dict={dictionary}", f"-artifact_prefix={tmp_path}/", str(corpus),
    ]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the target's CODEX_HOME goes to the test's own tmp
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=WALL_CLOCK_CAP + 60, cwd=tmp_path, env=env
    )
    tail = result.stderr[-6000:]
    assert result.returncode == 0, f"the fuzzer found a failing input (see {tmp_path}):\n{tail}"
    done = re.search(r"Done (\d+) runs in (\d+) second", result.stderr)
    assert done is not None, tail
    assert int(done.group(1)) >= 2_000, f"too few runs to mean anything:\n{tail}"
    assert int(done.group(2)) <= WALL_CLOCK_CAP + 2
    assert list(tmp_path.glob("crash-*")) == [] and list(tmp_path.glob("timeout-*")) == []


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n", "unexpected status 500"),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "missing Connection: close"),
        (b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "missing security header"),
        (b"HTTP/1.0 404 Not Found\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 404 Not", "incomplete response head"),
    ],
)
def test_the_fuzz_oracle_refuses_bad_answers(reply: bytes, problem: str) -> None:
    target = load_target()
    with pytest.raises(AssertionError, match=problem):
        target.check_reply(reply, False, 1455, False)


def test_the_fuzz_oracle_refuses_a_foreign_location_and_a_wrong_length() -> None:
    target = load_target()
    headers = "".join(f"{name}: {value}\r\n" for name, value in target.SECURITY_HEADERS.items())
    redirect = f"HTTP/1.1 404 Not Found\r\n{headers}Location: //evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with pytest.raises(AssertionError, match="unexpected Location"):
        target.check_reply(redirect.encode(), False, 1455, False)
    wrong = f"HTTP/1.1 404 Not Found\r\n{headers}Content-Length: 9\r\nConnection: close\r\n\r\nNot"
    with pytest.raises(AssertionError, match="Content-Length does not match"):
        target.check_reply(wrong.encode(), False, 1455, False)
    good = f"HTTP/1.1 404 Not Found\r\n{headers}Content-Length: 9\r\nConnection: close\r\n\r\nNot Found"
    assert target.check_reply(good.encode(), False, 1455, False) == 404
