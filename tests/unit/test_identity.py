"""Identity policy: claims only on /token, verified emails only, validated bodies on /server/token."""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_token.errors import EmailNotVerified, InvalidRequest, Unauthenticated
from kustomer_token.identity import Identity, identity_from_body, identity_from_claims
from kustomer_token.settings import TokenIdentityPolicy


def _from_claims(claims: dict[str, Any] | None, policy: TokenIdentityPolicy = "externalId", **kw: Any) -> Identity:
    options: dict[str, Any] = {"external_id_claim": "sub", "email_claim": "email", "require_email_verified": True}
    options.update(kw)
    return identity_from_claims(claims, policy=policy, **options)


def test_external_id_policy_takes_the_sub_claim_only() -> None:
    identity = _from_claims({"sub": "user-1", "email": "ann@example.com", "email_verified": "true"})
    assert identity == Identity(external_id="user-1")
    assert identity.claims() == {"externalId": "user-1"}
    assert identity.kind == "externalId"


def test_email_policy_takes_a_verified_email() -> None:
    identity = _from_claims({"sub": "user-1", "email": "ann@example.com", "email_verified": "true"}, "email")
    assert identity.claims() == {"email": "ann@example.com"}
    assert identity.kind == "email"


def test_both_policy_takes_both_in_token_order() -> None:
    identity = _from_claims({"sub": "user-1", "email": "ann@example.com", "email_verified": True}, "both")
    assert list(identity.claims().items()) == [("externalId", "user-1"), ("email", "ann@example.com")]
    assert identity.kind == "both"


def test_claim_names_are_configurable() -> None:
    claims = {"custom:kid": "k-9", "mail": "ann@example.com", "email_verified": "true"}
    identity = _from_claims(claims, "both", external_id_claim="custom:kid", email_claim="mail")
    assert identity == Identity(external_id="k-9", email="ann@example.com")


@pytest.mark.parametrize("verified", [None, "false", False, "no", "", "1", 1])
@pytest.mark.parametrize("policy", ["email", "both"])
def test_an_unverified_email_is_refused(verified: Any, policy: TokenIdentityPolicy) -> None:
    claims: dict[str, Any] = {"sub": "user-1", "email": "ann@example.com"}
    if verified is not None:
        claims["email_verified"] = verified
    with pytest.raises(EmailNotVerified):
        _from_claims(claims, policy)


def test_verification_can_be_waived_by_setting() -> None:
    identity = _from_claims({"email": "ann@example.com"}, "email", require_email_verified=False)
    assert identity == Identity(email="ann@example.com")


@pytest.mark.parametrize(
    "claims",
    [
        None,
        {},
        {"email": "ann@example.com"},
        {"sub": ""},
        {"sub": "   "},
        {"sub": 42},
        {"sub": ["a"]},
        {"sub": "line\nbreak"},
        {"sub": "\ud800"},
        {"sub": "x" * 513},
    ],
    ids=["none", "empty", "no-sub", "blank", "spaces", "number", "list", "control", "surrogate", "too-long"],
)
def test_no_usable_external_id_is_unauthenticated(claims: dict[str, Any] | None) -> None:
    with pytest.raises(Unauthenticated):
        _from_claims(claims)


@pytest.mark.parametrize("email", ["", "ann", "ann@", "@example.com", "a b@example.com", "a@b@c", 5])
def test_a_malformed_email_claim_is_unauthenticated(email: Any) -> None:
    with pytest.raises(Unauthenticated):
        _from_claims({"sub": "user-1", "email": email, "email_verified": "true"}, "email")


def test_body_identity_keeps_what_the_back_end_sent() -> None:
    assert identity_from_body({"externalId": "user-1"}) == Identity(external_id="user-1")
    assert identity_from_body({"email": "ann@example.com"}) == Identity(email="ann@example.com")
    assert identity_from_body({"email": "ann@example.com", "externalId": "u"}) == Identity("u", "ann@example.com")


@pytest.mark.parametrize(
    "body",
    [{}, {"externalId": " "}, {"email": "not-an-email"}, {"externalId": "a\x00b"}, {"email": "x" * 250 + "@e.co"}],
)
def test_an_unusable_body_identity_is_an_invalid_request(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        identity_from_body(body)


def test_fingerprint_is_short_stable_and_not_the_identity() -> None:
    identity = Identity(email="ann@example.com")
    assert identity.fingerprint() == Identity(email="ann@example.com").fingerprint()
    assert len(identity.fingerprint()) == 16
    assert "ann" not in identity.fingerprint()
    assert identity.fingerprint() != Identity(email="bob@example.com").fingerprint()
