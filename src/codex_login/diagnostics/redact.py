"""Redaction: URLs (reference §13.2, security R-2, R-5), terminal text (D-5) and secret scrubbing (R-3, R-4).

Parity functions (the reference's behaviour, with its 12 keys only):
:func:`redact_sensitive_query_value`, :func:`redact_sensitive_url_parts`, :func:`sanitize_url_for_logging`.
Extended functions (the 12 keys plus :data:`EXTRA_SENSITIVE_KEYS`): :func:`redact_mapping`,
:func:`redact_urls_in_text` (by default), and the parity URL functions with ``extended=True``.

Second nets, for text about to leave for the terminal or a bundle: :func:`scrub_patterns` (JWTs, ``sk-``
keys, ``Bearer`` credentials, URL userinfo), :class:`SecretRegistry` (exact values registered while they
live) and :func:`scrub_all` (the process-wide :data:`SECRETS` registry, then the patterns).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "EXTRA_SENSITIVE_KEYS",
    "INVALID_URL",
    "REDACTED",
    "SECRETS",
    "SENSITIVE_URL_QUERY_KEYS",
    "SecretRegistry",
    "is_sensitive_key",
    "proxy_for_logging",
    "redact_mapping",
    "redact_sensitive_query_value",
    "redact_sensitive_url_parts",
    "redact_urls_in_text",
    "sanitize_terminal_text",
    "sanitize_url_for_logging",
    "scrub_all",
    "scrub_patterns",
]

REDACTED: Final = "<redacted>"
INVALID_URL: Final = "<invalid-url>"

SENSITIVE_URL_QUERY_KEYS: Final = (
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
EXTRA_SENSITIVE_KEYS: Final = (
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
)


@functools.cache
def _pattern(source: str) -> re.Pattern[str]:
    """Compiled on first use: classes with non-Latin-1 ranges take milliseconds to compile."""
    return re.compile(source)


_PARITY_KEYS: Final = frozenset(SENSITIVE_URL_QUERY_KEYS)
# Extended matching also treats "-" and "_" alike (Set-Cookie, set_cookie).
_EXTENDED_KEYS: Final = frozenset(k.replace("-", "_") for k in SENSITIVE_URL_QUERY_KEYS + EXTRA_SENSITIVE_KEYS)
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """``text`` with only A-Z lowered, so every index still points at the same character (``str.lower`` turns
    some non-ASCII letters into two); ``str.lower`` itself for ASCII text, many times faster than translate."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def is_sensitive_key(key: str, *, extended: bool = False) -> bool:
    """Whether ``key`` names a secret. ASCII case-insensitive; ``extended`` adds R-2's extra keys."""
    lowered = key.translate(_ASCII_LOWER)
    if extended:
        return lowered.replace("-", "_") in _EXTENDED_KEYS
    return lowered in _PARITY_KEYS


def redact_sensitive_query_value(key: str, value: str) -> str:
    """``"<redacted>"`` for one of the reference's 12 keys, else ``value`` (reference §13.2)."""
    return REDACTED if is_sensitive_key(key) else value


# --------------------------------------------------------------------------------------------- queries


def _form_encode(text: str) -> str:
    """``form_urlencoded::byte_serialize``: keep ``A-Za-z0-9*-._``, space as ``+``, the rest ``%XX``."""
    from urllib.parse import quote_plus

    return quote_plus(text.encode("utf-8", "replace"), safe="*").replace("~", "%7E")


def _redact_query(query: str | None, extended: bool) -> str | None:
    """Decode ``query`` into pairs like ``form_urlencoded::parse``, redact, serialize; ``None`` if no pairs."""
    if not query:
        return None
    from urllib.parse import unquote_plus

    pairs = []
    for piece in query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        name = unquote_plus(name, errors="replace")
        value = unquote_plus(value, errors="replace")
        if is_sensitive_key(name, extended=extended):
            value = REDACTED
        pairs.append(_form_encode(name) + "=" + _form_encode(value))
    return "&".join(pairs) if pairs else None


# --------------------------------------------------------------------------------------------- URLs

_SPECIAL_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_PROXY_PORTS: Final = {"http": 80, "https": 443, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_UNSAFE_IN_URL_SRC: Final = "[\\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
_FORBIDDEN_HOST = re.compile("[\x00-\x20\x7f#%/:<>?@\\[\\\\\\]^|]")
_PATH_ENCODE = re.compile('[^\x21-\x7e]|["#<>?`{}]')


class _Parts:
    __slots__ = ("authority", "fragment", "path", "query", "scheme", "special")

    def __init__(self) -> None:
        self.scheme: str | None = None
        self.special = False
        self.authority: str | None = None
        self.path = ""
        self.query: str | None = None
        self.fragment: str | None = None


def _split(url: str) -> _Parts:
    """Split like the WHATWG parser does, without validating: scheme, authority, path, query, fragment."""
    parts = _Parts()
    rest, hash_mark, fragment = url.partition("#")
    if hash_mark:
        parts.fragment = fragment
    rest, question, query = rest.partition("?")
    if question:
        parts.query = query
    scheme = _SCHEME_RE.match(rest)
    if scheme is not None:
        parts.scheme = scheme.group(1)
        rest = rest[scheme.end() :]
        parts.special = parts.scheme.lower() in _SPECIAL_PORTS
    if parts.special:
        # WHATWG: in special schemes "\" is "/", and any number of slashes may precede the authority.
        rest = rest.replace("\\", "/").lstrip("/")
        authority, slash, path = rest.partition("/")
        parts.authority, parts.path = authority, slash + path
    elif rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        parts.authority, parts.path = authority, slash + path
    else:
        parts.path = rest
    return parts


def _strip_userinfo(authority: str) -> str:
    return authority.rpartition("@")[2]


def redact_sensitive_url_parts(url: str, *, extended: bool = False) -> str:
    """Drop userinfo and fragment, redact sensitive query values (reference §13.2).

    The query is rebuilt the way ``form_urlencoded`` writes it (spaces as ``+``, ``<redacted>`` as
    ``%3Credacted%3E``), in the original order; a query without pairs is removed. Scheme, host and path keep
    their spelling (no normalization; see :func:`sanitize_url_for_logging` for that), and nothing is
    rejected, so this works on relative or odd URLs too. ``extended`` also redacts R-2's extra keys.
    """
    parts = _split(url)
    out = []
    if parts.scheme is not None:
        out.append(parts.scheme + ":")
    if parts.authority is not None:
        out.append("//" + _strip_userinfo(parts.authority))
    out.append(parts.path)
    query = _redact_query(parts.query, extended)
    if query is not None:
        out.append("?" + query)
    return "".join(out)


def _parse_ipv4_number(text: str) -> int | None:
    if not text:
        return None
    try:
        if text[:2] in ("0x", "0X"):
            return int(text[2:], 16) if text[2:] else 0
        if len(text) > 1 and text[0] == "0":
            return int(text[1:], 8)
        return int(text, 10) if text.isdigit() else None
    except ValueError:
        return None


def _ends_in_number(labels: list[str]) -> bool:
    last = labels[-1]
    if last.isascii() and last.isdigit():
        return True
    return last[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in last[2:])


def _normalize_ipv4(labels: list[str]) -> str | None:
    if len(labels) > 4:
        return None
    numbers = [_parse_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    address = values[-1]
    for i, n in enumerate(values[:-1]):
        address += n * 256 ** (3 - i)
    return ".".join(str((address >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def _normalize_host(host: str) -> str | None:
    if host.startswith("["):
        if not host.endswith("]"):
            return None
        import ipaddress

        try:
            return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
        except ValueError:
            return None
    if "%" in host:
        from urllib.parse import unquote

        try:
            host = unquote(host, errors="strict")
        except UnicodeDecodeError:
            return None
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not host or _FORBIDDEN_HOST.search(host):
        return None
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels = labels[:-1]
    if _ends_in_number(labels):
        return _normalize_ipv4(labels)
    return host


def _normalize_path(path: str) -> str:
    segments = path.split("/")[1:]
    out: list[str] = []
    for i, segment in enumerate(segments):
        lowered = segment.lower()
        last = i == len(segments) - 1
        if lowered in (".", "%2e"):
            if last:
                out.append("")
            continue
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(segment)
    return "/" + "/".join(out)


def _encode_path(path: str) -> str:
    return _PATH_ENCODE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "replace")), path)


def _parse_strict(url: str) -> tuple[str, str, int | None, _Parts] | None:
    """(scheme, host, port, parts) of an absolute URL with a host, normalized like WHATWG; else ``None``."""
    if not url or _pattern(_UNSAFE_IN_URL_SRC).search(url):
        return None
    parts = _split(url)
    if parts.scheme is None or not parts.authority:
        return None
    scheme = parts.scheme.lower()
    hostport = _strip_userinfo(parts.authority)
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return None
        host_text, after = hostport[: close + 1], hostport[close + 1 :]
        if after and not after.startswith(":"):
            return None
        port_text = after[1:]
    else:
        host_text, _, port_text = hostport.partition(":")
    host = _normalize_host(host_text)
    if host is None:
        return None
    port: int | None = None
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            return None
        port = int(port_text)
        if _SPECIAL_PORTS.get(scheme) == port:
            port = None
    return scheme, host, port, parts


def sanitize_url_for_logging(url: str, *, extended: bool = False) -> str:
    """A URL fit for the log: WHATWG-style normalized and redacted, or ``<invalid-url>`` (reference §13.2).

    Normalization: scheme and host lowercased (IDNA for non-ASCII hosts, IPv4 and IPv6 canonical forms),
    default ports dropped, ``/`` for an empty path in special schemes, dot segments resolved, unsafe path
    characters percent-encoded. Anything that is not an absolute URL with a host, or that contains
    whitespace or control characters, gives ``<invalid-url>``. Then userinfo and fragment are dropped and the
    query is redacted as in :func:`redact_sensitive_url_parts`.
    """
    parsed = _parse_strict(url)
    if parsed is None:
        return INVALID_URL
    scheme, host, port, parts = parsed
    path = parts.path
    if parts.special:
        path = _normalize_path(path) if path else "/"
    out = [scheme, "://", host]
    if port is not None:
        out.append(f":{port}")
    out.append(_encode_path(path))
    query = _redact_query(parts.query, extended)
    if query is not None:
        out.append("?" + query)
    return "".join(out)


def proxy_for_logging(url: str) -> str:
    """A proxy URL reduced to ``scheme://host:port`` (no credentials, path or query); ``<invalid-url>``
    when it does not parse. A bare ``host:port`` is read as ``http://`` (as HTTP clients do). The port is
    the explicit one, else the scheme's default when known."""
    candidate = url.strip()
    if "://" not in candidate:
        candidate = "http://" + candidate
    parsed = _parse_strict(candidate)
    if parsed is None:
        return INVALID_URL
    scheme, host, port, _parts = parsed
    if port is None:
        port = _PROXY_PORTS.get(scheme, _SPECIAL_PORTS.get(scheme))
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


_URL_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")
_CLOSERS: Final = {")": "(", "]": "[", "}": "{"}


def _trim_url_match(candidate: str) -> str:
    while candidate:
        last = candidate[-1]
        unbalanced = last in _CLOSERS and candidate.count(last) > candidate.count(_CLOSERS[last])
        if last in ".,;:!?" or unbalanced:
            candidate = candidate[:-1]
        else:
            break
    return candidate


def redact_urls_in_text(text: str, *, extended: bool = True) -> str:
    """Replace every ``scheme://...`` URL in free text (an exception message, say) by its redacted form.

    ``error sending request for url (https://u:p@host/x?code=1)`` becomes
    ``error sending request for url (https://host/x?code=%3Credacted%3E)``. Trailing punctuation and an
    unbalanced closing bracket are left outside the URL. ``extended`` (the default here) also redacts R-2's
    extra keys.
    """
    if "://" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        found = match.group()
        url = _trim_url_match(found)
        return redact_sensitive_url_parts(url, extended=extended) + found[len(url) :]

    return _URL_IN_TEXT.sub(replace, text)


def redact_mapping(mapping: Mapping[str, Any], *, extended: bool = True) -> dict[str, Any]:
    """A copy of ``mapping`` with the values of sensitive keys replaced by ``<redacted>`` (security R-2).

    Nested mappings and lists are walked. Keys match ASCII case-insensitively, with ``-`` and ``_`` alike.
    """

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                k: (REDACTED if isinstance(k, str) and is_sensitive_key(k, extended=extended) else walk(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    result: dict[str, Any] = walk(mapping)
    return result


# --------------------------------------------------------------------------------------------- terminal

# CSI (7- and 8-bit), string commands up to BEL or ST (OSC incl. OSC 8 hyperlinks, DCS, SOS, PM, APC; an
# unterminated one runs to the next ESC or the end), then any other ESC sequence.
_TERMINAL_SEQUENCE = re.compile(
    "\x1b\\[[0-?]*[ -/]*[@-~]"
    "|\x9b[0-?]*[ -/]*[@-~]"
    "|(?:\x1b[\\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\\\|\x9c|(?=\x1b)|\\Z)"
    "|\x1b[ -/]*[0-~]"
)
_TERMINAL_BREAK_SRC: Final = "\r\n|[\r\n\t\x0b\x0c\x85\u2028\u2029]"
_TERMINAL_STRIP_SRC: Final = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"


def sanitize_terminal_text(text: str, limit: int | None = None) -> str:
    """Text from outside, made safe to print on one terminal line (DECISIONS D-5).

    * escape sequences are removed whole: CSI, OSC (hyperlinks included) up to BEL or ST, DCS, SOS, PM,
      APC and two-character ESC sequences, in their 7- and 8-bit forms;
    * line breaks (CR, LF, CRLF, VT, FF, NEL, U+2028, U+2029) and tabs become one space each;
    * every other C0 control, DEL, C1 control, bidi control (U+061C, U+200E/F, U+202A-U+202E,
      U+2066-U+2069) and lone surrogate is removed;
    * with ``limit``, text longer than ``limit`` characters is cut to ``limit`` ending with ``…``.
    """
    if not text.isprintable():
        text = _TERMINAL_SEQUENCE.sub("", text)
        text = _pattern(_TERMINAL_BREAK_SRC).sub(" ", text)
        text = _pattern(_TERMINAL_STRIP_SRC).sub("", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…" if limit > 0 else ""
    return text


# --------------------------------------------------------------------------------------------- scrubbing

_SECRET_PATTERNS: Final = (
    (re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "<redacted:jwt>"),
    (re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{16,}"), "<redacted:api_key>"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]+=*"), r"\1 <redacted>"),
    (re.compile(r"//[^/?#@\s\"\\<>]+@"), "//<redacted>@"),
)


def scrub_patterns(text: str) -> str:
    """Mask secret-shaped strings (security R-4): JWTs, ``sk-`` keys, ``Bearer`` credentials, URL userinfo."""
    # Each pattern runs only when the text holds a literal every match of it contains (issue 9: every
    # logged value passes here). "bearer" under (?i) matches only ASCII letters (no 'ſ'/Kelvin-style
    # case partner exists for b, e, a or r; a test checks every code point), which lower() maps to
    # "bearer" whatever surrounds them.
    if "eyJ" in text:
        text = _SECRET_PATTERNS[0][0].sub(_SECRET_PATTERNS[0][1], text)
    if "sk-" in text:
        text = _SECRET_PATTERNS[1][0].sub(_SECRET_PATTERNS[1][1], text)
    if "bearer" in text.lower():
        text = _SECRET_PATTERNS[2][0].sub(_SECRET_PATTERNS[2][1], text)
    if "@" in text and "//" in text:
        text = _SECRET_PATTERNS[3][0].sub(_SECRET_PATTERNS[3][1], text)
    return text


_KIND_RE = re.compile(r"[^A-Za-z0-9_\-]")


#: RFC 3986 unreserved characters only: what URL encoding and JSON escaping leave as they are.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


class SecretRegistry:
    """Exact secret values registered while they live (security R-3), scrubbed from outgoing text.

    Each value is also matched in its URL-encoded (``quote``, ``quote_plus``) and JSON-escaped forms, in any
    ASCII case (a backend that echoes a token upper-cased), and replaced by ``<redacted:KIND>``. A value of
    :attr:`MIN_PARTIAL` characters or more is also found in part: any run of at least :attr:`MIN_PARTIAL`
    characters copied from it (a code cut to its first 20 characters by a backend's message, a token split
    across two lines, a secret straddling a length cut) is replaced too, as the canary test looks for any
    8-character window of a secret. Values shorter than :attr:`MIN_LENGTH` are not registered: masking every
    short substring would destroy the text around it; shorter runs than :attr:`MIN_PARTIAL` are left for the
    same reason (``sk-proj-`` is the start of every project key, not a secret). Thread-safe.

    Partial runs are found with the value's :attr:`WINDOW`-character windows (a set lookup every few
    characters of the text, then the run is grown window by window), rather than with one compiled
    alternation: compiling a regular expression of every form took up to 9 ms per registration once tokens a
    few kilobytes long were in it, and the browser sign-in registers the code and four tokens while the
    callback waits for its answer (issue 9).
    """

    MIN_LENGTH: Final = 6
    #: The shortest copied run that is scrubbed as part of a secret. Not less: a secret's readable prefix
    #: (``deviceauth_`` of a device auth ID, ``sk-svcacct-``) must not take the words it spells from the text
    #: around it (the ``/deviceauth/callback`` redirect URI).
    MIN_PARTIAL: Final = 12
    WINDOW: Final = 8
    #: Every run of MIN_PARTIAL characters holds a window starting at a multiple of this.
    _STRIDE: Final = MIN_PARTIAL - WINDOW + 1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}  # lowered form -> replacement
        self._ordered: tuple[tuple[str, str], ...] = ()  # (lowered form, replacement), longest form first
        self._windows: dict[str, str] = {}  # lowered WINDOW-character piece of a long form -> replacement

    def __repr__(self) -> str:
        return f"SecretRegistry(<{len(self._secrets)} forms>)"

    def __len__(self) -> int:
        return len(self._secrets)

    def add(self, kind: str, value: str | None) -> None:
        """Register ``value`` as a secret of ``kind`` (``code``, ``state``, ``access_token``...)."""
        if not value or len(value) < self.MIN_LENGTH:
            return
        replacement = f"<redacted:{_KIND_RE.sub('_', kind) or 'secret'}>"
        if not _UNRESERVED.fullmatch(value):
            import json
            from urllib.parse import quote, quote_plus

            forms = {
                value,
                quote(value, safe=""),
                quote(value),
                quote_plus(value, safe=""),
                json.dumps(value, ensure_ascii=True)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
            }
        else:
            # Letters, digits and -._~ only (states, verifiers, codes, JWTs, API keys): every encoded form is the
            # value itself, and the browser sign-in registers a few of them while the callback waits (issue 9).
            forms = {value}
        width = self.WINDOW
        with self._lock:
            for form in forms:
                lowered = _ascii_lower(form)
                self._secrets.setdefault(lowered, replacement)
                if len(lowered) >= self.MIN_PARTIAL:
                    # In place, in one C call (scrub() reads without the lock, and a copy of every window of
                    # every token cost the callback 0.2 ms, issue 9). A window two secrets share (a JWT header)
                    # names the later one's kind: either is right.
                    self._windows.update(
                        dict.fromkeys([lowered[i : i + width] for i in range(len(lowered) - width + 1)], replacement)
                    )
            self._ordered = tuple(sorted(self._secrets.items(), key=lambda item: len(item[0]), reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._windows.clear()
            self._ordered = ()

    def scrub(self, text: str) -> str:
        """``text`` with every registered value (its encoded forms, in any ASCII case) and every copied run of
        :attr:`MIN_PARTIAL` characters or more of one replaced by ``<redacted:KIND>``."""
        ordered, windows = self._ordered, self._windows
        if not ordered or len(text) < self.MIN_LENGTH:
            return text
        lowered = _ascii_lower(text)
        spans: list[tuple[int, int, str]] = []
        taken = bytearray(len(text))
        for form, replacement in ordered:  # whole values first, longest first: they name the kind
            at = lowered.find(form)
            while at >= 0:
                if not any(taken[at : at + len(form)]):
                    spans.append((at, at + len(form), replacement))
                    taken[at : at + len(form)] = b"\x01" * len(form)
                at = lowered.find(form, at + 1)
        if windows:
            spans += self._partial_runs(lowered, windows)
        if not spans:
            return text
        # By start; at one start a whole value (found first) names the kind rather than a partial run.
        spans.sort(key=lambda span: span[0])
        out: list[str] = []
        end = 0
        for start, stop, replacement in spans:
            if start < end:  # overlaps the previous span: grow it
                end = max(end, stop)
                continue
            out.append(text[end:start])
            out.append(replacement)
            end = stop
        out.append(text[end:])
        return "".join(out)

    def _partial_runs(self, lowered: str, windows: dict[str, str]) -> list[tuple[int, int, str]]:
        """(start, end, replacement) of every run of MIN_PARTIAL or more characters made of registered windows."""
        width, last = self.WINDOW, len(lowered) - self.WINDOW
        runs: list[tuple[int, int, str]] = []
        i = 0
        while i <= last:
            replacement = windows.get(lowered[i : i + width])
            if replacement is None:
                i += self._STRIDE
                continue
            start = i
            while start > 0 and lowered[start - 1 : start - 1 + width] in windows:
                start -= 1
            stop = i
            while stop < last and lowered[stop + 1 : stop + 1 + width] in windows:
                stop += 1
            if stop + width - start >= self.MIN_PARTIAL:
                runs.append((start, stop + width, replacement))
            i = stop + 1
        return runs


SECRETS: Final = SecretRegistry()
"""The process-wide registry: flows register secrets here the moment they exist."""


def scrub_all(text: str) -> str:
    """:data:`SECRETS` then :func:`scrub_patterns`: the second net before the terminal, logs and bundles."""
    return scrub_patterns(SECRETS.scrub(text))
