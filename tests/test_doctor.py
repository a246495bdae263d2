"""``codex-login doctor`` against real servers on loopback: a healthy issuer, a closed port, an untrusted and
then trusted TLS certificate, dead and refusing proxies, a hanging issuer, held ports, files with loose
modes, keyring backends that fail or hang, and the terminal conventions of its output."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_login import doctor as doctor_module
from codex_login.config import load_config
from codex_login.diagnostics.advice import advice_for
from codex_login.doctor import (
    STATUSES,
    Check,
    DoctorOptions,
    DoctorReport,
    Status,
    _decode_proc_address,
    find_port_holders,
    render_report,
    run_doctor,
)
from codex_login.http import HttpClient, HttpSettings
from tests.support.loopback import LoopbackServer
from tests.support.scripted_issuer import Answer, ScriptedIssuer
from tests.support.tls_servers import TlsIssuer, TunnelProxy
from tests.test_timeline import CLI, HeldPort, closed_port, run_cli

ISSUER_IDS = ("issuer_route", "issuer_dns", "issuer_tcp", "issuer_tls", "issuer_authorize", "issuer_token", "clock")
SKEWED_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"


def options(**overrides: Any) -> DoctorOptions:
    """Ports nobody uses, so tests neither depend on nor disturb 1455/1457."""
    return DoctorOptions(ports=overrides.pop("ports", (closed_port(), closed_port())), **overrides)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "CODEX_CA_CERTIFICATE")}
    env.update(extra)
    return env


def doctor(codex_home: Path, issuer: str, env: dict[str, str] | None = None, **opts: Any) -> DoctorReport:
    config = load_config([], issuer=issuer, codex_home=codex_home, env={})
    return run_doctor(config, env=env if env is not None else base_env(), options=options(**opts))


def statuses(report: DoctorReport, ids: tuple[str, ...] = ISSUER_IDS) -> dict[str, str]:
    return {check_id: report.by_id(check_id).status for check_id in ids}


@pytest.fixture
def healthy() -> Iterator[ScriptedIssuer]:
    with ScriptedIssuer() as issuer:
        issuer.routes["/oauth/authorize"] = Answer.text(400, "missing parameters")
        issuer.token = Answer.text(405, "method not allowed")
        yield issuer


# --------------------------------------------------------------------------------------------- (a) healthy


def test_healthy_issuer(codex_home: Path, healthy: ScriptedIssuer) -> None:
    report = doctor(codex_home, healthy.url)
    assert statuses(report) == {
        "issuer_route": "ok", "issuer_dns": "ok", "issuer_tcp": "ok", "issuer_tls": "skip",
        "issuer_authorize": "ok", "issuer_token": "ok", "clock": "ok",
    }
    assert "answered 400 Bad Request" in report.by_id("issuer_authorize").detail
    assert "answered 405 Method Not Allowed" in report.by_id("issuer_token").detail
    assert "proxy none (direct connection; NO_PROXY exempts this host)" not in report.by_id("issuer_route").detail
    assert [r.path for r in healthy.requests] == ["/oauth/authorize", "/oauth/token"]
    assert all(r.method == "GET" for r in healthy.requests)
    for check_id in ("config", "localhost", "loopback", "codex_home", "log_dir", "log_file", "auth_json"):
        assert report.by_id(check_id).status == "ok", report.by_id(check_id)
    assert report.ok
    assert all(c.status in STATUSES for c in report.checks)
    assert all(c.fix == "" for c in report.checks if c.status == "ok")


def test_healthy_issuer_through_the_console_script(codex_home: Path, healthy: ScriptedIssuer) -> None:
    as_json = run_cli("doctor", "--json", "--issuer", healthy.url)
    document = json.loads(as_json.stdout)
    assert set(document) == {"checks", "ok"}
    assert failing(document) <= FIXED_PORTS, document
    assert document["ok"] is not failing(document)
    assert as_json.returncode == (0 if document["ok"] else 1)
    assert [c["id"] for c in document["checks"]] == [
        "config", "port_1455", "port_1457", "localhost", "loopback", "browser", *ISSUER_IDS,
        "codex_home", "log_dir", "log_file", "auth_json", "keyring",
    ]
    for check in document["checks"]:
        assert set(check) == {"id", "title", "status", "detail", "fix"}
        assert check["status"] in STATUSES
    assert as_json.stderr == ""  # not a terminal: no spinner
    as_text = run_cli("doctor", "--issuer", healthy.url)
    assert as_text.returncode == as_json.returncode
    assert as_text.stdout.startswith("codex-login doctor: sign-in checks\n")
    assert "\x1b" not in as_text.stdout  # not a terminal: no colour
    for check in document["checks"]:
        assert check["title"] in as_text.stdout
    assert ("Sign-in should work." in as_text.stdout) is document["ok"]


class CannedIssuer(LoopbackServer):
    """A raw HTTP server with fixed answers, for headers ``http.server`` will not let us choose (its own Date)."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        super().__init__(backlog=8)

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                head = conn.recv(65536)
                path = head.split(b" ")[1].decode().split("?")[0]
                conn.sendall(self.answers.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
            except (OSError, IndexError):
                return


def canned(status: str, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers, "Content-Length: 0", "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


def test_clock_skew_and_blocked_token_endpoint_warn(codex_home: Path) -> None:
    issuer = CannedIssuer({
        "/oauth/authorize": canned("400 Bad Request", f"Date: {SKEWED_DATE}"),
        "/oauth/token": canned("403 Forbidden", f"Date: {SKEWED_DATE}", "cf-mitigated: challenge",
                               "cf-ray: 8f3b2c1d0e9a7b6c-AMS"),
    })
    try:
        report = doctor(codex_home, issuer.url)
    finally:
        issuer.close()
    clock = report.by_id("clock")
    assert clock.status == "warn" and "s ahead of the issuer's" in clock.detail
    assert "timedatectl set-ntp true" in clock.fix
    token = report.by_id("issuer_token")
    assert token.status == "warn" and "Cloudflare challenge" in token.detail
    assert "request id 8f3b2c1d0e9a7b6c-AMS" in token.detail
    assert token.fix == advice_for("token_forbidden").hint
    assert report.ok  # warnings only


@pytest.mark.parametrize("date", ["01 Jan 99999999999 00:00:00", "01 Jan 10000 00:00:00", "yesterday"])
def test_an_unreadable_date_header_skips_the_clock_check(codex_home: Path, date: str) -> None:
    answer = canned("404 Not Found", f"Date: {date}")
    issuer = CannedIssuer({"/oauth/authorize": answer, "/oauth/token": answer})
    try:
        report = doctor(codex_home, issuer.url)  # the first date's OverflowError escaped the doctor
    finally:
        issuer.close()
    clock = report.by_id("clock")
    assert (clock.status, clock.detail) == ("skip", "the issuer's Date header could not be read")
    assert report.by_id("issuer_token").status == "ok"


def test_server_errors_warn(codex_home: Path) -> None:
    with ScriptedIssuer() as issuer:
        issuer.routes["/oauth/authorize"] = Answer.text(502, "bad gateway")
        report = doctor(codex_home, issuer.url)
    check = report.by_id("issuer_authorize")
    assert check.status == "warn" and "502 Bad Gateway" in check.detail
    assert check.fix == advice_for("token_server_error").hint


# --------------------------------------------------------------------------------------------- (b) closed port


def test_closed_port(codex_home: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    report = doctor(codex_home, url)
    tcp = report.by_id("issuer_tcp")
    assert tcp.status == "fail" and "connection refused" in tcp.detail
    assert tcp.fix == advice_for("transport_connect").hint
    assert statuses(report) == {
        "issuer_route": "ok", "issuer_dns": "ok", "issuer_tcp": "fail", "issuer_tls": "skip",
        "issuer_authorize": "skip", "issuer_token": "skip", "clock": "skip",
    }
    assert not report.ok
    cli = run_cli("doctor", "--issuer", url)
    assert cli.returncode == 1
    assert "fail  TCP connection" in cli.stdout and "Sign-in will not work as configured." in cli.stdout


def test_hanging_issuer_times_out_quickly(codex_home: Path) -> None:
    with ScriptedIssuer() as issuer:
        issuer.routes["/oauth/authorize"] = Answer(hang=5.0)
        issuer.token = Answer(hang=5.0)
        began = time.monotonic()
        report = doctor(codex_home, issuer.url, step_timeout=1.0)
        took = time.monotonic() - began
    assert took < 4.5
    for check_id in ("issuer_authorize", "issuer_token"):
        check = report.by_id(check_id)
        assert check.status == "fail" and "timed out" in check.detail
        assert check.fix == advice_for("transport_timeout").hint


def test_budget_and_offline_mode_skip_network_checks(codex_home: Path, healthy: ScriptedIssuer) -> None:
    spent = doctor(codex_home, healthy.url, budget=0.0)
    for check_id in ("issuer_dns", "issuer_tcp", "issuer_tls", "issuer_authorize", "issuer_token"):
        assert spent.by_id(check_id).status == "skip"
        assert "time budget (0 s) ran out" in spent.by_id(check_id).detail
    offline = doctor(codex_home, healthy.url, network=False)
    assert {offline.by_id(i).status for i in ISSUER_IDS[1:]} == {"skip"}
    assert healthy.requests == []


# --------------------------------------------------------------------------------------------- (c) TLS


def test_untrusted_certificate_then_trusted_with_codex_ca_certificate(
    codex_home: Path, tls_issuer: TlsIssuer
) -> None:
    untrusted = doctor(codex_home, tls_issuer.url)
    tls = untrusted.by_id("issuer_tls")
    assert tls.status == "fail"
    assert "certificate verification failed" in tls.detail and "trusted CAs from system" in tls.detail
    assert tls.fix == advice_for("transport_tls").hint
    assert "CODEX_CA_CERTIFICATE" in tls.fix
    authorize = untrusted.by_id("issuer_authorize")
    assert authorize.status == "fail" and authorize.fix == advice_for("transport_tls").hint
    assert not untrusted.ok
    assert tls_issuer.paths == []  # no request got through an unverified connection

    trusted = doctor(codex_home, tls_issuer.url, env=base_env(CODEX_CA_CERTIFICATE=str(tls_issuer.ca_pem)))
    assert statuses(trusted)["issuer_tls"] == "ok"
    tls = trusted.by_id("issuer_tls")
    assert f"certificate verified with CODEX_CA_CERTIFICATE ({tls_issuer.ca_pem})" in tls.detail
    assert "TLSv1" in tls.detail and "O=trustme" in tls.detail
    assert f"CA source CODEX_CA_CERTIFICATE ({tls_issuer.ca_pem})" in trusted.by_id("issuer_route").detail
    assert trusted.by_id("issuer_authorize").status == "ok"
    assert trusted.by_id("issuer_token").status == "ok"
    assert tls_issuer.paths == ["/oauth/authorize", "/oauth/token"]


def test_ssl_cert_file_is_the_second_ca_source(codex_home: Path, tls_issuer: TlsIssuer) -> None:
    report = doctor(codex_home, tls_issuer.url, env=base_env(SSL_CERT_FILE=str(tls_issuer.ca_pem)))
    assert report.by_id("issuer_tls").status == "ok"
    assert "verified with SSL_CERT_FILE" in report.by_id("issuer_tls").detail


def test_unusable_ca_file(codex_home: Path, tls_issuer: TlsIssuer, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    report = doctor(codex_home, tls_issuer.url, env=base_env(CODEX_CA_CERTIFICATE=str(missing)))
    route = report.by_id("issuer_route")
    assert route.status == "fail" and str(missing) in route.detail and "CODEX_CA_CERTIFICATE" in route.detail
    assert route.fix == advice_for("transport_ca_config").hint
    assert report.by_id("issuer_tls").status == "skip"


# --------------------------------------------------------------------------------------------- (d) proxies


def proxy_env(proxy: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in base_env(**extra).items() if k.lower() != "no_proxy"}
    env["HTTPS_PROXY"] = proxy
    return env


def test_dead_proxy(codex_home: Path, tls_issuer: TlsIssuer) -> None:
    port = closed_port()
    env = proxy_env(f"http://proxyuser:CNRYproxypw@127.0.0.1:{port}", CODEX_CA_CERTIFICATE=str(tls_issuer.ca_pem))
    report = doctor(codex_home, tls_issuer.url, env=env)
    assert f"proxy http://127.0.0.1:{port}" in report.by_id("issuer_route").detail
    tcp = report.by_id("issuer_tcp")
    assert tcp.status == "fail"
    assert f"could not connect to the proxy http://127.0.0.1:{port}: connection refused" in tcp.detail
    assert tcp.fix == advice_for("transport_proxy").hint
    assert statuses(report)["issuer_tls"] == "skip" and statuses(report)["issuer_authorize"] == "skip"
    rendered = json.dumps(report.to_json()) + render_report(report)
    assert "CNRYproxypw" not in rendered and "proxyuser" not in rendered


def test_proxy_that_refuses_the_tunnel(codex_home: Path, tls_issuer: TlsIssuer) -> None:
    proxy = TunnelProxy("407 Proxy Authentication Required")
    try:
        report = doctor(codex_home, tls_issuer.url, env=proxy_env(f"http://127.0.0.1:{proxy.port}",
                                                                  CODEX_CA_CERTIFICATE=str(tls_issuer.ca_pem)))
    finally:
        proxy.close()
    tls = report.by_id("issuer_tls")
    assert tls.status == "fail" and "the proxy refused the tunnel: 407 Proxy Authentication Required" in tls.detail
    assert tls.fix == advice_for("transport_proxy").hint
    assert proxy.requests[0].startswith(f"CONNECT 127.0.0.1:{tls_issuer.port} HTTP/1.1".encode())


def test_working_proxy_tunnels_tls_and_http(codex_home: Path, tls_issuer: TlsIssuer) -> None:
    proxy = TunnelProxy()
    try:
        env = proxy_env(f"http://tunnel:CNRYtunnelpw@127.0.0.1:{proxy.port}",
                        CODEX_CA_CERTIFICATE=str(tls_issuer.ca_pem))
        report = doctor(codex_home, tls_issuer.url, env=env)
    finally:
        proxy.close()
    assert statuses(report) == {
        "issuer_route": "ok", "issuer_dns": "ok", "issuer_tcp": "ok", "issuer_tls": "ok",
        "issuer_authorize": "ok", "issuer_token": "ok", "clock": "ok",
    }
    assert f"connected to the proxy http://127.0.0.1:{proxy.port}" in report.by_id("issuer_tcp").detail
    assert b"Proxy-Authorization: Basic " in proxy.requests[0]  # the tunnel carried the proxy's credentials
    assert len(proxy.requests) == 3  # our TLS check, then httpx for both endpoints
    assert "CNRYtunnelpw" not in json.dumps(report.to_json())


def test_plain_http_proxy_given_as_https(codex_home: Path, tls_issuer: TlsIssuer) -> None:
    # The TLS check shakes hands with an https:// proxy itself. Was: skipped, and the HTTP checks blamed the
    # issuer's TLS ("TLS handshake failed (trusted CAs from ...)") with the CA source's fix.
    proxy = TunnelProxy()
    try:
        env = proxy_env(f"https://proxyuser:CNRYproxypw@127.0.0.1:{proxy.port}",
                        CODEX_CA_CERTIFICATE=str(tls_issuer.ca_pem))
        report = doctor(codex_home, tls_issuer.url, env=env)
    finally:
        proxy.close()
    tls = report.by_id("issuer_tls")
    assert tls.status == "fail"
    assert tls.detail.startswith(f"the TLS handshake with the proxy https://127.0.0.1:{proxy.port} failed: ")
    assert "a proxy that speaks plain HTTP is written http://" in tls.detail
    assert tls.fix == advice_for("transport_proxy").hint
    assert statuses(report)["issuer_authorize"] == "skip" and statuses(report)["issuer_token"] == "skip"
    assert proxy.garbled == 1
    rendered = json.dumps(report.to_json()) + render_report(report)
    assert "CNRYproxypw" not in rendered and "proxyuser" not in rendered and "trusted CAs" not in rendered


def test_working_https_proxy(codex_home: Path, tls_issuer: TlsIssuer) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_issuer.ca.issue_cert("127.0.0.1").configure_cert(context)
    proxy = TunnelProxy(tls=context)
    try:
        env = proxy_env(f"https://127.0.0.1:{proxy.port}", CODEX_CA_CERTIFICATE=str(tls_issuer.ca_pem))
        report = doctor(codex_home, tls_issuer.url, env=env)
    finally:
        proxy.close()
    tls = report.by_id("issuer_tls")
    assert tls.status == "skip"
    assert tls.detail.startswith(f"with the proxy https://127.0.0.1:{proxy.port}: TLS")
    assert "certificate verified with CODEX_CA_CERTIFICATE" in tls.detail
    assert statuses(report)["issuer_authorize"] == "ok" and statuses(report)["issuer_token"] == "ok"
    assert len(proxy.requests) == 2  # httpx for both endpoints; the TLS check sent no CONNECT


@pytest.mark.parametrize(("no_proxy", "exempt"), [("0.1,.0.1", False), ("127.0.0.0/8", True),
                                                   ("0:0:0:0:0:0:0:1,127.0.0.1", True), ("[127.0.0.1]", False)])
def test_the_route_check_reports_the_clients_no_proxy_decision(
    codex_home: Path, no_proxy: str, exempt: bool
) -> None:
    # The doctor and the client share proxy_for_url. Was: "0.1" exempted 127.0.0.1 in both.
    issuer = f"https://127.0.0.1:{closed_port()}"
    port = closed_port()
    env = {**proxy_env(f"http://127.0.0.1:{port}"), "NO_PROXY": no_proxy}
    route = doctor(codex_home, issuer, env=env, network=False).by_id("issuer_route")
    shown = "proxy none (direct connection; NO_PROXY exempts this host)" if exempt else f"proxy http://127.0.0.1:{port}"
    assert route.detail.split("; NO_PROXY: ")[0].endswith(shown)
    with HttpClient(HttpSettings(env=env)) as client:
        assert client.route_for(f"{issuer}/oauth/token").proxy == ("none" if exempt else f"http://127.0.0.1:{port}")


def test_the_route_check_counts_no_proxy_entries_that_exempt_nothing(codex_home: Path) -> None:
    # Read as reqwest reads them, "[::1]" and "host:port" are names no host has; the doctor says how many and why,
    # never which (the entries are the user's host names).
    env = {**proxy_env("http://127.0.0.1:9"),
           "NO_PROXY": "[::1], gitlab.corp:8443,127.0.0.1:80, fe80::1%eth0, ::1, localhost, 10.0.0.0/8, *.corp"}
    route = doctor(codex_home, "https://auth.example.com", env=env, network=False).by_id("issuer_route")
    assert route.status == "ok"
    assert route.detail.endswith(
        "; NO_PROXY: 4 entries exempt no host: 1 in brackets (write an IPv6 address without them, as ::1), "
        "2 with a port (entries take none: the host alone exempts every port), 1 neither an IP address, a CIDR "
        "block nor a host name"
    )
    assert "gitlab" not in route.detail
    env["NO_PROXY"] = "::1,localhost,.corp"
    route = doctor(codex_home, "https://auth.example.com", env=env, network=False).by_id("issuer_route")
    assert "NO_PROXY" not in route.detail


def test_unsupported_proxy_scheme(codex_home: Path, healthy: ScriptedIssuer) -> None:
    env = {k: v for k, v in base_env().items() if k.lower() != "no_proxy"}
    env["HTTP_PROXY"] = "socks://127.0.0.1:1080"
    report = doctor(codex_home, healthy.url, env=env)
    route = report.by_id("issuer_route")
    assert route.status == "fail" and "socks://" in route.detail and "socks5://" in route.fix


@pytest.mark.parametrize(
    ("variable", "proxy", "problem"),
    [
        ("HTTPS_PROXY", "http://[proxy.corp:3128", "a [ or ] not around an IPv6 address"),
        ("https_proxy", "http://proxyuser:CNRYproxypw@proxy.corp:99999", "its port is not a number from 0 to 65535"),
        ("ALL_PROXY", "http://proxy.corp:port", "its port is not a number from 0 to 65535"),
        ("HTTPS_PROXY", "http://proxyuser:CNRY[pw@proxy.corp:3128", "a [ or ] not around an IPv6 address"),
        ("HTTPS_PROXY", "http://proxyuser:CNRYproxypw@:3128", "it names no host"),
    ],
)
def test_malformed_proxy_fails_the_route_without_quoting_it(
    codex_home: Path, variable: str, proxy: str, problem: str
) -> None:
    env = {k: v for k, v in base_env().items() if not k.lower().endswith("_proxy")}
    env[variable] = proxy
    report = doctor(codex_home, "https://127.0.0.1:9", env=env)  # urlsplit's ValueError escaped the doctor
    route = report.by_id("issuer_route")
    assert route.status == "fail"
    assert f"the proxy in {variable} is not a valid URL ({problem}" in route.detail
    assert route.fix == advice_for("transport_proxy").hint
    assert statuses(report) == {
        "issuer_route": "fail", "issuer_dns": "ok", "issuer_tcp": "skip", "issuer_tls": "skip",
        "issuer_authorize": "skip", "issuer_token": "skip", "clock": "skip",
    }
    assert report.by_id("issuer_tcp").detail == "skipped: the proxy is not a valid URL"
    rendered = json.dumps(report.to_json()) + render_report(report)
    assert "CNRY" not in rendered and "proxyuser" not in rendered


# --------------------------------------------------------------------------------------------- callback side


def test_held_ports_name_the_process(codex_home: Path) -> None:
    held = HeldPort()
    try:
        holders = find_port_holders(held.port)
        assert {h.address for h in holders} == {"127.0.0.1", "::1"}
        assert {h.pid for h in holders} == {os.getpid()}
        comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
        assert {h.command for h in holders} == {comm}
        free = closed_port()
        report = doctor(codex_home, "http://127.0.0.1:9", ports=(held.port, free), network=False)
        busy = report.by_id(f"port_{held.port}")
        assert busy.status == "warn"
        assert f"in use on 127.0.0.1 and ::1 by pid {os.getpid()} ({comm}); " in busy.detail
        assert f"sign-in falls back to port {free}" in busy.detail
        fallback_busy = doctor(codex_home, "http://127.0.0.1:9", ports=(free, held.port), network=False)
        assert fallback_busy.by_id(f"port_{held.port}").status == "warn"
        assert f"only needed when port {free} is busy" in fallback_busy.by_id(f"port_{held.port}").detail
        assert busy.fix.startswith(f"Close pid {os.getpid()} ({comm})") and "--device-auth" in busy.fix
        assert report.by_id(f"port_{free}").status == "ok"
        other = HeldPort()
        try:
            both = doctor(codex_home, "http://127.0.0.1:9", ports=(held.port, other.port), network=False)
        finally:
            other.close()
        assert both.by_id(f"port_{held.port}").status == "fail"
        assert both.by_id(f"port_{other.port}").status == "fail"
        assert not both.ok
    finally:
        held.close()


def test_proc_addresses_decode() -> None:
    assert _decode_proc_address("0100007F") == "127.0.0.1"
    assert _decode_proc_address("00000000000000000000000001000000") == "::1"
    assert _decode_proc_address("00000000") == "0.0.0.0"


def test_localhost_and_loopback_requests(codex_home: Path) -> None:
    report = doctor(codex_home, "http://127.0.0.1:9", network=False)
    assert report.by_id("localhost").status == "ok"
    assert report.by_id("localhost").detail.startswith("localhost resolves to ")
    loopback = report.by_id("loopback")
    assert loopback.status == "ok"
    assert "answered through localhost (" in loopback.detail and "127.0.0.1" in loopback.detail


def test_browser_over_ssh_suggests_device_auth(codex_home: Path) -> None:
    env = {k: v for k, v in base_env().items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}
    env["SSH_CONNECTION"] = "192.0.2.1 50000 192.0.2.2 22"
    report = doctor(codex_home, "http://127.0.0.1:9", env=env, network=False)
    browser = report.by_id("browser")
    assert browser.status == "warn"
    assert "SSH session" in browser.detail and "no way to open a browser here" in browser.detail
    assert "codex-login --device-auth" in browser.fix and "ssh -L 1455:localhost:1455" in browser.fix
    with_browser = doctor(codex_home, "http://127.0.0.1:9", env=base_env(BROWSER="true"), network=False)
    assert "opens with the BROWSER command (true)" in with_browser.by_id("browser").detail


# --------------------------------------------------------------------------------------------- files


def test_loose_modes_and_links_are_reported(codex_home: Path, tmp_path: Path) -> None:
    codex_home.chmod(0o755)
    auth = codex_home / "auth.json"
    auth.write_text("{}")
    auth.chmod(0o644)
    log_dir = codex_home / "log"
    log_dir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("x")
    (log_dir / "codex-login.log").symlink_to(victim)
    report = doctor(codex_home, "http://127.0.0.1:9", network=False)
    home = report.by_id("codex_home")
    assert home.status == "warn" and "mode 0755" in home.detail
    assert home.fix == f"Run `chmod 700 {codex_home}` (and make sure you own it)."
    auth_check = report.by_id("auth_json")
    assert auth_check.status == "warn" and "mode 0644" in auth_check.detail and f"chmod 600 {auth}" in auth_check.fix
    log_file = report.by_id("log_file")
    assert log_file.status == "warn" and "symbolic link" in log_file.detail
    assert report.by_id("log_dir").status == "ok"

    auth.unlink()
    auth.symlink_to(victim)
    assert report_for(codex_home).by_id("auth_json").status == "fail"  # the file store will not save through it
    auth.unlink()
    auth.mkdir()
    directory = report_for(codex_home).by_id("auth_json")
    assert directory.status == "fail" and "not a regular file" in directory.detail


def report_for(codex_home: Path) -> DoctorReport:
    return doctor(codex_home, "http://127.0.0.1:9", network=False)


def test_an_unusable_log_dir_or_log_file_only_warns(codex_home: Path, tmp_path: Path) -> None:
    # Sign-in prints a warning and carries on without its log (docs/diagnostics.md): the doctor said "fail".
    carries_on = "sign-in prints a warning and carries on without the log file"
    (codex_home / "logfile").write_text("x")
    config = load_config([f"log_dir={codex_home / 'logfile'}"], issuer="http://127.0.0.1:9", codex_home=codex_home,
                         env={})
    report = run_doctor(config, env=base_env(), options=options(network=False))
    log_dir, log_file = report.by_id("log_dir"), report.by_id("log_file")
    assert log_dir.status == "warn" and "is not a directory" in log_dir.detail and carries_on in log_dir.detail
    assert log_file.status == "warn" and carries_on in log_file.detail
    assert report.ok and "Sign-in should work." in render_report(report)

    (codex_home / "log").mkdir(mode=0o700)
    (codex_home / "log" / "codex-login.log").mkdir()
    log_file = report_for(codex_home).by_id("log_file")
    assert log_file.status == "warn" and "is not a regular file" in log_file.detail
    (codex_home / "log" / "codex-login.log").rmdir()
    (codex_home / "log").rmdir()
    (codex_home / "log").symlink_to(tmp_path / "gone")
    log_dir = report_for(codex_home).by_id("log_dir")
    assert log_dir.status == "warn" and "broken symbolic link" in log_dir.detail


@pytest.mark.parametrize(
    ("store", "keyring_status", "verdict"),
    [
        ("file", "skip", "fail"),
        ("auto", "warn", "fail"),  # no working keyring: auto saves to auth.json
        ("auto", "ok", "warn"),
        ("keyring", "ok", "warn"),
        ("ephemeral", "skip", "warn"),
    ],
)
def test_a_symlinked_auth_json_fails_when_sign_in_would_write_it(
    codex_home: Path, monkeypatch: pytest.MonkeyPatch, store: str, keyring_status: Status, verdict: Status
) -> None:
    victim = codex_home.parent / "victim.json"
    victim.write_text("{}")
    (codex_home / "auth.json").symlink_to(victim)
    monkeypatch.setattr(doctor_module, "_keyring_check",
                        lambda _config, _timeout: Check("keyring", "Keyring", keyring_status, "stub"))
    config = load_config([f"cli_auth_credentials_store={store}"], issuer="http://127.0.0.1:9",
                         codex_home=codex_home, env={})
    report = run_doctor(config, env=base_env(), options=options(network=False))
    check = report.by_id("auth_json")
    assert check.status == verdict and "is a symbolic link" in check.detail
    assert ("so it will fail" in check.detail) is (verdict == "fail")
    assert report.ok is (verdict != "fail")
    assert [c.id for c in report.checks][-2:] == ["auth_json", "keyring"]


# --------------------------------------------------------------------------------------------- keyring

HANGING_BACKEND = '''
import time
from keyring.backend import KeyringBackend


class HangingKeyring(KeyringBackend):
    priority = 1

    def get_password(self, service, username):
        time.sleep(60)

    def set_password(self, service, username, password):
        time.sleep(60)

    def delete_password(self, service, username):
        time.sleep(60)
'''


def failing(document: dict[str, Any]) -> set[str]:
    return {c["id"] for c in document["checks"] if c["status"] == "fail"}


# The console script checks the real ports 1455 and 1457; on a shared machine another program may hold both,
# which fails those two checks (and only those) without saying anything about what a test is after.
FIXED_PORTS = {"port_1455", "port_1457"}


def keyring_check(healthy: ScriptedIssuer, store: str, **env: str) -> tuple[dict[str, str], float]:
    began = time.monotonic()
    result = run_cli("doctor", "--json", "--issuer", healthy.url, "-c", f"cli_auth_credentials_store={store}",
                     env=env)
    took = time.monotonic() - began
    document = json.loads(result.stdout)
    keyring = {c["id"]: c for c in document["checks"]}["keyring"]
    assert result.returncode == (1 if failing(document) else 0)
    assert failing(document) - FIXED_PORTS <= {"keyring"}
    return keyring, took


def test_keyring_backends(codex_home: Path, healthy: ScriptedIssuer, tmp_path: Path) -> None:
    (tmp_path / "hanging_keyring.py").write_text(HANGING_BACKEND)
    missing, _ = keyring_check(healthy, "keyring")  # this machine has no keyring backend
    assert missing["status"] == "fail" and "no usable keyring backend" in missing["detail"]
    auto, _ = keyring_check(healthy, "auto")
    assert auto["status"] == "warn" and "falls back to auth.json" in auto["detail"]
    unused, _ = keyring_check(healthy, "file")
    assert unused["status"] == "skip" and 'not needed with cli_auth_credentials_store = "file"' in unused["detail"]
    null, _ = keyring_check(healthy, "keyring", PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    assert null["status"] == "ok" and "keyring.backends.null.Keyring backend answered" in null["detail"]
    hanging, took = keyring_check(healthy, "keyring", PYTHON_KEYRING_BACKEND="hanging_keyring.HangingKeyring",
                                  PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    assert hanging["status"] == "fail" and "did not answer within 3 s" in hanging["detail"]
    assert took < 15  # the doctor never waits for a hanging keyring


# --------------------------------------------------------------------------------------------- terminal


def read_pty(master: int, process: subprocess.Popen[bytes], deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            data += chunk
        elif process.poll() is not None:
            break
    return data


def run_with_pty(args: list[str], *, pty_for: str, env: dict[str, str]) -> tuple[bytes, bytes, int]:
    """Run the console script with stdout or stderr on a terminal; (stdout, stderr, exit code)."""
    master, slave = pty.openpty()
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, pty_for: slave}
    process = subprocess.Popen([str(CLI), *args], stdin=subprocess.DEVNULL, env={**os.environ, **env},
                               stdout=streams["stdout"], stderr=streams["stderr"])
    os.close(slave)
    try:
        on_terminal = read_pty(master, process, time.monotonic() + 60)
        other = process.communicate(timeout=60)
    finally:
        os.close(master)
    piped = other[1] if pty_for == "stdout" else other[0]
    return (on_terminal, piped, process.wait(5)) if pty_for == "stdout" else (piped, on_terminal, process.wait(5))


def test_spinner_only_on_a_terminal_and_colour_only_without_no_color(codex_home: Path) -> None:
    with ScriptedIssuer() as issuer:
        issuer.routes["/oauth/authorize"] = Answer(400, b"", hang=0.6)  # long enough for the spinner to draw
        args = ["doctor", "--issuer", issuer.url]
        terminal = {"TERM": "xterm", "NO_COLOR": ""}
        stdout, stderr, code = run_with_pty(args, pty_for="stderr", env=terminal)
        assert code in (0, 1) and b"Traceback" not in stderr
        assert b"checking the authorize endpoint..." in stderr and b"\r" in stderr
        assert stderr.endswith(b"\r\x1b[K")  # the spinner line is erased before the report
        assert b"\x1b[" not in stdout and b"checking" not in stdout
        _, no_color, _ = run_with_pty(args, pty_for="stderr", env={**terminal, "NO_COLOR": "1"})
        assert b"checking the authorize endpoint..." in no_color and b"\x1b" not in no_color
        assert no_color.endswith(b"\r")  # cleared with spaces instead
        _, dumb, _ = run_with_pty(args, pty_for="stderr", env={**terminal, "TERM": "dumb"})
        assert b"checking" not in dumb
        coloured, _, _ = run_with_pty(args, pty_for="stdout", env=terminal)
        assert b"\x1b[32mok  \x1b[0m" in coloured
        plain, _, _ = run_with_pty(args, pty_for="stdout", env={**terminal, "NO_COLOR": "1"})
        assert b"\x1b[" not in plain and b"  ok    Configuration" in plain
