"""Safeguards of the review (issue: correct on AWS), read from what CloudFormation gets after the SAM transform."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kustomer_token.settings import ConfigurationError, MintSettings, RefreshSettings
from tools.harness.template import CloudFormationValues
from tools.sam_transform import translated_template

PARAMETERS = {
    "KustomerOrg": "example-shop",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "1example23456789abcdefghij",
    "AllowedOrigins": "https://shop.example.com",
    "ServerTokenCallers": "arn:aws:iam::123456789012:role/service/checkout,arn:aws:iam::123456789012:user/ci",
}


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return translated_template(PARAMETERS)


def test_the_api_key_secret_outlives_the_stack(deployed: dict[str, Any]) -> None:
    # The key stays valid at Kustomer after a delete: CloudFormation must not destroy it without a recovery window
    # (a first deploy that rolls back holds no key yet, so that one may delete it).
    secret = deployed["Resources"]["ApiKeySecret"]
    assert (secret.get("DeletionPolicy"), secret.get("UpdateReplacePolicy")) == ("RetainExceptOnCreate", "Retain")


def test_nothing_can_throttle_a_rotation_step_but_the_account_and_an_alarm_watches_that(
    deployed: dict[str, Any],
) -> None:
    resources = deployed["Resources"]
    refresher = resources["RefreshSecretFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in refresher
    refresher_dimension = {"Name": "FunctionName", "Value": {"Ref": "RefreshSecretFunction"}}
    throttles = [
        alarm["Properties"]
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        and alarm["Properties"].get("MetricName") == "Throttles"
        and refresher_dimension in alarm["Properties"].get("Dimensions", [])
    ]
    assert [(a["Namespace"], a["Dimensions"]) for a in throttles] == [
        ("AWS/Lambda", [{"Name": "FunctionName", "Value": {"Ref": "RefreshSecretFunction"}}])
    ]
    assert throttles[0]["Threshold"] == 1


def test_the_mint_gets_the_server_callers_as_deployed(deployed: dict[str, Any]) -> None:
    values = CloudFormationValues(deployed, PARAMETERS)
    environment = values.resolve(
        {
            name: value
            for name, value in deployed["Resources"]["MintTokenFunction"]["Properties"]["Environment"][
                "Variables"
            ].items()
            if name != "SIGNING_SECRET_ID"  # a resource, known once deployed
        }
    )
    settings = MintSettings.from_env({**environment, "SIGNING_SECRET_ID": "s"})
    assert settings.server_token_callers == (
        "arn:aws:iam::123456789012:role/service/checkout",
        "arn:aws:iam::123456789012:user/ci",
    )
    assert settings.email_verified_claim == "email_verified"


def test_by_default_the_server_route_has_no_callers(deployed: dict[str, Any]) -> None:
    defaults = {name: value for name, value in PARAMETERS.items() if name != "ServerTokenCallers"}
    variables = translated_template(defaults)["Resources"]["MintTokenFunction"]["Properties"]["Environment"]
    environment = CloudFormationValues(deployed, defaults).resolve(variables["Variables"]["SERVER_TOKEN_CALLERS"])
    assert environment == ""
    assert (
        MintSettings.from_env({"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": environment}).server_token_callers
        == ()
    )


CALLER_EXAMPLES = [
    "arn:aws:iam::123456789012:role/checkout",
    "arn:aws:iam::123456789012:role/a/b/checkout",
    "arn:aws:iam::123456789012:user/ci",
    "arn:aws-cn:iam::123456789012:role/x",
    "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:user/b",
    "arn:aws:iam::123456789012:role/*",
    "arn:aws:iam::123456789012:role/",
    "arn:aws:sts::123456789012:assumed-role/r/s",
    "arn:aws:iam::12345678901:role/x",
    "arn:aws:iam::123456789012:group/x",
    "arn:aws:iam::123456789012:role/a, arn:aws:iam::123456789012:role/b",
    "arn:aws:iam::123456789012:role/a,",
    "*",
]


@pytest.mark.parametrize("value", CALLER_EXAMPLES)
def test_the_parameter_and_the_function_agree_on_server_callers(deployed: dict[str, Any], value: str) -> None:
    # What CloudFormation accepts for ServerTokenCallers is exactly what the mint accepts at start.
    pattern = deployed["Parameters"]["ServerTokenCallers"]["AllowedPattern"]
    accepted_by_template = re.fullmatch(pattern, value) is not None
    try:
        MintSettings.from_env({"SIGNING_SECRET_ID": "s", "SERVER_TOKEN_CALLERS": value})
        accepted_by_function = True
    except ConfigurationError:
        accepted_by_function = False
    assert accepted_by_template == accepted_by_function


@pytest.mark.parametrize(
    ("base_url", "opt_in", "starts"),
    [
        ("", "false", True),
        ("https://api.prod2.kustomerapp.com", "false", True),
        ("https://egress-proxy.example.com", "false", False),
        ("https://egress-proxy.example.com", "true", True),
    ],
    ids=["default-pod", "other-pod", "other-host", "other-host-opted-in"],
)
def test_the_refresher_sends_the_api_key_outside_kustomer_only_when_the_operator_opts_in(
    base_url: str, opt_in: str, starts: bool
) -> None:
    # Given the stack deployed with these parameters
    parameters = {**PARAMETERS, "KustomerApiBaseUrl": base_url, "AllowNonKustomerApiHost": opt_in}
    template = translated_template(parameters)
    variables = template["Resources"]["RefreshSecretFunction"]["Properties"]["Environment"]["Variables"]
    environment = CloudFormationValues(template, parameters).resolve(
        {name: value for name, value in variables.items() if not name.endswith("_SECRET_ID")}
    )
    secret_ids = {"SIGNING_SECRET_ID": "s", "API_KEY_SECRET_ID": "a"}
    # When the refresher starts with the environment CloudFormation gives it
    # Then it starts only for a Kustomer host, or another host the operator opted in to
    if starts:
        assert RefreshSettings.from_env({**environment, **secret_ids}).kustomer_api_base_url
    else:
        with pytest.raises(ConfigurationError, match="AllowNonKustomerApiHost"):
            RefreshSettings.from_env({**environment, **secret_ids})
