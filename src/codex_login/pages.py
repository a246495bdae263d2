"""The pages the loopback server shows in the browser: success, branded error, and plain 4xx pages.

The HTML lives in ``codex_login/assets/*.html`` (package data, loaded once with :mod:`importlib.resources`).
Templates contain placeholders (``__NAME__``) and optional sections
(``<!--if name--> ... <!--end name-->``). Rendering first drops the sections whose condition is false
(an operation on the template only), then substitutes every placeholder in a single pass, so text that
came from outside can never be expanded as another placeholder or open a section.

Every dynamic value goes through :func:`page_text`: lone surrogates become U+FFFD, line breaks are
normalised, other control characters are shown as visible ``\\xNN`` text, the text is cut to 4 KiB, and
finally :func:`html_escape` (exactly ``& < > " '``, as the reference) makes it inert. Dynamic text sits in
``dir="ltr"`` elements (``unicode-bidi: isolate``), so a bidi override such as U+202E cannot reorder the
page's own text.

The pages carry no script and load nothing: inline CSS and inline SVG only (RFC 9700 §4.2.4). Tokens never
appear in a URL on these pages (DECISIONS D-3); the org-setup link is a plain link built from the platform
URL that belongs to the configured issuer, never from a request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Final

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_PLATFORM_URL",
    "ENTITLEMENT_MARKER",
    "HTML_CONTENT_TYPE",
    "MAX_PAGE_TEXT_BYTES",
    "NON_PRODUCTION_PLATFORM_URL",
    "SECURITY_HEADERS",
    "html_escape",
    "is_entitlement_error",
    "page_text",
    "platform_url_for",
    "render_error_page",
    "render_simple_page",
    "render_success_page",
]

HTML_CONTENT_TYPE: Final = "text/html; charset=utf-8"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)

#: Headers every page served by the loopback server carries (DECISIONS D-4; RFC 9700 §4.2.4, §4.16).
SECURITY_HEADERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }
)

DEFAULT_ISSUER: Final = "https://auth.openai.com"
DEFAULT_PLATFORM_URL: Final = "https://platform.openai.com"
NON_PRODUCTION_PLATFORM_URL: Final = "https://platform.api.openai.org"

#: Dynamic text is cut to this many UTF-8 bytes before escaping (security A13d).
MAX_PAGE_TEXT_BYTES: Final = 4096
_ELLIPSIS: Final = "…"

ENTITLEMENT_MARKER: Final = "missing_codex_entitlement"

# Reference copy (reference-spec §12.1).
_GENERIC_TITLE: Final = "Sign-in could not be completed"
_GENERIC_HELP: Final = (
    "Return to Codex to retry, switch accounts, or contact your workspace admin if access is restricted."
)
_ENTITLEMENT_TITLE: Final = "You do not have access to Codex"
_ENTITLEMENT_MESSAGE: Final = "This account is not currently authorized to use Codex in this workspace."
_ENTITLEMENT_DESCRIPTION: Final = "Contact your workspace administrator to request access to Codex."
_ENTITLEMENT_HELP: Final = (
    "Contact your workspace administrator to get access to Codex, then return to Codex and try again."
)
_UNKNOWN_ERROR_CODE: Final = "unknown_error"


def platform_url_for(issuer: str) -> str:
    """The platform URL that belongs to ``issuer`` (reference §2: an exact string comparison)."""
    return DEFAULT_PLATFORM_URL if issuer == DEFAULT_ISSUER else NON_PRODUCTION_PLATFORM_URL


# --------------------------------------------------------------------------------------------------
# Escaping


_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})


def html_escape(text: str) -> str:
    """The reference's ``html_escape``: ``& < > " '`` become entities; nothing else changes."""
    return text.translate(_ESCAPES)


def _visible_control(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


_CONTROLS_RE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_NEWLINES_RE: Final = re.compile("\r\n?|[\u2028\u2029\x85]")
_SURROGATES_RE: Final = re.compile("[\ud800-\udfff]")


def _clip_utf8(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + _ELLIPSIS


def page_text(value: str, *, limit: int = MAX_PAGE_TEXT_BYTES) -> str:
    """Make one dynamic value safe to place in a page's text or a quoted attribute.

    Registered secrets are replaced by ``<redacted:KIND>``; lone surrogates become U+FFFD; CR LF, CR, NEL
    and the Unicode line/paragraph separators become LF;
    other C0/C1 controls and DEL are shown as visible ``\\xNN`` text (ESC becomes ``\\x1b``); the result
    is cut to ``limit`` UTF-8 bytes (on a character boundary, with ``…`` appended) and then HTML-escaped.
    """
    # The last net before the browser (DECISIONS §4): no registered secret (code, state, verifier, tokens...)
    # on a page, whatever detail a message carries; scrubbed before the cut, which could split one.
    from .diagnostics.redact import SECRETS

    text = _SURROGATES_RE.sub("\ufffd", SECRETS.scrub(value))
    text = _NEWLINES_RE.sub("\n", text)
    text = _CONTROLS_RE.sub(_visible_control, text)
    return html_escape(_clip_utf8(text, limit))


# --------------------------------------------------------------------------------------------------
# Templates


_PLACEHOLDER_RE: Final = re.compile(r"__([A-Z][A-Z0-9_]*)__")
_SECTION_RE: Final = re.compile(r"<!--if ([a-z_]+)-->\n?(.*?)<!--end \1-->\n?", re.DOTALL)
_MARKER_RE: Final = re.compile(r"<!--(?:if|end) [a-z_]+-->")


class _Template:
    """A page template: optional sections and ``__NAME__`` placeholders."""

    def __init__(self, name: str, text: str, *, placeholders: frozenset[str], sections: frozenset[str]) -> None:
        found_sections = frozenset(re.findall(r"<!--if ([a-z_]+)-->", text))
        well_formed = all(
            text.count(f"<!--if {s}-->") == 1
            and text.count(f"<!--end {s}-->") == 1
            and text.index(f"<!--if {s}-->") < text.index(f"<!--end {s}-->")
            for s in found_sections
        )
        found_markers = len(_MARKER_RE.findall(text))
        found_placeholders = frozenset(_PLACEHOLDER_RE.findall(text))
        if (
            found_sections != sections
            or not well_formed
            or found_markers != 2 * len(found_sections)
            or found_placeholders != placeholders
        ):
            raise RuntimeError(f"the packaged page template {name} is damaged; reinstall codex-login")
        self._name = name
        self._text = text

    @functools.lru_cache(maxsize=64)  # noqa: B019 - templates live for the whole process
    def _variant(self, enabled: frozenset[str]) -> str:
        def keep_or_drop(match: re.Match[str]) -> str:
            return _SECTION_RE.sub(keep_or_drop, match.group(2)) if match.group(1) in enabled else ""

        return _SECTION_RE.sub(keep_or_drop, self._text)

    def render(self, values: Mapping[str, str], *, enabled: frozenset[str] = frozenset()) -> str:
        """Substitute already-escaped ``values`` in ONE pass over the template text."""
        return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], self._variant(enabled))


@functools.cache
def _template(name: str) -> _Template:
    text = resources.files("codex_login").joinpath("assets", name).read_text(encoding="utf-8")
    if name == "error.html":
        return _Template(
            name,
            text,
            placeholders=frozenset(
                {
                    "ERROR_TITLE",
                    "ERROR_MESSAGE",
                    "ERROR_CODE",
                    "ERROR_DESCRIPTION",
                    "ERROR_HELP",
                    "ATTEMPT_ID",
                    "ADVICE",
                }
            ),
            sections=frozenset({"attempt", "advice"}),
        )
    return _Template(
        name,
        text,
        placeholders=frozenset({"PLAN", "SETUP_URL", "ATTEMPT_ID"}),
        sections=frozenset({"summary", "plan", "setup", "attempt"}),
    )


# --------------------------------------------------------------------------------------------------
# Pages


def is_entitlement_error(error_code: str | None, error_description: str | None) -> bool:
    """The reference's entitlement case: ``access_denied`` with ``missing_codex_entitlement`` described."""
    return (error_code or _UNKNOWN_ERROR_CODE) == "access_denied" and ENTITLEMENT_MARKER in (
        error_description or ""
    ).lower()


def render_error_page(
    *,
    message: str,
    error_code: str | None,
    error_description: str | None,
    attempt_id: str | None,
    advice: str | None = None,
) -> str:
    """The branded error page (reference §12.1 slots and copy), plus the attempt ID and optional advice.

    ``message`` is what the CLI reports (e.g. ``Sign-in failed: ...``); ``advice`` is a short "what to try
    next" text. Every value is treated as untrusted text.
    """
    code = error_code or _UNKNOWN_ERROR_CODE
    if is_entitlement_error(code, error_description):
        title, shown_message = _ENTITLEMENT_TITLE, _ENTITLEMENT_MESSAGE
        description, help_text = _ENTITLEMENT_DESCRIPTION, _ENTITLEMENT_HELP
    else:
        title, shown_message, help_text = _GENERIC_TITLE, message, _GENERIC_HELP
        description = error_description or message
    enabled: set[str] = set()
    if attempt_id:
        enabled.add("attempt")
    if advice:
        enabled.add("advice")
    values = {
        "ERROR_TITLE": page_text(title),
        "ERROR_MESSAGE": page_text(shown_message),
        "ERROR_CODE": page_text(code),
        "ERROR_DESCRIPTION": page_text(description),
        "ERROR_HELP": page_text(help_text),
        "ATTEMPT_ID": page_text(attempt_id or ""),
        "ADVICE": page_text(advice or ""),
    }
    return _template("error.html").render(values, enabled=frozenset(enabled))


_PLATFORM_URL_RE: Final = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")


def render_success_page(
    *,
    attempt_id: str,
    plan: str | None,
    needs_setup: bool,
    platform_url: str,
) -> str:
    """The page ``/success`` serves once this attempt has saved credentials: the plan and the attempt ID.

    Never the account's email or name: no identity claim of the ID token is shown in the browser, where any
    local process can fetch ``/success`` while the grace period lasts.

    With ``needs_setup`` it adds the reference's "finish setting up your API organization" copy and a plain
    link to ``{platform_url}/org-setup``: no token, no query. ``platform_url`` must come from
    :func:`platform_url_for` (an ``https`` origin); anything else raises :class:`ValueError`.
    """
    enabled: set[str] = set()
    if plan:
        enabled.update(("summary", "plan"))
    if attempt_id:
        enabled.add("attempt")
    setup_url = ""
    if needs_setup:
        origin = platform_url.rstrip("/")
        if not _PLATFORM_URL_RE.fullmatch(origin):
            raise ValueError("platform_url must be an https origin such as https://platform.openai.com")
        setup_url = origin + "/org-setup"
        enabled.add("setup")
    values = {
        "PLAN": page_text(plan or ""),
        "SETUP_URL": html_escape(setup_url),
        "ATTEMPT_ID": page_text(attempt_id),
    }
    return _template("success.html").render(values, enabled=frozenset(enabled))


_SIMPLE_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>__TITLE__</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  padding: 24px;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  background: #f3f4f6; color: #111827; }
main { width: 100%; max-width: 480px; padding: 28px 32px; background: #fff; border: 1px solid #e5e7eb;
  border-radius: 16px; }
h1 { margin: 0 0 8px; font-size: 20px; }
p { margin: 0; color: #4b5563; white-space: pre-wrap; overflow-wrap: anywhere; }
[dir] { unicode-bidi: isolate; }
@media (prefers-color-scheme: dark) {
  body { background: #0b0f14; color: #e6edf3; } main { background: #151b23; border-color: #2b333d; }
  p { color: #9ca3af; }
}
</style>
</head>
<body>
<main>
<h1 dir="ltr">__TITLE__</h1>
<p dir="ltr">__TEXT__</p>
</main>
</body>
</html>
"""


def render_simple_page(title: str, text: str) -> str:
    """A small plain page (for 4xx answers such as "Not Found" or "State mismatch"); values are escaped."""
    values = {"TITLE": page_text(title, limit=256), "TEXT": page_text(text)}
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], _SIMPLE_PAGE)
