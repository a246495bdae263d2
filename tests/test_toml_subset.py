"""``_toml_subset``: for every document, either exactly what ``tomllib.loads`` returns or None (then tomllib
decides, valid or not). Generated documents mix the subset with TOML it leaves to tomllib and with errors."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login._toml_subset import loads


def check(text: str) -> dict[str, object] | None:
    """The subset's answer, after checking it against tomllib."""
    mine = loads(text)
    try:
        expected = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        assert mine is None, text
        return None
    if mine is not None:
        assert mine == expected, text
        assert repr(mine) == repr(expected), text  # the same key order and types (True is not 1)
    return mine


KEYS = st.sampled_from(["a", "b", "key_1", "x-y", "true", "1", '"quoted key"', "'lit'", '"a.b"', '""', "é", "a b"])
VALUES = st.sampled_from(
    [
        '"text"',
        "'literal'",
        '""',
        "''",
        '"tab\there"',
        '"é ü"',
        '"with # hash"',
        "'with \" quote'",
        "true",
        "false",
        "0",
        "-0",
        "+7",
        "123456789012345678",
        "1234567890123456789",
        "[]",
        "[ ]",
        '["a", "b"]',
        '["a", "b",]',
        "[1, true, 'x']",
        "[,]",
        "[[1]]",
        '["x" "y"]',
        # TOML the subset leaves to tomllib, and errors
        '"esc\\n"',
        '"""multi"""',
        "'''multi'''",
        "1.5",
        "1e3",
        "1_000",
        "0x1F",
        "01",
        "inf",
        "nan",
        "1979-05-27",
        "{a = 1}",
        '"unterminated',
        "'unterminated",
        "tru",
        "truex",
        "",
        "= 1",
        '"ctrl\x01"',
    ]
)
SPACE = st.sampled_from(["", " ", "\t", "  "])
COMMENT = st.sampled_from(["", "# note", "#", "# \t tab", "# bad \x01", "# é"])
LINE = st.one_of(
    st.builds(lambda k, s1, s2, v, s3, c: f"{k}{s1}={s2}{v}{s3}{c}", KEYS, SPACE, SPACE, VALUES, SPACE, COMMENT),
    st.builds(lambda k1, k2, c: f"[{k1}.{k2}]{c}", KEYS, KEYS, COMMENT),
    st.builds(lambda s, k, c: f"[{s}{k}{s}]{c}", SPACE, KEYS, COMMENT),
    st.builds(lambda k: f"[[{k}]]", KEYS),
    st.builds(lambda k1, k2, v: f"{k1}.{k2} = {v}", KEYS, KEYS, VALUES),
    COMMENT,
    SPACE,
    st.sampled_from(["[a]b = 1", "[]", "[a.]", "a", "=", "\ufeffa = 1", "a = 1\r", "\x0b"]),
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(LINE, max_size=8))
def test_generated_documents(lines: list[str]) -> None:
    check("\n".join(lines))


def test_codex_like_config_is_in_the_subset() -> None:
    text = (
        'model = "gpt-5-codex"\n'
        'model_reasoning_effort = "high"  # or "medium"\n'
        'cli_auth_credentials_store = "file"\n'
        "\n"
        '[projects."/home/user/src"]\n'
        'trust_level = "trusted"\n'
        "\n"
        "[mcp_servers.docs]\n"
        'command = "npx"\n'
        'args = ["-y", "@acme/docs-mcp", "--port", "0"]\n'
        "startup_timeout_sec = 20\n"
    )
    assert check(text) is not None


@pytest.mark.parametrize(
    ("text", "in_subset"),
    [
        ("", True),
        ("[a.b]\n[a.c]\nx = 1", True),
        ("[a]\nx = 1\n[a.b]\ny = 2", True),
        ("[a.b]\n[a]\nx = 1", False),  # valid TOML: tomllib reads it
        ("[a]\n[a]", False),  # a table twice: tomllib's error
        ("a = 1\n[a.b]", False),  # a table under a value
        ("a = 1\na = 2", False),  # a key twice
        ("a.b = 1", False),  # dotted keys
        ("x = " + "1" * 5000, False),  # tomllib: ValueError (too many digits for int())
        ("a = 1\r\nb = 2", False),  # CRLF: tomllib reads it
        ('env = { KEY = "v" }', False),
    ],
)
def test_edges(text: str, in_subset: bool) -> None:
    assert (check(text) is not None) is in_subset
