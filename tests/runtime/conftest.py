"""Built functions in the real Lambda runtime, each under its own role, wired to the local Secrets Manager
(through the role check) and the fake Kustomer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.leaks import LEAK_WATCH
from tools.harness.fake_kustomer import FakeKustomer
from tools.harness.lambda_runtime import LambdaRuntime
from tools.harness.services import current_secret_string
from tools.harness.sm_proxy import SecretsManagerProxy

_names = itertools.count(1)


@dataclass
class LocalStack:
    """The stack's two secrets in the local Secrets Manager."""

    client: Any
    signing_secret_arn: str
    api_key_secret_arn: str

    def current_signing_secret(self) -> str | None:
        return current_secret_string(self.client, self.signing_secret_arn)


@pytest.fixture
def stack_api_key(api_key: str) -> str | None:
    """What ApiKeySecret holds; a test parametrizes it to None for the stack as first deployed."""
    return api_key


@pytest.fixture
def local_stack(secretsmanager: Any, sm_proxy: SecretsManagerProxy, stack_api_key: str | None) -> LocalStack:
    """The stack's two secrets; the signing secret empty, as CloudFormation creates it."""
    n = next(_names)
    signing = secretsmanager.create_secret(Name=f"kct-{n}/SigningSecret")["ARN"]
    stored = {} if stack_api_key is None else {"SecretString": stack_api_key}
    api = secretsmanager.create_secret(Name=f"kct-{n}/ApiKeySecret", **stored)["ARN"]
    assert sm_proxy.role_check is not None
    sm_proxy.role_check.bind(SigningSecret=signing, ApiKeySecret=api)
    return LocalStack(secretsmanager, signing, api)


@pytest.fixture
def start_function(
    local_stack: LocalStack, kustomer: FakeKustomer, sm_proxy: SecretsManagerProxy
) -> Iterator[Callable[..., LambdaRuntime]]:
    """Starts a built function in the emulator with the environment template.yaml gives it."""
    started: list[LambdaRuntime] = []

    def start(logical_id: str, parameters: dict[str, str] | None = None) -> LambdaRuntime:
        runtime = LambdaRuntime.from_template(
            logical_id,
            resources={"SigningSecret": local_stack.signing_secret_arn, "ApiKeySecret": local_stack.api_key_secret_arn},
            parameters={"KustomerOrg": "example", "KustomerApiBaseUrl": kustomer.url, **(parameters or {})},
            secrets_manager_url=sm_proxy.url,
        )
        started.append(runtime)
        return runtime.start()

    yield start
    for runtime in started:
        # What the function logged is checked for secrets, API keys and tokens like all test output.
        LEAK_WATCH.read_by_test(runtime.logs())
        runtime.close()
