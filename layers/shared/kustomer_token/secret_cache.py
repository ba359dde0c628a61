"""The mint's signing secret: a TTL cache over a reader, with stale-if-error.

On top of the reads (secret_readers.py):
- stale-if-error: when a read fails, keep signing with the last good value for
  at most `max_stale_seconds` past its TTL, counting each such use;
- a short back-off after a failure, so an outage costs one Secrets Manager call
  per container every few seconds instead of one per request;
- validation of the value (secret_value.py), and one warning per container for a short
  secret. A refused value is a failed read: it is never kept, and the first request after
  the back-off (the 503's Retry-After) reads again, so an operator's fix is seen then;
- `read_ahead`, the read during INIT, where Lambda gives the function a whole CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kustomer_token.errors import SigningSecretUnavailable
from kustomer_token.observability import MetricName, count_secret_event, logger, secret_fingerprint
from kustomer_token.secret_readers import SecretReader, SecretsManagerReader, read_failure_reason
from kustomer_token.secret_value import secret_problem
from kustomer_token.token import RECOMMENDED_SECRET_BYTES, is_short_secret

FAILURE_BACKOFF_SECONDS = 5


@dataclass(frozen=True, slots=True)
class _GoodSecret:
    value: str
    read_at: float


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
            reason = read_failure_reason(exc)
        else:
            problem = secret_problem(value)
            if problem is None:
                count_secret_event(MetricName.SECRET_CACHE_MISS)
                self._remember(str(value), now)
                return
            reason = f"UnusableValue: the stored signing secret {problem}"
        count_secret_event(MetricName.SECRET_READ_FAILED)
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
            return good.value
        try:
            value = self.prime().read(self._secret_id)
        except Exception as exc:  # boto3, botocore and urllib raise many types; the reason names it
            return self._fall_back(now, failure=read_failure_reason(exc))
        count_secret_event(MetricName.SECRET_CACHE_MISS)
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
            count_secret_event(MetricName.SECRET_READ_FAILED)
        good = self._last_good
        if good is not None and now - good.read_at <= self._ttl_seconds + self._max_stale_seconds:
            count_secret_event(MetricName.SECRET_STALE_USE)
            if first_failure:
                logger.warning(
                    "signing secret read failed; signing with the cached value",
                    extra={"reason": failure, "cached_age_seconds": round(now - good.read_at)},
                )
            return good.value
        count_secret_event(MetricName.SECRET_UNAVAILABLE)
        if first_failure:
            logger.error("no usable signing secret", extra={"reason": failure})
        raise SigningSecretUnavailable(
            "the signing secret is not available yet; try again shortly",
            retry_after_seconds=FAILURE_BACKOFF_SECONDS,
        )
