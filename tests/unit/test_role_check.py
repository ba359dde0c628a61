"""The role check itself: template.yaml's roles and resource policies evaluated as IAM evaluates them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tools.harness.iam import (
    ADMIN_ACCESS_KEY_ID,
    Caller,
    RoleCheck,
    UnknownCaller,
    UnsupportedPolicy,
    access_key_id,
    action_matches,
    arn_matches,
    role_arn,
    without_action,
)
from tools.harness.template import load_template

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
SIGNING = SECRET_ARN + "kct/SigningSecret-AbCdEf"
API_KEY = SECRET_ARN + "kct/ApiKeySecret-GhIjKl"
OTHER = SECRET_ARN + "something-else-MnOpQr"
MINT, REFRESHER, OPERATOR = Caller("MintTokenFunctionRole"), Caller("RefreshSecretFunctionRole"), Caller("OperatorRole")
GET, DESCRIBE, PUT = "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"
BOUND = {"SigningSecret": SIGNING, "ApiKeySecret": API_KEY}


def _check(template: dict[str, Any] | None = None, **parameters: str) -> RoleCheck:
    return RoleCheck(template, parameters=parameters, secrets=BOUND)


def _with_role(statements: list[dict[str, Any]], name: str = "OperatorRole") -> dict[str, Any]:
    """The repository's template plus one role with these identity statements."""
    template = copy.deepcopy(load_template())
    document = {"Version": "2012-10-17", "Statement": statements}
    template["Resources"][name] = {
        "Type": "AWS::IAM::Role",
        "Properties": {"Policies": [{"PolicyName": "operator", "PolicyDocument": document}]},
    }
    return template


def test_a_granted_pair_is_allowed() -> None:
    assert _check().decide(REFRESHER, GET, API_KEY).allowed
    assert _check().decide(REFRESHER, "secretsmanager:UpdateSecretVersionStage", SIGNING).allowed
    assert _check().decide(MINT, GET, SIGNING).allowed


def test_an_action_the_role_lacks_is_denied_with_awss_message() -> None:
    decision = _check().decide(REFRESHER, DESCRIBE, API_KEY)
    assert not decision.allowed
    assert decision.message == (
        "User: arn:aws:sts::123456789012:assumed-role/RefreshSecretFunctionRole/RefreshSecretFunction is not "
        f"authorized to perform: secretsmanager:DescribeSecret on resource: {API_KEY} because no identity-based "
        "policy allows the secretsmanager:DescribeSecret action"
    )
    assert not _check().decide(MINT, PUT, SIGNING).allowed


def test_a_secret_the_role_is_not_granted_is_denied() -> None:
    assert not _check().decide(REFRESHER, GET, OTHER).allowed
    assert not _check().decide(MINT, DESCRIBE, API_KEY).allowed


def test_the_resource_policy_denies_reading_the_api_key_even_with_an_allow() -> None:
    # Given a role whose identity policy allows reading every secret
    check = _check(_with_role([{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]))
    # Then reading either secret is refused by the secret's own resource policy, but describing is not
    for secret in (SIGNING, API_KEY):
        decision = check.decide(OPERATOR, GET, secret)
        assert not decision.allowed
        assert decision.message.endswith("with an explicit deny in a resource-based policy")
        assert check.decide(OPERATOR, DESCRIBE, secret).allowed
    # And the mint may read the signing secret only
    assert check.decide(MINT, GET, SIGNING).allowed
    assert check.decide(MINT, GET, API_KEY).message.endswith("with an explicit deny in a resource-based policy")
    assert check.decide(OPERATOR, GET, OTHER).allowed


@pytest.mark.parametrize("readers", [role_arn("OperatorRole"), "arn:aws:iam::123456789012:role/Oper*"])
def test_secret_reader_arns_take_the_other_branch_of_the_resource_policy(readers: str) -> None:
    # Given the operator's role listed in both readers' lists (Fn::If true: Fn::Split of a Fn::Sub)
    check = _check(
        _with_role([{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]),
        SecretReaderArns=f"arn:aws:iam::123456789012:role/Auditor,{readers}",
        ApiKeySecretReaderArns=f"arn:aws:iam::123456789012:role/Auditor,{readers}",
    )
    # Then it may read both secrets, and the functions keep their own reads
    assert check.decide(OPERATOR, GET, SIGNING).allowed
    assert check.decide(OPERATOR, GET, API_KEY).allowed
    assert check.decide(REFRESHER, GET, API_KEY).allowed
    assert not check.decide(MINT, GET, API_KEY).allowed


def test_an_explicit_deny_in_the_identity_policy_wins_over_its_allow() -> None:
    check = _check(
        _with_role(
            [
                {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "secretsmanager:Put*", "Resource": {"Ref": "SigningSecret"}},
            ]
        )
    )
    decision = check.decide(OPERATOR, PUT, SIGNING)
    assert not decision.allowed
    assert decision.message.endswith("with an explicit deny in an identity-based policy")
    assert check.decide(OPERATOR, PUT, API_KEY).allowed


def test_wildcards_in_actions_and_resources() -> None:
    check = _check(
        _with_role(
            [
                {"Effect": "Allow", "Action": "SecretsManager:Describe*", "Resource": SECRET_ARN + "kct/*"},
                {"Effect": "Allow", "Action": "secretsmanager:?utSecretValue", "Resource": SECRET_ARN + "kct/Api*"},
            ]
        )
    )
    assert check.decide(OPERATOR, DESCRIBE, SIGNING).allowed
    assert not check.decide(OPERATOR, DESCRIBE, OTHER).allowed
    assert check.decide(OPERATOR, PUT, API_KEY).allowed
    assert not check.decide(OPERATOR, PUT, SIGNING).allowed
    assert not check.decide(OPERATOR, "secretsmanager:DeleteSecret", SIGNING).allowed


def test_matching_follows_iam() -> None:
    assert action_matches("secretsmanager:get*", GET)
    assert not action_matches("secretsmanager:Get", GET)
    assert arn_matches("arn:aws:iam::*:role/Mint*", role_arn("MintTokenFunctionRole"))
    # ArnLike compares the six colon-separated components one by one
    assert not arn_matches("arn:aws:iam::*", role_arn("MintTokenFunctionRole"))
    assert not arn_matches("arn:aws:iam::123456789012:role/mint*", role_arn("MintTokenFunctionRole"))
    assert arn_matches("*", "anything")


@pytest.mark.parametrize(("kms_key", "kms_statements"), [("", 0), ("arn:aws:kms:us-east-1:123456789012:key/k-1", 1)])
def test_fn_if_takes_either_branch_of_the_role_policy(kms_key: str, kms_statements: int) -> None:
    check = _check(SecretsKmsKeyArn=kms_key, TracingMode="PassThrough")
    statements = check.identity_statements("MintTokenFunctionRole")
    kms = [s for s in statements if "kms:Decrypt" in s.actions]
    assert len(kms) == kms_statements
    assert all(s.resources == (kms_key,) for s in kms)
    assert not [s for s in statements if "xray:PutTraceSegments" in s.actions]
    # A statement whose condition the check cannot evaluate is harmless while it does not match the request
    assert check.decide(MINT, GET, SIGNING).allowed


@pytest.mark.parametrize(
    ("statement", "complaint"),
    [
        ({"Effect": "Allow", "NotAction": "secretsmanager:DeleteSecret", "Resource": "*"}, "NotAction"),
        (
            {
                "Effect": "Allow",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:PrincipalArn": "*"}},
            },
            "StringLike",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "secretsmanager:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceIp": "10.0.0.1"}},
            },
            "aws:SourceIp",
        ),
        ({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*", "Principal": "*"}, "Principal"),
    ],
    ids=["not-action", "operator", "condition-key", "principal-in-identity-policy"],
)
def test_an_unsupported_construct_fails_loudly(statement: dict[str, Any], complaint: str) -> None:
    check = _check(_with_role([statement]))
    with pytest.raises(UnsupportedPolicy, match=complaint):
        check.decide(OPERATOR, DESCRIBE, SIGNING)


def test_managed_policies_are_refused_rather_than_ignored() -> None:
    template = _with_role([])
    template["Resources"]["OperatorRole"]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/Admin"]
    with pytest.raises(UnsupportedPolicy, match="ManagedPolicyArns"):
        RoleCheck(template)


def test_callers_are_known_by_their_access_key() -> None:
    check = _check()
    assert check.caller(ADMIN_ACCESS_KEY_ID) is None
    assert check.caller(access_key_id("MintTokenFunctionRole")) == MINT
    with pytest.raises(UnknownCaller):
        check.caller("AKIASOMEONEELSE")


def test_the_grants_are_the_pairs_the_template_names() -> None:
    assert _check().grants("RefreshSecretFunctionRole") == {
        (GET, API_KEY),
        (DESCRIBE, SIGNING),
        (GET, SIGNING),
        ("secretsmanager:ListSecretVersionIds", SIGNING),
        (PUT, SIGNING),
        ("secretsmanager:UpdateSecretVersionStage", SIGNING),
    }
    assert _check().grants("MintTokenFunctionRole") == {(GET, SIGNING)}
    with pytest.raises(UnsupportedPolicy, match="wildcard"):
        _check(_with_role([{"Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "*"}])).grants(
            "OperatorRole"
        )


def test_a_template_copy_without_one_action_denies_it() -> None:
    template = without_action(load_template(), "RefreshSecretFunctionRole", DESCRIBE, "SigningSecret")
    assert not _check(template).decide(REFRESHER, DESCRIBE, SIGNING).allowed
    assert _check(template).decide(REFRESHER, PUT, SIGNING).allowed
    with pytest.raises(ValueError, match="grants no"):
        without_action(load_template(), "MintTokenFunctionRole", PUT, "SigningSecret")
