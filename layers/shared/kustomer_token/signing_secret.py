"""The signing secret, read from Secrets Manager with a TTL cache and stale-if-error.

Powertools parameters does the TTL cache. What it lacks, written here:
- stale-if-error: when a read fails, keep signing with the last good value for
  at most `max_stale_seconds` past its TTL, counting each such use;
- a short back-off after a failure, so an outage costs one Secrets Manager call
  per container every few seconds instead of one per request;
- validation of the value, and one warning per container for a short secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kustomer_token.errors import SigningSecretUnavailable
from kustomer_token.observability import MetricName, count, logger, secret_fingerprint
from kustomer_token.token import RECOMMENDED_SECRET_BYTES, is_short_secret

MAX_SECRET_BYTES = 4096
FAILURE_BACKOFF_SECONDS = 5


def secret_problem(value: object) -> str | None:
    """Why a stored value cannot sign tokens, or None when it can."""
    if isinstance(value, bytes):
        return "is binary (SecretBinary); store the secret as SecretString"
    if not isinstance(value, str) or not value:
        return "is empty"
    if value != value.strip():
        return "has leading or trailing whitespace; store the secret exactly as Kustomer gives it"
    if len(value.encode("utf-8")) > MAX_SECRET_BYTES:
        return f"is longer than {MAX_SECRET_BYTES} bytes"
    return None


def _failure_reason(exc: BaseException) -> str:
    """A short, secret-free reason: the AWS error code, the HTTP status, or the exception class."""
    cause = exc.__cause__ or exc.__context__ or exc
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    status = getattr(cause, "code", None)
    if isinstance(status, int):
        return f"HTTP{status}"
    return type(cause).__name__


@dataclass(frozen=True, slots=True)
class _GoodSecret:
    value: str
    read_at: float


def _default_provider() -> Any:
    # Imported on first use so a container pays for boto3 only when it reads the secret.
    from kustomer_token.powertools_imports import skip_package_init

    skip_package_init("aws_lambda_powertools.utilities.parameters")  # not the SSM/AppConfig/DynamoDB providers
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
    from botocore.config import Config

    class _CountingSecretsProvider(SecretsProvider):
        """Counts real reads so the cache can tell a hit from a miss."""

        reads = 0

        def _get(self, name: str, **sdk_options: Any) -> str | bytes:
            self.reads += 1
            return super()._get(name, VersionStage="AWSCURRENT", **sdk_options)

    boto_config = Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"mode": "standard", "total_max_attempts": 2},
    )
    return _CountingSecretsProvider(boto_config=boto_config)


def extension_provider(port: int) -> Any:
    """Reads through the AWS Parameters and Secrets Lambda Extension on localhost: no boto3 at all.

    Powertools has no provider for this extension (it has one for AppConfig's), so
    this is a small BaseProvider: Powertools still does the TTL cache above it.
    """
    from kustomer_token.powertools_imports import skip_package_init

    skip_package_init("aws_lambda_powertools.utilities.parameters")
    from aws_lambda_powertools.utilities.parameters.base import BaseProvider

    class _ExtensionSecretsProvider(BaseProvider):
        reads = 0

        def __init__(self) -> None:
            import urllib.request

            super().__init__()  # type: ignore[no-untyped-call]
            self._urlopen = urllib.request.build_opener(urllib.request.ProxyHandler({})).open
            self._request = urllib.request.Request

        def _get(self, name: str, **sdk_options: Any) -> str | bytes:
            import base64
            import json
            import os
            from urllib.parse import urlencode

            self.reads += 1
            query = urlencode({"secretId": name, "versionStage": "AWSCURRENT"})
            request = self._request(
                f"http://127.0.0.1:{port}/secretsmanager/get?{query}",
                headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")},
            )
            with self._urlopen(request, timeout=3) as response:
                answer = json.loads(response.read())
            if "SecretString" in answer:
                return str(answer["SecretString"])
            return base64.b64decode(answer["SecretBinary"])

        def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
            raise NotImplementedError("the signing secret is one secret")

    return _ExtensionSecretsProvider()


class SigningSecretCache:
    """One per container: the signing secret, read at most once per TTL."""

    def __init__(
        self,
        secret_id: str,
        *,
        ttl_seconds: int,
        max_stale_seconds: int,
        provider_factory: Callable[[], Any] = _default_provider,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._ttl_seconds = ttl_seconds
        self._max_stale_seconds = max_stale_seconds
        self._provider_factory = provider_factory
        self._clock = clock
        self._provider: Any = None
        self._last_good: _GoodSecret | None = None
        self._retry_not_before = float("-inf")
        self._warned_short_secret = False

    def prime(self) -> None:
        """Makes the Secrets Manager client now (for a SnapStart snapshot), without reading the secret."""
        if self._provider is None:
            self._provider = self._provider_factory()

    def forget(self) -> None:
        """Drops every value held (after a SnapStart restore: the snapshot may be days old)."""
        if self._provider is not None:
            self._provider.clear_cache()
        self._last_good = None
        self._retry_not_before = float("-inf")

    def get(self) -> str:
        """The signing secret to use now, or SigningSecretUnavailable (503)."""
        now = self._clock()
        if now < self._retry_not_before:
            return self._fall_back(now, reason="BackingOff")
        if self._provider is None:
            self._provider = self._provider_factory()
        reads_before = self._provider.reads
        try:
            value = self._provider.get(self._secret_id, max_age=self._ttl_seconds)
        except Exception as exc:  # Powertools wraps every read failure in GetParameterError
            return self._fall_back(now, reason=_failure_reason(exc), first_failure=True)
        fresh_read = self._provider.reads != reads_before
        count(MetricName.SECRET_CACHE_MISS if fresh_read else MetricName.SECRET_CACHE_HIT)

        problem = secret_problem(value)
        if problem:
            logger.error("the stored signing secret cannot be used", extra={"problem": problem})
            return self._fall_back(now, reason="UnusableValue", first_failure=fresh_read)
        if fresh_read:
            self._remember(value, now)
        return str(value)

    def _remember(self, value: str, now: float) -> None:
        if self._last_good is None or self._last_good.value != value:
            logger.info("signing secret loaded", extra={"secret_fingerprint": secret_fingerprint(value)})
        self._last_good = _GoodSecret(value=value, read_at=now)
        if is_short_secret(value) and not self._warned_short_secret:
            self._warned_short_secret = True
            logger.warning(
                f"the Kustomer signing secret is shorter than {RECOMMENDED_SECRET_BYTES} bytes; "
                "tokens are still signed, as Kustomer expects, but consider regenerating it in Kustomer"
            )

    def _fall_back(self, now: float, *, reason: str, first_failure: bool = False) -> str:
        if first_failure:
            self._retry_not_before = now + FAILURE_BACKOFF_SECONDS
            count(MetricName.SECRET_READ_FAILED)
        good = self._last_good
        if good is not None and now - good.read_at <= self._ttl_seconds + self._max_stale_seconds:
            count(MetricName.SECRET_STALE_USE)
            if first_failure:
                logger.warning(
                    "signing secret read failed; signing with the cached value",
                    extra={"reason": reason, "cached_age_seconds": round(now - good.read_at)},
                )
            return good.value
        count(MetricName.SECRET_UNAVAILABLE)
        if first_failure:
            logger.error("no usable signing secret", extra={"reason": reason})
        raise SigningSecretUnavailable(
            "the signing secret is not available yet; try again shortly",
            retry_after_seconds=FAILURE_BACKOFF_SECONDS,
        )
