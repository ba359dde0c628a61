"""The signing-secret cache against a local Secrets Manager: TTL, outages, cold starts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import jwt
import pytest

from tests.support.clocks import ManualClock
from tests.support.events import http_api_event
from tests.support.functions import MintContainer
from tests.support.metrics import metric_total
from tools.harness.services import MotoServer, free_port
from tools.harness.sm_proxy import SecretsManagerProxy

VISITOR = {"sub": "user-1"}


def _signed_with(answer: Any, secret: str) -> bool:
    try:
        jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        return False
    return True


def _mint_once(mint: MintContainer) -> Any:
    return mint.invoke(http_api_event("POST", "/token", claims=VISITOR))


@pytest.fixture
def own_moto(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> Iterator[MotoServer]:
    """A Secrets Manager of this test's own, so the test can take it down."""
    with MotoServer() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.url)
        yield server


def test_a_new_value_is_used_after_the_ttl(
    secretsmanager: Any,
    stored_secret: tuple[str, str],
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
) -> None:
    # Given a warm container with a 1-second TTL
    arn, first = stored_secret
    mint = start_mint(SIGNING_SECRET_ID=arn, SECRET_CACHE_TTL_SECONDS="1")
    clock = ManualClock()
    mint.use_clock(clock)
    assert _signed_with(_mint_once(mint), first)
    # When the secret changes
    second = new_signing_secret(48)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=second)
    # Then the cached value is used within the TTL (on the container's clock, moved by hand), and the new one after it
    assert _signed_with(_mint_once(mint), first)
    clock.advance(0.5)
    assert _signed_with(_mint_once(mint), first)
    clock.advance(0.6)
    assert _signed_with(_mint_once(mint), second)


def test_within_the_ttl_secrets_manager_is_read_once_at_start(
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
    sm_proxy: SecretsManagerProxy,
) -> None:
    # Given a container started with the secret stored: it reads it during INIT
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0])
    start_output = read_output()
    assert metric_total(start_output, "SecretCacheMiss") == 1  # the INIT read, written at once
    # When it mints 20 tokens within the TTL
    for _ in range(20):
        assert _mint_once(mint).status == 200
    # Then Secrets Manager was read once, at start, and every request used the cached value: 20 tokens, no read
    output = read_output()
    assert sm_proxy.count("GetSecretValue") == 1
    assert metric_total(output, "TokensMinted") == 20
    assert metric_total(output, "SecretCacheMiss") == 0
    assert metric_total(output, "SecretStaleUse") == 0
    assert [line for line in output if line.get("level") in ("WARNING", "ERROR")] == []


def test_an_outage_is_survived_from_the_cache(
    own_moto: MotoServer,
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a warm container that read the secret
    secret = new_signing_secret(48)
    client = boto3.client("secretsmanager", endpoint_url=own_moto.url)
    arn = client.create_secret(Name="signing-secret", SecretString=secret)["ARN"]
    mint = start_mint(SIGNING_SECRET_ID=arn, SECRET_CACHE_TTL_SECONDS="1", SECRET_MAX_STALE_SECONDS="600")
    clock = ManualClock()
    mint.use_clock(clock)
    assert _signed_with(_mint_once(mint), secret)
    # When Secrets Manager goes away and the TTL passes
    own_moto.stop()
    clock.advance(1.2)
    read_output()
    answers = [_mint_once(mint) for _ in range(3)]
    # Then the container keeps minting with the cached secret, and counts each stale use
    assert [a.status for a in answers] == [200, 200, 200]
    assert all(_signed_with(a, secret) for a in answers)
    output = read_output()
    assert metric_total(output, "SecretStaleUse") == 3
    # And it tried Secrets Manager once, then backed off instead of trying on every request
    assert metric_total(output, "SecretReadFailed") == 1
    warnings = [line for line in output if line.get("message", "").startswith("signing secret read failed")]
    assert len(warnings) == 1


def test_a_cold_start_during_an_outage_answers_503(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, start_mint: Callable[..., MintContainer]
) -> None:
    # Given Secrets Manager cannot be reached at all
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{free_port()}")
    mint = start_mint(SIGNING_SECRET_ID="arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf")
    # When a new container gets its first request
    answer = _mint_once(mint)
    # Then it answers 503 with Retry-After, not 500
    assert answer.status == 503
    assert answer.body["error"] == "signing_secret_unavailable"
    assert int(answer.headers["retry-after"]) >= 1


# --- the read during INIT ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["unavailable", "timeout"])
def test_a_failed_read_at_start_never_fails_the_start_and_the_first_request_reads_again(
    fault: str,
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
    sm_proxy: SecretsManagerProxy,
) -> None:
    # Given Secrets Manager failing while a container starts
    arn, secret = stored_secret
    sm_proxy.fail_with(fault)
    mint = start_mint(SIGNING_SECRET_ID=arn)
    # Then the start succeeded, saying and counting that the read failed
    start_output = read_output()
    warnings = [line for line in start_output if line.get("message", "").startswith("signing secret not read at start")]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "WARNING"
    # after one try and one retry (the SDK's standard mode, 2 attempts in all)
    assert sm_proxy.count("GetSecretValue") == 2
    # When Secrets Manager recovers before the first request (no back-off was started at INIT)
    sm_proxy.heal()
    sm_proxy.reset()
    answer = _mint_once(mint)
    # Then the first request reads the secret again and mints with it
    assert answer.status == 200
    assert _signed_with(answer, secret)
    assert sm_proxy.count("GetSecretValue") == 1
    output = read_output()
    assert metric_total(start_output, "SecretReadFailed") == 1  # the INIT read's failure, written at once
    assert metric_total(output, "SecretReadFailed") == 0
    assert metric_total(output, "SecretCacheMiss") == 1


def test_an_unusable_value_at_start_is_read_again_by_the_first_request(
    secretsmanager: Any,
    stored_secret: tuple[str, str],
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a stored value padded with whitespace when the container starts
    arn, _ = stored_secret
    secretsmanager.put_secret_value(SecretId=arn, SecretString=" padded ")
    mint = start_mint(SIGNING_SECRET_ID=arn)
    output = read_output()
    warnings = [line for line in output if line.get("message", "").startswith("signing secret not read at start")]
    assert len(warnings) == 1
    assert "whitespace" in warnings[0]["reason"]
    # When the operator stores a good value before the first request
    good = new_signing_secret(48)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=good)
    # Then the first request reads it and mints with it
    answer = _mint_once(mint)
    assert answer.status == 200
    assert _signed_with(answer, good)


def test_a_never_stored_secret_at_start_is_a_503_on_the_first_request(
    secretsmanager: Any,
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given the signing secret as CloudFormation creates it: no value yet
    arn = secretsmanager.create_secret(Name="signing-secret-first-deploy")["ARN"]
    mint = start_mint(SIGNING_SECRET_ID=arn)
    reasons = [line.get("reason") for line in read_output() if "not read at start" in line.get("message", "")]
    assert reasons == ["ResourceNotFoundException"]
    # When the first request comes
    answer = _mint_once(mint)
    # Then it gets the contract's 503 with Retry-After
    assert answer.status == 503
    assert answer.body["error"] == "signing_secret_unavailable"
    assert int(answer.headers["retry-after"]) >= 1


def test_a_refused_value_fixed_by_the_operator_is_used_by_the_first_request_after_retry_after(
    secretsmanager: Any,
    stored_secret: tuple[str, str],
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
    sm_proxy: SecretsManagerProxy,
) -> None:
    # Given a hand-pasted value with a trailing newline, in a container with the default 300-second TTL
    arn, _ = stored_secret
    secretsmanager.put_secret_value(SecretId=arn, SecretString="abc\n")
    mint = start_mint(SIGNING_SECRET_ID=arn)
    clock = ManualClock()
    mint.use_clock(clock)
    refused = _mint_once(mint)
    assert (refused.status, refused.body["error"], refused.headers["retry-after"]) == (
        503,
        "signing_secret_unavailable",
        "5",
    )
    # When the operator stores the right value, as the runbook says, and the visitor retries after Retry-After
    fixed = new_signing_secret(48)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=fixed)
    sm_proxy.reset()
    clock.advance(int(refused.headers["retry-after"]))
    answer = _mint_once(mint)
    # Then that first retry reads the secret again and mints with the fixed value
    assert answer.status == 200
    assert _signed_with(answer, fixed)
    assert sm_proxy.count("GetSecretValue") == 1
