"""Mint function: HTTP API routes only; the work is in the kustomer_token layer."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
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

# Fails at init, naming the setting, when the environment is wrong; reads the signing secret
# now, where Lambda gives full CPU (a failed read is retried on the first request).
minter = TokenMinter.from_settings(MintSettings.from_env())
app = APIGatewayHttpResolver()


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers={**NO_STORE_HEADERS, **(headers or {})},
    )


def _token_response(token: LoginToken) -> Response[str]:
    return _json_response(200, token.response_body())


def _authorizer() -> dict[str, Any]:
    request_context = app.current_event.raw_event.get("requestContext")
    authorizer = request_context.get("authorizer") if isinstance(request_context, dict) else None
    return authorizer if isinstance(authorizer, dict) else {}


@app.post(END_USER_ROUTE)
def end_user_token() -> Response[str]:
    jwt_context = _authorizer().get("jwt")
    claims = jwt_context.get("claims") if isinstance(jwt_context, dict) else None
    return _token_response(minter.for_claims(claims if isinstance(claims, dict) else None, route=END_USER_ROUTE))


@app.post(SERVER_ROUTE)
def server_token() -> Response[str]:
    # API Gateway lets only SigV4-signed callers with execute-api:Invoke reach this route;
    # refuse an event without that proof, in case the route is ever wired without AWS_IAM.
    iam = _authorizer().get("iam")
    if not isinstance(iam, dict):
        raise Unauthenticated("this route needs an IAM-signed (SigV4) request")
    event = app.current_event
    try:
        body = event.decoded_body if event.is_base64_encoded else event.body
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        raise InvalidRequest("the body is marked base64 but is not base64-encoded UTF-8 text") from None
    return _token_response(minter.for_body(body, route=SERVER_ROUTE, caller_arn=iam.get("userArn")))


def error_response(error: TokenServiceError) -> Response[str]:
    """Every refusal as the contract's JSON error."""
    if error.status >= 500:
        logger.warning("request refused", extra={"error": error.code})
    else:
        logger.info("request refused", extra={"error": error.code, "status": error.status})
    return _json_response(error.status, {"error": error.code, "message": error.message}, error.headers)


def route_not_found(_: NotFoundError) -> Response[str]:
    allowed = ROUTE_METHODS.get(app.current_event.path)
    if allowed:
        return error_response(MethodNotAllowed(f"use {' or '.join(allowed)} on this route", allowed))
    return error_response(NotFound("no such route: the API has POST /token and POST /server/token"))


def unexpected_error(_: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return error_response(InternalError("something went wrong on our side; try again later"))


def routed_by_route_key(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the resolver should route it: by the route API Gateway matched, not the raw path.

    Behind a custom domain's base-path mapping rawPath carries the mapping's prefix
    (/chat/token); routeKey ("POST /token") is always the route itself.
    """
    _, _, route_path = str(event.get("routeKey", "")).partition(" ")
    if not route_path.startswith("/"):  # "$default" or a hand-made event: route on the path as sent
        return event
    stage = event["requestContext"]["stage"]
    # The resolver strips "/<stage>" from rawPath on named stages, as execute-api URLs carry it.
    prefix = "" if stage == "$default" else f"/{stage}"
    return {**event, "rawPath": prefix + route_path}


app.not_found(route_not_found)
app.exception_handler(TokenServiceError)(error_response)
app.exception_handler(Exception)(unexpected_error)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    problem = http_event_problem(event)
    if problem:
        refusal = error_response(InvalidRequest(f"not an API Gateway HTTP API payload 2.0 event: {problem}"))
        return {
            "statusCode": refusal.status_code,
            "headers": {"Content-Type": "application/json", **refusal.headers},
            "body": refusal.body,
            "isBase64Encoded": False,
        }
    answer: dict[str, Any] = app.resolve(routed_by_route_key(event), context)
    return answer
