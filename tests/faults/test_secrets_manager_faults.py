"""Secrets Manager failing in every way it can, through a fault-injecting proxy on loopback.

Each function runs under its own role: the same proxy checks every call against the role's
policy before it injects the fault.
The mint: a warm container keeps minting from its cache and counts each stale
use; a cold one answers 503 with Retry-After; nothing answers 500.
The refresher: raises, and the signing secret is exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from kustomer_token.refresh import SECRETS_MANAGER_RESERVE_SECONDS, RefreshError
from tests.conftest import MintContainer, metric_total
from tests.support.events import FakeLambdaContext, http_api_event
from tests.support.fake_kustomer import FakeKustomer, secret_reply
from tests.support.rotation import SecretsManagerRotation, in_process
from tests.support.sm_proxy import FAULTS, HANG, SecretsManagerProxy

ALL_FAULTS = [*sorted(FAULTS), HANG]
VISITOR = {"sub": "user-1"}


@pytest.fixture
def proxy(sm_proxy: SecretsManagerProxy) -> SecretsManagerProxy:
    """The proxy every function reaches Secrets Manager through; healed after each test."""
    return sm_proxy


def _mint(container: MintContainer) -> Any:
    return container.invoke(http_api_event("POST", "/token", claims=VISITOR))


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_a_warm_mint_keeps_minting_from_its_cache(
    fault: str,
    proxy: SecretsManagerProxy,
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a warm container whose TTL has run out (TTL 0)
    arn, secret = stored_secret
    mint = start_mint(SIGNING_SECRET_ID=arn, SECRET_CACHE_TTL_SECONDS="0", SECRET_MAX_STALE_SECONDS="600")
    assert _mint(mint).status == 200
    # When Secrets Manager fails
    proxy.fail_with(fault)
    read_output()
    answers = [_mint(mint) for _ in range(3)]
    # Then every answer is a token signed with the cached secret, and each stale use is counted
    assert [a.status for a in answers] == [200, 200, 200]
    for answer in answers:
        assert jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])["externalId"] == "user-1"
    output = read_output()
    assert metric_total(output, "SecretStaleUse") == 3
    assert metric_total(output, "SecretReadFailed") == 1
    # And the mint read as its own role, which allowed every read
    assert {call.role for call in proxy.role_calls()} == {"MintTokenFunctionRole"}
    assert proxy.role_calls(allowed=False) == []


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_a_cold_mint_answers_503_with_retry_after(
    fault: str, proxy: SecretsManagerProxy, stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    proxy.fail_with(fault)
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0])
    answer = _mint(mint)
    assert answer.status == 503
    assert answer.body["error"] == "signing_secret_unavailable"
    assert int(answer.headers["retry-after"]) >= 1


@pytest.fixture
def refresher(
    secretsmanager: Any, kustomer: FakeKustomer, api_key: str, start_refresher: Callable[..., Any]
) -> tuple[Any, str]:
    signing = secretsmanager.create_secret(Name="FaultSigningSecret")["ARN"]
    api = secretsmanager.create_secret(Name="FaultApiKeySecret", SecretString=api_key)["ARN"]
    app = start_refresher(SIGNING_SECRET_ID=signing, API_KEY_SECRET_ID=api, KUSTOMER_API_BASE_URL=kustomer.url)
    return app, signing


class _ShortContext(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return int((SECRETS_MANAGER_RESERVE_SECONDS + 5) * 1000)


@pytest.mark.parametrize("fault", ALL_FAULTS)
@pytest.mark.parametrize("trigger", ["scheduled", "createSecret"])
def test_the_refresher_raises_and_leaves_the_secret_as_it_was(
    fault: str,
    trigger: str,
    proxy: SecretsManagerProxy,
    refresher: tuple[Any, str],
    secretsmanager: Any,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
) -> None:
    # Given a stored secret, and Kustomer now holding a new one
    app, signing = refresher
    good = new_signing_secret(64)
    kustomer.answer(secret_reply(good))
    app.lambda_handler({}, _ShortContext())
    kustomer.answer(secret_reply(new_signing_secret(64)))
    event: dict[str, Any] = {}
    if trigger == "createSecret":
        rotation = SecretsManagerRotation(secretsmanager, in_process(lambda e: app.lambda_handler(e, _ShortContext())))
        token = rotation.start(signing).token
        event = {"SecretId": signing, "ClientRequestToken": token, "Step": "createSecret"}
    versions_before = secretsmanager.list_secret_version_ids(SecretId=signing, IncludeDeprecated=True)["Versions"]
    # When Secrets Manager fails
    proxy.fail_with(fault)
    with pytest.raises((BotoCoreError, ClientError, RefreshError)) as raised:
        app.lambda_handler(event, _ShortContext())
    proxy.heal()
    # Then the run raised, for the fault and not for a permission, and nothing changed
    assert str(raised.value)
    assert proxy.role_calls(allowed=False) == []
    current = secretsmanager.get_secret_value(SecretId=signing, VersionStage="AWSCURRENT")["SecretString"]
    assert current == good
    versions_after = secretsmanager.list_secret_version_ids(SecretId=signing, IncludeDeprecated=True)["Versions"]
    assert sorted(v["VersionId"] for v in versions_after) == sorted(v["VersionId"] for v in versions_before)
