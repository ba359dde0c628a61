"""Delete and deploy again: what `sam delete` leaves behind stays locked, and a new stack of the same name deploys.

CloudFormation deletes every resource of a stack but those with `DeletionPolicy: Retain` or
`RetainExceptOnCreate` (a Lambda version goes with its function whatever its policy); a first
deploy that fails and rolls back deletes the `RetainExceptOnCreate` ones too. What is left must not weaken anything: the
Kustomer API key (org.admin) stays readable only by the roles its resource policy names. And it
must not stand in the way of the next stack of the same name: nothing left carries a name the new
stack would take again.
"""

from __future__ import annotations

from typing import Any

from tests.sam.release.test_two_stacks import PHYSICAL_NAME
from tests.support.cloudformation import Deployment
from tests.support.project import REQUIRED_PARAMETERS
from tools.sam_transform import translated_template

STACK = "shop-prod"
READER = "arn:aws:iam::123456789012:role/Operator"


def _deployment(parameters: dict[str, str] = REQUIRED_PARAMETERS) -> Deployment:
    return Deployment(translated_template(parameters), parameters, STACK)


def _left_after_delete(deployment: Deployment) -> dict[str, Any]:
    return {
        name: resource
        for name, resource in deployment.resources.items()
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
        and resource["Type"] != "AWS::Lambda::Version"
    }


def test_a_delete_keeps_the_api_key_secret_and_its_resource_policy_only() -> None:
    # Given the stack as CloudFormation gets it
    deployment = _deployment()
    # When it is deleted
    left = _left_after_delete(deployment)
    # Then only the API key secret and the policy that locks it are left (also kept when replaced)
    assert {name: resource["Type"] for name, resource in left.items()} == {
        "ApiKeySecret": "AWS::SecretsManager::Secret",
        "ApiKeySecretResourcePolicy": "AWS::SecretsManager::ResourcePolicy",
    }
    assert all(resource.get("UpdateReplacePolicy") == "Retain" for resource in left.values())


def test_the_kept_api_key_stays_readable_by_no_one_but_the_roles_the_policy_named() -> None:
    # Given a stack that also let an operator role read the secrets, then deleted
    deployment = _deployment({**REQUIRED_PARAMETERS, "ApiKeySecretReaderArns": READER})
    policy = _left_after_delete(deployment)["ApiKeySecretResourcePolicy"]["Properties"]
    # When the kept policy is evaluated
    secret = deployment.values.resolve(policy["SecretId"])
    (statement,) = deployment.values.resolve(policy["ResourcePolicy"])["Statement"]
    # Then it is on the kept secret and denies reading it to every other principal
    assert secret == deployment.physical("ApiKeySecret")
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": [f"{deployment.physical('RefreshSecretFunctionRole')}.Arn", READER]}
    }


def test_nothing_left_by_a_delete_holds_a_name_the_next_stack_of_the_same_name_takes() -> None:
    # Given a stack deleted, then deployed again under the same name
    left = _left_after_delete(_deployment())
    # When the explicit physical names of what the delete left are read
    left_names = {
        name: resource["Properties"][PHYSICAL_NAME[resource["Type"]]]
        for name, resource in left.items()
        if PHYSICAL_NAME.get(resource["Type"]) in resource.get("Properties", {})
    }
    # Then there are none: CloudFormation generated the kept secret's name (a random suffix), so the new
    # stack creates a secret and a policy of its own and meets no "already exists"
    assert left_names == {}


def test_a_first_deploy_that_rolls_back_leaves_nothing_behind() -> None:
    # Given the stack as CloudFormation gets it
    deployment = _deployment()
    # When its first deploy fails and CloudFormation rolls it back
    kept_even_then = {
        name
        for name, resource in deployment.resources.items()
        if resource.get("DeletionPolicy") == "Retain" and resource["Type"] != "AWS::Lambda::Version"
    }
    # Then nothing is kept: the API key secret is kept only by a delete of a stack that created it earlier
    assert kept_even_then == set()
    assert deployment.resources["ApiKeySecret"]["DeletionPolicy"] == "RetainExceptOnCreate"
