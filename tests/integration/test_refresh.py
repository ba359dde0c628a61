"""The secret refresher against a local Secrets Manager and a fake Kustomer on loopback."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kustomer_token.kustomer import KustomerError, KustomerSettingsClient
from kustomer_token.refresh import SECRETS_MANAGER_RESERVE_SECONDS, RefreshError, SecretRefresher, version_token
from kustomer_token.secrets_store import SecretStore
from kustomer_token.settings import RefreshSettings
from tests.support.fake_kustomer import (
    HTML_PAGE,
    POD_MISMATCH_TITLE,
    FakeKustomer,
    Reply,
    error_reply,
    json_reply,
    secret_reply,
)

BUDGET_SECONDS = 5.0
_names = itertools.count(1)


@dataclass
class Stack:
    client: Any
    signing_arn: str
    api_key_arn: str

    def current(self) -> str | None:
        try:
            answer = self.client.get_secret_value(SecretId=self.signing_arn, VersionStage="AWSCURRENT")
        except self.client.exceptions.ResourceNotFoundException:
            return None
        return answer.get("SecretString")

    def version_ids(self) -> list[str]:
        answer = self.client.list_secret_version_ids(SecretId=self.signing_arn, IncludeDeprecated=True)
        return sorted(version["VersionId"] for version in answer["Versions"])

    def stages(self) -> dict[str, list[str]]:
        return self.client.describe_secret(SecretId=self.signing_arn).get("VersionIdsToStages") or {}


@pytest.fixture
def stack(secretsmanager: Any, api_key: str) -> Stack:
    """The two secrets as the stack creates them: the signing secret empty, the API key stored."""
    n = next(_names)
    signing = secretsmanager.create_secret(Name=f"SigningSecret-{n}")["ARN"]
    api = secretsmanager.create_secret(Name=f"ApiKeySecret-{n}", SecretString=api_key)["ARN"]
    return Stack(secretsmanager, signing, api)


def _refresher(stack: Stack, kustomer: FakeKustomer) -> SecretRefresher:
    settings = RefreshSettings(stack.signing_arn, stack.api_key_arn, kustomer.url)
    client = KustomerSettingsClient(kustomer.url, connect_timeout=1, read_timeout=1, backoff_factor=0.05)
    return SecretRefresher(settings, SecretStore(stack.client), client)


def _run(refresher: SecretRefresher, event: object | None = None) -> dict[str, Any]:
    return refresher.handle({} if event is None else event, SECRETS_MANAGER_RESERVE_SECONDS + BUDGET_SECONDS)


# --- scheduled runs ------------------------------------------------------------------------------


def test_the_first_run_stores_kustomers_secret(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], api_key: str
) -> None:
    # Given Kustomer holds a secret and the signing secret is still empty
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    # When the scheduled run goes
    result = _run(_refresher(stack, kustomer))
    # Then the secret lands as AWSCURRENT, in one version, with one call to Kustomer
    assert result["changed"] is True
    assert stack.current() == secret
    assert stack.version_ids() == [result["versionId"]]
    calls = kustomer.settings_calls()
    assert len(calls) == 1
    assert calls[0].headers["Authorization"] == f"Bearer {api_key}"
    assert calls[0].headers["User-Agent"].startswith("kustomer-chat-token/")


def test_an_unchanged_secret_writes_nothing(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    first = _run(_refresher(stack, kustomer))
    second = _run(_refresher(stack, kustomer))
    assert second == {"changed": False, "versionId": first["versionId"]}
    assert stack.version_ids() == [first["versionId"]]


def test_the_secret_at_the_top_level_is_accepted(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret, json_api=False))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert stack.current() == secret


def test_a_then_b_then_a_ends_with_a_current_and_one_version_per_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    results = []
    for value in (a, b, a):
        kustomer.answer(secret_reply(value))
        results.append(_run(refresher))
    assert [r["changed"] for r in results] == [True, True, True]
    assert stack.current() == a
    assert results[2]["versionId"] == results[0]["versionId"]
    assert len(stack.version_ids()) == 2
    assert stack.stages()[results[1]["versionId"]] == ["AWSPREVIOUS"]


def test_a_retried_run_makes_no_second_version(
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a run that wrote the secret, then was retried by Lambda
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    refresher = _refresher(stack, kustomer)
    first = _run(refresher)
    # When the retry read AWSCURRENT before the first write landed (it sees no value)
    store = refresher._store
    real_read = store.read
    monkeypatch.setattr(
        store, "read", lambda secret_id, **kw: None if secret_id == stack.signing_arn else real_read(secret_id, **kw)
    )
    retried = _run(refresher)
    # Then it writes under the same version id, and Secrets Manager keeps one version
    assert retried["versionId"] == first["versionId"]
    assert stack.version_ids() == [first["versionId"]]
    assert stack.current() == secret


def test_the_version_id_comes_from_the_value_and_the_key(new_signing_secret: Callable[[int], str]) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    assert version_token("key-1", a) == version_token("key-1", a)
    assert version_token("key-1", a) != version_token("key-1", b)
    assert version_token("key-1", a) != version_token("key-2", a)
    assert 32 <= len(version_token("key-1", a)) <= 64


def test_transient_errors_are_retried_then_succeed(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(
        Reply(503, HTML_PAGE, {"Content-Type": "text/html"}), error_reply(500, "oops"), secret_reply(secret)
    )
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert len(kustomer.settings_calls()) == 3
    assert stack.current() == secret


def test_429_honours_x_ratelimit_reset(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(error_reply(429, "Too Many Requests", {"x-ratelimit-reset": "1"}), secret_reply(secret))
    started = time.monotonic()
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert time.monotonic() - started >= 1.0
    assert len(kustomer.settings_calls()) == 2


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(stack: Stack, kustomer: FakeKustomer) -> None:
    kustomer.answer(error_reply(429, "Too Many Requests", {"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(KustomerError) as raised:
        _run(_refresher(stack, kustomer))
    assert raised.value.reason == "RateLimited"
    assert time.monotonic() - started < BUDGET_SECONDS
    assert len(kustomer.settings_calls()) == 1


# --- faults: each raises, writes nothing, and stays inside the deadline --------------------------


FAULTS = {
    "500": (error_reply(500, "Internal Server Error"), "ServerError", "500"),
    "503-html": (Reply(503, HTML_PAGE, {"Content-Type": "text/html"}), "ServerError", "503"),
    "429": (
        error_reply(429, "Too Many Requests", {"Retry-After": "1", "x-ratelimit-remaining": "0"}),
        "RateLimited",
        "429",
    ),
    "401": (error_reply(401, "Unauthorized"), "Unauthorized", "org.admin and org.user"),
    "403": (error_reply(403, "Forbidden"), "Forbidden", "org.admin and org.user"),
    "wrong-pod": (error_reply(401, POD_MISMATCH_TITLE), "WrongPod", "KUSTOMER_API_BASE_URL"),
    "200-html": (Reply(200, HTML_PAGE, {"Content-Type": "text/html"}), "BadAnswer", "not JSON"),
    "truncated-json": (Reply(200, b'{"data": {"attributes": {"secr', {}), "BadAnswer", "not JSON"),
    "wrong-shape": (json_reply(200, {"data": [{"secret": "x" * 40}]}), "BadAnswer", "no attributes.secret"),
    "empty-secret": (secret_reply(""), "BadAnswer", "is empty"),
    "non-string-secret": (secret_reply(12345), "BadAnswer", "not a string"),
    "padded-secret": (secret_reply(" abc "), "BadAnswer", "whitespace"),
    "200kb-secret": (secret_reply("k" * 200_000), "BadAnswer", "64 KiB"),
    "5kb-secret": (secret_reply("k" * 5000), "BadAnswer", "4096 bytes"),
    "hang": (Reply(hang=True), "Timeout", "in time"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_kustomer_fault_raises_and_leaves_the_secret_as_it_was(
    fault: str, stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], api_key: str
) -> None:
    # Given a good secret already stored
    good = new_signing_secret(64)
    kustomer.answer(secret_reply(good))
    refresher = _refresher(stack, kustomer)
    _run(refresher)
    versions_before = stack.version_ids()
    # When Kustomer misbehaves
    reply, reason, hint = FAULTS[fault]
    kustomer.answer(reply)
    started = time.monotonic()
    with pytest.raises(KustomerError) as raised:
        _run(refresher)
    elapsed = time.monotonic() - started
    # Then the run raises a clear error, within the deadline
    assert raised.value.reason == reason
    assert hint in str(raised.value)
    assert api_key not in str(raised.value)
    assert elapsed <= BUDGET_SECONDS + 1.0
    # And the signing secret and its versions are exactly as they were
    assert stack.current() == good
    assert stack.version_ids() == versions_before


@pytest.mark.parametrize("stored_key", [None, "   "], ids=["no-value", "blank"])
def test_a_missing_api_key_raises_before_calling_kustomer(
    stored_key: str | None, secretsmanager: Any, kustomer: FakeKustomer
) -> None:
    signing = secretsmanager.create_secret(Name="SigningSecret-nokey")["ARN"]
    request: dict[str, Any] = {"Name": "ApiKeySecret-nokey"}
    if stored_key is not None:
        request["SecretString"] = stored_key
    api = secretsmanager.create_secret(**request)["ARN"]
    stack = Stack(secretsmanager, signing, api)
    with pytest.raises(RefreshError) as raised:
        _run(_refresher(stack, kustomer))
    assert raised.value.reason == "ApiKeyMissing"
    assert "StoreApiKeyCommand" in str(raised.value)
    assert kustomer.settings_calls() == []
    assert stack.version_ids() == []


# --- rotation -------------------------------------------------------------------------------------


def _start_rotation(stack: Stack, token: str) -> None:
    """What Secrets Manager does before it calls the function: an AWSPENDING version with no value."""
    with pytest.raises(stack.client.exceptions.ResourceNotFoundException):
        stack.client.rotate_secret(
            SecretId=stack.signing_arn,
            ClientRequestToken=token,
            RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:RefreshSecretFunction",
        )
    assert stack.stages()[token] == ["AWSPENDING"]


def _rotation_event(stack: Stack, token: str, step: str) -> dict[str, str]:
    return {"SecretId": stack.signing_arn, "ClientRequestToken": token, "Step": step}


def _rotate(refresher: SecretRefresher, stack: Stack, token: str) -> None:
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        _run(refresher, _rotation_event(stack, token, step))


def test_a_rotation_moves_current_to_kustomers_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given A is current and Kustomer now holds B
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(a))
    _run(refresher)
    kustomer.answer(secret_reply(b))
    # When Secrets Manager runs the four steps
    token = "rotation-token-000000000000000000001"
    _start_rotation(stack, token)
    _rotate(refresher, stack, token)
    # Then B is current under the rotation's version, and A is previous
    assert stack.current() == b
    assert "AWSCURRENT" in stack.stages()[token]


def test_repeated_steps_are_harmless(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(new_signing_secret(64)))
    _run(refresher)
    kustomer.answer(secret_reply(a))
    token = "rotation-token-000000000000000000003"
    _start_rotation(stack, token)
    _run(refresher, _rotation_event(stack, token, "createSecret"))
    # Kustomer changes between two tries of createSecret: the first pending value stands
    kustomer.answer(secret_reply(b))
    _run(refresher, _rotation_event(stack, token, "createSecret"))
    assert len(kustomer.settings_calls()) == 2
    for step in ("setSecret", "testSecret", "finishSecret", "finishSecret"):
        _run(refresher, _rotation_event(stack, token, step))
    assert stack.current() == a
    # And a step for a version that is already current does nothing
    assert _run(refresher, _rotation_event(stack, token, "createSecret"))["changed"] is False


def test_a_stray_pending_version_does_not_block_rotation(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(a))
    _run(refresher)
    # Given an AWSPENDING label left on another version by an earlier, failed rotation
    stray = "stray-pending-0000000000000000000000"
    stack.client.put_secret_value(
        SecretId=stack.signing_arn,
        SecretString=new_signing_secret(64),
        ClientRequestToken=stray,
        VersionStages=["AWSPENDING"],
    )
    kustomer.answer(secret_reply(b))
    token = "rotation-token-000000000000000000004"
    _start_rotation(stack, token)
    _rotate(refresher, stack, token)
    assert stack.current() == b
    assert "AWSPENDING" not in stack.stages().get(stray, [])


def test_rotations_a_b_a_end_with_a_current(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(a))
    _run(refresher)
    for number, value in enumerate((b, a), start=10):
        kustomer.answer(secret_reply(value))
        token = f"rotation-token-0000000000000000000{number}"
        _start_rotation(stack, token)
        _rotate(refresher, stack, token)
    assert stack.current() == a


def test_a_kustomer_fault_during_create_writes_no_pending_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    good = new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(good))
    _run(refresher)
    kustomer.answer(secret_reply(""))
    token = "rotation-token-000000000000000000005"
    _start_rotation(stack, token)
    with pytest.raises(KustomerError):
        _run(refresher, _rotation_event(stack, token, "createSecret"))
    with pytest.raises(stack.client.exceptions.ResourceNotFoundException):
        stack.client.get_secret_value(SecretId=stack.signing_arn, VersionId=token, VersionStage="AWSPENDING")
    with pytest.raises(RefreshError, match="pending signing secret is missing"):
        _run(refresher, _rotation_event(stack, token, "testSecret"))
    assert stack.current() == good


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"SecretId": "x", "ClientRequestToken": "t", "Step": "dance"}, "BadEvent"),
        ({"SecretId": "x", "Step": "createSecret"}, "BadEvent"),
        ({"ClientRequestToken": 5, "SecretId": "x", "Step": "createSecret"}, "BadEvent"),
        ([], "BadEvent"),
        ("createSecret", "BadEvent"),
    ],
    ids=["unknown-step", "no-token", "token-not-string", "list", "string"],
)
def test_an_unknown_event_shape_raises_and_writes_nothing(
    event: object, reason: str, stack: Stack, kustomer: FakeKustomer
) -> None:
    with pytest.raises(RefreshError) as raised:
        _run(_refresher(stack, kustomer), event)
    assert raised.value.reason == reason
    assert stack.version_ids() == []
    assert kustomer.settings_calls() == []


def test_rotation_of_another_secret_is_refused(stack: Stack, kustomer: FakeKustomer) -> None:
    other = stack.client.create_secret(Name="SomethingElse", SecretString="value-of-another-secret")["ARN"]
    event = {"SecretId": other, "ClientRequestToken": "t" * 32, "Step": "createSecret"}
    with pytest.raises(RefreshError) as raised:
        _run(_refresher(stack, kustomer), event)
    assert raised.value.reason == "WrongSecret"
