"""``codex-login bundle``: what it holds (and never holds), how it refuses, and how it writes.

The canary test seeds unique ``CNRY...`` secrets into every place a sign-in handles one (the code, the
state and the PKCE verifier, the tokens and the ID token's claims, the API key, the callback's
error_description, a backend body, a proxy password), runs failing and successful sign-ins with them, then
looks for each canary in every member of the bundle in several encodings and any 8-character window of its
random core. Positive controls prove the canaries were really used.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import pty
import re
import secrets
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from codex_login.bundle import BUNDLE_FORMAT, SECRET_PATTERNS, scan_text
from codex_login.diagnostics import events as ev
from codex_login.diagnostics.format import render_text_line
from codex_login.diagnostics.logfile import LOG_FILE_NAME, init_login_file_logging
from codex_login.diagnostics.record import Display
from codex_login.diagnostics.timeline import read_entries
from codex_login.errors import LoginError
from codex_login.http import HttpSettings
from codex_login.server import ServerOptions, run_login_server
from tests.support.scripted_issuer import Answer, ScriptedIssuer, make_jwt, tokens_answer
from tests.test_timeline import CLI, closed_port, run_cli

MEMBERS = [
    "manifest.json", "log/attempts.log", "log/timeline.json", "doctor.json", "versions.json", "environment.json",
    "credentials.json",
]


@dataclass
class Canaries:
    core: str
    # The backend body and the callback description are shown on the page and in the returned error (the
    # positive controls): a core of their own, since the registry scrubs any long run copied from a secret,
    # and a text sharing the state's core is one.
    body_core: str = field(default_factory=lambda: secrets.token_hex(12))

    @property
    def code(self) -> str:
        return f"CNRYcode{self.core}"

    @property
    def state(self) -> str:
        return f"CNRYstate{self.core}"

    @property
    def verifier(self) -> str:
        return f"CNRYver{self.core}" + "v" * 20  # a valid PKCE verifier: 43+ unreserved characters

    @property
    def account(self) -> str:
        return f"cnryacct{self.core}"

    @property
    def id_token(self) -> str:
        claims = {
            "email": f"cnry{self.core}@example.invalid",
            "https://api.openai.com/auth": {"chatgpt_account_id": self.account, "chatgpt_plan_type": "pro"},
            "exp": int(time.time()) + 3600,
        }
        return make_jwt(claims, signature=f"CNRYsig{self.core}")

    def values(self) -> dict[str, str]:
        return {
            "code": self.code,
            "state": self.state,
            "verifier": self.verifier,
            "access_token": f"CNRYacc{self.core}",
            "refresh_token": f"CNRYref{self.core}",
            "id_token": self.id_token,
            "email": f"cnry{self.core}@example.invalid",
            "account_id": self.account,
            "signature": f"CNRYsig{self.core}",
            "api_key": f"sk-proj-CNRYkey{self.core}",
            "callback_description": f"CNRYcbdesc{self.body_core}",
            "backend_body": f"CNRYbody{self.body_core}",
            "proxy_password": f"CNRYproxypw{self.core}",
        }


def forms(value: str) -> set[str]:
    """The encodings a leak could take."""
    raw = value.encode()
    return {
        value,
        quote(value, safe=""),
        quote_plus(value),
        html.escape(value),
        json.dumps(value)[1:-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def leaks(text: str, canaries: Canaries) -> list[str]:
    found = [name for name, value in canaries.values().items() for form in forms(value) if form in text]
    for core in (canaries.core, canaries.body_core):
        found += [f"window:{core[i:i + 8]}" for i in range(len(core) - 7) if core[i : i + 8] in text]
    return found


def sign_in(
    home: Path, issuer: ScriptedIssuer, canaries: Canaries, query: str, *, http: HttpSettings | None = None
) -> LoginError | None:
    server = run_login_server(ServerOptions(
        codex_home=home, issuer=issuer.url, port=0, open_browser=False, force_state=canaries.state,
        force_verifier=canaries.verifier, http=http or HttpSettings(env={}, total_timeout=3.0), timeout=30,
        success_grace=0.5,
    ))
    response = httpx.get(f"http://127.0.0.1:{server.actual_port}/auth/callback?{query}", follow_redirects=True,
                         timeout=20)
    assert response.status_code == 200
    try:
        server.block_until_done(20)
    except LoginError as err:
        return err
    return None


def unzip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name.removeprefix("codex-login-bundle/"): archive.read(name) for name in archive.namelist()}


def test_the_bundle_holds_no_canary_and_everything_it_promises(codex_home: Path, tmp_path: Path) -> None:
    canaries = Canaries(secrets.token_hex(12))
    handle = init_login_file_logging(codex_home / "log", log_format="text", env={})
    try:
        with ScriptedIssuer() as issuer:
            denied = sign_in(codex_home, issuer, canaries,
                             f"error=access_denied&error_description={canaries.values()['callback_description']}"
                             f"&state={canaries.state}")
            assert denied is not None and canaries.values()["callback_description"] in str(denied)

            issuer.token = Answer.json(400, {"error": "invalid_grant", "error_description": f"bad {canaries.code}"})
            echoed = sign_in(codex_home, issuer, canaries, f"code={canaries.code}&state={canaries.state}")
            assert echoed is not None and echoed.failure_class == "token_invalid_grant"

            issuer.token = Answer.text(500, canaries.values()["backend_body"], "text/html")
            body = sign_in(codex_home, issuer, canaries, f"code={canaries.code}&state={canaries.state}")
            assert body is not None and canaries.values()["backend_body"] in str(body)  # it was really sent

            proxy = f"http://proxyuser:{canaries.values()['proxy_password']}@127.0.0.1:{closed_port()}"
            proxied = sign_in(codex_home, issuer, canaries, f"code={canaries.code}&state={canaries.state}",
                              http=HttpSettings(env={"HTTP_PROXY": proxy}, total_timeout=3.0))
            assert proxied is not None and proxied.failure_class == "transport_proxy"

            issuer.token = tokens_answer(id_token=canaries.id_token, access_token=canaries.values()["access_token"],
                                         refresh_token=canaries.values()["refresh_token"])
            issuer.api_key = Answer.json(200, {"access_token": canaries.values()["api_key"]})
            assert sign_in(codex_home, issuer, canaries, f"code={canaries.code}&state={canaries.state}") is None
            assert issuer.token_requests()[-1].form["code"] == canaries.code
            assert issuer.token_requests()[-1].form["code_verifier"] == canaries.verifier

            out = tmp_path / "support.zip"
            result = run_cli("bundle", "-o", str(out), "--issuer", issuer.url, cwd=tmp_path)
    finally:
        handle.close()
    assert result.returncode == 0, result.stderr
    assert leaks(result.stdout + result.stderr, canaries) == []

    # Positive controls: the secrets were stored, and the log and bundle are about these attempts.
    auth = (codex_home / "auth.json").read_text()
    assert canaries.values()["access_token"] in auth and canaries.values()["api_key"] in auth
    members = unzip(out)
    assert sorted(members) == sorted(MEMBERS)
    log_lines = members["log/attempts.log"].decode().splitlines()
    finished = [line for line in log_lines if f": {ev.MSG_FINISHED} " in line]
    assert [re.search(r"outcome=(\w+)", line).group(1) for line in finished] == [  # type: ignore[union-attr]
        "denied", "error", "error", "error", "success"]
    assert 'error_message="bad <redacted>"' in members["log/attempts.log"].decode()  # the echo was scrubbed
    credentials = json.loads(members["credentials.json"])
    assert credentials == {
        "store": "file",
        "present": True,
        "auth_mode": "chatgpt",
        "access_token_expires_at": None,  # the access token canary is not a JWT
        "last_refresh": credentials["last_refresh"],
        "account_id_sha256_8": hashlib.sha256(canaries.account.encode()).hexdigest()[:8],
    }
    assert credentials["last_refresh"].endswith("Z")

    for name, data in members.items():
        assert leaks(data.decode("utf-8"), canaries) == [], name
        assert scan_text(data.decode("utf-8")) == [], name
    assert leaks(out.read_bytes().decode("latin-1"), canaries) == []


def test_manifest_doctor_versions_and_environment(codex_home: Path, tmp_path: Path) -> None:
    with ScriptedIssuer() as issuer:
        issuer.routes["/oauth/authorize"] = Answer.text(400, "missing parameters")
        env = {
            "HTTPS_PROXY": "http://user:CNRYenvproxypw@proxy.invalid:3128",
            "SSL_CERT_FILE": str(tmp_path / "CNRYcapath.pem"),
        }
        result = run_cli("bundle", "--issuer", issuer.url, "-c", 'forced_chatgpt_workspace_id="org-CNRYws"',
                         env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (written,) = tmp_path.glob("codex-login-bundle-*.zip")
    assert re.fullmatch(r"codex-login-bundle-\d{8}T\d{6}Z\.zip", written.name)
    assert written.stat().st_mode & 0o777 == 0o600
    members = unzip(written)
    everything = b"".join(members.values()).decode()
    for value in ("CNRYenvproxypw", "proxy.invalid", "org-CNRYws"):
        assert value not in everything, value
    # Variable values stay out of the environment facts; the doctor names the CA file it would use (D-9).
    assert "CNRYcapath" not in members["environment.json"].decode()
    assert "CA source SSL_CERT_FILE (" in members["doctor.json"].decode()
    environment = json.loads(members["environment.json"])
    assert {"HTTPS_PROXY", "SSL_CERT_FILE", "NO_PROXY"} <= set(environment["proxy_and_ca_variables_set"])
    assert environment["config"]["forced_chatgpt_workspace_id_sha256_8"] == [
        hashlib.sha256(b"org-CNRYws").hexdigest()[:8]]
    assert environment["config"]["issuer"] == issuer.url + "/"
    assert set(environment["session"]) >= {"ssh", "wsl", "container", "display"}
    doctor = json.loads(members["doctor.json"])
    assert set(doctor) == {"checks", "ok"}
    assert {c["id"]: c["status"] for c in doctor["checks"]}["issuer_authorize"] == "ok"
    versions = json.loads(members["versions.json"])
    assert versions["codex_login"] and versions["python"]["version"] and versions["os"]["system"] == "Linux"
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == BUNDLE_FORMAT
    assert [m["name"] for m in manifest["included"]] == MEMBERS[1:]
    for entry in manifest["included"]:
        assert hashlib.sha256(members[entry["name"]]).hexdigest() == entry["sha256"]
    assert any(item["what"] == "auth.json and keyring contents" for item in manifest["left_out"])
    assert json.loads(members["credentials.json"])["present"] is False
    assert members["log/attempts.log"] == b""  # no sign-in yet: nothing to include, and it says so
    # The preview on stderr said what it would hold before it wrote.
    assert "The support bundle will contain:" in result.stderr
    for name in MEMBERS:
        assert f"  {name}" in result.stderr
    assert result.stderr.index("Left out:") < result.stderr.index("Wrote ")


def plant(log_dir: Path, attempt: str, field: str, value: str) -> None:
    """Append an attempt whose log line holds ``value``, as a log written without redaction would."""
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = time.time()
    lines = [
        render_text_line(created=now, levelno=20, target="codex_cli::login", message=ev.MSG_ATTEMPT_STARTED,
                         fields={"flow": Display("browser")}, attempt=attempt),
        render_text_line(created=now + 0.1, levelno=30, target="codex_login::server", message=ev.MSG_NON_SUCCESS,
                         fields={"status": Display("400 Bad Request"), field: value}, attempt=attempt),
    ]
    with open(log_dir / LOG_FILE_NAME, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


PLANTED = [
    ("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJDTlJZIn0.c2lnbmF0dXJl"),
    ("api_key", "key sk-proj-CNRYplanted0123456789"),
    ("query_secret", "https://issuer.example/cb?code=CNRYplantedcode&x=1"),
    ("query_secret", "state=CNRYplantedstate"),
    ("authorization_header", "Authorization: Basic Q05SWXBsYW50ZWQ6eA=="),
    ("bearer_credential", "sent Bearer CNRYplantedbearer"),
]


@pytest.mark.parametrize(("pattern", "value"), PLANTED, ids=[f"{p}-{i}" for i, (p, _v) in enumerate(PLANTED)])
def test_a_planted_secret_refuses_the_bundle(codex_home: Path, tmp_path: Path, pattern: str, value: str) -> None:
    plant(codex_home / "log", "la_0badc0de", "error_message", value)
    assert read_entries(codex_home / "log")[-1].line.fields["error_message"] == value
    out = tmp_path / "refused.zip"
    result = run_cli("bundle", "--yes", "-o", str(out), "--issuer", f"http://127.0.0.1:{closed_port()}")
    assert result.returncode == 1
    assert not out.exists()
    assert f"log/attempts.log contains text that looks like a secret ({pattern})" in result.stderr
    assert "Nothing was written." in result.stderr
    assert "CNRY" not in result.stderr + result.stdout and value not in result.stderr
    assert "Wrote " not in result.stderr


def test_every_pattern_class_is_exercised() -> None:
    assert {name for name, _pattern in SECRET_PATTERNS} == {p for p, _v in PLANTED}
    assert scan_text("https://u:CNRYpw@host/") == ["redaction_pattern"]  # userinfo: the redaction net
    for clean in ("code=<redacted>", "code=%3Credacted%3E", "has_code=true error_code=\"x\"", "state_valid=true",
                  "redirect_uri=http://localhost:1455/auth/callback", "Bearer", "sk-short"):
        assert scan_text(clean) == [], clean


def test_writing_never_overwrites_or_follows_links(codex_home: Path, tmp_path: Path) -> None:
    issuer_url = f"http://127.0.0.1:{closed_port()}"
    existing = tmp_path / "existing.zip"
    existing.write_bytes(b"keep me")
    kept = run_cli("bundle", "-o", str(existing), "--issuer", issuer_url)
    assert kept.returncode == 1 and "already exists" in kept.stderr
    assert existing.read_bytes() == b"keep me"

    victim = tmp_path / "victim"
    victim.write_bytes(b"victim")
    link = tmp_path / "link.zip"
    link.symlink_to(victim)
    linked = run_cli("bundle", "-o", str(link), "--issuer", issuer_url)
    assert linked.returncode == 1 and victim.read_bytes() == b"victim"

    directory = tmp_path / "out"
    directory.mkdir()
    into_dir = run_cli("bundle", "-o", str(directory), "--issuer", issuer_url)
    assert into_dir.returncode == 0, into_dir.stderr
    (written,) = directory.iterdir()
    assert written.name.startswith("codex-login-bundle-") and written.stat().st_mode & 0o777 == 0o600
    assert zipfile.ZipFile(io.BytesIO(written.read_bytes())).testzip() is None


def run_with_terminal_stdin(args: list[str], answer: bytes, cwd: Path) -> tuple[int, str]:
    master, slave = pty.openpty()
    process = subprocess.Popen([str(CLI), *args], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ), cwd=cwd)
    os.close(slave)
    try:
        os.write(master, answer)
        _out, err = process.communicate(timeout=60)
    finally:
        os.close(master)
    return process.returncode, err.decode()


def test_a_terminal_is_asked_first(codex_home: Path, tmp_path: Path) -> None:
    issuer_url = f"http://127.0.0.1:{closed_port()}"
    declined = tmp_path / "declined"
    declined.mkdir()
    code, err = run_with_terminal_stdin(["bundle", "--issuer", issuer_url], b"n\n", declined)
    assert code == 1 and "? [y/N] " in err and "Nothing was written." in err
    assert list(declined.iterdir()) == []
    accepted = tmp_path / "accepted"
    accepted.mkdir()
    code, err = run_with_terminal_stdin(["bundle", "--issuer", issuer_url], b"y\n", accepted)
    assert code == 0 and "? [y/N] " in err and len(list(accepted.iterdir())) == 1
    unasked = tmp_path / "unasked"
    unasked.mkdir()
    code, err = run_with_terminal_stdin(["bundle", "--yes", "--issuer", issuer_url], b"", unasked)
    assert code == 0 and "[y/N]" not in err and len(list(unasked.iterdir())) == 1
