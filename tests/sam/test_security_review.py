"""The second security review's template findings (issue 21), read from the template after the SAM transform.

Who may read which secret, which back ends CloudFormation lets the operator name, and whose
schedules may use the scheduler's role. docs/security.md tells each finding with these tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cloudformation import unresolved_dependencies
from tools.harness.iam import Caller, RoleCheck, role_arn
from tools.harness.template import ACCOUNT_ID, load_template
from tools.sam_transform import translated_template

PARAMETERS = {
    "KustomerOrg": "example-shop",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "1example23456789abcdefghij",
    "AllowedOrigins": "https://shop.example.com",
}
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:"
SIGNING, API_KEY = SECRET_ARN + "kct/SigningSecret-AbCdEf", SECRET_ARN + "kct/ApiKeySecret-GhIjKl"
GET = "secretsmanager:GetSecretValue"
DEBUGGER, KEY_KEEPER = Caller("DebuggerRole"), Caller("KeyKeeperRole")
CHECK_RESOURCE = "ServerTokenCallersMustBeAtMostTenRolesOrUsersOfThisAccount"


def _readers_check(**parameters: str) -> RoleCheck:
    """template.yaml plus two roles allowed to read every secret by their own policy."""
    template = load_template()
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": GET, "Resource": "*"}]}
    for name in ("DebuggerRole", "KeyKeeperRole"):
        template["Resources"][name] = {
            "Type": "AWS::IAM::Role",
            "Properties": {"Policies": [{"PolicyName": "read", "PolicyDocument": document}]},
        }
    return RoleCheck(template, parameters=parameters, secrets={"SigningSecret": SIGNING, "ApiKeySecret": API_KEY})


def test_a_signing_secret_reader_cannot_read_the_api_key() -> None:
    # Given a debugging role listed in SecretReaderArns, as the signing secret's runbook suggests
    check = _readers_check(SecretReaderArns=role_arn("DebuggerRole"))
    # Then it reads the signing secret, and the org.admin API key stays denied to it by the key's resource policy
    assert check.decide(DEBUGGER, GET, SIGNING).allowed
    assert check.decide(DEBUGGER, GET, API_KEY).message.endswith("with an explicit deny in a resource-based policy")


def test_api_key_readers_have_their_own_list() -> None:
    # Given one role listed for the signing secret and another for the API key
    check = _readers_check(SecretReaderArns=role_arn("DebuggerRole"), ApiKeySecretReaderArns=role_arn("KeyKeeperRole"))
    # Then each reads its own secret only, and the functions keep exactly their own reads
    assert [check.decide(KEY_KEEPER, GET, secret).allowed for secret in (SIGNING, API_KEY)] == [False, True]
    assert [check.decide(DEBUGGER, GET, secret).allowed for secret in (SIGNING, API_KEY)] == [True, False]
    assert check.decide(Caller("RefreshSecretFunctionRole"), GET, API_KEY).allowed
    assert not check.decide(Caller("MintTokenFunctionRole"), GET, API_KEY).allowed


def _unresolved_dependencies(server_token_callers: str) -> list[str]:
    """What CloudFormation's change set refuses as "Unresolved resource dependencies [...]" for this value."""
    parameters = {**PARAMETERS, "ServerTokenCallers": server_token_callers}
    return unresolved_dependencies(translated_template(parameters), parameters)


def _arns(*accounts: str, kind: str = "role") -> str:
    return ",".join(f"arn:aws:iam::{account}:{kind}/backend-{n}" for n, account in enumerate(accounts))


@pytest.mark.parametrize(
    "callers",
    [
        "",
        _arns(ACCOUNT_ID),
        _arns(ACCOUNT_ID, kind="user"),
        f"arn:aws:iam::{ACCOUNT_ID}:role/service/team/checkout",
        _arns(*[ACCOUNT_ID] * 10),
    ],
    ids=["empty", "one-role", "one-user", "role-with-path", "ten"],
)
def test_this_accounts_roles_and_users_deploy(callers: str) -> None:
    assert _unresolved_dependencies(callers) == []


@pytest.mark.parametrize(
    "callers",
    [
        _arns("210987654321"),
        _arns(ACCOUNT_ID, "210987654321"),
        _arns(*[ACCOUNT_ID] * 9, "210987654321"),
        _arns(*[ACCOUNT_ID] * 11),
        _arns(*[ACCOUNT_ID] * 10, "210987654321"),
    ],
    ids=["other-account", "second-of-two", "tenth", "eleven", "eleventh-other-account"],
)
def test_another_accounts_principal_or_an_eleventh_is_refused_before_anything_changes(callers: str) -> None:
    # The change set fails naming the rule; HTTP API IAM authorization could never admit such a caller.
    assert _unresolved_dependencies(callers) == [CHECK_RESOURCE]


def _role_of_schedule(resources: dict[str, Any]) -> dict[str, Any]:
    (schedule,) = [spec for spec in resources.values() if spec["Type"] == "AWS::Scheduler::Schedule"]
    role_ref = schedule["Properties"]["Target"]["RoleArn"]
    assert role_ref == {"Fn::GetAtt": ["RefreshScheduleRole", "Arn"]}
    role: dict[str, Any] = resources["RefreshScheduleRole"]
    return role


def test_only_this_accounts_schedules_may_use_the_schedulers_role() -> None:
    resources = translated_template(PARAMETERS)["Resources"]
    trust = _role_of_schedule(resources)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": {"Ref": "AWS::AccountId"},
                    "aws:SourceArn": {"Fn::GetAtt": ["RefreshScheduleGroup", "Arn"]},
                }
            },
        }
    ]


def test_the_schedulers_role_may_invoke_the_refresher_and_fill_its_queue_only() -> None:
    resources = translated_template(PARAMETERS)["Resources"]
    policies = _role_of_schedule(resources)["Properties"]["Policies"]
    statements = [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Fn::GetAtt": ["RefreshSecretFunction", "Arn"]},
        },
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["RefreshDeadLetterQueue", "Arn"]}},
    ]
