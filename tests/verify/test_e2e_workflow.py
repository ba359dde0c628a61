"""The end-to-end workflow: run by hand only, only when the repository allows it, with an OIDC role and the
least permissions, and the throwaway stack always deleted. (tests/release/test_workflows.py checks every
workflow's pins and checkout; make workflows runs GitHub's schema and zizmor.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "e2e.yml"


def _workflow() -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    loaded["on"] = loaded.pop(True, loaded.get("on"))  # YAML 1.1 reads the key `on` as true
    return loaded


def _job() -> dict[str, Any]:
    (job,) = _workflow()["jobs"].values()
    found: dict[str, Any] = job
    return found


def _step(name: str) -> dict[str, Any]:
    (step,) = [step for step in _job()["steps"] if step.get("name") == name]
    found: dict[str, Any] = step
    return found


def test_it_runs_by_hand_only_and_only_when_the_repository_variable_allows_it() -> None:
    workflow = _workflow()
    assert workflow["on"] == {"workflow_dispatch": None}
    assert _job()["if"] == "vars.E2E_ENABLED == 'true'"


def test_it_gets_aws_credentials_from_oidc_with_the_least_permissions() -> None:
    workflow = _workflow()
    job = _job()
    (credentials,) = [
        step for step in job["steps"] if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    assert workflow["permissions"] == {}
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_E2E_ROLE_ARN }}"
    assert "aws-access-key-id" not in WORKFLOW.read_text(encoding="utf-8")
    # The one secret, the sandbox org's API key, lives in the e2e environment and reaches one step
    assert job["environment"] == "e2e"
    secret_steps = [step["name"] for step in job["steps"] if "secrets." in str(step)]
    assert secret_steps == ["Store the API key and fetch the signing secret"]


def test_it_deploys_a_stack_of_its_own_runs_verify_and_e2e_and_always_deletes_it() -> None:
    job = _job()
    names = [step.get("name") for step in job["steps"] if "name" in step]
    assert names == [
        "Deploy a throwaway stack",
        "Store the API key and fetch the signing secret",
        "make verify",
        "make e2e",
        "Delete the stack and its retained API key secret",
    ]
    assert job["env"]["STACK_NAME"] == "kct-e2e-${{ github.run_id }}-${{ github.run_attempt }}"
    assert '--stack-name "$STACK_NAME"' in _step("Deploy a throwaway stack")["run"]
    assert _step("make verify")["run"] == 'make verify STACK_NAME="$STACK_NAME" AWS_REGION="$AWS_REGION"'
    assert "E2E_ALLOW_CHANGES=1" in _step("make e2e")["run"]
    delete = _step("Delete the stack and its retained API key secret")
    assert delete["if"] == "always()"
    assert 'aws cloudformation delete-stack --stack-name "$STACK_NAME"' in delete["run"]
    assert "--force-delete-without-recovery" in delete["run"]  # ApiKeySecret is retained by a delete
    assert _workflow()["concurrency"]["cancel-in-progress"] is False


def test_the_api_key_never_reaches_a_command_line() -> None:
    run = _step("Store the API key and fetch the signing secret")["run"]
    assert "printf '%s' \"$KUSTOMER_API_KEY\" | aws secretsmanager put-secret-value" in run
    assert "--secret-string file:///dev/stdin" in run
