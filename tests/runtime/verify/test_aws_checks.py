"""make verify's AWS side: the bad input that gets one line and exit 2 (against moto's CloudFormation on loopback,
through botocore's whole credential and endpoint path), and the checks that need AWS itself, against botocore's
Stubber (rotation, what the routes invoke, the schedule's group, stack states)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tools.harness.services import MotoServer
from tools.verify import __main__ as cli
from tools.verify.checks import (
    CHECKS,
    Run,
    heartbeat_window,
    refresh_failed_search,
    run_checks,
    run_one,
    schedule_interval,
    stack_unusable,
    token_problems,
)
from tools.verify.facts import APPLICATION_RESOURCES, Facts, Resource, StackDescription
from tools.verify.http import Answer
from tools.verify.local import LOCALLY_UNAVAILABLE
from tools.verify.report import Result, Status

from . import test_local_checks
from .conftest import BREAKERS, assert_fails, breaks

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
MINT = "kct-MintTokenFunction-AbC123"
MINT_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{MINT}"
REFRESHER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:kct-RefreshSecretFunction-XyZ789"
LAYER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:kct-shared:7"
SIGNING_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:kct/SigningSecret-AbCdEf"


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


def _facts(
    clients: dict[str, Any], outputs: dict[str, str] | None = None, outputs_all: Any = None, **stack: Any
) -> Facts:
    description = _stack(**stack) if outputs_all is None else _stack(**stack, outputs=outputs_all)
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


@breaks("signing-secret-rotation")
def test_rotation_off_fails(secretsmanager: tuple[Any, Stubber]) -> None:
    client, stubber = secretsmanager
    stubber.add_response("describe_secret", {"RotationEnabled": False}, {"SecretId": SIGNING_ARN})
    result = _only(_facts({"secretsmanager": client}), "signing-secret-rotation")
    assert_fails(result, "rotation of the signing secret is off", "docs/verify.md#signing-secret-rotation")


@breaks("signing-secret-rotation")
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
    ("status", "shown", "advice"),
    [
        ("ROLLBACK_COMPLETE", "kct is ROLLBACK_COMPLETE", "docs/verify.md#stack"),
        ("UPDATE_IN_PROGRESS", "it is still changing", "run verify again once the stack operation ends"),
        (
            "CREATE_IN_PROGRESS",
            "it is still being created",
            "run verify when it is CREATE_COMPLETE (docs/verify.md#stack",
        ),
        (
            "REVIEW_IN_PROGRESS",
            "it is still being created",
            "run verify when it is CREATE_COMPLETE (docs/verify.md#stack",
        ),
    ],
)
@breaks("stack")
def test_a_stack_that_cannot_run_fails_and_the_rest_is_skipped(status: str, shown: str, advice: str) -> None:
    # Given a stack in that state (one being created has no outputs yet)
    outputs = {} if status.startswith(("CREATE", "REVIEW")) else _stack().outputs
    results = run_checks(_facts({}, status=status, outputs_all=outputs))
    assert_fails(results[0], shown, advice)
    assert {result.status for result in results[1:]} == {Status.SKIP}


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "the update is done, CloudFormation is deleting the resources it replaced",
        ),
        ("UPDATE_ROLLBACK_COMPLETE", "the last change rolled back, so it runs the template before that change"),
        ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "the last change rolled back"),
        ("IMPORT_ROLLBACK_COMPLETE", "the last change rolled back"),
    ],
)
def test_a_stack_that_works_passes_and_the_other_checks_run(status: str, shown: str) -> None:
    facts = _facts({}, status=status)
    result = _only(facts, "stack")
    assert result.status is Status.PASS
    assert shown in result.summary
    assert stack_unusable(facts) is None


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
        # two pages of routes: every page is read
        apis.add_response(
            "get_routes",
            {"Items": [{"RouteKey": "POST /token", "Target": "integrations/i1"}], "NextToken": "page-2"},
            {"ApiId": "kct-TokenApi"},
        )
        apis.add_response(
            "get_routes",
            {"Items": [{"RouteKey": "POST /server/token", "Target": "integrations/i1"}]},
            {"ApiId": "kct-TokenApi", "NextToken": "page-2"},
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


@breaks("routes-invoke-live")
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


@breaks("routes-invoke-live")
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


# --- the signing secret's pending version, and the schedule's interval ------------------------------------------


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        (None, timedelta(minutes=15)),
        ("rate(15 minutes)", timedelta(minutes=15)),
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(6 hours)", timedelta(hours=6)),
        ("rate(1 day)", timedelta(days=1)),
        ("cron(0/20 * * * ? *)", timedelta(hours=1)),  # not read: a safe upper guess
    ],
)
def test_the_schedule_s_interval_is_read_from_refresh_schedule(expression: str | None, interval: timedelta) -> None:
    assert schedule_interval(expression)[0] == interval


@pytest.mark.parametrize(("minutes", "status"), [(69, Status.PASS), (71, Status.FAIL)])
def test_a_pending_version_is_stuck_after_10_minutes_and_one_run_of_the_schedule(minutes: int, status: Status) -> None:
    # Given an hourly schedule and an AWSPENDING version that many minutes old
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    client = boto3.client("secretsmanager", region_name=REGION)
    facts = _facts({"secretsmanager": client}, parameters={"RefreshSchedule": "rate(1 hour)"})
    facts.now = lambda: now
    versions = [
        {"VersionId": "a" * 32, "VersionStages": ["AWSCURRENT"], "CreatedDate": now - timedelta(days=3)},
        {"VersionId": "b" * 32, "VersionStages": ["AWSPENDING"], "CreatedDate": now - timedelta(minutes=minutes)},
    ]
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_secret_version_ids", {"Versions": versions}, {"SecretId": SIGNING_ARN, "IncludeDeprecated": False}
        )
        result = _only(facts, "signing-secret")
    # Then within 70 minutes (10 and the hour) it awaits the next run; after, a rotation that never finished
    assert result.status is status, result
    if status is Status.FAIL:
        assert_fails(result, "over 70 min: 10 min and one run of RefreshSchedule rate(1 hour)", STUCK_RUNBOOK)
    else:
        assert "awaits the next scheduled run" in result.summary


STUCK_RUNBOOK = "docs/operations.md#a-rotation-that-never-finished-blocks-rotate-secret"


# --- the refresher's runs, as CloudWatch answers them ---------------------------------------------------------

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
REFRESHER = "kct-RefreshSecretFunction-XyZ789"


def _minutes_ago(*minutes: int) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


def _refresh_runs(
    parameters: dict[str, str], window: timedelta, results: list[dict[str, Any]], pages: int = 1
) -> Result:
    """refresh-runs against the Stubber's GetMetricData, asserting what verify asks."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stack = _stack()
    resources = {**stack.resources, "RefreshSecretFunction": Resource(REFRESHER, "AWS::Lambda::Function")}
    facts = _facts({"cloudwatch": cloudwatch}, parameters=parameters, resources=resources)
    facts.now = lambda: NOW
    expected = {
        "MetricDataQueries": [
            {
                "Id": "succeeded",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "KustomerChatToken",
                        "MetricName": "RefreshSucceeded",
                        "Dimensions": [{"Name": "service", "Value": "kct"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
            {
                "Id": "failed",
                "Expression": 'SEARCH(\'{KustomerChatToken,service,Reason} MetricName="RefreshFailed" '
                "service=\"kct\"', 'Sum', 60)",
                "Label": "${PROP('Dim.Reason')}",
            },
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Errors",
                        "Dimensions": [{"Name": "FunctionName", "Value": REFRESHER}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
        ],
        "StartTime": NOW - window,
        "EndTime": NOW + timedelta(minutes=1),
        "ScanBy": "TimestampAscending",
    }
    with Stubber(cloudwatch) as stubber:
        split = len(results) // pages or 1
        chunks = [results[i : i + split] for i in range(0, len(results), split)] or [[]]
        for index, chunk in enumerate(chunks):
            page: dict[str, Any] = {"MetricDataResults": chunk}
            if index < len(chunks) - 1:
                page["NextToken"] = f"page-{index + 2}"
            asked = {**expected, "NextToken": f"page-{index + 1}"} if index else expected
            stubber.add_response("get_metric_data", page, asked)
        result = _only(facts, "refresh-runs")
        stubber.assert_no_pending_responses()
    return result


def _series(metric_id: str, times: list[datetime], label: str | None = None) -> dict[str, Any]:
    return {
        "Id": metric_id,
        "Label": label or metric_id,
        "Timestamps": times,
        "Values": [1.0] * len(times),
        "StatusCode": "Complete",
    }


def test_the_heartbeat_window_of_auto_is_an_hour() -> None:
    assert heartbeat_window("auto") == timedelta(hours=1)
    assert heartbeat_window(None) == timedelta(hours=1)
    assert heartbeat_window("7200") == timedelta(hours=2)


def test_refresh_runs_on_a_stack_with_the_default_heartbeat_auto_reads_the_last_hour() -> None:
    # Given the template's default RefreshHeartbeatSeconds, as DescribeStacks returns it
    result = _refresh_runs(
        {"RefreshHeartbeatSeconds": "auto"}, timedelta(hours=1), [_series("succeeded", _minutes_ago(44, 29, 14))]
    )
    # Then it reads the last hour, minute by minute, and passes
    assert (result.status, result.summary) == (
        Status.PASS,
        "succeeded in 3 minute(s) of the last 60 min (RefreshHeartbeatSeconds), the latest 14 min ago",
    )


def test_refresh_runs_reads_a_longer_heartbeat_window_and_every_page() -> None:
    results = [
        _series("succeeded", _minutes_ago(100)),
        _series("failed", _minutes_ago(110), "Unauthorized"),
        _series("errors", _minutes_ago(110)),
    ]
    result = _refresh_runs({"RefreshHeartbeatSeconds": "7200"}, timedelta(hours=2), results, pages=3)
    assert result.status is Status.PASS
    assert result.summary.endswith("the latest 100 min ago; earlier failures (Unauthorized) since recovered")


@pytest.mark.parametrize(
    ("failed", "succeeded"),
    [
        ([16], [15]),  # the async retry a minute later succeeded
        ([15], [15]),  # a failure and a success in the same minute: followed by a success
    ],
)
def test_a_failure_followed_by_a_success_is_a_recovered_refresher(failed: list[int], succeeded: list[int]) -> None:
    results = [
        _series("succeeded", _minutes_ago(*succeeded)),
        _series("failed", _minutes_ago(*failed), "KustomerUnreachable"),
        _series("errors", _minutes_ago(*failed)),
    ]
    result = _refresh_runs({}, timedelta(hours=1), results)
    assert result.status is Status.PASS, result
    assert result.summary.endswith("earlier failures (KustomerUnreachable) since recovered")


@breaks("refresh-runs")
def test_a_failure_after_the_last_success_fails_with_every_reason_the_search_found() -> None:
    results = [
        _series("succeeded", _minutes_ago(40)),
        _series("failed", _minutes_ago(30), "ApiKeyMissing"),
        _series("failed", _minutes_ago(15), "Unauthorized"),
        _series("errors", _minutes_ago(30, 15)),
    ]
    result = _refresh_runs({}, timedelta(hours=1), results)
    assert_fails(
        result,
        "the refresher failed in 2 minute(s) of the last 60 min, the last 15 min ago (ApiKeyMissing, Unauthorized), "
        "and has not succeeded since",
        "docs/operations.md#refresherrorsalarm",
    )


@breaks("refresh-runs")
def test_a_failure_lambda_counted_without_refresh_failed_fails() -> None:
    # Given a run that timed out (no RefreshFailed written), after the last success
    result = _refresh_runs(
        {}, timedelta(hours=1), [_series("succeeded", _minutes_ago(30)), _series("errors", _minutes_ago(15))]
    )
    assert_fails(result, "(Lambda counted errors, no RefreshFailed)", "docs/operations.md#refresherrorsalarm")


def test_the_search_names_the_stack_exactly() -> None:
    assert refresh_failed_search("kct-e2e-1-1") == (
        "SEARCH('{KustomerChatToken,service,Reason} MetricName=\"RefreshFailed\" service=\"kct-e2e-1-1\"', 'Sum', 60)"
    )


# --- the alarms and their metrics -------------------------------------------------------------------------------

API_ID = "abc123"
ALARMS = {
    "TokenLatencyAlarm": "kct-TokenLatencyAlarm-A1",
    "MintErrorsAlarm": "kct-MintErrorsAlarm-B2",
    "RefreshHeartbeatAlarm": "kct-RefreshHeartbeatAlarm-C3",
}
ROUTE = (("ApiId", API_ID), ("Method", "POST"), ("Resource", "/token"), ("Stage", "$default"))


def _dimensions(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in pairs]


def _alarm(name: str, state: str = "OK") -> dict[str, Any]:
    alarm: dict[str, Any] = {"AlarmName": ALARMS[name], "StateValue": state}
    if name == "TokenLatencyAlarm":
        metric = {"Namespace": "AWS/ApiGateway", "MetricName": "Latency", "Dimensions": _dimensions(ROUTE)}
        alarm["Metrics"] = [
            {"Id": "latency", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "p99"}, "ReturnData": False},
            {"Id": "p99", "Expression": "IF(requests >= 10, latency, 0)", "ReturnData": True},
        ]
    elif name == "MintErrorsAlarm":
        alarm.update(Namespace="AWS/Lambda", MetricName="Errors", Dimensions=_dimensions((("FunctionName", MINT),)))
    else:
        alarm.update(
            Namespace="KustomerChatToken", MetricName="RefreshSucceeded", Dimensions=_dimensions((("service", "kct"),))
        )
    return alarm


def _alarm_facts(cloudwatch: Any, api: Any | None = None) -> Facts:
    stack = _stack()
    resources = {
        **stack.resources,
        **{logical: Resource(name, "AWS::CloudWatch::Alarm") for logical, name in ALARMS.items()},
    }
    facts = _facts({"cloudwatch": cloudwatch, "apigatewayv2": api}, resources=resources)
    facts.now = lambda: NOW
    return facts


def _describe_alarms(stubber: Stubber, states: dict[str, str] | None = None) -> None:
    """DescribeAlarms in two pages: every page is read."""
    names = sorted(ALARMS.values())
    alarms = {ALARMS[logical]: _alarm(logical, (states or {}).get(logical, "OK")) for logical in ALARMS}
    asked = {"AlarmNames": names, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    stubber.add_response("describe_alarms", {"MetricAlarms": [alarms[names[0]]], "NextToken": "p2"}, asked)
    stubber.add_response(
        "describe_alarms", {"MetricAlarms": [alarms[n] for n in names[1:]]}, {**asked, "NextToken": "p2"}
    )


def test_the_alarms_are_read_from_every_page_of_describe_alarms() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    with Stubber(cloudwatch) as stubber:
        _describe_alarms(stubber)
        result = _only(_alarm_facts(cloudwatch), "alarms")
    assert (result.status, result.summary) == (Status.PASS, "3 alarms, none in ALARM")


def test_a_refresher_alarm_soon_after_a_change_points_at_what_a_first_deploy_fires() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    facts = _alarm_facts(cloudwatch)
    facts.stack = replace(facts.stack, last_changed=NOW - timedelta(minutes=10))
    with Stubber(cloudwatch) as stubber:
        _describe_alarms(stubber, {"RefreshHeartbeatAlarm": "ALARM"})
        result = _only(facts, "alarms")
    assert result.status is Status.FAIL
    assert result.summary == (
        "in ALARM: RefreshHeartbeatAlarm; right after a first deploy, until the API key is stored and the signing "
        "secret fetched, refresher alarms fire: see docs/deploy.md#after-the-first-deploy"
    )


def _alarm_metrics(
    seen: set[str], listed: list[tuple[tuple[str, str], ...]] | None = None, stage: dict[str, Any] | None = None
) -> Result:
    """alarm-metrics: which watched metrics have data (TokenLatency's route, MintErrors, RefreshHeartbeat), what
    ListMetrics lists for the route's API, and the stage GetStage answers."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    api = boto3.client("apigatewayv2", region_name=REGION)
    metrics = {
        "AWS/ApiGateway Latency": ("AWS/ApiGateway", "Latency", ROUTE),
        "AWS/Lambda Errors": ("AWS/Lambda", "Errors", (("FunctionName", MINT),)),
        "KustomerChatToken RefreshSucceeded": ("KustomerChatToken", "RefreshSucceeded", (("service", "kct"),)),
    }
    order = sorted(metrics)  # as verify sorts them: by how they are shown
    with Stubber(cloudwatch) as watch, Stubber(api) as apis:
        _describe_alarms(watch)
        queries = [
            {
                "Id": f"m{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": metrics[key][0],
                        "MetricName": metrics[key][1],
                        "Dimensions": _dimensions(metrics[key][2]),
                    },
                    "Period": 3600,
                    "Stat": "SampleCount",
                },
            }
            for index, key in enumerate(order)
        ]
        answers = [
            {"Id": f"m{index}", "Label": key, "Timestamps": [NOW - timedelta(hours=1)], "Values": [3.0]}
            if key in seen
            else {"Id": f"m{index}", "Label": key, "Timestamps": [], "Values": []}
            for index, key in enumerate(order)
        ]
        watch.add_response(
            "get_metric_data",
            {"MetricDataResults": answers},
            {
                "MetricDataQueries": queries,
                "StartTime": NOW - timedelta(hours=24),
                "EndTime": NOW + timedelta(minutes=1),
                "ScanBy": "TimestampAscending",
            },
        )
        for key in order:
            if key in seen:
                continue
            if key == "AWS/ApiGateway Latency":
                stage_answer: dict[str, Any] = (
                    stage
                    if stage is not None
                    else {"StageName": "$default", "DefaultRouteSettings": {"DetailedMetricsEnabled": True}}
                )
                apis.add_response("get_stage", stage_answer, {"ApiId": API_ID, "StageName": "$default"})
                if not stage_answer.get("DefaultRouteSettings", {}).get("DetailedMetricsEnabled"):
                    continue
            namespace, name, dimensions = metrics[key]
            found = listed if key == "AWS/ApiGateway Latency" and listed else [dimensions[:1]]
            watch.add_response(
                "list_metrics",
                {
                    "Metrics": [
                        {"Namespace": namespace, "MetricName": name, "Dimensions": _dimensions(d)} for d in found
                    ]
                },
                {"Namespace": namespace, "MetricName": name, "Dimensions": _dimensions(dimensions[:1])},
            )
        result = _only(_alarm_facts(cloudwatch, api), "alarm-metrics")
        watch.assert_no_pending_responses()
        apis.assert_no_pending_responses()
    return result


def test_alarm_metrics_with_data_on_the_route_pass_and_say_which() -> None:
    result = _alarm_metrics({"AWS/ApiGateway Latency", "KustomerChatToken RefreshSucceeded"})
    assert (result.status, result.summary) == (
        Status.PASS,
        "2 of 3 watched metrics have data with their alarms' dimensions (TokenLatencyAlarm's AWS/ApiGateway Latency "
        "{ApiId=abc123, Method=POST, Resource=/token, Stage=$default}); no data yet for MintErrorsAlarm "
        "(written only when something fails)",
    )


def test_a_route_metric_without_data_yet_is_skipped_with_the_reason() -> None:
    # Given no data yet for the route, and ListMetrics lists only another route of the same API
    other_route = (("ApiId", API_ID), ("Method", "POST"), ("Resource", "/server/token"), ("Stage", "$default"))
    result = _alarm_metrics({"KustomerChatToken RefreshSucceeded", "AWS/Lambda Errors"}, listed=[other_route])
    assert result.status is Status.SKIP
    assert result.summary.startswith(
        "no data yet for TokenLatencyAlarm's AWS/ApiGateway Latency {ApiId=abc123, Method=POST, Resource=/token, "
        "Stage=$default} in the last 24 h: CloudWatch shows a route's metrics minutes after its requests"
    )


@breaks("alarm-metrics")
def test_a_route_metric_written_under_another_stage_fails() -> None:
    # Given the route's Latency exists, but with another Stage than the alarm's
    elsewhere = (("ApiId", API_ID), ("Method", "POST"), ("Resource", "/token"), ("Stage", "default"))
    result = _alarm_metrics({"KustomerChatToken RefreshSucceeded"}, listed=[elsewhere, (("ApiId", API_ID),)])
    assert_fails(
        result,
        "TokenLatencyAlarm watches AWS/ApiGateway Latency {ApiId=abc123, Method=POST, Resource=/token, "
        "Stage=$default}, which has no data, while CloudWatch has Latency of the same resource with Stage=default",
        "docs/verify.md#alarm-metrics",
    )


@breaks("alarm-metrics")
def test_a_route_metric_of_a_stage_without_detailed_metrics_fails() -> None:
    stage = {"StageName": "$default", "DefaultRouteSettings": {"DetailedMetricsEnabled": False}}
    result = _alarm_metrics({"KustomerChatToken RefreshSucceeded"}, stage=stage)
    assert_fails(
        result,
        "but the stage $default has DetailedMetricsEnabled off for POST /token",
        "docs/verify.md#alarm-metrics",
    )


# --- what verify never shows ------------------------------------------------------------------------------------


def test_a_check_that_fails_unexpectedly_shows_the_error_s_type_and_never_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a check whose error message holds a header value (urllib's "Invalid header value b'Bearer ...'")
    def broken(run: Run) -> str:
        raise ValueError("Invalid header value b'Bearer eyJhbGciOiJIUzI1NiJ9.secret.token\\n'")

    monkeypatch.setitem(CHECKS, "schedule", broken)
    result = _only(_facts({}), "schedule")
    assert result.status is Status.FAIL
    assert result.summary == "the check itself failed with ValueError (its message is not shown: it may hold a token)"
    assert "eyJ" not in json.dumps(result.as_json())


# --- every check is broken somewhere --------------------------------------------------------------------------


def test_every_check_is_shown_to_fail_on_its_defect() -> None:
    # Given the tests marked as breaking a check (each fails unless it saw that check FAIL), in both modules
    assert test_local_checks.__name__ in {name.rsplit(".", 1)[0] for names in BREAKERS.values() for name in names}
    # Then every check has one, and no mark names a check that does not exist
    assert sorted(set(CHECKS) - set(BREAKERS)) == []
    assert sorted(set(BREAKERS) - set(CHECKS)) == []
    # And what has no local stand-in is broken here, against AWS's answers
    for name in LOCALLY_UNAVAILABLE:
        assert any(test.startswith(__name__) for test in BREAKERS[name]), name
