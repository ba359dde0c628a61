"""What the observability module writes: the EMF line of TokensMinted, and log messages as Powertools logs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kustomer_token.observability import _message_as_logged, count_minted


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


def test_tokens_minted_is_alone_in_its_line_with_its_route_and_identity_type(
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given two tokens minted one after the other, on different routes and identity types
    read_output()
    count_minted("/token", "externalId")
    count_minted("/server/token", "email")
    # Then each is one EMF line holding TokensMinted alone, with its own dimensions and none of the other's
    lines = read_output()
    assert [line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for line in lines] == [
        [["service", "Route", "IdentityType"]]
    ] * 2
    assert [(line["Route"], line["IdentityType"], line["TokensMinted"]) for line in lines] == [
        ("/token", "externalId", [1.0]),
        ("/server/token", "email", [1.0]),
    ]
    assert all(
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "TokensMinted", "Unit": "Count"}] for line in lines
    )
