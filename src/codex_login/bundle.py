"""``codex-login bundle``: one zip for support, built only from what may leave the machine (security R-11).

Members (all UTF-8 text):

* ``log/attempts.log``: the raw log lines of the last :data:`BUNDLE_ATTEMPTS` attempts, as written (the
  log is redacted when it is written; see DECISIONS §4);
* ``log/timeline.json``: the same attempts as timelines (what ``codex-login log --json`` prints);
* ``doctor.json``: the doctor report;
* ``versions.json``: codex-login, Python, the OS and the HTTP/keyring libraries;
* ``environment.json``: session facts (SSH, WSL, container, display), the NAMES of the proxy and CA
  variables that are set (never their values), and a configuration summary (workspace IDs hashed);
* ``credentials.json``: credential metadata only: the store, whether credentials are present, the auth
  mode, the access token's expiry, the last refresh and the account ID as ``sha256[:8]``;
* ``manifest.json``: what is included, what was left out and why.

Before anything is written, every member is scanned for secret-shaped text (:func:`scan_text`): JWTs,
``sk-`` API keys, ``code=``/``state=``/token query values that are not ``<redacted>``, ``Authorization``
headers and ``Bearer`` credentials, and anything :func:`~codex_login.diagnostics.redact.scrub_patterns`
would mask. A hit refuses the whole bundle; the refusal names the member and the pattern class, never the
value. The archive is written with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and mode 0600 (never over an existing
file, never through a symlink).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from . import __version__
from .config import Config
from .diagnostics.redact import sanitize_url_for_logging, scrub_patterns
from .diagnostics.timeline import Attempt, load_attempts

if TYPE_CHECKING:
    from .doctor import DoctorReport

__all__ = [
    "BUNDLE_ATTEMPTS",
    "BUNDLE_FORMAT",
    "PROXY_AND_CA_VARIABLES",
    "Bundle",
    "LeftOut",
    "Member",
    "SecretHit",
    "build_bundle",
    "default_bundle_name",
    "scan_bundle",
    "scan_text",
    "write_bundle",
]

BUNDLE_FORMAT: Final = "codex-login-bundle/1"
BUNDLE_ATTEMPTS: Final = 5
#: Lines kept per attempt: an attempt flooded with rejected requests must not make the bundle huge.
MAX_LINES_PER_ATTEMPT: Final = 2000

PROXY_AND_CA_VARIABLES: Final = (
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
    "CODEX_CA_CERTIFICATE", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
SESSION_VARIABLES: Final = (
    "CODEX_HOME", "BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY",
    "WSL_DISTRO_NAME", "WSL_INTEROP", "CODESPACES", "REMOTE_CONTAINERS", "VSCODE_IPC_HOOK_CLI",
    "KUBERNETES_SERVICE_HOST", "container", "RUST_LOG", "NO_COLOR", "PYTHON_KEYRING_BACKEND",
)

# Secret-shaped text, by class. Only the class name is ever reported.
_QUERY_KEYS: Final = (
    "code|state|code_verifier|access_token|refresh_token|id_token|api_key|client_secret|device_code|"
    "device_auth_id|user_code|subject_token|token|password"
)
SECRET_PATTERNS: Final = (
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_+/=-]*")),
    ("api_key", re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{8,}")),
    (
        "query_secret",
        re.compile(
            rf"(?i)(?<![A-Za-z0-9_.-])(?:{_QUERY_KEYS})=(?!<redacted|%3Credacted)[^\s&\"'<>,;)]+"
        ),
    ),
    ("authorization_header", re.compile(r"(?i)\b(?:proxy-)?authorization\s*:\s*\S+")),
    ("bearer_credential", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{6,}=*")),
)


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes = field(repr=False)
    description: str


@dataclass(frozen=True)
class LeftOut:
    what: str
    why: str


@dataclass(frozen=True)
class SecretHit:
    """A refusal reason: which member, which pattern class. Never the matched text."""

    member: str
    pattern: str


@dataclass
class Bundle:
    members: list[Member]
    left_out: list[LeftOut]
    created: datetime
    #: One line per member for the preview (what it holds, in numbers).
    summaries: dict[str, str] = field(default_factory=dict)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def preview_lines(self) -> list[str]:
        width = max(len(m.name) for m in self.members)
        lines = ["The support bundle will contain:"]
        lines += [f"  {m.name.ljust(width)}  {self.summaries.get(m.name, m.description)}" for m in self.members]
        lines.append("Left out:")
        lines += [f"  {item.what}: {item.why}" for item in self.left_out]
        return lines

    def to_zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        stamp = self.created.astimezone(UTC).timetuple()[:6]
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member in self.members:
                info = zipfile.ZipInfo(f"codex-login-bundle/{member.name}", date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o600 << 16
                archive.writestr(info, member.data)
        return buffer.getvalue()


def _json_bytes(document: object) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def default_bundle_name(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"codex-login-bundle-{moment.strftime('%Y%m%dT%H%M%SZ')}.zip"


# --------------------------------------------------------------------------------------------- members


def _attempt_members(attempts: list[Attempt]) -> tuple[list[Member], str, str]:
    lines: list[str] = []
    for attempt in attempts:
        lines.extend(attempt.raw_lines[:MAX_LINES_PER_ATTEMPT])
    log = Member("log/attempts.log", ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"),
                 "the raw log lines of the last attempts")
    timeline = Member("log/timeline.json", _json_bytes({"attempts": [a.to_json() for a in attempts]}),
                      "the same attempts as timelines")
    ids = ", ".join(a.attempt_id for a in attempts)
    which = "the last attempt" if len(attempts) == 1 else f"the last {len(attempts)} attempts"
    summary = f"{len(lines)} log lines of {which}" + (f" ({ids})" if ids else "")
    outcomes = ", ".join(f"{a.attempt_id} {a.outcome}" for a in attempts) or "no attempts in the log"
    return [log, timeline], summary, f"timelines: {outcomes}"


def _versions() -> dict[str, object]:
    from importlib import metadata

    libraries: dict[str, str | None] = {}
    for name in ("httpx", "httpcore", "truststore", "keyring", "certifi", "socksio"):
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "codex_login": __version__,
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "os": {
            "platform": sys.platform,
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "description": platform.platform(),
        },
        "libraries": libraries,
    }


def _environment(config: Config, env: Mapping[str, str]) -> dict[str, object]:
    from .environment import assess_callback_reachability, detect_environment

    info = detect_environment(env)
    reach = assess_callback_reachability(info)
    return {
        "session": {
            "platform": info.platform,
            "ssh": info.ssh,
            "wsl": info.wsl,
            "wsl_version": info.wsl_version,
            "wsl_opener": info.wsl_opener,
            "container": info.container,
            "display": info.display,
            "display_env": info.display_env,
            "browser_env_set": info.browser_env is not None,
            "codespaces": info.codespaces,
            "remote_containers": info.remote_containers,
            "vscode_remote": info.vscode_remote,
            "callback_likely_unreachable": reach.likely_unreachable,
            "callback_reasons": reach.reasons,
        },
        # Names only: the values can hold proxy passwords and private paths.
        "proxy_and_ca_variables_set": [name for name in PROXY_AND_CA_VARIABLES if env.get(name)],
        "other_variables_set": [name for name in SESSION_VARIABLES if env.get(name)],
        "config": {
            "issuer": sanitize_url_for_logging(config.issuer),
            "client_id": config.client_id,
            "credentials_store": config.credentials_store.value,
            "forced_login_method": config.forced_login_method,
            "forced_chatgpt_workspace_id_sha256_8": [_short_hash(w) for w in config.forced_chatgpt_workspace_id],
            "login_log_format": config.login_log_format,
            "login_http_timeout": config.http_timeout,
            "codex_home": str(config.codex_home),
            "log_dir": str(config.log_dir),
        },
    }


def _credentials(config: Config) -> tuple[dict[str, object], str]:
    from .account import read_status
    from .errors import LoginError

    try:
        facts = read_status(config.codex_home, config.credentials_store.value)
    except LoginError as exc:
        error_class = type(exc).__name__
        return (
            {"store": config.credentials_store.value, "present": None, "error_class": error_class},
            f"credentials could not be read ({error_class})",
        )
    document: dict[str, object] = {
        "store": facts.store,
        "present": facts.logged_in,
        "auth_mode": facts.auth_mode,
        "access_token_expires_at": _iso(facts.expires_at),
        "last_refresh": _iso(facts.last_refresh),
        "account_id_sha256_8": _short_hash(facts.account_id) if facts.account_id else None,
    }
    if facts.logged_in:
        summary = f"credential metadata only: {facts.store} store, {facts.auth_mode} sign-in present"
    else:
        summary = f"credential metadata only: {facts.store} store, no credentials"
    return document, summary


def build_bundle(
    config: Config,
    *,
    doctor: DoctorReport | None,
    env: Mapping[str, str] | None = None,
    attempts: int = BUNDLE_ATTEMPTS,
    now: datetime | None = None,
) -> Bundle:
    """Collect every member in memory (nothing is written). ``doctor=None`` leaves the report out."""
    env = os.environ if env is None else env
    created = now or datetime.now(UTC)
    members: list[Member] = []
    summaries: dict[str, str] = {}
    left_out = [
        LeftOut("auth.json and keyring contents", "credentials never leave this machine; credentials.json has "
                "metadata only"),
        LeftOut("config.toml", "its values may identify workspaces; environment.json has a summary"),
        LeftOut("environment variable values", "they can hold proxy passwords; environment.json lists only the "
                "names of the variables that are set (the doctor report shows the proxy in use as "
                "scheme://host:port and the CA file in use)"),
        LeftOut("codes, state, tokens, API keys, error descriptions and raw backend bodies", "they are never "
                "written to the log, so no member can hold them; every member was scanned to be sure"),
    ]

    recent = load_attempts(config.log_dir)
    older = max(0, len(recent) - attempts)
    recent = recent[older:]
    attempt_members, log_summary, timeline_summary = _attempt_members(recent)
    members += attempt_members
    summaries["log/attempts.log"] = log_summary
    summaries["log/timeline.json"] = timeline_summary
    if older:
        left_out.append(LeftOut(f"log lines of {older} older attempts", f"only the last {attempts} are included"))

    if doctor is not None:
        members.append(Member("doctor.json", _json_bytes(doctor.to_json()), "the doctor report"))
        counts = doctor.counts()
        summaries["doctor.json"] = (
            f"the doctor report: {counts['fail']} failed, {counts['warn']} warnings, {counts['ok']} ok"
        )
    else:
        left_out.append(LeftOut("the doctor report", "it was not run"))

    versions = _versions()
    members.append(Member("versions.json", _json_bytes(versions), "versions of codex-login, Python and the OS"))
    summaries["versions.json"] = (
        f"codex-login {__version__}, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )

    environment = _environment(config, env)
    members.append(Member("environment.json", _json_bytes(environment), "session facts and variable names"))
    names = environment["proxy_and_ca_variables_set"]
    assert isinstance(names, list)
    summaries["environment.json"] = (
        f"session facts, a configuration summary, and the names of {len(names)} proxy/CA variables that are set"
        + (f" ({', '.join(names)})" if names else "")
    )

    credentials, credentials_summary = _credentials(config)
    members.append(Member("credentials.json", _json_bytes(credentials), "credential metadata only"))
    summaries["credentials.json"] = credentials_summary

    manifest = {
        "format": BUNDLE_FORMAT,
        "created": _iso(created),
        "codex_login_version": __version__,
        "included": [
            {"name": m.name, "description": summaries.get(m.name, m.description), "bytes": len(m.data),
             "sha256": hashlib.sha256(m.data).hexdigest()}
            for m in members
        ],
        "left_out": [{"what": item.what, "why": item.why} for item in left_out],
    }
    members.insert(0, Member("manifest.json", _json_bytes(manifest), "what is included and what was left out"))
    summaries["manifest.json"] = "what is included, what was left out, and why"
    return Bundle(members=members, left_out=left_out, created=created, summaries=summaries)


# --------------------------------------------------------------------------------------------- scanning


def scan_text(text: str) -> list[str]:
    """The secret pattern classes found in ``text`` (empty when clean)."""
    found = [name for name, pattern in SECRET_PATTERNS if pattern.search(text)]
    if not found and scrub_patterns(text) != text:
        found.append("redaction_pattern")
    return found


def scan_bundle(bundle: Bundle) -> list[SecretHit]:
    """Every (member, pattern class) with a hit; the bundle may be written only when this is empty."""
    hits: list[SecretHit] = []
    for member in bundle.members:
        text = member.data.decode("utf-8", errors="replace")
        hits.extend(SecretHit(member.name, pattern) for pattern in scan_text(text))
    return hits


# --------------------------------------------------------------------------------------------- writing


def write_bundle(data: bytes, path: Path) -> None:
    """Create ``path`` (mode 0600) and write ``data``; never over an existing file or through a symlink.

    Raises ``FileExistsError`` when something is already there, ``OSError`` otherwise; a partial file is
    removed.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
