"""PKCE (RFC 7636, S256 only) and the OAuth ``state``, exactly as the reference generates them."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field


def b64url_nopad(data: bytes) -> str:
    """Base64url without padding (RFC 7636 Appendix A; also how JWT segments are written)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PkceCodes:
    """A verifier and its S256 challenge. The verifier is a secret: it stays out of ``repr``."""

    code_verifier: str = field(repr=False)
    code_challenge: str


def challenge_for(verifier: str) -> str:
    """``base64url_nopad(SHA-256(ASCII(verifier)))``."""
    return b64url_nopad(hashlib.sha256(verifier.encode("ascii")).digest())


def generate_pkce() -> PkceCodes:
    """64 random bytes, base64url without padding (86 characters), as the reference."""
    verifier = b64url_nopad(secrets.token_bytes(64))
    return PkceCodes(code_verifier=verifier, code_challenge=challenge_for(verifier))


def generate_state() -> str:
    """32 random bytes, base64url without padding (43 characters)."""
    return b64url_nopad(secrets.token_bytes(32))
