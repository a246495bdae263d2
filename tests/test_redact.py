"""Redaction: the reference's URL helpers (exact), free-text URLs, terminal text, and the secret nets."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login.diagnostics.redact import (
    _SECRET_PATTERNS,
    EXTRA_SENSITIVE_KEYS,
    INVALID_URL,
    SECRETS,
    SENSITIVE_URL_QUERY_KEYS,
    SecretRegistry,
    is_sensitive_key,
    proxy_for_logging,
    redact_mapping,
    redact_sensitive_query_value,
    redact_sensitive_url_parts,
    redact_urls_in_text,
    sanitize_terminal_text,
    sanitize_url_for_logging,
    scrub_all,
    scrub_patterns,
)
from tests.support.format_golden import FIXTURE, golden_scrubber

# ------------------------------------------------------------------------------------------------ keys


def test_sensitive_keys_are_exactly_the_reference_twelve() -> None:
    assert SENSITIVE_URL_QUERY_KEYS == (
        "access_token",
        "api_key",
        "client_secret",
        "code",
        "code_verifier",
        "id_token",
        "key",
        "refresh_token",
        "requested_token",
        "state",
        "subject_token",
        "token",
    )


def test_extra_keys_are_r2s_extra() -> None:
    assert set(EXTRA_SENSITIVE_KEYS) == {
        "password",
        "passwd",
        "secret",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "device_code",
        "device_auth_id",
        "user_code",
        "session",
        "apikey",
        "code_challenge",
    }
    assert not set(EXTRA_SENSITIVE_KEYS) & set(SENSITIVE_URL_QUERY_KEYS)


@pytest.mark.parametrize("key", [*SENSITIVE_URL_QUERY_KEYS, "CODE", "State", "Access_Token", "kEy"])
def test_redact_sensitive_query_value_matches_ascii_case_insensitively(key: str) -> None:
    assert redact_sensitive_query_value(key, "v") == "<redacted>"


@pytest.mark.parametrize("key", ["redirect_uri", "codes", "password", "code_challenge", "\u212aey", "ſtate", ""])
def test_redact_sensitive_query_value_keeps_other_values(key: str) -> None:
    # Kelvin sign and long s lowercase to k and s in Unicode, but not in ASCII (Rust eq_ignore_ascii_case).
    assert redact_sensitive_query_value(key, "v") == "v"


def test_extended_key_matching() -> None:
    assert is_sensitive_key("Set-Cookie", extended=True)
    assert is_sensitive_key("set_cookie", extended=True)
    assert is_sensitive_key("PROXY_AUTHORIZATION", extended=True)
    assert is_sensitive_key("code", extended=True)
    assert not is_sensitive_key("Set-Cookie")
    assert not is_sensitive_key("content-type", extended=True)


# ------------------------------------------------------------------------------------------------ URLs

REFERENCE_EXAMPLE = (
    "https://user:pass@auth.openai.com/oauth/token?code=abc123"
    "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback#frag"
)
REFERENCE_EXPECTED = (
    "https://auth.openai.com/oauth/token?code=%3Credacted%3E"
    "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"
)


def test_reference_example_redact_sensitive_url_parts() -> None:
    assert redact_sensitive_url_parts(REFERENCE_EXAMPLE) == REFERENCE_EXPECTED


def test_reference_examples_sanitize_url_for_logging() -> None:
    assert sanitize_url_for_logging(REFERENCE_EXAMPLE) == REFERENCE_EXPECTED
    assert (
        sanitize_url_for_logging("https://user:pass@example.com/base?token=abc123&env=prod")
        == "https://example.com/base?token=%3Credacted%3E&env=prod"
    )
    assert sanitize_url_for_logging("https://auth.openai.com") == "https://auth.openai.com/"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/p?a=b%20c", "https://h/p?a=b+c"),
        ("https://h/p?a=b+c", "https://h/p?a=b+c"),
        ("https://h/p?a=~*-._!", "https://h/p?a=%7E*-._%21"),
        ("https://h/p?flag", "https://h/p?flag="),
        ("https://h/p?", "https://h/p"),
        ("https://h/p?&&", "https://h/p"),
        ("https://h/p?a=1&&b=2", "https://h/p?a=1&b=2"),
        ("https://h/p?b=2&Code=x&a=1", "https://h/p?b=2&Code=%3Credacted%3E&a=1"),
        ("https://h/p?%63ode=x", "https://h/p?code=%3Credacted%3E"),
        ("https://h/p?code=x=y", "https://h/p?code=%3Credacted%3E"),
        ("https://h/p?a=%E2%9C%93", "https://h/p?a=%E2%9C%93"),
        ("https://h/p?a=%ZZ", "https://h/p?a=%25ZZ"),
        ("https://u:p@ss@h/", "https://h/"),
        ("https://u@h:8443/x#y?z", "https://h:8443/x"),
        ("https://h/p?password=x&state=y", "https://h/p?password=x&state=%3Credacted%3E"),
        ("https:\\\\u:p@h\\x", "https://h/x"),
        ("https:u:p@h/x", "https://h/x"),
        ("socks5://u:p@proxy:1080", "socks5://proxy:1080"),
        ("/relative?token=t#f", "/relative?token=%3Credacted%3E"),
        ("//u:p@h/x", "//h/x"),
    ],
)
def test_redact_sensitive_url_parts(url: str, expected: str) -> None:
    assert redact_sensitive_url_parts(url) == expected


def test_redact_sensitive_url_parts_extended() -> None:
    assert (
        redact_sensitive_url_parts("https://h/?password=x&user_code=y&a=1", extended=True)
        == "https://h/?password=%3Credacted%3E&user_code=%3Credacted%3E&a=1"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Auth.OpenAI.COM", "https://auth.openai.com/"),
        ("https://auth.openai.com:443/x", "https://auth.openai.com/x"),
        ("http://localhost:80/", "http://localhost/"),
        ("http://localhost:1455/auth/callback", "http://localhost:1455/auth/callback"),
        ("http://127.0.0.1:01455", "http://127.0.0.1:1455/"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://[0:0:0:0:0:0:0:1]:1455/", "http://[::1]:1455/"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("https://h/a/./b/../c", "https://h/a/c"),
        ("https://h/a/%2e%2E/c", "https://h/c"),
        ("https://h/a b", INVALID_URL),
        ('https://h/"<x>`{}', "https://h/%22%3Cx%3E%60%7B%7D"),
        ("https://h/é", "https://h/%C3%A9"),
        ("https:\\\\h\\x", "https://h/x"),
        ("https:///h/x", "https://h/x"),
        ("wss://h", "wss://h/"),
        ("socks5h://u:p@proxy:1080", "socks5h://proxy:1080"),
        ("custom://h/p?token=1#f", "custom://h/p?token=%3Credacted%3E"),
        ("https://h/?password=1", "https://h/?password=1"),
    ],
)
def test_sanitize_url_for_logging_normalizes(url: str, expected: str) -> None:
    assert sanitize_url_for_logging(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "auth.openai.com",
        "/oauth/token",
        "mailto:a@b.c",
        "file:///etc/passwd",
        "https://",
        "https://u:p@",
        "https://h:99999/",
        "https://h:8a/",
        "https://h:-1/",
        "https://exa mple.com/",
        " https://h/",
        "https://h/\n",
        "https://h/\x1b[31m",
        "https://h/\u202e",
        "https://h/\x85",
        "https://a<b/",
        "https://[::1/",
        "https://[zz]/",
        "https://1.2.3.4.5/",
        "https://256.1.1.1.1/",
        "https://0x100000000/",
        "http://h%2/",
        "https://h\t/",
    ],
)
def test_sanitize_url_for_logging_rejects(url: str) -> None:
    assert sanitize_url_for_logging(url) == INVALID_URL


def test_sanitize_url_for_logging_extended() -> None:
    assert sanitize_url_for_logging("https://h/?secret=1", extended=True) == "https://h/?secret=%3Credacted%3E"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:pw@proxy.corp:8080/path?x=1#f", "http://proxy.corp:8080"),
        ("proxy.corp:3128", "http://proxy.corp:3128"),
        ("https://proxy.corp", "https://proxy.corp:443"),
        ("socks5h://u:p@127.0.0.1", "socks5h://127.0.0.1:1080"),
        ("HTTP://PROXY:80", "http://proxy:80"),
        ("", INVALID_URL),
        ("http://pro xy:1", INVALID_URL),
    ],
)
def test_proxy_for_logging(url: str, expected: str) -> None:
    assert proxy_for_logging(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "error sending request for url (https://u:p@host/x?code=1)",
            "error sending request for url (https://host/x?code=%3Credacted%3E)",
        ),
        (
            "error sending request for url (https://auth.openai.com/oauth/token)",
            "error sending request for url (https://auth.openai.com/oauth/token)",
        ),
        (
            "Client error '400 Bad Request' for url 'https://h/t?token=abc&x=1'",
            "Client error '400 Bad Request' for url 'https://h/t?token=%3Credacted%3E&x=1'",
        ),
        (
            "see https://h/a?state=s. Then http://u@h2/b?password=p, done",
            "see https://h/a?state=%3Credacted%3E. Then http://h2/b?password=%3Credacted%3E, done",
        ),
        ("[http://[::1]:1455/?code=c]", "[http://[::1]:1455/?code=%3Credacted%3E]"),
        ("(https://h/wiki/A_(b)?key=k)", "(https://h/wiki/A_(b)?key=%3Credacted%3E)"),
        ('"https://h/#frag-secret"', '"https://h/"'),
        ("no url here: code=1", "no url here: code=1"),
    ],
)
def test_redact_urls_in_text(text: str, expected: str) -> None:
    assert redact_urls_in_text(text) == expected


def test_redact_urls_in_text_parity_mode() -> None:
    assert redact_urls_in_text("x https://h/?password=p", extended=False) == "x https://h/?password=p"


# ------------------------------------------------------------------------------------------------ mapping


def test_redact_mapping_nested() -> None:
    data = {
        "Authorization": "Bearer x",
        "headers": {"Set-Cookie": "a=b", "content-type": "json", "list": [{"PASSWORD": 1}, "plain"]},
        "code": "c",
        "state": None,
        "n": 1,
    }
    assert redact_mapping(data) == {
        "Authorization": "<redacted>",
        "headers": {"Set-Cookie": "<redacted>", "content-type": "json", "list": [{"PASSWORD": "<redacted>"}, "plain"]},
        "code": "<redacted>",
        "state": "<redacted>",
        "n": 1,
    }
    assert data["code"] == "c"  # a copy
    assert redact_mapping({"password": "p"}, extended=False) == {"password": "p"}


# ------------------------------------------------------------------------------------------------ terminal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("a\nb\tc\r\nd\re", "a b c d e"),
        ("red \x1b[31mALERT\x1b[0m", "red ALERT"),
        ("\x1b[2J\x1b[Hcleared", "cleared"),
        ("link \x1b]8;;https://evil.example\x07click\x1b]8;;\x07 end", "link click end"),
        ("link \x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ end", "link click end"),
        ("title \x1b]0;pwned\x07x", "title x"),
        ("dcs \x1bPq#0;2;0;0;0\x1b\\x", "dcs x"),
        ("c1 \x9b31mred\x9d0;t\x9cx", "c1 redx"),
        ("unterminated \x1b]8;;http://x", "unterminated "),
        ("charset \x1b(Bx \x1bcy", "charset x y"),
        ("nul\x00bel\x07del\x7fnel\x85", "nulbeldelnel "),
        ("bidi \u202egnp.exe\u202c \u2066x\u2069 \u200fy", "bidi gnp.exe x y"),
        ("ls\u2028ps\u2029", "ls ps "),
        ("surrogate \ud800!", "surrogate !"),
        ("unicode ✓ é 😀", "unicode ✓ é 😀"),
    ],
)
def test_sanitize_terminal_text(text: str, expected: str) -> None:
    assert sanitize_terminal_text(text) == expected


def test_sanitize_terminal_text_limit() -> None:
    assert sanitize_terminal_text("abcdef", 4) == "abc…"
    assert sanitize_terminal_text("abcd", 4) == "abcd"
    assert sanitize_terminal_text("ab\x1b[31mcd", 4) == "abcd"
    assert sanitize_terminal_text("abc", 1) == "…"
    assert sanitize_terminal_text("abc", 0) == ""


_TERMINAL_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_TERMINAL_TRICKY = st.sampled_from(
    [
        "\x1b",
        "[",
        "]",
        "8;;",
        "\x07",
        "\\",
        "\x9b",
        "\x9d",
        "\x9c",
        "31m",
        "\n",
        "\r",
        "\u202e",
        "\u2028",
        "\x00",
        "P",
        "a",
        " ",
        "é",
    ]
)
TERMINAL_TEXT = st.lists(
    st.one_of(_TERMINAL_TRICKY, st.text(st.characters(exclude_categories=()), max_size=5)), max_size=20
).map("".join)


@given(text=TERMINAL_TEXT, limit=st.one_of(st.none(), st.integers(1, 40)))
def test_sanitized_terminal_text_is_inert(text: str, limit: int | None) -> None:
    out = sanitize_terminal_text(text, limit)
    assert not _TERMINAL_BAD.search(out)
    assert out.splitlines() in ([out], [])
    if limit is not None:
        assert len(out) <= limit
    assert sanitize_terminal_text(out) == out


# ------------------------------------------------------------------------------------------------ scrubbing


def _jwt() -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'email': 'someone@example.invalid'})}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"id_token {_jwt()} end", "id_token <redacted:jwt> end"),
        ("key sk-proj-" + "A1b2" * 10 + " end", "key <redacted:api_key> end"),
        ("key sk-" + "x" * 20, "key <redacted:api_key>"),
        ("Authorization: Bearer abc.DEF-ghi_jkl~/+== rest", "Authorization: Bearer <redacted> rest"),
        ("authorization: bearer\tabc", "authorization: bearer <redacted>"),
        ("proxy http://user:pa%40ss@proxy:8080/x", "proxy http://<redacted>@proxy:8080/x"),
        ("scikit sk-learn and task-sk-1", "scikit sk-learn and task-sk-1"),
        ("https://example.com/a?email=a@b.c", "https://example.com/a?email=a@b.c"),
        ('{"u":"https://a","b":"c@d"}', '{"u":"https://a","b":"c@d"}'),
    ],
)
def test_scrub_patterns(text: str, expected: str) -> None:
    assert scrub_patterns(text) == expected


def test_scrub_patterns_golden() -> None:
    """Generated texts scrubbed before issue 9 gave scrub_patterns its pre-checks (tests/support/format_golden.py)."""
    scrubber = golden_scrubber()
    cases = json.loads(FIXTURE.read_text(encoding="ascii"))["scrubs"]
    assert len(cases) == 120
    for text, patterns_only, with_registry in cases:
        assert scrub_patterns(text) == patterns_only, text
        assert scrubber(text) == with_registry, text


def _every_pattern(text: str) -> str:
    """scrub_patterns without its pre-checks: each pattern substituted unconditionally, in order."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_SCRUB_PIECES = st.sampled_from(
    [
        "bearer",
        "Bearer",
        "BEARER",
        "bEaReR",
        "beaſer",
        "ſ",
        "\u212a",
        " ",
        "\t",
        "\u00a0",
        "\u2003",
        "abc.DEF",
        "==",
        "/",
        "//",
        "@",
        "u:p@",
        "eyJ",
        ".",
        "sk-",
        "x" * 16,
        "\u0130",
        "\u212b",
        "ß",
        "-",
        "_",
        "\ud800",
    ]
)
_SCRUB_TEXT = st.lists(st.one_of(_SCRUB_PIECES, st.text(max_size=4)), max_size=12).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_SCRUB_TEXT)
def test_scrub_pre_checks_skip_only_patterns_that_cannot_match(text: str) -> None:
    assert scrub_patterns(text) == _every_pattern(text)


def test_bearer_pre_check_sees_every_spelling_the_pattern_matches() -> None:
    """(?i) also matches non-ASCII case partners ('ſ' for s, the Kelvin sign for k); b, e, a and r have none,
    so a match is always ASCII letters, which lower() turns into "bearer"."""
    for letter in "bear":
        pattern = re.compile("(?i)" + letter)
        partners = {chr(code) for code in range(0x110000) if pattern.fullmatch(chr(code))}
        assert partners == {letter, letter.upper()}


def test_secret_registry_scrubs_every_encoded_form() -> None:
    registry = SecretRegistry()
    value = "CNRYcode/é +&x"
    registry.add("code", value)
    text = " | ".join(
        [
            value,
            quote(value, safe=""),
            quote(value),
            quote_plus(value),
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
        ]
    )
    scrubbed = registry.scrub(text)
    assert "CNRY" not in scrubbed
    assert scrubbed.count("<redacted:code>") == 6


def test_secret_registry_kinds_and_short_values() -> None:
    registry = SecretRegistry()
    registry.add("access_token", "CNRYaccess123")
    registry.add("refresh token!", "CNRYrefresh456")
    registry.add("code", "abc")  # too short to scrub safely
    registry.add("code", None)
    registry.add("code", "")
    assert registry.scrub("a CNRYaccess123 b CNRYrefresh456 c abc") == (
        "a <redacted:access_token> b <redacted:refresh_token_> c abc"
    )
    assert "CNRY" not in repr(registry)
    registry.clear()
    assert registry.scrub("CNRYaccess123") == "CNRYaccess123"
    assert len(registry) == 0


def test_secret_registry_longest_match_first() -> None:
    registry = SecretRegistry()
    registry.add("state", "CNRYabcdef")
    registry.add("token", "CNRYabcdefGHIJ")
    assert registry.scrub("CNRYabcdefGHIJ CNRYabcdef") == "<redacted:token> <redacted:state>"


def test_secret_registry_scrubs_partial_and_case_changed_echoes() -> None:
    """A backend that echoes part of a secret (its first 20 characters, a token split in two, one side of a
    length cut) or the secret upper-cased: each copied run of 12 characters or more is scrubbed, and no
    8-character window of the random core survives (the canary test's measure)."""
    core = secrets.token_hex(12)
    code = f"CNRYcode{core}"
    registry = SecretRegistry()
    registry.add("code", code)
    echoes = [code[:20], code.upper(), f"{code[:16]}\n{code[16:]}", code[-12:], quote(code.lower().upper())]
    for echo in echoes:
        scrubbed = registry.scrub(f"invalid_grant: code {echo} was already used")
        assert scrubbed.startswith("invalid_grant: code <redacted:code>"), scrubbed
        assert scrubbed.endswith(" was already used"), scrubbed
        windows = {core[i : i + 8] for i in range(len(core) - 7)}
        assert not any(w in scrubbed.lower() for w in windows), scrubbed
    # Short runs and the text around them are kept: "sk-proj-" starts every project key, and a device auth ID's
    # readable prefix must not eat the redirect URI's path.
    registry.add("api_key", f"sk-proj-CNRYkey{core}")
    assert registry.scrub("Logged in using an API key - sk-proj-***") == "Logged in using an API key - sk-proj-***"
    registry.add("device_auth_id", f"deviceauth_{core}")
    assert registry.scrub("redirect_uri=https://auth.openai.com/deviceauth/callback").endswith("/deviceauth/callback")


def test_secret_registry_is_thread_safe() -> None:
    registry = SecretRegistry()
    values = [f"CNRYthread{i:04d}" for i in range(200)]

    def add(chunk: list[str]) -> None:
        for v in chunk:
            registry.add("t", v)
            registry.scrub(v)

    threads = [threading.Thread(target=add, args=(values[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "CNRY" not in registry.scrub(" ".join(values))


def test_scrub_all_uses_the_process_registry() -> None:
    try:
        SECRETS.add("refresh_token", "CNRYprocesswide")
        assert scrub_all(f"x CNRYprocesswide Bearer tok {_jwt()}") == (
            "x <redacted:refresh_token> Bearer <redacted> <redacted:jwt>"
        )
    finally:
        SECRETS.clear()


# ------------------------------------------------------------------------------------------------ properties

_KEY_CASES = st.sampled_from(SENSITIVE_URL_QUERY_KEYS).flatmap(
    lambda k: st.lists(st.booleans(), min_size=len(k), max_size=len(k)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(k, flips, strict=True))
    )
)
_HEX = st.text("0123456789abcdef", min_size=8, max_size=8)
_ANY = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_OTHER_KEYS = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(lambda k: not is_sensitive_key(k))


@st.composite
def urls_with_a_secret(draw: st.DrawFn) -> tuple[str, str]:
    canary = "CNRY" + draw(_HEX)
    key = draw(_KEY_CASES)
    if draw(st.booleans()):
        key = "".join(f"%{ord(c):02X}" if draw(st.booleans()) else c for c in key)
    value = canary + draw(_ANY)
    encoders: list[Callable[[str], str]] = [lambda v: quote(v, safe=""), quote_plus, lambda v: quote(v, safe="/:@")]
    encode = draw(st.sampled_from(encoders))
    pairs = [f"{k}={quote_plus(v)}" for k, v in draw(st.lists(st.tuples(_OTHER_KEYS, _ANY), max_size=3))]
    pairs.insert(draw(st.integers(0, len(pairs))), f"{key}={encode(value)}")
    scheme = draw(st.sampled_from(["https", "http", "HTTPS", "wss", "socks5"]))
    userinfo = draw(st.sampled_from(["", f"user:{canary}@", f"{canary}@", f"{canary}:x@"]))
    host = draw(st.sampled_from(["auth.openai.com", "127.0.0.1:1455", "[::1]:8080", "Example.COM"]))
    path = draw(st.sampled_from(["", "/", "/oauth/token", "/a%20b"]))
    fragment = draw(st.sampled_from(["", f"#{canary}", "#x"]))
    return f"{scheme}://{userinfo}{host}{path}?{'&'.join(pairs)}{fragment}", canary


def _assert_gone(out: str, canary: str) -> None:
    assert canary not in out
    assert canary.lower() not in out.lower()


@settings(max_examples=300)
@given(case=urls_with_a_secret())
def test_sensitive_values_never_survive_url_redaction(case: tuple[str, str]) -> None:
    url, canary = case
    for out in (
        redact_sensitive_url_parts(url),
        sanitize_url_for_logging(url),
        redact_urls_in_text(f"error sending request for url ({url})"),
    ):
        _assert_gone(out, canary)
    out = redact_sensitive_url_parts(url)
    query = urlsplit(out).query
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in SENSITIVE_URL_QUERY_KEYS:
            assert value == "<redacted>"


@given(url=st.text(st.characters(exclude_categories=()), max_size=40))
def test_url_functions_never_raise(url: str) -> None:
    sanitized = sanitize_url_for_logging(url)
    assert sanitized == INVALID_URL or not _TERMINAL_BAD.search(sanitized)
    redact_sensitive_url_parts(url)
    redact_urls_in_text(url)
    proxy_for_logging(url)
