"""The stored credentials, read: JWT claims, auth.json, its timestamps, and what ``codex-login status`` prints.

One reader and one set of checks for the whole package, with plain values: ``token_data``, ``storage`` and
``account`` put the library's types on top (``IdTokenInfo`` with a ``datetime``, ``AuthDotJson`` with an
``AuthMode``, ``StatusFacts``), and ``codex-login status`` uses this module directly. That command must start
about as fast as the interpreter, so what it runs is in this one module (every module imported costs
start-up time), the records are plain classes (``_frozen.FrozenRecord`` would be one more module), and
neither ``json`` and ``re`` (see ``_fastjson``), ``datetime``, ``enum``, ``binascii`` nor ``storage`` (but
for the keyring, auto and ephemeral stores) is imported.

JWTs (reference ``token_data.rs`` and ``jwt_auth_claims`` in ``server.rs``): signatures are **not** verified
(parity, security E4): the ID token comes straight from the token endpoint over TLS (OIDC Core §3.1.3.7) and
its claims are used only for display and the workspace restriction. The payload is decoded as strict
base64url *without* padding, like Rust's ``URL_SAFE_NO_PAD`` engine: padded input, characters outside the
URL-safe alphabet and non-canonical trailing bits are all rejected. The claims the reference models with
serde are type-checked the same way (``email`` must be a string or null, ...), so a token the Rust CLI
refuses is refused here too.

Instants are seconds (or microseconds) since 1970-01-01T00:00:00Z on the proleptic Gregorian calendar, which
is what ``datetime`` computes with too.

The auth.json rules (serde's, the reference's key order and messages) are described in ``storage``. No error
message carries file content, a token, a key or a claim value. Claim values themselves (``email``, plan, ids)
are *untrusted text*: whoever shows them must sanitize them first (security E5).
"""

# Annotations are evaluated (no ``from __future__ import annotations``): ``codex-login status`` imports this
# module, and that line would import the ``__future__`` module (see tests/test_import_budget.py).

import os
import stat
import time

from ._fastjson import has_surrogate
from ._fastjson import loads as _json_loads
from .errors import ErrorKind, LoginError, StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime

    from .token_data import IdTokenInfo


# ---------------------------------------------------------------------------------------------------------
# JWTs

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
_B64URL_DIGITS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Each base64url digit to its 6-bit value.
_B64URL_VALUES = bytes.maketrans(_B64URL_DIGITS, bytes(range(64)))

MSG_FORMAT = "invalid ID token format"
MSG_BASE64 = "invalid ID token payload (base64)"
MSG_JSON = "invalid ID token payload (JSON)"


class TokenDataError(LoginError):
    """An ID token (or another JWT) could not be parsed. The message never contains the token."""

    __module__ = "codex_login.token_data"  # where the library exports it (tracebacks, pickling)
    kind = ErrorKind.INVALID_DATA
    failure_class = "invalid_id_token"


def _split_payload(jwt: str) -> str:
    parts = jwt.split(".")
    if len(parts) != 3 or not all(parts):
        raise TokenDataError(MSG_FORMAT)
    return parts[1]


def _b64url_decode_no_pad(data: str) -> bytes:
    """Strict base64url without padding, like Rust's ``URL_SAFE_NO_PAD`` (rejects padding and stray bits).

    Decoded with whole-number arithmetic rather than ``binascii``: loading that extension module would cost
    ``codex-login status`` more than decoding its two JWTs does.
    """
    try:
        digits = data.encode("ascii")
    except UnicodeEncodeError:
        raise TokenDataError(MSG_BASE64) from None
    # Deleting every base64url digit must leave nothing.
    if len(digits) > _MAX_PAYLOAD_CHARS or len(digits) % 4 == 1 or digits.translate(None, _B64URL_DIGITS):
        raise TokenDataError(MSG_BASE64)
    size = 6 * len(digits) // 8
    groups = -(-len(digits) // 4)
    # One byte per digit holding its 6-bit value, zero-padded to whole groups of four digits (three bytes).
    number = int.from_bytes(digits.translate(_B64URL_VALUES).ljust(4 * groups, b"\0"), "big")
    # Pack the values in all groups at once: each 16-bit lane [00aaaaaa 00bbbbbb] becomes the 12 bits aaaaaabbbbbb,
    # then each 32-bit lane [0000 12 bits 0000 12 bits] becomes a zero byte followed by the group's 24 bits.
    six = int.from_bytes(b"\x00\x3f" * (2 * groups), "big")
    number = number & six | (number >> 2) & (six << 6)
    twelve = int.from_bytes(b"\x00\x00\x0f\xff" * groups, "big")
    number = number & twelve | (number >> 4) & (twelve << 12)
    lanes = number.to_bytes(4 * groups, "big")
    decoded = bytearray(3 * groups)
    decoded[0::3] = lanes[1::4]
    decoded[1::3] = lanes[2::4]
    decoded[2::3] = lanes[3::4]
    # Canonical encodings only: the unused low bits of the last digit must be zero (the padding is).
    if any(decoded[size:]):
        raise TokenDataError(MSG_BASE64)
    return bytes(decoded[:size])


def decode_jwt_payload(jwt: str) -> dict[str, object]:
    """The JSON object in the payload of ``jwt`` (signature not checked). Raises :class:`TokenDataError`."""
    payload = _b64url_decode_no_pad(_split_payload(jwt))
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise TokenDataError(MSG_BASE64)
    try:
        claims = _json_loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenDataError(MSG_JSON) from None
    # A lone surrogate escape ("\ud800") is not JSON serde_json accepts, and no claim value printed with it
    # would encode as UTF-8.
    if not isinstance(claims, dict) or has_surrogate(claims):
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


def exp_seconds(value: object) -> int | None:
    """``exp`` when it is an integer ``datetime.fromtimestamp`` can convert on this platform, else None."""
    # The reference reads ``exp`` as an ``i64``: floats, strings and bools do not count.
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        # The same conversion and platform limits ``datetime.fromtimestamp`` has, then its year range.
        year = time.gmtime(value).tm_year
    except (OverflowError, OSError, ValueError):
        return None
    return value if 1 <= year <= 9999 else None


class IdTokenClaims:
    """What ``token_data.parse_id_token`` reads from an ID token, with ``exp`` as seconds since the epoch.

    ``token_data.IdTokenInfo`` is this with ``expires_at`` as a ``datetime``; ``codex-login status`` uses this
    one so that it does not import ``datetime``.
    """

    __slots__ = (
        "chatgpt_account_id",
        "chatgpt_plan_type",
        "chatgpt_user_id",
        "completed_platform_onboarding",
        "email",
        "exp",
        "is_org_owner",
        "organization_id",
        "project_id",
        "raw_jwt",
    )

    email: str | None
    chatgpt_plan_type: str | None
    chatgpt_user_id: str | None
    chatgpt_account_id: str | None
    organization_id: str | None
    project_id: str | None
    completed_platform_onboarding: bool
    is_org_owner: bool
    exp: int | None
    raw_jwt: str

    def __init__(  # noqa: PLR0917 - positional, in the order of IdTokenInfo's fields
        self,
        email: str | None,
        chatgpt_plan_type: str | None,
        chatgpt_user_id: str | None,
        chatgpt_account_id: str | None,
        organization_id: str | None,
        project_id: str | None,
        completed_platform_onboarding: bool,
        is_org_owner: bool,
        exp: int | None,
        raw_jwt: str,
    ) -> None:
        self.email = email
        self.chatgpt_plan_type = chatgpt_plan_type
        self.chatgpt_user_id = chatgpt_user_id
        self.chatgpt_account_id = chatgpt_account_id
        self.organization_id = organization_id
        self.project_id = project_id
        self.completed_platform_onboarding = completed_platform_onboarding
        self.is_org_owner = is_org_owner
        self.exp = exp
        self.raw_jwt = raw_jwt


def id_token_claims(jwt: str) -> IdTokenClaims:
    """The claims of an ID token (reference ``parse_chatgpt_jwt_claims``). Raises :class:`TokenDataError`.

    Its messages: ``invalid ID token format``, ``invalid ID token payload (base64)``, ``invalid ID token
    payload (JSON)``.
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

    return IdTokenClaims(
        email if email is not None else profile_email,
        plan,
        user_id,
        account_id,
        organization_id,
        project_id,
        onboarding,
        owner,
        exp_seconds(claims.get("exp")),
        jwt,
    )


def _claims_or_empty(jwt: str) -> dict[str, object]:
    try:
        return decode_jwt_payload(jwt)
    except TokenDataError:
        return {}


def _auth_object(claims: dict[str, object]) -> dict[str, object]:
    auth = claims.get(AUTH_CLAIM)
    return auth if isinstance(auth, dict) else {}


def jwt_auth_claims(jwt: str) -> dict[str, object]:
    """The ``https://api.openai.com/auth`` object of a JWT, or ``{}`` on any failure (reference §9.1)."""
    return _auth_object(_claims_or_empty(jwt))


def jwt_expiry_seconds(jwt: str) -> int | None:
    """The ``exp`` of a JWT in seconds since the epoch, or ``None`` (opaque token, no/odd ``exp``)."""
    return exp_seconds(_claims_or_empty(jwt).get("exp"))


# ---------------------------------------------------------------------------------------------------------
# RFC 3339 timestamps (auth.json's ``last_refresh``)

#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the seconds ``datetime`` can represent.
MIN_SECONDS = -62_135_596_800
MAX_SECONDS = 253_402_300_799

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NOT_RFC3339 = "not an RFC 3339 timestamp"


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to the given date (proleptic Gregorian; H. Hinnant's ``days_from_civil``)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The (year, month, day) ``days`` after 1970-01-01; the inverse of :func:`days_from_civil`."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def _is_ascii_digits(text: str) -> bool:
    # RFC 3339 (and chrono) read only 0-9; ``isdigit`` alone also takes ``٢``, ``２`` and ``²``.
    return text.isascii() and text.isdigit()


def _number(text: str, start: int, width: int) -> int:
    digits = text[start : start + width]
    if len(digits) != width or not _is_ascii_digits(digits):
        raise ValueError(_NOT_RFC3339)
    return int(digits)


def _expect(text: str, index: int, allowed: str) -> None:
    if len(text) <= index or text[index] not in allowed:
        raise ValueError(_NOT_RFC3339)


def parse_rfc3339(text: str) -> tuple[int, int]:
    """``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH[:]MM)`` -> (UTC seconds since the epoch, nanoseconds).

    Accepts ``t`` or a space for ``T``, ``z`` for ``Z``, any number of fractional digits (digits beyond the
    ninth are dropped, as chrono does) and any offset under 24 hours whose minutes are under 60 (chrono's
    range). Digits are ASCII only. Raises ``ValueError`` for anything else and for fields ``datetime`` would
    refuse (February 30th, hour 24, second 60...), ``OverflowError`` when the instant in UTC falls outside
    years 1 to 9999.
    """
    year = _number(text, 0, 4)
    _expect(text, 4, "-")
    month = _number(text, 5, 2)
    _expect(text, 7, "-")
    day = _number(text, 8, 2)
    _expect(text, 10, "Tt ")
    hour = _number(text, 11, 2)
    _expect(text, 13, ":")
    minute = _number(text, 14, 2)
    _expect(text, 16, ":")
    second = _number(text, 17, 2)
    end = 19
    fraction = ""
    if text[end : end + 1] == ".":
        end += 1
        while _is_ascii_digits(text[end : end + 1]):
            end += 1
        fraction = text[20:end]
        if not fraction:
            raise ValueError(_NOT_RFC3339)
    zone = text[end:]
    if zone in ("Z", "z"):
        offset_minutes = 0
    elif len(zone) in (5, 6) and zone[0] in "+-" and (len(zone) == 5 or zone[3] == ":"):
        zone_minute = _number(zone, len(zone) - 2, 2)
        if zone_minute >= 60:
            raise ValueError("UTC offset minutes out of range")
        offset_minutes = _number(zone, 1, 2) * 60 + zone_minute
        if zone[0] == "-":
            offset_minutes = -offset_minutes
    else:
        raise ValueError(_NOT_RFC3339)
    nanos = int(fraction.ljust(9, "0")[:9])
    if not -1440 < offset_minutes < 1440:
        raise ValueError("UTC offset of 24 hours or more")
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = _DAYS_IN_MONTH[month - 1] + (month == 2 and leap) if 1 <= month <= 12 else 0
    if not (1 <= year <= 9999 and 1 <= day <= month_days and hour < 24 and minute < 60 and second < 60):
        raise ValueError("date or time field out of range")
    seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise OverflowError("date value out of range")
    return seconds, nanos


def format_rfc3339_fields(  # noqa: PLR0917 - the fields of a date and time, in their order
    year: int, month: int, day: int, hour: int, minute: int, second: int, nanos: int
) -> str:
    """RFC 3339 UTC with ``Z`` and chrono's ``SecondsFormat::AutoSi`` sub-seconds: none, 3, 6 or 9 digits."""
    if nanos == 0:
        fraction = ""
    elif nanos % 1_000_000 == 0:
        fraction = f".{nanos // 1_000_000:03d}"
    elif nanos % 1000 == 0:
        fraction = f".{nanos // 1000:06d}"
    else:
        fraction = f".{nanos:09d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}Z"


def format_rfc3339(seconds: int, nanos: int = 0) -> str:
    """The UTC instant ``seconds`` (+ ``nanos``) since the epoch, formatted by :func:`format_rfc3339_fields`."""
    days, second_of_day = divmod(seconds, 86_400)
    year, month, day = civil_from_days(days)
    hour, second_of_hour = divmod(second_of_day, 3600)
    minute, second = divmod(second_of_hour, 60)
    return format_rfc3339_fields(year, month, day, hour, minute, second, nanos)


# ---------------------------------------------------------------------------------------------------------
# auth.json

AUTH_FILE_NAME = "auth.json"
#: auth.json files larger than this are refused rather than read into memory.
MAX_AUTH_FILE_BYTES = 16 * 1024 * 1024
#: ``auth_mode`` values, in the order of ``storage.AuthMode``.
AUTH_MODES = ("apikey", "chatgpt", "chatgptAuthTokens")

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

_TOP_LEVEL_KEYS = ("auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh")
_TOKEN_KEYS = ("id_token", "access_token", "refresh_token", "account_id")


class AuthParseError(StorageError):
    """Stored credentials are not a valid ``AuthDotJson``. The message names the problem, never content."""

    __module__ = "codex_login.storage"  # where the library exports it (tracebacks, pickling)
    kind = ErrorKind.INVALID_DATA


def os_error_text(err: OSError) -> str:
    if err.errno is not None:
        return os.strerror(err.errno)
    return err.strerror or type(err).__name__


def read_auth_file(path: str) -> bytes | None:
    """The bytes of auth.json at ``path``, None when there is none. Never follows a symbolic link.

    Raises :class:`StorageError` (a link, a directory or another non-regular file, too large, unreadable).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:
        if os.path.islink(path):
            raise StorageError(f"{path} is a symbolic link; refusing to read credentials through it") from None
        raise StorageError(f"failed to read {path}: {os_error_text(err)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            import errno

            raise StorageError(f"failed to read {path}: {os.strerror(errno.EISDIR)}")
        if not stat.S_ISREG(st.st_mode):
            raise StorageError(f"failed to read {path}: not a regular file")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_AUTH_FILE_BYTES:
                raise StorageError(f"failed to read {path}: larger than {MAX_AUTH_FILE_BYTES // (1024 * 1024)} MiB")
            chunks.append(chunk)
    except OSError as err:
        raise StorageError(f"failed to read {path}: {os_error_text(err)}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


class StoredTokens:
    """auth.json's ``tokens``, validated: the ID token's claims, the two other tokens, unknown keys."""

    __slots__ = ("access_token", "account_id", "extra", "id_token", "refresh_token")

    id_token: IdTokenClaims
    access_token: str
    refresh_token: str
    account_id: str | None
    extra: dict[str, object]

    def __init__(
        self,
        id_token: IdTokenClaims,
        access_token: str,
        refresh_token: str,
        account_id: str | None,
        extra: dict[str, object],
    ) -> None:
        self.id_token = id_token
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.account_id = account_id
        self.extra = extra


class StoredAuth:
    """auth.json, validated; ``AuthDotJson`` with plain values (``last_refresh`` as UTC seconds, nanoseconds)."""

    __slots__ = ("auth_mode", "extra", "last_refresh", "openai_api_key", "tokens")

    #: One of :data:`AUTH_MODES`, or None when absent.
    auth_mode: str | None
    openai_api_key: str | None
    tokens: StoredTokens | None
    last_refresh: tuple[int, int] | None
    extra: dict[str, object]

    def __init__(
        self,
        auth_mode: str | None,
        openai_api_key: str | None,
        tokens: StoredTokens | None,
        last_refresh: tuple[int, int] | None,
        extra: dict[str, object],
    ) -> None:
        self.auth_mode = auth_mode
        self.openai_api_key = openai_api_key
        self.tokens = tokens
        self.last_refresh = last_refresh
        self.extra = extra


def resolved_mode(auth_mode: str | None, api_key: str | None) -> str:
    """``auth_mode``; when absent, ``apikey`` if ``OPENAI_API_KEY`` is non-null, else ``chatgpt``."""
    if auth_mode is not None:
        return auth_mode
    return "apikey" if api_key is not None else "chatgpt"


def parse_auth_json(text: str | bytes) -> StoredAuth:
    """Parse stored credentials. Raises :class:`AuthParseError`, whose message never quotes content."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthParseError("stream did not contain valid UTF-8") from None
    try:
        doc = _json_loads(text)
    except (ValueError, RecursionError) as err:
        # Only a failed document gets here, and json (imported by then) raised the error.
        from json import JSONDecodeError

        if isinstance(err, JSONDecodeError):
            raise AuthParseError(f"invalid JSON at line {err.lineno} column {err.colno} ({err.msg})") from None
        raise AuthParseError("invalid JSON") from None
    if has_surrogate(doc):
        raise AuthParseError("invalid JSON: a string holds an unpaired surrogate")
    repeated = _repeated_field(text)
    if repeated is not None:
        raise AuthParseError(f"duplicate field `{repeated}`")
    return stored_auth_from_dict(doc)


class _Members(dict[str, object]):
    """A JSON object that remembers which of its member names occurred more than once."""

    repeated: frozenset[str] = frozenset()


def _members(pairs: list[tuple[str, object]]) -> _Members:
    obj = _Members(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated: set[str] = set()
        for name, _ in pairs:
            (repeated if name in seen else seen).add(name)
        obj.repeated = frozenset(repeated)
    return obj


def _repeated_field(text: str) -> str | None:
    """A field of auth.json's model named twice in its object, which the Rust CLI's serde derive refuses
    ("duplicate field") and Python's json would settle silently (the last one wins): the two CLIs must not
    read one file two ways. Repeated names serde ignores (unknown fields, names inside an ID token) pass.

    Cheap first: a file without a backslash (which could spell a name as ``\u0061uth_mode``) that names
    each field at most once needs no second parse; that is every file a CLI writes.
    """
    if "\\" not in text and all(text.count(f'"{name}"') <= 1 for name in _TOP_LEVEL_KEYS + _TOKEN_KEYS):
        return None
    import json

    try:
        doc = json.loads(text, object_pairs_hook=_members)
    except RecursionError:
        # This parse runs a few frames deeper than the first: a file nested right at the limit passes that
        # one and not this one. Such a document is no auth.json a CLI wrote.
        raise AuthParseError("invalid JSON") from None
    if not isinstance(doc, _Members):
        return None
    for name in _TOP_LEVEL_KEYS:
        if name in doc.repeated:
            return name
    tokens = doc.get("tokens")
    if isinstance(tokens, _Members):
        for name in _TOKEN_KEYS:
            if name in tokens.repeated:
                return name
    return None


_LABEL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def _is_label(value: str) -> bool:
    """Whether ``value`` can be shown as the name of a mode or a plan (``agentIdentity``, ``free_workspace``):
    1 to 32 letters or underscores. Secrets are random and hold digits or dashes, so none passes."""
    return 1 <= len(value) <= 32 and _LABEL_CHARS.issuperset(value)


def stored_auth_from_dict(doc: object) -> StoredAuth:
    """Validate a parsed JSON value the way the reference's serde derive does."""
    if not isinstance(doc, dict):
        raise AuthParseError("expected a JSON object at the top level")
    mode = doc.get("auth_mode")
    if mode is not None:
        if not isinstance(mode, str):
            raise AuthParseError("auth_mode must be a string")
        if mode not in AUTH_MODES:
            # Only a word that can be a mode's name is quoted: a token pasted into the field is plain
            # word characters too, and this message reaches the terminal, `status --json` and the log.
            shown = f' "{mode}"' if _is_label(mode) else ""
            raise AuthParseError(f"unsupported auth_mode{shown}")
    api_key = doc.get("OPENAI_API_KEY")
    if api_key is not None and not isinstance(api_key, str):
        raise AuthParseError("OPENAI_API_KEY must be a string or null")
    raw_tokens = doc.get("tokens")
    tokens = _tokens_from_dict(raw_tokens) if raw_tokens is not None else None
    raw_refresh = doc.get("last_refresh")
    last_refresh: tuple[int, int] | None = None
    if raw_refresh is not None:
        if not isinstance(raw_refresh, str):
            raise AuthParseError("last_refresh must be a string")
        try:
            last_refresh = parse_rfc3339(raw_refresh)
        except (ValueError, OverflowError):
            raise AuthParseError("last_refresh is not an RFC 3339 timestamp") from None
    extra = {k: v for k, v in doc.items() if k not in _TOP_LEVEL_KEYS}
    return StoredAuth(mode, api_key, tokens, last_refresh, extra)


def _tokens_from_dict(raw: object) -> StoredTokens:
    if not isinstance(raw, dict):
        raise AuthParseError("tokens must be an object")
    values: dict[str, str] = {}
    for key in ("id_token", "access_token", "refresh_token"):
        value = raw.get(key)
        if key not in raw:
            raise AuthParseError(f"tokens.{key} is missing")
        if not isinstance(value, str):
            raise AuthParseError(f"tokens.{key} must be a string")
        values[key] = value
    account_id = raw.get("account_id")
    if account_id is not None and not isinstance(account_id, str):
        raise AuthParseError("tokens.account_id must be a string or null")
    try:
        claims = id_token_claims(values["id_token"])
    except TokenDataError as err:
        raise AuthParseError(f"tokens.id_token: {err.message}") from None
    extra = {k: v for k, v in raw.items() if k not in _TOKEN_KEYS}
    return StoredTokens(claims, values["access_token"], values["refresh_token"], account_id, extra)


# ---------------------------------------------------------------------------------------------------------
# Status


def mask_api_key(key: str) -> str:
    """Reference §14.2: ``***`` for keys of 13 characters or fewer, else first 8 + ``***`` + last 5."""
    if len(key) <= 13:
        return "***"
    return f"{key[:8]}***{key[-5:]}"


class StatusSummary:
    """``account.StatusFacts`` with its instants as microseconds since the epoch (UTC) instead of ``datetime``."""

    __slots__ = (
        "account_id",
        "api_key_masked",
        "auth_mode",
        "email",
        "expires_at_us",
        "last_refresh_us",
        "logged_in",
        "plan",
        "store",
        "store_location",
        "store_reason",
        "warnings",
    )

    logged_in: bool
    auth_mode: str | None
    store: str
    store_location: str
    store_reason: str | None
    email: str | None
    plan: str | None
    account_id: str | None
    expires_at_us: int | None
    last_refresh_us: int | None
    api_key_masked: str | None
    warnings: tuple[str, ...]

    def __init__(  # noqa: PLR0917 - positional, in the order of StatusFacts' fields
        self,
        logged_in: bool,
        auth_mode: str | None,
        store: str,
        store_location: str,
        store_reason: str | None,
        email: str | None = None,
        plan: str | None = None,
        account_id: str | None = None,
        expires_at_us: int | None = None,
        last_refresh_us: int | None = None,
        api_key_masked: str | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.logged_in = logged_in
        self.auth_mode = auth_mode
        self.store = store
        self.store_location = store_location
        self.store_reason = store_reason
        self.email = email
        self.plan = plan
        self.account_id = account_id
        self.expires_at_us = expires_at_us
        self.last_refresh_us = last_refresh_us
        self.api_key_masked = api_key_masked
        self.warnings = warnings


def now_us() -> int:
    """The current time as ``datetime.now(UTC)`` has it: microseconds since the epoch, rounded down."""
    return time.time_ns() // 1000


def status_summary(codex_home: os.PathLike[str] | str, store_mode: str = "file") -> StatusSummary:
    """Read the stored sign-in. Raises :class:`LoginError` (unreadable or invalid credentials)."""
    if store_mode != "file":
        return _summary_from_store(codex_home, store_mode)
    path = os.path.join(os.fspath(codex_home), AUTH_FILE_NAME)
    raw = read_auth_file(path)
    if raw is None:
        return _summarize(("file", path, None, ()), None, None, None, None)
    try:
        stored = parse_auth_json(raw)
    except AuthParseError as err:
        raise AuthParseError(f"failed to parse {path}: {err.message}") from None
    last_refresh = stored.last_refresh
    tokens = stored.tokens
    return _summarize(
        ("file", path, None, ()),
        resolved_mode(stored.auth_mode, stored.openai_api_key),
        stored.openai_api_key,
        None if tokens is None else (tokens.id_token, tokens.access_token, tokens.account_id),
        None if last_refresh is None else last_refresh[0] * 1_000_000 + last_refresh[1] // 1000,
        other_secrets=() if tokens is None else (tokens.refresh_token,),
    )


def _summary_from_store(codex_home: os.PathLike[str] | str, store_mode: str) -> StatusSummary:
    """The keyring, auto and ephemeral stores: through ``storage`` (``keyring`` is imported there)."""
    from .storage import create_store

    store = create_store(codex_home, store_mode)
    auth = store.load()
    info = store.describe()
    where = (info.name, info.location, info.reason, tuple(store.warnings))
    if auth is None:
        return _summarize(where, None, None, None, None)
    tokens = auth.tokens
    return _summarize(
        where,
        auth.resolved_mode().value,
        auth.openai_api_key,
        None if tokens is None else (tokens.id_token, tokens.access_token, tokens.account_id),
        None if auth.last_refresh is None else _microseconds(auth.last_refresh),
        other_secrets=() if tokens is None else (tokens.refresh_token,),
    )


def _microseconds(moment: "datetime") -> int:
    """``moment`` as microseconds since the epoch (a naive one is UTC, as ``storage.format_timestamp`` says)."""
    import datetime as _dt

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return (moment - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)) // _dt.timedelta(microseconds=1)


def _unless_secret(value: str | None, secrets: tuple[str, ...]) -> str | None:
    """``value``, or None when it is one of ``secrets``, part of one (10 characters or more) or holds one."""
    if not value:
        return value
    lowered = value.lower()
    for each in secrets:
        secret = each.lower()
        if len(secret) >= 6 and (secret in lowered or (len(lowered) >= 10 and lowered in secret)):
            return None
    return value


def _summarize(
    where: tuple[str, str, str | None, tuple[str, ...]],
    mode: str | None,
    api_key: str | None,
    tokens: "tuple[IdTokenClaims | IdTokenInfo, str, str | None] | None",
    last_refresh_us: int | None,
    *,
    other_secrets: tuple[str, ...] = (),
) -> StatusSummary:
    """The summary of a sign-in stored in ``where`` (store name, location, reason, warnings).

    ``mode`` is the resolved auth mode (None: nothing stored); ``tokens`` the ID token's claims, the access
    token and ``tokens.account_id``; ``other_secrets`` the record's other secrets (the refresh token).

    The file is the user's to edit (or another program's to write): the account ID, the email and the plan
    are shown by ``status``, ``status --json``, the doctor and the bundle, so a value that holds one of the
    record's own secrets (a token pasted into ``account_id``) is left out, and an unknown plan is shown only
    when it reads as a plan's name.
    """
    store, location, reason, warnings = where
    not_logged_in = StatusSummary(False, None, store, location, reason, warnings=warnings)
    if mode is None:
        return not_logged_in
    if mode == "apikey":
        if api_key is None:
            raise LoginError("Unexpected error retrieving API key: the stored credentials hold no API key")
        return StatusSummary(
            True,
            mode,
            store,
            location,
            reason,
            api_key_masked=mask_api_key(api_key),
            last_refresh_us=last_refresh_us,
            warnings=warnings,
        )
    if tokens is None:
        return not_logged_in  # a ChatGPT record without tokens signs nobody in
    id_token, access_token, account_id = tokens
    access_claims = _claims_or_empty(access_token)
    access_plan = _auth_object(access_claims).get("chatgpt_plan_type")
    # The reference reads the plan from the access token; the ID token's copy is the fallback.
    plan = access_plan if isinstance(access_plan, str) else id_token.chatgpt_plan_type
    if plan is not None and plan not in KNOWN_PLANS and not _is_label(plan):
        plan = None
    secrets = (access_token, id_token.raw_jwt, api_key or "", *other_secrets)
    expires = exp_seconds(access_claims.get("exp"))
    return StatusSummary(
        True,
        mode,
        store,
        location,
        reason,
        email=_unless_secret(id_token.email, secrets),
        plan=plan,
        account_id=_unless_secret(account_id or id_token.chatgpt_account_id, secrets),
        expires_at_us=None if expires is None else expires * 1_000_000,
        last_refresh_us=last_refresh_us,
        warnings=warnings,
    )
