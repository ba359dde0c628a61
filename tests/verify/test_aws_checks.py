"""make verify's AWS side: the bad input that gets one line and exit 2 (against moto's CloudFormation on loopback,
through botocore's whole credential and endpoint path), and the checks that need AWS itself, against botocore's
Stubber (rotation, what the routes invoke, the schedule's group, stack states)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tools.harness.services import MotoServer
from tools.verify import __main__ as cli
from tools.verify.checks import CHECKS, run_checks, token_problems
from tools.verify.facts import APPLICATION_RESOURCES, Facts, Resource, StackDescription
from tools.verify.http import Answer
from tools.verify.local import LOCALLY_UNAVAILABLE
from tools.verify.report import Result, Status

from .conftest import assert_fails
from .test_local_checks import BROKEN_HERE

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
MINT = "kct-MintTokenFunction-AbC123"
MINT_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{MINT}"
REFRESHER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:kct-RefreshSecretFunction-XyZ789"
LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:kct-shared:7"
SIGNING_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kct/SigningSecret-AbCdEf"
BROKEN_WITH_AWS_STAND_INS = {"signing-secret-rotation", "routes-invoke-live", "schedule", "stack"}


# --- bad input: one line, exit 2, never a traceback ---------------------------------------------------------


@pytest.fixture(scope="module")
def cloudformation() -> Iterator[str]:
    """moto's CloudFormation on loopback, holding one stack of another application in us-east-1."""
    with MotoServer() as moto:
        client = boto3.client("cloudformation", endpoint_url=moto.url, region_name=REGION)
        client.create_stack(
            StackName="someone-elses-queue",
            TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}),
        )
        yield moto.url


def _verify(capfd: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, list[str], str]:
    status = cli.main(list(arguments))
    out, err = capfd.readouterr()
    return status, err.splitlines(), out


def test_an_unknown_stack_is_one_line(
    cloudformation: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloudformation)
    status, lines, out = _verify(capfd, "--stack-name", "no-such-stack", "--region", REGION)
    assert (status, out) == (2, "")
    assert lines == [
        "verify: no stack 'no-such-stack' in us-east-1: check the name, or pass the region it is in "
        "(--region, make verify AWS_REGION=...)"
    ]


def test_a_stack_in_another_region_is_one_line_naming_the_region_asked(
    cloudformation: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a stack that exists in us-east-1, When verify looks for it in eu-west-1
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloudformation)
    status, lines, _ = _verify(capfd, "--stack-name", "someone-elses-queue", "--region", "eu-west-1")
    assert status == 2
    assert lines == [
        "verify: no stack 'someone-elses-queue' in eu-west-1: check the name, or pass the region it is in "
        "(--region, make verify AWS_REGION=...)"
    ]


def test_a_stack_arn_of_another_region_than_asked_is_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    arn = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/kct/0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    status, lines, _ = _verify(capfd, "--stack-name", arn, "--region", REGION)
    assert (status, lines) == (2, ["verify: the stack ARN is in eu-west-1, not in --region us-east-1"])


def test_a_stack_of_another_application_is_one_line(
    cloudformation: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloudformation)
    status, lines, _ = _verify(capfd, "--stack-name", "someone-elses-queue", "--region", REGION)
    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith(
        "verify: stack 'someone-elses-queue' in us-east-1 is not kustomer-chat-token: it has no "
        "MintTokenFunction (AWS::Lambda::Function), RefreshSecretFunction (AWS::Lambda::Function)"
    )
    assert lines[0].endswith(
        "output Version, output ApiUrl, output SigningSecretArn, output ApiKeySecretArn, "
        "output RefreshDeadLetterQueueUrl"
    )


def test_with_json_a_refusal_is_one_json_line_on_stdout(
    cloudformation: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloudformation)
    status, lines, out = _verify(capfd, "--stack-name", "no-such-stack", "--region", REGION, "--json")
    assert (status, lines) == (2, [])
    assert json.loads(out) == {
        "ok": False,
        "error": "no stack 'no-such-stack' in us-east-1: check the name, or pass the region it is in "
        "(--region, make verify AWS_REGION=...)",
    }


def test_no_credentials_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    # Given a process with no credentials anywhere (no variables, no files, no instance metadata)
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # When verify runs as the operator runs it
    completed = subprocess.run(
        [sys.executable, "-m", "tools.verify", "--stack-name", "kustomer-chat-token", "--region", REGION],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then one line says what to set, and the status is 2
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr.splitlines() == [
        "verify: no AWS credentials: set AWS_PROFILE (and run `aws sso login` for SSO), or export "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ]


def test_no_region_is_one_line(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    status, lines, _ = _verify(capfd, "--stack-name", "kustomer-chat-token")
    assert (status, lines) == (
        2,
        ["verify: no AWS region: pass --region (make verify AWS_REGION=...) or set AWS_REGION"],
    )


def test_an_api_that_does_not_answer_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a stack whose ApiUrl answers nothing
    facts = _facts({}, outputs={"ApiUrl": "http://127.0.0.1:9"})
    monkeypatch.setattr("tools.verify.aws.aws_facts", lambda name, region: facts)
    status, lines, out = _verify(capfd, "--stack-name", "kct", "--region", REGION)
    assert (status, out) == (2, "")
    assert len(lines) == 1
    assert lines[0].startswith(
        "verify: the token API of kct does not answer: OPTIONS http://127.0.0.1:9/token got no answer"
    )


def test_an_unknown_option_is_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--stack-name", "kct", "--colour"])
    assert exited.value.code == 2
    assert capfd.readouterr().err.splitlines() == [
        "verify: unrecognized arguments: --colour (python -m tools.verify --help)"
    ]


# --- checks that need AWS itself, against the Stubber -------------------------------------------------------


def _stack(**changes: Any) -> StackDescription:
    resources = {name: Resource(f"kct-{name}", kind) for name, kind in APPLICATION_RESOURCES.items()}
    resources["MintTokenFunction"] = Resource(MINT, "AWS::Lambda::Function")
    resources["SharedLayer"] = Resource(LAYER, "AWS::Lambda::LayerVersion")
    resources["RefreshSecretFunctionRefresh"] = Resource(
        "kct-RefreshSecretFunctionRefresh-1A2B", "AWS::Scheduler::Schedule"
    )
    fields: dict[str, Any] = {
        "name": "kct",
        "region": REGION,
        "status": "UPDATE_COMPLETE",
        "status_reason": "",
        "outputs": {
            "Version": "1.0.1",
            "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com",
            "SigningSecretArn": SIGNING_ARN,
            "RefreshSecretFunctionArn": REFRESHER_ARN,
        },
        "parameters": {"AllowedOrigins": "https://www.example.com"},
        "resources": resources,
        "last_changed": datetime.now(UTC) - timedelta(days=2),
    }
    return StackDescription(**{**fields, **changes})


def _facts(clients: dict[str, Any], outputs: dict[str, str] | None = None, **stack: Any) -> Facts:
    description = _stack(**stack)
    if outputs:
        description = _stack(**stack, outputs={**description.outputs, **outputs})
    return Facts(
        where=f"AWS {REGION}",
        stack=description,
        client=clients.get,
        sign_server_token=lambda url, body, headers: headers,
        caller=f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/me",
        access_token=lambda: None,
        routes_target=lambda: pytest.fail("not this check"),
    )


def _only(facts: Facts, name: str) -> Result:
    """One check, without the HTTP probe (these stacks have no API)."""
    from tools.verify.checks import Run, run_one

    return run_one(Run(facts), name)


@pytest.fixture
def secretsmanager() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("secretsmanager", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_rotation_on_with_the_refresher_passes(secretsmanager: tuple[Any, Stubber]) -> None:
    client, stubber = secretsmanager
    stubber.add_response(
        "describe_secret",
        {
            "RotationEnabled": True,
            "RotationLambdaARN": REFRESHER_ARN,
            "LastRotatedDate": datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        },
        {"SecretId": SIGNING_ARN},
    )
    result = _only(_facts({"secretsmanager": client}), "signing-secret-rotation")
    assert (result.status, result.summary) == (
        Status.PASS,
        "rotation on with RefreshSecretFunction; last rotated 2026-12-01 09:30 UTC, next never",
    )


def test_rotation_off_fails(secretsmanager: tuple[Any, Stubber]) -> None:
    client, stubber = secretsmanager
    stubber.add_response("describe_secret", {"RotationEnabled": False}, {"SecretId": SIGNING_ARN})
    result = _only(_facts({"secretsmanager": client}), "signing-secret-rotation")
    assert_fails(result, "rotation of the signing secret is off", "docs/verify.md#signing-secret-rotation")


def test_rotation_with_another_function_fails(secretsmanager: tuple[Any, Stubber]) -> None:
    client, stubber = secretsmanager
    other = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-else"
    stubber.add_response(
        "describe_secret", {"RotationEnabled": True, "RotationLambdaARN": other}, {"SecretId": SIGNING_ARN}
    )
    result = _only(_facts({"secretsmanager": client}), "signing-secret-rotation")
    assert_fails(
        result, f"the signing secret rotates with another function ({other})", "docs/verify.md#signing-secret-rotation"
    )


def test_access_denied_fails_naming_the_permissions(secretsmanager: tuple[Any, Stubber]) -> None:
    client, stubber = secretsmanager
    stubber.add_client_error(
        "describe_secret", "AccessDeniedException", "not authorized to perform secretsmanager:DescribeSecret"
    )
    result = _only(_facts({"secretsmanager": client}), "signing-secret-rotation")
    assert_fails(result, "AWS refused DescribeSecret: AccessDeniedException", "docs/verify.md#permissions")


SCHEDULE = "kct-RefreshSecretFunctionRefresh-1A2B"


@pytest.mark.parametrize(
    ("resources", "group"),
    [
        # the template before issue 21: the default group
        ({"RefreshSecretFunctionRefresh": Resource(SCHEDULE, "AWS::Scheduler::Schedule")}, "default"),
        # the stack's own group, its generated name
        (
            {
                "RefreshSecretFunctionRefresh": Resource(SCHEDULE, "AWS::Scheduler::Schedule"),
                "RefreshScheduleGroup": Resource("RefreshScheduleGroup-Q1w2E3", "AWS::Scheduler::ScheduleGroup"),
            },
            "RefreshScheduleGroup-Q1w2E3",
        ),
        # should CloudFormation give the schedule's ARN as its id
        (
            {
                "RefreshSecretFunctionRefresh": Resource(
                    f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/RefreshScheduleGroup-Q1w2E3/{SCHEDULE}",
                    "AWS::Scheduler::Schedule",
                ),
                "RefreshScheduleGroup": Resource("RefreshScheduleGroup-Q1w2E3", "AWS::Scheduler::ScheduleGroup"),
            },
            "RefreshScheduleGroup-Q1w2E3",
        ),
    ],
)
def test_the_schedule_is_found_from_the_stack_s_resources(resources: dict[str, Resource], group: str) -> None:
    scheduler = boto3.client("scheduler", region_name=REGION)
    stack = _stack()
    others = {name: r for name, r in stack.resources.items() if not r.type.startswith("AWS::Scheduler::")}
    facts = _facts({"scheduler": scheduler}, resources={**others, **resources})
    with Stubber(scheduler) as stubber:
        stubber.add_response(
            "get_schedule",
            {
                "Name": SCHEDULE,
                "GroupName": group,
                "State": "ENABLED",
                "ScheduleExpression": "rate(15 minutes)",
                "Target": {
                    "Arn": REFRESHER_ARN,
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                    "DeadLetterConfig": {"Arn": "arn:aws:sqs:us-east-1:123456789012:dlq"},
                },
                "FlexibleTimeWindow": {"Mode": "OFF"},
            },
            {"Name": SCHEDULE, "GroupName": group},
        )
        result = _only(facts, "schedule")
    assert (result.status, result.summary) == (
        Status.PASS,
        f"{SCHEDULE} ENABLED, rate(15 minutes), invokes RefreshSecretFunction",
    )


@pytest.mark.parametrize(
    ("status", "shown"),
    [("ROLLBACK_COMPLETE", "kct is ROLLBACK_COMPLETE"), ("UPDATE_IN_PROGRESS", "it is still changing")],
)
def test_a_stack_that_cannot_run_fails_and_the_rest_is_skipped(status: str, shown: str) -> None:
    results = run_checks(_facts({}, status=status))
    assert results[0].status is Status.FAIL
    assert shown in results[0].summary
    assert {result.status for result in results[1:]} == {Status.SKIP}


# --- what the routes invoke -----------------------------------------------------------------------------------


def _configuration(version: str, **changes: Any) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "FunctionName": MINT,
        "FunctionArn": MINT_ARN if version == "$LATEST" else f"{MINT_ARN}:{version}",
        "Runtime": "python3.13",
        "Handler": "app.lambda_handler",
        "MemorySize": 256,
        "Timeout": 10,
        "Role": f"arn:aws:iam::{ACCOUNT}:role/kct-MintTokenFunctionRole",
        "CodeSha256": base64.b64encode(b"code" * 8).decode(),
        "Version": version,
        "Architectures": ["arm64"],
        "Environment": {"Variables": {"TOKEN_IDENTITY": "externalId", "SIGNING_SECRET_ID": SIGNING_ARN}},
        "Layers": [{"Arn": LAYER, "CodeSize": 1000}],
        "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off" if version == "$LATEST" else "On"},
    }
    configuration.update(changes)
    return configuration


def _routes_target(uri: str, latest: dict[str, Any], live: dict[str, Any] | None) -> Result:
    from tools.verify.aws import routes_target

    lambda_client = boto3.client("lambda", region_name=REGION)
    api = boto3.client("apigatewayv2", region_name=REGION)
    session = type(
        "Session",
        (),
        {"client": lambda self, service, config=None: {"lambda": lambda_client, "apigatewayv2": api}[service]},
    )()
    stack = _stack()
    with Stubber(lambda_client) as lambdas, Stubber(api) as apis:
        lambdas.add_response("get_function_configuration", latest, {"FunctionName": MINT})
        apis.add_response(
            "get_integrations", {"Items": [{"IntegrationId": "i1", "IntegrationUri": uri}]}, {"ApiId": "kct-TokenApi"}
        )
        apis.add_response(
            "get_routes",
            {
                "Items": [
                    {"RouteKey": "POST /token", "Target": "integrations/i1"},
                    {"RouteKey": "POST /server/token", "Target": "integrations/i1"},
                ]
            },
            {"ApiId": "kct-TokenApi"},
        )
        if live is not None:
            for _ in range(2):
                lambdas.add_response("get_function_configuration", live, {"FunctionName": f"{MINT_ARN}:live"})
        target = routes_target(session, stack)  # type: ignore[arg-type]
    facts = _facts({})
    facts.routes_target = lambda: target
    return _only(facts, "routes-invoke-live")


def test_routes_that_invoke_the_live_alias_with_the_declared_configuration_pass() -> None:
    # Given the alias's version has $LATEST's configuration (SnapStart optimized on the version only)
    result = _routes_target(f"{MINT_ARN}:live", _configuration("$LATEST"), _configuration("12"))
    assert (result.status, result.summary) == (
        Status.PASS,
        "POST /server/token and POST /token invoke alias live (version 12), with the declared configuration and layer",
    )


def test_routes_on_a_version_of_before_the_update_fail_naming_what_differs() -> None:
    # Given an update changed the mint's environment and layer, and the alias still points at the version before
    latest = _configuration("$LATEST", Layers=[{"Arn": LAYER.replace(":7", ":8"), "CodeSize": 1000}])
    latest["Environment"] = {"Variables": {"TOKEN_IDENTITY": "email", "SIGNING_SECRET_ID": SIGNING_ARN}}
    result = _routes_target(f"{MINT_ARN}:live", latest, _configuration("11"))
    assert_fails(
        result,
        "POST /token invokes alias live (version 11), which differs from the stack's configuration in "
        "environment TOKEN_IDENTITY; layers",
        "docs/deploy.md#what-an-update-changes-in-the-running-code",
    )


def test_routes_that_invoke_latest_fail() -> None:
    uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{MINT_ARN}/invocations"
    result = _routes_target(uri, _configuration("$LATEST"), None)
    assert_fails(
        result,
        "POST /token invokes $LATEST, not the live alias",
        "docs/deploy.md#what-an-update-changes-in-the-running-code",
    )


# --- a token shaped for Kustomer -------------------------------------------------------------------------------


def _segment(document: bytes) -> str:
    return base64.urlsafe_b64encode(document).rstrip(b"=").decode()


def _minted(header: bytes, claims: dict[str, Any], **body: Any) -> Answer:
    token = ".".join(
        [_segment(header), _segment(json.dumps(claims, separators=(",", ":")).encode()), _segment(b"s" * 32)]
    )
    answer = {"jwtToken": token, **{k: v for k, v in claims.items() if k != "iat"}}
    answer.update({"issuedAt": claims["iat"], "expiresAt": claims["iat"] + 900, **body})
    return Answer(200, {"cache-control": "no-store"}, json.dumps(answer).encode())


KUSTOMER_HEADER = b'{"alg":"HS256","typ":"JWT"}'


def test_a_token_as_kustomer_takes_it_has_no_problem() -> None:
    now = datetime.now(UTC)
    assert (
        token_problems(
            _minted(KUSTOMER_HEADER, {"externalId": "crm-42", "iat": int(now.timestamp())}), now, "externalId"
        )
        == []
    )


@pytest.mark.parametrize(
    ("header", "claims", "problem"),
    [
        (b'{"typ":"JWT","alg":"HS256"}', {"externalId": "a"}, 'the header is not exactly {"alg":"HS256","typ":"JWT"}'),
        (KUSTOMER_HEADER, {"iat": 0, "externalId": "a"}, "the claims do not end with iat"),
        (KUSTOMER_HEADER, {"email": "a@example.com"}, "TokenIdentity is externalId but the token carries ['email']"),
        (KUSTOMER_HEADER, {"sub": "a"}, "the claims are ['sub'], not externalId and/or email"),
    ],
)
def test_a_token_not_shaped_for_kustomer_is_named(header: bytes, claims: dict[str, Any], problem: str) -> None:
    now = datetime.now(UTC)
    claims = {**claims, "iat": claims.get("iat", int(now.timestamp()))} if "iat" not in claims else claims
    assert problem in token_problems(_minted(header, claims), now, "externalId")


def test_a_token_issued_two_minutes_off_is_named() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    answer = _minted(KUSTOMER_HEADER, {"externalId": "a", "iat": int(now.timestamp()) - 120})
    assert token_problems(answer, now, "externalId") == ["iat is -120 s from this machine's clock"]


# --- every check is broken somewhere --------------------------------------------------------------------------


def test_every_check_is_shown_to_fail_on_its_defect() -> None:
    # Given the checks broken on the local stack and those broken here against AWS stand-ins
    # Then together they are every check, and what has no local stand-in is broken here
    assert set(CHECKS) == BROKEN_HERE | BROKEN_WITH_AWS_STAND_INS
    assert set(LOCALLY_UNAVAILABLE) <= BROKEN_WITH_AWS_STAND_INS
