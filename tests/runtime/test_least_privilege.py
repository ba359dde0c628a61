"""The built functions, each under its own role, use every Secrets Manager grant and need no other.

A scheduled refresh, a rotation and a minted token, in the real Lambda runtime: every call
they make goes through the role check, which logs it as (role, action, secret ARN). Nothing
may be denied, and the calls must cover every grant of template.yaml: a grant no flow uses
is an excess permission and fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.runtime.conftest import LocalStack
from tests.support.leaks import LEAK_WATCH
from tools.harness.fake_kustomer import FakeKustomer, secret_reply
from tools.harness.iam import secret_grants
from tools.harness.lambda_runtime import LambdaRuntime
from tools.harness.rotation import SecretsManagerRotation
from tools.harness.sm_proxy import SecretsManagerProxy
from tools.harness.template import load_template

MINT_EVENT = json.loads(
    (Path(__file__).resolve().parents[2] / "events" / "mint-token-external-id.json").read_text(encoding="utf-8")
)


def test_refresh_rotation_and_mint_use_exactly_the_granted_permissions(
    local_stack: LocalStack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    start_function: Callable[..., LambdaRuntime],
    sm_proxy: SecretsManagerProxy,
) -> None:
    # Given the stack with its API key stored and Kustomer holding A
    kustomer.answer(secret_reply(new_signing_secret(64)))
    refresher = start_function("RefreshSecretFunction")
    mint = start_function("MintTokenFunction")
    # When the schedule refreshes, Kustomer moves to B and the secret is rotated, then a token is minted
    scheduled = refresher.invoke({})
    kustomer.answer(secret_reply(new_signing_secret(64)))
    rotation = SecretsManagerRotation(local_stack.client, refresher.invoke).rotate(local_stack.signing_secret_arn)
    minted = mint.invoke(MINT_EVENT)
    # Then each succeeded
    assert scheduled.error is None, scheduled.error
    assert rotation.completed, rotation.error
    assert minted.error is None, minted.error
    assert minted.payload["statusCode"] == 200
    LEAK_WATCH.register(json.loads(minted.payload["body"])["jwtToken"], "minted token")
    # And no call was denied, and the calls made are exactly the grants: none missing, none in excess
    assert sm_proxy.role_calls(allowed=False) == []
    used = {(call.role, call.action, call.resource) for call in sm_proxy.role_calls()}
    arns = {"SigningSecret": local_stack.signing_secret_arn, "ApiKeySecret": local_stack.api_key_secret_arn}
    assert used == {(role, action, arns[secret]) for role, action, secret in secret_grants(load_template())}
