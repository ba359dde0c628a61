"""The stack's AWS and Kustomer neighbours on this machine: a local Secrets Manager
(moto) holding the stack's two secrets, and a fake Kustomer holding a generated
signing secret, with the built functions wired to them in the Lambda runtime.
Each function signs as its own role, and the role check in front of Secrets Manager
allows it only what template.yaml grants that role. Used by `make demo`.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from tools.harness.fake_kustomer import FakeKustomer, secret_reply  # noqa: E402
from tools.harness.iam import ADMIN_ENVIRONMENT, RoleCheck  # noqa: E402
from tools.harness.lambda_runtime import LambdaRuntime  # noqa: E402
from tools.harness.services import MotoServer, current_secret_string  # noqa: E402
from tools.harness.sm_proxy import SecretsManagerProxy  # noqa: E402

# This process is the account's admin; the functions get their roles' credentials.
LOCAL_AWS_ENVIRONMENT = {
    **ADMIN_ENVIRONMENT,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass
class LocalStack:
    secrets_manager_url: str  # what the functions call: Secrets Manager behind the role check
    kustomer: FakeKustomer
    kustomer_secret: str
    signing_secret_arn: str
    api_key_secret_arn: str
    client: Any  # the admin's client, straight to moto
    _running: ExitStack

    def runtime(self, logical_id: str, parameters: dict[str, str] | None = None) -> LambdaRuntime:
        """A built function wired to this stack (not started)."""
        return LambdaRuntime.from_template(
            logical_id,
            resources={"SigningSecret": self.signing_secret_arn, "ApiKeySecret": self.api_key_secret_arn},
            parameters={"KustomerOrg": "demo", "KustomerApiBaseUrl": self.kustomer.url, **(parameters or {})},
            secrets_manager_url=self.secrets_manager_url,
        )

    def start_function(self, logical_id: str, parameters: dict[str, str] | None = None) -> LambdaRuntime:
        """A built function in the Lambda runtime, stopped with the stack."""
        runtime = self.runtime(logical_id, parameters)
        self._running.callback(runtime.close)
        return runtime.start()

    def current_signing_secret(self) -> str | None:
        return current_secret_string(self.client, self.signing_secret_arn)


@contextmanager
def local_stack() -> Iterator[LocalStack]:
    """Starts moto and the fake Kustomer on free loopback ports; stops both on exit."""
    saved = dict(os.environ)
    os.environ.update(LOCAL_AWS_ENVIRONMENT)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    try:
        with _running_stack() as stack:
            yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _running_stack() -> Iterator[LocalStack]:
    with ExitStack() as running:
        moto = running.enter_context(MotoServer())
        api_key = "local-" + secrets.token_hex(20)
        kustomer_secret = secrets.token_hex(32)
        kustomer = FakeKustomer(api_key).start()
        running.callback(kustomer.stop)
        kustomer.answer(secret_reply(kustomer_secret))
        client = boto3.client("secretsmanager", endpoint_url=moto.url)
        signing_arn = client.create_secret(Name="kustomer-chat-token/SigningSecret")["ARN"]
        api_key_arn = client.create_secret(Name="kustomer-chat-token/ApiKeySecret", SecretString=api_key)["ARN"]
        roles = RoleCheck(secrets={"SigningSecret": signing_arn, "ApiKeySecret": api_key_arn})
        proxy = SecretsManagerProxy(moto.url, roles).start()
        running.callback(proxy.stop)
        yield LocalStack(proxy.url, kustomer, kustomer_secret, signing_arn, api_key_arn, client, running)
