"""The shape of an API Gateway HTTP API payload 2.0 event, checked before routing.

API Gateway always sends this shape; anything else (a hand-made test event, a
misrouted invocation) gets a clear 400 instead of failing deep inside routing.
JSON Schema, compiled once with fastjsonschema (the engine behind Powertools'
validation utility).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

HTTP_API_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["rawPath", "requestContext"],
    "properties": {
        "version": {"type": "string"},
        "routeKey": {"type": "string"},
        "rawPath": {"type": "string"},
        "rawQueryString": {"type": "string"},
        "cookies": {"type": "array", "items": {"type": "string"}},
        "headers": _STRING_MAP,
        "queryStringParameters": _STRING_MAP,
        "pathParameters": _STRING_MAP,
        "stageVariables": _STRING_MAP,
        "body": {"type": ["string", "null"]},
        "isBase64Encoded": {"type": "boolean"},
        "requestContext": {
            "type": "object",
            "required": ["http", "stage"],
            "properties": {
                "requestId": {"type": "string"},
                "stage": {"type": "string"},
                "http": {
                    "type": "object",
                    "required": ["method", "path"],
                    "properties": {"method": {"type": "string"}, "path": {"type": "string"}},
                },
                "authorizer": {"type": ["object", "null"]},
            },
        },
    },
}


@cache
def _validator() -> Callable[[Any], Any]:
    import fastjsonschema

    return fastjsonschema.compile(HTTP_API_EVENT_SCHEMA)


def http_event_problem(event: object) -> str | None:
    """Why the event is not an HTTP API payload 2.0 event, or None when it is."""
    import fastjsonschema

    try:
        _validator()(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        return exc.message.replace("data", "the event", 1)
    return None
