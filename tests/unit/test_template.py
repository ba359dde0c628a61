"""template.yaml, read as CloudFormation reads it: least privilege, authorizers, CORS, throttling, retention, KMS."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.template import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]


def _statements(role: str) -> list[dict[str, Any]]:
    """The role's statements, with conditional ones (Fn::If [cond, statement, NoValue]) unwrapped."""
    found = []
    for policy in RESOURCES[role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            found.append(statement)
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _all_statements() -> list[tuple[str, dict[str, Any]]]:
    return [(name, s) for name, r in RESOURCES.items() if r["Type"] == "AWS::IAM::Role" for s in _statements(name)]


def _grants(role: str) -> set[tuple[str, str]]:
    """(action, resource) pairs, resources named by their logical id."""
    pairs = set()
    for statement in _statements(role):
        resource = statement["Resource"]
        if isinstance(resource, dict):
            resource = resource.get("Ref") or resource.get("Fn::GetAtt", ["?"])[0]
        for action in _actions(statement):
            pairs.add((action, resource))
    return pairs


LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY = {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}


def test_the_mint_can_only_read_the_signing_secret() -> None:
    grants = _grants("MintTokenFunctionRole")
    secrets = {(a, r) for a, r in grants if a.startswith("secretsmanager:")}
    assert secrets == {("secretsmanager:GetSecretValue", "SigningSecret")}
    assert grants - secrets == {*((a, "MintTokenLogGroup") for a in LOGS), ("kms:Decrypt", "SecretsKmsKeyArn"), *XRAY}


def test_the_refresher_can_only_do_its_four_things_on_its_two_secrets() -> None:
    grants = _grants("RefreshSecretFunctionRole")
    secrets = {(a, r) for a, r in grants if a.startswith("secretsmanager:")}
    assert secrets == {
        ("secretsmanager:GetSecretValue", "ApiKeySecret"),
        ("secretsmanager:DescribeSecret", "SigningSecret"),
        ("secretsmanager:GetSecretValue", "SigningSecret"),
        ("secretsmanager:PutSecretValue", "SigningSecret"),
        ("secretsmanager:UpdateSecretVersionStage", "SigningSecret"),
    }
    assert grants - secrets == {
        *((a, "RefreshSecretLogGroup") for a in LOGS),
        ("sqs:SendMessage", "RefreshDeadLetterQueue"),
        ("kms:Decrypt", "SecretsKmsKeyArn"),
        ("kms:GenerateDataKey", "SecretsKmsKeyArn"),
        *XRAY,
    }


def test_no_wildcard_action_or_resource_except_x_rays_own() -> None:
    for role, statement in _all_statements():
        for action in _actions(statement):
            assert "*" not in action, (role, action)
        if statement["Resource"] == "*":
            # X-Ray has no resource-level permissions; these are present only with TracingMode=Active.
            assert set(_actions(statement)) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, role
        else:
            assert "*" not in str(statement["Resource"]), (role, statement["Resource"])


def test_kms_use_is_only_through_secrets_manager() -> None:
    for role, statement in _all_statements():
        if any(action.startswith("kms:") for action in _actions(statement)):
            service = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert service == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}, role


def test_functions_use_these_roles_and_no_generated_ones() -> None:
    for function in ("MintTokenFunction", "RefreshSecretFunction"):
        properties = RESOURCES[function]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [f"{function}Role", "Arn"]}
        assert "Policies" not in properties


def test_every_route_has_an_authorizer() -> None:
    api = RESOURCES["TokenApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "VisitorJwt"
    assert api["Auth"]["EnableIamAuthorizer"] is True
    jwt_config = api["Auth"]["Authorizers"]["VisitorJwt"]["JwtConfiguration"]
    assert jwt_config["issuer"] == {"Ref": "JwtIssuer"}
    routes = {}
    for resource in RESOURCES.values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "HttpApi":
                authorizer = event["Properties"].get("Auth", {}).get("Authorizer", "VisitorJwt")
                routes[(event["Properties"].get("Method"), event["Properties"].get("Path"))] = authorizer
    assert routes == {("POST", "/token"): "VisitorJwt", ("POST", "/server/token"): "AWS_IAM"}
    assert "NONE" not in routes.values()


@pytest.mark.parametrize(
    "origins", ["*", "https://*.example.com", "https://a.example.com,*", "https://a.example.com/", " https://a.com"]
)
def test_cors_origins_can_never_be_a_wildcard(origins: str) -> None:
    assert not re.fullmatch(PARAMETERS["AllowedOrigins"]["AllowedPattern"], origins)


def test_throttling_is_set() -> None:
    settings = RESOURCES["TokenApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
    }


def test_every_log_group_has_retention_and_every_function_uses_its_own() -> None:
    groups = [name for name, r in RESOURCES.items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert sorted(groups) == ["MintTokenLogGroup", "RefreshSecretLogGroup", "TokenApiAccessLogGroup"]
    for name in groups:
        assert RESOURCES[name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    for function in ("MintTokenFunction", "RefreshSecretFunction"):
        log_group = RESOURCES[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_group in groups


def test_secrets_can_use_a_customer_managed_key_and_hold_no_value_in_the_template() -> None:
    for name in ("SigningSecret", "ApiKeySecret"):
        properties = RESOURCES[name]["Properties"]
        assert properties["KmsKeyId"] == {"Fn::If": ["HasKmsKey", {"Ref": "SecretsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
        assert "SecretString" not in properties
        assert "GenerateSecretString" not in properties


def test_no_secret_value_in_parameters_outputs_or_environment() -> None:
    text = str(TEMPLATE["Outputs"]) + str(PARAMETERS) + str(TEMPLATE["Globals"])
    for name in ("MintTokenFunction", "RefreshSecretFunction"):
        text += str(RESOURCES[name]["Properties"]["Environment"])
    assert "SecretString" not in text
    assert not [p for p in PARAMETERS if re.search(r"(?i)(api.?key|signing.?secret)$", p)]


def test_every_parameter_is_documented() -> None:
    for name, parameter in PARAMETERS.items():
        assert len(parameter.get("Description", "")) > 20, name
