"""What the observability module writes: the mint's EMF lines, and log messages as Powertools logs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kustomer_token.observability import MetricName, _message_as_logged, count_minted, count_secret_event, metrics


def _as_powertools_logs(message: str, deserialize: Callable[[str], Any]) -> str:
    """The message field Powertools' formatter writes: decoded when the deserializer can, else the text."""
    try:
        return json.dumps(deserialize(message))
    except ValueError:  # JSONDecodeError is a ValueError; the formatter catches it and keeps the text
        return json.dumps(message)


@pytest.mark.parametrize(
    "message",
    [
        "token minted",
        "signing secret not read at start; the first request reads it again",
        "",
        "  ",
        "t",
        "nullable",
        "true",
        "\ttrue\n",
        "null",
        "NaN",
        "Infinity",
        "-Infinity",
        " 12 ",
        "-",
        '"quoted"',
        '{"a": [1, 2]}',
        "[1",
        "{not json",
    ],
)
def test_a_message_is_logged_as_the_default_deserializer_would_log_it(message: str) -> None:
    # Given Powertools' default (json.loads on every message) and ours (json.loads only on what can be JSON)
    # Then both log the same field
    assert _as_powertools_logs(message, _message_as_logged) == _as_powertools_logs(message, json.loads)


def test_tokens_minted_is_the_request_s_one_line_alone_with_its_route_and_identity_type(
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given two requests one after the other, on different routes and identity types, each ended by log_metrics's flush
    read_output()
    count_minted("/token", "externalId")
    assert read_output() == []  # nothing is written before the request ends
    metrics.flush_metrics()
    count_minted("/server/token", "email")
    metrics.flush_metrics()
    # Then each request wrote one EMF line holding TokensMinted alone, with its own dimensions and none of the other's
    lines = read_output()
    assert [sorted(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) for line in lines] == [
        ["IdentityType", "Route", "service"]
    ] * 2
    assert [(line["Route"], line["IdentityType"], line["TokensMinted"]) for line in lines] == [
        ("/token", "externalId", [1.0]),
        ("/server/token", "email", [1.0]),
    ]
    assert all(
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "TokensMinted", "Unit": "Count"}] for line in lines
    )


def test_a_secret_event_is_written_at_once_in_a_line_of_its_own_on_the_service_alone(
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a request that minted (its TokensMinted not yet flushed) and read the secret on the way
    read_output()
    count_minted("/token", "externalId")
    count_secret_event(MetricName.SECRET_CACHE_MISS)
    # Then the read is written at once, alone, on `service` only: no route or identity type reaches it
    (line,) = read_output()
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert line["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "SecretCacheMiss", "Unit": "Count"}]
    assert line["SecretCacheMiss"] == [1.0]
    assert "Route" not in line
    # and the request's own line still holds TokensMinted alone
    metrics.flush_metrics()
    (request_line,) = read_output()
    assert [m["Name"] for m in request_line["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["TokensMinted"]
