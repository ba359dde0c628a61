"""The shape of an API Gateway HTTP API payload 2.0 event, checked before routing.

API Gateway always sends this shape; anything else (a hand-made test event, a
misrouted invocation) gets a clear 400 instead of failing deep inside routing.

Written by hand rather than as a JSON Schema: fastjsonschema (used for the
/server/token body, off the cold path) costs ~45 ms to import and ~12 ms to
compile a schema, and this check runs on every request, the first one included.
"""

from __future__ import annotations

from collections.abc import Mapping

_STRING_MAPS = ("headers", "queryStringParameters", "pathParameters", "stageVariables")
_STRINGS = ("version", "routeKey", "rawPath", "rawQueryString")


def _string_map_problem(value: object) -> str | None:
    if not isinstance(value, Mapping):
        return "must be an object"
    if not all(isinstance(key, str) and isinstance(item, str) for key, item in value.items()):
        return "must map strings to strings"
    return None


def http_event_problem(event: object) -> str | None:
    """Why the event is not an HTTP API payload 2.0 event, or None when it is."""
    if not isinstance(event, Mapping):
        return "the event must be an object"
    if "rawPath" not in event:
        return "the event must contain rawPath"
    for name in _STRINGS:
        if name in event and not isinstance(event[name], str):
            return f"the event's {name} must be a string"
    for name in _STRING_MAPS:
        if name in event and (problem := _string_map_problem(event[name])):
            return f"the event's {name} {problem}"
    cookies = event.get("cookies", [])
    if not isinstance(cookies, list) or not all(isinstance(cookie, str) for cookie in cookies):
        return "the event's cookies must be a list of strings"
    if "body" in event and event["body"] is not None and not isinstance(event["body"], str):
        return "the event's body must be a string"
    if "isBase64Encoded" in event and not isinstance(event["isBase64Encoded"], bool):
        return "the event's isBase64Encoded must be a boolean"
    context = event.get("requestContext")
    if not isinstance(context, Mapping):
        return "the event must contain a requestContext object"
    if not isinstance(context.get("stage"), str):
        return "the event's requestContext.stage must be a string"
    if "requestId" in context and not isinstance(context["requestId"], str):
        return "the event's requestContext.requestId must be a string"
    if context.get("authorizer") is not None and not isinstance(context["authorizer"], Mapping):
        return "the event's requestContext.authorizer must be an object"
    http = context.get("http")
    if not isinstance(http, Mapping):
        return "the event must contain a requestContext.http object"
    for name in ("method", "path"):
        if not isinstance(http.get(name), str):
            return f"the event's requestContext.http.{name} must be a string"
    return None
