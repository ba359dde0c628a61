"""RFC 8725 / RFC 7518 rules for the tokens we sign."""

from __future__ import annotations

import ast
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from kustomer_token.identity import Identity, identity_from_claims
from kustomer_token.token import ALGORITHM, sign_login_token
from tests.support.leaks import LEAK_WATCH

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "kustomer_token"
HOSTILE = [
    'a"b',
    "back\\slash",
    '","iat":1,"admin":true,"x":"',
    "tab\tnew\nline\rcr",
    "nul\x00bell\x07esc\x1b",
    "line\u2028separator\u2029paragraph",
    '"}.{"alg":"none"}',
]


def test_the_algorithm_is_hs256() -> None:
    assert ALGORITHM == "HS256"


def _jwt_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "jwt"
                and node.func.attr in ("encode", "decode")
            ):
                calls.append((f"{path.name}:{node.lineno}", node))
    return calls


def test_every_jwt_call_in_the_package_names_the_pinned_algorithm() -> None:
    calls = _jwt_calls()
    assert len(calls) >= 2  # token.py signs, refresh.py proves a pending key
    for where, call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        if call.func.attr == "encode":  # type: ignore[attr-defined]
            assert ast.unparse(keywords["algorithm"]) == "ALGORITHM", where
        else:
            assert ast.unparse(keywords["algorithms"]) == "[ALGORITHM]", where


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


def test_a_token_with_alg_none_or_another_algorithm_does_not_verify(new_signing_secret: Callable[[int], str]) -> None:
    secret = new_signing_secret(48)
    unsigned = jwt.encode({"externalId": "x", "iat": 1}, None, algorithm="none")
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(unsigned, secret, algorithms=[ALGORITHM])
    hs512 = jwt.encode({"externalId": "x", "iat": 1}, secret + secret, algorithm="HS512")
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(hs512, secret, algorithms=[ALGORITHM])


def test_iat_comes_from_the_clock_never_from_the_identity_providers_claims() -> None:
    # The access token's own iat (and any iat-like claim) never reaches our token.
    claims = {"sub": "user-1", "iat": "1", "auth_time": "1", "exp": "2"}
    identity = identity_from_claims(
        claims, policy="externalId", external_id_claim="sub", email_claim="email", require_email_verified=True
    )
    assert identity.claims() == {"externalId": "user-1"}


def test_the_minter_signs_with_the_current_second(
    stored_secret: tuple[str, str], start_mint: Callable[..., object]
) -> None:
    from tests.support.events import http_api_event

    arn, secret = stored_secret
    mint = start_mint(SIGNING_SECRET_ID=arn)
    before = int(time.time())
    answer = mint.invoke(http_api_event("POST", "/token", claims={"sub": "user-1", "iat": "1"}))  # type: ignore[attr-defined]
    after = int(time.time())
    iat = jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])["iat"]
    assert before <= iat <= after
