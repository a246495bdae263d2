"""JWT claims -> :class:`IdTokenInfo` (reference ``token_data.rs`` and ``jwt_auth_claims`` in ``server.rs``).

The decoding and its checks are ``_credentials``' (see its docstring: strict base64url without padding, the
reference's serde type checks, signatures not verified, error messages that never contain the token);
``codex-login status`` reads through that module without importing this one. This module gives them the
library's types: ``exp`` as a timezone-aware ``datetime`` (``datetime`` is imported only to make one).

Claim values (``email``, plan, ids) are *untrusted text*: whoever shows them must sanitize them first (security
E5). :class:`IdTokenInfo` is a plain class rather than a dataclass because importing ``dataclasses`` (which
imports ``inspect``) costs as much as starting the interpreter.
"""

from __future__ import annotations

from ._credentials import (
    AUTH_CLAIM,
    KNOWN_PLANS,
    MAX_PAYLOAD_BYTES,
    MSG_BASE64,
    MSG_FORMAT,
    MSG_JSON,
    PROFILE_CLAIM,
    IdTokenClaims,
    TokenDataError,
    decode_jwt_payload,
    id_token_claims,
    jwt_auth_claims,
    jwt_expiry_seconds,
)
from ._frozen import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as _dt

__all__ = [
    "AUTH_CLAIM",
    "KNOWN_PLANS",
    "MAX_PAYLOAD_BYTES",
    "MSG_BASE64",
    "MSG_FORMAT",
    "MSG_JSON",
    "PROFILE_CLAIM",
    "IdTokenInfo",
    "TokenDataError",
    "decode_jwt_payload",
    "jwt_auth_claims",
    "jwt_expiry",
    "parse_id_token",
]

_WORKSPACE_PLANS = frozenset({"team", "business", "enterprise", "edu"})


def _seconds_to_datetime(seconds: int | None) -> _dt.datetime | None:
    if seconds is None:
        return None
    import datetime as _dt

    return _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=seconds)


class IdTokenInfo(FrozenRecord):
    """The flat subset of ID-token claims Codex uses (reference ``IdTokenInfo``).

    ``raw_jwt`` is the whole token; it is a credential, so it is kept out of ``repr``. Immutable, compared and
    hashed by value: what ``@dataclass(frozen=True)`` would generate, written out (see the module docstring).
    """

    _HIDDEN = frozenset({"raw_jwt"})
    _FIELDS = (
        "email",
        "chatgpt_plan_type",
        "chatgpt_user_id",
        "chatgpt_account_id",
        "organization_id",
        "project_id",
        "completed_platform_onboarding",
        "is_org_owner",
        "expires_at",
        "raw_jwt",
    )

    email: str | None
    #: The raw ``chatgpt_plan_type`` claim (see :attr:`plan_type_display`).
    chatgpt_plan_type: str | None
    chatgpt_user_id: str | None
    chatgpt_account_id: str | None
    organization_id: str | None
    project_id: str | None
    completed_platform_onboarding: bool
    is_org_owner: bool
    #: From the standard ``exp`` claim, when it is an integer; timezone-aware UTC.
    expires_at: _dt.datetime | None
    raw_jwt: str

    def __init__(  # noqa: PLR0917 - positional, like the dataclass it replaces
        self,
        email: str | None = None,
        chatgpt_plan_type: str | None = None,
        chatgpt_user_id: str | None = None,
        chatgpt_account_id: str | None = None,
        organization_id: str | None = None,
        project_id: str | None = None,
        completed_platform_onboarding: bool = False,
        is_org_owner: bool = False,
        expires_at: _dt.datetime | None = None,
        raw_jwt: str = "",
    ) -> None:
        values = (
            email,
            chatgpt_plan_type,
            chatgpt_user_id,
            chatgpt_account_id,
            organization_id,
            project_id,
            completed_platform_onboarding,
            is_org_owner,
            expires_at,
            raw_jwt,
        )
        self._assign(values)

    @property
    def known_plan(self) -> str | None:
        """The plan as one of :data:`KNOWN_PLANS` (lowercase), or ``None`` when absent or unknown."""
        plan = self.chatgpt_plan_type
        return plan if plan in KNOWN_PLANS else None

    @property
    def plan_type_display(self) -> str | None:
        """The plan as the reference prints it: ``Plus``, ``Pro``, ... for known plans, else the raw value."""
        plan = self.chatgpt_plan_type
        if plan is None:
            return None
        return KNOWN_PLANS.get(plan, plan)

    @property
    def is_workspace_account(self) -> bool:
        """True for team, business, enterprise and edu plans."""
        return self.chatgpt_plan_type in _WORKSPACE_PLANS

    @classmethod
    def from_claims(cls, claims: IdTokenClaims) -> IdTokenInfo:
        """The record of claims read by ``_credentials`` (imports ``datetime`` when there is an ``exp``)."""
        return cls(
            email=claims.email,
            chatgpt_plan_type=claims.chatgpt_plan_type,
            chatgpt_user_id=claims.chatgpt_user_id,
            chatgpt_account_id=claims.chatgpt_account_id,
            organization_id=claims.organization_id,
            project_id=claims.project_id,
            completed_platform_onboarding=claims.completed_platform_onboarding,
            is_org_owner=claims.is_org_owner,
            expires_at=_seconds_to_datetime(claims.exp),
            raw_jwt=claims.raw_jwt,
        )


def parse_id_token(jwt: str) -> IdTokenInfo:
    """Parse an ID token into :class:`IdTokenInfo` (reference ``parse_chatgpt_jwt_claims``).

    Raises :class:`TokenDataError` with ``invalid ID token format``, ``invalid ID token payload (base64)``
    or ``invalid ID token payload (JSON)``.
    """
    return IdTokenInfo.from_claims(id_token_claims(jwt))


def jwt_expiry(jwt: str) -> _dt.datetime | None:
    """The ``exp`` of a JWT (e.g. an access token) as aware UTC, or ``None`` (opaque token, no/odd ``exp``)."""
    return _seconds_to_datetime(jwt_expiry_seconds(jwt))
