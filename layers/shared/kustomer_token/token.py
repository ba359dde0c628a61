"""Pure token signing: identity + second + signing secret -> Kustomer login JWT.

The bytes match Kustomer's Node example (jsonwebtoken's jwt.sign): header
{"alg":"HS256","typ":"JWT"}, compact JSON, identity claims then iat, and
non-ASCII text as UTF-8 rather than \\u escapes.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from kustomer_token.identity import Identity

ALGORITHM = "HS256"
TOKEN_LIFETIME_SECONDS = 900  # Kustomer refuses a token whose iat is older than 15 minutes
RECOMMENDED_SECRET_BYTES = 32  # RFC 7518 section 3.2: at least the hash size for HS256

# The signing secret is Kustomer's to choose; secret_cache.py logs one warning
# per container for a short one instead of PyJWT warning on every call.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


class _HS256CheckedOncePerKey(HMACAlgorithm):
    """PyJWT's HS256, whose key checks run when the signing secret changes instead of on every token.

    HMACAlgorithm.prepare_key refuses keys that look asymmetric (PEM, SSH; DER where `cryptography` is
    installed, which the layer does not ship) or like a JWK's JSON: ~6 µs a call, a third of signing.
    The last key it accepted is kept with its prepared bytes; any other key goes through every check,
    and a refused key raises every time, as it does without this class. Registered through
    PyJWS.register_algorithm, PyJWT's extension point; signing itself is PyJWT's. This relies on one
    thing to check again on a PyJWT upgrade: prepare_key's answer depends on the key alone.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._accepted: tuple[str, bytes] | None = None

    def prepare_key(self, key: str | bytes) -> bytes:
        accepted = self._accepted
        if accepted is not None and isinstance(key, str) and accepted[0] == key:
            return accepted[1]
        prepared = super().prepare_key(key)
        if isinstance(key, str):
            self._accepted = (key, prepared)
        return prepared

    def forget(self) -> None:
        self._accepted = None


_hs256 = _HS256CheckedOncePerKey()
_jws = jwt.PyJWS(algorithms=[])
_jws.register_algorithm(ALGORITHM, _hs256)


def forget_signing_key() -> None:
    """Drops the signing key kept for PyJWT (after a SnapStart restore, with the secret cache's value)."""
    _hs256.forget()


@dataclass(frozen=True, slots=True)
class LoginToken:
    """A signed token and the facts a web page needs to use it."""

    jwt_token: str = field(repr=False)
    identity: Identity = field(repr=False)
    issued_at: int
    expires_at: int

    def response_body(self) -> dict[str, Any]:
        """The contract's success body: the token, its identifiers, and its validity window."""
        return {
            "jwtToken": self.jwt_token,
            **self.identity.claims(),
            "issuedAt": self.issued_at,
            "expiresAt": self.expires_at,
        }


def sign_login_token(identity: Identity, signing_secret: str, issued_at: int) -> LoginToken:
    """Sign a Kustomer chat login token for the identity at the given second."""
    payload = json.dumps({**identity.claims(), "iat": int(issued_at)}, separators=(",", ":"), ensure_ascii=False)
    # PyJWT's JWS layer signs the payload bytes as they are; jwt.encode would build the same bytes from a
    # dict with more checks for claims this token never has (datetime exp/nbf, iss).
    jwt_token = _jws.encode(payload.encode("utf-8"), signing_secret, algorithm=ALGORITHM)
    return LoginToken(
        jwt_token=jwt_token,
        identity=identity,
        issued_at=int(issued_at),
        expires_at=int(issued_at) + TOKEN_LIFETIME_SECONDS,
    )


def is_short_secret(signing_secret: str) -> bool:
    return len(signing_secret.encode("utf-8")) < RECOMMENDED_SECRET_BYTES
