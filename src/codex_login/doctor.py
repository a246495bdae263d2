"""``codex-login doctor``: sign-in specific health checks, each with a verdict and a one-line fix.

Unlike a general connectivity check, it looks at both ends of the browser sign-in:

* the callback side: can the callback ports (1455, then 1457) be bound on ``127.0.0.1`` and ``::1``, and
  which process holds them when not (``/proc/net/tcp{,6}`` and ``/proc/*/fd`` on Linux, best effort); how
  ``localhost`` resolves; whether a request from this machine reaches a temporary listener through
  ``localhost``, ``127.0.0.1`` and ``[::1]``; which browser would open and whether a browser can reach this
  machine at all (SSH, WSL, containers), suggesting ``--device-auth`` where not;
* the issuer side: the CA source and the proxy that apply to the token endpoint (D-9; the proxy shown as
  ``scheme://host:port`` only), DNS, TCP (to the proxy when one applies), the TLS handshake with that CA
  source (with an https:// proxy, the handshake with the proxy), HTTP reachability of ``/oauth/authorize`` and
  ``/oauth/token`` (any HTTP answer means reachable), and the clock against the issuer's ``Date`` header;
* local state: ownership and modes of ``CODEX_HOME``, ``log_dir``, the log file and ``auth.json`` (group or
  world bits, symlinks), and whether the keyring backend answers within 3 s. An unusable log directory or
  log file is a warning (sign-in warns and carries on without its log); a symbolic link at ``auth.json``
  fails when sign-in would save credentials there (the file store, or ``auto`` without a working keyring).

Verdicts: ``ok``, ``warn`` (sign-in may still work), ``fail`` (sign-in will not work as configured) and
``skip`` (not applicable, or a check it depends on failed). The fix of a network failure is the first step
of the shared advice table (:mod:`codex_login.diagnostics.advice`) for the failure class a real sign-in
would record, so the doctor and ``codex-login log`` say the same thing.

Never hangs: every network step has a short timeout (:attr:`DoctorOptions.step_timeout`, 3 s), name lookups
and the keyring run in daemon threads that are abandoned when late, and the whole run has a budget after
which the remaining network checks are skipped. Nothing here prints: :func:`run_doctor` takes a
``progress`` callback for the command's spinner.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno as errno_mod
import http.client
import ipaddress
import os
import re
import secrets
import selectors
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Final, Literal, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

from ._threads import call_with_timeout, start_thread
from .config import DEFAULT_PORT, FALLBACK_PORT, Config
from .diagnostics.advice import advice_for
from .diagnostics.logfile import LOG_FILE_NAME
from .diagnostics.redact import proxy_for_logging, sanitize_terminal_text, sanitize_url_for_logging

__all__ = [
    "STATUSES",
    "Check",
    "DoctorOptions",
    "DoctorReport",
    "PortHolder",
    "find_port_holders",
    "render_report",
    "run_doctor",
]

Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: Final = ("ok", "warn", "fail", "skip")
T = TypeVar("T")

PROBE_PATH: Final = "/codex-login-doctor"
# A keyring account nobody uses: reading it proves the backend answers without touching real credentials.
KEYRING_PROBE_ACCOUNT: Final = "codex-login-doctor-probe"
CLOCK_SKEW_LIMIT_SECONDS: Final = 60.0
_PROXY_SCHEMES: Final = ("http", "https", "socks5", "socks5h")
_LISTEN_STATE: Final = "0A"


@dataclass
class Check:
    """One verdict. ``fix`` is empty when there is nothing to do."""

    id: str
    title: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return all(check.status != "fail" for check in self.checks)

    def by_id(self, check_id: str) -> Check:
        return next(check for check in self.checks if check.id == check_id)

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for c in self.checks if c.status == status) for status in STATUSES}

    def to_json(self) -> dict[str, object]:
        return {"checks": [check.to_json() for check in self.checks], "ok": self.ok}


@dataclass(frozen=True)
class DoctorOptions:
    """What to check and how long to wait."""

    ports: tuple[int, ...] = (DEFAULT_PORT, FALLBACK_PORT)
    #: False skips everything that leaves this machine (DNS, TCP, TLS, HTTP, clock).
    network: bool = True
    #: Seconds for each network step (lookup, connect, handshake, request).
    step_timeout: float = 3.0
    #: Seconds for the whole run; network checks still waiting when it is spent are skipped.
    budget: float = 30.0
    keyring_timeout: float = 3.0


# --------------------------------------------------------------------------------------------- helpers


def _in_thread(func: Callable[[], T], timeout: float) -> tuple[bool, T | None, BaseException | None]:
    """Run ``func`` in a daemon thread; (finished, result, error). A late call is abandoned, never joined."""
    worker, result, error = call_with_timeout(func, timeout, "codex-login-doctor")
    return not worker.is_alive(), result, error


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"could not resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class PortHolder:
    """A socket listening on a port, and the process that owns it when the OS says so."""

    address: str
    pid: int | None = None
    command: str | None = None

    def describe(self) -> str:
        if self.pid is None:
            return "a process this user cannot see"
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def _decode_proc_address(text: str) -> str:
    """``0100007F`` -> ``127.0.0.1``; the 32-hex-digit IPv6 form (four little-endian words) -> ``::1``."""
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


def _listening_inodes(port: int, proc: Path) -> dict[str, str]:
    """inode -> local address of every socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found: dict[str, str] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / name).read_text(encoding="ascii", errors="replace").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != _LISTEN_STATE:
                continue
            address, _, port_hex = parts[1].partition(":")
            try:
                if int(port_hex, 16) != port:
                    continue
                found[parts[9]] = _decode_proc_address(address)
            except ValueError:
                continue
    return found


def find_port_holders(port: int, *, proc: Path = Path("/proc"), time_limit: float = 1.0) -> list[PortHolder]:
    """Who listens on TCP ``port`` (Linux; best effort, bounded by ``time_limit`` seconds).

    Only the process's short name (``comm``) is read, never its command line: arguments can hold secrets,
    and this text ends up in support bundles.
    """
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return []
    owners: dict[str, tuple[int, str | None]] = {}
    deadline = time.monotonic() + time_limit
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        pids = []
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    for pid_text in pids:
        if len(owners) == len(inodes) or time.monotonic() > deadline:
            break
        fd_dir = proc / pid_text / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                inode = wanted.get(os.readlink(fd_dir / fd))
            except OSError:
                continue
            if inode is not None and inode not in owners:
                try:
                    comm: str | None = (proc / pid_text / "comm").read_text(errors="replace").strip()[:64]
                except OSError:
                    comm = None
                owners[inode] = (int(pid_text), sanitize_terminal_text(comm) if comm else None)
    holders = []
    for inode, address in inodes.items():
        pid, command = owners.get(inode, (None, None))
        holders.append(PortHolder(address, pid, command))
    return holders


_FAMILIES: Final = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))
_NO_FAMILY: Final = (errno_mod.EADDRNOTAVAIL, errno_mod.EAFNOSUPPORT, errno_mod.EPROTONOSUPPORT)


def _try_listen(family: socket.AddressFamily, host: str, port: int) -> int | None:
    """Listen exactly as the login server does (its own helper), then let go; the errno, None on success."""
    from ._ports import listen

    try:
        listen(family, host, port).close()
    except OSError as exc:
        return exc.errno if exc.errno is not None else errno_mod.EAFNOSUPPORT
    return None


@dataclass
class _PortProbe:
    port: int
    usable: bool
    denied: bool
    busy: list[str]
    holders: list[PortHolder]
    ipv6: bool
    other_errors: list[str]


def _probe_port(port: int) -> _PortProbe:
    busy: list[str] = []
    other: list[str] = []
    denied = False
    ipv6 = False
    for family, host in _FAMILIES:
        code = _try_listen(family, host, port)
        if code is None:
            ipv6 = ipv6 or family == socket.AF_INET6
            continue
        if family == socket.AF_INET6 and code in _NO_FAMILY:
            continue  # no IPv6 loopback here: the login server runs on 127.0.0.1 alone
        if family == socket.AF_INET6:
            ipv6 = True
        if code == errno_mod.EADDRINUSE:
            busy.append(host)
        elif code == errno_mod.EACCES:
            denied = True
            other.append(f"{host}: {os.strerror(code)}")
        else:
            other.append(f"{host}: {os.strerror(code)}")
    holders = find_port_holders(port) if busy else []
    return _PortProbe(port, not (busy or other), denied, busy, holders, ipv6, other)


def _holders_text(holders: list[PortHolder]) -> str:
    # One process often holds both families: name it once.
    return ", ".join(dict.fromkeys(holder.describe() for holder in holders))


def _port_checks(ports: tuple[int, ...]) -> list[Check]:
    """One check per port. The first port is the one sign-in asks for; the others are its fallbacks."""
    probes = [_probe_port(port) for port in ports]
    usable = [probe.port for probe in probes if probe.usable]
    checks = []
    for index, probe in enumerate(probes):
        title = f"Callback port {probe.port}"
        families = "127.0.0.1 and ::1" if probe.ipv6 else "127.0.0.1 (this machine has no IPv6 loopback)"
        if probe.usable:
            checks.append(Check(f"port_{probe.port}", title, "ok", f"free on {families}"))
            continue
        parts = []
        if probe.busy:
            whom = _holders_text(probe.holders) if probe.holders else "another program"
            parts.append(f"in use on {' and '.join(probe.busy)} by {whom}")
        parts.extend(f"cannot be opened on {text}" for text in probe.other_errors)
        if index == 0 and usable:
            parts.append(f"sign-in falls back to port {usable[0]}")
        elif index > 0 and ports[0] in usable:
            parts.append(f"only needed when port {ports[0]} is busy")
        if not probe.busy:
            fix = advice_for("bind_failed").hint
        elif probe.holders and all(h.command in ("codex", "codex-login") for h in probe.holders):
            fix = (
                "A Codex or codex-login sign-in is waiting on it: finish or close it (a new sign-in also "
                "takes it over on its own)."
            )
        else:
            who = _holders_text(probe.holders) if probe.holders else "the program holding it"
            fix = f"Close {who}, or sign in with `codex-login --device-auth`."
        status: Status = "warn" if usable else "fail"
        checks.append(Check(f"port_{probe.port}", title, status, "; ".join(parts), fix))
    return checks


def _ipv6_loopback_exists() -> bool:
    return _try_listen(socket.AF_INET6, "::1", 0) is None


# --------------------------------------------------------------------------------------------- localhost


def _localhost_check(ipv6: bool, timeout: float) -> Check:
    title = "localhost resolution"
    finished, infos, error = _in_thread(lambda: socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM), timeout)
    if not finished:
        return Check("localhost", title, "fail", "looking up localhost did not finish in time",
                     "Check /etc/hosts (or the hosts file on Windows): it should map localhost to 127.0.0.1 and ::1.")
    if error is not None or not infos:
        return Check("localhost", title, "fail", f"localhost does not resolve ({_os_reason(error or OSError())})",
                     "Add `127.0.0.1 localhost` and `::1 localhost` to /etc/hosts.")
    order: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in order:
            order.append(address)
    detail = f"localhost resolves to {', '.join(order)}"
    if len(order) > 1:
        detail += " (browsers try them in this order)"
    foreign = [a for a in order if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if foreign:
        return Check("localhost", title, "fail", detail + f"; {', '.join(foreign)} is not this machine's loopback",
                     "Fix /etc/hosts so localhost maps only to 127.0.0.1 and ::1.")
    if order[0] == "::1" and not ipv6:
        return Check("localhost", title, "warn", detail + "; but ::1 cannot be used here",
                     "Browsers should fall back to 127.0.0.1; if the redirect fails, map localhost to 127.0.0.1 first.")
    return Check("localhost", title, "ok", detail)


def _serve_probe(sockets: list[socket.socket], nonce: bytes, stop: threading.Event) -> None:
    """Answer every request on ``sockets`` with ``nonce`` until ``stop`` (one request per connection)."""
    body = nonce
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _mask in selector.select(0.05):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                try:
                    conn, _addr = listener.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(2.0)
                    head = b""
                    with contextlib.suppress(OSError):
                        while b"\r\n\r\n" not in head and len(head) < 8192:
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            head += chunk
                        conn.sendall(reply)


def _request_probe(host: str, port: int, timeout: float) -> tuple[bool, str, bytes]:
    """GET the probe path from ``host``; (connected, peer address or error, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()
        peer = str(conn.sock.getpeername()[0]) if conn.sock is not None else "?"
        conn.request("GET", PROBE_PATH)
        response = conn.getresponse()
        return True, peer, response.read(256)
    except (OSError, http.client.HTTPException) as exc:
        return False, _os_reason(exc), b""
    finally:
        conn.close()


def _loopback_check(timeout: float) -> Check:
    from ._ports import bind_loopback

    title = "Request to a local listener"
    try:
        sockets = bind_loopback(0)
    except OSError as exc:
        return Check("loopback", title, "fail", f"could not open a temporary listener: {_os_reason(exc)}",
                     advice_for("bind_failed").hint)
    port = sockets[0].getsockname()[1]
    nonce = secrets.token_hex(8).encode()
    stop = threading.Event()
    server = threading.Thread(target=_serve_probe, args=(sockets, nonce, stop), daemon=True,
                              name="codex-login-doctor-listener")
    start_thread(server)
    targets = [("localhost", "localhost"), ("127.0.0.1", "127.0.0.1")]
    if any(s.family == socket.AF_INET6 for s in sockets):
        targets.append(("[::1]", "::1"))
    results: dict[str, tuple[bool, str]] = {}
    try:
        for label, host in targets:
            connected, peer, body = _request_probe(host, port, timeout)
            if connected and body == nonce:
                results[label] = (True, peer)
            elif connected:
                results[label] = (False, "another program answered")
            else:
                results[label] = (False, peer)
    finally:
        stop.set()
        server.join(2.0)
        for sock in sockets:
            sock.close()
    reached = [label if label != "localhost" else f"localhost ({peer})" for label, (ok, peer) in results.items() if ok]
    failed = [f"{label}: {why}" for label, (ok, why) in results.items() if not ok]
    detail = f"a listener on port {port} answered through {', '.join(reached) or 'nothing'}"
    if failed:
        detail += f"; not through {'; '.join(failed)}"
    if not results["localhost"][0] or not results["127.0.0.1"][0]:
        return Check("loopback", title, "fail", detail,
                     "A firewall, antivirus or VPN client intercepts loopback connections, or localhost maps "
                     "elsewhere: allow connections to localhost, or sign in with `codex-login --device-auth`.")
    if failed:
        return Check("loopback", title, "warn", detail,
                     "Browsers that try ::1 first should fall back to 127.0.0.1; if the redirect fails, check "
                     "firewall rules for ::1.")
    return Check("loopback", title, "ok", detail)


# --------------------------------------------------------------------------------------------- browser


def _browser_check(env: Mapping[str, str]) -> Check:
    from .environment import assess_callback_reachability, choose_browser_opener, detect_environment

    title = "Browser"
    info = detect_environment(env)
    opener = choose_browser_opener(info)
    reach = assess_callback_reachability(info, port=DEFAULT_PORT)
    session = []
    if info.ssh:
        session.append("SSH session")
    if info.wsl:
        session.append(f"WSL {info.wsl_version or ''}".strip())
    if info.container:
        session.append(f"container ({info.container})")
    if info.codespaces:
        session.append("Codespaces")
    elif info.vscode_remote or info.remote_containers:
        session.append("VS Code remote")
    session.append("display" if info.display else "no display")
    if opener is None:
        how = "no way to open a browser here"
    elif opener.kind == "browser_env":
        first = (opener.browser_env or "").split(os.pathsep)[0].strip().split(" ")[0]
        how = f"opens with the BROWSER command ({os.path.basename(first) or '?'})"
    else:
        how = f"opens with {opener.name}"
    detail = f"{how}; {', '.join(session)}"
    notes = [*reach.reasons, *reach.notes]
    if notes:
        detail += "; " + "; ".join(notes)
    detail = sanitize_terminal_text(detail)
    if reach.likely_unreachable:
        return Check("browser", title, "warn", detail, reach.suggestion or advice_for("timeout").hint)
    if opener is None:
        return Check("browser", title, "warn", detail,
                     "codex-login prints the sign-in URL: open it in a browser that can reach this machine, "
                     "or sign in with `codex-login --device-auth`.")
    return Check("browser", title, "ok", detail)


# --------------------------------------------------------------------------------------------- issuer


@dataclass
class _Issuer:
    """The configured issuer, and what the checks learned about reaching it."""

    url: str
    scheme: str
    host: str
    port: int
    token_url: str
    authorize_url: str
    proxy: str | None  # the raw proxy URL (may hold credentials: never shown)
    ssl_context: ssl.SSLContext | None = None
    ca_description: str = ""
    reachable: bool = True  # False once DNS/TCP failed: the checks after it are skipped
    skip_reason: str = ""
    date_header: str | None = None
    date_local_midpoint: float = 0.0


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def step(self, timeout: float) -> float:
        """The timeout for the next step: never past the deadline."""
        return max(0.1, min(timeout, self.left()))


def _route_check(issuer: _Issuer, env: Mapping[str, str]) -> Check:
    from .errors import TransportError
    from .http import build_ssl_context, proxy_for_url, resolve_ca_source

    title = "Route to the issuer"
    ca = resolve_ca_source(env)
    issuer.ca_description = ca.describe()
    without_no_proxy = {k: v for k, v in env.items() if k.lower() != "no_proxy"}
    exempt = issuer.proxy is None and proxy_for_url(issuer.token_url, without_no_proxy) is not None
    if issuer.proxy is None:
        proxy_text = "none (direct connection" + ("; NO_PROXY exempts this host)" if exempt else ")")
    else:
        proxy_text = proxy_for_logging(issuer.proxy)
    if issuer.scheme == "https":
        ca_text = ca.describe()
    else:
        ca_text = f"{ca.describe()}, unused: the issuer is http://"
    detail = f"token endpoint {sanitize_url_for_logging(issuer.token_url)}; CA source {ca_text}; proxy {proxy_text}"
    detail += _unmatchable_no_proxy_note(env)
    if issuer.proxy is not None:
        problem = _proxy_problem(issuer.proxy)
        if problem is not None:
            # Named by its variable, never quoted: what does not parse may be a password with a '/' in it.
            issuer.reachable, issuer.skip_reason = False, "the proxy is not a valid URL"
            variable = _proxy_variable(issuer.token_url, env)
            return Check("issuer_route", title, "fail", f"{detail}; the proxy in {variable} is not a valid URL "
                         f"({problem})", advice_for("transport_proxy").hint)
        scheme = _proxy_parts(issuer.proxy).scheme.lower()
        if scheme not in _PROXY_SCHEMES:
            return Check("issuer_route", title, "fail", detail + f"; the proxy scheme {scheme}:// is not supported",
                         "Write the proxy as http://, https:// or socks5:// (socks:// is not understood).")
        if scheme.startswith("socks"):
            import importlib.util

            if importlib.util.find_spec("socksio") is None:
                return Check("issuer_route", title, "fail", detail + "; SOCKS support is not installed",
                             "Install it with `pip install 'codex-login[socks]'`.")
    if issuer.scheme == "https":
        try:
            issuer.ssl_context = build_ssl_context(ca)
        except TransportError as exc:
            issuer.reachable, issuer.skip_reason = False, "the CA source cannot be used"
            return Check("issuer_route", title, "fail", f"{detail}; {sanitize_terminal_text(str(exc))}",
                         advice_for(exc.failure_class).hint)
    return Check("issuer_route", title, "ok", detail)


def _unmatchable_no_proxy_note(env: Mapping[str, str]) -> str:
    """``; NO_PROXY: 2 entries exempt no host: ...`` when some NO_PROXY entries can never match (the client reads
    NO_PROXY as reqwest does: :func:`codex_login.http.unmatchable_no_proxy_entries`), else nothing."""
    from .http import proxy_variables, unmatchable_no_proxy_entries

    variables = proxy_variables(env)
    if "no_proxy" not in variables:
        return ""
    name, value = variables["no_proxy"]
    counts = unmatchable_no_proxy_entries(value)
    why = {
        "brackets": "in brackets (write an IPv6 address without them, as ::1)",
        "port": "with a port (entries take none: the host alone exempts every port)",
        "other": "neither an IP address, a CIDR block nor a host name",
    }
    parts = [f"{count} {why[key]}" for key, count in counts.items() if count]
    if not parts:
        return ""
    total = sum(counts.values())
    return f"; {name}: {total} {'entry exempts' if total == 1 else 'entries exempt'} no host: {', '.join(parts)}"


def _dns_check(issuer: _Issuer, budget: _Budget, timeout: float) -> Check:
    title = f"DNS lookup of {issuer.host}"
    if _is_ip(issuer.host):
        return Check("issuer_dns", title, "ok", "the issuer is an IP address: no lookup needed")
    started = time.monotonic()
    finished, infos, error = _in_thread(
        lambda: socket.getaddrinfo(issuer.host, issuer.port, type=socket.SOCK_STREAM), budget.step(timeout)
    )
    elapsed = time.monotonic() - started
    if finished and error is None and infos:
        addresses: list[str] = []
        for info in infos:
            if str(info[4][0]) not in addresses:
                addresses.append(str(info[4][0]))
        shown = ", ".join(addresses[:4]) + (", ..." if len(addresses) > 4 else "")
        return Check("issuer_dns", title, "ok", f"resolved to {shown} in {_ms(elapsed)}")
    why = "the lookup did not finish in time" if not finished else _os_reason(error or OSError())
    if issuer.proxy is not None:
        return Check("issuer_dns", title, "warn", f"{why}; the proxy resolves names for requests it carries",
                     "Only a problem if the proxy cannot resolve it either.")
    issuer.reachable, issuer.skip_reason = False, "the issuer's host name did not resolve"
    return Check("issuer_dns", title, "fail", why, advice_for("transport_dns").hint)


def _proxy_parts(proxy: str) -> SplitResult:
    """A proxy URL split; a bare ``host:port`` means ``http://`` (as HTTP clients read it)."""
    return urlsplit(proxy if "://" in proxy else f"http://{proxy}")


def _proxy_problem(proxy: str) -> str | None:
    """What makes ``proxy`` unusable as ``scheme://host:port`` (the TCP check connects to it), or None."""
    try:
        parts = _proxy_parts(proxy)
    except ValueError:  # urlsplit reads any [ or ] in the authority as an IPv6 host
        return "a [ or ] not around an IPv6 address; percent-encode special characters in its user name and password"
    try:
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if not parts.hostname:
        return "it names no host"
    return None


def _proxy_variable(url: str, env: Mapping[str, str]) -> str:
    """The variable :func:`codex_login.http.proxy_for_url` took the proxy for ``url`` from."""
    from .http import proxy_variables

    variables = proxy_variables(env)
    chosen = variables.get(f"{urlsplit(url).scheme.lower()}_proxy") or variables.get("all_proxy")
    return chosen[0] if chosen is not None else "the proxy environment variables"


def _proxy_endpoint(proxy: str) -> tuple[str, str, int]:
    parts = _proxy_parts(proxy)
    scheme = parts.scheme.lower()
    default = {"https": 443, "socks5": 1080, "socks5h": 1080}.get(scheme, 80)
    return scheme, parts.hostname or "", parts.port or default


def _tcp_check(issuer: _Issuer, budget: _Budget, timeout: float) -> tuple[Check, socket.socket | None]:
    title = "TCP connection"
    if not issuer.reachable:
        return Check("issuer_tcp", title, "skip", f"skipped: {issuer.skip_reason}"), None
    if issuer.proxy is not None:
        _scheme, host, port = _proxy_endpoint(issuer.proxy)
        target = f"the proxy {proxy_for_logging(issuer.proxy)}"
        failure_class = "transport_proxy"
    else:
        host, port = issuer.host, issuer.port
        target = f"{issuer.host}:{issuer.port}"
        failure_class = "transport_connect"
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=budget.step(timeout))
    except OSError as exc:
        issuer.reachable, issuer.skip_reason = False, "the TCP connection failed"
        if isinstance(exc, TimeoutError | socket.timeout) and issuer.proxy is None:
            failure_class = "transport_timeout"
        return Check("issuer_tcp", title, "fail", f"could not connect to {target}: {_os_reason(exc)}",
                     advice_for(failure_class).hint), None
    peer = sock.getpeername()[0]
    detail = f"connected to {target} ({peer}) in {_ms(time.monotonic() - started)}"
    return Check("issuer_tcp", title, "ok", detail), sock


def _connect_tunnel(sock: socket.socket, issuer: _Issuer) -> str | None:
    """Ask an http:// proxy for a tunnel to the issuer; None when it agreed, else why not."""
    headers = [f"CONNECT {issuer.host}:{issuer.port} HTTP/1.1", f"Host: {issuer.host}:{issuer.port}"]
    assert issuer.proxy is not None
    parts = _proxy_parts(issuer.proxy)
    if parts.username is not None:
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
    sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1", "replace"))
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 8192:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    match = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
    if match is None:
        return "the proxy did not answer the CONNECT request"
    if match.group(1) != "200":
        return f"the proxy refused the tunnel: {sanitize_terminal_text(status_line[9:], 80)}"
    return None


_NAME_KEYS: Final = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}


def _name_of(cert_part: object) -> str:
    """``CN=auth.openai.com`` (or the O and OU when there is no CN) from ``getpeercert()``'s form."""
    if not isinstance(cert_part, tuple):
        return "?"
    names = {key: str(value) for rdn in cert_part for key, value in rdn if key in _NAME_KEYS}
    if "commonName" in names:
        return f"CN={names['commonName']}"
    return ", ".join(f"{_NAME_KEYS[key]}={value}" for key, value in names.items()) or "?"


def _proxy_tls_check(issuer: _Issuer, sock: socket.socket, proxy_host: str) -> Check:
    """The TLS handshake with an https:// proxy, verified with the CA source as the client verifies it (D-9).
    The issuer's own handshake would run inside that TLS connection: the HTTP checks below cover it."""
    title = "TLS handshake"
    assert issuer.proxy is not None and issuer.ssl_context is not None
    proxy = proxy_for_logging(issuer.proxy)
    try:
        with issuer.ssl_context.wrap_socket(sock, server_hostname=proxy_host) as tls:
            version = tls.version() or "TLS"
    except ssl.SSLCertVerificationError as exc:
        issuer.reachable, issuer.skip_reason = False, "the proxy's TLS handshake failed"
        reason = exc.verify_message or exc.reason or "certificate verification failed"
        return Check("issuer_tls", title, "fail",
                     f"certificate verification of the proxy {proxy} failed: "
                     f"{sanitize_terminal_text(str(reason), 200)} (trusted CAs from {issuer.ca_description})",
                     advice_for("transport_tls").hint)
    except (ssl.SSLError, OSError) as exc:
        issuer.reachable, issuer.skip_reason = False, "the proxy's TLS handshake failed"
        reason = getattr(exc, "reason", None) or _os_reason(exc)
        return Check("issuer_tls", title, "fail",
                     f"the TLS handshake with the proxy {proxy} failed: {sanitize_terminal_text(str(reason), 200)} "
                     "(an https:// proxy URL needs a proxy that speaks TLS; a proxy that speaks plain HTTP is "
                     "written http://)",
                     advice_for("transport_proxy").hint)
    return Check("issuer_tls", title, "skip",
                 f"with the proxy {proxy}: {version}, certificate verified with {issuer.ca_description}; "
                 "the issuer's handshake runs inside it: the HTTP checks below cover it")


def _tls_check(issuer: _Issuer, sock: socket.socket | None, budget: _Budget, timeout: float) -> Check:
    title = "TLS handshake"
    if issuer.scheme != "https":
        return Check("issuer_tls", title, "skip", "the issuer uses http:// (a local test issuer): no TLS")
    if sock is None or issuer.ssl_context is None:
        return Check("issuer_tls", title, "skip", f"skipped: {issuer.skip_reason or 'no connection'}")
    with sock:
        sock.settimeout(budget.step(timeout))
        if issuer.proxy is not None:
            scheme, proxy_host, _p = _proxy_endpoint(issuer.proxy)
            if scheme == "https":
                return _proxy_tls_check(issuer, sock, proxy_host)
            if scheme != "http":
                return Check("issuer_tls", title, "skip",
                             f"through a {scheme}:// proxy the HTTP checks below cover TLS")
            try:
                refused = _connect_tunnel(sock, issuer)
            except OSError as exc:
                refused = f"the proxy tunnel failed: {_os_reason(exc)}"
            if refused is not None:
                issuer.reachable, issuer.skip_reason = False, "the proxy gave no tunnel"
                return Check("issuer_tls", title, "fail", refused, advice_for("transport_proxy").hint)
        try:
            with issuer.ssl_context.wrap_socket(sock, server_hostname=issuer.host) as tls:
                version = tls.version() or "TLS"
                cert = tls.getpeercert() or {}
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or "certificate verification failed"
            return Check("issuer_tls", title, "fail",
                         f"certificate verification failed: {sanitize_terminal_text(str(reason), 200)} "
                         f"(trusted CAs from {issuer.ca_description})",
                         advice_for("transport_tls").hint)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or _os_reason(exc)
            return Check("issuer_tls", title, "fail",
                         f"TLS handshake failed: {sanitize_terminal_text(str(reason), 200)}",
                         advice_for("transport_tls").hint)
    detail = f"{version}, certificate verified with {issuer.ca_description}"
    if cert:
        detail += f"; issued to {_name_of(cert.get('subject'))} by {_name_of(cert.get('issuer'))}"
        if cert.get("notAfter"):
            detail += f", valid until {cert['notAfter']}"
    return Check("issuer_tls", title, "ok", sanitize_terminal_text(detail))


def _http_check(
    issuer: _Issuer, env: Mapping[str, str], which: Literal["authorize", "token"], budget: _Budget, timeout: float
) -> Check:
    from .errors import TransportError
    from .http import HttpClient, HttpSettings

    url = issuer.authorize_url if which == "authorize" else issuer.token_url
    check_id = f"issuer_{which}"
    title = "Authorize endpoint" if which == "authorize" else "Token endpoint"
    if not issuer.reachable:
        return Check(check_id, title, "skip", f"skipped: {issuer.skip_reason}")
    step = budget.step(timeout)
    client = HttpClient(HttpSettings(total_timeout=step, connect_timeout=step, env=env))
    sent = time.time()
    started = time.monotonic()
    try:
        response = client.get(url)
    except TransportError as exc:
        return Check(check_id, title, "fail", f"GET {sanitize_terminal_text(str(exc), 400)}",
                     advice_for(exc.failure_class).hint)
    finally:
        client.close()
    received = time.time()
    elapsed = _ms(time.monotonic() - started)
    if response.headers.get("date"):
        issuer.date_header = response.headers["date"]
        issuer.date_local_midpoint = (sent + received) / 2
    answered = f"GET {sanitize_url_for_logging(url)} answered {response.status_text} in {elapsed}"
    request_id = response.headers.get("x-request-id") or response.headers.get("cf-ray")
    if request_id:
        answered += f" (request id {sanitize_terminal_text(request_id, 80)})"
    if response.status == 403 and "cf-mitigated" in response.headers:
        return Check(check_id, title, "warn", answered + "; a Cloudflare challenge answered instead of the issuer",
                     advice_for("token_forbidden").hint)
    if which == "token" and response.status in (401, 403):
        return Check(check_id, title, "warn", answered + "; even a plain GET was refused, so the token request "
                     "is likely to be blocked too", advice_for("token_forbidden").hint)
    if response.status >= 500:
        return Check(check_id, title, "warn", answered, advice_for("token_server_error").hint)
    if which == "token":
        answered += " (any answer is fine: the endpoint only takes POST requests)"
    return Check(check_id, title, "ok", answered)


def _clock_check(issuer: _Issuer) -> Check:
    title = "Clock"
    if issuer.date_header is None:
        return Check("clock", title, "skip", "skipped: no answer from the issuer carried a Date header")
    # A year past what a C int holds raises OverflowError, not ValueError; timestamp() is guarded as well, as
    # the header is whatever the issuer (or a proxy in front of it) sent, and none of it may stop the doctor.
    try:
        server = email.utils.parsedate_to_datetime(issuer.date_header)
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        server_time = server.timestamp()
    except (TypeError, ValueError, OverflowError, OSError):
        return Check("clock", title, "skip", "the issuer's Date header could not be read")
    skew = issuer.date_local_midpoint - server_time
    # The header has whole seconds: up to 1 s of difference is rounding, not skew.
    shown = max(0.0, abs(skew) - 1.0)
    if shown > CLOCK_SKEW_LIMIT_SECONDS:
        direction = "ahead of" if skew > 0 else "behind"
        return Check("clock", title, "warn", f"this machine's clock is {shown:.0f} s {direction} the issuer's",
                     "Turn on automatic time synchronisation (Linux: `timedatectl set-ntp true`; macOS and "
                     "Windows: set date and time automatically).")
    return Check("clock", title, "ok", f"within {max(1.0, shown):.0f} s of the issuer's clock")


def _issuer_checks(
    config: Config, env: Mapping[str, str], options: DoctorOptions, budget: _Budget,
    progress: Callable[[str], None],
) -> list[Check]:
    from .http import proxy_for_url
    from .oauth import token_endpoint_for

    parts = urlsplit(config.issuer)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    token_url = token_endpoint_for(config.issuer)
    issuer = _Issuer(
        url=config.issuer,
        scheme=scheme,
        host=host,
        port=parts.port or (443 if scheme == "https" else 80),
        token_url=token_url,
        authorize_url=f"{config.issuer.rstrip('/')}/oauth/authorize",
        proxy=proxy_for_url(token_url, env),
    )
    checks = [_route_check(issuer, env)]
    timeout = options.step_timeout
    sock_box: list[socket.socket | None] = [None]

    def tcp() -> Check:
        check, sock = _tcp_check(issuer, budget, timeout)
        if sock is not None and issuer.scheme != "https":
            sock.close()  # only a TLS handshake would use it; an idle connection could stall a small server
            sock = None
        sock_box[0] = sock
        return check

    steps: list[tuple[str, str, str, Callable[[], Check]]] = [
        ("issuer_dns", f"DNS lookup of {host}", "looking up the issuer", lambda: _dns_check(issuer, budget, timeout)),
        ("issuer_tcp", "TCP connection", "connecting to the issuer", tcp),
        ("issuer_tls", "TLS handshake", "checking TLS", lambda: _tls_check(issuer, sock_box[0], budget, timeout)),
        ("issuer_authorize", "Authorize endpoint", "checking the authorize endpoint",
         lambda: _http_check(issuer, env, "authorize", budget, timeout)),
        ("issuer_token", "Token endpoint", "checking the token endpoint",
         lambda: _http_check(issuer, env, "token", budget, timeout)),
    ]
    try:
        for check_id, title, label, run in steps:
            if not options.network:
                checks.append(Check(check_id, title, "skip", "skipped: network checks are turned off"))
            elif budget.left() <= 0:
                checks.append(
                    Check(check_id, title, "skip", f"skipped: the doctor's time budget ({budget.seconds:g} s) ran out")
                )
            else:
                progress(label)
                checks.append(run())
    finally:
        if sock_box[0] is not None:
            sock_box[0].close()
    if options.network:
        checks.append(_clock_check(issuer))
    else:
        checks.append(Check("clock", "Clock", "skip", "skipped: network checks are turned off"))
    return checks


# --------------------------------------------------------------------------------------------- files


def _mode_problems(st: os.stat_result, *, private: bool) -> list[str]:
    problems = []
    if st.st_uid != os.geteuid():
        problems.append(f"owned by uid {st.st_uid}, not by you (uid {os.geteuid()})")
    mode = stat.S_IMODE(st.st_mode)
    if private and mode & 0o077:
        problems.append(f"mode {mode:04o} gives access to group or others")
    elif mode & 0o022:
        problems.append(f"mode {mode:04o} lets group or others write")
    return problems


def _directory_check(
    check_id: str, title: str, path: Path, *, created_by: str, unusable: Status = "fail", consequence: str = ""
) -> Check:
    """``unusable`` is the verdict when ``path`` cannot be a directory at all, ``consequence`` what sign-in then
    does (appended to the detail)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Check(check_id, title, "ok", f"{path} does not exist yet; {created_by} creates it with mode 0700")
    except OSError as exc:
        return Check(check_id, title, unusable, f"{path}: {_os_reason(exc)}{consequence}",
                     f"Make {path} a directory you own.")
    notes = []
    target_st = st
    if stat.S_ISLNK(st.st_mode):
        try:
            target_st = os.stat(path)
        except OSError as exc:
            return Check(check_id, title, unusable,
                         f"{path} is a broken symbolic link ({_os_reason(exc)}){consequence}",
                         f"Remove the link or point it at a directory you own: {path}")
        notes.append(f"{path} is a symbolic link to {os.path.realpath(path)}")
    if not stat.S_ISDIR(target_st.st_mode):
        return Check(check_id, title, unusable, f"{path} is not a directory{consequence}",
                     f"Move {path} away so a directory can be created there.")
    problems = _mode_problems(target_st, private=True)
    detail = "; ".join([*notes, *problems]) or f"{path}: mode {stat.S_IMODE(target_st.st_mode):04o}, owned by you"
    if problems:
        return Check(check_id, title, "warn", detail, f"Run `chmod 700 {path}` (and make sure you own it).")
    if notes:
        return Check(check_id, title, "warn", detail,
                     "Symbolic links are accepted only to a directory you own with mode 0700; otherwise "
                     "replace the link with a real directory.")
    return Check(check_id, title, "ok", detail)


def _file_check(
    check_id: str, title: str, path: Path, *, absent: str, role: str, unusable: Status = "fail",
    link: Status = "warn", consequence: str = "",
) -> Check:
    """``unusable`` is the verdict when ``path`` cannot be a regular file and ``link`` when it is a symbolic
    link (which the product never follows); ``consequence`` is what sign-in then does, in either case."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Check(check_id, title, "ok", f"{path}: {absent}")
    except OSError as exc:
        return Check(check_id, title, unusable, f"{path}: {_os_reason(exc)}{consequence}",
                     f"Check the directory that holds {path}.")
    if stat.S_ISLNK(st.st_mode):
        return Check(check_id, title, link,
                     f"{path} is a symbolic link (to {os.path.realpath(path)}): {role} refuses to use it{consequence}",
                     f"Replace the link with the file itself: {path}")
    if not stat.S_ISREG(st.st_mode):
        return Check(check_id, title, unusable, f"{path} is not a regular file: {role} cannot use it{consequence}",
                     f"Move {path} away.")
    problems = _mode_problems(st, private=True)
    if st.st_nlink > 1:
        problems.append(f"it has {st.st_nlink} hard links")
    if problems:
        return Check(check_id, title, "warn", f"{path}: " + "; ".join(problems),
                     f"Run `chmod 600 {path}` (and make sure you own it).")
    return Check(check_id, title, "ok", f"{path}: mode {stat.S_IMODE(st.st_mode):04o}, owned by you")


def _file_checks(config: Config, *, keyring_works: bool) -> list[Check]:
    # Sign-in only warns when it cannot log (docs/diagnostics.md) and carries on: that is no failure.
    no_log = "; sign-in prints a warning and carries on without the log file"
    # The file store refuses to save through a symbolic link, so sign-in fails when credentials go to
    # auth.json: always with the file store, and with auto when the keyring it would try first does not work.
    mode = config.credentials_store.value
    writes_auth_json = mode == "file" or (mode == "auto" and not keyring_works)
    store = f'cli_auth_credentials_store = "{mode}"' + (", no working keyring" if mode == "auto" else "")
    return [
        _directory_check("codex_home", "CODEX_HOME", config.codex_home, created_by="the first sign-in"),
        _directory_check("log_dir", "Log directory", config.log_dir, created_by="the first sign-in",
                         unusable="warn", consequence=no_log),
        _file_check("log_file", "Log file", config.log_dir / LOG_FILE_NAME, absent="not written yet",
                    role="sign-in logging", unusable="warn", consequence=no_log),
        _file_check("auth_json", "auth.json", config.codex_home / "auth.json",
                    absent="not present (no credentials in the file store)", role="codex-login",
                    link="fail" if writes_auth_json else "warn",
                    consequence=f"; sign-in ({store}) saves credentials to it, so it will fail"
                    if writes_auth_json else ""),
    ]


# --------------------------------------------------------------------------------------------- keyring


def _keyring_check(config: Config, timeout: float) -> Check:
    from .storage import KEYRING_SERVICE

    title = "Keyring"
    mode = config.credentials_store.value
    needed = mode in ("keyring", "auto")

    def probe() -> str:
        import keyring

        backend = keyring.get_keyring()
        backend.get_password(KEYRING_SERVICE, KEYRING_PROBE_ACCOUNT)
        return f"{type(backend).__module__}.{type(backend).__name__}"

    started = time.monotonic()
    finished, backend, error = _in_thread(probe, timeout)
    elapsed = time.monotonic() - started
    if finished and error is None:
        return Check("keyring", title, "ok", f"the {backend} backend answered in {_ms(elapsed)}")
    if finished and isinstance(error, ImportError):
        problem = "the keyring package is not installed"
        fix = "Install it with `pip install 'codex-login[keyring]'`."
    elif not finished:
        problem = f"the keyring did not answer within {timeout:g} s (locked, or no D-Bus session?)"
        fix = "Unlock the keyring (on SSH sessions there is often none), or set cli_auth_credentials_store = \"file\"."
    else:
        # Backends explain at length; the first sentence says what is wrong.
        first = (str(error).strip() or type(error).__name__).split(". ")[0].rstrip(".")
        reason = sanitize_terminal_text(first, 160)
        problem = f"no usable keyring backend ({reason})"
        fix = "Install and unlock a keyring (Secret Service, KWallet, macOS Keychain), or use the file store."
    if mode == "keyring":
        return Check("keyring", title, "fail", f"{problem}; cli_auth_credentials_store = \"keyring\" needs it", fix)
    if mode == "auto":
        return Check("keyring", title, "warn", f"{problem}; sign-in falls back to auth.json", fix)
    return Check("keyring", title, "skip",
                 f"{problem}; not needed with cli_auth_credentials_store = \"{mode}\"" if not needed else problem)


# --------------------------------------------------------------------------------------------- running


def _config_check(config: Config) -> Check:
    detail = (
        f"issuer {sanitize_url_for_logging(config.issuer)}, credentials store {config.credentials_store.value}, "
        f"log format {config.login_log_format}, CODEX_HOME {config.codex_home}"
    )
    return Check("config", "Configuration", "ok", sanitize_terminal_text(detail))


def run_doctor(
    config: Config,
    *,
    env: Mapping[str, str] | None = None,
    options: DoctorOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> DoctorReport:
    """Run every check for ``config`` (environment ``env``, default ``os.environ``) and return the report.

    ``progress`` is called with a short label before each slow step (for a spinner); it must not block.
    """
    env = os.environ if env is None else env
    options = options or DoctorOptions()
    notify = progress or (lambda _label: None)
    budget = _Budget(options.budget)
    report = DoctorReport([_config_check(config)])
    notify("checking the callback ports")
    report.checks.extend(_port_checks(options.ports))
    notify("checking localhost")
    report.checks.append(_localhost_check(_ipv6_loopback_exists(), options.step_timeout))
    report.checks.append(_loopback_check(min(2.0, options.step_timeout)))
    report.checks.append(_browser_check(env))
    notify("checking the issuer")
    report.checks.extend(_issuer_checks(config, env, options, budget, notify))
    notify("checking the keyring")
    # Checked before the files, as whether auth.json is written depends on it; reported after them.
    keyring = _keyring_check(config, options.keyring_timeout)
    report.checks.extend(_file_checks(config, keyring_works=keyring.status == "ok"))
    report.checks.append(keyring)
    return report


# --------------------------------------------------------------------------------------------- output

_COLOURS: Final = {"ok": "32", "warn": "33", "fail": "31", "skip": "2"}


def render_report(report: DoctorReport, *, color: bool = False, heading: str | None = None) -> str:
    """The report for a terminal: one line per check, its fix indented below, then a summary."""
    lines = [heading, ""] if heading else []
    width = max(len(check.title) for check in report.checks)
    for check in report.checks:
        label = f"{check.status:<4}"
        if color:
            label = f"\x1b[{_COLOURS[check.status]}m{label}\x1b[0m"
        title = sanitize_terminal_text(check.title)
        lines.append(f"  {label}  {title.ljust(width)}  {sanitize_terminal_text(check.detail)}")
        if check.fix and check.status != "ok":
            lines.append(f"        {' ' * width}  fix: {sanitize_terminal_text(check.fix)}")
    counts = report.counts()
    summary = (
        f"{counts['fail']} failed, {counts['warn']} warning{'s' if counts['warn'] != 1 else ''}, "
        f"{counts['ok']} ok, {counts['skip']} skipped."
    )
    lines += ["", ("Sign-in should work. " if report.ok else "Sign-in will not work as configured. ") + summary]
    return "\n".join(lines) + "\n"
