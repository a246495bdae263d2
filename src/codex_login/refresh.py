"""Token refresh as a library call (reference-spec §17), safe when several processes share CODEX_HOME.

``refresh_tokens`` takes ``$CODEX_HOME/.refresh.lock`` (:func:`~codex_login.storage.refresh_lock`) and holds
it from reading the stored credentials to saving the new ones, so two processes never spend the same refresh
token (refresh tokens rotate and are single use: spending one twice gets ``refresh_token_reused`` and, at
many providers, revokes the whole grant). Only refreshes take that lock. The auth lock
(``$CODEX_HOME/.auth.lock``, which sign-in saves and logout take) is held only around the load and around
the save, never over the request: a logout or a sign-in during a slow refresh goes ahead at once instead of
waiting up to the HTTP deadline. The save re-reads the store under the auth lock first and writes only while
it still holds the refresh token that was spent: if a logout removed the credentials meanwhile, the new
tokens are dropped (``not_logged_in``: the person asked to be signed out); if a ChatGPT sign-in replaced
them, the sign-in's credentials are kept and returned (an API-key sign-in: ``not_logged_in`` too). Once the
token is spent, the save waits for the auth lock as long as a refresh may wait for the refresh lock
(:func:`refresh_lock_timeout`), so the rotated token is not lost to a short wait.

Inside the refresh lock:

* without ``force``, a stored sign-in that no longer :func:`needs_refresh` (another process refreshed it
  while we waited for the lock) is returned as it is;
* with ``seen_refresh_token`` (the refresh token the caller read before deciding to refresh), a stored
  refresh token that differs means another process already refreshed: the stored credentials are returned
  without a request, even with ``force``.

The request is the reference's: ``POST {issuer}/oauth/token`` (or ``CODEX_REFRESH_TOKEN_URL_OVERRIDE``) with
the JSON body ``{"client_id", "grant_type": "refresh_token", "refresh_token"}``. The answer's ``id_token``,
``access_token`` and ``refresh_token`` (each optional: rotation) replace the stored ones, ``last_refresh``
becomes now, and the result is saved to the same store.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from typing import TYPE_CHECKING

from .config import CLIENT_ID, DEFAULT_ISSUER
from .errors import ErrorKind, LoginError
from .storage import (
    DEFAULT_KEYRING_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    AuthDotJson,
    StoreMode,
    auth_lock,
    create_store,
    refresh_lock,
)
from .token_data import jwt_expiry

if TYPE_CHECKING:
    from .http import HttpSettings

__all__ = [
    "EXPIRY_MARGIN",
    "REFRESH_URL_OVERRIDE_ENV",
    "TOKEN_REFRESH_INTERVAL",
    "RefreshTokenError",
    "needs_refresh",
    "refresh_endpoint",
    "refresh_lock_timeout",
    "refresh_tokens",
]

REFRESH_URL_OVERRIDE_ENV = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
TOKEN_REFRESH_INTERVAL = _dt.timedelta(days=8)
EXPIRY_MARGIN = _dt.timedelta(minutes=5)
DETAIL_LIMIT = 512

MSG_EXPIRED = (
    "Your access token could not be refreshed because your refresh token has expired. "
    "Please log out and sign in again."
)
MSG_REUSED = (
    "Your access token could not be refreshed because your refresh token was already used. "
    "Please log out and sign in again."
)
MSG_INVALIDATED = (
    "Your access token could not be refreshed because your refresh token was revoked. "
    "Please log out and sign in again."
)
MSG_GENERIC = "Your access token could not be refreshed. Please log out and sign in again."

#: 401 error codes the reference tells apart, with their message and failure class.
_PERMANENT = {
    "refresh_token_expired": (MSG_EXPIRED, "refresh_token_expired"),
    "refresh_token_reused": (MSG_REUSED, "refresh_token_reused"),
    "refresh_token_invalidated": (MSG_INVALIDATED, "refresh_token_invalidated"),
}


class RefreshTokenError(LoginError):
    """The refresh failed. ``permanent`` is True when signing in again is the only fix."""

    failure_class = "refresh_failed"

    def __init__(
        self, message: str, *, permanent: bool, status: int | None = None, failure_class: str | None = None
    ) -> None:
        super().__init__(
            message,
            kind=ErrorKind.PERMISSION_DENIED if permanent else ErrorKind.OTHER,
            failure_class=failure_class,
        )
        self.permanent = permanent
        self.status = status


def needs_refresh(auth: AuthDotJson, now: _dt.datetime | None = None) -> bool:
    """Refresh proactively: the access token (a JWT with ``exp``) expires within 5 minutes, or the last
    refresh is older than 8 days. API-key sign-ins never need one."""
    if auth.tokens is None:
        return False
    moment = now if now is not None else _dt.datetime.now(_dt.UTC)
    expires = jwt_expiry(auth.tokens.access_token)
    if expires is not None and expires - moment <= EXPIRY_MARGIN:
        return True
    return auth.last_refresh is not None and moment - auth.last_refresh > TOKEN_REFRESH_INTERVAL


def refresh_endpoint(issuer: str = DEFAULT_ISSUER, env: dict[str, str] | None = None) -> str:
    environ = os.environ if env is None else env
    override = environ.get(REFRESH_URL_OVERRIDE_ENV, "").strip()
    return override or f"{issuer.rstrip('/')}/oauth/token"


def refresh_lock_timeout(http_settings: HttpSettings | None = None) -> float:
    """How long a refresh waits for the refresh lock: as long as another refresh with the same settings may
    hold it (the auth lock and a keyring call for the load, the request's total deadline, the same again for
    the save), so a refresh behind a slow one waits for it instead of failing."""
    from .http import DEFAULT_TOTAL_TIMEOUT

    total = http_settings.total_timeout if http_settings is not None else DEFAULT_TOTAL_TIMEOUT
    return total + 2 * (DEFAULT_LOCK_TIMEOUT + DEFAULT_KEYRING_TIMEOUT)


def refresh_tokens(
    codex_home: os.PathLike[str] | str,
    store_mode: str = "file",
    *,
    issuer: str = DEFAULT_ISSUER,
    client_id: str = CLIENT_ID,
    http_settings: HttpSettings | None = None,
    force: bool = False,
    seen_refresh_token: str | None = None,
    now: _dt.datetime | None = None,
) -> AuthDotJson:
    """Refresh the stored ChatGPT tokens if needed (or always, with ``force``) and return what is stored.

    Raises :class:`RefreshTokenError` (the reference's messages), :class:`LoginError` when there is nothing
    to refresh (``not_logged_in``, also when a logout removed the credentials while the request was in
    flight), or a storage error.
    """
    from .diagnostics.redact import SECRETS

    mode = StoreMode(store_mode)
    store = create_store(codex_home, mode)
    patience = refresh_lock_timeout(http_settings)
    # Process memory is private to this process: no cross-process locks (they would create CODEX_HOME).
    private = mode is StoreMode.EPHEMERAL

    def locked(timeout: float) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if private else auth_lock(codex_home, timeout)

    with contextlib.nullcontext() if private else refresh_lock(codex_home, patience):
        # The auth lock is taken here too, strictly: a CODEX_HOME where .auth.lock cannot be created fails
        # now, before the refresh token is spent, not at the save.
        with locked(DEFAULT_LOCK_TIMEOUT):
            auth = store.load()
        if auth is None or auth.tokens is None:
            raise LoginError(
                "Not logged in with ChatGPT: there is no refresh token to use", failure_class="not_logged_in"
            )
        spent = auth.tokens.refresh_token
        SECRETS.add("refresh_token", spent)
        if seen_refresh_token is not None and spent != seen_refresh_token:
            return auth  # another process refreshed while we waited: its tokens are the fresh ones
        if not force and not needs_refresh(auth, now):
            return auth
        answer = _request(spent, issuer=issuer, client_id=client_id, http_settings=http_settings)
        with locked(patience):
            current = store.load()
            if current is not None and current.tokens is not None and current.tokens.refresh_token != spent:
                _log_not_saved("replaced", answer)
                return current  # a ChatGPT sign-in saved newer credentials meanwhile: they win over ours
            if current is not None and current.tokens is not None:
                rotated = _merge(current, answer)
                current.last_refresh = now if now is not None else _dt.datetime.now(_dt.UTC)
                store.save(current)
    if current is None or current.tokens is None:
        _log_not_saved("removed" if current is None else "replaced", answer)
        if current is None:
            # A logout ran while the request was in flight: it revoked the tokens it removed, and these new
            # ones (the grant's live refresh token) go the same way rather than stay valid unsaved.
            _revoke_unsaved(auth, answer, issuer=issuer, client_id=client_id, http_settings=http_settings)
        what = "removed (logout)" if current is None else "replaced by an API-key sign-in"
        raise LoginError(
            f"Not logged in with ChatGPT: the credentials were {what} while the refresh was in flight, "
            "so the new tokens were not saved",
            failure_class="not_logged_in",
        )
    from .diagnostics import events

    events.refresh_succeeded(status=answer.status_text, rotated=rotated)
    return current


def _revoke_unsaved(
    auth: AuthDotJson, answer: _Answer, *, issuer: str, client_id: str, http_settings: HttpSettings | None
) -> None:
    """Revoke the tokens a refresh got but did not save (best effort, like logout's own revocation)."""
    from .account import REVOKE_TIMEOUT_SECONDS, revoke_tokens
    from .http import HttpSettings
    from .storage import TokenData

    old = auth.tokens
    assert old is not None
    tokens = TokenData(
        old.id_token, answer.access_token or old.access_token, answer.refresh_token or old.refresh_token
    )
    settings = http_settings or HttpSettings()
    timeout = min(settings.total_timeout, REVOKE_TIMEOUT_SECONDS)
    revoke_tokens(
        tokens,
        issuer=issuer,
        client_id=client_id,
        http_settings=HttpSettings(total_timeout=timeout, connect_timeout=timeout, env=settings.env),
    )


def _log_not_saved(reason: str, answer: _Answer) -> None:
    """The refresh succeeded at the issuer but the store changed under it: say so in the log."""
    from .diagnostics import events

    events.refresh_failed(status=answer.status_text, error_code="unknown", reason=f"credentials_{reason}")


class _Answer:
    """A parsed 2xx refresh answer (every field optional)."""

    def __init__(self, status: int, status_text: str, data: dict[str, object]) -> None:
        self.status = status
        self.status_text = status_text
        self.id_token = _opt(data, "id_token")
        self.access_token = _opt(data, "access_token")
        self.refresh_token = _opt(data, "refresh_token")


def _opt(data: dict[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _request(
    refresh_token: str, *, issuer: str, client_id: str, http_settings: HttpSettings | None
) -> _Answer:
    from .diagnostics import events
    from .diagnostics.redact import SECRETS, sanitize_terminal_text, sanitize_url_for_logging
    from .errors import TransportError
    from .http import HttpClient, HttpSettings
    from .oauth import log_token_response, parse_token_endpoint_error, scrub_secrets

    settings = http_settings or HttpSettings()
    url = refresh_endpoint(issuer, dict(settings.env) if settings.env is not None else None)
    events.refresh_started(token_endpoint=sanitize_url_for_logging(url, extended=True))
    payload = {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}
    with HttpClient(settings) as client:
        try:
            resp = client.post_json(url, payload)
        except TransportError as err:
            events.refresh_failed(status="none", error_code="unknown", reason=f"transport_{err.transport_kind}")
            raise RefreshTokenError(
                f"Failed to refresh token: {err}", permanent=False, failure_class=err.failure_class
            ) from None
    log_token_response(resp, events.AUTH)
    if not resp.ok:
        detail = parse_token_endpoint_error(resp.text())
        code = detail.error_code
        log_code = sanitize_terminal_text(scrub_secrets(code, [refresh_token]), 64) if code else "unknown"
        if resp.status == 401 or code == "invalid_grant":
            # The reference classifies 401s; oidc-provider (and RFC 6749 §5.2) says 400 invalid_grant for the
            # same cases (expired, reused, revoked): the generic "sign in again" message.
            message, failure = _PERMANENT.get(code or "", (MSG_GENERIC, "refresh_token_invalid"))
            events.refresh_failed(status=resp.status_text, error_code=log_code, reason=failure)
            raise RefreshTokenError(message, permanent=True, status=resp.status, failure_class=failure)
        events.refresh_failed(status=resp.status_text, error_code=log_code, reason="http_error")
        shown = sanitize_terminal_text(scrub_secrets(detail.display_message, [refresh_token]), DETAIL_LIMIT)
        raise RefreshTokenError(
            f"Failed to refresh token: {resp.status_text}: {shown}",
            permanent=False,
            status=resp.status,
            failure_class="refresh_http_error",
        )
    data: object = None
    if not resp.truncated:
        try:
            data = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the decoder's depth
            data = None
    if not isinstance(data, dict):
        events.refresh_failed(status=resp.status_text, error_code="unknown", reason="invalid_response")
        raise RefreshTokenError(
            "Failed to refresh token: the token endpoint's answer is not a JSON object",
            permanent=False,
            status=resp.status,
            failure_class="refresh_invalid_response",
        )
    answer = _Answer(resp.status, resp.status_text, data)
    for kind in ("id_token", "access_token", "refresh_token"):
        SECRETS.add(kind, getattr(answer, kind))
    return answer


def _merge(auth: AuthDotJson, answer: _Answer) -> bool:
    """Put the new tokens into ``auth``; True when the refresh token rotated."""
    from .diagnostics import events
    from .token_data import TokenDataError, parse_id_token

    tokens = auth.tokens
    assert tokens is not None
    if answer.id_token is not None:
        try:
            tokens.id_token = parse_id_token(answer.id_token)
        except TokenDataError as err:
            events.refresh_failed(status=answer.status_text, error_code="unknown", reason="invalid_id_token")
            raise RefreshTokenError(
                f"Failed to refresh token: the new ID token is invalid: {err}",
                permanent=False,
                status=answer.status,
                failure_class="refresh_invalid_response",
            ) from None
    if answer.access_token is not None:
        tokens.access_token = answer.access_token
    rotated = answer.refresh_token is not None and answer.refresh_token != tokens.refresh_token
    if answer.refresh_token is not None:
        tokens.refresh_token = answer.refresh_token
    return rotated
