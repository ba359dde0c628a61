"""The signing secret, read from Secrets Manager with a TTL cache and stale-if-error.

Written here rather than with Powertools parameters, whose provider would give
only the TTL (one comparison on the read time this cache keeps anyway for
stale-if-error), hides whether a call read or hit its cache, and costs ~4 ms of
every cold start to import (its package loads the SSM, AppConfig and DynamoDB
providers too; docs/performance.md). The reads themselves are boto3's
GetSecretValue, or the AWS Parameters and Secrets Lambda Extension. On top:
- stale-if-error: when a read fails, keep signing with the last good value for
  at most `max_stale_seconds` past its TTL, counting each such use;
- a short back-off after a failure, so an outage costs one Secrets Manager call
  per container every few seconds instead of one per request;
- validation of the value, and one warning per container for a short secret. A
  refused value is a failed read: it is never kept, and the first request after
  the back-off (the 503's Retry-After) reads again, so an operator's fix is seen then;
- `read_ahead`, the read during INIT, where Lambda gives the function a whole CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kustomer_token.errors import SigningSecretUnavailable
from kustomer_token.observability import MetricName, count, logger, secret_fingerprint
from kustomer_token.token import RECOMMENDED_SECRET_BYTES, is_short_secret

MAX_SECRET_BYTES = 4096
FAILURE_BACKOFF_SECONDS = 5


class SecretReader(Protocol):
    def read(self, secret_id: str) -> str | bytes:
        """The AWSCURRENT value of the secret, read now (no cache); raises when it cannot."""
        ...


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


@dataclass(frozen=True, slots=True)
class _GoodSecret:
    value: str
    read_at: float


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


class SigningSecretCache:
    """One per container: the signing secret, read at most once per TTL."""

    def __init__(
        self,
        secret_id: str,
        *,
        ttl_seconds: int,
        max_stale_seconds: int,
        reader_factory: Callable[[], SecretReader] = SecretsManagerReader,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._ttl_seconds = ttl_seconds
        self._max_stale_seconds = max_stale_seconds
        self._reader_factory = reader_factory
        self._clock = clock
        self._reader: SecretReader | None = None
        self._last_good: _GoodSecret | None = None
        self._retry_not_before = float("-inf")
        self._warned_short_secret = False

    def prime(self) -> SecretReader:
        """Makes the reader (the Secrets Manager client) now, without reading the secret."""
        if self._reader is None:
            self._reader = self._reader_factory()
        return self._reader

    def read_ahead(self) -> None:
        """Reads the secret now, during INIT, where Lambda gives the function a whole CPU.

        Never raises: a failed read or an unusable value is logged and counted
        (SecretReadFailed), nothing is kept, and the first request reads again
        under the usual stale-if-error and 503 rules, without waiting out a back-off.
        """
        now = self._clock()
        try:
            value = self.prime().read(self._secret_id)
        except Exception as exc:  # boto3, botocore and urllib raise many types; the reason names it
            reason = _failure_reason(exc)
        else:
            problem = secret_problem(value)
            if problem is None:
                count(MetricName.SECRET_CACHE_MISS)
                self._remember(str(value), now)
                return
            reason = f"UnusableValue: the stored signing secret {problem}"
        count(MetricName.SECRET_READ_FAILED)
        logger.warning("signing secret not read at start; the first request reads it again", extra={"reason": reason})

    def forget(self) -> None:
        """Drops every value held (after a SnapStart restore: the snapshot may be days old)."""
        self._last_good = None
        self._retry_not_before = float("-inf")

    def get(self) -> str:
        """The signing secret to use now, or SigningSecretUnavailable (503)."""
        now = self._clock()
        if now < self._retry_not_before:
            return self._fall_back(now)
        good = self._last_good
        if good is not None and now - good.read_at < self._ttl_seconds:
            count(MetricName.SECRET_CACHE_HIT)
            return good.value
        try:
            value = self.prime().read(self._secret_id)
        except Exception as exc:  # boto3, botocore and urllib raise many types; the reason names it
            return self._fall_back(now, failure=_failure_reason(exc))
        count(MetricName.SECRET_CACHE_MISS)
        problem = secret_problem(value)
        if problem:
            # Not kept: a refused value is a failed read, read again once the back-off is over.
            logger.error("the stored signing secret cannot be used", extra={"problem": problem})
            return self._fall_back(now, failure="UnusableValue")
        self._remember(str(value), now)
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

    def _fall_back(self, now: float, *, failure: str | None = None) -> str:
        """The cached value while it is within its stale bound, else SigningSecretUnavailable.

        `failure` is the reason of a read that just failed (or whose value was refused): it starts
        the back-off and is logged once. Without it (the back-off runs) nothing is logged.
        """
        first_failure = failure is not None
        if first_failure:
            self._retry_not_before = now + FAILURE_BACKOFF_SECONDS
            count(MetricName.SECRET_READ_FAILED)
        good = self._last_good
        if good is not None and now - good.read_at <= self._ttl_seconds + self._max_stale_seconds:
            count(MetricName.SECRET_STALE_USE)
            if first_failure:
                logger.warning(
                    "signing secret read failed; signing with the cached value",
                    extra={"reason": failure, "cached_age_seconds": round(now - good.read_at)},
                )
            return good.value
        count(MetricName.SECRET_UNAVAILABLE)
        if first_failure:
            logger.error("no usable signing secret", extra={"reason": failure})
        raise SigningSecretUnavailable(
            "the signing secret is not available yet; try again shortly",
            retry_after_seconds=FAILURE_BACKOFF_SECONDS,
        )
