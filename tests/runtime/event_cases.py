"""What each file in events/ must do in its built function: the one table of expectations."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EventCase:
    function: str
    # Template parameters for this case (the rest keep their defaults).
    parameters: dict[str, str] = field(default_factory=dict)
    # Mint: the HTTP status, the error code, or the identifiers the token carries.
    status: int | None = None
    error: str | None = None
    identifiers: tuple[str, ...] = ()
    # Refresher: what the handler returns, or the rotation step's place in the sequence.
    changed: bool | None = None
    rotation_step: int | None = None


MINT = "MintTokenFunction"
REFRESH = "RefreshSecretFunction"
# The role whose session signs events/server-token.json.
CHECKOUT_ROLE = "arn:aws:iam::123456789012:role/checkout-service"

EVENT_CASES: dict[str, EventCase] = {
    "mint-token-external-id.json": EventCase(MINT, {"TokenIdentity": "externalId"}, 200, identifiers=("externalId",)),
    "mint-token-email.json": EventCase(MINT, {"TokenIdentity": "email"}, 200, identifiers=("email",)),
    "mint-token-both.json": EventCase(MINT, {"TokenIdentity": "both"}, 200, identifiers=("externalId", "email")),
    "mint-token-unverified-email.json": EventCase(MINT, {"TokenIdentity": "email"}, 403, "email_not_verified"),
    "mint-token-no-claims.json": EventCase(MINT, {}, 401, "unauthenticated"),
    "server-token.json": EventCase(
        MINT, {"ServerTokenCallers": CHECKOUT_ROLE}, 200, identifiers=("externalId", "email")
    ),
    "server-token-unlisted-caller.json": EventCase(
        MINT, {"ServerTokenCallers": CHECKOUT_ROLE}, 403, "caller_not_allowed"
    ),
    "server-token-bad-body.json": EventCase(MINT, {"ServerTokenCallers": CHECKOUT_ROLE}, 400, "invalid_request"),
    "refresh-scheduled.json": EventCase(REFRESH, changed=True),
    "rotation-create-secret.json": EventCase(REFRESH, rotation_step=1),
    "rotation-set-secret.json": EventCase(REFRESH, rotation_step=2),
    "rotation-test-secret.json": EventCase(REFRESH, rotation_step=3),
    "rotation-finish-secret.json": EventCase(REFRESH, rotation_step=4),
}
