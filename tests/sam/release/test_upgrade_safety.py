"""Upgrades keep the state: the logical ids of stateful and scheduled resources are frozen.

CloudFormation matches resources across an update by logical id. A renamed id is a new
resource: the old one is deleted (a secret with the Kustomer key or signing secret, the
queue with failed invocations, the logs) and, for a RotationSchedule, the rotation silently
goes away with it (cloudformation-coverage-roadmap #1813). These ids are checked in the
template CloudFormation receives, after the SAM transform, where generated ids such as the
schedule's live. Renaming one needs a major release and a migration note in CHANGELOG.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cloudformation import Deployment
from tests.support.project import REQUIRED_PARAMETERS
from tools.sam_transform import translated_template

# logical id -> type, in the translated template. RefreshSecretFunctionScheduledRefresh is generated
# by SAM from the function's id and its ScheduleV2 event's name (ScheduledRefresh): renaming either
# renames it.
FROZEN = {
    "SigningSecret": "AWS::SecretsManager::Secret",
    "ApiKeySecret": "AWS::SecretsManager::Secret",
    "SigningSecretRotation": "AWS::SecretsManager::RotationSchedule",
    "RefreshSecretFunctionScheduledRefresh": "AWS::Scheduler::Schedule",
    "RefreshScheduleGroup": "AWS::Scheduler::ScheduleGroup",
    "RefreshDeadLetterQueue": "AWS::SQS::Queue",
    "MintTokenLogGroup": "AWS::Logs::LogGroup",
    "RefreshSecretLogGroup": "AWS::Logs::LogGroup",
    "TokenApiAccessLogGroup": "AWS::Logs::LogGroup",
}
STATEFUL_OR_SCHEDULED = set(FROZEN.values())

# The opt-in paths change conditions, never ids; both ends are checked.
PARAMETER_SETS = {
    "defaults": REQUIRED_PARAMETERS,
    "every option on": {
        **REQUIRED_PARAMETERS,
        "SecretsKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
        "SecretReaderArns": "arn:aws:iam::123456789012:role/Operator",
        "ApiKeySecretReaderArns": "arn:aws:iam::123456789012:role/KeyKeeper",
        "SecretsExtensionLayerArn": (
            "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12"
        ),
        "EnableSnapStart": "true",
        "PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/OrgBoundary",
        "AuthorizationScopes": "https://api.example.com/chat.token",
    },
}


def _resources(parameters: dict[str, str]) -> dict[str, Any]:
    resources: dict[str, Any] = translated_template(parameters)["Resources"]
    return resources


@pytest.mark.parametrize("parameters", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_every_frozen_resource_keeps_its_logical_id_and_type(parameters: dict[str, str]) -> None:
    # Given the template as CloudFormation receives it
    resources = _resources(parameters)
    # When the frozen ids are looked up
    found = {logical_id: resources[logical_id]["Type"] for logical_id in FROZEN if logical_id in resources}
    # Then each is there with its type
    assert found == FROZEN


@pytest.mark.parametrize("parameters", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_no_stateful_or_scheduled_resource_exists_outside_the_frozen_list(parameters: dict[str, str]) -> None:
    # Given the template as CloudFormation receives it
    resources = _resources(parameters)
    # When every resource of a stateful or scheduled type is listed
    stateful = {
        name: resource["Type"] for name, resource in resources.items() if resource["Type"] in STATEFUL_OR_SCHEDULED
    }
    # Then it is exactly the frozen list: a new one is added to FROZEN on purpose, a renamed one fails here
    assert stateful == FROZEN


def test_the_api_key_secret_is_retained_and_the_rest_is_deleted_with_the_stack() -> None:
    # Given the template as CloudFormation receives it
    resources = _resources(REQUIRED_PARAMETERS)
    # When the deletion policies of the frozen resources are read
    retained = {name for name in FROZEN if resources[name].get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")}
    replaced_and_kept = {name for name in FROZEN if resources[name].get("UpdateReplacePolicy") == "Retain"}
    # Then only ApiKeySecret outlives `sam delete` and a replacement, as docs/deploy.md says
    assert retained == {"ApiKeySecret"}
    assert replaced_and_kept == {"ApiKeySecret"}


RELEASE_1_0_0 = Path(__file__).resolve().parent / "fixtures" / "template-1.0.0.yaml"


# Since 1.0.0 the schedule lives in the stack's own group. CloudFormation cannot move a schedule into
# another group in place (its update looks the schedule up in the new group: NotFound), so the schedule,
# which holds no state, has a new id: the update creates it, then its clean-up deletes the old one.
RENAMED_SINCE_1_0_0 = {"RefreshSecretFunctionRefresh": "RefreshSecretFunctionScheduledRefresh"}
ADDED_SINCE_1_0_0 = {"RefreshScheduleGroup"}


def test_an_upgrade_from_1_0_0_keeps_every_frozen_resource() -> None:
    # Given release 1.0.0's template and this one, as CloudFormation gets them
    old = translated_template(REQUIRED_PARAMETERS, RELEASE_1_0_0)["Resources"]
    new = _resources(REQUIRED_PARAMETERS)
    # When the frozen ids are looked up in both (1.0.0's schedule under its old id)
    old_ids = {RENAMED_SINCE_1_0_0.get(name, name): name for name in old}
    # Then the update finds each with its type, and only the schedule and its new group are new ids
    assert {name: old[old_ids[name]]["Type"] for name in FROZEN if name in old_ids} == {
        name: kind for name, kind in FROZEN.items() if name not in ADDED_SINCE_1_0_0
    }
    assert {name: new[name]["Type"] for name in FROZEN if name in new} == FROZEN
    assert set(RENAMED_SINCE_1_0_0) <= set(old)
    assert not set(RENAMED_SINCE_1_0_0) & set(new)


def test_no_schedule_is_asked_to_change_its_group_in_place() -> None:
    # Given release 1.0.0's template and this one
    old = translated_template(REQUIRED_PARAMETERS, RELEASE_1_0_0)["Resources"]
    new = _resources(REQUIRED_PARAMETERS)
    # When a schedule id is in both
    kept = [name for name, spec in new.items() if spec["Type"] == "AWS::Scheduler::Schedule" and name in old]
    # Then its group is the same (an in-place change of GroupName fails the update NotFound)
    assert all(old[name]["Properties"].get("GroupName") == new[name]["Properties"].get("GroupName") for name in kept)
    # And the schedule that replaces 1.0.0's runs in the stack's own group
    (schedule,) = [spec for spec in new.values() if spec["Type"] == "AWS::Scheduler::Schedule"]
    assert schedule["Properties"]["GroupName"] == {"Ref": "RefreshScheduleGroup"}


def test_an_upgrade_from_1_0_0_leaves_the_old_schedule_its_own_role_until_it_is_deleted() -> None:
    # Given release 1.0.0's template and this one
    old = translated_template(REQUIRED_PARAMETERS, RELEASE_1_0_0)["Resources"]
    new = _resources(REQUIRED_PARAMETERS)
    # When the role of each release's schedule is looked up
    (old_role,) = [
        s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
        for s in old.values()
        if s["Type"] == "AWS::Scheduler::Schedule"
    ]
    (new_role,) = [
        s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
        for s in new.values()
        if s["Type"] == "AWS::Scheduler::Schedule"
    ]
    # Then they are different resources: the new trust (the new group only) is never put on the role
    # 1.0.0's schedule still uses mid-update; the clean-up deletes that schedule, then its role
    assert new_role not in old
    assert old_role not in new


def test_an_upgrade_from_1_0_0_replaces_nothing_that_holds_state() -> None:
    # Given a stack of release 1.0.0 and the same stack updated to this release
    old = Deployment(translated_template(REQUIRED_PARAMETERS, RELEASE_1_0_0), REQUIRED_PARAMETERS)
    new = Deployment(translated_template(REQUIRED_PARAMETERS), REQUIRED_PARAMETERS)
    kept = [
        *(name for name in FROZEN if name not in ADDED_SINCE_1_0_0 | set(RENAMED_SINCE_1_0_0.values())),
        "ApiKeySecretResourcePolicy",
        "TokenApi",
    ]
    # When the physical resource of each is compared (logical id and every create-only property)
    replaced = {name for name in kept if old.physical(name) != new.physical(name)}
    # Then the update keeps each one: no secret, queue, log group, schedule or API is made anew
    assert replaced == set()


def test_an_upgrade_from_1_0_0_moves_the_routes_to_a_new_version() -> None:
    # Given a stack of release 1.0.0, whose alias ignored changes of settings and layer
    old = Deployment(translated_template(REQUIRED_PARAMETERS, RELEASE_1_0_0), REQUIRED_PARAMETERS)
    # When it is updated to this release with the same parameters
    new = Deployment(translated_template(REQUIRED_PARAMETERS), REQUIRED_PARAMETERS)
    before, after = old.invoked_by_routes("TokenApi"), new.invoked_by_routes("TokenApi")
    # Then every route invokes a version published by the update, with today's settings and layer
    assert before.keys() == after.keys()
    assert all(after[route] != before[route] for route in before)
