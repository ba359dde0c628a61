"""The mint's two readers of the signing secret: boto3's GetSecretValue, or the Secrets extension.

I/O only, no policy and no cache (secret_cache.py decides when to read and what to do
with a failure). Written here rather than with Powertools parameters, whose provider would
give only the TTL, hides whether a call read or hit its cache, and costs ~4 ms of every cold
start to import (its package loads the SSM, AppConfig and DynamoDB providers too;
docs/performance.md).
"""

from __future__ import annotations

from typing import Any, Protocol


class SecretReader(Protocol):
    def read(self, secret_id: str) -> str | bytes:
        """The AWSCURRENT value of the secret, read now (no cache); raises when it cannot."""
        ...


def read_failure_reason(exc: BaseException) -> str:
    """A short, secret-free reason: the AWS error code, the HTTP status, or the exception class.

    Looks one step down the chain as a traceback shows it: the explicit cause, else the context
    unless `raise ... from None` suppressed it (json's decode error hides a StopIteration there).
    """
    context = None if exc.__suppress_context__ else exc.__context__
    cause = exc.__cause__ or context or exc
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    status = getattr(cause, "code", None)
    if isinstance(status, int):
        return f"HTTP{status}"
    return type(cause).__name__


class SecretsManagerReader:
    """GetSecretValue with boto3: short timeouts and one retry, so a request never waits long on it."""

    def __init__(self) -> None:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
        self._client = boto3.client("secretsmanager", config=config)

    def read(self, secret_id: str) -> str | bytes:
        answer = self._client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        if "SecretString" in answer:
            return str(answer["SecretString"])
        return bytes(answer["SecretBinary"])


class ExtensionReader:
    """Reads through the AWS Parameters and Secrets Lambda Extension on localhost: no boto3 at all."""

    def __init__(self, port: int, *, timeout_seconds: float = 3.0) -> None:
        import urllib.request

        self._port = port
        self._timeout_seconds = timeout_seconds
        self._urlopen = urllib.request.build_opener(urllib.request.ProxyHandler({})).open
        self._request = urllib.request.Request

    def read(self, secret_id: str) -> str | bytes:
        import base64
        import json
        import os
        from urllib.parse import urlencode

        query = urlencode({"secretId": secret_id, "versionStage": "AWSCURRENT"})
        request = self._request(
            f"http://127.0.0.1:{self._port}/secretsmanager/get?{query}",
            headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")},
        )
        with self._urlopen(request, timeout=self._timeout_seconds) as response:
            answer: dict[str, Any] = json.loads(response.read())
        if "SecretString" in answer:
            return str(answer["SecretString"])
        return base64.b64decode(answer["SecretBinary"])
