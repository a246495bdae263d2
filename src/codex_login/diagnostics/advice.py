"""What went wrong and what to try next, per failure class: ONE table shared by every surface.

A failure class is the stable key a :class:`~codex_login.errors.LoginError` carries (``failure_class``) and
the ``failure`` field of the ``login finished`` event. The same :class:`Advice` is shown by the terminal
after a failed sign-in, the browser error page, ``codex-login log`` (under each failed attempt),
``codex-login doctor`` (for a failing check) and ``docs/troubleshooting.md`` (generated from this table by
``scripts/gen_troubleshooting.py``; a test keeps the two equal).

Rules for the texts: concrete steps a person can take, commands spelled as they are typed, no secret-shaped
examples (the support bundle scans every member, including the doctor's copy of these texts, for patterns
such as query parameters carrying values or authorization headers).

Standard library only, no imports from the flows: ``diagnostics`` is a leaf everyone may call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "ADVICE",
    "ALIASES",
    "DEVICE_AUTH",
    "FAILURE_CLASSES",
    "GENERIC_FAILURE",
    "UNFINISHED",
    "Advice",
    "advice_for",
]

#: The fallback class for a failure the code could not classify.
GENERIC_FAILURE: Final = "error"
#: Not a failure class the code raises: ``codex-login log`` uses it for an attempt whose end is missing.
UNFINISHED: Final = "unfinished"


@dataclass(frozen=True)
class Advice:
    """One row of the table."""

    failure_class: str
    #: A short heading: what the person sees first.
    title: str
    #: One or two sentences: what happened, in the user's terms.
    what_happened: str
    #: Concrete steps, most likely first.
    try_next: tuple[str, ...]

    @property
    def hint(self) -> str:
        """The first step alone: for one-line surfaces (the terminal footer, the error page)."""
        return self.try_next[0]

    def without(self, command: str) -> Advice:
        """This advice without the steps that suggest ``command`` (spelled as the table spells it, such as
        :data:`DEVICE_AUTH`): for a caller that knows it cannot work. A step left first loses its leading "Or"."""
        kept = [step for step in self.try_next if command not in step]
        if len(kept) == len(self.try_next):
            return self
        if not kept:  # no row is like this (a test checks): the generic steps rather than none
            kept = list(ADVICE[GENERIC_FAILURE].try_next)
        first = kept[0]
        if first.startswith("Or "):
            kept[0] = first[3].upper() + first[4:]
        return Advice(self.failure_class, self.title, self.what_happened, tuple(kept))

    def to_json(self) -> dict[str, object]:
        return {
            "failure_class": self.failure_class,
            "title": self.title,
            "what_happened": self.what_happened,
            "try_next": list(self.try_next),
        }


_DOCTOR = "Run `codex-login doctor` to check the network path, certificates, proxy, ports and files."
_BUNDLE = "If it keeps failing, run `codex-login bundle` and send the file to support (it holds no secrets)."
#: The device-code sign-in as every step that suggests it spells it (:meth:`Advice.without` finds them by it).
DEVICE_AUTH: Final = "`codex-login --device-auth`"
_DEVICE = f"Sign in with a device code instead: {DEVICE_AUTH}."
_BROWSER = (
    "Or sign in with the browser: `codex-login` (over SSH, forward the port with "
    "`ssh -L 1455:localhost:1455 <host>`)."
)
_REGISTERED_PORTS = "the default issuer only accepts the callback on ports 1455 and 1457"


def _row(failure_class: str, title: str, what_happened: str, *try_next: str) -> Advice:
    return Advice(failure_class, title, what_happened, tuple(try_next))


_ROWS: Final = (
    # --- the browser came back without a code --------------------------------------------------------
    _row(
        "denied",
        "Sign-in was denied",
        "The sign-in page sent the browser back with an error (such as access_denied) instead of an "
        "authorization code: the sign-in was cancelled, or this account may not use Codex.",
        "If you cancelled by mistake, run `codex-login` again and finish the sign-in in the browser.",
        "If the page said Codex is not enabled for your workspace (missing_codex_entitlement), ask your "
        "workspace administrator to enable Codex for you, or sign in with an account that has access.",
        "If you belong to several workspaces, choose the one that has Codex on the sign-in page.",
    ),
    _row(
        "missing_code",
        "The browser came back without an authorization code",
        "The redirect to this machine carried the right state but neither a code nor an error: something "
        "between the sign-in page and this program cut the address short.",
        "Run `codex-login` again and let the browser finish on its own.",
        "If you pasted the redirect address, copy all of it from the address bar (it is long).",
        "Turn off browser extensions that rewrite or block links to localhost, then try again.",
    ),
    _row(
        "workspace_restriction",
        "This account is not in the required workspace",
        "Your configuration (forced_chatgpt_workspace_id) only allows certain workspaces, and the account "
        "you signed in with belongs to another one, or its token named no workspace.",
        "Run `codex-login` again and choose the allowed workspace on the sign-in page.",
        "Check forced_chatgpt_workspace_id in $CODEX_HOME/config.toml (or your -c override) with your "
        "administrator.",
    ),
    # --- the token endpoint answered, but not with tokens ---------------------------------------------
    _row(
        "token_invalid_grant",
        "The issuer rejected the authorization code (invalid_grant)",
        "The code had already been used or had expired, or it was issued for another redirect address or "
        "another sign-in. Codes work once, for a few minutes.",
        "Run `codex-login` again and finish in the browser without long pauses.",
        "Do not reuse an old redirect address; close other Codex or codex-login sign-ins first.",
        "Check that this machine's clock is right (`codex-login doctor` compares it with the issuer).",
    ),
    _row(
        "token_invalid_client",
        "The issuer does not accept this client (invalid_client)",
        "The token endpoint rejected the client ID the sign-in used.",
        "Remove any --client-id flag or client_id setting unless you were told to use it.",
        "With a custom --issuer, check that the client is registered there.",
    ),
    _row(
        "token_access_denied",
        "The issuer refused to issue tokens (access_denied)",
        "The browser part worked, but the token endpoint refused to issue tokens for this account.",
        "Check that your account and workspace may use Codex; ask your workspace administrator.",
        "Sign in with another account if you have one with access.",
        _BUNDLE,
    ),
    _row(
        "token_invalid_request",
        "The issuer rejected the token request (invalid_request)",
        "The token request was not accepted as sent: usually the redirect address was changed (another "
        "port, or a proxy or security product rewriting requests).",
        f"Sign in with the default port (no --port): {_REGISTERED_PORTS}.",
        "If a proxy or security product rewrites traffic, exempt the issuer host (add it to NO_PROXY).",
        _BUNDLE,
    ),
    _row(
        "token_forbidden",
        "The token endpoint refused the request (401/403)",
        "The issuer, or a firewall or CDN in front of it (such as a Cloudflare challenge), blocked the "
        "token request from this machine: often a VPN, the region, or a corporate proxy. The browser part "
        "can still work because the browser takes another route.",
        "Turn off the VPN or switch networks, then run `codex-login` again.",
        "If you must use a corporate proxy, check HTTPS_PROXY and that the proxy allows the issuer host.",
        f"Keep the redirect address as it is: {_REGISTERED_PORTS} (do not pass another --port).",
        "Quote the request_id or cf_ray that `codex-login log` shows when you contact support.",
    ),
    _row(
        "token_server_error",
        "The issuer had a server error (5xx)",
        "The token endpoint answered with a server error; the problem is on the issuer's side or in a "
        "proxy in between.",
        "Wait a few minutes and run `codex-login` again.",
        "Check https://status.openai.com for an incident.",
        _BUNDLE,
    ),
    _row(
        "token_http_error",
        "The token endpoint answered with an unexpected status",
        "The token endpoint answered, but with a status that is neither success nor a known OAuth error "
        "(for example 407 from a proxy, or 429 when rate limited).",
        "Read the status and error in `codex-login log`: 407 means the proxy wants credentials, 429 means "
        "wait before trying again.",
        _DOCTOR,
        _BUNDLE,
    ),
    _row(
        "token_invalid_response",
        "The token endpoint's answer was not usable",
        "It answered with success, but the body was not JSON or lacked a token: typically a captive "
        "portal (hotel or airport Wi-Fi) or a security product answering in the issuer's place.",
        "Open any web page in a browser to complete a captive-portal login, then try again.",
        "Check the proxy and security software on this machine (`codex-login doctor` shows the proxy in use).",
        _BUNDLE,
    ),
    _row(
        "invalid_id_token",
        "The ID token could not be read",
        "The issuer returned tokens, but the ID token was not a well-formed JWT with the expected claims.",
        "Run `codex-login` again.",
        "With a custom --issuer, check that it issues a JWT ID token with the ChatGPT claims.",
        _BUNDLE,
    ),
    # --- no HTTP answer at all ------------------------------------------------------------------------
    _row(
        "transport_connect",
        "Could not connect to the issuer",
        "The connection to the issuer failed (refused, unreachable or reset) before any answer.",
        "Check the network connection, and that the issuer's address opens in a browser on this machine.",
        "If this network needs a proxy to reach the internet, set HTTPS_PROXY (for example "
        "http://proxy.example:8080).",
        _DOCTOR,
    ),
    _row(
        "transport_tls",
        "The issuer's certificate was not trusted",
        "TLS verification failed with the CA source in use: usually a corporate proxy that inspects TLS "
        "with its own certificate authority, or a stale SSL_CERT_FILE.",
        "Set CODEX_CA_CERTIFICATE to your organisation's CA bundle (PEM) or fix SSL_CERT_FILE (unset it "
        "to use the system trust store).",
        "Run `codex-login doctor`: it shows which CA source was used and the certificate the issuer sent.",
    ),
    _row(
        "transport_proxy",
        "The proxy could not be used",
        "The request went to the proxy named by HTTPS_PROXY, HTTP_PROXY or ALL_PROXY, and the proxy could "
        "not be reached, refused the connection, or failed the TLS handshake of an https:// proxy URL.",
        "Check HTTPS_PROXY and ALL_PROXY (and their lower-case forms): a stale value pointing at a proxy "
        "that is no longer running is common, and so is a plain HTTP proxy written https:// (write http://).",
        "Write SOCKS proxies as socks5:// (not socks://); they need `pip install 'codex-login[socks]'`.",
        "If the issuer should be reached directly, add its host to NO_PROXY.",
        "Run `codex-login doctor`: it shows which proxy applies to the issuer.",
    ),
    _row(
        "transport_dns",
        "The issuer's host name could not be resolved",
        "DNS lookup of the issuer's host failed on this machine.",
        "Check the network and DNS settings (a VPN with split DNS is a common cause).",
        "If only a proxy can resolve names on this network, set HTTPS_PROXY.",
        _DOCTOR,
    ),
    _row(
        "transport_timeout",
        "The issuer did not answer in time",
        "The connection or the answer took longer than the time limit: a slow network, or a firewall or "
        "proxy that silently drops traffic.",
        "Check the network and any firewall or proxy, then try again.",
        "On a slow network raise login_http_timeout (seconds) in $CODEX_HOME/config.toml.",
        _DOCTOR,
    ),
    _row(
        "transport_closed",
        "The connection closed without a complete answer",
        "The issuer, or a proxy or security product in between, closed the connection before answering.",
        "Try again; if it repeats, check the proxy and security software on this machine.",
        _DOCTOR,
    ),
    _row(
        "transport_protocol",
        "The HTTP exchange with the issuer failed",
        "The issuer (or something in between) answered in a way that is not valid HTTP.",
        "Check the proxy and security software on this machine, then try again.",
        _DOCTOR,
        _BUNDLE,
    ),
    _row(
        "transport_ca_config",
        "The CA certificate file could not be used",
        "CODEX_CA_CERTIFICATE or SSL_CERT_FILE names a file that is missing, unreadable or not PEM, so "
        "no TLS connection was attempted.",
        "Point CODEX_CA_CERTIFICATE at a readable PEM bundle, or unset it.",
        "Check SSL_CERT_FILE the same way: a stale SSL_CERT_FILE from an old tool is a known cause.",
    ),
    # --- after the tokens -----------------------------------------------------------------------------
    _row(
        "persist_failed",
        "Credentials could not be saved",
        "Sign-in worked, but auth.json (or the keyring) could not be written. An existing auth.json was "
        "left unchanged.",
        "Check that CODEX_HOME is a directory you own with free space, and that auth.json is not a "
        "symbolic link (`codex-login doctor` checks both).",
        "With cli_auth_credentials_store = \"keyring\", unlock the keyring, or use \"auto\" or \"file\".",
        "Then run `codex-login` again.",
    ),
    # --- the attempt ended without an answer ----------------------------------------------------------
    _row(
        "cancelled",
        "The sign-in was cancelled",
        "Ctrl-C, a newer codex-login or Codex sign-in taking over the port, or a cancel request ended the "
        "sign-in before it finished.",
        "Run `codex-login` again, and do not start a second sign-in while one is waiting.",
    ),
    _row(
        "timeout",
        "The browser never came back",
        "No redirect reached http://localhost:PORT/auth/callback before the time limit. Over SSH, in WSL, "
        "in a container or on a remote desktop, the browser runs on another machine and cannot reach "
        "localhost here.",
        f"On a remote or headless machine, sign in with a device code instead: {DEVICE_AUTH}.",
        "Or forward the port from your computer: `ssh -L 1455:localhost:1455 <host>`, then open the URL "
        "there.",
        "Or, after signing in, copy the address the browser could not open "
        "(http://localhost:1455/auth/callback?...) and paste it into the waiting codex-login.",
        "Run `codex-login doctor` to check the callback side: ports, localhost and the browser.",
    ),
    _row(
        "port_in_use",
        "The callback port is in use",
        "Another program holds the loopback port (1455, and the fallback 1457): another Codex or "
        "codex-login sign-in, an editor's port forwarding, or a proxy tool.",
        "Run `codex-login doctor`: it names the process holding the port.",
        "Close that program (or finish its sign-in), then run `codex-login` again.",
        f"Or choose another port with `--port N` ({_REGISTERED_PORTS}).",
        f"Or sign in with a device code: {DEVICE_AUTH}.",
    ),
    _row(
        "bind_failed",
        "The callback port could not be opened",
        "The operating system refused to open the loopback port, for a reason other than another "
        "program holding it (on Windows, often a port range reserved by Hyper-V, WSL or Docker).",
        "On Windows, list reserved ranges with `netsh interface ipv4 show excludedportrange protocol=tcp`; "
        "`net stop winnat` then `net start winnat` (as administrator) often frees them.",
        _DEVICE,
        "Run `codex-login doctor` to check which ports can be opened.",
    ),
    # --- configuration and storage --------------------------------------------------------------------
    _row(
        "config",
        "The configuration is invalid",
        "CODEX_HOME, $CODEX_HOME/config.toml, a -c override or a flag could not be used.",
        "Fix the file, line or value the message names.",
        "Check that CODEX_HOME (if set) points to an existing directory.",
    ),
    _row(
        "storage",
        "Stored credentials could not be read or written",
        "auth.json or the keyring entry could not be used (unreadable, not valid JSON, a symbolic link, or "
        "the keyring did not answer).",
        "Run `codex-login doctor`: it checks auth.json's owner, mode and type, and the keyring.",
        "Sign in again with `codex-login` to write fresh credentials.",
    ),
    # --- device code ----------------------------------------------------------------------------------
    _row(
        "device_code",
        "Device-code sign-in failed",
        "The device-code sign-in could not be completed: the issuer refused a device-code request or "
        "answered it in a way codex-login could not use.",
        "Sign in with the browser instead: `codex-login` (over SSH, forward the port with "
        "`ssh -L 1455:localhost:1455 <host>`, or paste the address the browser could not open into the "
        "waiting codex-login).",
        f"If the issuer had a temporary problem (a 5xx status in `codex-login log`), run {DEVICE_AUTH} again "
        "in a few minutes.",
        _BUNDLE,
    ),
    _row(
        "device_not_enabled",
        "Device-code sign-in is not enabled",
        "The issuer answered that device-code sign-in is not enabled for this account or workspace.",
        "Enable device code authorization in ChatGPT's security settings (for a workspace, ask its "
        "administrator).",
        _BROWSER,
    ),
    _row(
        "device_code_expired",
        "The device code expired",
        "The code was not entered and approved in time (device codes last 15 minutes).",
        f"Run {DEVICE_AUTH} again and enter the code promptly.",
        _BROWSER,
    ),
    _row(
        "device_denied",
        "The device-code sign-in was denied",
        "The sign-in was declined on the verification page, or the account may not use Codex.",
        f"If you declined by mistake, run {DEVICE_AUTH} again.",
        "Check with your workspace administrator that your account may use Codex.",
    ),
    # --- API key and refresh (`--with-api-key`, and commands that refresh stored tokens) ---------------
    _row(
        "invalid_api_key",
        "The API key was not accepted",
        "The text read from stdin is empty or contains whitespace or control characters inside the key.",
        "Pipe exactly the key: `printenv OPENAI_API_KEY | codex-login --with-api-key`.",
    ),
    _row(
        "not_logged_in",
        "Not signed in with ChatGPT",
        "There are no ChatGPT credentials (no refresh token) to use.",
        "Sign in with `codex-login`.",
    ),
    _row(
        "refresh_token_expired",
        "The refresh token has expired",
        "The stored sign-in is too old to be renewed.",
        "Run `codex-login logout`, then sign in again with `codex-login`.",
    ),
    _row(
        "refresh_token_reused",
        "The refresh token was already used",
        "Another process (another Codex session, or a copy of auth.json on another machine) renewed the "
        "sign-in first; refresh tokens work once.",
        "Close other Codex sessions that share this CODEX_HOME, then run `codex-login logout` and sign in "
        "again.",
        "Do not copy auth.json between machines; sign in on each one.",
    ),
    _row(
        "refresh_token_invalidated",
        "The refresh token was revoked",
        "The sign-in was revoked (a logout elsewhere, a password change, or an administrator).",
        "Run `codex-login logout`, then sign in again with `codex-login`.",
    ),
    _row(
        "refresh_token_invalid",
        "The refresh token was rejected",
        "The issuer did not accept the stored refresh token.",
        "Run `codex-login logout`, then sign in again with `codex-login`.",
    ),
    _row(
        "refresh_failed",
        "The sign-in could not be renewed",
        "Renewing the stored tokens failed; the stored sign-in was left as it was.",
        "Check the network (`codex-login doctor`) and try again.",
        "If it keeps failing, run `codex-login logout` and sign in again.",
    ),
    _row(
        "refresh_http_error",
        "The issuer refused to renew the sign-in",
        "The token endpoint answered the refresh request with an error status.",
        "Try again later; if it keeps failing, run `codex-login logout` and sign in again.",
    ),
    _row(
        "refresh_invalid_response",
        "The issuer's answer to the refresh was not usable",
        "The token endpoint answered the refresh with success, but not with usable tokens (often a captive "
        "portal or a proxy answering in its place).",
        "Check the network and proxy (`codex-login doctor`), then try again.",
    ),
    # --- the rest -------------------------------------------------------------------------------------
    _row(
        "too_many_open_files",
        "The login server ran out of file descriptors",
        "codex-login could not open a file or connection it needed for the sign-in because the process (or the "
        "whole system) had reached its limit of open files; nothing was saved. Many connections left open to "
        "the callback port, or other programs holding many files, can cause it.",
        "Close programs that hold many files or connections, then run `codex-login` again.",
        "If it happens again, raise the limit of open files (`ulimit -n` shows it) before running `codex-login`.",
    ),
    _row(
        "internal_error",
        "The login server failed internally",
        "An unexpected error inside codex-login's local login server ended the sign-in; nothing was saved.",
        "Run `codex-login` again.",
        "If it happens again, run `codex-login bundle` and send the file with a bug report (it holds no "
        "secrets).",
    ),
    _row(
        GENERIC_FAILURE,
        "Sign-in failed",
        "The sign-in failed in a way codex-login could not classify.",
        "Run `codex-login log` to see the steps of the attempt and where it stopped.",
        _DOCTOR,
        _BUNDLE,
    ),
    _row(
        UNFINISHED,
        "The attempt has no end in the log",
        "The log shows how the attempt started but not how it ended: it is still running, or the process "
        "was killed (or the machine stopped) before it could finish.",
        "If no codex-login is running any more, run `codex-login` again.",
        _BUNDLE,
    ),
)

#: failure class -> advice, in the order of the table (which is the order of the generated document).
ADVICE: Final[Mapping[str, Advice]] = MappingProxyType({row.failure_class: row for row in _ROWS})

#: Every failure class the code may record, in table order (``unfinished`` is not one of them).
FAILURE_CLASSES: Final = tuple(name for name in ADVICE if name != UNFINISHED)

#: Other spellings of a class, read as the class they name.
ALIASES: Final[Mapping[str, str]] = MappingProxyType({"device_expired": "device_code_expired"})


def advice_for(failure_class: str | None, *, without: str | None = None) -> Advice:
    """The advice for ``failure_class``; the generic row for ``None`` or a class the table does not know.

    ``without``: a command whose steps are left out (:meth:`Advice.without`), e.g. :data:`DEVICE_AUTH` for
    the browser sign-in that ``--device-auth`` fell back to: the issuer has just said it has no device sign-in.
    """
    found = ADVICE.get(ALIASES.get(failure_class, failure_class)) if failure_class is not None else None
    advice = found if found is not None else ADVICE[GENERIC_FAILURE]
    return advice.without(without) if without else advice
