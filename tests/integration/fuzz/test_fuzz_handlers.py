"""Fuzzing the mint's handler with hypothesis: every answer is a contract answer, nothing escapes.

The refresher's fuzz, with generated Kustomer answers, is in test_fuzz_refresher.py.
`make test` runs the "fast" profile; `make fuzz` runs HYPOTHESIS_PROFILE=fuzz (10,000 examples each).
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.events import BACKEND_ROLE_ARN, FakeLambdaContext, http_api_event
from tests.support.functions import load_function
from tests.support.leaks import LEAK_WATCH
from tools.harness.services import MotoServer

CONTRACT_ERRORS = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "email_not_verified",
    404: "not_found",
    405: "method_not_allowed",
    503: "signing_secret_unavailable",
}
FUZZ_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
identifiers = st.one_of(
    st.text(max_size=600),
    st.sampled_from(["user-1", "ann@example.com", "a\u2028b", 'x","iat":1,"y":"', "\\", " ", ""]),
    json_values,
)
claims = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "sub": identifiers,
            "email": identifiers,
            "email_verified": st.sampled_from(["true", "false", True, False, "TRUE", 1, None]) | json_values,
        },
    ).flatmap(lambda base: st.dictionaries(st.text(max_size=12), json_values, max_size=3).map(lambda x: {**x, **base})),
    json_values,
)
methods = st.sampled_from(["POST", "GET", "PUT", "DELETE", "OPTIONS", "post", ""]) | st.text(max_size=8)
paths = st.sampled_from(["/token", "/server/token", "/", "/token/", "//token", "/nope", ""]) | st.text(max_size=30)
bodies = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.text(min_size=4000, max_size=6000),
    st.dictionaries(st.sampled_from(["externalId", "email", "iat", "sub"]), identifiers, max_size=3).map(json.dumps),
    st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode()),
)


@st.composite
def http_events(draw: st.DrawFn) -> Any:
    event = http_api_event(
        draw(methods),
        draw(paths),
        claims=draw(claims) if draw(st.booleans()) else None,
        iam=draw(st.booleans()),
        body=None,
    )
    body = draw(bodies)
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = draw(st.booleans() | json_values)
    mutation = draw(st.sampled_from(["none", "drop", "replace", "headers", "context"]))
    if mutation == "drop":
        event.pop(draw(st.sampled_from(sorted(event))), None)
    elif mutation == "replace":
        event[draw(st.sampled_from(sorted(event)))] = draw(json_values)
    elif mutation == "headers":
        event["headers"] = draw(json_values | st.dictionaries(st.text(max_size=8), st.integers(), max_size=3))
    elif mutation == "context":
        context = event["requestContext"]
        context[draw(st.sampled_from(sorted(context)))] = draw(json_values)
    return event


anything = st.one_of(http_events(), json_values)


@pytest.fixture(scope="module")
def fuzz_secret(moto_server: MotoServer) -> str:
    secret = LEAK_WATCH.register(secrets.token_hex(32), "signing secret")
    client = boto3.client("secretsmanager", endpoint_url=moto_server.url)
    arn = client.create_secret(Name=f"fuzz-signing-{secrets.token_hex(4)}", SecretString=secret)["ARN"]
    return arn


@pytest.fixture
def mint(fuzz_secret: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SIGNING_SECRET_ID", fuzz_secret)
    monkeypatch.setenv("TOKEN_IDENTITY", "both")
    monkeypatch.setenv("SERVER_TOKEN_CALLERS", BACKEND_ROLE_ARN)  # so fuzzed bodies reach the parser
    return load_function("mint", f"fuzz_mint_{secrets.token_hex(4)}")


@pytest.mark.timeout(1800)  # make fuzz: 10,000 examples
@FUZZ_SETTINGS
@given(event=anything)
def test_every_mint_answer_is_a_contract_answer(mint: Any, event: Any) -> None:
    answer = mint.lambda_handler(event, FakeLambdaContext())
    status = answer["statusCode"]
    assert status == 200 or status in CONTRACT_ERRORS, answer
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["Cache-Control"] == "no-store"
    body = json.loads(answer["body"])
    if status == 200:
        LEAK_WATCH.register(body["jwtToken"], "minted token")
        assert set(body) - {"externalId", "email"} == {"jwtToken", "issuedAt", "expiresAt"}
    else:
        assert set(body) == {"error", "message"}
        assert body["error"] == CONTRACT_ERRORS[status]
