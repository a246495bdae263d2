"""The success, error and simple pages: copy, escaping, one-pass templating and hostile input."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login import pages
from codex_login.pages import (
    HTML_CONTENT_TYPE,
    MAX_PAGE_TEXT_BYTES,
    SECURITY_HEADERS,
    html_escape,
    page_text,
    platform_url_for,
    render_error_page,
    render_simple_page,
    render_success_page,
)

ATTEMPT = "la_3f9c1a2b"
FAKE_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyIn0.c2ln"
VOID_TAGS = frozenset({"meta", "link", "br", "img", "input", "hr", "wbr", "source", "area", "base", "col"})


class PageParser(HTMLParser):
    """Records the element structure of a page, its attributes, and which text sits in a dir="ltr" box."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.stack: list[tuple[str, bool]] = []
        self.text_outside_ltr: list[str] = []
        self.text_inside_ltr: list[str] = []
        self.title = ""

    def _ltr(self) -> bool:
        return any(ltr for _, ltr in self.stack)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            self.attrs.append((tag, name, value))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)
        if tag not in VOID_TAGS:
            self.stack.append((tag, ("dir", "ltr") in attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break

    def handle_data(self, data: str) -> None:
        (self.text_inside_ltr if self._ltr() else self.text_outside_ltr).append(data)
        if self.stack and self.stack[-1][0] == "title":
            self.title += data


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def error_page(description: str | None = "The user denied the request", **overrides: object) -> str:
    kwargs: dict[str, object] = {
        "message": f"Sign-in failed: {description}",
        "error_code": "access_denied",
        "error_description": description,
        "attempt_id": ATTEMPT,
    }
    kwargs.update(overrides)
    return render_error_page(**kwargs)  # type: ignore[arg-type]


def urls_in(page: str) -> list[str]:
    parser = parse(page)
    return [value or "" for _, name, value in parser.attrs if name in ("href", "src", "action", "srcset")]


# --------------------------------------------------------------------------------------------------
# Escaping and text preparation


def test_html_escape_changes_exactly_five_characters() -> None:
    assert html_escape("&<>\"'") == "&amp;&lt;&gt;&quot;&#39;"
    untouched = "plain é 日本 \u202e / = ; `"
    assert html_escape(untouched) == untouched


def test_error_page_escapes_dynamic_fields_like_the_reference() -> None:
    page = render_error_page(
        message="Sign-in failed: <bad>",
        error_code="code&value",
        error_description='"quoted"',
        attempt_id=ATTEMPT,
    )
    assert "Sign-in failed: &lt;bad&gt;" in page
    assert "<code>code&amp;value</code>" in page
    assert "&quot;quoted&quot;" in page
    assert "<bad>" not in page
    assert "code&value" not in page


def test_page_text_truncates_to_4_kib_on_a_character_boundary() -> None:
    assert MAX_PAGE_TEXT_BYTES == 4096
    short = "x" * 4096
    assert page_text(short) == short
    clipped = page_text("a" + "é" * 3000)
    assert clipped.endswith("…")
    body = clipped[:-1]
    assert len(body.encode("utf-8")) <= 4096
    assert body == "a" + "é" * 2047


def test_page_text_truncates_before_escaping() -> None:
    clipped = page_text("<" * 5000)
    assert clipped == "&lt;" * 4096 + "…"


def test_page_text_shows_controls_visibly_and_normalises_newlines() -> None:
    assert page_text("a\x1b[2Jb\x07c\x00d\x7fe\x9bf") == "a\\x1b[2Jb\\x07c\\x00d\\x7fe\\x9bf"
    assert page_text("one\r\ntwo\rthree\nfour\u2028five") == "one\ntwo\nthree\nfour\nfive"
    assert page_text("tab\there") == "tab\there"


def test_page_text_replaces_lone_surrogates() -> None:
    text = page_text("bad \udc80 byte")
    assert text == "bad \ufffd byte"
    text.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Error page copy


def test_error_page_has_the_reference_slots() -> None:
    page = render_error_page(
        message="Sign-in failed: nope",
        error_code="invalid_request",
        error_description="nope",
        attempt_id=ATTEMPT,
    )
    assert "<title>Codex Sign-in Error</title>" in page
    assert "Codex login" in page
    assert "<h1>Sign-in could not be completed</h1>" in page
    assert '<p class="message">Sign-in failed: nope</p>' in page
    assert "<dt>Error code</dt>" in page
    assert "<code>invalid_request</code>" in page
    assert "<dt>Details</dt>" in page
    assert "<code>nope</code>" in page
    assert (
        '<p class="help">Return to Codex to retry, switch accounts, or contact your workspace admin if access '
        "is restricted.</p>"
    ) in page


def test_error_page_uses_entitlement_copy_and_hides_the_raw_token() -> None:
    page = render_error_page(
        message="Codex is not enabled for your workspace.",
        error_code="access_denied",
        error_description="Missing_Codex_Entitlement for this user",
        attempt_id=ATTEMPT,
    )
    assert "<h1>You do not have access to Codex</h1>" in page
    assert ('<p class="message">This account is not currently authorized to use Codex in this workspace.</p>') in page
    assert "<code>Contact your workspace administrator to request access to Codex.</code>" in page
    assert (
        '<p class="help">Contact your workspace administrator to get access to Codex, then return to Codex and '
        "try again.</p>"
    ) in page
    assert "<code>access_denied</code>" in page
    assert "missing_codex_entitlement" not in page.lower()
    assert "Sign-in could not be completed" not in page


def test_error_page_generic_copy() -> None:
    page = render_error_page(
        message="Sign-in failed: some_other_reason",
        error_code="access_denied",
        error_description="some_other_reason",
        attempt_id=ATTEMPT,
    )
    assert "Sign-in could not be completed" in page
    assert "Sign-in failed: some_other_reason" in page
    assert "Return to Codex to retry" in page
    assert "You do not have access to Codex" not in page
    assert "This account is not currently authorized" not in page


def test_entitlement_marker_needs_access_denied() -> None:
    page = render_error_page(
        message="Sign-in failed: missing_codex_entitlement",
        error_code="server_error",
        error_description="missing_codex_entitlement",
        attempt_id=ATTEMPT,
    )
    assert "Sign-in could not be completed" in page
    assert "<code>missing_codex_entitlement</code>" in page


def test_error_page_defaults_code_and_description() -> None:
    page = render_error_page(
        message="Missing authorization code", error_code=None, error_description=None, attempt_id=ATTEMPT
    )
    assert "<code>unknown_error</code>" in page
    assert "<code>Missing authorization code</code>" in page
    empty_description = render_error_page(
        message="Sign-in failed: x", error_code="x", error_description="", attempt_id=ATTEMPT
    )
    assert "<code>Sign-in failed: x</code>" in empty_description


def test_error_page_shows_attempt_and_advice() -> None:
    page = error_page(advice="Run codex-login --device-auth instead.")
    assert "<dt>Attempt</dt>" in page
    assert f"<code>{ATTEMPT}</code>" in page
    assert "Quote this to support." in page
    assert "What to try next" in page
    assert "Run codex-login --device-auth instead." in page


def test_error_page_without_attempt_or_advice_drops_those_sections() -> None:
    page = error_page(attempt_id=None)
    assert "<dt>Attempt</dt>" not in page
    assert "What to try next" not in page
    assert "<!--" not in page
    assert "__" not in page


def test_error_page_advice_is_escaped() -> None:
    page = error_page(advice="<a href='https://evil.example'>click</a>")
    assert "&lt;a href=&#39;https://evil.example&#39;&gt;click&lt;/a&gt;" in page
    assert urls_in(page) == []


def test_substitution_is_one_pass() -> None:
    page = render_error_page(
        message="__ERROR_CODE__ and __ATTEMPT_ID__ and <!--if advice-->",
        error_code="__ERROR_DESCRIPTION__",
        error_description="__ERROR_HELP__ __ADVICE__",
        attempt_id="__ERROR_TITLE__",
    )
    assert '<p class="message">__ERROR_CODE__ and __ATTEMPT_ID__ and &lt;!--if advice--&gt;</p>' in page
    assert "<code>__ERROR_DESCRIPTION__</code>" in page
    assert "<code>__ERROR_HELP__ __ADVICE__</code>" in page
    assert "<code>__ERROR_TITLE__</code>" in page
    assert page.count("Return to Codex to retry") == 1
    assert page.count("Sign-in could not be completed") == 1
    assert "What to try next" not in page

    success = render_success_page(attempt_id="__SETUP_URL__", plan="__PLAN__", needs_setup=False, platform_url="x")
    assert ">__PLAN__</span>" in success
    assert '<code dir="ltr">__SETUP_URL__</code>' in success
    assert urls_in(success) == []


# --------------------------------------------------------------------------------------------------
# Hostile input


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "</title><svg onload=alert(1)>",
    "</code></dd></dl><script>alert(1)</script>",
    "<!-- --><style>body{display:none}</style>",
    "<![CDATA[ ]]><iframe src=https://evil.example></iframe>",
    'line one\r\n{"level":"INFO","message":"forged"}\r\n',
    "\x1b[2J\x1b[31mred\x1b]8;;http://evil\x07link\x1b]8;;\x07",
    "\u202etxt.exe",
    "&lt;script&gt; already escaped &amp;",
    "<b>x</b>\n" * 20,
    "\x00\x01\x02\x7f\x85\x9b",
    "\udc80 surrogate",
    "A" * 1_000_000,
    "<" * 1_000_000,
]


def baseline_structure(**overrides: object) -> list[str]:
    return parse(error_page(description="benign", **overrides)).tags


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_descriptions_stay_text(hostile: str) -> None:
    page = render_error_page(
        message=f"Sign-in failed: {hostile}",
        error_code=hostile[:200],
        error_description=hostile,
        attempt_id=ATTEMPT,
        advice=hostile,
    )
    parser = parse(page)
    assert parser.tags == baseline_structure(advice="benign")
    assert "script" not in parser.tags
    assert not [name for _, name, _ in parser.attrs if name.lower().startswith("on")]
    assert urls_in(page) == []
    assert parser.title == "Codex Sign-in Error"
    # Nothing from outside lands outside a dir="ltr" container.
    outside = "".join(parser.text_outside_ltr)
    assert "alert" not in outside
    assert "\u202e" not in outside
    assert "\x1b" not in page
    assert "\r" not in page
    assert "\x00" not in page
    assert len(page.encode("utf-8")) < 80_000
    page.encode("utf-8")


def test_rlo_sits_inside_an_ltr_container() -> None:
    page = error_page(description="\u202eevil")
    parser = parse(page)
    inside = "".join(parser.text_inside_ltr)
    assert "\u202eevil" in inside
    assert "\u202e" not in "".join(parser.text_outside_ltr)


def test_one_megabyte_description_is_truncated() -> None:
    page = error_page(description="D" * 1_000_000)
    assert len(page) < 30_000
    assert "D" * 4096 + "…" in page
    assert "D" * 4097 not in page


@settings(max_examples=150, deadline=None)
@given(
    message=st.text(max_size=300),
    code=st.one_of(st.none(), st.text(max_size=50)),
    description=st.one_of(st.none(), st.text(max_size=300)),
)
def test_any_text_keeps_the_page_structure(message: str, code: str | None, description: str | None) -> None:
    page = render_error_page(message=message, error_code=code, error_description=description, attempt_id=ATTEMPT)
    parser = parse(page)
    assert parser.tags == baseline_structure()
    assert not [name for _, name, _ in parser.attrs if name.lower().startswith("on")]
    if not pages.is_entitlement_error(code, description):
        expected = html.unescape(page_text(message))
        match = re.search(r'<p class="message">(.*?)</p>', page, re.DOTALL)
        assert match is not None
        assert html.unescape(match.group(1)) == expected


# --------------------------------------------------------------------------------------------------
# Success page


def test_success_page_copy() -> None:
    page = render_success_page(
        attempt_id=ATTEMPT,
        plan="plus",
        needs_setup=False,
        platform_url=platform_url_for("https://auth.openai.com"),
    )
    assert "<title>Sign into Codex</title>" in page
    assert "<h1>Signed in to Codex</h1>" in page
    assert "You may now close this page" in page
    assert f'Attempt <code dir="ltr">{ATTEMPT}</code>' in page
    assert ">plus</span>" in page
    assert "Account" not in page  # no identity claim in the browser, only the plan
    assert "Finish setting up your API organization" not in page
    assert urls_in(page) == []
    parser = parse(page)
    assert "script" not in parser.tags
    assert "<script" not in page.lower()


def test_success_page_minimal() -> None:
    page = render_success_page(
        attempt_id=ATTEMPT, plan=None, needs_setup=False, platform_url="https://platform.openai.com"
    )
    assert "<dl" not in page
    assert "Account" not in page
    assert "<!--" not in page
    assert "__" not in page
    assert "You may now close this page" in page


def test_success_page_setup_link_has_no_token() -> None:
    page = render_success_page(
        attempt_id=ATTEMPT,
        plan="team",
        needs_setup=True,
        platform_url=platform_url_for("https://auth.openai.com"),
    )
    assert "Finish setting up your API organization" in page
    assert "Add a payment method to use your organization." in page
    assert urls_in(page) == ["https://platform.openai.com/org-setup"]
    for url in urls_in(page):
        assert "?" not in url
        assert "#" not in url
        assert "eyJ" not in url
    assert "eyJ" not in page
    assert 'rel="noreferrer noopener"' in page
    assert "<script" not in page.lower()


def test_success_page_other_issuer_uses_other_platform() -> None:
    page = render_success_page(
        attempt_id=ATTEMPT,
        plan=None,
        needs_setup=True,
        platform_url=platform_url_for("http://127.0.0.1:5555"),
    )
    assert urls_in(page) == ["https://platform.api.openai.org/org-setup"]


@pytest.mark.parametrize(
    "platform_url",
    [
        "javascript:alert(1)",
        "http://platform.openai.com",
        f"https://platform.openai.com/?t={FAKE_JWT}",
        'https://platform.openai.com"><script>',
        "https://user@platform.openai.com",
        "",
    ],
)
def test_success_page_refuses_odd_platform_urls(platform_url: str) -> None:
    with pytest.raises(ValueError):
        render_success_page(attempt_id=ATTEMPT, plan=None, needs_setup=True, platform_url=platform_url)


def test_success_page_trailing_slash_platform() -> None:
    page = render_success_page(
        attempt_id=ATTEMPT, plan=None, needs_setup=True, platform_url="https://platform.openai.com/"
    )
    assert urls_in(page) == ["https://platform.openai.com/org-setup"]


def test_success_page_escapes_claims() -> None:
    page = render_success_page(
        attempt_id=ATTEMPT,
        plan='"><script>alert(1)</script><img src=x onerror=alert(1)>',
        needs_setup=True,
        platform_url="https://platform.openai.com",
    )
    parser = parse(page)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert not [name for _, name, _ in parser.attrs if name.lower().startswith("on")]
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_platform_url_for_is_an_exact_comparison() -> None:
    assert platform_url_for("https://auth.openai.com") == "https://platform.openai.com"
    assert platform_url_for("https://auth.openai.com/") == "https://platform.api.openai.org"
    assert platform_url_for("http://127.0.0.1:8080") == "https://platform.api.openai.org"


# --------------------------------------------------------------------------------------------------
# Headers, assets, simple page


def test_security_headers() -> None:
    assert dict(SECURITY_HEADERS) == {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
    assert HTML_CONTENT_TYPE == "text/html; charset=utf-8"
    with pytest.raises(TypeError):
        SECURITY_HEADERS["X-Test"] = "1"  # type: ignore[index]


@pytest.mark.parametrize("name", ["success.html", "error.html"])
def test_assets_are_packaged_and_self_contained(name: str) -> None:
    text = resources.files("codex_login").joinpath("assets", name).read_text(encoding="utf-8")
    lowered = text.lower()
    assert "<script" not in lowered
    assert "://" not in text  # no external resource or link in the template itself
    assert "url(" not in lowered
    assert "@import" not in lowered
    parser = parse(text)
    assert not [attr for _, attr, _ in parser.attrs if attr.startswith("on")]


def test_damaged_template_is_detected() -> None:
    with pytest.raises(RuntimeError, match="damaged"):
        pages._Template("x.html", "<p>__A__</p>", placeholders=frozenset({"A", "B"}), sections=frozenset())
    with pytest.raises(RuntimeError, match="damaged"):
        pages._Template("x.html", "<!--end s--><!--if s-->", placeholders=frozenset(), sections=frozenset({"s"}))


def test_simple_page_escapes() -> None:
    page = render_simple_page("Not <Found>", "Nothing at </p><script>alert(1)</script>")
    parser = parse(page)
    assert "script" not in parser.tags
    assert parser.title == "Not <Found>"
    assert "Nothing at &lt;/p&gt;&lt;script&gt;" in page
    assert urls_in(page) == []
