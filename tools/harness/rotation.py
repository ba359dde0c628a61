"""Plays Secrets Manager's part in a rotation: RotateSecret, then the rotation function's four steps.

What it follows (Secrets Manager User Guide, "Rotation by Lambda function", and the API
Reference for RotateSecret): RotateSecret makes a version with the AWSPENDING label and no
value, whose id is the ClientRequestToken, then invokes the rotation function with
{"Step", "SecretId" (the secret's ARN), "ClientRequestToken"} for createSecret, setSecret,
testSecret and finishSecret, in that order, stopping at the first failure. When a version
already has AWSPENDING without AWSCURRENT, RotateSecret answers InvalidRequestException
"A previous rotation isn't complete. That rotation will be reattempted." and that
rotation is run again with its own token. The local Secrets Manager (moto corrected by
secrets_manager_behaviour) keeps the versions and labels; this driver does the invoking,
synchronously where AWS does it in the background, so a test sees each step's outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from tools.harness.lambda_runtime import Invocation
from tools.harness.secrets_manager_behaviour import PENDING, PREVIOUS_ROTATION_INCOMPLETE

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ROTATION_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:RefreshSecretFunction"

Invoke = Callable[[dict[str, Any]], Invocation]


@dataclass
class RotationRun:
    token: str
    # RotateSecret's refusal when it reattempted an incomplete rotation instead of starting one.
    refusal: str | None = None
    steps: list[tuple[str, Invocation]] = field(default_factory=list)

    @property
    def error(self) -> dict[str, Any] | None:
        """The error of the step that failed, or None when all four succeeded."""
        return next((invocation.error for _, invocation in self.steps if invocation.error), None)

    @property
    def completed(self) -> bool:
        return [step for step, _ in self.steps] == list(STEPS) and self.error is None


class SecretsManagerRotation:
    """`admin` is a Secrets Manager client of the account (CloudFormation, the operator); `invoke`
    runs the rotation function with an event and returns what it answered."""

    def __init__(self, admin: Any, invoke: Invoke) -> None:
        self._admin = admin
        self._invoke = invoke

    def start(self, secret_id: str) -> RotationRun:
        """RotateSecret, as the stack's RotationSchedule (RotateImmediatelyOnUpdate) or `aws secretsmanager
        rotate-secret` calls it; the run to invoke is a new one or the incomplete one reattempted."""
        token = str(uuid.uuid4())
        try:
            self._admin.rotate_secret(
                SecretId=secret_id,
                ClientRequestToken=token,
                RotationLambdaARN=ROTATION_FUNCTION_ARN,
                RotationRules={"AutomaticallyAfterDays": 30},
                RotateImmediately=True,
            )
        except ClientError as exc:
            error = exc.response["Error"]
            if error["Code"] == "InvalidRequestException" and error["Message"] == PREVIOUS_ROTATION_INCOMPLETE:
                return RotationRun(token=self._incomplete_token(secret_id), refusal=error["Message"])
            # moto cannot invoke our function: it made the AWSPENDING version, then names the function.
            if not (error["Code"] == "ResourceNotFoundException" and ROTATION_FUNCTION_ARN in error["Message"]):
                raise
        return RotationRun(token=token)

    def step(self, secret_id: str, token: str, step: str) -> Invocation:
        arn = self._admin.describe_secret(SecretId=secret_id)["ARN"]
        return self._invoke({"Step": step, "SecretId": arn, "ClientRequestToken": token})

    def run(self, secret_id: str, run: RotationRun) -> RotationRun:
        """Invokes the four steps in order, stopping at the first that fails."""
        for step in STEPS:
            invocation = self.step(secret_id, run.token, step)
            run.steps.append((step, invocation))
            if invocation.error:
                break
        return run

    def rotate(self, secret_id: str) -> RotationRun:
        return self.run(secret_id, self.start(secret_id))

    def _incomplete_token(self, secret_id: str) -> str:
        stages: dict[str, list[str]] = self._admin.describe_secret(SecretId=secret_id).get("VersionIdsToStages") or {}
        return next(version for version, labels in stages.items() if PENDING in labels and "AWSCURRENT" not in labels)


def in_process(handler: Callable[[dict[str, Any]], Any]) -> Invoke:
    """Invokes an in-process handler as Lambda would report it: its result, or its error type and message."""

    def invoke(event: dict[str, Any]) -> Invocation:
        try:
            return Invocation(payload=handler(event), error=None, seconds=0.0)
        except Exception as exc:
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return Invocation(payload=None, error=error, seconds=0.0)

    return invoke
