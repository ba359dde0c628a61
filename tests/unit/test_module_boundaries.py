"""Each function loads its own code: the refresher none of the mint's, the mint none of the refresher's.

Given a fresh interpreter with the function's folder and the layer on the path, as Lambda has them,
when the handler module is imported (its INIT), then sys.modules holds only what that function needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kustomer_token

ROOT = Path(__file__).resolve().parents[2]
# The layer's folder as the tests import it: layers/shared, or mutation testing's mutated copy (mutants/src).
LAYER = Path(kustomer_token.__file__).resolve().parents[1]

# The mint's own modules and the third-party code only the mint uses.
MINT_ONLY = {
    "kustomer_token.minting",
    "kustomer_token.identity",
    "kustomer_token.callers",
    "kustomer_token.token",
    "kustomer_token.errors",
    "kustomer_token.http_event",
    "kustomer_token.secret_cache",
    "kustomer_token.secret_readers",
    "jwt",
    "fastjsonschema",
}
REFRESHER_ONLY = {"kustomer_token.refresh", "kustomer_token.kustomer", "kustomer_token.secrets_store"}


def _modules_after_init(function: str, environment: dict[str, str]) -> set[str]:
    # Nothing listens on port 9 of loopback: a read at INIT is refused at once and only logged.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(LAYER)]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:9",
        "SIGNING_SECRET_ID": "SigningSecret",
        **environment,
    }
    completed = subprocess.run(
        [sys.executable, "-c", "import json, sys, app; print(json.dumps(sorted(sys.modules)))"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(completed.stdout.splitlines()[-1]))


def test_the_refresher_loads_none_of_the_mint_code() -> None:
    loaded = _modules_after_init(
        "refresh", {"API_KEY_SECRET_ID": "ApiKeySecret", "KUSTOMER_API_BASE_URL": "https://acme.api.kustomerapp.com"}
    )
    assert loaded >= REFRESHER_ONLY
    assert "kustomer_token.secret_value" in loaded  # the one rule both functions share
    assert loaded & MINT_ONLY == set()
    assert not any(name.startswith("aws_lambda_powertools.event_handler") for name in loaded)


def test_the_mint_loads_none_of_the_refresher_code() -> None:
    loaded = _modules_after_init("mint", {})
    assert {"kustomer_token.minting", "kustomer_token.secret_cache", "jwt"} <= loaded
    assert loaded & REFRESHER_ONLY == set()
    # Routed on API Gateway's routeKey: Powertools' event_handler costs ~30 ms of every cold start.
    assert not any(name.startswith("aws_lambda_powertools.event_handler") for name in loaded)
