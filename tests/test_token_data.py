"""token_data: ID-token claims, strict base64url, and errors that never echo the token (security E1-E5)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_login.errors import ErrorKind, LoginError
from codex_login.token_data import (
    AUTH_CLAIM,
    MAX_PAYLOAD_BYTES,
    PROFILE_CLAIM,
    IdTokenInfo,
    TokenDataError,
    decode_jwt_payload,
    jwt_auth_claims,
    jwt_expiry,
    parse_id_token,
)

CANARY = "CANARYc4n4ry"
MESSAGES = {
    "invalid ID token format",
    "invalid ID token payload (base64)",
    "invalid ID token payload (JSON)",
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(payload: object, *, alg: str = "none", signature: bytes = b"sig") -> str:
    header = json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode()
    body = json.dumps(payload, separators=(",", ":")).encode()
    return f"{b64url(header)}.{b64url(body)}.{b64url(signature)}"


def jwt_with_raw_payload(payload_segment: str) -> str:
    return f"{b64url(b'{}')}.{payload_segment}.{b64url(CANARY.encode())}"


def test_parses_every_claim() -> None:
    token = make_jwt(
        {
            "email": "user@example.com",
            "exp": 1_700_000_000,
            AUTH_CLAIM: {
                "chatgpt_plan_type": "pro",
                "chatgpt_user_id": "user-1",
                "user_id": "legacy-user",
                "chatgpt_account_id": "acc-1",
                "organization_id": "org-1",
                "project_id": "proj-1",
                "completed_platform_onboarding": True,
                "is_org_owner": True,
            },
        }
    )
    info = parse_id_token(token)
    assert info == IdTokenInfo(
        email="user@example.com",
        chatgpt_plan_type="pro",
        chatgpt_user_id="user-1",
        chatgpt_account_id="acc-1",
        organization_id="org-1",
        project_id="proj-1",
        completed_platform_onboarding=True,
        is_org_owner=True,
        expires_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        raw_jwt=token,
    )


def test_user_id_falls_back_to_legacy_claim() -> None:
    info = parse_id_token(make_jwt({AUTH_CLAIM: {"user_id": "legacy-user"}}))
    assert info.chatgpt_user_id == "legacy-user"


def test_email_falls_back_to_profile_claim_and_top_level_wins() -> None:
    assert parse_id_token(make_jwt({PROFILE_CLAIM: {"email": "p@example.com"}})).email == "p@example.com"
    both = make_jwt({"email": "top@example.com", PROFILE_CLAIM: {"email": "p@example.com"}})
    assert parse_id_token(both).email == "top@example.com"


def test_missing_auth_claim_parses_with_empty_fields() -> None:
    """Security E3: parity, success without an account id (the workspace check is the caller's)."""
    info = parse_id_token(make_jwt({"sub": "123"}))
    assert (info.email, info.chatgpt_plan_type, info.chatgpt_account_id, info.chatgpt_user_id) == (
        None,
        None,
        None,
        None,
    )
    assert (info.completed_platform_onboarding, info.is_org_owner, info.expires_at) == (False, False, None)


def test_loosely_typed_claims_are_ignored_like_server_rs() -> None:
    info = parse_id_token(
        make_jwt(
            {
                AUTH_CLAIM: {
                    "organization_id": 7,
                    "project_id": ["x"],
                    "completed_platform_onboarding": "true",
                    "is_org_owner": 1,
                }
            }
        )
    )
    assert (info.organization_id, info.project_id) == (None, None)
    assert (info.completed_platform_onboarding, info.is_org_owner) == (False, False)


@pytest.mark.parametrize(
    ("raw", "display", "workspace"),
    [
        ("free", "Free", False),
        ("go", "Go", False),
        ("plus", "Plus", False),
        ("pro", "Pro", False),
        ("team", "Team", True),
        ("business", "Business", True),
        ("enterprise", "Enterprise", True),
        ("edu", "Edu", True),
        ("self_serve_business_usage_based", "self_serve_business_usage_based", False),
        ("Plus", "Plus", False),
    ],
)
def test_plan_type_display(raw: str, display: str, workspace: bool) -> None:
    info = parse_id_token(make_jwt({AUTH_CLAIM: {"chatgpt_plan_type": raw}}))
    assert info.chatgpt_plan_type == raw
    assert info.plan_type_display == display
    assert info.is_workspace_account is workspace
    known = {"free", "go", "plus", "pro", "team", "business", "enterprise", "edu"}
    assert info.known_plan == (raw if raw in known else None)


def test_plan_type_display_absent() -> None:
    info = IdTokenInfo()
    assert (info.plan_type_display, info.known_plan, info.is_workspace_account) == (None, None, False)


@pytest.mark.parametrize("alg", ["none", "RS256", "HS256", "made-up"])
def test_signature_is_not_checked(alg: str) -> None:
    """Security E4 (pinning): any alg, any signature is accepted; a signature check must be a deliberate
    change to this test."""
    token = make_jwt({"email": "a@example.com"}, alg=alg, signature=b"not a real signature")
    assert parse_id_token(token).email == "a@example.com"


def test_raw_jwt_never_in_repr() -> None:
    token = make_jwt({"email": "a@example.com", "nonce": CANARY})
    info = parse_id_token(token)
    assert info.raw_jwt == token
    for text in (repr(info), str(info)):
        assert token not in text
        assert b64url(json.dumps({"email": "a@example.com", "nonce": CANARY}).encode())[:20] not in text
    assert "a@example.com" in repr(info)


def canary_jwt_parts() -> str:
    return b64url(json.dumps({"email": CANARY}).encode())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        f"{CANARY}",
        "a.b",
        "a..c",
        ".b.c",
        "a.b.",
        f"a.{CANARY}.c.d",
        "a.b.c.d",
        f"h.{canary_jwt_parts()}.s.extra",
    ],
)
def test_bad_format(token: str) -> None:
    """Security E1: the exact message, and neither the token nor a part of it is echoed."""
    with pytest.raises(TokenDataError) as info:
        parse_id_token(token)
    assert str(info.value) == "invalid ID token format"
    assert CANARY not in str(info.value)


@pytest.mark.parametrize(
    "segment",
    [
        b64url(b'{"email":"x"}') + "==",  # padded: Rust's URL_SAFE_NO_PAD refuses padding
        b64url(b'{"email":"xy"}') + "=",
        "eyJ+ZW1haWwiOiJ4In0",  # '+' is not base64url
        "eyJ/ZW1haWwiOiJ4In0",  # '/' is not base64url
        "eyJlbWFp bCI6IngifQ",  # whitespace
        "eyJlbWFpbCI6IngifQx",  # length % 4 == 1
        "eyJ9",  # canonical base64 of '{"}', which is not JSON
        "e31",  # non-canonical last character (trailing bits set)
        "*" * 8,
        CANARY + "!",
    ],
)
def test_bad_base64(segment: str) -> None:
    """Security E2: strict base64url without padding."""
    with pytest.raises(TokenDataError) as info:
        parse_id_token(jwt_with_raw_payload(segment))
    assert str(info.value) in {"invalid ID token payload (base64)", "invalid ID token payload (JSON)"}
    assert segment not in str(info.value)


def test_non_canonical_trailing_bits_are_rejected() -> None:
    # "e30" is '{}'; "e31" decodes to the same bytes with a nonzero unused bit, which Rust rejects.
    assert decode_jwt_payload(jwt_with_raw_payload("e30")) == {}
    with pytest.raises(TokenDataError, match=r"^invalid ID token payload \(base64\)$"):
        decode_jwt_payload(jwt_with_raw_payload("e31"))


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
        b"{not json",
        b'{"email": NaN}',
        b'{"email": "x"} trailing',
        b"\xff\xfe{}",
        '{"email": "é"}'.encode("utf-16"),
        b'{"email": 5}',  # serde: Option<String>
        b'{"https://api.openai.com/auth": "not an object"}',
        b'{"https://api.openai.com/auth": {"chatgpt_plan_type": 3}}',
        b'{"https://api.openai.com/auth": {"chatgpt_account_id": false}}',
        b'{"https://api.openai.com/profile": {"email": ["a"]}}',
        b"[" * 100_000,
    ],
)
def test_bad_json(payload: bytes) -> None:
    """Security E2: a JSON array, invalid JSON or a wrongly typed modelled claim is an error, not a crash."""
    with pytest.raises(TokenDataError) as info:
        parse_id_token(jwt_with_raw_payload(b64url(payload)))
    assert str(info.value) == "invalid ID token payload (JSON)"


def test_oversized_payload_is_rejected_before_decoding() -> None:
    """Security E2: a 1 MB payload is refused (memory bounded) with the base64 message."""
    big = {"email": "a@example.com", "pad": "x" * (1024 * 1024)}
    with pytest.raises(TokenDataError, match=r"^invalid ID token payload \(base64\)$"):
        parse_id_token(make_jwt(big))
    just_under = {"pad": "x" * (MAX_PAYLOAD_BYTES - 100)}
    assert parse_id_token(make_jwt(just_under)).email is None


def test_error_is_a_login_error_with_invalid_data_kind() -> None:
    with pytest.raises(TokenDataError) as info:
        parse_id_token("nope")
    err = info.value
    assert isinstance(err, LoginError)
    assert err.kind is ErrorKind.INVALID_DATA
    assert err.failure_class == "invalid_id_token"
    assert err.__cause__ is None


def test_hostile_claim_text_is_returned_verbatim_for_the_caller_to_sanitize() -> None:
    """Security E5: parsing does not alter claims (display code sanitizes); nothing is printed here."""
    hostile = "<script>alert(1)</script>\r\n\x1b[31m"
    assert parse_id_token(make_jwt({"email": hostile})).email == hostile


def test_jwt_auth_claims() -> None:
    claims = {"chatgpt_plan_type": "plus", "chatgpt_account_id": "acc", "nested": {"a": 1}}
    assert jwt_auth_claims(make_jwt({AUTH_CLAIM: claims})) == claims
    assert jwt_auth_claims(make_jwt({"sub": "x"})) == {}
    assert jwt_auth_claims(make_jwt({AUTH_CLAIM: ["not", "an", "object"]})) == {}
    assert jwt_auth_claims("opaque-access-token") == {}
    assert jwt_auth_claims(jwt_with_raw_payload(b64url(b"[1]"))) == {}


def test_jwt_expiry() -> None:
    assert jwt_expiry(make_jwt({"exp": 1_700_000_000})) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert jwt_expiry(make_jwt({"sub": "no exp"})) is None
    assert jwt_expiry("opaque-refresh-token") is None
    assert jwt_expiry(make_jwt({"exp": 1.7e9})) is None  # the reference reads an i64
    assert jwt_expiry(make_jwt({"exp": "1700000000"})) is None
    assert jwt_expiry(make_jwt({"exp": True})) is None
    assert jwt_expiry(make_jwt({"exp": 10**30})) is None


@settings(deadline=None)
@given(
    email=st.one_of(st.none(), st.text()),
    account=st.one_of(st.none(), st.text()),
    plan=st.one_of(st.none(), st.text()),
)
def test_claims_round_trip(email: str | None, account: str | None, plan: str | None) -> None:
    token = make_jwt({"email": email, AUTH_CLAIM: {"chatgpt_account_id": account, "chatgpt_plan_type": plan}})
    info = parse_id_token(token)
    assert (info.email, info.chatgpt_account_id, info.chatgpt_plan_type) == (email, account, plan)
    assert info.raw_jwt == token


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("eyJabc0123456789-_=.+/ \n{}\"'"), max_size=80))
def test_arbitrary_input_only_raises_token_data_error(token: str) -> None:
    try:
        parse_id_token(token)
    except TokenDataError as err:
        assert str(err) in MESSAGES
        if len(token) >= 6:
            assert token not in str(err)
