"""The shared advice table: complete for every failure class the code records, concrete, and in sync with
docs/troubleshooting.md."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from codex_login.bundle import scan_text
from codex_login.diagnostics.advice import (
    ADVICE,
    ALIASES,
    DEVICE_AUTH,
    FAILURE_CLASSES,
    GENERIC_FAILURE,
    UNFINISHED,
    advice_for,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gen_troubleshooting.py"
DOC = ROOT / "docs" / "troubleshooting.md"

# The classes the issue names (the device-code ones as the device flow spells them, plus the aliases).
NAMED_IN_THE_ISSUE = (
    "denied", "missing_code", "workspace_restriction", "token_invalid_grant", "token_invalid_client",
    "token_access_denied", "token_invalid_request", "token_forbidden", "token_server_error", "token_http_error",
    "token_invalid_response", "invalid_id_token", "transport_connect", "transport_tls", "transport_proxy",
    "transport_dns", "transport_timeout", "transport_closed", "transport_protocol", "transport_ca_config",
    "persist_failed", "cancelled", "timeout", "port_in_use", "bind_failed", "config", "storage", "device_code",
    "device_not_enabled", "device_expired", "device_denied", "error",
)
TRANSPORT_KINDS = ("connect", "tls", "proxy", "dns", "timeout", "closed", "protocol", "ca_config")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_troubleshooting", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def classes_in_source() -> set[str]:
    """Every failure class literal the package assigns (``failure_class = "x"``, ``failure_class="x"``,
    the refresh table's classes) plus the transport kinds that ``TransportError`` turns into classes."""
    found: set[str] = {f"transport_{kind}" for kind in TRANSPORT_KINDS}
    pattern = re.compile(r"failure_class\s*=\s*\"([a-z_]+)\"|\(MSG_[A-Z]+, \"([a-z_]+)\"\)|f\"token_\{")
    for path in (ROOT / "src" / "codex_login").rglob("*.py"):
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            name = match.group(1) or match.group(2)
            if name:
                found.add(name)
    # oauth.raise_for_token_status builds token_<error_code> for these four codes.
    found |= {"token_invalid_grant", "token_invalid_client", "token_access_denied", "token_invalid_request"}
    # TransportError's class attribute is only a default: its constructor always sets transport_<kind>.
    found.discard("transport")
    return found


def test_every_class_the_code_records_has_advice() -> None:
    recorded = classes_in_source()
    assert len(recorded) > 20  # the scan found the code's classes, not nothing
    missing = sorted(name for name in recorded | set(NAMED_IN_THE_ISSUE) if advice_for(name).failure_class
                     == GENERIC_FAILURE and name != GENERIC_FAILURE)
    assert missing == []


def test_every_class_resolves_to_its_own_row() -> None:
    for name in FAILURE_CLASSES:
        assert advice_for(name).failure_class == name
    for alias, target in ALIASES.items():
        assert advice_for(alias) is ADVICE[target]
    assert UNFINISHED not in FAILURE_CLASSES and UNFINISHED in ADVICE


def test_unknown_and_missing_classes_get_the_generic_row() -> None:
    assert advice_for(None) is ADVICE[GENERIC_FAILURE]
    assert advice_for("no_such_class") is ADVICE[GENERIC_FAILURE]
    assert "codex-login log" in advice_for(None).hint


@pytest.mark.parametrize("name", list(ADVICE))
def test_rows_are_complete_and_safe_to_show_anywhere(name: str) -> None:
    advice = ADVICE[name]
    assert advice.title and advice.what_happened and advice.try_next
    assert advice.hint == advice.try_next[0]
    texts = [advice.title, advice.what_happened, *advice.try_next]
    for text in texts:
        assert text.isprintable(), text  # one line, no control characters: terminal and page safe
        assert text == text.strip() and not text.endswith(" ")
        # The bundle carries these texts (doctor fixes, timelines): they must not look like secrets.
        assert scan_text(text) == [], (name, text)
    assert advice.to_json() == {
        "failure_class": name,
        "title": advice.title,
        "what_happened": advice.what_happened,
        "try_next": list(advice.try_next),
    }


@pytest.mark.parametrize(
    ("name", "must_mention"),
    [
        ("transport_tls", ("CODEX_CA_CERTIFICATE", "organisation's CA bundle (PEM)", "SSL_CERT_FILE")),
        ("transport_proxy", ("HTTPS_PROXY", "ALL_PROXY", "socks5://", "NO_PROXY")),
        ("transport_ca_config", ("CODEX_CA_CERTIFICATE", "SSL_CERT_FILE")),
        ("token_forbidden", ("VPN", "Cloudflare", "redirect address", "request_id")),
        ("port_in_use", ("codex-login doctor", "Close that program", "--port")),
        ("bind_failed", ("excludedportrange", "--device-auth")),
        ("denied", ("missing_codex_entitlement", "workspace administrator")),
        ("workspace_restriction", ("forced_chatgpt_workspace_id",)),
        ("timeout", ("SSH", "WSL", "container", "--device-auth", "ssh -L 1455:localhost:1455", "paste")),
        ("token_invalid_grant", ("used", "expired")),
        ("token_server_error", ("status.openai.com",)),
        ("device_not_enabled", ("security settings",)),
        ("persist_failed", ("unchanged", "symbolic link")),
        ("refresh_token_reused", ("Another process",)),
        ("device_code", ("Sign in with the browser instead", "5xx", "paste")),
        ("device_code_expired", ("promptly", "sign in with the browser")),
    ],
)
def test_advice_is_concrete(name: str, must_mention: tuple[str, ...]) -> None:
    advice = ADVICE[name]
    text = " ".join([advice.what_happened, *advice.try_next])
    for phrase in must_mention:
        assert phrase in text, (name, phrase)


def test_every_step_that_suggests_device_auth_spells_it_the_one_way() -> None:
    """``Advice.without(DEVICE_AUTH)`` finds the steps by this spelling, so no other may exist."""
    for advice in ADVICE.values():
        for step in advice.try_next:
            if "--device-auth" in step:
                assert DEVICE_AUTH in step, (advice.failure_class, step)


@pytest.mark.parametrize("name", list(ADVICE))
def test_without_device_auth_no_step_suggests_it(name: str) -> None:
    """After ``--device-auth`` fell back to the browser the issuer has no device sign-in: no step may suggest it."""
    advice = ADVICE[name]
    left = advice_for(name, without=DEVICE_AUTH)
    assert left.try_next, name  # every row has something else to try
    assert not any("device-auth" in step for step in left.try_next)
    assert not left.hint.startswith("Or ")  # the first step reads as one
    assert (left.failure_class, left.title, left.what_happened) == (name, advice.title, advice.what_happened)
    if not any(DEVICE_AUTH in step for step in advice.try_next):
        assert left is advice
    else:  # the other steps, in the table's order (the first without its "Or")
        kept = [step for step in advice.try_next if DEVICE_AUTH not in step]
        assert [step.removeprefix("Or ").lower() for step in left.try_next] == [
            step.removeprefix("Or ").lower() for step in kept
        ]


def test_without_device_auth_the_browser_hints_move_on() -> None:
    assert advice_for("timeout", without=DEVICE_AUTH).hint == (
        "Forward the port from your computer: `ssh -L 1455:localhost:1455 <host>`, then open the URL there."
    )
    assert advice_for("timeout").hint.endswith(f"sign in with a device code instead: {DEVICE_AUTH}.")
    port = advice_for("port_in_use", without=DEVICE_AUTH).try_next
    assert port[-1].startswith("Or choose another port with `--port N`")  # split from the device-code step
    assert advice_for("bind_failed", without=DEVICE_AUTH).try_next == (
        ADVICE["bind_failed"].try_next[0],
        ADVICE["bind_failed"].try_next[2],
    )
    assert advice_for(None, without=DEVICE_AUTH) is ADVICE[GENERIC_FAILURE]


def test_a_failed_device_sign_in_is_not_told_to_run_it_again_first() -> None:
    """The generic device-code failure (the issuer refused or garbled a request) points to the browser first;
    running ``--device-auth`` again comes first only where that is the fix (the code expired, or was declined)."""
    assert DEVICE_AUTH not in ADVICE["device_code"].hint
    assert "codex-login`" in ADVICE["device_code"].hint
    assert DEVICE_AUTH in ADVICE["device_code_expired"].hint
    assert DEVICE_AUTH in ADVICE["device_denied"].hint


def test_the_committed_document_equals_the_generated_one() -> None:
    generated = load_generator().render()
    assert DOC.read_text(encoding="utf-8") == generated, "run: python scripts/gen_troubleshooting.py"


def test_the_document_has_a_section_per_class_and_the_help_sections() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for name, advice in ADVICE.items():
        assert f"### `{name}`: {advice.title}" in doc
        for step in advice.try_next:
            assert step in doc
    assert "## Reading `codex-login log`" in doc
    assert "## Collecting a support bundle" in doc
    # The example timeline is rendered by the real code: its advice is the table's.
    assert "What went wrong (token_forbidden): " + ADVICE["token_forbidden"].title in doc
    assert "Failed at: +22.105 s oauth token exchange returned non-success status" in doc


def test_generator_check_mode(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    stale = tmp_path / "stale.md"
    stale.write_text("old\n", encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(stale)], capture_output=True, timeout=60, check=False
    )
    assert bad.returncode == 1 and b"out of date" in bad.stderr
    written = subprocess.run(
        [sys.executable, str(SCRIPT), "--output", str(stale)], capture_output=True, timeout=60, check=False
    )
    assert written.returncode == 0
    assert stale.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
