"""Least privilege, proved both ways: every Secrets Manager grant of a role is used, and each one is needed.

One flow exercises both functions the way the stack does: a scheduled refresh, a rotation
(Secrets Manager's side played by tools.harness.rotation), then a token minted. Every call
goes through the role check in front of the local Secrets Manager, signed as the function's
role from template.yaml. Run as it is, nothing is denied and the calls cover every grant;
run with one grant removed from a copy of the template, the flow fails on exactly that
grant with AccessDeniedException.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kustomer_token.kustomer import KustomerSettingsClient
from kustomer_token.refresh import SECRETS_MANAGER_RESERVE_SECONDS, SecretRefresher
from kustomer_token.secrets_store import SecretStore
from kustomer_token.settings import RefreshSettings
from tests.support.events import http_api_event
from tests.support.functions import MintContainer
from tools.harness.fake_kustomer import FakeKustomer, secret_reply
from tools.harness.iam import role_client, secret_grants, without_action
from tools.harness.rotation import SecretsManagerRotation, in_process
from tools.harness.sm_proxy import SecretsManagerProxy
from tools.harness.template import load_template

BUDGET = SECRETS_MANAGER_RESERVE_SECONDS + 5
GRANTS = secret_grants(load_template())


def _flow(
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> tuple[dict[str, str], list[str]]:
    """Runs refresh, rotation and mint; returns the secrets' ARNs and what failed, as the functions reported it."""
    signing = secretsmanager.create_secret(Name="LeastPrivilegeSigningSecret")["ARN"]
    api = secretsmanager.create_secret(Name="LeastPrivilegeApiKeySecret", SecretString=api_key)["ARN"]
    assert sm_proxy.role_check is not None
    sm_proxy.role_check.bind(SigningSecret=signing, ApiKeySecret=api)
    refresher = SecretRefresher(
        RefreshSettings(signing, api, kustomer.url),
        SecretStore(role_client("RefreshSecretFunctionRole", sm_proxy.url)),
        KustomerSettingsClient(kustomer.url, connect_timeout=1, read_timeout=1, backoff_factor=0.05),
    )
    failures = []
    kustomer.answer(secret_reply(new_signing_secret(64)))
    try:
        refresher.handle({}, BUDGET)
    except Exception as exc:
        failures.append(f"scheduled refresh: {exc}")
    kustomer.answer(secret_reply(new_signing_secret(64)))
    rotation = SecretsManagerRotation(secretsmanager, in_process(lambda event: refresher.handle(event, BUDGET)))
    run = rotation.rotate(signing)
    if run.error:
        failures.append(f"rotation: {run.error['errorMessage']}")
    read_output()
    answer = start_mint(SIGNING_SECRET_ID=signing).invoke(http_api_event("POST", "/token", claims={"sub": "user-1"}))
    if answer.status != 200:
        reasons = [line.get("reason") for line in read_output() if line.get("message") == "no usable signing secret"]
        failures.append(f"mint: {answer.status} {answer.body.get('error')}, reason {reasons}")
    return {"SigningSecret": signing, "ApiKeySecret": api}, failures


Flow = Callable[[], tuple[dict[str, str], list[str]]]


@pytest.fixture
def flow(
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> Flow:
    """Runs refresh, rotation and mint under the roles the role check holds at the time of the call."""
    return lambda: _flow(secretsmanager, sm_proxy, kustomer, api_key, new_signing_secret, start_mint, read_output)


def test_the_flow_needs_no_more_than_the_roles_grant_and_uses_all_of_it(
    sm_proxy: SecretsManagerProxy,
    flow: Flow,
) -> None:
    # When the flow runs under the roles as template.yaml writes them
    arns, failures = flow()
    # Then it succeeds, nothing was denied, and the calls made cover every grant: no grant is excess
    assert failures == []
    assert sm_proxy.role_calls(allowed=False) == []
    used = {(call.role, call.action, call.resource) for call in sm_proxy.role_calls()}
    assert used == {(role, action, arns[secret]) for role, action, secret in GRANTS}


@pytest.mark.parametrize(("role", "action", "secret"), GRANTS, ids=[f"{r}-{a.split(':')[1]}-{s}" for r, a, s in GRANTS])
def test_each_grant_is_needed(
    role: str,
    action: str,
    secret: str,
    sm_proxy: SecretsManagerProxy,
    flow: Flow,
) -> None:
    # Given a template whose role lacks this one grant
    assert sm_proxy.role_check is not None
    sm_proxy.role_check = sm_proxy.role_check.with_template(without_action(load_template(), role, action, secret))
    # When the flow runs
    arns, failures = flow()
    # Then the function fails with AccessDeniedException, and what was denied is exactly that grant
    assert failures
    assert any(
        "AccessDeniedException" in failure and (action in failure or failure.startswith("mint")) for failure in failures
    ), failures
    denied = {(call.role, call.action, call.resource) for call in sm_proxy.role_calls(allowed=False)}
    assert denied == {(role, action, arns[secret])}
