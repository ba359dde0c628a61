"""Who the token is for: verified authorizer claims or a validated body, by policy.

Pure: no I/O, no environment. The end-user route reads claims only, so a body
can never change who a visitor is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kustomer_token.errors import EmailNotVerified, InvalidRequest, Unauthenticated
from kustomer_token.settings import TokenIdentityPolicy

MAX_EXTERNAL_ID_LENGTH = 512
MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Identity:
    """The identifiers a token carries; at least one is set."""

    external_id: str | None = None
    email: str | None = None

    @property
    def kind(self) -> str:
        """externalId, email or both: a metric dimension, never the value."""
        if self.external_id is not None and self.email is not None:
            return "both"
        return "externalId" if self.external_id is not None else "email"

    def claims(self) -> dict[str, str]:
        """Identity claims in token order: externalId, then email."""
        claims: dict[str, str] = {}
        if self.external_id is not None:
            claims["externalId"] = self.external_id
        if self.email is not None:
            claims["email"] = self.email
        return claims

    def fingerprint(self) -> str:
        """A short hash to correlate log lines without writing the identity itself."""
        canonical = json.dumps(self.claims(), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _text_problem(value: object, max_length: int) -> str | None:
    """Why a value cannot be an identifier, or None when it can."""
    if not isinstance(value, str):
        return "is not a string"
    if not value.strip():
        return "is empty"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    if _CONTROL.search(value):
        return "contains control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


def _email_problem(value: object) -> str | None:
    problem = _text_problem(value, MAX_EMAIL_LENGTH)
    if problem is None and not _EMAIL.match(str(value)):
        problem = "is not an email address"
    return problem


def _is_true(value: object) -> bool:
    # HTTP API JWT authorizers pass claims as strings: a JSON true arrives as "true".
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def identity_from_claims(
    claims: Mapping[str, Any] | None,
    *,
    policy: TokenIdentityPolicy,
    external_id_claim: str,
    email_claim: str,
    require_email_verified: bool,
    email_verified_claim: str = "email_verified",
) -> Identity:
    """The end user's identity from verified authorizer claims, as the policy asks."""
    if not claims:
        raise Unauthenticated("no verified identity reached the service: send a valid access token")

    external_id: str | None = None
    email: str | None = None
    if policy in ("externalId", "both"):
        value = claims.get(external_id_claim)
        problem = "is missing" if value is None else _text_problem(value, MAX_EXTERNAL_ID_LENGTH)
        if problem:
            raise Unauthenticated(f"the access token's {external_id_claim!r} claim {problem}")
        external_id = str(value)
    if policy in ("email", "both"):
        value = claims.get(email_claim)
        if value is None:
            # Cognito and Auth0 access tokens carry no email unless the identity provider adds it.
            raise Unauthenticated(
                f"the access token has no {email_claim!r} claim: send a token that carries the email "
                "(for Cognito, the ID token) or have the identity provider add it to access tokens"
            )
        problem = _email_problem(value)
        if problem:
            raise Unauthenticated(f"the access token's {email_claim!r} claim {problem}")
        if require_email_verified and not _is_true(claims.get(email_verified_claim)):
            raise EmailNotVerified("the email address is not verified: verify it with the identity provider first")
        email = str(value)
    return Identity(external_id=external_id, email=email)


def identity_from_body(body: Mapping[str, Any]) -> Identity:
    """A trusted back end's identity from a body already checked against SERVER_TOKEN_REQUEST_SCHEMA."""
    external_id = body.get("externalId")
    email = body.get("email")
    if external_id is not None and (problem := _text_problem(external_id, MAX_EXTERNAL_ID_LENGTH)):
        raise InvalidRequest(f"externalId {problem}")
    if email is not None and (problem := _email_problem(email)):
        raise InvalidRequest(f"email {problem}")
    if external_id is None and email is None:
        raise InvalidRequest('the body needs "externalId" or "email" (or both)')
    return Identity(external_id=external_id, email=email)


# The body of POST /server/token; text rules beyond JSON Schema live in _text_problem.
SERVER_TOKEN_REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "externalId": {"type": "string", "minLength": 1, "maxLength": MAX_EXTERNAL_ID_LENGTH},
        "email": {"type": "string", "minLength": 3, "maxLength": MAX_EMAIL_LENGTH},
    },
    "minProperties": 1,
    "additionalProperties": False,
}
