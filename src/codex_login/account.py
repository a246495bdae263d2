"""The stored sign-in as an account: status facts, and logout with token revocation.

``codex-login status`` reads through ``_credentials`` (:func:`read_status` is its summary with ``datetime``
fields) and does not import this module. Logging and HTTP are imported inside :func:`logout` and
:func:`revoke_tokens`, and ``keyring`` only by the keyring stores when they are used.

Logout (beyond the reference's PR era, after Codex #17825, but best effort rather than fail-closed):

1. read what every store holds (the configured one first, then ``auth.json``, the keyring entry and the
   process-memory store), to know which tokens to revoke;
2. remove the credentials from every store. A failure of the configured store is the command's error;
   a failure of another store (an unreachable keyring in ``file`` mode...) is only a warning;
3. revoke each refresh token, then each access token, at the issuer's RFC 7009 revocation endpoint: the
   ``CODEX_REVOKE_TOKEN_URL_OVERRIDE`` URL; else ``CODEX_REFRESH_TOKEN_URL_OVERRIDE`` with the path
   ``/oauth/revoke``; else the discovered ``revocation_endpoint``; else ``{issuer}/oauth/revoke``. The issuer
   is the one that issued the tokens (the ID token's ``iss``, when it is a valid issuer URL), else the
   configured one: tokens are never sent to a party that did not issue them. A failed revocation is
   reported, but never stops or undoes the local removal.
"""

from __future__ import annotations

import datetime as _dt
import os

from ._credentials import mask_api_key, status_summary
from ._frozen import FrozenRecord
from .config import CLIENT_ID, DEFAULT_ISSUER
from .errors import LoginError, StorageError
from .storage import (
    AuthDotJson,
    CredentialStore,
    EphemeralStore,
    FileStore,
    KeyringStore,
    StoreMode,
    TokenData,
    create_store,
)
from .token_data import decode_jwt_payload

# ``typing`` and ``dataclasses`` (which imports ``inspect``) each cost about as much as starting the
# interpreter, so the records below are plain classes and typing is for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Config
    from .http import HttpClient, HttpSettings

__all__ = [
    "REFRESH_URL_OVERRIDE_ENV",
    "REVOKE_URL_OVERRIDE_ENV",
    "LogoutResult",
    "RevokeOutcome",
    "StatusFacts",
    "logout",
    "logout_with_config",
    "mask_api_key",
    "read_status",
    "revocation_endpoint",
    "revoke_tokens",
]

REVOKE_URL_OVERRIDE_ENV = "CODEX_REVOKE_TOKEN_URL_OVERRIDE"
REFRESH_URL_OVERRIDE_ENV = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
REVOKE_TIMEOUT_SECONDS = 10.0
#: Keyring probe deadline when the keyring is not the configured store (logout still clears it).
OTHER_KEYRING_TIMEOUT = 3.0


# --------------------------------------------------------------------------------------------- status


class StatusFacts(FrozenRecord):
    """What ``codex-login status`` reports. Claim values are untrusted text: sanitize before printing.

    Immutable and compared by value, like the frozen dataclass it replaces.
    """

    _FIELDS = (
        "logged_in",
        "auth_mode",
        "store",
        "store_location",
        "store_reason",
        "email",
        "plan",
        "account_id",
        "expires_at",
        "last_refresh",
        "api_key_masked",
        "warnings",
    )

    logged_in: bool
    #: ``apikey``, ``chatgpt`` or ``chatgptAuthTokens``; None when not logged in.
    auth_mode: str | None
    #: ``file``, ``keyring``, ``file_fallback`` or ``ephemeral`` (storage ``StoreInfo.name``).
    store: str
    store_location: str
    #: Why that store (the keyring's error in a fallback...), or None.
    store_reason: str | None
    email: str | None
    plan: str | None
    account_id: str | None
    #: The access token's ``exp`` (when it is a JWT), aware UTC.
    expires_at: _dt.datetime | None
    last_refresh: _dt.datetime | None
    api_key_masked: str | None
    #: Store warnings (keyring fallback) met while reading.
    warnings: tuple[str, ...]

    def __init__(  # noqa: PLR0917 - positional, like the dataclass it replaces
        self,
        logged_in: bool,
        auth_mode: str | None,
        store: str,
        store_location: str,
        store_reason: str | None,
        email: str | None = None,
        plan: str | None = None,
        account_id: str | None = None,
        expires_at: _dt.datetime | None = None,
        last_refresh: _dt.datetime | None = None,
        api_key_masked: str | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        values = (
            logged_in,
            auth_mode,
            store,
            store_location,
            store_reason,
            email,
            plan,
            account_id,
            expires_at,
            last_refresh,
            api_key_masked,
            warnings,
        )
        self._assign(values)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _datetime(microseconds: int | None) -> _dt.datetime | None:
    return None if microseconds is None else _EPOCH + _dt.timedelta(microseconds=microseconds)


def read_status(codex_home: os.PathLike[str] | str, store_mode: str = "file") -> StatusFacts:
    """Read the stored sign-in. Raises :class:`LoginError` (unreadable or invalid credentials)."""
    summary = status_summary(codex_home, store_mode)
    return StatusFacts(
        logged_in=summary.logged_in,
        auth_mode=summary.auth_mode,
        store=summary.store,
        store_location=summary.store_location,
        store_reason=summary.store_reason,
        email=summary.email,
        plan=summary.plan,
        account_id=summary.account_id,
        expires_at=_datetime(summary.expires_at_us),
        last_refresh=_datetime(summary.last_refresh_us),
        api_key_masked=summary.api_key_masked,
        warnings=summary.warnings,
    )


# --------------------------------------------------------------------------------------------- revoke


class RevokeOutcome:
    """One token's revocation: ``token_kind`` is ``refresh_token`` or ``access_token``.

    Immutable and compared by value, like the frozen dataclass it replaces.
    """

    token_kind: str
    ok: bool
    #: Why it failed, safe to print (no token), or None.
    error: str | None

    def __init__(self, token_kind: str, ok: bool, error: str | None = None) -> None:
        object.__setattr__(self, "token_kind", token_kind)
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "error", error)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RevokeOutcome) and other.__class__ is self.__class__:
            return (self.token_kind, self.ok, self.error) == (other.token_kind, other.ok, other.error)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.token_kind, self.ok, self.error))

    def __repr__(self) -> str:
        return f"RevokeOutcome(token_kind={self.token_kind!r}, ok={self.ok!r}, error={self.error!r})"


def _issuer_of(tokens: TokenData, configured: str) -> str:
    """The issuer that issued ``tokens`` (the ID token's ``iss``) when it is a valid issuer URL."""
    from .config import validate_issuer
    from .errors import ConfigError
    from .token_data import TokenDataError

    try:
        iss = decode_jwt_payload(tokens.id_token.raw_jwt).get("iss")
    except TokenDataError:
        return configured
    if not isinstance(iss, str) or not iss:
        return configured
    try:
        validate_issuer(iss)
    except ConfigError:
        return configured
    return iss


def revocation_endpoint(client: HttpClient, issuer: str, env: dict[str, str] | None = None) -> str:
    """Where RFC 7009 revocation goes (see the module docstring for the order)."""
    from urllib.parse import urlsplit, urlunsplit

    from .device_code import fetch_openid_configuration, url_problem

    environ = os.environ if env is None else env
    override = environ.get(REVOKE_URL_OVERRIDE_ENV, "").strip()
    if override:
        return override
    refresh_override = environ.get(REFRESH_URL_OVERRIDE_ENV, "").strip()
    if refresh_override:
        parts = urlsplit(refresh_override)
        return urlunsplit((parts.scheme, parts.netloc, "/oauth/revoke", "", ""))
    base = issuer.rstrip("/")
    if base != DEFAULT_ISSUER:
        try:
            doc = fetch_openid_configuration(client, base)
        except LoginError:
            doc = None
        endpoint = doc.get("revocation_endpoint") if doc else None
        if isinstance(endpoint, str) and url_problem(endpoint) is None:
            return endpoint
    return f"{base}/oauth/revoke"


def revoke_tokens(
    tokens: TokenData,
    *,
    issuer: str = DEFAULT_ISSUER,
    client_id: str = CLIENT_ID,
    client: HttpClient | None = None,
    http_settings: HttpSettings | None = None,
) -> list[RevokeOutcome]:
    """Revoke the refresh token, then the access token (RFC 7009; form body, public client).

    Never raises for a failed revocation: each outcome says what happened. Logs ``token revoked`` /
    ``token revocation failed`` (kinds and statuses only).
    """
    from .diagnostics import events
    from .diagnostics.redact import SECRETS, sanitize_terminal_text
    from .errors import TransportError
    from .http import HttpClient, HttpSettings
    from .oauth import form_body, parse_token_endpoint_error, scrub_secrets

    secrets = [tokens.refresh_token, tokens.access_token]
    for kind, value in (("refresh_token", tokens.refresh_token), ("access_token", tokens.access_token)):
        SECRETS.add(kind, value)
    own = client is None
    settings = http_settings or HttpSettings(total_timeout=REVOKE_TIMEOUT_SECONDS)
    http = client or HttpClient(settings)
    outcomes: list[RevokeOutcome] = []
    try:
        endpoint = revocation_endpoint(
            http, _issuer_of(tokens, issuer), dict(settings.env) if settings.env is not None else None
        )
        for kind, token in (("refresh_token", tokens.refresh_token), ("access_token", tokens.access_token)):
            if not token:
                continue
            body = form_body([("token", token), ("token_type_hint", kind), ("client_id", client_id)])
            try:
                resp = http.post_form(endpoint, body)
            except TransportError as err:
                events.revoke_failed(token_kind=kind, status="none", kind=f"transport_{err.transport_kind}")
                outcomes.append(RevokeOutcome(kind, False, f"failed to revoke {kind}: {err}"))
                continue
            if resp.ok:
                events.revoke_succeeded(token_kind=kind)
                outcomes.append(RevokeOutcome(kind, True))
                continue
            events.revoke_failed(token_kind=kind, status=resp.status_text, kind="http_error")
            detail = scrub_secrets(parse_token_endpoint_error(resp.text()).display_message, secrets)
            message = f"failed to revoke {kind}: {resp.status_text}: {sanitize_terminal_text(detail, 512)}"
            outcomes.append(RevokeOutcome(kind, False, message))
    finally:
        if own:
            http.close()
    return outcomes


# --------------------------------------------------------------------------------------------- logout


class LogoutResult:
    """What :func:`logout` did. Compared by value, like the dataclass it replaces."""

    #: Whether any store held credentials that were removed.
    removed: bool
    #: The stores credentials were removed from (``file``, ``keyring``, ``ephemeral``).
    removed_from: list[str]
    revocations: list[RevokeOutcome]
    #: Store warnings (another store that could not be read or cleared), safe to print.
    warnings: list[str]

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, like a dataclass

    def __init__(
        self,
        removed: bool,
        removed_from: list[str] | None = None,
        revocations: list[RevokeOutcome] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.removed = removed
        self.removed_from = [] if removed_from is None else removed_from
        self.revocations = [] if revocations is None else revocations
        self.warnings = [] if warnings is None else warnings

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LogoutResult) and other.__class__ is self.__class__:
            mine = (self.removed, self.removed_from, self.revocations, self.warnings)
            return mine == (other.removed, other.removed_from, other.revocations, other.warnings)
        return NotImplemented

    def __repr__(self) -> str:
        return (
            f"LogoutResult(removed={self.removed!r}, removed_from={self.removed_from!r}, "
            f"revocations={self.revocations!r}, warnings={self.warnings!r})"
        )

    @property
    def revoke_errors(self) -> list[str]:
        return [o.error for o in self.revocations if not o.ok and o.error]

    def notices(self) -> list[str]:
        """The lines to show a person: each store warning, then each failed revocation, sanitized."""
        from .diagnostics.redact import sanitize_terminal_text

        lines = [sanitize_terminal_text(f"Warning: {warning}", 1024) for warning in self.warnings]
        lines += [
            sanitize_terminal_text(f"Warning: could not revoke tokens at the issuer: {problem}", 2048)
            for problem in self.revoke_errors
        ]
        return lines


def _keyring_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("keyring") is not None


def _stores(codex_home: os.PathLike[str] | str, store_mode: str) -> list[tuple[str, CredentialStore, bool]]:
    """(name, store, configured) for every place credentials can be, the configured store first."""
    mode = StoreMode(store_mode)
    configured = create_store(codex_home, mode)
    out: list[tuple[str, CredentialStore, bool]] = [(mode.value, configured, True)]
    if mode is StoreMode.EPHEMERAL:
        out.append(("file", FileStore(codex_home), False))
    if mode in (StoreMode.FILE, StoreMode.EPHEMERAL) and _keyring_importable():
        out.append(("keyring", _KeyringEntryOnly(codex_home, timeout=OTHER_KEYRING_TIMEOUT), False))
    if mode is not StoreMode.EPHEMERAL:
        out.append(("ephemeral", EphemeralStore(codex_home), False))
    return out


class _KeyringEntryOnly(KeyringStore):
    """The keyring entry alone (its auth.json fallback is handled as the file store)."""

    def delete(self) -> bool:
        return self.delete_entry()


def logout(
    codex_home: os.PathLike[str] | str,
    store_mode: str = "file",
    *,
    issuer: str = DEFAULT_ISSUER,
    client_id: str = CLIENT_ID,
    http_settings: HttpSettings | None = None,
    revoke: bool = True,
) -> LogoutResult:
    """Remove the stored credentials from every store, then revoke their tokens (best effort).

    Local removal comes first, so an interrupted or failing revocation never leaves credentials behind. It
    happens under the auth lock, as sign-ins save and as a refresh reads and saves: a refresh whose request is
    in flight (it does not hold the auth lock meanwhile, so the logout does not wait for it) finds the
    credentials gone when it comes to save, saves nothing and revokes the tokens it got, so the person is not
    signed in again after "Successfully logged out" (see :mod:`codex_login.refresh`).
    Raises :class:`StorageError` when the configured store cannot be cleared, or when the lock stays held
    past its timeout (then nothing is revoked).
    """
    import contextlib

    from .diagnostics import events
    from .storage import auth_lock

    result = LogoutResult(removed=False)
    collected: list[TokenData] = []
    stores = _stores(codex_home, store_mode)
    # No CODEX_HOME, nothing to race with (the lock would create the directory).
    with auth_lock(codex_home) if os.path.isdir(codex_home) else contextlib.nullcontext():
        _remove_everywhere(stores, result, collected)
    events.logout_finished(removed=result.removed, stores=",".join(result.removed_from) or "none")
    if revoke:
        for tokens in collected:
            result.revocations.extend(
                revoke_tokens(tokens, issuer=issuer, client_id=client_id, http_settings=http_settings)
            )
    return result


def _remove_everywhere(
    stores: list[tuple[str, CredentialStore, bool]], result: LogoutResult, collected: list[TokenData]
) -> None:
    """Read the tokens of every store into ``collected`` (once each), then clear every store into ``result``."""
    from .diagnostics import events

    for name, store, configured in stores:
        try:
            auth: AuthDotJson | None = store.load()
        except StorageError as err:
            if not configured and name == "keyring":
                continue  # no usable keyring: nothing there to read or remove
            auth = None
            if not configured:
                result.warnings.append(f"could not read the credentials in the {name} store: {err}")
        if auth is not None and auth.tokens is not None:
            pair = (auth.tokens.refresh_token, auth.tokens.access_token)
            if all((t.refresh_token, t.access_token) != pair for t in collected):
                collected.append(auth.tokens)
    for name, store, configured in stores:
        try:
            removed = store.delete()
        except StorageError as err:
            if configured:
                events.logout_finished(removed=result.removed, stores=",".join(result.removed_from) or "none")
                raise
            if name != "keyring":
                result.warnings.append(f"could not remove the credentials in the {name} store: {err}")
            continue
        finally:
            result.warnings.extend(w for w in store.warnings if w not in result.warnings)
            store.warnings.clear()
        if removed:
            result.removed = True
            result.removed_from.append(name)


def logout_with_config(config: Config) -> LogoutResult:
    """:func:`logout` for a resolved configuration (home, store, issuer, client), revoking within the
    configuration's HTTP timeout capped at :data:`REVOKE_TIMEOUT_SECONDS`: what ``codex-login logout`` and
    the app server's ``account/logout`` do."""
    from .http import HttpSettings

    timeout = min(config.http_timeout, REVOKE_TIMEOUT_SECONDS)
    return logout(
        config.codex_home,
        config.credentials_store.value,
        issuer=config.issuer,
        client_id=config.client_id,
        http_settings=HttpSettings(total_timeout=timeout, connect_timeout=timeout),
    )
