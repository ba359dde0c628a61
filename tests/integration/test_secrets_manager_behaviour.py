"""The local Secrets Manager behaves as the AWS API Reference says where the refresher depends on it.

Each case is one correction of tools.harness.secrets_manager_behaviour (the docstring there
quotes the reference); moto 5.2 alone fails each of them.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tools.harness.secrets_manager_behaviour import PREVIOUS_ROTATION_INCOMPLETE

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:NotRunByMoto"
TOKEN, OTHER_TOKEN = "a" * 32, "b" * 32


def _rotate(client: Any, secret: str, token: str) -> None:
    """RotateSecret; moto then reports it cannot invoke the function, which the tests do themselves."""
    with pytest.raises(client.exceptions.ResourceNotFoundException, match="NotRunByMoto"):
        client.rotate_secret(SecretId=secret, ClientRequestToken=token, RotationLambdaARN=FUNCTION)


def _stages(client: Any, secret: str) -> dict[str, list[str]]:
    stages: dict[str, list[str]] = client.describe_secret(SecretId=secret).get("VersionIdsToStages") or {}
    return stages


def test_rotating_a_secret_without_value_makes_an_empty_pending_version(secretsmanager: Any) -> None:
    # Given a secret created without a value, as CloudFormation creates one
    secret = secretsmanager.create_secret(Name="empty")["ARN"]
    # When a rotation starts
    _rotate(secretsmanager, secret, TOKEN)
    # Then a version with the token as id holds AWSPENDING and no value
    assert _stages(secretsmanager, secret) == {TOKEN: ["AWSPENDING"]}
    with pytest.raises(secretsmanager.exceptions.ResourceNotFoundException, match="staging label: AWSPENDING"):
        secretsmanager.get_secret_value(SecretId=secret, VersionId=TOKEN, VersionStage="AWSPENDING")


def test_a_rotation_left_incomplete_refuses_a_new_one(secretsmanager: Any) -> None:
    secret = secretsmanager.create_secret(Name="incomplete", SecretString="value-a")["ARN"]
    _rotate(secretsmanager, secret, TOKEN)
    before = _stages(secretsmanager, secret)
    with pytest.raises(secretsmanager.exceptions.InvalidRequestException) as refused:
        secretsmanager.rotate_secret(SecretId=secret, ClientRequestToken=OTHER_TOKEN, RotationLambdaARN=FUNCTION)
    assert refused.value.response["Error"]["Message"] == PREVIOUS_ROTATION_INCOMPLETE
    assert _stages(secretsmanager, secret) == before


def test_pending_on_the_current_version_is_a_finished_rotation(secretsmanager: Any) -> None:
    # Given AWSPENDING left on the AWSCURRENT version, one of the two states a rotation may end in
    secret = secretsmanager.create_secret(Name="finished", SecretString="value-a")["ARN"]
    _rotate(secretsmanager, secret, TOKEN)
    secretsmanager.put_secret_value(
        SecretId=secret, SecretString="value-b", ClientRequestToken=TOKEN, VersionStages=["AWSPENDING"]
    )
    current = next(v for v, labels in _stages(secretsmanager, secret).items() if "AWSCURRENT" in labels)
    secretsmanager.update_secret_version_stage(
        SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=TOKEN, RemoveFromVersionId=current
    )
    # When the next rotation starts, it does, and the label moves to its own new version
    _rotate(secretsmanager, secret, OTHER_TOKEN)
    assert _stages(secretsmanager, secret)[TOKEN] == ["AWSCURRENT"]
    assert _stages(secretsmanager, secret)[OTHER_TOKEN] == ["AWSPENDING"]


def test_awscurrent_moves_without_remove_from_when_no_version_holds_it(secretsmanager: Any) -> None:
    secret = secretsmanager.create_secret(Name="first-current")["ARN"]
    _rotate(secretsmanager, secret, TOKEN)
    secretsmanager.put_secret_value(
        SecretId=secret, SecretString="value-a", ClientRequestToken=TOKEN, VersionStages=["AWSPENDING"]
    )
    secretsmanager.update_secret_version_stage(SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=TOKEN)
    assert _stages(secretsmanager, secret) == {TOKEN: ["AWSPENDING", "AWSCURRENT"]}
    assert secretsmanager.get_secret_value(SecretId=secret)["SecretString"] == "value-a"


def test_a_put_after_awscurrent_moved_back_leaves_one_current_version(secretsmanager: Any) -> None:
    # Given A, then B, then AWSCURRENT moved back to A
    secret = secretsmanager.create_secret(Name="moved-back", SecretString="value-a", ClientRequestToken=TOKEN)["ARN"]
    secretsmanager.put_secret_value(SecretId=secret, SecretString="value-b", ClientRequestToken=OTHER_TOKEN)
    secretsmanager.update_secret_version_stage(
        SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=TOKEN, RemoveFromVersionId=OTHER_TOKEN
    )
    # When C is put
    secretsmanager.put_secret_value(SecretId=secret, SecretString="value-c", ClientRequestToken="c" * 32)
    # Then C is the only AWSCURRENT, and A, the version it replaced, is AWSPREVIOUS
    assert _stages(secretsmanager, secret) == {TOKEN: ["AWSPREVIOUS"], OTHER_TOKEN: [], "c" * 32: ["AWSCURRENT"]}


def test_a_version_with_a_value_never_changes(secretsmanager: Any) -> None:
    secret = secretsmanager.create_secret(Name="immutable", SecretString="value-a")["ARN"]
    _rotate(secretsmanager, secret, TOKEN)
    pending = {"SecretId": secret, "ClientRequestToken": TOKEN, "VersionStages": ["AWSPENDING"]}
    secretsmanager.put_secret_value(SecretString="value-b", **pending)
    # The same value again succeeds and does nothing; another value is refused
    assert secretsmanager.put_secret_value(SecretString="value-b", **pending)["VersionStages"] == ["AWSPENDING"]
    with pytest.raises(secretsmanager.exceptions.ResourceExistsException):
        secretsmanager.put_secret_value(SecretString="value-c", **pending)
    answer = secretsmanager.get_secret_value(SecretId=secret, VersionId=TOKEN, VersionStage="AWSPENDING")
    assert answer["SecretString"] == "value-b"


def test_a_missing_value_and_a_missing_secret_say_different_things(secretsmanager: Any) -> None:
    secret = secretsmanager.create_secret(Name="no-value-yet")["ARN"]
    not_found = secretsmanager.exceptions.ResourceNotFoundException
    with pytest.raises(not_found, match="can't find the specified secret value for staging label: AWSCURRENT"):
        secretsmanager.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")
    with pytest.raises(not_found, match=r"can't find the specified secret\.$"):
        secretsmanager.get_secret_value(SecretId="never-created", VersionStage="AWSCURRENT")


def test_a_version_is_listed_with_the_date_it_was_made(secretsmanager: Any) -> None:
    # Given a version made by RotateSecret, and a later one made by PutSecretValue (dates count whole seconds)
    secret = secretsmanager.create_secret(Name="dated")["ARN"]
    _rotate(secretsmanager, secret, TOKEN)
    time.sleep(1.1)
    secretsmanager.put_secret_value(SecretId=secret, SecretString="value-a", ClientRequestToken=OTHER_TOKEN)
    time.sleep(1.1)
    # When the versions are listed, now and again later
    first, again = ({v["VersionId"]: v["CreatedDate"] for v in _listed(secretsmanager, secret)} for _ in range(2))
    # Then each version keeps the date it was made, not the time of the listing
    assert first == again
    assert first[TOKEN] < first[OTHER_TOKEN] < datetime.now(UTC) - timedelta(seconds=1)


def test_versions_without_a_label_are_listed_only_when_asked_for(secretsmanager: Any) -> None:
    # Given a secret with three values put in turn: the first has lost its labels (AWSPREVIOUS moved on)
    secret = secretsmanager.create_secret(Name=f"unlabelled-{uuid.uuid4()}")["ARN"]
    tokens = [str(uuid.uuid4()) for _ in range(3)]
    for n, token in enumerate(tokens):
        secretsmanager.put_secret_value(SecretId=secret, SecretString=f"value-{n}", ClientRequestToken=token)
    # When the versions are listed, plainly and with IncludeDeprecated
    plain = {v["VersionId"] for v in secretsmanager.list_secret_version_ids(SecretId=secret)["Versions"]}
    every = secretsmanager.list_secret_version_ids(SecretId=secret, IncludeDeprecated=True)["Versions"]
    # Then the unlabelled one is left out unless asked for, as AWS documents (API_ListSecretVersionIds)
    assert plain == set(tokens[1:])
    assert {v["VersionId"] for v in every} == set(tokens)


def _listed(client: Any, secret: str) -> list[dict[str, Any]]:
    time.sleep(1.1)
    versions: list[dict[str, Any]] = client.list_secret_version_ids(SecretId=secret)["Versions"]
    return versions
