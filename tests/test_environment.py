"""Environment detection, callback reachability, browser opener choice and open_browser."""

from __future__ import annotations

import os
import stat
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from codex_login.environment import (
    BrowserOpener,
    EnvironmentInfo,
    UnsafeBrowserURLError,
    assess_callback_reachability,
    choose_browser_opener,
    detect_environment,
    open_browser,
    validate_browser_url,
)

AUTH_URL = (
    "https://auth.openai.com/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann"
    "&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback&scope=openid%20profile%20email%20"
    "offline_access&code_challenge=abc-_DEF&code_challenge_method=S256&state=xyz_123"
)
WSL2_RELEASE = "5.15.167.4-microsoft-standard-WSL2"
WSL1_RELEASE = "4.4.0-19041-Microsoft"
DEBIAN_RELEASE = "6.1.0-18-amd64"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses /bin/sh scripts")


def recording_open(calls: list[str]) -> Callable[..., bool]:
    def fake_open(url: str, *args: object, **kwargs: object) -> bool:
        calls.append(url)
        return True

    return fake_open


def no_which(_: str) -> str | None:
    return None


def which_of(found: Mapping[str, str]) -> Callable[[str], str | None]:
    return lambda name: found.get(name)


def linux(env: Mapping[str, str] | None = None, **overrides: object) -> EnvironmentInfo:
    """Detection on a simulated plain Linux box (nothing read from this machine)."""
    kwargs: dict[str, object] = {
        "platform": "linux",
        "proc_version": DEBIAN_RELEASE,
        "dockerenv_exists": False,
        "containerenv_exists": False,
        "cgroup_text": "0::/\n",
        "which": no_which,
    }
    kwargs.update(overrides)
    return detect_environment(dict(env or {}), **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Detection


def test_plain_headless_linux() -> None:
    info = linux()
    assert info == EnvironmentInfo(platform="linux")
    assert not info.ssh and not info.wsl and info.container is None and not info.display


@pytest.mark.parametrize(
    ("name", "value"),
    [("SSH_CONNECTION", "10.0.0.2 51234 10.0.0.5 22"), ("SSH_CLIENT", "10.0.0.2 51234 22"), ("SSH_TTY", "/dev/pts/1")],
)
def test_ssh_detected(name: str, value: str) -> None:
    assert linux({name: value}).ssh
    assert not linux({name: "  "}).ssh


def test_wsl2_detected_from_kernel_release() -> None:
    info = linux(proc_version=WSL2_RELEASE, which=which_of({"wslview": "/usr/bin/wslview"}))
    assert info.wsl and info.wsl_version == 2
    assert info.wsl_opener == "wslview"
    assert info.wsl_opener_path == "/usr/bin/wslview"


def test_wsl1_and_wsl_interop() -> None:
    assert linux(proc_version=WSL1_RELEASE).wsl_version == 1
    assert linux({"WSL_INTEROP": "/run/WSL/8_interop"}, proc_version=WSL1_RELEASE).wsl_version == 2
    full = "Linux version 5.15.167.4-microsoft-standard-WSL2 (root@host) (gcc) #1 SMP"
    assert linux(proc_version=full).wsl_version == 2


def test_wsl_from_distro_name_when_proc_is_unreadable() -> None:
    info = linux({"WSL_DISTRO_NAME": "Ubuntu"}, proc_version="")
    assert info.wsl


def test_not_wsl() -> None:
    info = linux(proc_version=DEBIAN_RELEASE, which=which_of({"wslview": "/usr/bin/wslview"}))
    assert not info.wsl and info.wsl_version is None and info.wsl_opener is None
    assert not detect_environment({}, platform="darwin", proc_version=WSL2_RELEASE, which=no_which).wsl


def test_wsl_opener_falls_back_to_powershell() -> None:
    exe = "/mnt/c/WINDOWS/System32/WindowsPowerShell/v1.0/powershell.exe"
    info = linux(proc_version=WSL2_RELEASE, which=which_of({"powershell.exe": exe}))
    assert (info.wsl_opener, info.wsl_opener_path) == ("powershell.exe", exe)
    fixed = "/mnt/c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe"
    info = linux(proc_version=WSL2_RELEASE, which=which_of({fixed: fixed}))
    assert (info.wsl_opener, info.wsl_opener_path) == ("powershell.exe", fixed)
    assert linux(proc_version=WSL2_RELEASE).wsl_opener is None


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        ({}, {"dockerenv_exists": True}, "docker"),
        ({}, {"containerenv_exists": True}, "podman"),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, {"dockerenv_exists": True}, "kubernetes"),
        ({}, {"cgroup_text": "12:pids:/docker/3f9c1a2b\n"}, "docker"),
        ({}, {"cgroup_text": "11:memory:/kubepods/burstable/pod1\n"}, "kubernetes"),
        ({}, {"cgroup_text": "1:name=systemd:/machine.slice/libpod-1.scope\n"}, "podman"),
        ({"container": "systemd-nspawn"}, {}, "systemd-nspawn"),
        ({"container": "flatpak"}, {}, None),
        ({}, {"cgroup_text": "0::/\n"}, None),
    ],
)
def test_container_detection(env: dict[str, str], overrides: dict[str, object], expected: str | None) -> None:
    assert linux(env, **overrides).container == expected


def test_display_detection() -> None:
    assert not linux().display
    assert linux({"DISPLAY": ":0"}).display
    info = linux({"WAYLAND_DISPLAY": "wayland-0"})
    assert info.display and info.display_env
    for platform in ("darwin", "win32"):
        info = detect_environment({}, platform=platform, which=no_which)
        assert info.display and not info.display_env
        assert info.container is None


def test_browser_and_editor_hints() -> None:
    info = linux(
        {
            "BROWSER": "/home/u/.vscode-server/bin/x/helpers/browser.sh",
            "CODESPACES": "true",
            "REMOTE_CONTAINERS": "true",
            "VSCODE_IPC_HOOK_CLI": "/tmp/vscode-ipc-1.sock",
        }
    )
    assert info.browser_env == "/home/u/.vscode-server/bin/x/helpers/browser.sh"
    assert info.codespaces and info.remote_containers and info.vscode_remote
    assert linux({"BROWSER": ""}).browser_env is None
    assert not linux({"CODESPACES": "false"}).codespaces


def test_detection_on_this_machine_does_not_crash() -> None:
    info = detect_environment()
    assert info.platform == sys.platform
    assert isinstance(info.wsl, bool)


# --------------------------------------------------------------------------------------------------
# Reachability


def test_ssh_session_is_likely_unreachable() -> None:
    verdict = assess_callback_reachability(linux({"SSH_CONNECTION": "1 2 3 4"}))
    assert verdict.likely_unreachable
    assert verdict.reasons == [
        "this is an SSH session: the browser on your own computer cannot reach localhost on this machine"
    ]
    assert verdict.suggestion is not None
    assert "codex-login --device-auth" in verdict.suggestion
    assert "ssh -L 1455:localhost:1455" in verdict.suggestion
    assert "paste" in verdict.suggestion


def test_ssh_suggestion_names_the_port() -> None:
    verdict = assess_callback_reachability(linux({"SSH_TTY": "/dev/pts/0"}), port=1457)
    assert verdict.suggestion is not None
    assert "ssh -L 1457:localhost:1457" in verdict.suggestion
    assert "http://localhost:1457/auth/callback" in verdict.suggestion


def test_ssh_with_x_forwarding_is_fine() -> None:
    verdict = assess_callback_reachability(linux({"SSH_CONNECTION": "1 2 3 4", "DISPLAY": "localhost:10.0"}))
    assert not verdict.likely_unreachable
    assert verdict.suggestion is None


def test_vscode_remote_forwards_the_port() -> None:
    env = {"SSH_CONNECTION": "1 2 3 4", "VSCODE_IPC_HOOK_CLI": "/tmp/x.sock", "BROWSER": "/x/browser.sh"}
    verdict = assess_callback_reachability(linux(env))
    assert not verdict.likely_unreachable
    assert any("forwards port 1455" in note for note in verdict.notes)


def test_container_is_likely_unreachable() -> None:
    verdict = assess_callback_reachability(linux(dockerenv_exists=True))
    assert verdict.likely_unreachable
    assert "container (docker)" in verdict.reasons[0]
    assert verdict.suggestion is not None
    assert "--network host" in verdict.suggestion
    assert "--device-auth" in verdict.suggestion


@pytest.mark.parametrize(
    ("env", "first"),
    [
        ({"SSH_CONNECTION": "1 2 3 4"}, "Forward the port from your computer with `ssh -L 1455:localhost:1455"),
        ({}, "Open the URL in a browser on this machine; or, after signing in, copy the address"),
    ],
    ids=["ssh", "no_display"],
)
def test_without_device_auth_the_suggestion_starts_with_what_remains(env: dict[str, str], first: str) -> None:
    """After ``--device-auth`` fell back to the browser (the issuer has no device sign-in), nothing suggests it."""
    verdict = assess_callback_reachability(linux(env), device_auth=False)
    assert verdict.likely_unreachable
    assert verdict.suggestion is not None and verdict.suggestion.startswith(first)
    assert "device" not in verdict.suggestion and "paste it here" in verdict.suggestion
    container = assess_callback_reachability(linux(dockerenv_exists=True), device_auth=False)
    assert container.suggestion is not None and container.suggestion.startswith("Run the container with `--network")
    assert "device" not in container.suggestion
    codespace = linux({"CODESPACES": "true", "BROWSER": "/x/browser.sh"})
    assert any("use --device-auth there" in note for note in assess_callback_reachability(codespace).notes)
    notes = assess_callback_reachability(codespace, device_auth=False).notes
    assert notes and not any("device" in note for note in notes)
    assert any("paste the address the browser could not open" in note for note in notes)


def test_headless_box_is_likely_unreachable() -> None:
    verdict = assess_callback_reachability(linux())
    assert verdict.likely_unreachable
    assert "no graphical display" in verdict.reasons[0]
    assert verdict.suggestion is not None
    assert "open the URL in a browser on this machine" in verdict.suggestion


def test_headless_with_browser_command_is_fine() -> None:
    assert not assess_callback_reachability(linux({"BROWSER": "true"})).likely_unreachable


def test_desktop_sessions_are_fine() -> None:
    for info in (linux({"DISPLAY": ":0"}), detect_environment({}, platform="darwin", which=no_which)):
        verdict = assess_callback_reachability(info)
        assert not verdict.likely_unreachable
        assert verdict.reasons == [] and verdict.notes == [] and verdict.suggestion is None


def test_wsl_notes() -> None:
    verdict = assess_callback_reachability(
        linux(proc_version=WSL2_RELEASE, which=which_of({"wslview": "/usr/bin/wslview"}))
    )
    assert not verdict.likely_unreachable
    assert any("WSL 2" in note for note in verdict.notes)
    verdict = assess_callback_reachability(linux(proc_version=WSL2_RELEASE))
    assert any("neither wslview nor powershell.exe" in note for note in verdict.notes)


# --------------------------------------------------------------------------------------------------
# Opener choice


def test_browser_variable_wins() -> None:
    for info in (
        linux({"BROWSER": "w3m"}),
        linux({"BROWSER": "w3m", "SSH_TTY": "/dev/pts/0"}),
        linux({"BROWSER": "w3m"}, proc_version=WSL2_RELEASE, which=which_of({"wslview": "/usr/bin/wslview"})),
    ):
        assert choose_browser_opener(info) == BrowserOpener(name="BROWSER", kind="browser_env", browser_env="w3m")


def test_wsl_openers() -> None:
    opener = choose_browser_opener(linux(proc_version=WSL2_RELEASE, which=which_of({"wslview": "/usr/bin/wslview"})))
    assert opener == BrowserOpener(name="wslview", kind="command", argv=("/usr/bin/wslview",))
    ps = "/mnt/c/WINDOWS/System32/WindowsPowerShell/v1.0/powershell.exe"
    opener = choose_browser_opener(linux(proc_version=WSL2_RELEASE, which=which_of({"powershell.exe": ps})))
    assert opener is not None
    assert opener.name == "powershell.exe"
    assert opener.argv == (ps, "-NoProfile", "-NonInteractive", "-Command")
    assert opener.arg_template == "Start-Process '{url}'"


def test_no_wsl_opener_over_ssh() -> None:
    # Over SSH into WSL the Windows desktop is the remote machine's, not the person's (gh #13445): wslview
    # ran there while the terminal said the browser could not reach localhost.
    wsl = {"proc_version": WSL2_RELEASE, "which": which_of({"wslview": "/usr/bin/wslview"})}
    assert choose_browser_opener(linux({"SSH_CONNECTION": "1 2 3 4", "SSH_TTY": "/dev/pts/0"}, **wsl)) is None
    forwarded = choose_browser_opener(linux({"SSH_CONNECTION": "1 2 3 4", "DISPLAY": "localhost:10.0"}, **wsl))
    assert forwarded == BrowserOpener(name="webbrowser", kind="webbrowser")  # ssh -X: the person's own screen


def test_wsl_without_opener() -> None:
    assert choose_browser_opener(linux(proc_version=WSL2_RELEASE)) is None
    wslg = choose_browser_opener(linux({"DISPLAY": ":0"}, proc_version=WSL2_RELEASE))
    assert wslg is not None and wslg.kind == "webbrowser"


def test_default_opener_needs_a_display() -> None:
    opener = choose_browser_opener(linux({"DISPLAY": ":0"}))
    assert opener == BrowserOpener(name="webbrowser", kind="webbrowser")
    assert choose_browser_opener(linux()) is None
    assert choose_browser_opener(linux({"SSH_CONNECTION": "1 2 3 4"})) is None
    mac_over_ssh = detect_environment({"SSH_CONNECTION": "1 2 3 4"}, platform="darwin", which=no_which)
    assert choose_browser_opener(mac_over_ssh) is None
    mac = detect_environment({}, platform="darwin", which=no_which)
    assert choose_browser_opener(mac) == BrowserOpener(name="webbrowser", kind="webbrowser")


# --------------------------------------------------------------------------------------------------
# URL validation


@pytest.mark.parametrize(
    "url",
    [
        AUTH_URL,
        "https://auth.openai.com/",
        "http://127.0.0.1:5555/oauth/authorize?client_id=x&state=y",
        "http://localhost:1455/auth/callback",
        "http://[::1]:1455/",
        "https://example.com:8443/a/b;c?d=e#f",
    ],
)
def test_validate_accepts(url: str) -> None:
    assert validate_browser_url(url) == url


REFUSED = [
    "",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "ftp://example.com/",
    "data:text/html,hi",
    "http://evil.example/authorize",
    "http://192.168.1.10:1455/",
    "https://user:pass@auth.openai.com/",
    "https://auth.openai.com@evil.example/",
    "https:///no-host",
    "https://auth.openai.com/ a",
    "https://auth.openai.com/\ta",
    "https://auth.openai.com/\x1b[2J",
    "https://auth.openai.com/\r\nInjected: 1",
    "https://auth.openai.com/\x00",
    "https://auth.openai.com/'; calc.exe; '",
    'https://auth.openai.com/"',
    "https://auth.openai.com/$(id)",
    "https://auth.openai.com/`id`",
    "https://auth.openai.com\\@evil.example/",
    "https://auth.openai.com/\u2019",
    "https://\u0430uth.openai.com/",
    "https://auth.openai.com:99999/",
    "https://[::1/",
    "https://auth.openai.com/" + "a" * 20000,
]


@pytest.mark.parametrize("url", REFUSED, ids=range(len(REFUSED)))
def test_validate_refuses(url: str) -> None:
    with pytest.raises(UnsafeBrowserURLError):
        validate_browser_url(url)


@pytest.mark.parametrize("url", REFUSED, ids=range(len(REFUSED)))
def test_open_browser_never_hands_a_refused_url_to_an_opener(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(webbrowser, "open", recording_open(calls))
    result = open_browser(url, BrowserOpener(name="webbrowser", kind="webbrowser"))
    assert not result.ok
    assert result.opener_name == "webbrowser"
    assert result.error is not None and result.error.startswith("refused to open the URL")
    assert calls == []
    script, record = recorder(tmp_path)
    result = open_browser(url, BrowserOpener(name="BROWSER", kind="browser_env", browser_env=str(script)))
    assert not result.ok
    assert not record.exists()


# --------------------------------------------------------------------------------------------------
# Opening


def write_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def recorder(tmp_path: Path, name: str = "record.sh") -> tuple[Path, Path]:
    record = tmp_path / f"{name}.args"
    script = write_script(tmp_path / name, f'for a in "$@"; do printf "%s\\n" "$a"; done > "{record}"\n')
    return script, record


def browser_opener_for(browser: str) -> BrowserOpener:
    opener = choose_browser_opener(linux({"BROWSER": browser}))
    assert opener is not None
    return opener


@posix_only
def test_browser_variable_gets_the_exact_url(tmp_path: Path) -> None:
    script, record = recorder(tmp_path)
    result = open_browser(AUTH_URL, browser_opener_for(str(script)))
    assert result.ok and result.opener_name == "BROWSER" and result.error is None
    assert record.read_text(encoding="utf-8") == AUTH_URL + "\n"


@posix_only
def test_browser_variable_with_percent_s_and_flags(tmp_path: Path) -> None:
    script, record = recorder(tmp_path)
    result = open_browser(AUTH_URL, browser_opener_for(f"{script} --new-window %s --end"))
    assert result.ok
    assert record.read_text(encoding="utf-8").splitlines() == ["--new-window", AUTH_URL, "--end"]
    record.unlink()
    assert open_browser(AUTH_URL, browser_opener_for(f"{script} --flag")).ok
    assert record.read_text(encoding="utf-8").splitlines() == ["--flag", AUTH_URL]


@posix_only
def test_browser_variable_failure_is_reported(tmp_path: Path) -> None:
    failing = write_script(tmp_path / "fail.sh", "exit 1\n")
    result = open_browser(AUTH_URL, browser_opener_for(str(failing)))
    assert not result.ok
    assert result.opener_name == "BROWSER"
    assert result.error is not None and "fail.sh exited with status 1" in result.error


@posix_only
def test_browser_variable_tries_each_entry(tmp_path: Path) -> None:
    failing = write_script(tmp_path / "fail.sh", "exit 3\n")
    script, record = recorder(tmp_path)
    result = open_browser(AUTH_URL, browser_opener_for(f"{failing}{os.pathsep}{script}"))
    assert result.ok
    assert record.read_text(encoding="utf-8") == AUTH_URL + "\n"


def test_browser_variable_missing_command(tmp_path: Path) -> None:
    result = open_browser(AUTH_URL, browser_opener_for(str(tmp_path / "no-such-browser")))
    assert not result.ok
    assert result.error is not None and "could not run no-such-browser" in result.error


def test_browser_entry_of_only_percent_s_keeps_the_url_out_of_the_error() -> None:
    # BROWSER='%s': the URL becomes argv[0]; the error (which is logged) named argv[0], i.e. the authorize URL
    # with its state and code_challenge. It names the configured template instead.
    result = open_browser(AUTH_URL, browser_opener_for("%s"))
    assert not result.ok
    assert result.error == "could not run %s: No such file or directory"


@posix_only
def test_command_opener_stderr_echo_of_the_url_is_replaced(tmp_path: Path) -> None:
    script = write_script(tmp_path / "wslview", 'echo "cannot open $1" >&2\nexit 2\n')
    info = linux(proc_version=WSL2_RELEASE, which=which_of({"wslview": str(script)}))
    result = open_browser(AUTH_URL, choose_browser_opener(info))
    assert not result.ok
    assert result.error == "wslview exited with status 2: cannot open <url>"


@posix_only
def test_blocking_browser_command_counts_as_opened(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    slow = write_script(tmp_path / "slow.sh", f': > "{marker}"\nexec sleep 3\n')
    started = time.monotonic()
    result = open_browser(AUTH_URL, browser_opener_for(str(slow)), wait_seconds=0.5)
    assert time.monotonic() - started < 2.5
    assert result.ok and result.error is None


@posix_only
def test_command_opener_like_wslview(tmp_path: Path) -> None:
    script, record = recorder(tmp_path, "wslview")
    info = linux(proc_version=WSL2_RELEASE, which=which_of({"wslview": str(script)}))
    result = open_browser(AUTH_URL, choose_browser_opener(info))
    assert result.ok and result.opener_name == "wslview"
    assert record.read_text(encoding="utf-8") == AUTH_URL + "\n"


@posix_only
def test_command_opener_like_powershell(tmp_path: Path) -> None:
    script, record = recorder(tmp_path, "powershell.exe")
    info = linux(proc_version=WSL2_RELEASE, which=which_of({"powershell.exe": str(script)}))
    result = open_browser(AUTH_URL, choose_browser_opener(info))
    assert result.ok and result.opener_name == "powershell.exe"
    assert record.read_text(encoding="utf-8").splitlines() == [
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        f"Start-Process '{AUTH_URL}'",
    ]


@posix_only
def test_command_opener_failure_shows_sanitised_stderr(tmp_path: Path) -> None:
    failing = write_script(tmp_path / "wslview", "printf 'boom\\033[31m red\\n' >&2\nexit 2\n")
    opener = BrowserOpener(name="wslview", kind="command", argv=(str(failing),))
    result = open_browser(AUTH_URL, opener)
    assert not result.ok and result.opener_name == "wslview"
    assert result.error is not None
    assert result.error.startswith("wslview exited with status 2: boom")
    assert "\x1b" not in result.error


def test_webbrowser_opener(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(webbrowser, "open", recording_open(calls))
    result = open_browser(AUTH_URL, BrowserOpener(name="webbrowser", kind="webbrowser"))
    assert result.ok and result.opener_name == "webbrowser" and calls == [AUTH_URL]

    monkeypatch.setattr(webbrowser, "open", lambda u, *a, **k: False)
    result = open_browser(AUTH_URL, BrowserOpener(name="webbrowser", kind="webbrowser"))
    assert not result.ok and result.error == "no runnable browser was found"

    def broken(url: str, *args: object, **kwargs: object) -> bool:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "open", broken)
    result = open_browser(AUTH_URL, BrowserOpener(name="webbrowser", kind="webbrowser"))
    assert not result.ok and result.error is not None and "could not locate runnable browser" in result.error


def test_webbrowser_that_blocks_counts_as_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def blocking(url: str, *args: object, **kwargs: object) -> bool:
        release.wait(10)
        return True

    monkeypatch.setattr(webbrowser, "open", blocking)
    started = time.monotonic()
    result = open_browser(AUTH_URL, BrowserOpener(name="webbrowser", kind="webbrowser"), wait_seconds=0.2)
    release.set()
    assert time.monotonic() - started < 2
    assert result.ok


def test_no_opener() -> None:
    result = open_browser(AUTH_URL, None)
    assert not result.ok and result.opener_name == "none" and result.error is not None
