"""PermissionsBoundaryArn: every IAM role the stack creates gets the boundary, including the ones SAM generates."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.project import REQUIRED_PARAMETERS
from tools.harness.iam import RoleCheck, UnsupportedPolicy
from tools.harness.template import CloudFormationValues, load_template
from tools.sam_transform import translated_template

BOUNDARY = "arn:aws:iam::123456789012:policy/boundaries/OrgBoundary"
PATTERN = re.compile(load_template()["Parameters"]["PermissionsBoundaryArn"]["AllowedPattern"])


def _boundaries(parameters: dict[str, str]) -> dict[str, Any]:
    """Each AWS::IAM::Role's PermissionsBoundary as CloudFormation resolves it (None when it has none)."""
    template = translated_template(parameters)
    values = CloudFormationValues(template, parameters)
    boundaries = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            properties = values.resolve({"PermissionsBoundary": resource["Properties"].get("PermissionsBoundary")})
            boundaries[name] = properties.get("PermissionsBoundary")
    return boundaries


@pytest.mark.parametrize("tracing", ["Active", "PassThrough"])
def test_with_a_boundary_every_role_has_it(tracing: str) -> None:
    # Given a deployer whose organisation requires a permissions boundary
    parameters = {**REQUIRED_PARAMETERS, "PermissionsBoundaryArn": BOUNDARY, "TracingMode": tracing}
    # When the stack is created
    boundaries = _boundaries(parameters)
    # Then every role, the functions' and the one SAM makes for the scheduler, carries exactly that boundary
    assert {"MintTokenFunctionRole", "RefreshSecretFunctionRole", "RefreshScheduleRole"} <= set(boundaries)
    assert boundaries == dict.fromkeys(boundaries, BOUNDARY)


def test_without_a_boundary_no_role_has_one() -> None:
    # Given the default, an empty PermissionsBoundaryArn
    # When the stack is created
    boundaries = _boundaries(REQUIRED_PARAMETERS)
    # Then no role has a PermissionsBoundary property at all
    assert len(boundaries) >= 3
    assert boundaries == dict.fromkeys(boundaries, None)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "arn:aws:iam::123456789012:policy/OrgBoundary",
        "arn:aws:iam::123456789012:policy/boundaries/team-a/Boundary_v2",
        "arn:aws-us-gov:iam::123456789012:policy/OrgBoundary",
        "arn:aws:iam::aws:policy/PowerUserAccess",
    ],
)
def test_the_parameter_accepts_managed_policy_arns(value: str) -> None:
    assert PATTERN.fullmatch(value)


@pytest.mark.parametrize(
    "value",
    [
        "OrgBoundary",
        "arn:aws:iam::123456789012:role/OrgBoundary",
        "arn:aws:iam::123456789012:policy/OrgBoundary ",
        "arn:aws:iam::123456789012:policy/A arn:aws:iam::123456789012:policy/B",
        "arn:aws:iam::12345:policy/OrgBoundary",
    ],
)
def test_the_parameter_refuses_what_is_not_a_managed_policy_arn(value: str) -> None:
    assert not PATTERN.fullmatch(value)


def test_the_tests_role_check_evaluates_the_roles_without_a_boundary() -> None:
    # Given the role check the tests put in front of the local Secrets Manager, with the default parameters
    # When it reads template.yaml
    check = RoleCheck()
    # Then it accepts the roles (their boundary resolves to none) and evaluates them
    assert {"MintTokenFunctionRole", "RefreshSecretFunctionRole"} <= set(check.roles)


def test_the_tests_role_check_refuses_a_boundary_it_cannot_evaluate() -> None:
    # Given a boundary, whose policy lives outside the template
    # When the role check reads the template with it
    # Then it refuses loudly rather than allow what the boundary might deny
    with pytest.raises(UnsupportedPolicy, match="permissions boundary"):
        RoleCheck(parameters={**REQUIRED_PARAMETERS, "PermissionsBoundaryArn": BOUNDARY})
