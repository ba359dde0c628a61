"""Races: two refreshers at once, a scheduled run inside a rotation, minting while the secret changes.

Every refresher signs as RefreshSecretFunctionRole through the role check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from kustomer_token.kustomer import KustomerSettingsClient
from kustomer_token.refresh import SECRETS_MANAGER_RESERVE_SECONDS, RefreshError, SecretRefresher
from kustomer_token.secrets_store import SecretStore
from kustomer_token.settings import RefreshSettings
from tests.support.events import http_api_event
from tests.support.functions import MintContainer
from tests.support.leaks import LEAK_WATCH
from tools.harness.fake_kustomer import FakeKustomer, secret_reply
from tools.harness.iam import role_client
from tools.harness.rotation import SecretsManagerRotation, in_process
from tools.harness.sm_proxy import SecretsManagerProxy

BUDGET = SECRETS_MANAGER_RESERVE_SECONDS + 10


@pytest.fixture
def secrets_pair(secretsmanager: Any, sm_proxy: SecretsManagerProxy, api_key: str) -> tuple[str, str]:
    signing = secretsmanager.create_secret(Name="RaceSigningSecret")["ARN"]
    api = secretsmanager.create_secret(Name="RaceApiKeySecret", SecretString=api_key)["ARN"]
    assert sm_proxy.role_check is not None
    sm_proxy.role_check.bind(SigningSecret=signing, ApiKeySecret=api)
    return signing, api


def _new_refresher(
    sm_proxy: SecretsManagerProxy, kustomer: FakeKustomer, secrets_pair: tuple[str, str]
) -> SecretRefresher:
    """A refresher as its own Lambda container would have it: its own clients and connections, its role."""
    signing, api = secrets_pair
    client = role_client("RefreshSecretFunctionRole", sm_proxy.url)
    return SecretRefresher(
        RefreshSettings(signing, api, kustomer.url), SecretStore(client), KustomerSettingsClient(kustomer.url)
    )


def _live_versions(client: Any, secret: str) -> dict[str, list[str]]:
    """Versions that still carry a staging label (unlabelled ones are deprecated and cleaned up by AWS)."""
    stages: dict[str, list[str]] = client.describe_secret(SecretId=secret).get("VersionIdsToStages") or {}
    return {version: labels for version, labels in stages.items() if labels}


def _value(client: Any, secret: str, version: str) -> str:
    value: str = client.get_secret_value(SecretId=secret, VersionId=version)["SecretString"]
    return value


@pytest.mark.parametrize("runs", [2, 4])
def test_refreshers_at_once_make_one_version_and_the_right_current(
    runs: int,
    sm_proxy: SecretsManagerProxy,
    secretsmanager: Any,
    kustomer: FakeKustomer,
    secrets_pair: tuple[str, str],
    new_signing_secret: Callable[[int], str],
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    refreshers = [_new_refresher(sm_proxy, kustomer, secrets_pair) for _ in range(runs)]
    start = threading.Barrier(runs)

    def run(refresher: SecretRefresher) -> dict[str, Any]:
        start.wait()
        return refresher.handle({}, BUDGET)

    with ThreadPoolExecutor(runs) as pool:
        results = list(pool.map(run, refreshers))
    signing = secrets_pair[0]
    assert len({r["versionId"] for r in results}) == 1
    assert secretsmanager.get_secret_value(SecretId=signing, VersionStage="AWSCURRENT")["SecretString"] == secret
    assert list(_live_versions(secretsmanager, signing).values()) == [["AWSCURRENT"]]
    assert sm_proxy.role_calls(allowed=False) == []


@dataclass
class _RotationUnderWay:
    """A rotation whose createSecret stored Kustomer's value as pending, and a scheduled refresher beside it."""

    rotation: SecretRefresher
    scheduled: SecretRefresher
    event: dict[str, str]

    def step(self, name: str) -> dict[str, Any]:
        return self.rotation.handle({**self.event, "Step": name}, BUDGET)


def _rotation_under_way(
    sm_proxy: SecretsManagerProxy,
    secretsmanager: Any,
    kustomer: FakeKustomer,
    secrets_pair: tuple[str, str],
    *,
    current: str,
    pending: str,
) -> _RotationUnderWay:
    """`current` stored by a scheduled run; then Kustomer holds `pending` and a rotation's createSecret stores it."""
    signing = secrets_pair[0]
    rotation = _new_refresher(sm_proxy, kustomer, secrets_pair)
    scheduled = _new_refresher(sm_proxy, kustomer, secrets_pair)
    kustomer.answer(secret_reply(current))
    scheduled.handle({}, BUDGET)
    kustomer.answer(secret_reply(pending))
    token = (
        SecretsManagerRotation(secretsmanager, in_process(lambda e: rotation.handle(e, BUDGET))).start(signing).token
    )
    under_way = _RotationUnderWay(rotation, scheduled, {"SecretId": signing, "ClientRequestToken": token})
    under_way.step("createSecret")
    return under_way


def test_a_scheduled_run_inside_a_rotation_leaves_one_version_per_value(
    sm_proxy: SecretsManagerProxy,
    secretsmanager: Any,
    kustomer: FakeKustomer,
    secrets_pair: tuple[str, str],
    new_signing_secret: Callable[[int], str],
) -> None:
    signing = secrets_pair[0]
    a, b = new_signing_secret(64), new_signing_secret(64)
    # Kustomer's secret changes from A to B; a rotation starts and stores B as pending
    rotation = _rotation_under_way(sm_proxy, secretsmanager, kustomer, secrets_pair, current=a, pending=b)
    # A scheduled run lands between the rotation's steps and stores B itself
    assert rotation.scheduled.handle({}, BUDGET)["changed"] is True
    for step in ("setSecret", "testSecret", "finishSecret"):
        rotation.step(step)
    # AWSCURRENT is B, no rotation is left in progress, and each value lives in one labelled version
    assert secretsmanager.get_secret_value(SecretId=signing, VersionStage="AWSCURRENT")["SecretString"] == b
    live = _live_versions(secretsmanager, signing)
    assert sorted(label for labels in live.values() for label in labels) == ["AWSCURRENT", "AWSPREVIOUS"]
    assert sorted(_value(secretsmanager, signing, version) for version in live) == sorted([a, b])
    assert sm_proxy.role_calls(allowed=False) == []


def test_a_rotation_never_makes_current_a_value_kustomer_replaced_during_it(
    sm_proxy: SecretsManagerProxy,
    secretsmanager: Any,
    kustomer: FakeKustomer,
    secrets_pair: tuple[str, str],
    new_signing_secret: Callable[[int], str],
) -> None:
    signing = secrets_pair[0]
    a, b, c = new_signing_secret(64), new_signing_secret(64), new_signing_secret(64)
    # Given a rotation that stored Kustomer's B as pending
    rotation = _rotation_under_way(sm_proxy, secretsmanager, kustomer, secrets_pair, current=a, pending=b)
    rotation.step("setSecret")
    # And Kustomer's secret changing to C, which a scheduled run stores, before the rotation tests B
    kustomer.answer(secret_reply(c))
    assert rotation.scheduled.handle({}, BUDGET)["changed"] is True
    # When the rotation goes on
    with pytest.raises(RefreshError) as refused:
        rotation.step("testSecret")
    # Then testSecret refuses B, which Kustomer no longer holds, so finishSecret never runs: C stays current
    assert refused.value.reason == "PendingOutdated"
    assert secretsmanager.get_secret_value(SecretId=signing, VersionStage="AWSCURRENT")["SecretString"] == c
    stages = secretsmanager.describe_secret(SecretId=signing)["VersionIdsToStages"]
    assert stages[rotation.event["ClientRequestToken"]] == ["AWSPENDING"]


def test_a_mint_reading_while_the_refresher_writes_signs_with_a_whole_value(
    sm_proxy: SecretsManagerProxy,
    secretsmanager: Any,
    kustomer: FakeKustomer,
    secrets_pair: tuple[str, str],
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
) -> None:
    signing = secrets_pair[0]
    values = [new_signing_secret(64) for _ in range(3)]
    kustomer.answer(secret_reply(values[0]))
    refresher = _new_refresher(sm_proxy, kustomer, secrets_pair)
    refresher.handle({}, BUDGET)
    mint = start_mint(SIGNING_SECRET_ID=signing, SECRET_CACHE_TTL_SECONDS="0")
    stop = threading.Event()

    def keep_changing() -> int:
        changes = 0
        while not stop.is_set():
            kustomer.answer(secret_reply(values[changes % len(values)]))
            refresher.handle({}, BUDGET)
            changes += 1
        return changes

    with ThreadPoolExecutor(1) as pool:
        writer = pool.submit(keep_changing)
        tokens = []
        for _ in range(60):
            answer = mint.invoke(http_api_event("POST", "/token", claims={"sub": "user-1"}))
            assert answer.status == 200
            tokens.append(answer.body["jwtToken"])
        stop.set()
        assert writer.result() > 3
    for token in tokens:
        LEAK_WATCH.register(token, "minted token")
        verified_with = [v for v in values if _verifies(token, v)]
        assert len(verified_with) == 1


def _verifies(token: str, secret: str) -> bool:
    try:
        jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        return False
    return True
