"""Outbound HTTP: the one place that imports httpx.

Every request has a connect timeout and a total deadline, follows no redirects (a 307 must never carry a
code or a verifier to a second host: RFC 9700 §4.12), reads at most 1 MiB of body, trusts the CA source
DECISIONS D-9 names, and takes its proxy from the environment. Failures become
:class:`~codex_login.errors.TransportError` with a ``transport_kind`` decided from exception *types* (never
by matching message text) and a message whose URLs are redacted.

httpx is imported by the functions that use it, not with this module: every command imports
:class:`HttpSettings` for its options, and a browser sign-in must not spend the ~35 ms httpx takes to
import before it prints the URL; its worker imports httpx while the browser is away (issue 9).
"""

from __future__ import annotations

import errno as errno_mod
import http
import ipaddress
import json
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .diagnostics.redact import proxy_for_logging, redact_sensitive_url_parts
from .errors import TransportError

if TYPE_CHECKING:
    import httpx

    from ._deadline import Watchdog

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_TOTAL_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
USER_AGENT = "codex-login"
# URLs a client keeps parsed (see HttpClient._parsed); a sign-in uses one or two.
MAX_PARSED_URLS = 16
# httpcore's trace events that hand over a new connection's stream (TCP, then TLS on it, or TLS through a proxy).
_CONNECTED_EVENTS = frozenset(
    {"connection.connect_tcp.complete", "connection.start_tls.complete", "proxy.start_tls.complete"}
)
# The TLS handshake on a new connection's own stream: with an https:// proxy, the handshake with the proxy (the
# one with the issuer, inside the tunnel, is ``proxy.start_tls``); without one, the handshake with the issuer.
_FIRST_HANDSHAKE_FAILED = "connection.start_tls.failed"


@dataclass(frozen=True)
class CaSource:
    """Where trust anchors come from: ``CODEX_CA_CERTIFICATE``, ``SSL_CERT_FILE`` or ``system``."""

    name: str
    path: str | None = None

    def describe(self) -> str:
        return self.name if self.path is None else f"{self.name} ({self.path})"


def resolve_ca_source(env: Mapping[str, str]) -> CaSource:
    for var in ("CODEX_CA_CERTIFICATE", "SSL_CERT_FILE"):
        value = env.get(var, "").strip()
        if value:
            return CaSource(var, value)
    return CaSource("system")


def build_ssl_context(ca: CaSource) -> ssl.SSLContext:
    if ca.path is None:
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        with open(ca.path, "rb") as fh:
            pem = fh.read(4 * 1024 * 1024)
        ctx = ssl.create_default_context()
        # Only ASCII lines: OpenSSL skips text outside the BEGIN/END blocks, and bundles label certificates
        # with comments in any language, but ``cadata`` takes ASCII text (a block with other bytes in it is
        # not a certificate either way). A UTF-8 byte order mark goes first (it would hide the BEGIN line
        # that follows it), and OpenSSL's "TRUSTED CERTIFICATE" blocks (NixOS bundles, `openssl x509
        # -trustout`) are read as the certificates they start with, as a cafile= load reads them.
        pem = pem.removeprefix(b"\xef\xbb\xbf").replace(b"-----BEGIN TRUSTED CERTIFICATE-----",
                                                         b"-----BEGIN CERTIFICATE-----")
        pem = pem.replace(b"-----END TRUSTED CERTIFICATE-----", b"-----END CERTIFICATE-----")
        ascii_lines = [line.decode("ascii") for line in pem.splitlines() if line.isascii()]
        ctx.load_verify_locations(cadata="\n".join(ascii_lines))
    except (ssl.SSLError, ValueError):  # before OSError: ssl.SSLError is one, and this is no read failure
        raise TransportError(
            f"Failed to load CA certificate file {ca.path} selected by {ca.name}: "
            "it does not contain a PEM certificate",
            transport_kind="ca_config",
        ) from None
    except OSError as err:
        raise TransportError(
            f"Failed to read CA certificate file {ca.path} selected by {ca.name}: {err.strerror}",
            transport_kind="ca_config",
        ) from None
    return ctx


def proxy_variables(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The non-empty ``*_proxy`` variables by lowercased name: (the variable's own name, its value).

    Of two spellings of one name the uppercase one wins (``HTTPS_PROXY`` over ``https_proxy``), as reqwest
    reads them, whatever their order in the environment (it decided before). Only the ``*_proxy`` values are
    read: os.environ decodes every value it hands out, and this runs on the callback's path (issue 9).
    """
    found: dict[str, tuple[str, str]] = {}
    for key in env:
        name = key.lower()
        if name.endswith("_proxy") and (value := env[key]) and (name not in found or key != name):
            found[name] = (key, value)
    return found


def register_proxy_credentials(env: Mapping[str, str]) -> None:
    """Register the user and password of every proxy variable as secrets (security R-3).

    Only ``scheme://host:port`` of a proxy is ever logged or shown, but a proxy or an issuer that echoes the
    credentials it was sent (a 407 page, an error description) would put them in a message: registered, they
    are scrubbed from the log, the terminal and the pages, in their URL-encoded and decoded spellings.
    """
    from urllib.parse import unquote

    from .diagnostics.redact import SECRETS

    for _name, value in proxy_variables(env).values():
        authority = value.partition("://")[2] if "://" in value else value
        userinfo, at, _host = authority.split("/", 1)[0].rpartition("@")
        if not at:
            continue
        user, _colon, password = userinfo.partition(":")
        for kind, secret in (("proxy_user", user), ("proxy_password", password)):
            SECRETS.add(kind, secret)
            SECRETS.add(kind, unquote(secret))


def proxy_for_url(url: str, env: Mapping[str, str]) -> str | None:
    """The proxy the environment selects for ``url`` (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), or None."""
    parts = urlsplit(url)
    variables = proxy_variables(env)
    no_proxy = variables["no_proxy"][1] if "no_proxy" in variables else ""
    host = parts.hostname or ""
    if no_proxy and _bypassed(host, no_proxy):
        return None
    chosen = variables.get(f"{parts.scheme}_proxy") or variables.get("all_proxy")
    proxy = chosen[1] if chosen is not None else None
    if proxy is not None and "://" not in proxy:
        return f"http://{proxy}"  # ``proxy.corp:3128``: curl and reqwest read it as an HTTP proxy
    return proxy


_IpEntry = ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip_entry(text: str) -> _IpEntry | None:
    """``text`` as reqwest parses a NO_PROXY entry or a URL's host: an IP address in any spelling Rust's
    ``IpAddr`` reads (``::1``, ``0:0:0:0:0:0:0:1``, upper-case hex), or with ``/prefix`` a CIDR block (host bits
    may be set); None for anything else: a name, ``[::1]``, a zone (``fe80::1%eth0``), a netmask (``/255.0.0.0``)."""
    address, slash, prefix = text.partition("/")
    if not slash:
        return _ip_address(address)
    if _ip_address(address) is None or not (prefix.isascii() and prefix.isdigit()):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:  # a prefix longer than the address
        return None


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:  # Python reads an IPv6 zone, Rust's IpAddr does not
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _domain_matches(host: str, entry: str) -> bool:
    """A name entry (both lower-case): the name itself and its subdomains, with or without a leading dot."""
    if host == entry or (entry.startswith(".") and entry[1:] == host):
        return True
    return host.endswith(entry) and (entry.startswith(".") or host[-len(entry) - 1:-len(entry)] == ".")


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts ``host``, by reqwest's rule (its environment proxies use hyper-util's
    ``NoProxy``; the Rust CLI's client is reqwest):

    * entries are separated by commas; whitespace around an entry is ignored, an empty entry is skipped;
    * an entry that parses as an IP address or a CIDR block (:func:`_ip_entry`) matches only a host that is an
      IP literal, and only by value: equal to the address (``0:0:0:0:0:0:0:1`` is ``::1``) or inside the block
      (``10.0.0.0/8``); an IP host is never matched by suffix (``0.1`` does not exempt ``127.0.0.1``), and an IPv6
      host never by an IPv4 entry (``::ffff:127.0.0.1`` is not ``127.0.0.1``);
    * every other entry is a host name, matched without regard to case against a host that is not an IP literal:
      the name and its subdomains (``example.com`` and ``.example.com`` both match ``example.com`` and
      ``a.example.com``, never ``notexample.com``). Names are compared as written: a trailing dot is part of the
      name (``example.com.`` and ``example.com`` do not match each other), and ``[::1]`` or ``host:port`` are
      names that no host matches;
    * ``*`` matches every host. Here it matches IP literals too, as curl's does, where reqwest's skips them
      (reqwest issue #2579, a departure from the curl rule it follows).
    """
    host = host.lower()
    host_ip = _ip_address(host)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        ip = _ip_entry(entry)
        if host_ip is None:
            if ip is None and _domain_matches(host, entry):
                return True
        elif isinstance(ip, ipaddress.IPv4Network | ipaddress.IPv6Network):
            if host_ip.version == ip.version and host_ip in ip:
                return True
        elif ip is not None and host_ip == ip:
            return True
    return False


def unmatchable_no_proxy_entries(no_proxy: str) -> dict[str, int]:
    """How many NO_PROXY entries exempt no host at all by :func:`_bypassed`'s rule, by why: ``brackets``
    (``[::1]``: an IPv6 address is written bare), ``port`` (``host:8443``: entries take no port) and ``other``
    (a ``/``, ``%`` or ``:`` in what is neither an IP address nor a CIDR block). Counts only: the entries
    themselves are the user's host names, which the doctor report (and the bundle) do not carry."""
    counts = {"brackets": 0, "port": 0, "other": 0}
    for raw in no_proxy.split(","):
        entry = raw.strip()
        if not entry or _ip_entry(entry) is not None:
            continue
        name, colon, port = entry.rpartition(":")
        if entry.startswith("["):
            counts["brackets"] += 1
        elif colon and port.isascii() and port.isdigit() and ":" not in name and "/" not in name:
            counts["port"] += 1
        elif any(c in entry for c in "/%:"):
            counts["other"] += 1
    return counts


def status_text(status: int) -> str:
    """How Rust's ``StatusCode`` displays: ``403 Forbidden``."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} <unknown status code>"


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)
    truncated: bool = False

    @property
    def status_text(self) -> str:
        return status_text(self.status)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts in seconds and the environment that selects CA and proxy."""

    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Route:
    """What the log may say about how a request left the machine."""

    ca_source: str
    proxy: str


class HttpClient:
    """A small synchronous client over httpx with the project's policies.

    Requests go straight to an ``httpx.HTTPTransport`` (one per proxy) rather than through an
    ``httpx.Client``: the client's layers (URL merging, the auth and redirect generators, the cookie jar,
    which parses every response through ``urllib.request``) do nothing the project wants (no redirects
    are followed, no cookies are kept, like the reference's reqwest client) and cost about a third of a
    millisecond per request, twice on the callback's path (issue 9).
    """

    def __init__(self, settings: HttpSettings | None = None) -> None:
        import httpx

        self.settings = settings or HttpSettings()
        self.env: Mapping[str, str] = self.settings.env if self.settings.env is not None else os.environ
        register_proxy_credentials(self.env)
        self.ca = resolve_ca_source(self.env)
        self._ssl: ssl.SSLContext | None = None
        # One transport per proxy and per scheme: an https URL's carries the trust anchors of the CA source,
        # a plain-http URL's carries none (see _transport).
        self._transports: dict[tuple[str | None, bool], httpx.HTTPTransport] = {}
        # Per URL: its proxy and whether it is https, the key of its transport (see _route).
        self._routes: dict[str, tuple[str | None, bool]] = {}
        self._urls: dict[str, httpx.URL] = {}
        # The socket of each origin's pooled connection (by proxy, scheme, host, port), for the deadline watchdog:
        # a request on a reused connection sees no connect event.
        self._sockets: dict[tuple[str | None, str, str, int | None], socket.socket] = {}
        self._watchdog: Watchdog | None = None
        connect = min(self.settings.connect_timeout, self.settings.total_timeout)
        self._timeout = httpx.Timeout(self.settings.total_timeout, connect=connect).as_dict()

    def proxy_for(self, url: str) -> str | None:
        """:func:`proxy_for_url` in this client's environment (read once per URL, see :meth:`_route`)."""
        return self._route(url)[0]

    def _route(self, url: str) -> tuple[str | None, bool]:
        """``url``'s proxy and whether it is https, worked out once per URL: the environment is read key by
        key and the URL split, and a sign-in asks several times per request (issue 9)."""
        try:
            return self._routes[url]
        except KeyError:
            route = self._routes[url] = (proxy_for_url(url, self.env), urlsplit(url).scheme == "https")
            return route

    def route_for(self, url: str) -> Route:
        proxy = self.proxy_for(url)
        return Route(ca_source=self.ca.name, proxy="none" if proxy is None else proxy_for_logging(proxy))

    def _transport(self, url: str) -> httpx.HTTPTransport:
        key = self._route(url)
        proxy = key[0]
        transport = self._transports.get(key)
        if transport is not None:
            return transport
        import httpx

        # Plain HTTP verifies no certificate, so its context is never used: it trusts nothing (a TLS connection
        # through it would fail) and costs nothing to build, where httpx's default (verify=True) parses
        # certifi's bundle, about 90 ms (issue 9). Kept apart from the https transport, which must verify with
        # the CA source even if a plain-http URL came first.
        verify = self._trusted() if key[1] else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        scheme = proxy.partition("://")[0].lower() if proxy is not None else ""
        try:
            # An https:// proxy's own certificate is checked against the CA source too (D-9): given only the
            # URL, httpx would check it against certifi's bundle.
            route = httpx.Proxy(proxy, ssl_context=self._trusted()) if scheme == "https" and proxy else proxy
            transport = httpx.HTTPTransport(verify=verify, trust_env=False, proxy=route)
        except ImportError:
            raise TransportError(
                f"the proxy {proxy_for_logging(proxy or '')} needs SOCKS support: pip install 'codex-login[socks]'",
                transport_kind="proxy",
            ) from None
        except httpx.InvalidURL:
            # Not named: what httpx could not parse may be a password with a '/' in it (security D5).
            raise TransportError(
                "the proxy in the proxy environment variables (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY) is not a valid "
                "URL (percent-encode special characters in its user name and password)",
                transport_kind="proxy",
            ) from None
        except ValueError:
            raise TransportError(
                f"unsupported proxy scheme {scheme or '?'!r} in the proxy environment variables "
                "(use http://, https:// or socks5://)",
                transport_kind="proxy",
            ) from None
        self._transports[key] = transport
        return transport

    def _trusted(self) -> ssl.SSLContext:
        """The context of the CA source (D-9), built on first use."""
        if self._ssl is None:
            self._ssl = build_ssl_context(self.ca)
        return self._ssl

    def _parsed(self, url: str) -> httpx.URL:
        """``url`` parsed by httpx, once per URL: a sign-in posts twice to the same token endpoint, and on the
        callback's cold CPU a parse costs about a quarter of a millisecond (issue 9)."""
        parsed = self._urls.get(url)
        if parsed is None:
            import httpx

            parsed = httpx.URL(url)
            if len(self._urls) < MAX_PARSED_URLS:
                self._urls[url] = parsed
        return parsed

    def prepare(self, url: str) -> None:
        """Build the transport for ``url`` now (TLS trust store, proxy, connection pool) and parse the URL,
        without sending anything, so the first request does not pay for it. A problem (a bad CA file, a URL
        httpx rejects...) is left for that request to report."""
        import httpx

        self._deadlines()
        try:
            self._transport(url)
            self._parsed(url)
        except (TransportError, ValueError, httpx.InvalidURL):
            return

    def _deadlines(self) -> Watchdog:
        """The watchdog that enforces the total deadline (:mod:`._deadline`), started on first use."""
        if self._watchdog is None:
            from ._deadline import Watchdog

            self._watchdog = Watchdog()
        return self._watchdog

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post_form(self, url: str, body: str, *, headers: Mapping[str, str] | None = None) -> HttpResponse:
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", url, content=body.encode("utf-8"), headers=hdrs)

    def post_json(self, url: str, payload: Any, *, headers: Mapping[str, str] | None = None) -> HttpResponse:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        return self.request("POST", url, content=json.dumps(payload).encode("utf-8"), headers=hdrs)

    def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> HttpResponse:
        return self.request("GET", url, headers=dict(headers or {}))

    def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        import httpx

        from ._deadline import InFlight

        deadline = time.monotonic() + self.settings.total_timeout
        watchdog = self._deadlines()
        flight: InFlight | None = None
        failed: list[str] = []  # the failed steps httpcore reported that classification tells apart
        try:
            transport = self._transport(url)
            parsed = self._parsed(url)
            origin = (self.proxy_for(url), parsed.scheme, parsed.host, parsed.port)
            flight = InFlight(deadline, self._sockets.get(origin))
            in_flight = flight

            def connected(event: str, info: Mapping[str, Any]) -> None:
                # httpcore's trace extension: the socket of a new connection, for the watchdog to shut down.
                if event in _CONNECTED_EVENTS:
                    stream = info.get("return_value")
                    sock = stream.get_extra_info("socket") if stream is not None else None
                    if isinstance(sock, socket.socket):
                        self._sockets[origin] = sock
                        in_flight.attach(sock)
                elif event == _FIRST_HANDSHAKE_FAILED:
                    failed.append(event)

            request = httpx.Request(
                method,
                parsed,
                content=content,
                headers={"Accept": "*/*", "User-Agent": USER_AGENT, **(headers or {})},
                extensions={"timeout": self._timeout, "trace": connected},
            )
            watchdog.add(flight)
            response = transport.handle_request(request)
            try:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                try:
                    for chunk in response.iter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > MAX_BODY_BYTES:
                            truncated = True
                            break
                        if time.monotonic() > deadline:
                            raise httpx.ReadTimeout("total deadline exceeded")
                except httpx.DecodingError:
                    # An answer arrived, with a body its Content-Encoding does not describe: its status still
                    # counts (a 400 is the issuer's refusal, not "error sending request"); the body is unusable,
                    # so it is empty: callers read it as "not JSON", as any body they cannot use.
                    chunks = []
                body = b"".join(chunks)[:MAX_BODY_BYTES]
                return HttpResponse(
                    status=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=body,
                    truncated=truncated,
                )
            finally:
                response.close()
        except httpx.HTTPError as err:
            # Expired: the watchdog shut the connection down at the deadline; whatever the read then saw, a timeout.
            expired = flight is not None and flight.expired
            failure = httpx.ReadTimeout("total deadline exceeded") if expired else err
            proxy = self.proxy_for(url)
            tls_proxy = proxy is not None and proxy.partition("://")[0].lower() == "https"
            raise classify_transport_error(
                failure, url, self, proxy_handshake=tls_proxy and _FIRST_HANDSHAKE_FAILED in failed
            ) from None
        except httpx.InvalidURL:
            # A URL httpx refuses (an endpoint from a discovery document, say): no request could be sent.
            shown, display = _request_error_texts(url)
            raise TransportError(
                f"{shown}: the URL is not valid", transport_kind="protocol", display=display, error_class="InvalidURL"
            ) from None
        finally:
            if flight is not None:
                watchdog.remove(flight)


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _errno_of(chain: list[BaseException]) -> int | None:
    for exc in chain:
        # An SSLError's errno is OpenSSL's reason number, not an OS error: the log would call it EPERM.
        if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.errno is not None:
            return exc.errno
    return None


@dataclass(frozen=True)
class TransportFacts:
    """What the log may record about a transport failure."""

    kind: str
    error_class: str
    errno: int | None
    is_timeout: bool
    is_connect: bool
    is_request: bool


def transport_facts(
    err: BaseException, *, proxy_in_use: bool = False, proxy_handshake: bool = False
) -> TransportFacts:
    """Classify by exception type along the cause chain (the PR's non-goal forbids guessing from text).

    A failed connect while a proxy is configured for the URL is a proxy failure (the only peer we tried to
    reach was the proxy), unless it failed on a certificate. ``proxy_handshake``: the TLS handshake with an
    https:// proxy failed (not the one with the issuer); unless on the proxy's certificate (the remedy is the CA
    source, D-9) that is a proxy failure: usually a proxy that speaks plain HTTP given as https://.
    """
    import httpx

    chain = _chain(err)
    code = _errno_of(chain)
    is_timeout = isinstance(err, httpx.TimeoutException)
    is_connect = isinstance(err, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError)
    is_request = isinstance(err, httpx.RequestError)
    refused_certificate = any(isinstance(e, ssl.SSLCertVerificationError) for e in chain)
    if is_timeout:
        kind = "timeout"
    elif isinstance(err, httpx.ProxyError) or (proxy_handshake and not refused_certificate):
        kind = "proxy"
    elif any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain):
        # Before the proxy rule: through a proxy, a certificate refused is the issuer's (or an intercepting
        # proxy's), and the remedy is the CA source (security D1), not the proxy settings.
        kind = "tls"
    elif proxy_in_use and isinstance(err, httpx.ConnectError):
        kind = "proxy"
    elif any(isinstance(e, socket.gaierror) for e in chain):
        kind = "dns"
    elif isinstance(err, httpx.ConnectError):
        kind = "connect"
    elif isinstance(err, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        kind = "closed"
    else:
        kind = "protocol"
    return TransportFacts(
        kind=kind,
        error_class=type(err).__name__,
        errno=code,
        is_timeout=is_timeout,
        is_connect=is_connect,
        is_request=is_request,
    )


def _proxy_refusal(chain: list[BaseException]) -> int | None:
    """The status a proxy answered CONNECT with (a 407 asks for credentials: security D6). httpcore puts it
    first in the ProxyError message; only the number is used, never the proxy's own wording."""
    import httpx

    for exc in chain:
        if isinstance(exc, httpx.ProxyError):
            head = str(exc)[:4]
            if len(head) == 4 and head[:3].isdigit() and head[3] == " ":
                return int(head[:3])
    return None


def _cause_phrase(
    facts: TransportFacts, chain: list[BaseException], client: HttpClient, url: str, *, proxy_handshake: bool = False
) -> str:
    route = client.route_for(url)  # the proxy as scheme://host:port only (security.md)
    if facts.kind == "timeout":
        during = f" in the TLS handshake with the proxy {route.proxy}" if proxy_handshake else ""
        settings = client.settings
        return f"timed out{during} (connect {settings.connect_timeout:g} s, total {settings.total_timeout:g} s)"
    if facts.kind == "proxy":
        if proxy_handshake:
            return (
                f"the TLS handshake with the proxy {route.proxy} failed (an https:// proxy URL needs a proxy that "
                "speaks TLS; a proxy that speaks plain HTTP is written http://)"
            )
        refused = _proxy_refusal(chain)
        if refused is not None:
            return f"the proxy {route.proxy} refused the connection: {status_text(refused)}"
        return f"the proxy {route.proxy} failed"
    if facts.kind == "tls":
        whose = f" of the proxy {route.proxy}" if proxy_handshake else ""
        detail = f"TLS handshake{whose} failed"
        for exc in chain:
            if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
                detail = f"TLS certificate verification{whose} failed: {exc.verify_message}"
                break
        return (
            f"{detail} (trusted CAs from {client.ca.describe()}; "
            "set CODEX_CA_CERTIFICATE to a PEM file to trust another CA)"
        )
    if facts.kind == "dns":
        return f"could not resolve host {urlsplit(url).hostname or '?'}"
    if facts.kind == "connect":
        if facts.errno == errno_mod.ECONNREFUSED:
            return "connection refused"
        if facts.errno is not None:
            return f"could not connect: {os.strerror(facts.errno)}"
        return "could not connect"
    if facts.kind == "closed":
        return "the server closed the connection without a complete answer"
    return "the HTTP exchange failed"


def _request_error_texts(url: str) -> tuple[str, str]:
    """reqwest's ``error sending request for url (..)``: for the returned error, and for the log.

    The returned error keeps the reference's 12-key redaction (reference §13.2; the terminal may carry detail,
    DECISIONS §4). The log must never hold a sensitive query value, and an endpoint from a discovery document
    or an override can carry ``apikey=``/``secret=``: the logged text redacts R-2's extended key list.
    """
    shown = f"error sending request for url ({redact_sensitive_url_parts(url)})"
    logged = f"error sending request for url ({redact_sensitive_url_parts(url, extended=True)})"
    return shown, logged


def classify_transport_error(
    err: httpx.HTTPError, url: str, client: HttpClient, *, proxy_handshake: bool = False
) -> TransportError:
    """``proxy_handshake``: the failing step was the TLS handshake with an https:// proxy (see
    :func:`transport_facts`); the message then names the proxy, not the issuer, as the peer that failed."""
    facts = transport_facts(err, proxy_in_use=client.proxy_for(url) is not None, proxy_handshake=proxy_handshake)
    chain = _chain(err)
    shown, display = _request_error_texts(url)
    return TransportError(
        f"{shown}: {_cause_phrase(facts, chain, client, url, proxy_handshake=proxy_handshake)}",
        transport_kind=facts.kind,
        display=display,
        error_class=facts.error_class,
        errno=facts.errno,
        is_timeout=facts.is_timeout,
        is_connect=facts.is_connect,
        is_request=facts.is_request,
    )
