"""The end-to-end workflow: run by hand only, only when the repository allows it, with an OIDC role and the
least permissions, and the throwaway stack always deleted. (tests/project/release/test_workflows.py checks every
workflow's pins and checkout; make workflows runs GitHub's schema and zizmor.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
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


DELETE = "Delete the stack, its retained API key secret and the uploaded artifacts"
WAIT = "Purge the dead-letter queue and wait for the alarms to recover"


def test_it_deploys_a_stack_of_its_own_runs_verify_and_e2e_and_always_deletes_it() -> None:
    job = _job()
    names = [step.get("name") for step in job["steps"] if "name" in step]
    assert names == [
        "Deploy a throwaway stack",
        "Store the API key and fetch the signing secret",
        WAIT,
        "make verify",
        "make e2e",
        DELETE,
    ]
    assert job["env"]["STACK_NAME"] == "kct-e2e-${{ github.run_id }}-${{ github.run_attempt }}"
    assert '--stack-name "$STACK_NAME"' in _step("Deploy a throwaway stack")["run"]
    assert _step("make verify")["run"] == 'make verify STACK_NAME="$STACK_NAME" AWS_REGION="$AWS_REGION"'
    assert "E2E_ALLOW_CHANGES=1" in _step("make e2e")["run"]
    assert _workflow()["concurrency"]["cancel-in-progress"] is False


def test_verify_and_e2e_run_whenever_the_stack_was_deployed_even_after_a_failure() -> None:
    # Given the deploy step has an id, When verify or e2e come after a failed step (verify's own FAIL included)
    assert _step("Deploy a throwaway stack")["id"] == "deploy"
    ran_after_a_failure = "${{ !cancelled() && steps.deploy.outcome == 'success' }}"
    # Then both still run, as long as there is a stack to look at
    assert _step("make verify")["if"] == ran_after_a_failure
    assert _step("make e2e")["if"] == ran_after_a_failure


def test_before_verify_it_purges_the_dead_letter_queue_and_waits_a_bounded_time_for_no_alarm() -> None:
    run = _step(WAIT)["run"]
    assert "aws sqs purge-queue" in run
    assert "--state-value ALARM" in run
    assert "for attempt in $(seq 40)" in run  # 40 x 30 s
    assert "sleep 30" in run
    assert run.rstrip().endswith("exit 1")  # still firing after 20 minutes: the step fails, verify still runs
    assert "AWS::CloudWatch::Alarm" in run  # the stack's own alarms, from its resources
    assert _job()["timeout-minutes"] >= 90


def test_the_delete_always_tries_every_part_and_removes_the_api_key_even_when_the_stack_delete_fails() -> None:
    delete = _step(DELETE)
    assert delete["if"] == "always()"
    lines = [line.strip() for line in delete["run"].splitlines()]
    # Every command is attempted: no -e, each failure recorded and the step's status given at the end
    assert "set +e" in lines[:2]
    assert not any(line.startswith("set -e") for line in lines)
    assert lines[-1] == 'exit "$failed"'
    # The API key secret's id is read before the stack is deleted, and it is deleted after the stack's wait,
    # whatever that wait answered
    order = [
        next(index for index, line in enumerate(lines) if needle in line)
        for needle in (
            "--logical-resource-id ApiKeySecret",
            'aws cloudformation delete-stack --stack-name "$STACK_NAME" || failed=1',
            'aws cloudformation wait stack-delete-complete --stack-name "$STACK_NAME" || failed=1',
            "--force-delete-without-recovery",
            'aws s3 rm "s3://$bucket/$STACK_NAME/" --recursive',
        )
    ]
    assert order == sorted(order)
    # And what sam deploy uploaded under the stack's prefix goes too
    assert '--s3-prefix "$STACK_NAME"' in _step("Deploy a throwaway stack")["run"]


def test_the_api_key_never_reaches_a_command_line() -> None:
    run = _step("Store the API key and fetch the signing secret")["run"]
    assert "printf '%s' \"$KUSTOMER_API_KEY\" | aws secretsmanager put-secret-value" in run
    assert "--secret-string file:///dev/stdin" in run
