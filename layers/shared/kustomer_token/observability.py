"""The one owner of the logger and the metrics of the token service.

Logs and metrics never hold a secret, an API key, a token or a raw identity:
identities are logged as Identity.fingerprint(), secrets as secret_fingerprint().
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "kustomer-chat-token"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "KustomerChatToken"

# A refused request records no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# What JSON text can start with, once its blanks are stripped, besides these literals: nothing else decodes.
_JSON_FIRST_CHARACTERS = frozenset('{["-0123456789')
_JSON_LITERALS = frozenset(("true", "false", "null", "NaN", "Infinity"))


def _message_as_logged(message: dict[Any, Any] | str | bool | int | float) -> Any:
    """The Logger's json_deserializer: a message that is JSON text is logged decoded, as Powertools does.

    Other text is returned as it is without trying json.loads, which for every log line (all are plain
    text) raised and caught a JSONDecodeError: the same line, some microseconds less per request.
    """
    if not isinstance(message, str):  # Powertools passes text only; anything else is logged as it is
        return message
    text = message.strip(" \t\n\r")
    if text[:1] in _JSON_FIRST_CHARACTERS or text in _JSON_LITERALS:
        return json.loads(message)
    return message


logger = Logger(service=SERVICE_NAME, json_deserializer=_message_as_logged)
# The request's metrics: flushed by log_metrics as one EMF line at the end of each invocation. In the mint that
# line holds TokensMinted by Route and IdentityType and nothing else (count_minted); in the refresher its outcome.
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
# The metrics that go out at once, each in an EMF line of its own (_count_alone): the mint's signing-secret events,
# on the service dimension whatever the request's route, and the refresher's failures by Reason. One metrics object,
# kept, does it: Powertools' single_metric builds a new one, unit tables and all, for each call.
_alone = EphemeralMetrics(
    namespace=METRICS_NAMESPACE, service=SERVICE_NAME, default_dimensions={"service": SERVICE_NAME}
)


class MetricName:
    # Names with "Secret" in them are metric names, not credentials (bandit B105 notwithstanding).
    TOKENS_MINTED = "TokensMinted"
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
    """TokensMinted by Route and IdentityType: the request's one EMF line, written by log_metrics.

    Only this metric carries those dimensions, and it is the only metric a request that minted writes:
    the mint's cache is not counted per request (a hit is a token minted without a SecretCacheMiss
    beside it), so a warm request formats and writes one metrics line, not two (docs/performance.md).
    """
    metrics.add_metric(name=MetricName.TOKENS_MINTED, unit=MetricUnit.Count, value=1)
    metrics.add_dimension(name="Route", value=route)
    metrics.add_dimension(name="IdentityType", value=identity_type)


def count_secret_event(name: str) -> None:
    """One of the mint's signing-secret events, in an EMF line of its own on `service` alone, written now."""
    _count_alone(name, {})


def count_refresh_outcome(*, changed: bool) -> None:
    count(MetricName.SECRET_CHANGED if changed else MetricName.SECRET_UNCHANGED)
    count(MetricName.REFRESH_SUCCEEDED)


def count_refresh_failed(reason: str) -> None:
    """RefreshFailed with a Reason dimension (a short code, never a message)."""
    _count_alone(MetricName.REFRESH_FAILED, {"Reason": reason[:64] or "Unknown"})


def _count_alone(name: str, dimensions: dict[str, str]) -> None:
    """One metric in an EMF line of its own, written now, with these dimensions beside the service."""
    _alone.add_metric(name=name, unit=MetricUnit.Count, value=1)
    for dimension, value in dimensions.items():
        _alone.add_dimension(name=dimension, value=value)
    _alone.flush_metrics()
