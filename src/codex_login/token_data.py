"""JWT claims -> :class:`IdTokenInfo` (reference ``token_data.rs`` and ``jwt_auth_claims`` in ``server.rs``).

Signatures are **not** verified (parity, security E4): the ID token comes straight from the token endpoint
over TLS (OIDC Core §3.1.3.7) and its claims are used only for display and the workspace restriction.

The payload is decoded as strict base64url *without* padding, like Rust's ``URL_SAFE_NO_PAD`` engine: padded
input, characters outside the URL-safe alphabet and non-canonical trailing bits are all rejected. The claims
the reference models with serde are type-checked the same way (``email`` must be a string or null, ...), so
a token the Rust CLI refuses is refused here too.

Error messages never contain the token, any of its parts, or any claim value. Claim values themselves
(``email``, plan, ids) are *untrusted text*: whoever shows them must sanitize them first (security E5).

Only the standard library is imported: ``codex-login status`` imports this module. :class:`IdTokenInfo` is a
plain class rather than a dataclass because importing ``dataclasses`` (which imports ``inspect``) costs as
much as starting the interpreter.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import json
import re

from codex_login.errors import ErrorKind, LoginError

from ._frozen import FrozenRecord

__all__ = [
    "AUTH_CLAIM",
    "KNOWN_PLANS",
    "MAX_PAYLOAD_BYTES",
    "PROFILE_CLAIM",
    "IdTokenInfo",
    "TokenDataError",
    "decode_jwt_payload",
    "jwt_auth_claims",
    "jwt_expiry",
    "parse_id_token",
]

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"

#: Largest decoded payload we accept (bounds memory for hostile input, security E2).
MAX_PAYLOAD_BYTES = 256 * 1024
# Base64 needs 4 characters per 3 bytes; anything longer than this cannot decode to an acceptable payload.
_MAX_PAYLOAD_CHARS = (MAX_PAYLOAD_BYTES * 4 + 2) // 3

#: The reference's ``KnownPlan`` values (lowercase serde) and how its ``Debug`` spells them.
KNOWN_PLANS: dict[str, str] = {
    "free": "Free",
    "go": "Go",
    "plus": "Plus",
    "pro": "Pro",
    "team": "Team",
    "business": "Business",
    "enterprise": "Enterprise",
    "edu": "Edu",
}
_WORKSPACE_PLANS = frozenset({"team", "business", "enterprise", "edu"})

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TO_STD_ALPHABET = str.maketrans("-_", "+/")

MSG_FORMAT = "invalid ID token format"
MSG_BASE64 = "invalid ID token payload (base64)"
MSG_JSON = "invalid ID token payload (JSON)"


class TokenDataError(LoginError):
    """An ID token (or another JWT) could not be parsed. The message never contains the token."""

    kind = ErrorKind.INVALID_DATA
    failure_class = "invalid_id_token"


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


def _split_payload(jwt: str) -> str:
    parts = jwt.split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenDataError(MSG_FORMAT)
    return parts[1]


def _b64url_decode_no_pad(data: str) -> bytes:
    """Strict base64url without padding, like Rust's ``URL_SAFE_NO_PAD`` (rejects padding and stray bits)."""
    if len(data) > _MAX_PAYLOAD_CHARS or len(data) % 4 == 1 or not _B64URL.fullmatch(data):
        raise TokenDataError(MSG_BASE64)
    std = data.translate(_TO_STD_ALPHABET) + "=" * (-len(data) % 4)
    try:
        decoded = binascii.a2b_base64(std.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError):
        raise TokenDataError(MSG_BASE64) from None
    # Canonical encodings only: the unused low bits of the last character must be zero.
    canonical = binascii.b2a_base64(decoded, newline=False).decode("ascii").rstrip("=")
    if canonical != data.translate(_TO_STD_ALPHABET):
        raise TokenDataError(MSG_BASE64)
    return decoded


def _reject_constant(_name: str) -> object:
    raise ValueError("non-finite number")


def decode_jwt_payload(jwt: str) -> dict[str, object]:
    """The JSON object in the payload of ``jwt`` (signature not checked). Raises :class:`TokenDataError`."""
    payload = _b64url_decode_no_pad(_split_payload(jwt))
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise TokenDataError(MSG_BASE64)
    try:
        claims = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenDataError(MSG_JSON) from None
    if not isinstance(claims, dict):
        raise TokenDataError(MSG_JSON)
    return claims


def _opt_str(container: dict[str, object], key: str) -> str | None:
    """A serde ``Option<String>``: missing or null is None, a string is kept, anything else is an error."""
    value = container.get(key)
    if value is None or isinstance(value, str):
        return value
    raise TokenDataError(MSG_JSON)


def _opt_object(container: dict[str, object], key: str) -> dict[str, object] | None:
    value = container.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise TokenDataError(MSG_JSON)


def _lenient_str(container: dict[str, object], key: str) -> str | None:
    value = container.get(key)
    return value if isinstance(value, str) else None


def _exp_to_datetime(value: object) -> _dt.datetime | None:
    # The reference reads ``exp`` as an ``i64``: floats, strings and bools do not count.
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return _dt.datetime.fromtimestamp(value, tz=_dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_id_token(jwt: str) -> IdTokenInfo:
    """Parse an ID token into :class:`IdTokenInfo` (reference ``parse_chatgpt_jwt_claims``).

    Raises :class:`TokenDataError` with ``invalid ID token format``, ``invalid ID token payload (base64)``
    or ``invalid ID token payload (JSON)``.
    """
    claims = decode_jwt_payload(jwt)
    email = _opt_str(claims, "email")
    profile = _opt_object(claims, PROFILE_CLAIM)
    profile_email = _opt_str(profile, "email") if profile is not None else None
    auth = _opt_object(claims, AUTH_CLAIM)

    plan = user_id = account_id = None
    organization_id = project_id = None
    onboarding = owner = False
    if auth is not None:
        plan = _opt_str(auth, "chatgpt_plan_type")
        chatgpt_user_id = _opt_str(auth, "chatgpt_user_id")
        legacy_user_id = _opt_str(auth, "user_id")
        user_id = chatgpt_user_id if chatgpt_user_id is not None else legacy_user_id
        account_id = _opt_str(auth, "chatgpt_account_id")
        # These four are read like server.rs does: by value type, ignoring anything unexpected.
        organization_id = _lenient_str(auth, "organization_id")
        project_id = _lenient_str(auth, "project_id")
        onboarding = auth.get("completed_platform_onboarding") is True
        owner = auth.get("is_org_owner") is True

    return IdTokenInfo(
        email=email if email is not None else profile_email,
        chatgpt_plan_type=plan,
        chatgpt_user_id=user_id,
        chatgpt_account_id=account_id,
        organization_id=organization_id,
        project_id=project_id,
        completed_platform_onboarding=onboarding,
        is_org_owner=owner,
        expires_at=_exp_to_datetime(claims.get("exp")),
        raw_jwt=jwt,
    )


def jwt_auth_claims(jwt: str) -> dict[str, object]:
    """The ``https://api.openai.com/auth`` object of a JWT, or ``{}`` on any failure (reference §9.1)."""
    try:
        claims = decode_jwt_payload(jwt)
    except TokenDataError:
        return {}
    auth = claims.get(AUTH_CLAIM)
    return auth if isinstance(auth, dict) else {}


def jwt_expiry(jwt: str) -> _dt.datetime | None:
    """The ``exp`` of a JWT (e.g. an access token) as aware UTC, or ``None`` (opaque token, no/odd ``exp``)."""
    try:
        claims = decode_jwt_payload(jwt)
    except TokenDataError:
        return None
    return _exp_to_datetime(claims.get("exp"))
