"""How make verify reads its input: the stack's description and what CloudFormation refuses, the identity-provider
token the operator supplies, and the make target's own checks."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tools.verify import __main__ as cli
from tools.verify.aws import TOKEN_COMMAND_VARIABLE, TOKEN_VARIABLE, access_token_from_environment, describe_stack
from tools.verify.facts import APPLICATION_OUTPUTS, APPLICATION_RESOURCES, StackRefused

ROOT = Path(__file__).resolve().parents[3]
REGION = "eu-west-1"


class _Session:
    """A boto3 session that hands out one stubbed CloudFormation client."""

    region_name = REGION

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, config: Any = None) -> Any:
        assert service == "cloudformation"
        return self._client


def _describe(*responses: tuple[str, str, dict[str, Any]]) -> Any:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        for kind, operation, document in responses:
            if kind == "error":
                stubber.add_client_error(operation, document["Code"], document["Message"])
            else:
                stubber.add_response(operation, document)
        return describe_stack(_Session(client), "kct")  # type: ignore[arg-type]


def _stack(status: str, *, ours: bool = True) -> tuple[str, str, dict[str, Any]]:
    outputs = [{"OutputKey": name, "OutputValue": f"value-of-{name}"} for name in APPLICATION_OUTPUTS] if ours else []
    document = {
        "Stacks": [
            {
                "StackName": "kct",
                "StackStatus": status,
                "CreationTime": datetime(2026, 12, 1, tzinfo=UTC),
                "Outputs": outputs,
                "Parameters": [{"ParameterKey": "AllowedOrigins", "ParameterValue": "https://www.example.com"}],
            }
        ]
    }
    return ("response", "describe_stacks", document)


def _resources(*, ours: bool = True) -> tuple[str, str, dict[str, Any]]:
    summaries = [
        {
            "LogicalResourceId": name,
            "PhysicalResourceId": f"kct-{name}",
            "ResourceType": kind,
            "ResourceStatus": "CREATE_COMPLETE",
            "LastUpdatedTimestamp": datetime(2026, 12, 1, tzinfo=UTC),
        }
        for name, kind in (APPLICATION_RESOURCES.items() if ours else [("Queue", "AWS::SQS::Queue")])
    ]
    return ("response", "list_stack_resources", {"StackResourceSummaries": summaries})


def test_the_stack_is_described_from_its_outputs_parameters_and_resources() -> None:
    stack = _describe(_stack("UPDATE_COMPLETE"), _resources())
    assert (stack.name, stack.region, stack.status) == ("kct", REGION, "UPDATE_COMPLETE")
    assert stack.outputs["ApiUrl"] == "value-of-ApiUrl"
    assert stack.parameters == {"AllowedOrigins": "https://www.example.com"}
    assert stack.of_type("AWS::SecretsManager::Secret") == {
        "SigningSecret": "kct-SigningSecret",
        "ApiKeySecret": "kct-ApiKeySecret",
    }


@pytest.mark.parametrize("status", ["CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS"])
def test_a_stack_still_being_created_is_described_not_refused_as_another_application_s(status: str) -> None:
    # Given a stack being created: no outputs yet, not every resource yet
    stack = _describe(_stack(status, ours=False), _resources(ours=False))
    # Then it is described, and the stack check says it is still being created
    assert stack.status == status


def test_a_complete_stack_without_the_application_s_resources_is_refused() -> None:
    with pytest.raises(StackRefused) as refused:
        _describe(_stack("CREATE_COMPLETE", ours=False), _resources(ours=False))
    assert str(refused.value).startswith("stack 'kct' in eu-west-1 is not kustomer-chat-token: it has no ")


def test_a_failed_first_create_is_described_so_that_the_stack_check_can_say_so() -> None:
    # Given a stack whose first create rolled back: it holds nothing of the application any more
    stack = _describe(_stack("ROLLBACK_COMPLETE", ours=False), _resources(ours=False))
    # Then it is not refused as another application's: the stack check fails on its state
    assert stack.status == "ROLLBACK_COMPLETE"


@pytest.mark.parametrize(
    ("code", "message", "line"),
    [
        (
            "ExpiredToken",
            "The security token included in the request is expired",
            "AWS refused your credentials (ExpiredToken: The security token included in the request is expired): "
            "renew them and try again",
        ),
        (
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/dev/me is not authorized",
            "your credentials may not read the stack "
            "(AccessDenied: User: arn:aws:sts::123456789012:assumed-role/dev/me is not authorized): "
            "they need cloudformation:DescribeStacks and ListStackResources (docs/verify.md#permissions)",
        ),
        (
            "Throttling",
            "Rate exceeded",
            "CloudFormation refused: Throttling: Rate exceeded",
        ),
    ],
)
def test_what_cloudformation_refuses_is_one_line_for_the_operator(code: str, message: str, line: str) -> None:
    with pytest.raises(StackRefused) as refused:
        _describe(("error", "describe_stacks", {"Code": code, "Message": message}))
    assert str(refused.value) == line


# --- the identity-provider token ----------------------------------------------------------------------------------


def test_the_token_variable_is_used_as_it_is() -> None:
    assert access_token_from_environment({TOKEN_VARIABLE: " eyJhbGciOi.payload.sig \n"}) == "eyJhbGciOi.payload.sig"


def test_without_either_variable_there_is_no_token() -> None:
    assert access_token_from_environment({}) is None


def test_the_token_command_prints_the_token() -> None:
    command = f"{sys.executable} -c \"print('header.payload.signature')\""
    assert access_token_from_environment({TOKEN_COMMAND_VARIABLE: command}) == "header.payload.signature"


@pytest.mark.parametrize(
    ("program", "line"),
    [
        ("import sys; print('secret-ish output'); sys.exit(3)", f"{TOKEN_COMMAND_VARIABLE} exited with status 3"),
        ("print('two words')", f"{TOKEN_COMMAND_VARIABLE} did not print one token"),
    ],
)
def test_a_token_command_that_fails_is_one_line_that_never_shows_its_output(program: str, line: str) -> None:
    with pytest.raises(ValueError, match=r".*") as failed:
        access_token_from_environment({TOKEN_COMMAND_VARIABLE: f'{sys.executable} -c "{program}"'})
    assert str(failed.value) == line


@pytest.mark.parametrize(
    "token",
    ["eyJhbGciOi.pay\nload.sig", "eyJhbGciOi.payload.sig\r\nX-Injected: 1", "tok en", "tök", "a=b"],
)
def test_a_token_variable_that_is_not_one_token_is_refused_without_showing_it(token: str) -> None:
    # Given a value an Authorization header cannot carry as it is (urllib would quote it in its error)
    with pytest.raises(ValueError, match=r".*") as refused:
        access_token_from_environment({TOKEN_VARIABLE: token})
    # Then one line names the variable, never the value
    assert str(refused.value) == (
        f"{TOKEN_VARIABLE} is not one access token (letters, digits and -._~+/ only, = at the end; "
        "its value is not shown)"
    )
    assert all(part not in str(refused.value) for part in token.split() if len(part) > 3)


def test_what_the_token_command_prints_is_checked_as_a_token_too() -> None:
    command = f"{sys.executable} -c \"print('pay<load>')\""
    with pytest.raises(ValueError, match=r".*") as refused:
        access_token_from_environment({TOKEN_COMMAND_VARIABLE: command})
    assert str(refused.value).startswith(f"what {TOKEN_COMMAND_VARIABLE} printed is not one access token")
    assert "pay<load>" not in str(refused.value)


def test_a_token_with_base64_padding_is_one_token() -> None:
    assert access_token_from_environment({TOKEN_VARIABLE: "abc.def-_~+/xyz=="}) == "abc.def-_~+/xyz=="


def test_a_usage_error_with_json_is_the_json_refusal(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--stack-name", "kct", "--json", "--colour"])
    out, err = capfd.readouterr()
    assert (exited.value.code, err) == (2, "")
    assert json.loads(out) == {
        "ok": False,
        "error": "unrecognized arguments: --colour (python -m tools.verify --help)",
    }


def test_a_token_command_that_cannot_run_is_one_line() -> None:
    with pytest.raises(ValueError, match=r".*") as failed:
        access_token_from_environment({TOKEN_COMMAND_VARIABLE: "/nonexistent/idp-token"})
    assert str(failed.value) == f"{TOKEN_COMMAND_VARIABLE} could not run: FileNotFoundError"


# --- the make targets ---------------------------------------------------------------------------------------------


def test_make_verify_without_a_stack_name_is_one_line() -> None:
    completed = subprocess.run(
        ["make", "--no-print-directory", "verify"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode != 0
    (line,) = completed.stderr.splitlines()
    assert line.endswith(
        "*** make verify needs STACK_NAME=<the deployed stack's name> [AWS_REGION=<its region>].  Stop."
    )


def test_make_verify_passes_the_region_asked_and_not_the_makefile_s_default() -> None:
    # Given the Makefile exports AWS_DEFAULT_REGION=us-east-1 for the local tools
    def dry_run(*arguments: str) -> str:
        completed = subprocess.run(
            ["make", "--no-print-directory", "-n", "verify", "STACK_NAME=kct", *arguments],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return completed.stdout.splitlines()[-1]

    # Then verify runs without it: the operator's configuration (or AWS_REGION) says where the stack is
    assert dry_run() == 'env -u AWS_DEFAULT_REGION .venv/bin/python -m tools.verify --stack-name "kct" '
    assert dry_run("AWS_REGION=eu-west-1") == (
        'env -u AWS_DEFAULT_REGION .venv/bin/python -m tools.verify --stack-name "kct" --region "eu-west-1"'
    )
