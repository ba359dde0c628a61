"""make serve's gateway: routes, authorizers and CORS from the translated template, and API Gateway's JWT rules.

The function behind the gateway is a recorder here: these tests are about what the gateway
lets through and what it hands on (tests/runtime/test_serve_stack.py runs the built mint).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.harness.lambda_runtime import Invocation
from tools.local_api import (
    DEV_AUDIENCE,
    LOCAL_DEV_CALLER_ARN,
    LOCAL_DEV_CALLER_ROLE_ARN,
    DevIssuer,
    HttpApiDefinition,
    LocalApi,
    Route,
    gateway_parameters,
)

SITE = "http://127.0.0.1:5173"
SCOPES = "https://api.example.com/chat.token,chat/login"
VISITOR = {"sub": "visitor-1", "email": "visitor@example.com", "email_verified": True}


class RecordingFunction:
    """Stands in for the mint: answers 200 and keeps every event the gateway sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: Any, timeout: float | None = None) -> Invocation:
        self.events.append(event)
        answer = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}
        return Invocation(payload=answer, error=None, seconds=0.0)


@pytest.fixture(scope="module")
def issuer() -> Iterator[DevIssuer]:
    running = DevIssuer()
    yield running
    running.stop()


def _gateway(issuer: DevIssuer, scopes: str = "") -> tuple[LocalApi, RecordingFunction]:
    function = RecordingFunction()
    api = LocalApi(function, HttpApiDefinition.from_template(gateway_parameters(issuer.url, SITE, scopes)))
    return api, function


@pytest.fixture
def gateway(issuer: DevIssuer) -> Iterator[tuple[LocalApi, RecordingFunction]]:
    api, function = _gateway(issuer)
    yield api, function
    api.stop()


@pytest.fixture
def scoped_gateway(issuer: DevIssuer) -> Iterator[tuple[LocalApi, RecordingFunction]]:
    api, function = _gateway(issuer, SCOPES)
    yield api, function
    api.stop()


def _post_token(api: LocalApi, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"origin": SITE} if authorization is None else {"origin": SITE, "authorization": authorization}
    return api.answer("POST", "/token", headers, b"")


def test_routes_authorizers_and_cors_are_those_of_the_translated_template(issuer: DevIssuer) -> None:
    # Given the template translated with the dev issuer, the page's origin and two scopes
    definition = HttpApiDefinition.from_template(gateway_parameters(issuer.url, SITE, SCOPES))
    # Then the gateway has the two routes, with their authorizers and the scopes on POST /token
    assert dict(definition.routes) == {
        ("POST", "/token"): Route("POST", "/token", "VisitorJwt", ("https://api.example.com/chat.token", "chat/login")),
        ("POST", "/server/token"): Route("POST", "/server/token", "AWS_IAM", ()),
    }
    authorizer = definition.jwt_authorizers["VisitorJwt"]
    assert (authorizer.issuer, authorizer.audiences, authorizer.identity_header) == (
        issuer.url,
        (DEV_AUDIENCE,),
        "authorization",
    )
    # And CORS as API Gateway gets it
    assert definition.cors is not None
    assert definition.cors.origins == (SITE,)
    assert definition.cors.methods == ("POST", "OPTIONS")
    assert definition.cors.headers == ("authorization", "content-type")
    assert definition.cors.expose == ("retry-after",)
    assert definition.cors.max_age == 600


def test_without_scopes_post_token_requires_none(issuer: DevIssuer) -> None:
    definition = HttpApiDefinition.from_template(gateway_parameters(issuer.url, SITE))
    assert definition.routes[("POST", "/token")].scopes == ()


def test_a_token_with_a_matching_aud_passes_its_claims_as_strings(
    issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = gateway
    status, _, _ = _post_token(api, f"Bearer {issuer.access_token(VISITOR)}")
    assert status == 200
    context = function.events[0]["requestContext"]["authorizer"]["jwt"]
    assert context["claims"]["sub"] == "visitor-1"
    assert context["claims"]["email_verified"] == "true"
    assert context["claims"]["aud"] == DEV_AUDIENCE
    assert context["scopes"] is None


def test_a_token_without_aud_is_checked_by_client_id(
    issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    # Given a Cognito-style access token: no aud, the app client id in client_id
    token = issuer.access_token({**VISITOR, "client_id": DEV_AUDIENCE, "token_use": "access"}, audience=None)
    api, function = gateway
    # When it is sent
    status, _, _ = _post_token(api, f"Bearer {token}")
    # Then the gateway accepts it and hands on its claims
    assert status == 200
    assert function.events[0]["requestContext"]["authorizer"]["jwt"]["claims"]["client_id"] == DEV_AUDIENCE


def test_a_token_without_aud_and_another_client_id_is_refused(
    issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = gateway
    token = issuer.access_token({**VISITOR, "client_id": "another-app"}, audience=None)
    status, headers, body = _post_token(api, f"Bearer {token}")
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert 'error="invalid_token"' in headers["www-authenticate"]
    assert "audience" in headers["www-authenticate"]
    assert function.events == []


def test_aud_wins_over_client_id_when_both_are_present(
    issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = gateway
    token = issuer.access_token({**VISITOR, "client_id": DEV_AUDIENCE}, audience="another-app")
    assert _post_token(api, f"Bearer {token}")[0] == 401
    assert function.events == []


def test_the_bearer_prefix_is_optional(issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]) -> None:
    api, function = gateway
    status, _, _ = _post_token(api, issuer.access_token(VISITOR))
    assert status == 200
    assert function.events[0]["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "visitor-1"


@pytest.mark.parametrize(
    "case",
    ["missing", "expired", "not yet valid", "issued in the future", "other issuer", "other key", "no exp", "garbage"],
)
def test_tokens_api_gateway_refuses_never_reach_the_function(
    case: str, issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = gateway
    tokens = {
        "missing": None,
        "expired": issuer.access_token(VISITOR, lifetime=-5),
        "not yet valid": issuer.access_token({**VISITOR, "nbf": 4_102_444_800}),
        "issued in the future": issuer.access_token({**VISITOR, "iat": 4_102_444_800}),
        "other issuer": issuer.access_token({**VISITOR, "iss": "https://issuer.example.com"}),
        "other key": issuer.access_token(VISITOR, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "no exp": issuer.access_token({**VISITOR, "exp": None}),
        "garbage": "not-a-jwt",
    }
    token = tokens[case]
    status, headers, body = _post_token(api, None if token is None else f"Bearer {token}")
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert function.events == []


def test_with_scopes_a_token_needs_one_of_them(
    issuer: DevIssuer, scoped_gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = scoped_gateway
    # Given access tokens with one required scope in scope (a string) or scp (a list)
    with_scope = issuer.access_token({**VISITOR, "scope": "openid chat/login"})
    with_scp = issuer.access_token({**VISITOR, "scp": ["https://api.example.com/chat.token"]})
    # When they are sent, Then both pass, with the token's scopes handed on
    assert _post_token(api, f"Bearer {with_scope}")[0] == 200
    assert _post_token(api, f"Bearer {with_scp}")[0] == 200
    assert function.events[0]["requestContext"]["authorizer"]["jwt"]["scopes"] == ["openid", "chat/login"]
    assert function.events[1]["requestContext"]["authorizer"]["jwt"]["scopes"] == ["https://api.example.com/chat.token"]


def test_with_scopes_an_id_token_is_refused(
    issuer: DevIssuer, scoped_gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = scoped_gateway
    # Given a Cognito-style ID token: the client id in aud, no scope at all
    id_token = issuer.access_token({**VISITOR, "token_use": "id"})
    other_scope = issuer.access_token({**VISITOR, "scope": "openid profile"})
    for token in (id_token, other_scope):
        status, headers, body = _post_token(api, f"Bearer {token}")
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
        assert 'error="insufficient_scope"' in headers["www-authenticate"]
    assert function.events == []


def test_server_token_hands_on_the_local_dev_assumed_role_session(gateway: tuple[LocalApi, RecordingFunction]) -> None:
    api, function = gateway
    # Given the key of this run standing in for SigV4
    headers = {"authorization": f"LocalDevIam {api.iam_key}", "content-type": "application/json"}
    # When a back end calls /server/token
    status, _, _ = api.answer("POST", "/server/token", headers, b'{"externalId": "crm-42"}')
    # Then the function sees an IAM caller whose role is the one ServerTokenCallers allows locally
    assert status == 200
    iam = function.events[0]["requestContext"]["authorizer"]["iam"]
    assert (
        iam["userArn"] == LOCAL_DEV_CALLER_ARN == "arn:aws:sts::123456789012:assumed-role/local-dev-backend/local-dev"
    )
    assert iam["accountId"] == "123456789012"
    assert LOCAL_DEV_CALLER_ROLE_ARN == "arn:aws:iam::123456789012:role/local-dev-backend"
    assert function.events[0]["body"] == '{"externalId": "crm-42"}'


def test_server_token_without_the_key_is_forbidden_and_a_jwt_does_not_help(
    issuer: DevIssuer, gateway: tuple[LocalApi, RecordingFunction]
) -> None:
    api, function = gateway
    for authorization in ("LocalDevIam wrong", f"Bearer {issuer.access_token(VISITOR)}"):
        status, _, body = api.answer("POST", "/server/token", {"authorization": authorization}, b"{}")
        assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert function.events == []


def test_preflight_answers_only_the_configured_origin(gateway: tuple[LocalApi, RecordingFunction]) -> None:
    api, _ = gateway
    asking = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    status, headers, _ = api.answer("OPTIONS", "/token", {"origin": SITE, **asking}, b"")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert headers["Access-Control-Allow-Methods"] == "POST,OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert headers["Access-Control-Max-Age"] == "600"
    _, foreign, _ = api.answer("OPTIONS", "/token", {"origin": "https://evil.example.com", **asking}, b"")
    assert "Access-Control-Allow-Origin" not in foreign


def test_routes_the_template_does_not_define_are_the_gateways_404(gateway: tuple[LocalApi, RecordingFunction]) -> None:
    api, function = gateway
    for method, path in (("GET", "/token"), ("POST", "/tokens"), ("POST", "/")):
        status, _, body = api.answer(method, path, {}, b"")
        assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert function.events == []
