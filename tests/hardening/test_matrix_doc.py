"""MATRIX.md stays true: it has one line for every row of the security matrix, and every test it names exists
(a renamed or deleted test would otherwise leave a row pointing at nothing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATRIX = Path(__file__).with_name("MATRIX.md")

# The rows of the security matrix (§4, groups A to K), copied here so the check needs nothing outside the repo.
ROWS = (
    [f"A{i}" for i in range(1, 13)]
    + [f"A13{x}" for x in "abcde"]
    + [f"A{i}" for i in range(14, 19)]
    + [f"B{i}" for i in range(1, 15)]
    + [f"C{i}" for i in range(1, 14)]
    + [f"D{i}" for i in range(1, 8)]
    + [f"E{i}" for i in range(1, 6)]
    + [f"F{i}" for i in range(1, 11)]
    + [f"G{i}" for i in range(1, 11)]
    + [f"H{i}" for i in range(1, 10)]
    + [f"I{i}" for i in range(1, 8)]
    + [f"J{i}" for i in range(1, 7)]
    + ["K1", "K2"]
)
NODE = re.compile(r"`((tests/[\w/]+\.py)?::(test_\w+))")


def matrix_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in MATRIX.read_text().splitlines():
        cells = line.split("|")
        if len(cells) > 3 and re.fullmatch(r"[A-K]\d+[a-e]?", cells[1].strip()):
            row = cells[1].strip()
            assert row not in rows, f"{row} twice in MATRIX.md"
            rows[row] = line
    return rows


def test_every_row_of_the_matrix_is_mapped() -> None:
    rows = matrix_rows()
    assert list(rows) == ROWS
    for row, line in rows.items():
        cells = line.split("|")
        assert NODE.search(cells[2]) or "not applicable" in line.lower(), f"{row}: no test and no reason"


def test_every_named_test_exists() -> None:
    sources: dict[str, str] = {}
    for row, line in matrix_rows().items():
        current: str | None = None
        for match in NODE.finditer(line):
            current = match.group(2) or current
            assert current is not None, f"{row}: {match.group(1)} names no file"
            if current not in sources:
                path = ROOT / current
                assert path.is_file(), f"{row}: {current} does not exist"
                sources[current] = path.read_text()
            name = match.group(3)
            assert re.search(rf"^def {name}\(", sources[current], re.MULTILINE), f"{row}: no {current}::{name}"
