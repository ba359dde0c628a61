"""The stack's first deploy as it happens on AWS: both secrets empty, the immediate rotation, the operator's key.

The refresher runs built, in the real Lambda runtime, under RefreshSecretFunctionRole (every
call goes through the role check). Secrets Manager's side of the rotation is played by
tools.harness.rotation on moto corrected by tools.harness.secrets_manager_behaviour: the
AWSPENDING version without a value that RotateSecret makes first, and the refusal that
reattempts an incomplete rotation with its own token.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.runtime.conftest import LocalStack
from tools.harness.fake_kustomer import FakeKustomer, secret_reply
from tools.harness.lambda_runtime import LambdaRuntime
from tools.harness.rotation import STEPS, SecretsManagerRotation
from tools.harness.secrets_manager_behaviour import PREVIOUS_ROTATION_INCOMPLETE
from tools.harness.sm_proxy import SecretsManagerProxy


def _stages(stack: LocalStack) -> dict[str, list[str]]:
    stages: dict[str, list[str]] = (
        stack.client.describe_secret(SecretId=stack.signing_secret_arn).get("VersionIdsToStages") or {}
    )
    return stages


@pytest.mark.parametrize("stack_api_key", [None], ids=["both-secrets-empty"])
@pytest.mark.parametrize("scheduled_run_first", [False, True], ids=["rotation-retried", "scheduled-run-in-between"])
def test_the_first_rotation_waits_for_the_api_key_then_completes(
    stack_api_key: None,
    scheduled_run_first: bool,
    local_stack: LocalStack,
    kustomer: FakeKustomer,
    api_key: str,
    new_signing_secret: Callable[[int], str],
    start_function: Callable[..., LambdaRuntime],
    sm_proxy: SecretsManagerProxy,
) -> None:
    # Given the stack as CloudFormation leaves it: both secrets without a value; Kustomer holds its secret
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    refresher = start_function("RefreshSecretFunction")
    rotation = SecretsManagerRotation(local_stack.client, refresher.invoke)

    # When the stack's immediate rotation runs (RotateImmediatelyOnUpdate)
    first = rotation.rotate(local_stack.signing_secret_arn)
    # Then createSecret fails saying what to do, and only Secrets Manager's own AWSPENDING version exists
    assert [step for step, _ in first.steps] == ["createSecret"]
    assert first.error is not None
    assert first.error["errorType"] == "RefreshError", first.error
    assert "holds no value yet" in first.error["errorMessage"]
    assert "StoreApiKeyCommand" in first.error["errorMessage"]
    assert _stages(local_stack) == {first.token: ["AWSPENDING"]}
    assert local_stack.current_signing_secret() is None
    assert kustomer.settings_calls() == []

    # When the operator stores the API key (the StoreApiKeyCommand output)
    local_stack.client.put_secret_value(SecretId=local_stack.api_key_secret_arn, SecretString=api_key)
    scheduled_version = None
    if scheduled_run_first:
        # And the schedule fires before the rotation is retried
        scheduled = refresher.invoke({})
        assert scheduled.error is None, scheduled.error
        assert scheduled.payload["changed"] is True
        scheduled_version = scheduled.payload["versionId"]
    # And a rotation is asked for again
    retried = rotation.rotate(local_stack.signing_secret_arn)

    # Then Secrets Manager reattempts the incomplete rotation with its own token, and all four steps succeed
    assert retried.refusal == PREVIOUS_ROTATION_INCOMPLETE
    assert retried.token == first.token
    assert [step for step, _ in retried.steps] == list(STEPS)
    assert retried.error is None, retried.error
    # And AWSCURRENT holds Kustomer's secret, nothing is pending, and one labelled version holds it
    assert local_stack.current_signing_secret() == secret
    labelled = {version: labels for version, labels in _stages(local_stack).items() if labels}
    assert labelled == {scheduled_version or first.token: ["AWSCURRENT"]}
    # And the refresher needed nothing its role does not grant
    assert sm_proxy.role_calls(allowed=False) == []
    assert {call.role for call in sm_proxy.role_calls()} == {"RefreshSecretFunctionRole"}
