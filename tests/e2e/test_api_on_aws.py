"""The routes as a browser and a back end see them on AWS: what API Gateway answers before the mint runs, and the mint's
answers to a signed back end."""

from __future__ import annotations

import json

from tests.e2e.conftest import Deployed, error_code
from tools.verify.checks import token_problems
from tools.verify.http import send


def test_a_preflight_from_the_site_is_allowed(deployed: Deployed) -> None:
    headers = {
        "Origin": deployed.origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    answer = send("OPTIONS", f"{deployed.api_url}/token", headers)
    assert answer.status in (200, 204)
    assert answer.headers.get("access-control-allow-origin") == deployed.origin
    assert {"authorization", "content-type"} <= answer.header_items("access-control-allow-headers")


def test_a_token_of_no_identity_provider_is_refused_by_the_authorizer(deployed: Deployed) -> None:
    answer = send(
        "POST", f"{deployed.api_url}/token", {"Authorization": "Bearer not-a-jwt", "Origin": deployed.origin}, b"{}"
    )
    assert answer.status == 401
    assert answer.json() == {"message": "Unauthorized"}  # API Gateway's, not the mint's {"error": ...}


def test_another_route_is_not_found_by_api_gateway(deployed: Deployed) -> None:
    answer = send("GET", f"{deployed.api_url}/token", {})
    assert answer.status == 404
    assert answer.json() == {"message": "Not Found"}


def test_an_unsigned_server_token_request_is_refused_before_the_mint(deployed: Deployed) -> None:
    answer = send("POST", f"{deployed.api_url}/server/token", {"Content-Type": "application/json"}, b"{}")
    # API Gateway's refusal, not the mint's caller_not_allowed
    assert (answer.status, answer.json()) == (403, {"message": "Forbidden"})


def test_a_signed_back_end_gets_a_token_or_caller_not_allowed(deployed: Deployed) -> None:
    answer = deployed.server_token(json.dumps({"externalId": "kustomer-chat-token-e2e"}).encode())
    if answer.status == 200:
        assert token_problems(answer, deployed.facts.now(), "externalId") == []
        assert answer.json()["externalId"] == "kustomer-chat-token-e2e"
    else:
        assert (answer.status, error_code(answer)) == (403, "caller_not_allowed")


def test_a_listed_back_end_with_a_misspelt_field_gets_invalid_request(deployed: Deployed) -> None:
    answer = deployed.server_token(b'{"externalID": "kustomer-chat-token-e2e"}')
    expected = (400, "invalid_request") if deployed.listed() else (403, "caller_not_allowed")
    assert (answer.status, error_code(answer)) == expected
