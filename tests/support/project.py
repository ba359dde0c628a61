"""What the release tests share: the project's version as pyproject.toml states it (test_version keeps it equal to
kustomer_token.__version__) and stack parameters."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


# Values for the template's required parameters, as a deployer would give them.
REQUIRED_PARAMETERS = {
    "KustomerOrg": "example-shop",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "1example23456789abcdefghij",
    "AllowedOrigins": "https://shop.example.com",
}
