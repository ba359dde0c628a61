"""RFC 8725 / RFC 7518 rules for the tokens we sign: hostile claim values cannot change the header or add
claims, and iat comes from our clock. (The exact header bytes, HS256, are in test_token.py. The package
verifies no token, so there is no decode whose algorithms could be confused.)"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import jwt
import pytest

from kustomer_token.identity import Identity, identity_from_claims
from kustomer_token.token import sign_login_token
from tests.support.leaks import LEAK_WATCH

HOSTILE = [
    'a"b',
    "back\\slash",
    '","iat":1,"admin":true,"x":"',
    "tab\tnew\nline\rcr",
    "nul\x00bell\x07esc\x1b",
    "line\u2028separator\u2029paragraph",
    '"}.{"alg":"none"}',
]


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.mark.parametrize("value", HOSTILE)
def test_a_claim_value_can_never_inject_a_header_or_a_claim(
    value: str, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(48)
    token = LEAK_WATCH.register(
        sign_login_token(Identity(external_id=value, email=value + "@example.com"), secret, 1_795_608_000).jwt_token,
        "minted token",
    )
    assert token.count(".") == 2
    assert _segment(token, 0) == b'{"alg":"HS256","typ":"JWT"}'
    payload = json.loads(_segment(token, 1))
    assert payload == {"externalId": value, "email": value + "@example.com", "iat": 1_795_608_000}
    assert jwt.decode(token, secret, algorithms=["HS256"]) == payload


def test_iat_comes_from_the_clock_never_from_the_identity_providers_claims() -> None:
    # The access token's own iat (and any iat-like claim) never reaches our token.
    claims = {"sub": "user-1", "iat": "1", "auth_time": "1", "exp": "2"}
    identity = identity_from_claims(
        claims, policy="externalId", external_id_claim="sub", email_claim="email", require_email_verified=True
    )
    assert identity.claims() == {"externalId": "user-1"}
