"""Generate ``tests/fixtures/format_golden.json``: rendered log lines pinned byte for byte (issue 9).

The renderer, the timestamp and the scrubber were given fast paths for the callback's ~8 events; the fixture
holds what the code wrote *before* those changes, for a few hundred generated inputs built to hit every rule
(escaping, the ambiguous space, caps near their limits, big ints, floats, odd field names, secrets).
``tests/test_format.py`` renders the same inputs with the current code and compares.

Regenerate (only when an output change is intended, and say so in the commit)::

    .venv/bin/python -m tests.support.format_golden

Values are stored tagged so that every input survives JSON exactly: ``["s", text]`` a ``str``, ``["d", text]``
a :class:`Display`, ``["o", text]`` an object whose ``str()`` is ``text``, ``["b", bool]``, ``["i", hex]``,
``["f", float.hex()]``, ``["n"]`` ``None``. Timestamps are stored the same way (``["f", ...]`` or ``["i", ...]``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codex_login.diagnostics.format import format_timestamp, render_json_line, render_text_line
from codex_login.diagnostics.record import Display, FieldValue
from codex_login.diagnostics.redact import SecretRegistry, scrub_patterns

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "format_golden.json"
SEED = 20260309
LINES = 120
SCRUBS = 120
TIMESTAMPS = 300

#: Registered in the golden scrubber's own registry (never the process-wide one, which other tests fill).
GOLDEN_SECRETS = (("code", "CNRYcode+/ 123"), ("state", "CNRYstate-xyz"), ("access_token", 'CNRYaccess"tok\\en'))

# fmt: off
_CHUNKS = (
    " ", "  ", "=", '"', "\\", "\\\\", "a", "_", "x=", " a=", " path=", " message=", " A=", " 1=", " _x.y=",
    "…", " …", "……", "\n", "\r\n", "\t", "\0", "\x1b[31m", "\x7f", "\x85", "\x9b", "\x9f", "\xa0",
    "\u061c", "\u200e", "\u200f", "\u2028", "\u2029", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff",
    "\ud800", "\udfff", "\udbff\udc00", "\U0001f600", "é", "ſ", "\u212a", "\u0130", "ß", "中文", "\u0301",
    "u{20}", "\\u{20}", "{", "}", ":", ": ", "true", "false", "0", "-1", "007", "1e3", "null",
    "Bearer abc.DEF-123==", "bearer\tx", "BEARER  tok/+~", "beaſer x", "bearer\u00a0x", "\u212aey",
    "eyJhbGciOi.eyJzdWIi.c2ln", "eyJ.x", "sk-abcdefghijklmnop12", "sk-short", "xsk-abcdefghijklmnopqr",
    "https://user:pw@host/p?code=1", "//u@h", "//a b@c", "CNRYcode+/ 123", "CNRYcode%2B%2F%20123",
    "CNRYcode%2B/%20123", "CNRYcode%2B%2F+123", "CNRYstate-xyz", "CNRYaccess\\\"tok\\\\en",
)
_NAMES = (
    "path", "has_code", "status", "error_code", "a.b", "_", "x1", "message", "MESSAGE", "Has-Code", "1abc",
    "", " ", "ſ", "é", "a b", "a=b", "\n", "\u212a", "x" * 70, "y" * 64, "_" * 65, "message_", "truncated",
)
_FLOATS = (
    0.0, -0.0, 1.5, -2.25, 0.1, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, 123456789.125,
    float("nan"), float("inf"), float("-inf"),
)
_TARGETS = ("codex_login::server", "codex_cli::login", "t", "a b", "a{b", "x}y", "tab\there", "é::ſ", "")
_ATTEMPTS = (None, "la_3f9c1a2b", "la_0123456789abcdef", "la x", "la}x", "{la}", "a\nb", "")
# fmt: on


def _text(rng: random.Random, size: int) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if roll < 0.45:
            piece = rng.choice(_CHUNKS)
        elif roll < 0.85:
            piece = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_.= ") for _ in range(rng.randint(1, 12)))
        else:
            piece = "".join(
                chr(rng.choice((rng.randint(0, 0x7F), rng.randint(0x80, 0x3000), rng.randint(0, 0x10FFFF))))
                for _ in range(rng.randint(1, 4))
            )
        parts.append(piece)
        length += len(piece)
    return "".join(parts)


def _long_text(rng: random.Random, size: int) -> str:
    """Mostly ASCII words with a few tricky chunks: long, yet cheap to store."""
    parts: list[str] = []
    length = 0
    while length < size:
        piece = rng.choice(_CHUNKS) if rng.random() < 0.1 else rng.choice(("abc", "de f", "x_y.z", "0123 ", "Q"))
        parts.append(piece)
        length += len(piece)
    return "".join(parts)


def _sized_text(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.8:
        return _text(rng, rng.randint(0, 40))
    if roll < 0.9:
        return _text(rng, rng.randint(100, 200))
    if roll < 0.96:
        return _long_text(rng, rng.randint(1000, 1100))  # around the 1024-character cap
    if roll < 0.99:
        return rng.choice(("\\", "\n", " a=", "é", "\U0001f600", " ")) * rng.randint(300, 1100)
    return _long_text(rng, rng.randint(2000, 4500))  # past the line cap


def _value(rng: random.Random) -> list[Any]:
    roll = rng.random()
    if roll < 0.3:
        return ["s", _sized_text(rng)]
    if roll < 0.55:
        return ["d", _sized_text(rng)]
    if roll < 0.6:
        return ["o", _sized_text(rng)]
    if roll < 0.7:
        return ["b", rng.random() < 0.5]
    if roll < 0.8:
        bits = rng.choice((3, 31, 63, 64, 200, 1023, 1024, 1025, 5000))
        return ["i", hex(rng.choice((-1, 1)) * rng.getrandbits(bits))]
    if roll < 0.9:
        value = rng.choice(_FLOATS) if rng.random() < 0.6 else rng.uniform(-1e6, 1e6)
        return ["f", value.hex()]
    return ["n"]


def _created(rng: random.Random) -> list[Any]:
    roll = rng.random()
    if roll < 0.5:
        value = rng.uniform(1.7e9, 1.8e9)
    elif roll < 0.65:  # exact halves of a microsecond and the last ones before a whole second
        whole = rng.randint(1_700_000_000, 1_800_000_000)
        value = whole + rng.choice((0.0, 0.5e-6, 1.5e-6, 0.9999995, 0.9999994, 0.99999949, 0.9999996, 0.1234565))
    elif roll < 0.85:
        value = rng.choice(
            (
                0.0,
                -0.0,
                -1.0,
                -0.0000005,
                -0.5e-6,
                1e-7,
                -62135596800.0,
                -62135596800.5,
                -62135596801.0,
                -50000000000.0,
                -59011459200.25,
                253402300799.999999,
                253402300799.9999995,
                253402300800.0,
                1e20,
                -1e20,
                1e300,
                float("nan"),
                float("inf"),
                float("-inf"),
                2.0**31,
                2.0**53,
                1e15 + 0.5,
            )
        )
    else:
        return ["i", hex(rng.choice((0, 1, 1772834943, -1, 253402300799, 253402300800, 2**62, 2**70, -(2**70))))]
    return ["f", value.hex()]


class _Shown:
    """A field value of no catalogue type: rendered through ``str()``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def decode_value(tagged: list[Any]) -> Any:
    kind = tagged[0]
    if kind == "s":
        return tagged[1]
    if kind == "d":
        return Display(tagged[1])
    if kind == "o":
        return _Shown(tagged[1])
    if kind == "b":
        return bool(tagged[1])
    if kind == "i":
        return int(tagged[1], 16)
    if kind == "f":
        return float.fromhex(tagged[1])
    return None


def golden_scrubber() -> Callable[[str], str]:
    """``scrub_all`` with its own registry: the fixed secrets, then the patterns."""
    registry = SecretRegistry()
    for kind, value in GOLDEN_SECRETS:
        registry.add(kind, value)
    return lambda text: scrub_patterns(registry.scrub(text))


def render_case(case: dict[str, Any], scrubber: Callable[[str], str] | None) -> tuple[str, str]:
    """The text and the JSON line of one stored case."""
    fields: list[tuple[str, FieldValue]] = [(name, decode_value(value)) for name, value in case["fields"]]
    kwargs: dict[str, Any] = {
        "created": decode_value(case["created"]),
        "levelno": case["levelno"],
        "target": case["target"],
        "message": case["message"],
        "fields": fields,
        "attempt": case["attempt"],
        "scrubber": scrubber if case["scrub"] else None,
    }
    return render_text_line(**kwargs), render_json_line(**kwargs)


def generate() -> dict[str, Any]:
    rng = random.Random(SEED)
    scrubber = golden_scrubber()
    lines = []
    for _ in range(LINES):
        case: dict[str, Any] = {
            "created": _created(rng),
            "levelno": rng.choice((0, 1, 5, 9, 10, 15, 20, 25, 30, 40, 50, 60, 100)),
            "target": rng.choice(_TARGETS) if rng.random() < 0.7 else _text(rng, rng.choice((5, 300))),
            "message": _sized_text(rng),
            "attempt": rng.choice(_ATTEMPTS) if rng.random() < 0.8 else _text(rng, rng.choice((5, 80))),
            "fields": [
                [rng.choice(_NAMES) if rng.random() < 0.8 else _text(rng, 5), _value(rng)]
                for _ in range(rng.choice((0, 0, 1, 2, 3, 5, 5, 8, 12)))
            ]
            if rng.random() < 0.97
            else [[f"f{i}", ["s", "v" * rng.randint(0, 30)]] for i in range(rng.randint(150, 400))],  # fields dropped
            "scrub": rng.random() < 0.6,
        }
        case = json.loads(json.dumps(case))  # render what the test will read back (adjacent surrogates join)
        case["text"], case["json"] = render_case(case, scrubber)
        lines.append(case)
    scrubs = []
    for _ in range(SCRUBS):
        text = json.loads(json.dumps(_text(rng, rng.choice((0, 5, 20, 60, 150)))))
        scrubs.append([text, scrub_patterns(text), scrubber(text)])
    timestamps = []
    for _ in range(TIMESTAMPS):
        created = _created(rng)
        timestamps.append([created, format_timestamp(decode_value(created))])
    return {"seed": SEED, "lines": lines, "scrubs": scrubs, "timestamps": timestamps}


def main() -> None:
    FIXTURE.write_text(json.dumps(generate(), ensure_ascii=True, indent=0) + "\n", encoding="ascii")


if __name__ == "__main__":
    main()
