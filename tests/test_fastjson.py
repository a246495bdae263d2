"""``_fastjson``: exactly ``json.loads`` / ``json.dumps`` for what ``codex-login status`` reads and prints.

The oracle is ``json`` itself: every text gives the same value (types included) or the same exception.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login import _fastjson


def reject(_name: str) -> object:
    raise ValueError("non-finite number")


def outcome(load: object, text: str) -> tuple[str, object]:
    """(``"value"``, a type-tagged copy of the value) or (``"error"``, exception type and message)."""
    assert callable(load)
    try:
        return "value", tagged(load(text))
    except (ValueError, RecursionError) as err:
        return "error", (type(err), str(err))


def tagged(value: object) -> object:
    """``value`` with its types spelled out: ``1``, ``1.0`` and ``True`` compare equal, their tags do not."""
    if isinstance(value, dict):
        return ("dict", [(key, tagged(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [tagged(item) for item in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def json_loads(text: str) -> object:
    return json.loads(text, parse_constant=reject)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)


@settings(max_examples=400, deadline=None)
@given(
    value=JSON_VALUES,
    indent=st.sampled_from([None, 0, 2]),
    ensure_ascii=st.booleans(),
    before=WHITESPACE,
    after=WHITESPACE,
)
def test_documents_load_like_json(
    value: object, indent: int | None, ensure_ascii: bool, before: str, after: str
) -> None:
    text = before + json.dumps(value, indent=indent, ensure_ascii=ensure_ascii) + after
    assert outcome(_fastjson.loads, text) == outcome(json_loads, text)


@settings(max_examples=1000, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(' \t\n\r\x0b\ufeff{}[]:,"\\/-+.0123456789eEtrufalsnNIiy\u00e9\ud800'), max_size=24)
)
def test_any_text_loads_or_fails_like_json(text: str) -> None:
    assert outcome(_fastjson.loads, text) == outcome(json_loads, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "{}",
        ' {"a": 1, "a": 2} ',  # duplicate keys: the last one wins
        '{"a": 1} x',  # extra data
        '{"a": 1}{"b": 2}',
        "\ufeff{}",  # a BOM
        '{"a": NaN}',
        '{"a": -Infinity}',
        "Infinity",
        '["\\ud83d\\ude00", "\\ud800"]',  # a surrogate pair joins, a lone surrogate stays
        '"\x01"',  # a control character in a string
        "[" * 100_000,  # too deep
        "1" * 5000,  # more digits than int() converts
        "1e400",
        "-0.0",
    ],
)
def test_edge_cases_like_json(text: str) -> None:
    assert outcome(_fastjson.loads, text) == outcome(json_loads, text)


def test_non_finite_constants_are_rejected() -> None:
    for text in ("NaN", "[Infinity]", '{"x": -Infinity}'):
        with pytest.raises(ValueError, match=r"^non-finite number$"):
            _fastjson.loads(text)
    big = _fastjson.loads("1e400")
    assert isinstance(big, float) and math.isinf(big)  # an overflowing float is a float, as in json


def test_without_the_accelerator_json_does_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # As _Accelerator.load leaves it on a Python without ``_json``.
    monkeypatch.setattr(_fastjson._Accelerator, "loaded", True)
    monkeypatch.setattr(_fastjson._Accelerator, "module", None)
    monkeypatch.setattr(_fastjson._Accelerator, "scan", None)
    for text in ('{"a": [1, 2.5, null, true, "\\u00e9"]}', "{not json"):
        assert outcome(_fastjson.loads, text) == outcome(json_loads, text)
    flat = {"a": "é", "b": None, "c": True}
    assert _fastjson.dumps_flat(flat) == json.dumps(flat)


FLAT = st.dictionaries(st.text(), st.one_of(st.text(), st.booleans(), st.none()), max_size=6)


@settings(max_examples=300, deadline=None)
@given(obj=FLAT)
def test_dumps_flat_is_json_dumps(obj: dict[str, str | bool | None]) -> None:
    assert _fastjson.dumps_flat(obj) == json.dumps(obj)


def test_dumps_flat_refuses_other_values() -> None:
    with pytest.raises(TypeError):
        _fastjson.dumps_flat({"n": 1})  # type: ignore[dict-item]
