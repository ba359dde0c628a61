"""The one owner of the logger and the metrics of the token service.

Logs and metrics never hold a secret, an API key, a token or a raw identity:
identities are logged as Identity.fingerprint(), secrets as secret_fingerprint().
"""

from __future__ import annotations

import hashlib
import os
import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "kustomer-chat-token"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "KustomerChatToken"

# A refused request records no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)


class MetricName:
    # Names with "Secret" in them are metric names, not credentials (bandit B105 notwithstanding).
    TOKENS_MINTED = "TokensMinted"
    SECRET_CACHE_HIT = "SecretCacheHit"  # nosec B105
    SECRET_CACHE_MISS = "SecretCacheMiss"  # nosec B105
    SECRET_STALE_USE = "SecretStaleUse"  # nosec B105
    SECRET_READ_FAILED = "SecretReadFailed"  # nosec B105
    SECRET_UNAVAILABLE = "SecretUnavailable"  # nosec B105
    SECRET_CHANGED = "SecretChanged"  # nosec B105
    SECRET_UNCHANGED = "SecretUnchanged"  # nosec B105
    REFRESH_FAILED = "RefreshFailed"
    REFRESH_SUCCEEDED = "RefreshSucceeded"  # every successful run, changed or not: RefreshHeartbeatAlarm


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def secret_fingerprint(secret: str) -> str:
    """First 12 hex digits of SHA-256: tells versions apart in logs without revealing them."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def count_minted(route: str, identity_type: str) -> None:
    """TokensMinted by Route and IdentityType, in an EMF line of its own.

    Only this metric carries those dimensions: the cache metrics of the same request stay on the
    service dimension alone, one series each, whatever routes and identity types come later.
    """
    _count_alone(MetricName.TOKENS_MINTED, {"Route": route, "IdentityType": identity_type})


def count_refresh_outcome(*, changed: bool) -> None:
    count(MetricName.SECRET_CHANGED if changed else MetricName.SECRET_UNCHANGED)
    count(MetricName.REFRESH_SUCCEEDED)


def count_refresh_failed(reason: str) -> None:
    """RefreshFailed with a Reason dimension (a short code, never a message)."""
    _count_alone(MetricName.REFRESH_FAILED, {"Reason": reason[:64] or "Unknown"})


def _count_alone(name: str, dimensions: dict[str, str]) -> None:
    """One metric in an EMF line of its own, with these dimensions beside the service."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=METRICS_NAMESPACE,
        default_dimensions={"service": SERVICE_NAME},
    ) as metric:
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)
