"""What CloudFormation really gets: template.yaml after the SAM transform (the pinned SAM CLI's samtranslator).

template.yaml is not what API Gateway sees: `sam deploy` hands it to CloudFormation's
AWS::Serverless transform, which writes the OpenAPI body of the HTTP API, its stage, the
Lambda permissions... These tests read that output, with the intrinsics CloudFormation
evaluates at deploy time evaluated here for realistic parameter values.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tools.harness.template import CloudFormationValues, load_template
from tools.sam_transform import translated_template

PARAMETERS = {
    "KustomerOrg": "example-shop",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "1example23456789abcdefghij,2example98765432zyxwvutsr",
    "AllowedOrigins": "https://shop.example.com,https://www.example.com",
}
ORIGIN_PATTERN = re.compile(load_template()["Parameters"]["AllowedOrigins"]["AllowedPattern"])


def _deployed(parameters: dict[str, str]) -> tuple[dict[str, Any], CloudFormationValues]:
    template = translated_template(parameters)
    return template["Resources"], CloudFormationValues(template, parameters)


def _body(parameters: dict[str, str] = PARAMETERS) -> dict[str, Any]:
    """The TokenApi's OpenAPI body as API Gateway imports it (intrinsics evaluated, integration URIs kept)."""
    resources, values = _deployed(parameters)
    body = resources["TokenApi"]["Properties"]["Body"]
    evaluated: dict[str, Any] = values.resolve({key: item for key, item in body.items() if key != "paths"})
    evaluated["paths"] = {
        path: {
            method: {**operation, "security": values.resolve(operation.get("security", []))}
            for method, operation in item.items()
        }
        for path, item in body["paths"].items()
    }
    return evaluated


def test_the_http_api_gets_the_whole_cors_configuration() -> None:
    # Given realistic parameters with two origins
    # When the template is transformed and deployed
    cors = _body()["x-amazon-apigateway-cors"]
    # Then API Gateway gets the origins exactly as configured, and the methods, headers, exposed header and max age
    assert cors == {
        "allowOrigins": ["https://shop.example.com", "https://www.example.com"],
        "allowMethods": ["POST", "OPTIONS"],
        "allowHeaders": ["authorization", "content-type"],
        "exposeHeaders": ["retry-after"],
        "maxAge": 600,
    }


def test_one_origin_is_a_list_of_one() -> None:
    cors = _body({**PARAMETERS, "AllowedOrigins": "https://shop.example.com"})["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == ["https://shop.example.com"]


def test_the_api_has_exactly_two_routes_each_with_its_authorizer() -> None:
    # Given the default parameters (no authorization scopes)
    paths = _body()["paths"]
    # Then only POST /token (JWT authorizer, no scopes) and POST /server/token (IAM) exist
    assert {(path, method) for path, item in paths.items() for method in item} == {
        ("/token", "post"),
        ("/server/token", "post"),
    }
    assert paths["/token"]["post"]["security"] == [{"VisitorJwt": []}]
    assert paths["/server/token"]["post"]["security"] == [{"AWS_IAM": []}]


def test_both_routes_invoke_the_mint_alias_with_payload_2() -> None:
    resources, _ = _deployed(PARAMETERS)
    aliases = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"]
    assert aliases == ["MintTokenFunctionAliaslive"]
    assert resources["MintTokenFunctionAliaslive"]["Properties"]["FunctionName"] == {"Ref": "MintTokenFunction"}
    for item in resources["TokenApi"]["Properties"]["Body"]["paths"].values():
        integration = item["post"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert integration["payloadFormatVersion"] == "2.0"
        assert integration["uri"] == {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
            "${MintTokenFunctionAliaslive}/invocations"
        }


def test_the_jwt_authorizer_checks_the_issuer_and_the_audiences() -> None:
    schemes = _body()["components"]["securitySchemes"]
    assert set(schemes) == {"VisitorJwt", "AWS_IAM"}
    assert schemes["VisitorJwt"]["x-amazon-apigateway-authorizer"] == {
        "type": "jwt",
        "identitySource": "$request.header.Authorization",
        "jwtConfiguration": {
            "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
            "audience": ["1example23456789abcdefghij", "2example98765432zyxwvutsr"],
        },
    }
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_authorization_scopes_are_required_on_post_token_when_set() -> None:
    # Given two scopes
    paths = _body({**PARAMETERS, "AuthorizationScopes": "https://api.example.com/chat.token,chat/login"})["paths"]
    # Then POST /token needs one of them and POST /server/token stays IAM-only
    assert paths["/token"]["post"]["security"] == [{"VisitorJwt": ["https://api.example.com/chat.token", "chat/login"]}]
    assert paths["/server/token"]["post"]["security"] == [{"AWS_IAM": []}]


def test_api_gateway_may_invoke_the_mint_only_from_this_apis_two_routes() -> None:
    resources, _ = _deployed(PARAMETERS)
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    from_api_gateway = [p for p in permissions if p["Principal"] == "apigateway.amazonaws.com"]
    assert len(from_api_gateway) == 2
    routes = set()
    for permission in from_api_gateway:
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["FunctionName"] == {"Ref": "MintTokenFunctionAliaslive"}
        source_arn, variables = permission["SourceArn"]["Fn::Sub"]
        assert variables == {"__ApiId__": {"Ref": "TokenApi"}, "__Stage__": "*"}
        prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/${__Stage__}/"
        assert source_arn.startswith(prefix)
        routes.add(source_arn.removeprefix(prefix))
    assert routes == {"POST/token", "POST/server/token"}


def test_the_api_fails_on_openapi_import_warnings() -> None:
    resources, _ = _deployed(PARAMETERS)
    apis = {name: r for name, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Api"}
    assert list(apis) == ["TokenApi"]
    assert apis["TokenApi"]["Properties"]["FailOnWarnings"] is True
    assert "BodyS3Location" not in apis["TokenApi"]["Properties"]


def test_the_access_log_is_json_with_the_iam_caller_and_no_claims_headers_or_bodies() -> None:
    resources, _ = _deployed(PARAMETERS)
    stages = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert len(stages) == 1
    settings = stages[0]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["TokenApiAccessLogGroup", "Arn"]}
    record = json.loads(settings["Format"])
    assert record["callerArn"] == "$context.identity.userArn"
    assert all(re.fullmatch(r"\$context\.[A-Za-z.]+", value) for value in record.values()), record
    variables = " ".join(record.values())
    for forbidden in ("$context.authorizer.claims", "$context.identity.caller", "$request", "$input", "header"):
        assert forbidden not in variables


@pytest.mark.parametrize(
    "origins",
    [
        "https://shop.example.com",
        "https://shop.example.com,https://www.example.com",
        "https://shop.example.com:8443",
        "https://xn--bcher-kva.example",
        "http://localhost",
        "http://localhost:5173",
        "http://127.0.0.1",
        "http://127.0.0.1:8080,https://shop.example.com",
    ],
)
def test_allowed_origins_accepts_https_origins_and_loopback_http(origins: str) -> None:
    assert ORIGIN_PATTERN.fullmatch(origins)


@pytest.mark.parametrize(
    "origins",
    [
        "",
        "*",
        "https://*.example.com",
        "https://shop.example.com,*",
        "http://shop.example.com",
        "https://shop.example.com/",
        "https://shop.example.com/path",
        "https://shop.example.com, https://www.example.com",
        " https://shop.example.com",
        "https://shop.example.com,",
        "https://Shop.Example.com",
        "https://user@shop.example.com",
        "https://shop.example.com?x=1",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://localhost:",
        "http://localhost:80a",
        "http://192.168.1.10",
        "ftp://shop.example.com",
        "https://-shop.example.com",
        "https://shop..example.com",
    ],
)
def test_allowed_origins_refuses_anything_else(origins: str) -> None:
    assert not ORIGIN_PATTERN.fullmatch(origins)


SCOPES_PATTERN = re.compile(load_template()["Parameters"]["AuthorizationScopes"]["AllowedPattern"])


@pytest.mark.parametrize(
    "scopes", ["", "chat/login", "https://api.example.com/chat.token,chat/login", "aws.cognito.signin.user.admin"]
)
def test_authorization_scopes_accepts_scope_tokens_comma_separated(scopes: str) -> None:
    assert SCOPES_PATTERN.fullmatch(scopes)


@pytest.mark.parametrize("scopes", ["chat login", "chat/login,", ",chat/login", "a,,b", 'say"hi', "back\\slash", " a"])
def test_authorization_scopes_refuses_what_is_not_a_scope_token(scopes: str) -> None:
    assert not SCOPES_PATTERN.fullmatch(scopes)


def test_without_scopes_the_security_requirement_is_an_empty_list_not_an_empty_scope() -> None:
    # Given AuthorizationScopes left empty, explicitly
    security = _body({**PARAMETERS, "AuthorizationScopes": ""})["paths"]["/token"]["post"]["security"]
    # Then no scope is required (a [""] here would require a scope named "")
    assert security == [{"VisitorJwt": []}]
