"""The event catalogue: the only way codex-login logs.

One function per event. Messages are constants; fields are reviewed, typed and never carry a code, state,
verifier, token, API key, callback description, user code or raw backend body (DECISIONS §4). Events of the
reference's catalogue (reference-spec §13.1) keep their exact message, level, target and field names; the
events DECISIONS D-11 adds are marked ``D-11``.

Targets are loggers named like the Rust module paths (``codex_login.server`` renders as
``codex_login::server``), so ``RUST_LOG`` directives written for Codex select the same lines.
"""

from __future__ import annotations

import logging

from .record import Display, FieldValue, emit

# A library's loggers end in a NullHandler: with no durable log (log_dir unusable) or in an embedding program
# that configures no logging, a warning would otherwise reach stderr through logging.lastResort as a bare
# message line (security G1: a sign-in without its log prints one warning, not stray event lines).
for _name in ("codex_login", "codex_cli"):
    logging.getLogger(_name).addHandler(logging.NullHandler())

CLI = logging.getLogger("codex_cli.login")
SERVER = logging.getLogger("codex_login.server")
DEVICE = logging.getLogger("codex_login.device_code_auth")
AUTH = logging.getLogger("codex_login.auth")

INFO = logging.INFO
WARN = logging.WARNING
ERROR = logging.ERROR
DEBUG = logging.DEBUG

# Messages, named so tests and the timeline reader refer to them instead of retyping them.
MSG_BROWSER_FLOW = "starting browser login flow"
MSG_DEVICE_FLOW = "starting device code login flow"
# Written by the Rust CLI's run_login_with_device_code_fallback_to_browser, never by codex-login (its --device-auth
# writes MSG_DEVICE_FLOW, as Codex's does): kept so `codex-login log` reads a log the Rust CLI wrote.
MSG_DEVICE_FALLBACK_FLOW = "starting login flow with device code fallback"
MSG_API_KEY_FLOW = "starting api key login flow"
MSG_CALLBACK = "received login callback"
MSG_STATE_MISMATCH = "login callback state mismatch"
MSG_OAUTH_ERROR = "oauth callback returned error"
MSG_EXCHANGE_START = "starting oauth token exchange"
MSG_TRANSPORT_FAILURE = "oauth token exchange transport failure"
MSG_NON_SUCCESS = "oauth token exchange returned non-success status"
MSG_EXCHANGE_OK = "oauth token exchange succeeded"
MSG_CALLBACK_EXCHANGE_FAILED = "login callback token exchange failed"
MSG_FALLBACK_PORT = "default login callback port is unavailable; falling back to the registered fallback port"
# D-11
MSG_ATTEMPT_STARTED = "login attempt started"
MSG_SERVER_BOUND = "login server listening"
MSG_CANCEL_SENT = "sent cancel request to previous login server"
MSG_BIND_FAILED = "login server could not bind"
MSG_BROWSER_OPENED = "browser opened"
MSG_BROWSER_NOT_OPENED = "browser not opened"
MSG_BROWSER_FAILED = "browser could not be opened"
MSG_ENVIRONMENT = "login environment"
MSG_REQUEST_REJECTED = "login server rejected request"
MSG_REJECTIONS_NOT_LOGGED = "login server rejected more requests than were logged"
MSG_CALLBACK_ALREADY_USED = "login callback after the attempt was settled"
MSG_CALLBACK_MISSING_CODE = "login callback missing authorization code"
MSG_ISSUER_MISMATCH = "login callback issuer mismatch"
MSG_TOKEN_ROUTE = "oauth token request route"
MSG_TRANSPORT_CLASSIFIED = "oauth token transport error classified"
MSG_TOKEN_RESPONSE = "oauth token endpoint response"
MSG_INVALID_TOKEN_RESPONSE = "oauth token response invalid"
MSG_WORKSPACE_DENIED = "login workspace restriction failed"
MSG_API_KEY_EXCHANGE_FAILED = "api key exchange failed"
MSG_API_KEY_EXCHANGE_OK = "api key exchange succeeded"
MSG_CREDENTIALS_SAVED = "credentials saved"
MSG_CREDENTIALS_NOT_SAVED = "credentials could not be saved"
MSG_SUCCESS_PAGE = "success page served"
MSG_PASTED_URL = "pasted redirect URL received"
MSG_CANCELLED = "login cancelled"
MSG_TIMED_OUT = "login timed out"
MSG_FINISHED = "login finished"
MSG_DEVICE_CODE_REQUESTED = "device code requested"
MSG_DEVICE_CODE_FAILED = "device code request failed"
MSG_DEVICE_POLL = "device code poll"
MSG_DEVICE_AUTHORIZED = "device code authorized"
MSG_DEVICE_POLL_FAILED = "device code poll failed"
MSG_DEVICE_TRANSPORT_FAILURE = "device code transport failure"
MSG_API_KEY_LOGIN = "api key received"
MSG_REFRESH_START = "starting token refresh"
MSG_REFRESH_OK = "token refresh succeeded"
MSG_REFRESH_FAILED = "token refresh failed"
MSG_LOGOUT = "logout finished"
MSG_REVOKE_FAILED = "token revocation failed"
MSG_REVOKE_OK = "token revoked"

Fields = dict[str, FieldValue]


# --- flow starts (codex_cli::login) -------------------------------------------------------------------


def browser_login_flow_started() -> None:
    emit(CLI, INFO, MSG_BROWSER_FLOW)


def device_login_flow_started() -> None:
    emit(CLI, INFO, MSG_DEVICE_FLOW)


def api_key_login_flow_started() -> None:
    emit(CLI, INFO, MSG_API_KEY_FLOW)


def attempt_started(*, flow: str, issuer: str, client_id: str, store: str, fallback_from: str | None = None) -> None:
    """D-11: who and what, once per attempt. The issuer is sanitized here, so no caller can log it raw.

    ``fallback_from``: the flow this attempt stands in for (``device`` after ``--device-auth`` fell back to the
    browser); the field is written only then, so ``codex-login log`` can leave that flow out of its advice.
    """
    from .. import __version__
    from .redact import sanitize_url_for_logging

    fields: Fields = {
        "flow": Display(flow),
        "issuer": Display(sanitize_url_for_logging(issuer)),
        "client_id": client_id,
        "version": Display(__version__),
        "store": Display(store),
    }
    if fallback_from is not None:
        fields["fallback_from"] = Display(fallback_from)
    emit(CLI, INFO, MSG_ATTEMPT_STARTED, fields)


def environment(*, ssh: bool, wsl: bool, container: str | None, display: bool, browser_env: bool) -> None:
    """D-11: where the attempt runs (booleans and a container kind only)."""
    emit(
        CLI,
        INFO,
        MSG_ENVIRONMENT,
        {
            "ssh": ssh,
            "wsl": wsl,
            "container": Display(container or "none"),
            "display": display,
            "browser_env": browser_env,
        },
    )


# --- binding and browser (codex_login::server) --------------------------------------------------------


def server_bound(*, port: int, addresses: str, fallback: bool, attempts: int) -> None:
    emit(
        SERVER,
        INFO,
        MSG_SERVER_BOUND,
        {"port": port, "addresses": Display(addresses), "fallback": fallback, "attempts": attempts},
    )


def fallback_port(*, preferred_bind_address: str, fallback_bind_address: str) -> None:
    emit(
        SERVER,
        WARN,
        MSG_FALLBACK_PORT,
        {
            "preferred_bind_address": Display(preferred_bind_address),
            "fallback_bind_address": Display(fallback_bind_address),
        },
    )


def cancel_sent(*, port: int, answered: bool) -> None:
    emit(SERVER, INFO, MSG_CANCEL_SENT, {"port": port, "answered": answered})


def bind_failed(*, port: int, error_class: str, errno: int | None) -> None:
    emit(SERVER, ERROR, MSG_BIND_FAILED, {"port": port, "error_class": Display(error_class), "errno": errno})


def browser_opened(*, opener: str) -> None:
    emit(SERVER, INFO, MSG_BROWSER_OPENED, {"opener": Display(opener)})


def browser_not_opened(*, reason: str) -> None:
    emit(SERVER, INFO, MSG_BROWSER_NOT_OPENED, {"reason": Display(reason)})


def browser_failed(*, opener: str, reason: str) -> None:
    emit(SERVER, WARN, MSG_BROWSER_FAILED, {"opener": Display(opener), "reason": Display(reason)})


# --- requests and the callback ------------------------------------------------------------------------


def request_rejected(*, reason: str, path: str, http_status: int) -> None:
    """D-11: a request the server refused (unexpected host, cross-site, too large, bad method...)."""
    emit(
        SERVER,
        WARN,
        MSG_REQUEST_REJECTED,
        {"reason": Display(reason), "path": Display(path), "http_status": http_status},
    )


def rejections_not_logged(*, reason: str, count: int) -> None:
    """D-11: once per attempt and reason, how many refused requests went unlogged after the first few (a
    flood of junk requests must not grow the log without bound: security G8)."""
    emit(SERVER, WARN, MSG_REJECTIONS_NOT_LOGGED, {"reason": Display(reason), "count": count})


def callback_received(
    *, path: str, has_code: bool, has_state: bool, has_error: bool, state_valid: bool
) -> None:
    emit(
        SERVER,
        INFO,
        MSG_CALLBACK,
        {
            "path": Display(path),
            "has_code": has_code,
            "has_state": has_state,
            "has_error": has_error,
            "state_valid": state_valid,
        },
    )


def state_mismatch(*, path: str, has_code: bool, has_state: bool, has_error: bool) -> None:
    emit(
        SERVER,
        WARN,
        MSG_STATE_MISMATCH,
        {"path": Display(path), "has_code": has_code, "has_state": has_state, "has_error": has_error},
    )


def callback_already_settled(*, path: str) -> None:
    emit(SERVER, WARN, MSG_CALLBACK_ALREADY_USED, {"path": Display(path)})


def issuer_mismatch() -> None:
    emit(SERVER, WARN, MSG_ISSUER_MISMATCH)


def oauth_callback_error(*, error_code: str, has_error_description: bool) -> None:
    emit(
        SERVER,
        WARN,
        MSG_OAUTH_ERROR,
        {"error_code": error_code, "has_error_description": has_error_description},
    )


def callback_missing_code() -> None:
    emit(SERVER, WARN, MSG_CALLBACK_MISSING_CODE)


def pasted_url_received(*, accepted: bool) -> None:
    emit(SERVER, INFO, MSG_PASTED_URL, {"accepted": accepted})


# --- token endpoint -----------------------------------------------------------------------------------


def token_exchange_started(
    *, issuer: str, token_endpoint: str, redirect_uri: str, logger: logging.Logger = SERVER
) -> None:
    emit(
        logger,
        INFO,
        MSG_EXCHANGE_START,
        {
            "issuer": Display(issuer),
            "token_endpoint": Display(token_endpoint),
            "redirect_uri": Display(redirect_uri),
        },
    )


def token_request_route(*, ca_source: str, proxy: str, logger: logging.Logger = SERVER) -> None:
    """D-9: which CA source and which proxy (scheme://host:port) the token request used."""
    emit(logger, INFO, MSG_TOKEN_ROUTE, {"ca_source": Display(ca_source), "proxy": Display(proxy)})


def token_transport_failure(
    *, is_timeout: bool, is_connect: bool, is_request: bool, error: str, logger: logging.Logger = SERVER
) -> None:
    emit(
        logger,
        ERROR,
        MSG_TRANSPORT_FAILURE,
        {
            "is_timeout": is_timeout,
            "is_connect": is_connect,
            "is_request": is_request,
            "error": Display(error),
        },
    )


def token_transport_classified(
    *, kind: str, error_class: str, errno: int | None, logger: logging.Logger = SERVER
) -> None:
    """D-11: which of connect / tls / proxy / dns / timeout / closed / protocol it was."""
    emit(
        logger,
        ERROR,
        MSG_TRANSPORT_CLASSIFIED,
        {"kind": Display(kind), "error_class": Display(error_class), "errno": errno},
    )


def token_response(
    *,
    status: str,
    content_type: str,
    body_len: int,
    request_id: str | None,
    cf_ray: str | None,
    logger: logging.Logger = SERVER,
) -> None:
    """D-11: every answer of the token endpoint, with the server's request IDs for support."""
    fields: Fields = {"status": Display(status), "content_type": content_type, "body_len": body_len}
    if request_id is not None:
        fields["request_id"] = request_id
    if cf_ray is not None:
        fields["cf_ray"] = cf_ray
    emit(logger, INFO, MSG_TOKEN_RESPONSE, fields)


def token_non_success(
    *, status: str, error_code: str, error_message: str, logger: logging.Logger = SERVER
) -> None:
    emit(
        logger,
        WARN,
        MSG_NON_SUCCESS,
        {"status": Display(status), "error_code": error_code, "error_message": error_message},
    )


def token_exchange_succeeded(*, status: str, logger: logging.Logger = SERVER) -> None:
    emit(logger, INFO, MSG_EXCHANGE_OK, {"status": Display(status)})


def token_response_invalid(
    *, status: str, reason: str, field: str | None, logger: logging.Logger = SERVER
) -> None:
    """D-11: a 2xx answer we could not use: ``not_json``, ``not_object``, ``missing_field``, ``too_large``."""
    fields: Fields = {"status": Display(status), "reason": Display(reason)}
    if field is not None:
        fields["field"] = Display(field)
    emit(logger, ERROR, MSG_INVALID_TOKEN_RESPONSE, fields)


def callback_token_exchange_failed() -> None:
    emit(SERVER, ERROR, MSG_CALLBACK_EXCHANGE_FAILED)


def workspace_denied(*, reason: str) -> None:
    emit(SERVER, WARN, MSG_WORKSPACE_DENIED, {"reason": Display(reason)})


def api_key_exchange_failed(*, status: str) -> None:
    emit(SERVER, WARN, MSG_API_KEY_EXCHANGE_FAILED, {"status": Display(status)})


def api_key_exchange_succeeded() -> None:
    emit(SERVER, INFO, MSG_API_KEY_EXCHANGE_OK)


def credentials_saved(*, store: str, logger: logging.Logger = SERVER) -> None:
    emit(logger, INFO, MSG_CREDENTIALS_SAVED, {"store": Display(store)})


def credentials_not_saved(
    *, store: str, error_class: str, errno: int | None, logger: logging.Logger = SERVER
) -> None:
    emit(
        logger,
        ERROR,
        MSG_CREDENTIALS_NOT_SAVED,
        {"store": Display(store), "error_class": Display(error_class), "errno": errno},
    )


def success_page_served() -> None:
    emit(SERVER, INFO, MSG_SUCCESS_PAGE)


# --- the end of an attempt ----------------------------------------------------------------------------


def cancelled(*, reason: str, logger: logging.Logger = SERVER) -> None:
    emit(logger, WARN, MSG_CANCELLED, {"reason": Display(reason)})


def timed_out(*, after_seconds: float, logger: logging.Logger = SERVER) -> None:
    emit(logger, WARN, MSG_TIMED_OUT, {"after_seconds": Display(f"{after_seconds:g}")})


def finished(*, outcome: str, failure_class: str | None, duration_ms: int, flow: str) -> None:
    """D-11: exactly one per attempt. ``outcome``: success, denied, cancelled, timeout, error."""
    fields: Fields = {"outcome": Display(outcome), "flow": Display(flow), "duration_ms": duration_ms}
    if failure_class is not None:
        fields["failure"] = Display(failure_class)
    emit(CLI, INFO if outcome == "success" else WARN, MSG_FINISHED, fields)


# --- device code (codex_login::device_code_auth) ------------------------------------------------------


def device_code_requested(*, dialect: str, status: str, interval_effective: float) -> None:
    emit(
        DEVICE,
        INFO,
        MSG_DEVICE_CODE_REQUESTED,
        {
            "dialect": Display(dialect),
            "status": Display(status),
            "interval_effective": Display(f"{interval_effective:g}"),
        },
    )


def device_code_failed(*, dialect: str, status: str, error_code: str | None) -> None:
    fields: Fields = {"dialect": Display(dialect), "status": Display(status)}
    if error_code is not None:
        fields["error_code"] = error_code
    emit(DEVICE, WARN, MSG_DEVICE_CODE_FAILED, fields)


def device_poll(*, status: str, pending: str, polls: int, interval_effective: float) -> None:
    emit(
        DEVICE,
        DEBUG,
        MSG_DEVICE_POLL,
        {
            "status": Display(status),
            "pending": Display(pending),
            "polls": polls,
            "interval_effective": Display(f"{interval_effective:g}"),
        },
    )


def device_authorized(*, polls: int) -> None:
    emit(DEVICE, INFO, MSG_DEVICE_AUTHORIZED, {"polls": polls})


def device_poll_failed(*, status: str, error_code: str | None, polls: int) -> None:
    fields: Fields = {"status": Display(status), "polls": polls}
    if error_code is not None:
        fields["error_code"] = error_code
    emit(DEVICE, WARN, MSG_DEVICE_POLL_FAILED, fields)


def device_transport_failure(*, kind: str, error_class: str, error: str) -> None:
    emit(
        DEVICE,
        ERROR,
        MSG_DEVICE_TRANSPORT_FAILURE,
        {"kind": Display(kind), "error_class": Display(error_class), "error": Display(error)},
    )


# --- API key, refresh, logout (codex_login::auth) -----------------------------------------------------


def api_key_received(*, key_len: int, looks_like_openai_key: bool) -> None:
    emit(AUTH, INFO, MSG_API_KEY_LOGIN, {"key_len": key_len, "looks_like_openai_key": looks_like_openai_key})


def refresh_started(*, token_endpoint: str) -> None:
    emit(AUTH, INFO, MSG_REFRESH_START, {"token_endpoint": Display(token_endpoint)})


def refresh_succeeded(*, status: str, rotated: bool) -> None:
    emit(AUTH, INFO, MSG_REFRESH_OK, {"status": Display(status), "rotated": rotated})


def refresh_failed(*, status: str, error_code: str, reason: str) -> None:
    emit(
        AUTH,
        ERROR,
        MSG_REFRESH_FAILED,
        {"status": Display(status), "error_code": error_code, "reason": Display(reason)},
    )


def revoke_failed(*, token_kind: str, status: str, kind: str) -> None:
    emit(
        AUTH,
        WARN,
        MSG_REVOKE_FAILED,
        {"token_kind": Display(token_kind), "status": Display(status), "kind": Display(kind)},
    )


def revoke_succeeded(*, token_kind: str) -> None:
    emit(AUTH, INFO, MSG_REVOKE_OK, {"token_kind": Display(token_kind)})


def logout_finished(*, removed: bool, stores: str) -> None:
    emit(AUTH, INFO, MSG_LOGOUT, {"removed": removed, "stores": Display(stores)})
