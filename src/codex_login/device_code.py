"""Device-code sign-in: the Codex dialect (reference-spec §16) and the standard device grant (RFC 8628).

Which dialect an issuer speaks is decided like this (``dialect="auto"``, the default):

* the default issuer ``https://auth.openai.com`` speaks the **Codex dialect**: no discovery request is made,
  exactly as the reference;
* any other issuer is asked for ``{issuer}/.well-known/openid-configuration``. When it names a
  ``device_authorization_endpoint``, the **standard grant** (RFC 8628) is used with it and the discovered
  ``token_endpoint``;
* when discovery answers without a device endpoint (or with a non-2xx / non-JSON answer), the Codex dialect
  is tried; a transport failure of the discovery request is an error (the issuer cannot be reached, the
  next request would fail the same way);
* a 404 from the Codex ``usercode`` endpoint, a 404 from the RFC 8628 endpoint, or its
  ``unauthorized_client`` answer mean the issuer has no device login for us: :class:`DeviceCodeNotEnabled`
  (kind ``NotFound``), which the CLI turns into the browser fallback of reference-spec §14.5.

Polling: the server's ``interval`` (a string or a number; missing, non-numeric, non-finite or not positive
means RFC 8628's default of 5 s) is clamped to ``[min_interval, 60]`` s (security S-8628-1; ``min_interval``
defaults to 5 and exists so tests can shorten it). Both dialects honour RFC 8628's standard poll errors
(S-8628-2): ``slow_down`` adds 5 s for this and every later poll, ``access_denied`` and ``expired_token``
stop polling; in the Codex dialect a 403 or 404 naming none of them is still pending, as in the reference.
The whole wait is capped at 15 minutes (``device auth timed out after 15 minutes``, parity). Time is read
from an injectable ``clock`` and spent through an injectable ``sleep``, so tests run the 15 minutes on a
fake clock.

What reaches the terminal: the verification URL (for the Codex dialect built locally from the configured
issuer, never taken from the server: S-8628-4; for RFC 8628 the server's ``verification_uri_complete`` or
``verification_uri``, accepted only as an http(s) URL without control characters) and the user code,
stripped of control characters and escape sequences and cut to :data:`USER_CODE_DISPLAY_LIMIT` characters.
Device auth ids, device codes, user codes, authorization codes and verifiers never reach the log: they are
registered with :data:`~codex_login.diagnostics.redact.SECRETS` the moment they arrive, and no event
carries them.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from . import __version__
from .config import CLIENT_ID, DEFAULT_ISSUER
from .diagnostics import events
from .diagnostics.record import attempt_span, new_attempt_id
from .diagnostics.redact import SECRETS, sanitize_terminal_text
from .errors import (
    CallbackError,
    ConfigError,
    DeviceCodeError,
    ErrorKind,
    LoginCancelled,
    LoginError,
    LoginTimedOut,
    PersistError,
    TokenEndpointError,
    TransportError,
)
from .http import HttpClient, HttpResponse, HttpSettings
from .oauth import (
    ExchangedTokens,
    exchange_code_for_tokens,
    form_body,
    log_token_response,
    parse_token_endpoint_error,
    parse_token_json,
    scrub_secrets,
    token_endpoint_for,
)

if TYPE_CHECKING:
    # Imported lazily at run time: the server module brings asyncio, which the device flow never needs.
    from .server import LoginSuccess

__all__ = [
    "DEFAULT_MIN_INTERVAL",
    "DEVICE_CODE_GRANT",
    "DIALECT_CODEX",
    "DIALECT_RFC8628",
    "MAX_INTERVAL",
    "MAX_WAIT_SECONDS",
    "NOT_ENABLED_MESSAGE",
    "DeviceCode",
    "DeviceCodeNotEnabled",
    "DeviceLoginOptions",
    "DeviceLoginStopped",
    "complete_device_code_login",
    "effective_interval",
    "fetch_openid_configuration",
    "render_device_prompt",
    "request_device_code",
    "run_device_code_login",
    "stream_supports_color",
    "url_problem",
]

DIALECT_CODEX = "codex"
DIALECT_RFC8628 = "rfc8628"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
DEFAULT_INTERVAL = 5.0
DEFAULT_MIN_INTERVAL = 5.0
MAX_INTERVAL = 60.0
SLOW_DOWN_STEP = 5.0
MAX_WAIT_SECONDS = 15 * 60.0
USER_CODE_DISPLAY_LIMIT = 64
URL_DISPLAY_LIMIT = 2048
ERROR_DETAIL_LIMIT = 512
SCOPE = "openid profile email offline_access"
DISCOVERY_PATH = "/.well-known/openid-configuration"

NOT_ENABLED_MESSAGE = (
    "device code login is not enabled for this Codex server. Use the browser login or verify the server URL."
)
PHISHING_WARNING = "Device codes are a common phishing target. Never share this code."

_BLUE = "\x1b[94m"
_GRAY = "\x1b[90m"
_RESET = "\x1b[0m"


class DeviceCodeNotEnabled(DeviceCodeError):
    """The issuer has no device-code login for this client (the CLI falls back to the browser)."""

    kind = ErrorKind.NOT_FOUND
    failure_class = "device_not_enabled"


class DeviceLoginStopped(LoginCancelled):
    """The attempt was stopped from outside: ``reason`` is ``cancelled`` (the cancel event), or what the
    caller says (the CLI raises it from its SIGTERM handler with ``terminated``)."""

    def __init__(self, reason: str) -> None:
        super().__init__("Login was not completed")
        self.reason = reason


@dataclass(frozen=True)
class DeviceCode:
    """A device code the user has to enter (reference ``DeviceCode``), plus what polling needs.

    ``user_code`` is the server's raw value (sent back verbatim when polling); show :attr:`display_user_code`.
    """

    dialect: str
    verification_url: str
    user_code: str = field(repr=False)
    #: Seconds between polls, already clamped.
    interval: float
    #: Seconds the code stays valid from ``requested_at`` (at most the 15-minute cap).
    expires_in: float
    #: ``clock()`` when the code was issued.
    requested_at: float
    #: Codex dialect: the ``device_auth_id``; RFC 8628: the ``device_code``. A credential.
    device_secret: str = field(repr=False)
    #: Where to poll: the Codex ``deviceauth/token`` URL or the RFC 8628 token endpoint.
    poll_url: str

    @property
    def display_user_code(self) -> str:
        return sanitize_terminal_text(self.user_code, USER_CODE_DISPLAY_LIMIT)

    @property
    def expires_in_minutes(self) -> int:
        return max(1, math.ceil(self.expires_in / 60))


@dataclass
class DeviceLoginOptions:
    """What one device-code sign-in needs. The defaults are the reference's."""

    codex_home: Path
    issuer: str = DEFAULT_ISSUER
    client_id: str = CLIENT_ID
    forced_chatgpt_workspace_id: tuple[str, ...] = ()
    store_mode: str = "file"
    http: HttpSettings = field(default_factory=HttpSettings)
    attempt_id: str | None = None
    #: ``auto`` (see the module docstring), ``codex`` or ``rfc8628``.
    dialect: str = "auto"
    min_interval: float = DEFAULT_MIN_INTERVAL
    max_wait: float = MAX_WAIT_SECONDS
    #: Monotonic seconds; tests pass a fake clock.
    clock: Callable[[], float] = time.monotonic
    #: Sleeps between polls; default: ``cancel_event.wait`` when there is one, else ``time.sleep``.
    sleep: Callable[[float], None] | None = None
    #: Set it (from another thread) to stop polling with ``Login was not completed``.
    cancel_event: threading.Event | None = None
    #: Called with progress lines for the terminal (store fallback warnings), already sanitized.
    notice: Callable[[str], None] | None = None


# --------------------------------------------------------------------------------------------- helpers


def url_problem(url: str) -> str | None:
    """Why ``url`` is not acceptable as an endpoint or a verification URL from a server, or None: the
    issuer's rule (a discovery document or a device answer must not send the device code, the tokens or the
    user to a plain-http host elsewhere; :func:`codex_login._settings.url_problem`), a query allowed, and at
    most 2 KiB."""
    from ._settings import url_problem as settings_url_problem

    if len(url) > URL_DISPLAY_LIMIT:
        return "it is too long"
    return settings_url_problem(url, what="host", query_allowed=True)


def _positive_seconds(raw: object) -> float | None:
    """A server's number of seconds (a number, or a numeric string as some providers send), or None when it
    is missing, not a number, not finite or not positive."""
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
    if value is None or not math.isfinite(value) or value <= 0:
        return None
    return value


def _effective_expiry(raw: object, maximum: float) -> float:
    """The server's ``expires_in`` capped at ``maximum``; anything unusable means ``maximum``."""
    value = _positive_seconds(raw)
    return maximum if value is None else min(value, maximum)


def effective_interval(raw: object, minimum: float = DEFAULT_MIN_INTERVAL, maximum: float = MAX_INTERVAL) -> float:
    """The poll interval to use for the server's ``interval`` value (string or number), clamped."""
    value = _positive_seconds(raw)
    return min(max(DEFAULT_INTERVAL if value is None else value, minimum), maximum)


def _json_object(resp: HttpResponse) -> dict[str, object] | None:
    if resp.truncated:
        return None
    try:
        data = json.loads(resp.body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the decoder's depth
        return None
    return data if isinstance(data, dict) else None


def _required_str(data: dict[str, object], *names: str) -> str | None:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _transport_failed(err: TransportError) -> None:
    events.device_transport_failure(kind=err.transport_kind, error_class=err.error_class, error=err.display)


def _error_code_for_log(resp: HttpResponse) -> str | None:
    code = parse_token_endpoint_error(resp.text()).error_code
    if code is None:
        return None
    return sanitize_terminal_text(scrub_secrets(code, ()), 64)  # scrubbed whole, then cut


def _detail(resp: HttpResponse, secrets: list[str]) -> str:
    """The server's error text for the returned error (parsed JSON fields or the trimmed body)."""
    shown = scrub_secrets(parse_token_endpoint_error(resp.text()).display_message, secrets)
    return sanitize_terminal_text(shown, ERROR_DETAIL_LIMIT)


def fetch_openid_configuration(client: HttpClient, issuer: str) -> dict[str, object] | None:
    """``{issuer}/.well-known/openid-configuration`` as a JSON object, or None when the issuer has none.

    Raises :class:`TransportError` when the issuer cannot be reached at all. A document that names
    another issuer is ignored (OpenID Connect Discovery §4.3: it MUST be identical).
    """
    resp = client.get(issuer.rstrip("/") + DISCOVERY_PATH)
    if not resp.ok:
        return None
    doc = _json_object(resp)
    if doc is None:
        return None
    named = doc.get("issuer")
    if isinstance(named, str) and named.rstrip("/") != issuer.rstrip("/"):
        return None
    return doc


def _discovered_endpoint(doc: dict[str, object], name: str) -> str | None:
    value = doc.get(name)
    if isinstance(value, str) and url_problem(value) is None:
        return value
    return None


def _choose_dialect(options: DeviceLoginOptions, client: HttpClient) -> tuple[str, str | None, str | None]:
    """(dialect, RFC 8628 device endpoint, RFC 8628 token endpoint)."""
    if options.dialect not in ("auto", DIALECT_CODEX, DIALECT_RFC8628):
        raise ConfigError(
            f"unknown device-code dialect {options.dialect!r} (expected auto, codex or rfc8628)",
            kind=ErrorKind.INVALID_INPUT,
        )
    if options.dialect == DIALECT_CODEX:
        return DIALECT_CODEX, None, None
    base = options.issuer.rstrip("/")
    if options.dialect == "auto" and base == DEFAULT_ISSUER:
        return DIALECT_CODEX, None, None
    try:
        doc = fetch_openid_configuration(client, base)
    except TransportError as err:
        if options.dialect != "auto" or err.transport_kind not in ("closed", "protocol"):
            _transport_failed(err)
            raise
        # The issuer was reached but dropped or garbled the discovery request (some servers close the
        # connection on a path they do not serve): as if it had no document. The reference never asks for
        # one; its usercode request goes ahead and reports what it finds.
        doc = None
    device_endpoint = _discovered_endpoint(doc, "device_authorization_endpoint") if doc else None
    token_endpoint = (_discovered_endpoint(doc, "token_endpoint") if doc else None) or token_endpoint_for(base)
    if device_endpoint is not None:
        return DIALECT_RFC8628, device_endpoint, token_endpoint
    if options.dialect == DIALECT_RFC8628:
        # Asked for the standard grant explicitly: the conventional path of oidc-provider and others.
        return DIALECT_RFC8628, f"{base}/oauth/device/auth", token_endpoint
    return DIALECT_CODEX, None, None


def _sleep_fn(options: DeviceLoginOptions) -> Callable[[float], None]:
    if options.sleep is not None:
        return options.sleep
    event = options.cancel_event
    if event is None:
        return time.sleep

    def wait(seconds: float) -> None:
        event.wait(seconds)  # returns early when cancelled; the caller checks the event next

    return wait


def _check_cancelled(options: DeviceLoginOptions) -> None:
    if options.cancel_event is not None and options.cancel_event.is_set():
        raise DeviceLoginStopped("cancelled")


def _timed_out(options: DeviceLoginOptions, code: DeviceCode) -> LoginTimedOut:
    waited = min(options.max_wait, code.expires_in)
    events.timed_out(after_seconds=waited, logger=events.DEVICE)
    if waited >= options.max_wait:
        return LoginTimedOut(f"device auth timed out after {options.max_wait / 60:g} minutes")  # parity
    # The server's expires_in ended it first: say so, with the real wait (not the 15-minute cap's text).
    shown = f"{waited / 60:g} minutes" if waited >= 120 else f"{waited:g} seconds"
    return LoginTimedOut(f"the device code expired after {shown}")


# --------------------------------------------------------------------------------------------- request


def request_device_code(options: DeviceLoginOptions, client: HttpClient | None = None) -> DeviceCode:
    """Ask the issuer for a device code (reference ``request_device_code``). Logs, never prints."""
    own = client is None
    http = client or HttpClient(options.http)
    try:
        dialect, device_endpoint, token_endpoint = _choose_dialect(options, http)
        if dialect == DIALECT_CODEX:
            return _request_codex(options, http)
        assert device_endpoint is not None and token_endpoint is not None
        return _request_rfc8628(options, http, device_endpoint, token_endpoint)
    finally:
        if own:
            http.close()


def _post(client: HttpClient, url: str, *, json_body: dict[str, str] | None = None, form: str = "") -> HttpResponse:
    try:
        if json_body is not None:
            return client.post_json(url, json_body)
        return client.post_form(url, form)
    except TransportError as err:
        _transport_failed(err)
        raise


def _request_codex(options: DeviceLoginOptions, client: HttpClient) -> DeviceCode:
    base = options.issuer.rstrip("/")
    resp = _post(client, f"{base}/api/accounts/deviceauth/usercode", json_body={"client_id": options.client_id})
    if resp.status == 404:
        events.device_code_failed(dialect=DIALECT_CODEX, status=resp.status_text, error_code=_error_code_for_log(resp))
        raise DeviceCodeNotEnabled(NOT_ENABLED_MESSAGE)
    if not resp.ok:
        events.device_code_failed(dialect=DIALECT_CODEX, status=resp.status_text, error_code=_error_code_for_log(resp))
        raise DeviceCodeError(f"device code request failed with status {resp.status_text}")
    data = _json_object(resp)
    device_auth_id = _required_str(data, "device_auth_id") if data is not None else None
    user_code = _required_str(data, "user_code", "usercode") if data is not None else None
    if data is None or device_auth_id is None or user_code is None:
        events.device_code_failed(dialect=DIALECT_CODEX, status=resp.status_text, error_code=None)
        missing = "device_auth_id" if data is not None and device_auth_id is None else "user_code"
        what = "the body is not a JSON object" if data is None else f"the field {missing!r} is missing"
        raise DeviceCodeError(f"device code response is invalid: {what}")
    SECRETS.add("device_auth_id", device_auth_id)
    SECRETS.add("user_code", user_code)
    interval = effective_interval(data.get("interval"), options.min_interval)
    events.device_code_requested(dialect=DIALECT_CODEX, status=resp.status_text, interval_effective=interval)
    return DeviceCode(
        dialect=DIALECT_CODEX,
        verification_url=f"{base}/codex/device",
        user_code=user_code,
        interval=interval,
        expires_in=options.max_wait,
        requested_at=options.clock(),
        device_secret=device_auth_id,
        poll_url=f"{base}/api/accounts/deviceauth/token",
    )


def _request_rfc8628(
    options: DeviceLoginOptions, client: HttpClient, device_endpoint: str, token_endpoint: str
) -> DeviceCode:
    resp = _post(client, device_endpoint, form=form_body([("client_id", options.client_id), ("scope", SCOPE)]))
    error_code = None if resp.ok else _error_code_for_log(resp)
    if resp.status == 404 or error_code == "unauthorized_client":
        events.device_code_failed(dialect=DIALECT_RFC8628, status=resp.status_text, error_code=error_code)
        raise DeviceCodeNotEnabled(NOT_ENABLED_MESSAGE)
    if not resp.ok:
        events.device_code_failed(dialect=DIALECT_RFC8628, status=resp.status_text, error_code=error_code)
        raise DeviceCodeError(f"device code request failed with status {resp.status_text}: {_detail(resp, [])}")
    data = _json_object(resp)
    problem: str | None = None
    device_code = user_code = verification = None
    if data is None:
        problem = "the body is not a JSON object"
    else:
        device_code = _required_str(data, "device_code")
        user_code = _required_str(data, "user_code")
        # verification_url: the spelling some providers (Google) used before the RFC.
        verification = _required_str(data, "verification_uri_complete") or _required_str(
            data, "verification_uri", "verification_url"
        )
        for name, value in (("device_code", device_code), ("user_code", user_code), ("verification_uri", verification)):
            if value is None:
                problem = f"the field {name!r} is missing"
                break
        if problem is None and verification is not None and (why := url_problem(verification)) is not None:
            problem = f"the verification URL is refused: {why}"
    if problem is not None or data is None or device_code is None or user_code is None or verification is None:
        events.device_code_failed(dialect=DIALECT_RFC8628, status=resp.status_text, error_code=None)
        raise DeviceCodeError(f"device code response is invalid: {problem}")
    SECRETS.add("device_code", device_code)
    SECRETS.add("user_code", user_code)
    interval = effective_interval(data.get("interval"), options.min_interval)
    expires_in = _effective_expiry(data.get("expires_in"), options.max_wait)
    events.device_code_requested(dialect=DIALECT_RFC8628, status=resp.status_text, interval_effective=interval)
    return DeviceCode(
        dialect=DIALECT_RFC8628,
        verification_url=verification,
        user_code=user_code,
        interval=interval,
        expires_in=expires_in,
        requested_at=options.clock(),
        device_secret=device_code,
        poll_url=token_endpoint,
    )


# --------------------------------------------------------------------------------------------- complete


def complete_device_code_login(
    options: DeviceLoginOptions, code: DeviceCode, client: HttpClient | None = None
) -> LoginSuccess:
    """Poll until the user has entered the code, get the tokens, check the workspace, save them
    (reference ``complete_device_code_login``). Logs, never prints."""
    own = client is None
    http = client or HttpClient(options.http)
    try:
        poll = _poll_codex if code.dialect == DIALECT_CODEX else _poll_rfc8628
        tokens = poll(options, code, http)
        return _persist(options, tokens)
    finally:
        if own:
            http.close()


def _poll_codex(options: DeviceLoginOptions, code: DeviceCode, client: HttpClient) -> ExchangedTokens:
    sleep = _sleep_fn(options)
    deadline = code.requested_at + min(options.max_wait, code.expires_in)
    interval = code.interval
    polls = 0
    payload = {"device_auth_id": code.device_secret, "user_code": code.user_code}
    secrets = [code.device_secret, code.user_code]
    while True:
        _check_cancelled(options)
        polls += 1
        resp = _post(client, code.poll_url, json_body=payload)
        if resp.ok:
            break
        if resp.status in (403, 404):
            # The reference's "pending": the user has not entered the code yet. The standard errors, if the
            # body names one, are honoured as in the RFC 8628 dialect (S-8628-2); anything else, a body
            # without JSON included (what the Codex backend sends), is still pending.
            error_code = _error_code_for_log(resp)
            next_interval = _standard_poll_answer(resp, error_code, interval, polls, secrets)
            if next_interval is None:
                events.device_poll(
                    status=resp.status_text, pending="authorization_pending", polls=polls, interval_effective=interval
                )
            else:
                interval = next_interval
            remaining = deadline - options.clock()
            if remaining <= 0:
                raise _timed_out(options, code)
            sleep(min(interval, remaining))
            continue
        events.device_poll_failed(status=resp.status_text, error_code=_error_code_for_log(resp), polls=polls)
        raise DeviceCodeError(f"device auth failed with status {resp.status_text}")
    data = _json_object(resp)
    authorization_code = _required_str(data, "authorization_code") if data is not None else None
    verifier = _required_str(data, "code_verifier") if data is not None else None
    if data is None or authorization_code is None or verifier is None:
        events.device_poll_failed(status=resp.status_text, error_code=None, polls=polls)
        missing = "authorization_code" if data is not None and authorization_code is None else "code_verifier"
        what = "the body is not a JSON object" if data is None else f"the field {missing!r} is missing"
        raise DeviceCodeError(f"device auth response is invalid: {what}")
    SECRETS.add("code", authorization_code)
    SECRETS.add("code_verifier", verifier)
    events.device_authorized(polls=polls)
    base = options.issuer.rstrip("/")
    try:
        tokens = exchange_code_for_tokens(
            client,
            issuer=base,
            client_id=options.client_id,
            redirect_uri=f"{base}/deviceauth/callback",
            code_verifier=verifier,
            code=authorization_code,
        )
    except (TokenEndpointError, TransportError) as err:
        raise LoginError(f"device code exchange failed: {err}", failure_class=err.failure_class) from None
    return tokens


def _poll_rfc8628(options: DeviceLoginOptions, code: DeviceCode, client: HttpClient) -> ExchangedTokens:
    sleep = _sleep_fn(options)
    deadline = code.requested_at + min(options.max_wait, code.expires_in)
    interval = code.interval
    polls = 0
    body = form_body(
        [("grant_type", DEVICE_CODE_GRANT), ("device_code", code.device_secret), ("client_id", options.client_id)]
    )
    secrets = [code.device_secret, code.user_code]
    while True:
        remaining = deadline - options.clock()
        if remaining <= 0:
            raise _timed_out(options, code)
        # RFC 8628 §3.4: wait the interval before each request, the first one included.
        sleep(min(interval, remaining))
        _check_cancelled(options)
        polls += 1
        resp = _post(client, code.poll_url, form=body)
        if resp.ok:
            break
        error_code = _error_code_for_log(resp)
        next_interval = _standard_poll_answer(resp, error_code, interval, polls, secrets)
        if next_interval is not None:
            interval = next_interval
            continue
        events.device_poll_failed(status=resp.status_text, error_code=error_code, polls=polls)
        raise DeviceCodeError(f"device auth failed with status {resp.status_text}: {_detail(resp, secrets)}")
    log_token_response(resp, events.DEVICE)
    try:
        data = parse_token_json(resp, ("id_token", "access_token", "refresh_token"), logger=events.DEVICE)
    except TokenEndpointError as err:
        raise LoginError(f"device code exchange failed: {err}", failure_class=err.failure_class) from None
    events.device_authorized(polls=polls)
    return ExchangedTokens(
        id_token=data["id_token"], access_token=data["access_token"], refresh_token=data["refresh_token"]
    )


def _standard_poll_answer(
    resp: HttpResponse, error_code: str | None, interval: float, polls: int, secrets: list[str]
) -> float | None:
    """RFC 8628 §3.5's standard poll errors, honoured by both dialects (security S-8628-2).

    ``authorization_pending`` and ``slow_down`` go on polling: the interval for the next poll is returned,
    5 s longer after ``slow_down`` (for this and all subsequent requests). ``access_denied`` and
    ``expired_token`` stop polling: raised. Any other code (or none) returns None; the caller decides.
    """
    if error_code in ("authorization_pending", "slow_down"):
        if error_code == "slow_down":
            interval += SLOW_DOWN_STEP
        events.device_poll(status=resp.status_text, pending=error_code, polls=polls, interval_effective=interval)
        return interval
    if error_code == "access_denied":
        events.device_poll_failed(status=resp.status_text, error_code=error_code, polls=polls)
        raise DeviceCodeError(
            f"device authorization was denied: {_detail(resp, secrets)}",
            kind=ErrorKind.PERMISSION_DENIED,
            failure_class="device_denied",
        )
    if error_code == "expired_token":
        events.device_poll_failed(status=resp.status_text, error_code=error_code, polls=polls)
        raise LoginTimedOut(
            "the device code expired before sign-in was completed; run `codex-login --device-auth` again",
            failure_class="device_code_expired",
        )
    return None


def _persist(options: DeviceLoginOptions, tokens: ExchangedTokens) -> LoginSuccess:
    """Workspace check, then save with ``api_key = None`` (the device flow makes no API-key exchange)."""
    from ._threads import stop_signals_held
    from .server import LoginSuccess, workspace_restriction_message
    from .storage import AuthDotJson, StoreMode, TokenData, create_store, store_lock
    from .token_data import TokenDataError, parse_id_token

    tokens.register_secrets()
    try:
        info = parse_id_token(tokens.id_token)
    except TokenDataError as err:
        raise LoginError(f"device code exchange failed: {err}", failure_class=err.failure_class) from None
    restriction = workspace_restriction_message(options.forced_chatgpt_workspace_id, info.chatgpt_account_id)
    if restriction is not None:
        events.workspace_denied(reason="missing_claim" if not info.chatgpt_account_id else "mismatch")
        raise CallbackError(restriction, failure_class="workspace_restriction")
    mode = StoreMode(options.store_mode)
    store = create_store(options.codex_home, mode)
    auth = AuthDotJson.from_chatgpt_tokens(
        TokenData(info, tokens.access_token, tokens.refresh_token, info.chatgpt_account_id), api_key=None
    )
    try:
        # A Ctrl-C or SIGTERM during the save waits for its end: once saved, the sign-in has succeeded.
        with stop_signals_held(), store_lock(options.codex_home, mode):  # as the browser and API-key sign-ins
            where = store.save(auth)
            events.credentials_saved(store=where, logger=events.DEVICE)
    except LoginError as err:
        events.credentials_not_saved(
            store=options.store_mode, error_class=type(err).__name__, errno=None, logger=events.DEVICE
        )
        raise PersistError(f"Sign-in completed but credentials could not be saved locally. {err}") from None
    for warning in store.warnings:
        if options.notice is not None:
            options.notice(sanitize_terminal_text(warning, 1024))
    return LoginSuccess(
        store=where,
        email=info.email,
        plan=info.chatgpt_plan_type,
        account_id=info.chatgpt_account_id,
        attempt_id=options.attempt_id or "",
    )


# --------------------------------------------------------------------------------------------- the attempt

_OUTCOMES = {
    "cancelled": "cancelled",
    "timeout": "timeout",
    "device_code_expired": "timeout",
    "denied": "denied",
    "device_denied": "denied",
    "workspace_restriction": "denied",
}


def run_device_code_login(
    options: DeviceLoginOptions, on_code: Callable[[DeviceCode], None] | None = None
) -> LoginSuccess:
    """One device-code attempt (reference ``run_device_code_login``): request, show, poll, save.

    ``on_code`` is called once with the code so the caller can show it (the CLI prints
    :func:`render_device_prompt`). The attempt runs in its own attempt span, logs ``login attempt started``
    and exactly one ``login finished``. Raises the attempt's :class:`LoginError` (``attempt_id`` set).
    """
    attempt_id = options.attempt_id or new_attempt_id()
    options.attempt_id = attempt_id
    started = time.monotonic()

    def finish(outcome: str, failure: str | None) -> None:
        events.finished(
            outcome=outcome, failure_class=failure, duration_ms=int((time.monotonic() - started) * 1000), flow="device"
        )

    with attempt_span(attempt_id):
        events.attempt_started(
            flow="device",
            issuer=options.issuer,
            client_id=options.client_id,
            store=options.store_mode,
        )
        try:
            with HttpClient(options.http) as client:
                code = request_device_code(options, client)
                if on_code is not None:
                    on_code(code)
                result = complete_device_code_login(options, code, client)
        except LoginError as err:
            err.attempt_id = attempt_id
            if isinstance(err, LoginCancelled):
                events.cancelled(reason=getattr(err, "reason", "cancelled"), logger=events.DEVICE)
            finish(_OUTCOMES.get(err.failure_class, "error"), err.failure_class)
            raise
        except KeyboardInterrupt:
            # Ctrl-C while waiting: the attempt still gets its one final event.
            events.cancelled(reason="interrupted", logger=events.DEVICE)
            finish("cancelled", "cancelled")
            raise
        except Exception:
            finish("error", "error")
            raise
        finish("success", None)
    return result


# --------------------------------------------------------------------------------------------- the prompt


def stream_supports_color(stream: TextIO, env: dict[str, str] | None = None) -> bool:
    """Colours only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org) or TERM=dumb."""
    environ = os.environ if env is None else env
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def render_device_prompt(code: DeviceCode, *, color: bool, version: str = __version__) -> str:
    """The reference's §16 prompt (``codex-login`` naming), for stdout. Ends with a newline."""

    def paint(colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if color else text

    url = sanitize_terminal_text(code.verification_url, URL_DISPLAY_LIMIT)
    minutes = code.expires_in_minutes
    unit = "minute" if minutes == 1 else "minutes"
    lines = [
        f"Welcome to codex-login [v{paint(_GRAY, version)}]",
        paint(_GRAY, "Sign in to Codex from the command line"),
        "",
        "Follow these steps to sign in with ChatGPT using device code authorization:",
        "",
        "1. Open this link in your browser and sign in to your account",
        f"   {paint(_BLUE, url)}",
        "",
        f"2. Enter this one-time code {paint(_GRAY, f'(expires in {minutes} {unit})')}",
        f"   {paint(_BLUE, code.display_user_code)}",
        "",
        paint(_GRAY, PHISHING_WARNING),
        "",
    ]
    return "\n".join(lines) + "\n"
