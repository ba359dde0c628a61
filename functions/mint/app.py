"""Mint function: HTTP API routes only; the work is in the kustomer_token layer.

Routed here, by the route API Gateway matched, rather than with Powertools' APIGatewayHttpResolver:
importing `aws_lambda_powertools.event_handler` costs ~30 ms of every cold start (its package
loads every resolver, AppSync's with asyncio) for two POST routes API Gateway has already matched
(docs/performance.md). The answers are the resolver's, byte for byte: the same routing of
hand-made events, the same 404 and 405, the same response shape. Powertools still logs and
counts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kustomer_token.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    TokenServiceError,
    Unauthenticated,
)
from kustomer_token.http_event import http_event_problem
from kustomer_token.minting import TokenMinter
from kustomer_token.observability import logger, metrics
from kustomer_token.settings import MintSettings
from kustomer_token.token import LoginToken

END_USER_ROUTE = "/token"
SERVER_ROUTE = "/server/token"
ROUTE_METHODS = {END_USER_ROUTE: ("POST",), SERVER_ROUTE: ("POST",)}
NO_STORE_HEADERS = {"Cache-Control": "no-store"}

Answer = dict[str, Any]

# Fails at init, naming the setting, when the environment is wrong; reads the signing secret
# now, where Lambda gives full CPU (a failed read is retried on the first request).
minter = TokenMinter.from_settings(MintSettings.from_env())


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    """The payload 2.0 answer, shaped as the resolver shaped it: its keys, their order, Content-Type last."""
    return {
        "statusCode": status,
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
        "headers": {**NO_STORE_HEADERS, **(headers or {}), "Content-Type": "application/json"},
        "cookies": [],
    }


def _token_response(token: LoginToken) -> Answer:
    return _json_response(200, token.response_body())


def _authorizer(event: Mapping[str, Any]) -> Mapping[str, Any]:
    authorizer = event["requestContext"].get("authorizer")
    return authorizer if isinstance(authorizer, Mapping) else {}


def end_user_token(event: Mapping[str, Any]) -> Answer:
    jwt_context = _authorizer(event).get("jwt")
    claims = jwt_context.get("claims") if isinstance(jwt_context, Mapping) else None
    return _token_response(minter.for_claims(claims if isinstance(claims, Mapping) else None, route=END_USER_ROUTE))


def server_token(event: Mapping[str, Any]) -> Answer:
    # API Gateway lets only SigV4-signed callers with execute-api:Invoke reach this route;
    # refuse an event without that proof, in case the route is ever wired without AWS_IAM.
    iam = _authorizer(event).get("iam")
    if not isinstance(iam, Mapping):
        raise Unauthenticated("this route needs an IAM-signed (SigV4) request")
    body = event.get("body")
    if event.get("isBase64Encoded") and body:
        try:
            body = base64.b64decode(body.encode()).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError and UnicodeEncodeError are ValueErrors
            raise InvalidRequest("the body is marked base64 but is not base64-encoded UTF-8 text") from None
    return _token_response(minter.for_body(body, route=SERVER_ROUTE, caller_arn=iam.get("userArn")))


ROUTES: dict[tuple[str, str], Callable[[Mapping[str, Any]], Answer]] = {
    ("POST", END_USER_ROUTE): end_user_token,
    ("POST", SERVER_ROUTE): server_token,
}


def error_response(error: TokenServiceError) -> Answer:
    """Every refusal as the contract's JSON error."""
    if error.status >= 500:
        logger.warning("request refused", extra={"error": error.code})
    else:
        logger.info("request refused", extra={"error": error.code, "status": error.status})
    return _json_response(error.status, {"error": error.code, "message": error.message}, error.headers)


def route_not_found(path: str) -> Answer:
    allowed = ROUTE_METHODS.get(path)
    if allowed:
        return error_response(MethodNotAllowed(f"use {' or '.join(allowed)} on this route", allowed))
    return error_response(NotFound("no such route: the API has POST /token and POST /server/token"))


def route_path(event: Mapping[str, Any]) -> str:
    """The path to route on: the route API Gateway matched, not the raw path.

    Behind a custom domain's base-path mapping rawPath carries the mapping's prefix
    (/chat/token); routeKey ("POST /token") is always the route itself. A "$default" route or a
    hand-made event routes on rawPath, less "/<stage>" on a named stage, as the resolver did.
    """
    _, _, matched = str(event.get("routeKey", "")).partition(" ")
    if matched.startswith("/"):
        return matched
    raw_path: str = event["rawPath"]
    stage: str = event["requestContext"]["stage"]
    return raw_path if stage == "$default" else raw_path[len(stage) + 1 :]


def resolve(event: Mapping[str, Any]) -> Answer:
    """The route's answer; a refusal or an unexpected error as the contract's JSON error."""
    path = route_path(event)
    method = event["requestContext"]["http"]["method"].upper()
    # The resolver matched "^/token$", which also takes one trailing newline.
    route = ROUTES.get((method, path[:-1] if path.endswith("\n") else path))
    try:
        return route(event) if route else route_not_found(path)
    except TokenServiceError as error:
        return error_response(error)
    except Exception:
        logger.exception("unexpected error")
        return error_response(InternalError("something went wrong on our side; try again later"))


def request_id(event: object) -> Any:
    """API Gateway's request id, the log lines' correlation_id: what Powertools' correlation path
    `requestContext.requestId` finds (None where there is none), read without a JMESPath search per request."""
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    return request_context.get("requestId") if isinstance(request_context, dict) else None


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Answer:
    logger.set_correlation_id(request_id(event))
    problem = http_event_problem(event)
    if problem:
        refusal = error_response(InvalidRequest(f"not an API Gateway HTTP API payload 2.0 event: {problem}"))
        return {
            "statusCode": refusal["statusCode"],
            "headers": {"Content-Type": "application/json", **refusal["headers"]},
            "body": refusal["body"],
            "isBase64Encoded": False,
        }
    return resolve(event)
