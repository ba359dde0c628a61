"""Settings: defaults from the contract, and a clear error naming any bad variable."""

from __future__ import annotations

import pytest

from kustomer_token.errors import ConfigurationError
from kustomer_token.settings import MintSettings


def test_defaults_match_the_contract() -> None:
    settings = MintSettings.from_env({"SIGNING_SECRET_ID": "arn:aws:secretsmanager:us-east-1:1:secret:s"})
    assert settings == MintSettings(
        signing_secret_id="arn:aws:secretsmanager:us-east-1:1:secret:s",
        secret_cache_ttl_seconds=300,
        secret_max_stale_seconds=3600,
        token_identity="externalId",
        external_id_claim="sub",
        email_claim="email",
        require_email_verified=True,
    )


def test_every_setting_is_read() -> None:
    settings = MintSettings.from_env(
        {
            "SIGNING_SECRET_ID": "s",
            "SECRET_CACHE_TTL_SECONDS": "60",
            "SECRET_MAX_STALE_SECONDS": "0",
            "TOKEN_IDENTITY": "both",
            "EXTERNAL_ID_CLAIM": "custom:id",
            "EMAIL_CLAIM": "mail",
            "REQUIRE_EMAIL_VERIFIED": "False",
        }
    )
    assert (settings.secret_cache_ttl_seconds, settings.secret_max_stale_seconds) == (60, 0)
    assert (settings.token_identity, settings.external_id_claim, settings.email_claim) == ("both", "custom:id", "mail")
    assert settings.require_email_verified is False


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({}, "SIGNING_SECRET_ID"),
        ({"SIGNING_SECRET_ID": "  "}, "SIGNING_SECRET_ID"),
        ({"SIGNING_SECRET_ID": "s", "SECRET_CACHE_TTL_SECONDS": "five"}, "SECRET_CACHE_TTL_SECONDS"),
        ({"SIGNING_SECRET_ID": "s", "SECRET_CACHE_TTL_SECONDS": "-1"}, "SECRET_CACHE_TTL_SECONDS"),
        ({"SIGNING_SECRET_ID": "s", "SECRET_CACHE_TTL_SECONDS": "999999"}, "SECRET_CACHE_TTL_SECONDS"),
        ({"SIGNING_SECRET_ID": "s", "SECRET_MAX_STALE_SECONDS": "1.5"}, "SECRET_MAX_STALE_SECONDS"),
        ({"SIGNING_SECRET_ID": "s", "TOKEN_IDENTITY": "phone"}, "TOKEN_IDENTITY"),
        ({"SIGNING_SECRET_ID": "s", "TOKEN_IDENTITY": "EMAIL"}, "TOKEN_IDENTITY"),
        ({"SIGNING_SECRET_ID": "s", "EXTERNAL_ID_CLAIM": "has space"}, "EXTERNAL_ID_CLAIM"),
        ({"SIGNING_SECRET_ID": "s", "EMAIL_CLAIM": 'a"b'}, "EMAIL_CLAIM"),
        ({"SIGNING_SECRET_ID": "s", "REQUIRE_EMAIL_VERIFIED": "yes"}, "REQUIRE_EMAIL_VERIFIED"),
    ],
)
def test_a_missing_or_malformed_setting_names_itself(environment: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        MintSettings.from_env(environment)
