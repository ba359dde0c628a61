"""The HTTP API 2.0 event shape check: real events pass, each broken part is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kustomer_token.http_event import http_event_problem
from tests.support.events import http_api_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("*token*.json")))
def test_every_http_event_file_has_the_shape(name: str) -> None:
    assert http_event_problem(json.loads((EVENTS / name).read_text())) is None


def _broken(change: str) -> Any:
    event = http_api_event("POST", "/token", claims={"sub": "u"}, body="{}")
    if change == "no-context":
        del event["requestContext"]
    elif change == "stage-none":
        event["requestContext"]["stage"] = None
    elif change == "method-number":
        event["requestContext"]["http"]["method"] = 5
    elif change == "headers-list":
        event["headers"] = ["a"]
    elif change == "header-number":
        event["headers"] = {"x": 1}
    elif change == "body-object":
        event["body"] = {"a": 1}
    elif change == "base64-string":
        event["isBase64Encoded"] = "true"
    elif change == "no-raw-path":
        del event["rawPath"]
    elif change == "cookies-string":
        event["cookies"] = "a=b"
    elif change == "authorizer-list":
        event["requestContext"]["authorizer"] = []
    return event


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("no-context", "requestContext"),
        ("stage-none", "stage"),
        ("method-number", "http.method"),
        ("headers-list", "headers"),
        ("header-number", "headers"),
        ("body-object", "body"),
        ("base64-string", "isBase64Encoded"),
        ("no-raw-path", "rawPath"),
        ("cookies-string", "cookies"),
        ("authorizer-list", "authorizer"),
    ],
)
def test_each_broken_part_is_named(change: str, named: str) -> None:
    problem = http_event_problem(_broken(change))
    assert problem is not None
    assert named in problem


@pytest.mark.parametrize("event", [None, [], "event", 5])
def test_non_objects_are_refused(event: object) -> None:
    assert http_event_problem(event) == "the event must be an object"
