"""Typed settings, read from the environment once at start.

A missing or malformed setting raises ConfigurationError naming the variable,
so a broken deploy fails at init with a message that says what to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

TokenIdentityPolicy = Literal["externalId", "email", "both"]
SecretSource = Literal["sdk", "extension"]


class ConfigurationError(Exception):
    """A setting is missing or malformed; raised at start, names the variable."""


_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_:./\-]{1,128}$")


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is required: set it to the id or ARN of the secret")
    return value


def _seconds(environ: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise ConfigurationError(f"{name} must be a whole number of seconds from 0 to {maximum}, got {raw!r}")
    return int(raw)


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigurationError(f"{name} must be 'true' or 'false', got {raw!r}")
    return raw == "true"


def _claim_name(environ: Mapping[str, str], name: str, default: str) -> str:
    raw = environ.get(name, "").strip() or default
    if not _CLAIM_NAME.match(raw):
        raise ConfigurationError(f"{name} must be a JWT claim name (letters, digits, _ : . / -), got {raw!r}")
    return raw


# A role or user named in SERVER_TOKEN_CALLERS: partition, account, kind, path and name.
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/([A-Za-z0-9+=.@_-]+/)*[A-Za-z0-9+=.@_-]+$")


def _principal_arns(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name, "").strip()
    arns = tuple(raw.split(",")) if raw else ()
    for arn in arns:
        if not _PRINCIPAL_ARN.match(arn):
            raise ConfigurationError(
                f"{name} must list IAM role or user ARNs (arn:aws:iam::ACCOUNT:role/NAME), comma-separated "
                f"without spaces; got {arn!r}"
            )
    return arns


def _identity_policy(environ: Mapping[str, str], name: str) -> TokenIdentityPolicy:
    raw = environ.get(name, "").strip() or "externalId"
    for choice in get_args(TokenIdentityPolicy):
        if raw == choice:
            return choice  # type: ignore[no-any-return]
    raise ConfigurationError(f"{name} must be one of externalId, email, both; got {raw!r}")


def _secret_source(environ: Mapping[str, str], name: str) -> SecretSource:
    raw = environ.get(name, "").strip() or "sdk"
    if raw == "sdk":
        return "sdk"
    if raw == "extension":
        return "extension"
    raise ConfigurationError(f"{name} must be 'sdk' or 'extension', got {raw!r}")


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigurationError(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class MintSettings:
    """What the mint function needs; see the README's settings table."""

    signing_secret_id: str
    secret_cache_ttl_seconds: int = 300
    secret_max_stale_seconds: int = 3600
    token_identity: TokenIdentityPolicy = "externalId"
    external_id_claim: str = "sub"
    email_claim: str = "email"
    require_email_verified: bool = True
    email_verified_claim: str = "email_verified"
    # IAM roles and users allowed on /server/token; empty refuses every caller.
    server_token_callers: tuple[str, ...] = ()
    # "extension": read through the AWS Parameters and Secrets Lambda Extension (no boto3).
    signing_secret_source: SecretSource = "sdk"
    extension_port: int = 2773
    # Set by Lambda while it initialises a SnapStart snapshot.
    snap_start: bool = False

    @property
    def reads_secret_at_init(self) -> bool:
        """Read with boto3 during INIT: not through the extension (not ready then), never into a snapshot."""
        return self.signing_secret_source == "sdk" and not self.snap_start  # nosec B105

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MintSettings:
        env = os.environ if environ is None else environ
        return cls(
            signing_secret_id=_required(env, "SIGNING_SECRET_ID"),
            secret_cache_ttl_seconds=_seconds(env, "SECRET_CACHE_TTL_SECONDS", 300, 86_400),
            secret_max_stale_seconds=_seconds(env, "SECRET_MAX_STALE_SECONDS", 3600, 86_400),
            token_identity=_identity_policy(env, "TOKEN_IDENTITY"),
            external_id_claim=_claim_name(env, "EXTERNAL_ID_CLAIM", "sub"),
            email_claim=_claim_name(env, "EMAIL_CLAIM", "email"),
            require_email_verified=_boolean(env, "REQUIRE_EMAIL_VERIFIED", True),
            email_verified_claim=_claim_name(env, "EMAIL_VERIFIED_CLAIM", "email_verified"),
            server_token_callers=_principal_arns(env, "SERVER_TOKEN_CALLERS"),
            signing_secret_source=_secret_source(env, "SIGNING_SECRET_SOURCE"),
            extension_port=_port(env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", 2773),
            snap_start=env.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start",
        )


_ORG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
KUSTOMER_DOMAIN = "kustomerapp.com"


def _kustomer_base_url(environ: Mapping[str, str]) -> str:
    override = environ.get("KUSTOMER_API_BASE_URL", "").strip()
    if override:
        from urllib.parse import urlsplit

        parts = urlsplit(override)
        host = (parts.hostname or "").lower()
        loopback = host in _LOOPBACK_HOSTS or f"[{host}]" in _LOOPBACK_HOSTS
        if not parts.netloc or (parts.scheme != "https" and not (loopback and parts.scheme == "http")):
            raise ConfigurationError(
                "KUSTOMER_API_BASE_URL must be an https:// base URL such as https://api.prod2.kustomerapp.com "
                f"(plain http only on loopback), got {override!r}"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigurationError(
                "KUSTOMER_API_BASE_URL must be a plain base URL without credentials, query or fragment, "
                f"got {override!r}"
            )
        # The API key (org.admin) goes to this host: outside kustomerapp.com only by an explicit opt-in.
        # Loopback stays allowed: in Lambda only code the stack itself ships can listen there.
        kustomer_host = host == KUSTOMER_DOMAIN or host.endswith("." + KUSTOMER_DOMAIN)
        if not (kustomer_host or loopback or _boolean(environ, "KUSTOMER_ALLOW_NON_KUSTOMER_HOST", False)):
            raise ConfigurationError(
                f"KUSTOMER_API_BASE_URL must be a {KUSTOMER_DOMAIN} host (the refresher sends the API key "
                f"there), got {host!r}; to use your own proxy set KUSTOMER_ALLOW_NON_KUSTOMER_HOST=true "
                "(the stack's AllowNonKustomerApiHost parameter)"
            )
        return override.rstrip("/")
    org = environ.get("KUSTOMER_ORG", "").strip()
    if not org:
        raise ConfigurationError(
            "KUSTOMER_ORG is required (or KUSTOMER_API_BASE_URL): set it to your Kustomer org name"
        )
    if not _ORG.match(org):
        raise ConfigurationError(f"KUSTOMER_ORG must be a Kustomer org name (a-z, 0-9, -), got {org!r}")
    return f"https://{org}.api.kustomerapp.com"


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """What the secret refresher needs; see the README's settings table."""

    signing_secret_id: str
    api_key_secret_id: str
    kustomer_api_base_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RefreshSettings:
        env = os.environ if environ is None else environ
        return cls(
            signing_secret_id=_required(env, "SIGNING_SECRET_ID"),
            api_key_secret_id=_required(env, "API_KEY_SECRET_ID"),
            kustomer_api_base_url=_kustomer_base_url(env),
        )
