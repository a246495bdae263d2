"""Where are we running, can a browser reach our loopback callback, and how do we open one?

Everything here is pure detection from injectable inputs (environment variables, ``/proc`` text, file
existence, ``shutil.which``), so tests can simulate an SSH session, WSL, a container or a headless box.

* :func:`detect_environment` gathers the facts into an :class:`EnvironmentInfo`.
* :func:`assess_callback_reachability` says whether a browser that can reach ``http://localhost:PORT``
  is likely to exist, with short human reasons and a suggestion (device code, port forwarding, pasting
  the redirect URL).
* :func:`choose_browser_opener` and :func:`open_browser` open the authorize URL without ever blocking the
  caller for long, and only after :func:`validate_browser_url` accepted it (security V-t: mcp-remote
  CVE-2025-6514 passed an unvalidated URL to an opener).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "DEFAULT_CALLBACK_PORT",
    "OPEN_WAIT_SECONDS",
    "BrowserOpener",
    "EnvironmentInfo",
    "OpenResult",
    "Reachability",
    "UnsafeBrowserURLError",
    "assess_callback_reachability",
    "choose_browser_opener",
    "detect_environment",
    "open_browser",
    "validate_browser_url",
]

DEFAULT_CALLBACK_PORT: Final = 1455

_DESKTOP_PLATFORMS: Final = ("darwin", "win32", "cygwin")
_WINDOWS_POWERSHELL: Final = "/mnt/c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe"
# Waiting longer than this for an opener's verdict is not worth holding up the sign-in.
OPEN_WAIT_SECONDS: Final = 2.0


# --------------------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class EnvironmentInfo:
    """Facts about the machine and session this process runs in."""

    platform: str
    #: An SSH session (``SSH_CONNECTION``, ``SSH_CLIENT`` or ``SSH_TTY``).
    ssh: bool = False
    #: Windows Subsystem for Linux; ``wsl_version`` is 1 or 2 when ``wsl``.
    wsl: bool = False
    wsl_version: int | None = None
    #: ``wslview`` or ``powershell.exe`` when found on WSL (name), and the path to run.
    wsl_opener: str | None = None
    wsl_opener_path: str | None = None
    #: ``docker``, ``podman``, ``kubernetes``, ``lxc``, ``containerd`` or another ``container=`` value.
    container: str | None = None
    #: ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set (a local or forwarded graphical session).
    display_env: bool = False
    #: A graphical session is likely: ``display_env``, or macOS / Windows.
    display: bool = False
    #: The ``BROWSER`` variable, when set and not empty.
    browser_env: str | None = None
    #: GitHub Codespaces (``CODESPACES=true``).
    codespaces: bool = False
    #: VS Code Dev Containers (``REMOTE_CONTAINERS``).
    remote_containers: bool = False
    #: A terminal inside VS Code connected to a remote (``VSCODE_IPC_HOOK_CLI``); VS Code forwards ports.
    vscode_remote: bool = False


#: TEST-ONLY. A directory that stands in for ``/`` when the default detection reads ``/proc`` and the
#: container marker files, so subprocess tests can simulate WSL or a container on any machine. Never set
#: it outside tests: it only changes what the sign-in warns about, but it makes the warning wrong.
TEST_ROOT_ENV: Final = "CODEX_LOGIN_TEST_ROOT"


def _host_path(env: Mapping[str, str], path: str) -> str:
    root = env.get(TEST_ROOT_ENV, "")
    return os.path.join(root, path.lstrip("/")) if root else path


def _read_text(path: str, limit: int = 64 * 1024) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def _flag(env: Mapping[str, str], *names: str) -> bool:
    return any(env.get(name, "").strip() for name in names)


def _wsl_facts(env: Mapping[str, str], kernel: str | None) -> tuple[bool, int | None]:
    release = kernel or ""
    wsl = "microsoft" in release.lower() or _flag(env, "WSL_DISTRO_NAME")
    if not wsl:
        return False, None
    if "wsl2" in release.lower() or _flag(env, "WSL_INTEROP"):
        return True, 2
    return True, 1


_CGROUP_HINTS: Final = (
    ("kubepods", "kubernetes"),
    ("docker", "docker"),
    ("libpod", "podman"),
    ("podman", "podman"),
    ("lxc", "lxc"),
    ("containerd", "containerd"),
)


def _container(
    env: Mapping[str, str],
    dockerenv_exists: bool,
    containerenv_exists: bool,
    cgroup_text: str | None,
) -> str | None:
    if _flag(env, "KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if dockerenv_exists:
        return "docker"
    if containerenv_exists:
        return "podman"
    declared = env.get("container", "").strip().lower()
    # systemd's convention (podman, lxc, systemd-nspawn set it); flatpak shares the host network.
    if declared and declared != "flatpak":
        return declared[:32]
    text = (cgroup_text or "").lower()
    for hint, name in _CGROUP_HINTS:
        if hint in text:
            return name
    return None


def detect_environment(
    env: Mapping[str, str] = os.environ,
    *,
    platform: str | None = None,
    proc_version: str | None = None,
    dockerenv_exists: bool | None = None,
    containerenv_exists: bool | None = None,
    cgroup_text: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> EnvironmentInfo:
    """Detect the session from ``env`` (default ``os.environ``) and the other injectable facts.

    ``proc_version`` defaults to ``/proc/sys/kernel/osrelease`` (else ``/proc/version``),
    ``dockerenv_exists`` to ``/.dockerenv``, ``containerenv_exists`` to ``/run/.containerenv`` and
    ``cgroup_text`` to ``/proc/1/cgroup``; none of them is read off Linux. Tests of the console script
    may set ``CODEX_LOGIN_TEST_ROOT`` (test-only) in ``env`` to read those files under another directory.
    """
    platform = sys.platform if platform is None else platform
    linux = platform.startswith("linux")

    ssh = _flag(env, "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")

    wsl, wsl_version, wsl_opener, wsl_opener_path = False, None, None, None
    container = None
    if linux:
        if proc_version is None:
            proc_version = _read_text(_host_path(env, "/proc/sys/kernel/osrelease")) or _read_text(
                _host_path(env, "/proc/version")
            )
        wsl, wsl_version = _wsl_facts(env, proc_version)
        if wsl:
            for name, candidate in (
                ("wslview", "wslview"),
                ("powershell.exe", "powershell.exe"),
                ("powershell.exe", _WINDOWS_POWERSHELL),
            ):
                found = which(candidate)
                if found:
                    wsl_opener, wsl_opener_path = name, found
                    break
        if dockerenv_exists is None:
            dockerenv_exists = os.path.exists(_host_path(env, "/.dockerenv"))
        if containerenv_exists is None:
            containerenv_exists = os.path.exists(_host_path(env, "/run/.containerenv"))
        if cgroup_text is None and not (dockerenv_exists or containerenv_exists):
            cgroup_text = _read_text(_host_path(env, "/proc/1/cgroup"))
        container = _container(env, dockerenv_exists, containerenv_exists, cgroup_text)

    display_env = _flag(env, "DISPLAY", "WAYLAND_DISPLAY")
    browser = env.get("BROWSER", "")
    return EnvironmentInfo(
        platform=platform,
        ssh=ssh,
        wsl=wsl,
        wsl_version=wsl_version,
        wsl_opener=wsl_opener,
        wsl_opener_path=wsl_opener_path,
        container=container,
        display_env=display_env,
        display=display_env or platform in _DESKTOP_PLATFORMS,
        browser_env=browser if browser.strip() else None,
        codespaces=env.get("CODESPACES", "").strip().lower() == "true",
        remote_containers=_flag(env, "REMOTE_CONTAINERS"),
        vscode_remote=_flag(env, "VSCODE_IPC_HOOK_CLI"),
    )


# --------------------------------------------------------------------------------------------------
# Reachability


@dataclass(frozen=True)
class Reachability:
    """Whether the browser that completes sign-in is likely able to reach ``http://localhost:PORT``.

    ``reasons`` explain a ``likely_unreachable`` verdict (one short line each); ``notes`` are caveats that
    do not change it (WSL 2 forwarding, VS Code port forwarding); ``suggestion`` is what to do instead.
    """

    likely_unreachable: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    suggestion: str | None = None


def assess_callback_reachability(
    info: EnvironmentInfo, *, port: int = DEFAULT_CALLBACK_PORT, device_auth: bool = True
) -> Reachability:
    """Judge from ``info`` whether waiting for the browser callback can work, and what to suggest.

    ``device_auth`` False: suggest nothing that needs the device-code sign-in (the browser sign-in that
    ``--device-auth`` fell back to, because the issuer has none).
    """
    reasons: list[str] = []
    notes: list[str] = []
    forwarded_by_editor = info.vscode_remote or info.remote_containers or info.codespaces

    if info.ssh and not info.display_env:
        reasons.append(
            "this is an SSH session: the browser on your own computer cannot reach localhost on this machine"
        )
    if info.container and not info.display_env:
        reasons.append(
            f"this runs in a container ({info.container}): a browser outside it cannot reach localhost "
            "inside it unless the container shares the host network"
        )
    if not (info.ssh or info.container or info.display or info.wsl or info.browser_env):
        reasons.append("there is no graphical display here, so no browser can be opened on this machine")

    if forwarded_by_editor:
        where = "a Codespace" if info.codespaces else "a VS Code remote session"
        notes.append(
            f"this is {where}: VS Code usually forwards port {port} to your computer; if the browser cannot "
            "connect, forward it in the Ports view"
        )
        if info.codespaces:
            instead = "use --device-auth there" if device_auth else "paste the address the browser could not open"
            notes.append(f"the browser-based Codespaces editor cannot forward localhost; {instead}")
        reasons = []  # the editor's forwarding normally makes localhost work
    if info.wsl:
        if info.wsl_version == 2:
            notes.append(
                "this is WSL 2: the Windows browser reaches this server through WSL's localhost forwarding; "
                'if it cannot connect, enable localhostForwarding or networkingMode="mirrored" in .wslconfig'
            )
        if not info.wsl_opener and not info.browser_env:
            notes.append("neither wslview nor powershell.exe was found: open the URL in your Windows browser yourself")

    suggestion: str | None = None
    if reasons:
        options = ["run `codex-login --device-auth` instead"] if device_auth else []
        if info.ssh:
            options.append(
                f"forward the port from your computer with `ssh -L {port}:localhost:{port} <this host>` and "
                "open the URL there"
            )
        elif info.container:
            options.append("run the container with `--network host` and open the URL on the host")
        else:
            options.append("open the URL in a browser on this machine")
        options.append(
            "or, after signing in, copy the address the browser could not open "
            f"(http://localhost:{port}/auth/callback?...) and paste it here"
        )
        suggestion = "; ".join(options[:-1]) + "; " + options[-1]
        suggestion = suggestion[0].upper() + suggestion[1:]
    return Reachability(likely_unreachable=bool(reasons), reasons=reasons, notes=notes, suggestion=suggestion)


# --------------------------------------------------------------------------------------------------
# URL validation


class UnsafeBrowserURLError(ValueError):
    """The URL is not one we are willing to hand to a browser opener."""


# RFC 3986 characters without ' ( ) $ (never produced by our URL builders, meaningful to shells and
# PowerShell): letters, digits, - . _ ~ : / ? # [ ] @ ! & * + , ; = %
_URL_CHARS_RE: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!&*+,;=%]+")
_MAX_URL_LENGTH: Final = 16 * 1024
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "::1"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS or host.endswith(".localhost"):
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)


def validate_browser_url(url: str) -> str:
    """Return ``url`` if it is safe to hand to a browser opener, else raise :class:`UnsafeBrowserURLError`.

    Accepted: ``https`` URLs, and ``http`` only to a loopback host (a local test issuer); a host is
    required; no userinfo; only printable ASCII URL characters (no whitespace, controls, quotes,
    backslashes, ``$`` or parentheses); at most 16 KiB.
    """
    from urllib.parse import urlsplit

    if not url:
        raise UnsafeBrowserURLError("the URL is empty")
    if len(url) > _MAX_URL_LENGTH:
        raise UnsafeBrowserURLError("the URL is too long")
    if not _URL_CHARS_RE.fullmatch(url):
        raise UnsafeBrowserURLError(
            "the URL contains whitespace, control, quote or other characters that are not allowed"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise UnsafeBrowserURLError("the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeBrowserURLError("only https URLs are opened in a browser")
    if "@" in parts.netloc:
        raise UnsafeBrowserURLError("the URL carries user information (user@host)")
    if not host:
        raise UnsafeBrowserURLError("the URL has no host")
    if scheme == "http" and not _is_loopback(host):
        raise UnsafeBrowserURLError("only https URLs (or http to this machine) are opened in a browser")
    return url


# --------------------------------------------------------------------------------------------------
# Opening a browser


@dataclass(frozen=True)
class BrowserOpener:
    """How to open a URL.

    ``kind`` is ``webbrowser`` (Python's default opener), ``browser_env`` (the ``BROWSER`` convention:
    ``os.pathsep``-separated commands, tried in order, ``%s`` replaced by the URL or the URL appended), or
    ``command`` (``argv`` followed by one argument built from ``arg_template``, ``{url}`` replaced).
    """

    name: str
    kind: Literal["webbrowser", "browser_env", "command"]
    argv: tuple[str, ...] = ()
    arg_template: str = "{url}"
    browser_env: str | None = None


@dataclass(frozen=True)
class OpenResult:
    ok: bool
    opener_name: str
    error: str | None = None


def choose_browser_opener(info: EnvironmentInfo) -> BrowserOpener | None:
    """Pick how to open the sign-in URL here, or ``None`` when no browser can be opened.

    ``BROWSER`` wins; over SSH, the platform default only through a forwarded display, else nothing (a browser
    opened on the remote machine, a WSL host's Windows desktop included, is not the person's: gh #13445); on
    WSL, ``wslview`` or ``powershell.exe Start-Process``; otherwise the platform default when a display exists.
    """
    if info.browser_env:
        return BrowserOpener(name="BROWSER", kind="browser_env", browser_env=info.browser_env)
    if info.ssh:
        # Only a forwarded display (ssh -X) is on the person's screen; a WSL opener would use the host's.
        return BrowserOpener(name="webbrowser", kind="webbrowser") if info.display_env else None
    if info.wsl and info.wsl_opener and info.wsl_opener_path:
        if info.wsl_opener == "wslview":
            return BrowserOpener(name="wslview", kind="command", argv=(info.wsl_opener_path,))
        return BrowserOpener(
            name="powershell.exe",
            kind="command",
            argv=(info.wsl_opener_path, "-NoProfile", "-NonInteractive", "-Command"),
            arg_template="Start-Process '{url}'",
        )
    if info.display:
        return BrowserOpener(name="webbrowser", kind="webbrowser")
    return None


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip().splitlines()
    line = text[0] if text else ""
    line = re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", line)
    return line[:200]


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for a still-running opener in the background so it never becomes a zombie."""
    import threading

    from ._threads import start_thread

    def wait() -> None:
        with contextlib.suppress(OSError, ValueError):
            process.communicate()

    start_thread(threading.Thread(target=wait, name="codex-login-browser-reaper", daemon=True))


def _command_label(template: str) -> str:
    """The command a ``BROWSER`` entry or opener names, as errors name it: the template's first word, before
    ``%s`` became the URL (``BROWSER='%s'`` would otherwise make the authorize URL the command's name)."""
    import shlex

    try:
        words = shlex.split(template)
    except ValueError:
        words = template.split()
    return os.path.basename(words[0]) if words else "the command"


def _run_command(
    argv: Sequence[str], name: str, wait_seconds: float, *, inherit_stdio: bool, label: str, url: str
) -> OpenResult:
    """Run an opener. Its errors say ``label`` (never ``argv``, which holds the authorize URL) and have any
    echo of ``url`` in the command's stderr replaced: they are logged (security R-3: no state, no challenge)."""
    import subprocess

    try:
        if inherit_stdio:
            process = subprocess.Popen(list(argv), close_fds=True)
        else:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
    except OSError as exc:
        reason = (exc.strerror or str(exc)).replace(url, "<url>")
        return OpenResult(False, name, f"could not run {label}: {reason}")
    try:
        _, stderr = process.communicate(timeout=wait_seconds)
    except subprocess.TimeoutExpired:
        _reap(process)
        return OpenResult(True, name)  # still running: the browser (or its launcher) took the URL
    if process.returncode == 0:
        return OpenResult(True, name)
    detail = _first_line((stderr or b"").replace(url.encode(), b"<url>"))
    error = f"{label} exited with status {process.returncode}"
    return OpenResult(False, name, f"{error}: {detail}" if detail else error)


def _browser_env_argv(entry: str, url: str) -> list[str]:
    import shlex

    if "%s" in entry:
        try:
            words = shlex.split(entry)
        except ValueError:
            words = entry.split()
        return [word.replace("%s", url) for word in words]
    if any(c.isspace() for c in entry) and not os.path.exists(entry):
        try:
            return [*shlex.split(entry), url]  # "command --flag": Python's webbrowser would fail here
        except ValueError:
            pass
    return [entry, url]  # what Python's webbrowser does with a BROWSER entry it does not know


def _open_browser_env(browser_env: str, url: str, wait_seconds: float) -> OpenResult:
    entries = [entry.strip() for entry in browser_env.split(os.pathsep) if entry.strip()]
    errors: list[str] = []
    for entry in entries:
        background = entry.endswith("&")
        template = entry.rstrip("&").strip()
        argv = _browser_env_argv(template, url)
        if not argv:
            continue
        result = _run_command(
            argv,
            "BROWSER",
            0.0 if background else wait_seconds,
            inherit_stdio=True,
            label=_command_label(template),
            url=url,
        )
        if result.ok:
            return result
        errors.append(result.error or "failed")
    return OpenResult(False, "BROWSER", "; ".join(errors) or "BROWSER names no command")


def _open_webbrowser(url: str, wait_seconds: float) -> OpenResult:
    import threading

    from ._threads import start_thread

    verdict: list[bool | BaseException] = []

    def run() -> None:
        try:
            import webbrowser

            verdict.append(webbrowser.open(url))
        except Exception as exc:  # a broken opener must not break the sign-in
            verdict.append(exc)

    thread = threading.Thread(target=run, name="codex-login-browser", daemon=True)
    start_thread(thread)
    thread.join(wait_seconds)
    if not verdict:
        return OpenResult(True, "webbrowser")  # still running after the wait: treat as opened
    outcome = verdict[0]
    if outcome is True:
        return OpenResult(True, "webbrowser")
    if isinstance(outcome, BaseException):
        # The exception text may quote the URL it was given.
        return OpenResult(False, "webbrowser", f"{type(outcome).__name__}: {outcome}".replace(url, "<url>")[:200])
    return OpenResult(False, "webbrowser", "no runnable browser was found")


def open_browser(url: str, opener: BrowserOpener | None, *, wait_seconds: float = OPEN_WAIT_SECONDS) -> OpenResult:
    """Open ``url`` with ``opener``; never blocks for much longer than ``wait_seconds``.

    The URL is validated first (:func:`validate_browser_url`); a refused URL is never handed to any
    opener. A command that is still running after ``wait_seconds`` counts as opened (Python's
    ``webbrowser`` and many ``BROWSER`` commands block until the browser exits).
    """
    name = opener.name if opener else "none"
    try:
        validate_browser_url(url)
    except UnsafeBrowserURLError as exc:
        return OpenResult(False, name, f"refused to open the URL: {exc}")
    if opener is None:
        return OpenResult(False, name, "no way to open a browser was found here")
    if opener.kind == "browser_env":
        return _open_browser_env(opener.browser_env or "", url, wait_seconds)
    if opener.kind == "command":
        if not opener.argv:
            return OpenResult(False, name, "the opener has no command")
        argv = [*opener.argv, opener.arg_template.replace("{url}", url)]
        return _run_command(
            argv, name, wait_seconds, inherit_stdio=False, label=os.path.basename(opener.argv[0]), url=url
        )
    return _open_webbrowser(url, wait_seconds)
