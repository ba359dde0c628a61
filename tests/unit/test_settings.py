"""Settings: defaults from the contract, and a clear error naming any bad variable."""

from __future__ import annotations

import pytest

from kustomer_token.settings import ConfigurationError, MintSettings, RefreshSettings


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
        email_verified_claim="email_verified",
        server_token_callers=(),
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
            "EMAIL_VERIFIED_CLAIM": "https://example.com/email_verified",
            "SERVER_TOKEN_CALLERS": "arn:aws:iam::123456789012:role/a/b/backend,arn:aws:iam::123456789012:user/ci",
        }
    )
    assert settings.email_verified_claim == "https://example.com/email_verified"
    assert settings.server_token_callers == (
        "arn:aws:iam::123456789012:role/a/b/backend",
        "arn:aws:iam::123456789012:user/ci",
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
        ({"SIGNING_SECRET_ID": "s", "EMAIL_VERIFIED_CLAIM": "a b"}, "EMAIL_VERIFIED_CLAIM"),
        ({"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": "*"}, "SERVER_TOKEN_CALLERS"),
        (
            {"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": "arn:aws:iam::123456789012:role/*"},
            "SERVER_TOKEN_CALLERS",
        ),
        (
            {"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": "arn:aws:iam::123:role/short-account"},
            "SERVER_TOKEN_CALLERS",
        ),
        (
            {"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": "arn:aws:sts::123456789012:assumed-role/r/s"},
            "SERVER_TOKEN_CALLERS",
        ),
        (
            {"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": "arn:aws:iam::123456789012:role/a,"},
            "SERVER_TOKEN_CALLERS",
        ),
    ],
)
def test_a_missing_or_malformed_setting_names_itself(environment: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        MintSettings.from_env(environment)


_REFRESH = {"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a"}


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.prod2.kustomerapp.com",
        "https://acme.api.kustomerapp.com/",
        "https://kustomerapp.com",
        "http://127.0.0.1:8080",
        "http://localhost:9000",
    ],
)
def test_a_kustomer_host_or_loopback_needs_no_opt_in(base_url: str) -> None:
    settings = RefreshSettings.from_env({**_REFRESH, "KUSTOMER_API_BASE_URL": base_url})
    assert settings.kustomer_api_base_url == base_url.rstrip("/")


@pytest.mark.parametrize(
    "base_url",
    [
        "https://proxy.example.com",
        "https://kustomerapp.com.attacker.example",
        "https://evilkustomerapp.com",
        "https://api.kustomerapp.com@attacker.example",
        "https://user:pw@api.kustomerapp.com",
    ],
)
def test_any_other_host_is_refused_unless_the_operator_opts_in(base_url: str) -> None:
    # Given a base URL outside kustomerapp.com (the API key, org.admin, would go there)
    # Then the refresher refuses to start, naming the setting and the opt-in
    with pytest.raises(ConfigurationError, match="KUSTOMER_API_BASE_URL") as refused:
        RefreshSettings.from_env({**_REFRESH, "KUSTOMER_API_BASE_URL": base_url})
    if "@" not in base_url:
        assert "KUSTOMER_ALLOW_NON_KUSTOMER_HOST" in str(refused.value)


def test_the_operator_can_opt_in_to_a_proxy_host() -> None:
    environment = {
        **_REFRESH,
        "KUSTOMER_API_BASE_URL": "https://proxy.example.com/kustomer",
        "KUSTOMER_ALLOW_NON_KUSTOMER_HOST": "true",
    }
    assert RefreshSettings.from_env(environment).kustomer_api_base_url == "https://proxy.example.com/kustomer"


def test_the_opt_in_is_a_boolean_setting() -> None:
    environment = {
        **_REFRESH,
        "KUSTOMER_API_BASE_URL": "https://proxy.example.com",
        "KUSTOMER_ALLOW_NON_KUSTOMER_HOST": "1",
    }
    with pytest.raises(ConfigurationError, match="KUSTOMER_ALLOW_NON_KUSTOMER_HOST"):
        RefreshSettings.from_env(environment)
