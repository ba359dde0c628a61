"""Built functions in the real Lambda runtime, wired to the local Secrets Manager and the fake Kustomer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.fake_kustomer import FakeKustomer
from tests.support.lambda_runtime import LambdaRuntime
from tests.support.leaks import LEAK_WATCH
from tests.support.services import MotoServer

_names = itertools.count(1)


@dataclass
class LocalStack:
    """The stack's two secrets in the local Secrets Manager."""

    client: Any
    signing_secret_arn: str
    api_key_secret_arn: str

    def current_signing_secret(self) -> str | None:
        try:
            answer = self.client.get_secret_value(SecretId=self.signing_secret_arn, VersionStage="AWSCURRENT")
        except self.client.exceptions.ResourceNotFoundException:
            return None
        value: str | None = answer.get("SecretString")
        return value


@pytest.fixture
def local_stack(secretsmanager: Any, api_key: str) -> LocalStack:
    n = next(_names)
    signing = secretsmanager.create_secret(Name=f"kct-{n}/SigningSecret")["ARN"]
    api = secretsmanager.create_secret(Name=f"kct-{n}/ApiKeySecret", SecretString=api_key)["ARN"]
    return LocalStack(secretsmanager, signing, api)


@pytest.fixture
def start_function(
    local_stack: LocalStack, kustomer: FakeKustomer, moto_server: MotoServer
) -> Iterator[Callable[..., LambdaRuntime]]:
    """Starts a built function in the emulator with the environment template.yaml gives it."""
    started: list[LambdaRuntime] = []

    def start(logical_id: str, parameters: dict[str, str] | None = None) -> LambdaRuntime:
        runtime = LambdaRuntime.from_template(
            logical_id,
            resources={"SigningSecret": local_stack.signing_secret_arn, "ApiKeySecret": local_stack.api_key_secret_arn},
            parameters={"KustomerOrg": "example", "KustomerApiBaseUrl": kustomer.url, **(parameters or {})},
            secrets_manager_url=moto_server.url,
        )
        started.append(runtime)
        return runtime.start()

    yield start
    for runtime in started:
        # What the function logged is checked for secrets, API keys and tokens like all test output.
        LEAK_WATCH.read_by_test(runtime.logs())
        runtime.close()
