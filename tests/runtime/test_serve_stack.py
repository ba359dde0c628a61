"""make serve's stack end to end: the local gateway in front of the built mint in the Lambda runtime."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support.leaks import LEAK_WATCH
from tools.local_api import Served, serve_stack
from tools.local_stack import LocalStack, local_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with local_stack() as running:
        LEAK_WATCH.register(running.kustomer_secret, "signing secret")
        LEAK_WATCH.register(running.kustomer.api_key, "API key")
        refreshed = running.start_function("RefreshSecretFunction").invoke({})
        assert refreshed.error is None, refreshed.error
        yield running


@pytest.fixture
def served(stack: LocalStack) -> Iterator[Served]:
    with serve_stack(stack, site_root=ROOT / "examples" / "web") as serving:
        yield serving


def _post(url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    answered: dict[str, Any] = json.loads(text)
    if isinstance(answered.get("jwtToken"), str):
        LEAK_WATCH.register(answered["jwtToken"], "minted token")
    return status, answered


def test_a_back_end_gets_a_token_as_the_local_dev_role_that_server_token_callers_allows(
    stack: LocalStack, served: Served
) -> None:
    # Given the mint started with ServerTokenCallers=the local-dev role, and the key of this run
    headers = {"Authorization": f"LocalDevIam {served.api.iam_key}", "Content-Type": "application/json"}
    # When a back end asks for a token for crm-42
    status, answer = _post(f"{served.api.url}/server/token", headers, b'{"externalId": "crm-42"}')
    # Then the mint accepts the local-dev assumed-role session and signs with Kustomer's secret
    assert status == 200, answer
    assert answer["externalId"] == "crm-42"
    claims = jwt.decode(answer["jwtToken"], stack.kustomer_secret, algorithms=["HS256"])
    assert claims["externalId"] == "crm-42"


def test_a_visitor_gets_a_token_with_the_dev_access_token(stack: LocalStack, served: Served) -> None:
    status, answer = _post(f"{served.api.url}/token", {"Authorization": f"Bearer {served.access_token}"})
    assert status == 200, answer
    assert answer["externalId"] == "dev-visitor-0001"
    assert (
        jwt.decode(answer["jwtToken"], stack.kustomer_secret, algorithms=["HS256"])["externalId"] == "dev-visitor-0001"
    )


def test_with_scopes_the_dev_access_token_carries_them(stack: LocalStack) -> None:
    # Given make serve's stack with AuthorizationScopes set
    with serve_stack(stack, site_root=ROOT / "examples" / "web", authorization_scopes="chat/login") as served:
        # When the page's dev access token is used
        status, answer = _post(f"{served.api.url}/token", {"Authorization": f"Bearer {served.access_token}"})
        # Then it passes the scope check, and a token without the scope does not
        assert status == 200, answer
        unscoped = served.issuer.access_token({"sub": "dev-visitor-0001"})
        assert _post(f"{served.api.url}/token", {"Authorization": f"Bearer {unscoped}"}) == (
            403,
            {"message": "Forbidden"},
        )
