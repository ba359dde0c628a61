"""A rotation on the deployed stack (E2E_ALLOW_CHANGES=1): Secrets Manager invokes the refresher's four steps, and the
signing secret ends with AWSCURRENT on the rotation's version and no AWSPENDING left behind."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Deployed
from tools.verify.checks import token_problems


def _stages(client: Any, secret_id: str) -> dict[str, list[str]]:
    versions = client.list_secret_version_ids(SecretId=secret_id)["Versions"]
    return {version["VersionId"]: version.get("VersionStages", []) for version in versions}


@pytest.mark.timeout(600)
def test_rotate_secret_ends_with_the_rotation_current_and_nothing_pending(changeable: Deployed) -> None:
    # Given the stack's signing secret, and its API key stored (the workflow stores a sandbox org's key)
    client = changeable.client("secretsmanager")
    secret_id = changeable.facts.stack.outputs["SigningSecretArn"]
    token = str(uuid.uuid4())
    # (Secrets Manager's clock and this machine's may differ by a little)
    started = datetime.now(UTC) - timedelta(seconds=5)
    # When an operator rotates it, as RefreshSigningSecretCommand does
    client.rotate_secret(SecretId=secret_id, ClientRequestToken=token)
    # Then within a few minutes the rotation's version is AWSCURRENT (or, when Kustomer's value did not change,
    # the rotation ended without a version of its own) and no AWSPENDING is left on another version
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stages = _stages(client, secret_id)
        pending = [
            version for version, labels in stages.items() if "AWSPENDING" in labels and "AWSCURRENT" not in labels
        ]
        if not pending:
            break
        time.sleep(10)
    else:
        pytest.fail(f"AWSPENDING still on {pending} after 5 minutes: the refresher's log says which step failed")
    assert any("AWSCURRENT" in labels for labels in stages.values())
    # And this rotation ran and ended: its own version was made after it started (labelled, or left without labels
    # when Kustomer's value was already current), and Secrets Manager dates the last rotation at or after the start
    # (compared with the start's day: DescribeSecret may give the date alone)
    made = {
        version["VersionId"]: version["CreatedDate"]
        for version in client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]
    }
    assert token in made
    assert made[token] >= started
    rotated = client.describe_secret(SecretId=secret_id).get("LastRotatedDate")
    assert rotated is not None
    assert rotated >= started.replace(hour=0, minute=0, second=0, microsecond=0), (rotated, started)
    # And the mint signs with it (when the operator's principal is a listed back end)
    if changeable.listed():
        answer = changeable.server_token(json.dumps({"externalId": "kustomer-chat-token-e2e"}).encode())
        assert answer.status == 200
        assert token_problems(answer, changeable.facts.now(), "externalId") == []
