"""HTTP API payload 2.0 events as API Gateway sends them to the mint function."""

from __future__ import annotations

import base64
import itertools
from typing import Any

_request_ids = itertools.count(1)

# The back end the tests sign /server/token requests as: a session of BACKEND_ROLE_ARN.
BACKEND_ROLE_ARN = "arn:aws:iam::123456789012:role/service/backend"
BACKEND_SESSION_ARN = "arn:aws:sts::123456789012:assumed-role/backend/session"


def http_api_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None = None,
    iam: bool = False,
    body: str | None = None,
    base64_body: bool = False,
    headers: dict[str, str] | None = None,
    caller_arn: str = BACKEND_SESSION_ARN,
    raw_path: str | None = None,
    stage: str = "$default",
) -> dict[str, Any]:
    request_id = f"req-{next(_request_ids):06d}"
    authorizer: dict[str, Any] | None = None
    if claims is not None:
        authorizer = {"jwt": {"claims": claims, "scopes": None}}
    elif iam:
        authorizer = {
            "iam": {
                "accessKey": "ASIAEXAMPLE",
                "accountId": "123456789012",
                "callerId": "AROAEXAMPLE:backend",
                "principalOrgId": None,
                "userArn": caller_arn,
                "userId": "AROAEXAMPLE:backend",
            }
        }
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api1234567",
        "domainName": "api1234567.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "api1234567",
        "http": {
            "method": method,
            "path": path if raw_path is None else raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.10",
            "userAgent": "tests",
        },
        "requestId": request_id,
        "routeKey": f"{method} {path}",
        "stage": stage,
        "time": "25/Nov/2026:12:00:00 +0000",
        "timeEpoch": 1795608000000,
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path if raw_path is None else raw_path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": request_context,
        "isBase64Encoded": base64_body,
    }
    if body is not None:
        event["body"] = base64.b64encode(body.encode("utf-8")).decode("ascii") if base64_body else body
    return event


class FakeLambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name = "MintTokenFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:MintTokenFunction"
    aws_request_id = "11111111-2222-3333-4444-555555555555"
    log_group_name = "/aws/lambda/MintTokenFunction"
    log_stream_name = "2026/11/25/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
