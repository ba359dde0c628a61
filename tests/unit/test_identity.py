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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'the body needs "externalId" or "email" (or both)'),
        ({"externalId": 5}, "externalId is not a string"),
        ({"externalId": " "}, "externalId is empty"),
        ({"externalId": "x" * 513}, "externalId is longer than 512 characters"),
        ({"externalId": "a\x00b"}, "externalId contains control characters"),
        ({"externalId": "\ud800"}, "externalId is not valid Unicode text"),
        ({"email": "not-an-email"}, "email is not an email address"),
        ({"externalId": "u", "email": "a b@example.com"}, "email is not an email address"),
    ],
)
def test_an_invalid_request_says_what_is_wrong(body: dict[str, Any], message: str) -> None:
    """The 400's message is what the back end reads to fix its call."""
    with pytest.raises(InvalidRequest) as raised:
        identity_from_body(body)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("claims", "policy", "message"),
    [
        (None, "externalId", "no verified identity reached the service: send a valid access token"),
        ({"email": "a@b.co"}, "externalId", "the access token's 'sub' claim is missing"),
        ({"sub": " "}, "both", "the access token's 'sub' claim is empty"),
        (
            {"sub": "u"},
            "email",
            "the access token has no 'email' claim: send a token that carries the email (for Cognito, the ID token)"
            " or have the identity provider add it to access tokens",
        ),
        ({"email": "ann"}, "email", "the access token's 'email' claim is not an email address"),
        (
            {"email": "ann@example.com", "email_verified": "false"},
            "email",
            "the email address is not verified: verify it with the identity provider first",
        ),
    ],
)
def test_a_refused_token_says_why(claims: dict[str, Any] | None, policy: TokenIdentityPolicy, message: str) -> None:
    with pytest.raises((Unauthenticated, EmailNotVerified)) as raised:
        _from_claims(claims, policy)
    assert str(raised.value) == message


@pytest.mark.parametrize("verified", [True, "true", " TRUE ", "True"])
def test_a_verified_email_passes_in_each_form_authorizers_send(verified: Any) -> None:
    assert _from_claims({"email": "ann@example.com", "email_verified": verified}, "email").email == "ann@example.com"


def test_the_fingerprint_is_the_same_across_releases() -> None:
    """Operators search old logs by it: SHA-256 of the compact, non-ASCII-escaped claims JSON, 16 hex digits."""
    assert Identity("jürgen-1", "ann@example.com").fingerprint() == "d9100aab708da6e8"


def test_an_external_id_of_the_longest_allowed_length_is_accepted() -> None:
    assert identity_from_body({"externalId": "x" * 512}).external_id == "x" * 512
