"""Opt-in paths of the mint: the Parameters and Secrets Lambda Extension, and SnapStart."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from kustomer_token import token
from tests.support.events import http_api_event
from tests.support.functions import MintContainer
from tests.support.metrics import metric_total
from tools.harness.fake_secrets_extension import FakeSecretsExtension
from tools.harness.services import free_port
from tools.harness.sm_proxy import SecretsManagerProxy

VISITOR = {"sub": "user-1"}


@pytest.fixture
def extension(sm_proxy: SecretsManagerProxy) -> Iterator[FakeSecretsExtension]:
    # Through the role check, signing as the mint's role, as the real extension does.
    fake = FakeSecretsExtension(sm_proxy.url, os.environ["AWS_SESSION_TOKEN"]).start()
    yield fake
    fake.stop()


def test_the_extension_path_reads_the_secret_without_the_sdk(
    stored_secret: tuple[str, str], extension: FakeSecretsExtension, start_mint: Callable[..., MintContainer]
) -> None:
    arn, secret = stored_secret
    mint = start_mint(
        SIGNING_SECRET_ID=arn,
        SIGNING_SECRET_SOURCE="extension",
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension.port),
    )
    # Lambda starts INIT before extensions are ready: the extension is first read by a request
    assert extension.requests == 0
    answers = [mint.invoke(http_api_event("POST", "/token", claims=VISITOR)) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert jwt.decode(answers[0].body["jwtToken"], secret, algorithms=["HS256"])["externalId"] == "user-1"
    assert extension.requests == 1  # our TTL cache sits above the extension's own


def test_an_unreachable_extension_is_a_503_on_a_cold_container(
    stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    mint = start_mint(
        SIGNING_SECRET_ID=stored_secret[0],
        SIGNING_SECRET_SOURCE="extension",
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(free_port()),
    )
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    assert answer.status == 503
    assert answer.body["error"] == "signing_secret_unavailable"


def test_a_bad_source_setting_fails_the_start(start_mint: Callable[..., MintContainer]) -> None:
    from kustomer_token.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="SIGNING_SECRET_SOURCE"):
        start_mint(SIGNING_SECRET_ID="s", SIGNING_SECRET_SOURCE="ssm")


def test_snapstart_snapshots_the_client_and_restores_forget_the_secret(
    secretsmanager: Any,
    stored_secret: tuple[str, str],
    new_signing_secret: Callable[[int], str],
    start_mint: Callable[..., MintContainer],
    monkeypatch: pytest.MonkeyPatch,
    read_output: Callable[[], list[dict[str, Any]]],
    sm_proxy: SecretsManagerProxy,
) -> None:
    import snapshot_restore_py

    hooks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", hooks)
    arn, first = stored_secret
    token.forget_signing_key()  # the tests' containers share one interpreter: start as a new one would
    # Given a container initialised for a SnapStart snapshot
    mint = start_mint(SIGNING_SECRET_ID=arn, AWS_LAMBDA_INITIALIZATION_TYPE="snap-start")
    cache = mint.module.minter._secret_cache
    # Then the client is made at init but no secret is read into the snapshot
    assert cache._reader is not None
    assert cache._last_good is None
    assert token._hs256._accepted is None
    assert sm_proxy.count("GetSecretValue") == 0
    assert [function.__name__ for function, _, _ in hooks] == ["after_restore"]
    assert jwt.decode(mint.invoke(http_api_event("POST", "/token", claims=VISITOR)).body["jwtToken"], first, ["HS256"])
    # When the secret changes and a clone of the snapshot is restored
    second = new_signing_secret(48)
    secretsmanager.put_secret_value(SecretId=arn, SecretString=second)
    read_output()
    assert token._hs256._accepted is not None
    for function, args, kwargs in hooks:
        function(*args, **kwargs)
    assert token._hs256._accepted is None  # the restore drops the key kept for signing with the cached value
    # Then the restored container reads the secret again instead of signing with the snapshot's
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    assert jwt.decode(answer.body["jwtToken"], second, algorithms=["HS256"])["externalId"] == "user-1"
    assert metric_total(read_output(), "SecretCacheMiss") == 1
