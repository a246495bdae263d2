"""The HTTP client: what ``prepare`` does ahead of a request never changes what the request does (issue 9), the
token endpoint's loggable forms are the sanitized URLs, and proxies and CA sources behave as D-9 and security
D1/D5 say (an https:// proxy verified with the CA source, a certificate refused through a proxy reported as TLS,
proxy values curl would accept, no password in an error)."""

from __future__ import annotations

import base64
import itertools
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from codex_login.diagnostics.advice import advice_for
from codex_login.errors import TransportError
from codex_login.http import MAX_PARSED_URLS, CaSource, HttpClient, HttpSettings, build_ssl_context, proxy_for_url
from codex_login.oauth import loggable_token_endpoint
from tests.support.cli import CONSOLE_SCRIPT, cli_env
from tests.support.scripted_issuer import Answer, ScriptedIssuer
from tests.support.tls_servers import TlsIssuer, TunnelProxy

SETTINGS = HttpSettings(env={}, total_timeout=5.0, connect_timeout=5.0)


@pytest.fixture
def issuer() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as scripted:
        scripted.routes["/echo"] = lambda rec: Answer.text(200, f"{rec.method} {rec.path} {rec.body.decode()}")
        yield scripted


def test_a_prepared_url_is_requested_as_given_every_time(issuer: ScriptedIssuer) -> None:
    url = f"{issuer.url}/echo?a=1&b=%2F"
    with HttpClient(SETTINGS) as client:
        client.prepare(url)
        first = client.post_form(url, "x=1")
        second = client.post_form(url, "x=2")
        third = client.get(url)
    assert [r.text() for r in (first, second, third)] == [
        "POST /echo?a=1&b=%2F x=1",
        "POST /echo?a=1&b=%2F x=2",
        "GET /echo?a=1&b=%2F ",
    ]
    assert [r.path for r in issuer.requests] == ["/echo?a=1&b=%2F"] * 3


def test_many_urls_are_all_requested_correctly_past_the_parse_cache(issuer: ScriptedIssuer) -> None:
    with HttpClient(SETTINGS) as client:
        for n in range(MAX_PARSED_URLS + 3):
            assert client.get(f"{issuer.url}/echo?n={n}").text() == f"GET /echo?n={n} "


@pytest.mark.parametrize("url", ["http://[bad/oauth/token", "http://exa mple.com/oauth/token", "http://:0/x"])
def test_prepare_never_raises_and_leaves_the_error_to_the_request(url: str) -> None:
    def failure(client: HttpClient) -> tuple[type[BaseException], str]:
        with pytest.raises((TransportError, ValueError, httpx.InvalidURL)) as caught:
            client.post_form(url, "a=b")
        return type(caught.value), str(caught.value)

    with HttpClient(SETTINGS) as fresh:
        unprepared = failure(fresh)
    with HttpClient(SETTINGS) as prepared:
        prepared.prepare(url)
        assert failure(prepared) == unprepared


def test_loggable_token_endpoint_is_the_sanitized_issuer_and_endpoint() -> None:
    assert loggable_token_endpoint("https://user:CNRYsecret@Auth.Example.COM:443/tenant") == (
        "https://auth.example.com/tenant",
        "https://auth.example.com/tenant/oauth/token",
    )
    assert loggable_token_endpoint("http://127.0.0.1:1455/") == (
        "http://127.0.0.1:1455/",
        "http://127.0.0.1:1455/oauth/token",
    )
    assert loggable_token_endpoint("https://auth.example.com/?code=CNRYcode")[0] == (
        "https://auth.example.com/?code=%3Credacted%3E"
    )


def test_an_https_url_after_a_plain_http_one_still_uses_the_ca_source(issuer: ScriptedIssuer, tmp_path: Path) -> None:
    # Plain HTTP needs no trust anchors, so the CA file is not read for it; an https URL asked for later by the
    # same client must still be verified with the CA source the environment selects, not with a transport
    # built for the first URL (httpx's default bundle).
    missing = tmp_path / "missing-ca.pem"
    settings = HttpSettings(env={"CODEX_CA_CERTIFICATE": str(missing)}, total_timeout=5.0, connect_timeout=5.0)
    with HttpClient(settings) as client:
        assert client.post_form(f"{issuer.url}/echo", "a=1").text() == "POST /echo a=1"
        with pytest.raises(TransportError) as caught:
            client.post_form(f"https://127.0.0.1:{issuer.port}/echo", "a=2")
    assert caught.value.transport_kind == "ca_config"
    assert f"Failed to read CA certificate file {missing} selected by CODEX_CA_CERTIFICATE" in str(caught.value)
    assert [r.body for r in issuer.requests] == [b"a=1"]


# --------------------------------------------------------------------------------------------- proxies and CAs


def _settings(**env: str) -> HttpSettings:
    return HttpSettings(env=env, total_timeout=5.0, connect_timeout=5.0)


def test_a_certificate_refused_through_a_proxy_is_a_tls_failure(tls_issuer: TlsIssuer) -> None:
    # The proxy tunnelled; the issuer's certificate was refused. The remedy is the CA source (security D1),
    # not the proxy settings.
    proxy = TunnelProxy()
    try:
        with HttpClient(_settings(HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}")) as client:
            with pytest.raises(TransportError) as caught:
                client.get(f"{tls_issuer.url}/oauth/token")
    finally:
        proxy.close()
    assert caught.value.transport_kind == "tls"
    assert "TLS certificate verification failed" in str(caught.value)
    assert "set CODEX_CA_CERTIFICATE" in str(caught.value)
    assert proxy.requests and proxy.requests[0].startswith(f"CONNECT 127.0.0.1:{tls_issuer.port} ".encode())


def test_an_https_proxy_is_verified_with_the_ca_source(tls_issuer: TlsIssuer) -> None:
    # D-9: CODEX_CA_CERTIFICATE is trusted for the proxy's own certificate too (httpx alone would use certifi's).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_issuer.ca.issue_cert("127.0.0.1").configure_cert(context)
    proxy = TunnelProxy(tls=context)
    try:
        env = {"CODEX_CA_CERTIFICATE": str(tls_issuer.ca_pem), "HTTPS_PROXY": f"https://127.0.0.1:{proxy.port}"}
        with HttpClient(_settings(**env)) as client:
            answer = client.get(f"{tls_issuer.url}/oauth/token")
    finally:
        proxy.close()
    assert answer.status == 405  # the issuer's own answer, through the tunnel
    assert len(proxy.requests) == 1


def test_a_proxy_without_a_scheme_is_an_http_proxy(tls_issuer: TlsIssuer) -> None:
    assert proxy_for_url("https://auth.example.com/", {"HTTPS_PROXY": "proxy.corp:3128"}) == "http://proxy.corp:3128"
    assert proxy_for_url("https://auth.example.com/", {"https_proxy": "socks5://p:1080"}) == "socks5://p:1080"
    proxy = TunnelProxy()
    try:
        env = {"CODEX_CA_CERTIFICATE": str(tls_issuer.ca_pem), "HTTPS_PROXY": f"127.0.0.1:{proxy.port}"}
        with HttpClient(_settings(**env)) as client:
            assert client.get(f"{tls_issuer.url}/oauth/token").status == 405
    finally:
        proxy.close()
    assert len(proxy.requests) == 1


def test_a_proxy_url_httpx_cannot_parse_is_a_proxy_error_that_names_no_password() -> None:
    # An unencoded '/' in the password: httpx reads "CNRYpass" as the port and says so in its message.
    with HttpClient(_settings(HTTPS_PROXY="http://corp:CNRYpass/word@proxy.corp:8080")) as client:
        with pytest.raises(TransportError) as caught:
            client.post_form("https://auth.example.com/oauth/token", "a=1")
    assert caught.value.transport_kind == "proxy"
    assert "is not a valid URL" in str(caught.value)
    assert "CNRY" not in str(caught.value) and "proxy.corp" not in str(caught.value)


def test_a_url_httpx_refuses_is_a_transport_error() -> None:
    with HttpClient(SETTINGS) as client:
        with pytest.raises(TransportError) as caught:
            client.post_form("http://example.com:abc/oauth/revoke", "token=x")
    assert caught.value.transport_kind == "protocol"
    assert str(caught.value).endswith(": the URL is not valid")


def test_the_logged_transport_text_redacts_the_extended_keys() -> None:
    # TransportError.display is what the log gets (error=...): R-2's extended keys, not only the reference's 12.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    query = "apikey=CNRYkey&password=CNRYpw&session=CNRYsess&code=CNRYcode&plain=1"
    with HttpClient(SETTINGS) as client:
        with pytest.raises(TransportError) as refused:
            client.post_form(f"http://127.0.0.1:{port}/token?{query}", "a=1")
        with pytest.raises(TransportError) as invalid:
            client.post_form(f"http://example.com:abc/token?{query}", "a=1")
    redacted = "apikey=%3Credacted%3E&password=%3Credacted%3E&session=%3Credacted%3E&code=%3Credacted%3E&plain=1"
    assert refused.value.display == f"error sending request for url (http://127.0.0.1:{port}/token?{redacted})"
    assert invalid.value.display.startswith("error sending request for url (")
    assert "CNRY" not in invalid.value.display
    # The returned error keeps the reference's own redaction (its 12 keys): the code is hidden there too.
    for caught in (refused, invalid):
        assert "CNRYcode" not in str(caught.value)


def test_loggable_token_endpoint_redacts_the_extended_keys() -> None:
    issuer, endpoint = loggable_token_endpoint("https://auth.example.com/?apikey=CNRYkey&session=CNRYsess")
    assert issuer == "https://auth.example.com/?apikey=%3Credacted%3E&session=%3Credacted%3E"
    assert "CNRY" not in endpoint


def test_a_ca_file_with_non_ascii_comments_loads(tmp_path: Path) -> None:
    # Bundles label their certificates with comments, in any language; OpenSSL skips text outside the blocks.
    ca = trustme.CA()
    path = tmp_path / "bundle.pem"
    path.write_bytes("# Zertifikat für die Prüfung — 証明書\n".encode() + ca.cert_pem.bytes())
    context = build_ssl_context(CaSource("CODEX_CA_CERTIFICATE", str(path)))
    names = [str(cert["subject"]) for cert in context.get_ca_certs()]
    assert [name for name in names if "'organizationName', 'trustme" in name] != []  # trustme's CA, among the system's


# --------------------------------------------------------------------------------------------- the total deadline


class DripServer:
    """Answers each connection's first ``fast`` requests at once (keep-alive), then sends the next answer's head a
    byte every 0.2 s: every read gets something in time, so only a total deadline ends the request."""

    def __init__(self, fast: int) -> None:
        self.fast = fast
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            for index in itertools.count():
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                if index < self.fast:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    continue
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 500:
                    if self.stop.wait(0.2):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return  # the client gave up
                return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.parametrize("fast", [0, 1], ids=["new connection", "reused connection"])
def test_the_total_deadline_ends_a_request_whose_answer_drips_in(fast: int) -> None:
    # D-8: total 60 s (1 s here). httpx's read timeout restarts with every byte; the watchdog ends the request.
    server = DripServer(fast)
    try:
        with HttpClient(HttpSettings(env={}, total_timeout=1.0, connect_timeout=1.0)) as client:
            for _ in range(fast):
                assert client.post_form(f"{server.url}/oauth/token", "a=1").status == 200
            with pytest.raises(TransportError) as caught:
                client.post_form(f"{server.url}/oauth/token", "a=2")
    finally:
        server.close()
    assert caught.value.transport_kind == "timeout" and caught.value.is_timeout
    assert str(caught.value).endswith(": timed out (connect 1 s, total 1 s)")


def test_the_total_deadline_also_ends_a_request_whose_deadline_passed_while_it_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The deadline passed during a slow DNS lookup: the watchdog dropped the request before its socket
    # existed, and the dripping answer then ran on for 25 s. The connection is now shut down once it is up.
    real = socket.getaddrinfo

    def slow_lookup(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    server = DripServer(0)
    started = time.monotonic()
    try:
        with HttpClient(HttpSettings(env={}, total_timeout=1.0, connect_timeout=5.0)) as client:
            with pytest.raises(TransportError) as caught:
                client.post_form(f"{server.url}/oauth/token", "a=2")
    finally:
        server.close()
    assert caught.value.transport_kind == "timeout"
    assert time.monotonic() - started < 10  # was ~25 s: the whole dripping head


# ------------------------------------------------------------------------------------------- proxies and CAs


@pytest.mark.parametrize("uppercase_first", [True, False])
def test_the_uppercase_proxy_variable_wins_in_any_order(uppercase_first: bool) -> None:
    # As reqwest reads them; the environment's order decided before (the last spelling won).
    def ordered(upper: tuple[str, str], lower: tuple[str, str]) -> dict[str, str]:
        return dict([upper, lower] if uppercase_first else [lower, upper])

    url = "https://auth.openai.com/oauth/token"
    env = ordered(("HTTPS_PROXY", "http://upper.corp:2222"), ("https_proxy", "http://lower.corp:1111"))
    assert proxy_for_url(url, env) == "http://upper.corp:2222"
    env = {"HTTPS_PROXY": "http://p:1", **ordered(("NO_PROXY", "openai.com"), ("no_proxy", "other.com"))}
    assert proxy_for_url(url, env) is None


# NO_PROXY by reqwest's rule (http._bypassed): IP entries match IP hosts by value, names match names by suffix.
NO_PROXY_CASES = [
    # An IP host is never matched by suffix: "0.1" and ".0.1" are names, and 127.0.0.1 is no name.
    ("https://127.0.0.1:8443/t", "0.1", False),
    ("https://127.0.0.1:8443/t", ".0.1", False),
    ("https://10.1.2.3/t", "2.3,1.2.3", False),
    ("https://127.0.0.1/t", "127.0.0.1", True),
    ("https://127.0.0.1/t", " 10.0.0.1 , 127.0.0.1 ", True),
    ("https://127.0.0.1/t", "127.0.0.0/8", True),
    ("https://127.0.0.1/t", "127.0.0.1/8", True),  # host bits set: still the block, as ipnet reads it
    ("https://128.0.0.1/t", "127.0.0.0/8", False),
    ("https://127.0.0.1/t", "127.0.0.0/255.0.0.0", False),  # a netmask is no CIDR block to reqwest
    ("https://127.0.0.1/t", "127.000.000.001", False),
    # IPv6: any spelling of the address, never the bracketed URL form, never across families.
    ("https://[::1]:8443/t", "::1", True),
    ("https://[::1]:8443/t", "0:0:0:0:0:0:0:1", True),
    ("https://[::1]:8443/t", "0000:0000:0000:0000:0000:0000:0000:0001", True),
    ("https://[fe80::a:1]/t", "FE80::A:1", True),
    ("https://[FE80::A:1]/t", "fe80::a:1", True),
    ("https://[fe80::a:1]/t", "FE80::/10", True),
    ("https://[2001:db8::1]/t", "fe80::/10", False),
    ("https://[::1]:8443/t", "[::1]", False),
    ("https://[::1]/t", "1", False),
    ("https://[::ffff:127.0.0.1]/t", "127.0.0.1", False),
    ("https://127.0.0.1/t", "::ffff:127.0.0.1", False),
    # Names: the name and its subdomains, any case; a trailing dot is part of the name.
    ("https://auth.example.com/t", "example.com", True),
    ("https://auth.example.com/t", ".example.com", True),
    ("https://example.com/t", ".example.com", True),
    ("https://notexample.com/t", "example.com", False),
    ("https://EXAMPLE.com/t", "Example.COM", True),
    ("https://example.com./t", "example.com", False),
    ("https://example.com/t", "example.com.", False),
    ("https://www.example.com./t", "example.com.", True),
    ("https://example.com/t", "..example.com", False),
    ("https://example.com:8443/t", "example.com:8443", False),  # a port makes it a name no host has
    # "*" exempts every host, IP literals included (curl's rule; reqwest issue #2579).
    ("https://example.com/t", "other.corp,*", True),
    ("https://127.0.0.1/t", "*", True),
    ("https://[::1]/t", "*", True),
]


@pytest.mark.parametrize(("url", "no_proxy", "exempt"), NO_PROXY_CASES)
def test_no_proxy_matches_as_reqwest_does(url: str, no_proxy: str, exempt: bool) -> None:
    # Was: every entry a suffix of the host, IPs too ("0.1" exempted 127.0.0.1), IPv6 compared as text
    # (0:0:0:0:0:0:0:1 did not exempt [::1]), and "host:port" entries matched on the port.
    env = {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": no_proxy}
    assert (proxy_for_url(url, env) is None) is exempt
    with HttpClient(HttpSettings(env=env)) as client:
        assert (client.route_for(url).proxy == "none") is exempt


def test_an_ip_suffix_in_no_proxy_does_not_exempt_a_loopback_issuer(tls_issuer: TlsIssuer) -> None:
    # NO_PROXY=".0.1" used to send the request to 127.0.0.1 directly; the Rust CLI sends it through the proxy.
    proxy = TunnelProxy()
    try:
        env = {"CODEX_CA_CERTIFICATE": str(tls_issuer.ca_pem), "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
               "NO_PROXY": "0.1,.0.1,localhost"}
        with HttpClient(_settings(**env)) as client:
            assert client.get(f"{tls_issuer.url}/oauth/token").status == 405
    finally:
        proxy.close()
    assert [head.split(b"\r\n")[0] for head in proxy.requests] == [f"CONNECT 127.0.0.1:{tls_issuer.port} HTTP/1.1".encode()]


def test_a_plain_http_proxy_given_as_https_is_a_proxy_tls_failure(tls_issuer: TlsIssuer) -> None:
    # The proxy speaks plain HTTP and answered our ClientHello with a 400: the handshake that failed is the
    # proxy's, not the issuer's. Was: "TLS handshake failed (trusted CAs from ...; set CODEX_CA_CERTIFICATE ...)",
    # kind tls, which sends the user to the CA settings.
    proxy = TunnelProxy()
    try:
        env = {"CODEX_CA_CERTIFICATE": str(tls_issuer.ca_pem),
               "HTTPS_PROXY": f"https://proxyuser:CNRYproxypw@127.0.0.1:{proxy.port}"}
        with HttpClient(_settings(**env)) as client:
            with pytest.raises(TransportError) as caught:
                client.get(f"{tls_issuer.url}/oauth/token")
    finally:
        proxy.close()
    error = caught.value
    assert (error.transport_kind, error.failure_class) == ("proxy", "transport_proxy")
    assert str(error) == (
        f"error sending request for url ({tls_issuer.url}/oauth/token): the TLS handshake with the proxy "
        f"https://127.0.0.1:{proxy.port} failed (an https:// proxy URL needs a proxy that speaks TLS; a proxy "
        "that speaks plain HTTP is written http://)"
    )
    assert "CNRY" not in repr(error) + error.display and "proxyuser" not in str(error)
    assert proxy.garbled == 1 and proxy.requests == []


def test_the_cli_reports_a_plain_http_proxy_given_as_https_as_a_proxy_failure(
    tls_issuer: TlsIssuer, tmp_path: Path
) -> None:
    # What the user sees: the terminal's error and hint, and the log's kind and failure class.
    proxy = TunnelProxy()
    env = cli_env(tmp_path / "home", {"CODEX_CA_CERTIFICATE": str(tls_issuer.ca_pem), "NO_PROXY": "",
                                      "HTTPS_PROXY": f"https://proxyuser:CNRYproxypw@127.0.0.1:{proxy.port}"})
    try:
        run = subprocess.run(
            [str(CONSOLE_SCRIPT), "--device-auth", "--port", "0", "--no-browser", "--issuer", tls_issuer.url],
            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        )
    finally:
        proxy.close()
    assert run.returncode == 1
    stderr = run.stderr.splitlines()
    assert stderr[0].startswith("Error logging in with device code: error sending request for url (")
    assert stderr[0].endswith(
        f": the TLS handshake with the proxy https://127.0.0.1:{proxy.port} failed (an https:// proxy URL needs a "
        "proxy that speaks TLS; a proxy that speaks plain HTTP is written http://)"
    )
    assert stderr[1] == f"Try next: {advice_for('transport_proxy').hint}"
    assert "CODEX_CA_CERTIFICATE" not in run.stderr
    log = (tmp_path / "home" / "log" / "codex-login.log").read_text()
    assert "device code transport failure kind=proxy error_class=ConnectError" in log
    assert "failure=transport_proxy" in log
    assert "CNRY" not in run.stderr + log and "proxyuser" not in run.stderr + log


def test_an_https_proxy_whose_certificate_is_refused_is_named(tls_issuer: TlsIssuer) -> None:
    # The proxy's own certificate (from a CA nobody trusts): still a TLS failure (the remedy is the CA source,
    # D-9), but the message says whose certificate it was. Was: the issuer's words, no proxy named.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    proxy = TunnelProxy(tls=context)
    try:
        env = {"CODEX_CA_CERTIFICATE": str(tls_issuer.ca_pem), "HTTPS_PROXY": f"https://127.0.0.1:{proxy.port}"}
        with HttpClient(_settings(**env)) as client:
            with pytest.raises(TransportError) as caught:
                client.get(f"{tls_issuer.url}/oauth/token")
    finally:
        proxy.close()
    assert caught.value.transport_kind == "tls"
    assert f"TLS certificate verification of the proxy https://127.0.0.1:{proxy.port} failed: " in str(caught.value)
    assert "set CODEX_CA_CERTIFICATE" in str(caught.value)
    assert proxy.requests == []


def test_a_ca_file_without_a_certificate_is_a_load_failure_not_a_read_failure(tmp_path: Path) -> None:
    # ssl.SSLError is an OSError: the "Failed to read" branch caught it and printed OpenSSL's internals.
    path = tmp_path / "garbage.pem"
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    with pytest.raises(TransportError) as caught:
        build_ssl_context(CaSource("CODEX_CA_CERTIFICATE", str(path)))
    assert str(caught.value) == (
        f"Failed to load CA certificate file {path} selected by CODEX_CA_CERTIFICATE: "
        "it does not contain a PEM certificate"
    )


@pytest.mark.parametrize("form", ["utf8-bom", "trusted-certificate"])
def test_ca_files_openssl_reads_are_trusted(tls_issuer: TlsIssuer, tmp_path: Path, form: str) -> None:
    # A byte order mark hid the BEGIN line; OpenSSL's TRUSTED CERTIFICATE blocks (NixOS bundles, `openssl x509
    # -trustout`: the certificate followed by its trust settings) were not read as certificates.
    pem = tls_issuer.ca_pem.read_bytes()
    if form == "utf8-bom":
        data = b"\xef\xbb\xbf" + pem
    else:
        der = ssl.PEM_cert_to_DER_cert(pem.decode())
        server_auth_trust = bytes.fromhex("300c300a06082b06010505070301")  # X509_CERT_AUX: trust serverAuth
        body = base64.encodebytes(der + server_auth_trust).decode()
        data = f"-----BEGIN TRUSTED CERTIFICATE-----\n{body}-----END TRUSTED CERTIFICATE-----\n".encode()
    path = tmp_path / f"{form}.pem"
    path.write_bytes(data)
    with HttpClient(_settings(CODEX_CA_CERTIFICATE=str(path))) as client:
        assert client.get(f"{tls_issuer.url}/oauth/token").status == 405
