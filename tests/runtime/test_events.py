"""Every file in events/, invoked in the built function it belongs to, in the real Lambda runtime."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.runtime.conftest import LocalStack
from tests.runtime.event_cases import EVENT_CASES, MINT, REFRESH
from tests.support.leaks import LEAK_WATCH
from tools.harness.fake_kustomer import FakeKustomer, secret_reply
from tools.harness.lambda_runtime import LambdaRuntime

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(path.name for path in EVENTS.glob("*.json")) == sorted(EVENT_CASES)


MINT_CASES = sorted(name for name, case in EVENT_CASES.items() if case.function == MINT)


@pytest.mark.parametrize("name", MINT_CASES)
def test_mint_events_in_the_built_function(
    name: str,
    local_stack: LocalStack,
    new_signing_secret: Callable[[int], str],
    start_function: Callable[..., LambdaRuntime],
) -> None:
    case = EVENT_CASES[name]
    # Given the signing secret is stored
    secret = new_signing_secret(64)
    local_stack.client.put_secret_value(SecretId=local_stack.signing_secret_arn, SecretString=secret)
    mint = start_function(MINT, case.parameters)
    # When the event reaches the built function in the runtime
    invocation = mint.invoke(_event(name))
    # Then it answers as the table says
    assert invocation.error is None, invocation.error
    answer = invocation.payload
    assert answer["statusCode"] == case.status
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["Cache-Control"] == "no-store"
    body = json.loads(answer["body"])
    if case.error:
        assert body["error"] == case.error
        return
    LEAK_WATCH.register(body["jwtToken"], "minted token")
    claims = jwt.decode(body["jwtToken"], secret, algorithms=["HS256"])
    assert tuple(key for key in claims if key != "iat") == case.identifiers
    assert tuple(key for key in body if key in ("externalId", "email")) == case.identifiers


def test_the_scheduled_event_stores_kustomers_secret(
    local_stack: LocalStack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    start_function: Callable[..., LambdaRuntime],
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    refresh = start_function(REFRESH)
    first = refresh.invoke(_event("refresh-scheduled.json"))
    assert first.error is None, first.error
    assert first.payload["changed"] is EVENT_CASES["refresh-scheduled.json"].changed
    assert local_stack.current_signing_secret() == secret
    again = refresh.invoke(_event("refresh-scheduled.json"))
    assert again.payload == {"changed": False, "versionId": first.payload["versionId"]}


def test_the_rotation_events_rotate_in_the_built_function(
    local_stack: LocalStack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    start_function: Callable[..., LambdaRuntime],
) -> None:
    # Given A is current, Kustomer holds B, and Secrets Manager started a rotation with the files' token
    a, b = new_signing_secret(64), new_signing_secret(64)
    local_stack.client.put_secret_value(SecretId=local_stack.signing_secret_arn, SecretString=a)
    kustomer.answer(secret_reply(b))
    steps = sorted(
        (name for name, case in EVENT_CASES.items() if case.rotation_step),
        key=lambda name: EVENT_CASES[name].rotation_step or 0,
    )
    token = _event(steps[0])["ClientRequestToken"]
    with pytest.raises(local_stack.client.exceptions.ResourceNotFoundException):
        local_stack.client.rotate_secret(
            SecretId=local_stack.signing_secret_arn,
            ClientRequestToken=token,
            RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:RefreshSecretFunction",
        )
    refresh = start_function(REFRESH)
    # When each step's file is invoked, in order, with the local secret's ARN
    for name in steps:
        event = {**_event(name), "SecretId": local_stack.signing_secret_arn}
        invocation = refresh.invoke(event)
        assert invocation.error is None, (name, invocation.error)
        assert invocation.payload["step"] == event["Step"]
    # Then B is current
    assert local_stack.current_signing_secret() == b
