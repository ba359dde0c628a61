"""template.yaml: guards on what no test exercises, and what CloudFormation gets for given parameters.

Secrets Manager permissions are not listed here: every test runs each function under its role through
the role check, and tests/integration/test_least_privilege.py shows each grant is used and needed. Routes,
authorizers and CORS are read after the SAM transform in test_translated_template.py. What stays here
guards what no running test can see (logs, the queue, KMS, X-Ray; the secrets holding no value), named for it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tools.harness.template import CloudFormationValues, load_template
from tools.sam_transform import translated_template

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


def test_outside_secrets_manager_the_roles_grant_only_their_logs_queue_kms_and_xray_which_no_test_calls() -> None:
    # The role check sees Secrets Manager only; any other new grant must be added here knowingly.
    outside = {
        role: {(a, r) for a, r in _grants(role) if not a.startswith("secretsmanager:")}
        for role in ("MintTokenFunctionRole", "RefreshSecretFunctionRole")
    }
    assert outside == {
        "MintTokenFunctionRole": {
            *((a, "MintTokenLogGroup") for a in LOGS),
            ("kms:Decrypt", "SecretsKmsKeyArn"),
            *XRAY,
        },
        "RefreshSecretFunctionRole": {
            *((a, "RefreshSecretLogGroup") for a in LOGS),
            ("sqs:SendMessage", "RefreshDeadLetterQueue"),
            ("kms:Decrypt", "SecretsKmsKeyArn"),
            ("kms:GenerateDataKey", "SecretsKmsKeyArn"),
            *XRAY,
        },
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


def test_kms_is_usable_only_through_secrets_manager() -> None:
    for role, statement in _all_statements():
        if any(action.startswith("kms:") for action in _actions(statement)):
            service = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert service == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}, role


def test_functions_run_under_the_named_roles_the_role_check_evaluates_and_sam_generates_none() -> None:
    for function in ("MintTokenFunction", "RefreshSecretFunction"):
        properties = RESOURCES[function]["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [f"{function}Role", "Arn"]}
        assert "Policies" not in properties


def test_the_secrets_hold_no_value_in_the_template() -> None:
    for name in ("SigningSecret", "ApiKeySecret"):
        properties = RESOURCES[name]["Properties"]
        assert "SecretString" not in properties
        assert "GenerateSecretString" not in properties


def test_no_secret_value_in_parameters_outputs_or_environment() -> None:
    text = str(TEMPLATE["Outputs"]) + str(PARAMETERS) + str(TEMPLATE["Globals"])
    for name in ("MintTokenFunction", "RefreshSecretFunction"):
        text += str(RESOURCES[name]["Properties"]["Environment"])
    assert "SecretString" not in text
    assert not [p for p in PARAMETERS if re.search(r"(?i)(api.?key|signing.?secret)$", p)]


# --- what CloudFormation gets for given parameters (after the SAM transform) ---------------------------

DEPLOYED = {
    "KustomerOrg": "example-shop",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "1example23456789abcdefghij",
    "AllowedOrigins": "https://shop.example.com",
    "ThrottlingRateLimit": "7",
    "ThrottlingBurstLimit": "3",
    "LogRetentionDays": "30",
}
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _deployed(parameters: dict[str, str]) -> tuple[dict[str, Any], CloudFormationValues]:
    template = translated_template(parameters)
    return template["Resources"], CloudFormationValues(template, parameters)


def test_the_api_stage_throttles_at_the_rates_the_parameters_set() -> None:
    resources, values = _deployed(DEPLOYED)
    stages = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert len(stages) == 1
    settings = values.resolve(stages[0]["Properties"]["DefaultRouteSettings"])
    assert (str(settings["ThrottlingRateLimit"]), str(settings["ThrottlingBurstLimit"])) == ("7", "3")


def test_every_log_group_keeps_its_logs_as_long_as_the_parameter_says_and_each_function_logs_to_its_own() -> None:
    resources, values = _deployed(DEPLOYED)
    groups = {name for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert {"MintTokenLogGroup", "RefreshSecretLogGroup", "TokenApiAccessLogGroup"} <= groups
    for name in groups:
        assert str(values.resolve(resources[name]["Properties"]["RetentionInDays"])) == "30", name
    logged_to = [
        resources[f]["Properties"]["LoggingConfig"]["LogGroup"] for f in ("MintTokenFunction", "RefreshSecretFunction")
    ]
    assert logged_to == [{"Ref": "MintTokenLogGroup"}, {"Ref": "RefreshSecretLogGroup"}]


@pytest.mark.parametrize("kms_key", [KMS_KEY, ""], ids=["customer-key", "aws-managed-key"])
def test_both_secrets_use_the_customer_managed_key_when_one_is_given(kms_key: str) -> None:
    resources, values = _deployed({**DEPLOYED, "SecretsKmsKeyArn": kms_key})
    for name in ("SigningSecret", "ApiKeySecret"):
        properties = values.resolve(resources[name]["Properties"])
        assert properties.get("KmsKeyId") == (kms_key or None), name


def test_the_secrets_extension_adds_no_cache_of_its_own() -> None:
    # Given the mint's environment: the extension reads it when SecretsExtensionLayerArn is set
    variables = RESOURCES["MintTokenFunction"]["Properties"]["Environment"]["Variables"]
    # Then its cache is off, so a value is never older than SecretCacheTtlSeconds (not up to twice that)
    assert str(variables["SECRETS_MANAGER_TTL"]) == "0"
