"""The token endpoint: authorization-code exchange, API-key token exchange, and error-body parsing.

The events of reference-spec §7 fire here, so every front end (browser, device, app-server) logs the same
lines. What the log may hold is narrow: sanitized URLs, the status, parsed JSON error fields (with any echo
of the code or verifier scrubbed), body length and content type, server request IDs. Raw bodies go only to
the returned error, which the terminal and the browser page show.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

from .diagnostics import events
from .diagnostics.redact import SECRETS, sanitize_url_for_logging
from .errors import TokenEndpointError, TransportError
from .http import HttpClient, HttpResponse

LOG_FIELD_LIMIT = 256
DISPLAY_BODY_LIMIT = 2048


def url_encode(value: str) -> str:
    """``urlencoding::encode``: RFC 3986 percent-encoding that keeps only ``A-Z a-z 0-9 - . _ ~``."""
    return quote(value, safe="-._~")


def form_body(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{k}={url_encode(v)}" for k, v in pairs)


def token_endpoint_for(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/oauth/token"


@lru_cache(maxsize=8)
def loggable_token_endpoint(issuer: str) -> tuple[str, str]:
    """The issuer and its token endpoint as ``token exchange started`` logs them (sanitized URLs).

    Computed once per issuer: the browser sign-in computes them while the browser is away, so a callback
    does not parse two URLs on its way to the token endpoint (issue 9).
    """
    # Extended keys: an issuer given with ?apikey=... must not reach the log (DECISIONS §4).
    return (
        sanitize_url_for_logging(issuer, extended=True),
        sanitize_url_for_logging(token_endpoint_for(issuer), extended=True),
    )


@dataclass(frozen=True)
class TokenEndpointErrorDetail:
    """reference-spec §12.3: what a non-2xx body says, split by what may be logged."""

    error_code: str | None
    error_message: str | None
    display_message: str


def _non_blank(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def parse_token_endpoint_error(body: str) -> TokenEndpointErrorDetail:
    trimmed = body.strip()
    if not trimmed:
        return TokenEndpointErrorDetail(None, None, "unknown error")
    try:
        parsed = json.loads(trimmed)
    except (ValueError, RecursionError):  # a body nested past the decoder's depth is not JSON either
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        code = _non_blank(error)
        if code is None and isinstance(error, dict):
            code = _non_blank(error.get("code"))
        description = _non_blank(parsed.get("error_description"))
        if description is not None:
            return TokenEndpointErrorDetail(code, description, description)
        if isinstance(error, dict) and (message := _non_blank(error.get("message"))) is not None:
            return TokenEndpointErrorDetail(code, message, message)
        if code is not None:
            return TokenEndpointErrorDetail(code, None, code)
    return TokenEndpointErrorDetail(None, None, trimmed)


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a live secret (and its URL-encoded form) with ``<redacted>``, then every
    secret of the process's registry (the state, the PKCE challenge, a device auth ID...).

    Token endpoints sometimes echo what they rejected; that echo must reach neither the log nor the terminal
    nor the page (security R-3). Callers scrub before they cut a text to length: a secret cut in two is no
    longer found by an exact match, and its first half would be logged.
    """
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "<redacted>").replace(url_encode(secret), "<redacted>")
    return SECRETS.scrub(text)


def _log_safe(text: str, secrets: Iterable[str]) -> str:
    text = scrub_secrets(text, secrets)
    return text if len(text) <= LOG_FIELD_LIMIT else text[:LOG_FIELD_LIMIT] + "…"


@dataclass(frozen=True)
class ExchangedTokens:
    id_token: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)

    def register_secrets(self) -> None:
        """Scrub the three tokens from every line that leaves from now on (security R-3)."""
        SECRETS.add("id_token", self.id_token)
        SECRETS.add("access_token", self.access_token)
        SECRETS.add("refresh_token", self.refresh_token)


def log_token_response(resp: HttpResponse, logger: logging.Logger) -> None:
    """``oauth token endpoint response`` for any answer of the issuer's token endpoints (the sign-in's, the
    device flow's, a refresh's): its status line, content type, size and tracing headers, never its body."""
    events.token_response(
        status=resp.status_text,
        content_type=resp.content_type or "none",
        body_len=len(resp.body),
        request_id=resp.headers.get("x-request-id"),
        cf_ray=resp.headers.get("cf-ray"),
        logger=logger,
    )


def post_token_request(
    client: HttpClient,
    url: str,
    body: str,
    *,
    secrets: Iterable[str],
    logger: logging.Logger,
    json_body: object | None = None,
) -> HttpResponse:
    """POST to the token endpoint; log transport failures and the response line; raise on no answer."""
    try:
        if json_body is not None:
            resp = client.post_json(url, json_body)
        else:
            resp = client.post_form(url, body)
    except TransportError as err:
        events.token_transport_failure(
            is_timeout=err.is_timeout,
            is_connect=err.is_connect,
            is_request=err.is_request,
            error=err.display,
            logger=logger,
        )
        events.token_transport_classified(
            kind=err.transport_kind, error_class=err.error_class, errno=err.errno, logger=logger
        )
        raise
    log_token_response(resp, logger)
    return resp


def raise_for_token_status(resp: HttpResponse, *, secrets: list[str], logger: logging.Logger) -> None:
    """Non-2xx: log the parsed JSON fields only, return the detail (non-JSON bodies too) to the caller."""
    if resp.ok:
        return
    detail = parse_token_endpoint_error(resp.text())
    events.token_non_success(
        status=resp.status_text,
        error_code=_log_safe(detail.error_code or "unknown", secrets),
        error_message=_log_safe(detail.error_message or "unknown", secrets),
        logger=logger,
    )
    shown = scrub_secrets(detail.display_message, secrets)
    if len(shown) > DISPLAY_BODY_LIMIT:
        shown = shown[:DISPLAY_BODY_LIMIT] + "…"
    failure = "token_http_error"
    if detail.error_code in ("invalid_grant", "invalid_client", "access_denied", "invalid_request"):
        failure = f"token_{detail.error_code}"
    elif resp.status >= 500:
        failure = "token_server_error"
    elif resp.status in (401, 403):
        failure = "token_forbidden"
    raise TokenEndpointError(
        f"token endpoint returned status {resp.status_text}: {shown}",
        status=resp.status,
        error_code=detail.error_code,
        failure_class=failure,
    )


def parse_token_json(
    resp: HttpResponse, required: tuple[str, ...], *, logger: logging.Logger
) -> dict[str, str]:
    """A 2xx body must be a JSON object with every required field a non-empty string."""
    reason: str | None = None
    missing: str | None = None
    data: object = None
    if resp.truncated:
        reason = "too_large"
    else:
        try:
            data = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            reason = "not_json"
    if reason is None and not isinstance(data, dict):
        reason = "not_object"
    if reason is None and isinstance(data, dict):
        for name in required:
            value = data.get(name)
            if not isinstance(value, str) or not value:
                reason, missing = "missing_field", name
                break
    if reason is not None or not isinstance(data, dict):
        events.token_response_invalid(
            status=resp.status_text, reason=reason or "not_object", field=missing, logger=logger
        )
        what = {
            "too_large": "the body is larger than 1 MiB",
            "not_json": "the body is not JSON",
            "not_object": "the body is not a JSON object",
            "missing_field": f"the field {missing!r} is missing or not a string",
        }[reason or "not_object"]
        raise TokenEndpointError(
            f"OAuth token response is invalid: {what}",
            status=resp.status,
            failure_class="token_invalid_response",
        )
    return {k: v for k, v in data.items() if isinstance(v, str)}


def exchange_code_for_tokens(
    client: HttpClient,
    *,
    issuer: str,
    client_id: str,
    redirect_uri: str,
    code_verifier: str,
    code: str,
    logger: logging.Logger = events.SERVER,
) -> ExchangedTokens:
    """reference-spec §7: ``POST {issuer}/oauth/token`` with the authorization_code grant."""
    token_endpoint = token_endpoint_for(issuer)
    issuer_for_log, token_endpoint_for_log = loggable_token_endpoint(issuer)
    events.token_exchange_started(
        issuer=issuer_for_log, token_endpoint=token_endpoint_for_log, redirect_uri=redirect_uri, logger=logger
    )
    route = client.route_for(token_endpoint)
    events.token_request_route(ca_source=route.ca_source, proxy=route.proxy, logger=logger)
    body = form_body(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", code_verifier),
        ]
    )
    secrets = [code, code_verifier]
    resp = post_token_request(client, token_endpoint, body, secrets=secrets, logger=logger)
    raise_for_token_status(resp, secrets=secrets, logger=logger)
    data = parse_token_json(resp, ("id_token", "access_token", "refresh_token"), logger=logger)
    events.token_exchange_succeeded(status=resp.status_text, logger=logger)
    return ExchangedTokens(
        id_token=data["id_token"], access_token=data["access_token"], refresh_token=data["refresh_token"]
    )


def obtain_api_key(client: HttpClient, *, issuer: str, client_id: str, id_token: str) -> str:
    """reference-spec §8: the legacy token-exchange grant that turns an id_token into an API key.

    Best effort for the caller; it logs nothing itself (the caller logs the status only).
    """
    body = form_body(
        [
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("client_id", client_id),
            ("requested_token", "openai-api-key"),
            ("subject_token", id_token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        ]
    )
    resp = client.post_form(token_endpoint_for(issuer), body)
    if not resp.ok:
        raise TokenEndpointError(
            f"api key exchange failed with status {resp.status_text}", status=resp.status
        )
    try:
        data = json.loads(resp.body)
    except (ValueError, RecursionError):
        raise TokenEndpointError(
            "api key exchange returned a body that is not JSON", status=resp.status
        ) from None
    key = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(key, str) or not key:
        raise TokenEndpointError("api key exchange returned no access_token", status=resp.status)
    return key
