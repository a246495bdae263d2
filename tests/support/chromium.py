"""Launching Debian's Chromium for tests: flags, a throwaway profile, and a Playwright helper.

Shared by ``browser_agent.py`` (the ``BROWSER`` command the CLI runs) and by any test that drives
Chromium directly. Never run ``playwright install``: Playwright for Python drives the system Chromium
through ``executable_path``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

#: Where Debian's ``chromium`` package puts the browser; ``E2E_CHROMIUM`` overrides it.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Flags that work as root with no network and no display. ``--headless`` is listed for direct
#: command-line use; Playwright adds its own headless switch (see :func:`playwright_args`).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Not from the environment's *_PROXY: tests only ever talk to loopback servers.
    "--no-proxy-server",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--password-store=basic",
    "--use-mock-keychain",
)

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def chromium_path() -> str:
    """The Chromium executable to use (``E2E_CHROMIUM`` or ``/usr/bin/chromium``)."""
    return os.environ.get("E2E_CHROMIUM", DEFAULT_CHROMIUM)


def require_chromium() -> str:
    """Return the Chromium path, or raise with an actionable message (tests must never skip)."""
    path = chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"Chromium not found at {path}. Install Debian's package: "
            "apt-get install -y --no-install-recommends chromium fonts-dejavu-core "
            "(scripts/test does this), or point E2E_CHROMIUM at a Chromium binary."
        )
    return path


def playwright_args() -> list[str]:
    """Chromium flags for Playwright's ``launch*(args=...)`` (Playwright adds the headless switch)."""
    return [flag for flag in CHROMIUM_FLAGS if flag != "--headless"]


@dataclass(frozen=True)
class ChromiumProfile:
    """A throwaway browser profile: its own user-data dir and a private HOME/XDG tree."""

    root: Path

    @property
    def user_data_dir(self) -> Path:
        return self.root / "user-data"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for the browser process: HOME and XDG dirs point inside the profile."""
        env = dict(os.environ if base is None else base)
        env.update(
            {
                "HOME": str(self.home),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_CACHE_HOME": str(self.home / ".cache"),
                "XDG_DATA_HOME": str(self.home / ".local" / "share"),
                "XDG_RUNTIME_DIR": str(self.home / "runtime"),
            }
        )
        # The browser only talks to loopback servers; it must not pick up a proxy from the environment.
        for key in list(env):
            if key.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
                del env[key]
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def command(self, *extra: str) -> list[str]:
        """A full command line for running Chromium directly (e.g. ``--screenshot``)."""
        return [
            require_chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.user_data_dir}",
            *extra,
        ]


def make_profile(parent: str | os.PathLike[str] | None = None) -> ChromiumProfile:
    """Create a fresh profile directory (under ``parent`` or the system temp dir)."""
    root = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=parent))
    profile = ChromiumProfile(root)
    for directory in (
        profile.user_data_dir,
        profile.home / ".config",
        profile.home / ".cache",
        profile.home / ".local" / "share",
        profile.home / "runtime",
    ):
        directory.mkdir(parents=True, exist_ok=True)
    (profile.home / "runtime").chmod(0o700)
    return profile


@contextmanager
def throwaway_profile(parent: str | os.PathLike[str] | None = None) -> Iterator[ChromiumProfile]:
    """A profile that is deleted afterwards."""
    profile = make_profile(parent)
    try:
        yield profile
    finally:
        shutil.rmtree(profile.root, ignore_errors=True)


def launch_context(
    playwright: Playwright,
    profile: ChromiumProfile,
    *,
    timeout_ms: float = 30_000,
    **kwargs: Any,
) -> BrowserContext:
    """Launch headless system Chromium with a persistent (throwaway) profile via Playwright."""
    env: dict[str, str | float | bool] = dict(profile.env())
    return playwright.chromium.launch_persistent_context(
        str(profile.user_data_dir),
        executable_path=require_chromium(),
        headless=True,
        args=playwright_args(),
        env=env,
        timeout=timeout_ms,
        ignore_https_errors=False,
        **kwargs,
    )


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs whose host is localhost, 127.0.0.1 or ::1."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and (parts.hostname or "") in LOOPBACK_HOSTS
