"""Each check of make verify against make serve's local stack: PASS when it is healthy, and FAIL, with the advice
that fixes it, when the stack is broken the way the check exists to catch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.runtime.verify.conftest import assert_fails, breaks, check, with_outputs
from tests.support.leaks import LEAK_WATCH
from tools.harness.fake_kustomer import error_reply, secret_reply
from tools.local_api import LOCAL_DEV_CALLER_ROLE_ARN
from tools.sam_transform import translated_template
from tools.verify.checks import CHECKS, UNLISTED_ORIGIN, Run, run_checks, run_one
from tools.verify.facts import StackRefused
from tools.verify.local import LOCALLY_UNAVAILABLE, LocalVerify
from tools.verify.report import Status, render_text


def test_the_healthy_local_stack_passes_every_check_it_can_run(local: LocalVerify) -> None:
    # Given make serve's stack, the refresher run once
    # When every check runs
    results = run_checks(local.facts)
    # Then each passes, but those with no local stand-in, which say why
    assert [result.check for result in results] == list(CHECKS)
    assert {result.check: result.status for result in results if result.status is not Status.PASS} == {
        name: Status.SKIP for name in LOCALLY_UNAVAILABLE
    }
    assert all(result.summary for result in results)
    skipped = len(LOCALLY_UNAVAILABLE)
    assert render_text(results).splitlines()[-1] == f"{len(CHECKS) - skipped} passed, 0 failed, {skipped} skipped"


def test_the_local_stack_s_parameters_are_shaped_as_describe_stacks_answers_them(local: LocalVerify) -> None:
    # Given the template's parameters, When the local stack describes itself
    parameters = local.facts.stack.parameters
    declared = translated_template({})["Parameters"]
    # Then every parameter is there, as a string, the template's default unless make serve overrides it
    assert set(parameters) == set(declared)
    assert all(isinstance(value, str) for value in parameters.values())
    assert parameters["RefreshHeartbeatSeconds"] == "auto"
    assert parameters["RefreshSchedule"] == "rate(15 minutes)"
    assert parameters["AllowedOrigins"] == local.served.site.url


# --- the stack and the API ---------------------------------------------------------------------------------


@breaks("stack")
def test_a_stack_whose_update_failed_to_roll_back_fails_and_the_rest_is_skipped(local: LocalVerify) -> None:
    local.facts.stack = replace(local.facts.stack, status="UPDATE_ROLLBACK_FAILED", status_reason="Resource failed")
    results = run_checks(local.facts)
    assert_fails(results[0], "kustomer-chat-token is UPDATE_ROLLBACK_FAILED", "docs/verify.md#stack")
    assert results[0].summary.endswith("(Resource failed)")
    assert {result.status for result in results[1:]} == {Status.SKIP}
    assert results[1].summary == "the stack is UPDATE_ROLLBACK_FAILED (check stack)"


def test_a_rolled_back_update_passes_and_says_which_template_runs(local: LocalVerify) -> None:
    local.facts.stack = replace(local.facts.stack, status="UPDATE_ROLLBACK_COMPLETE")
    result = check(local, "stack")
    assert result.status is Status.PASS
    assert result.summary.endswith("the last change rolled back, so it runs the template before that change")


def test_an_api_that_does_not_answer_is_one_line_not_a_column_of_failures(local: LocalVerify) -> None:
    # Given an ApiUrl where nothing listens (the API deleted, a typo)
    with_outputs(local, ApiUrl="http://127.0.0.1:9")
    # When verify runs, Then it refuses with one line saying where it asked and what to check
    with pytest.raises(StackRefused) as refused:
        run_checks(local.facts)
    assert str(refused.value).startswith(
        "the token API of kustomer-chat-token does not answer: OPTIONS http://127.0.0.1:9/token"
    )
    assert str(refused.value).endswith("check the ApiUrl output, your network and proxy (docs/verify.md#api)")
    assert "\n" not in str(refused.value)


@breaks("api")
def test_an_api_that_does_not_answer_fails_the_api_check(local: LocalVerify) -> None:
    with_outputs(local, ApiUrl="http://127.0.0.1:9")
    result = run_one(Run(local.facts), "api")
    assert_fails(result, "the token API does not answer: OPTIONS http://127.0.0.1:9/token", "docs/verify.md#api")


# --- CORS and the authorizer --------------------------------------------------------------------------------


@contextmanager
def cors_changed(local: LocalVerify, **changes: Any) -> Iterator[None]:
    api = local.served.api
    saved = api.cors
    assert saved is not None
    api.cors = replace(saved, **changes)
    try:
        yield
    finally:
        api.cors = saved


@breaks("cors-preflight")
def test_cors_that_does_not_list_the_site_fails_the_preflight(local: LocalVerify) -> None:
    # Given CORS without the site's origin
    with cors_changed(local, origins=("https://old-site.example",)):
        result = check(local, "cors-preflight")
    # Then the site's preflight fails, naming the origin and what it got
    site = local.served.site.url
    assert_fails(result, f"{site}: Access-Control-Allow-Origin is absent", "docs/verify.md#cors-preflight")


@breaks("cors-preflight")
def test_cors_that_does_not_allow_the_authorization_header_fails_the_preflight(local: LocalVerify) -> None:
    with cors_changed(local, headers=("content-type",)):
        result = check(local, "cors-preflight")
    assert_fails(result, "does not allow authorization", "docs/verify.md#cors-preflight")


@breaks("cors-unlisted-origin")
def test_cors_that_allows_an_unlisted_origin_fails(local: LocalVerify) -> None:
    cors = local.served.api.cors
    assert cors is not None
    with cors_changed(local, origins=(*cors.origins, UNLISTED_ORIGIN)):
        result = check(local, "cors-unlisted-origin")
    assert_fails(
        result,
        f"an origin not in AllowedOrigins ({UNLISTED_ORIGIN}) is allowed",
        "docs/verify.md#cors-unlisted-origin",
    )


@breaks("cors-exposes-retry-after")
def test_cors_that_does_not_expose_retry_after_fails(local: LocalVerify) -> None:
    with cors_changed(local, expose=()):
        result = check(local, "cors-exposes-retry-after")
    assert_fails(
        result,
        "the 401 of POST /token does not expose Retry-After (Access-Control-Expose-Headers: absent)",
        "docs/verify.md#cors-exposes-retry-after",
    )


def test_the_401_is_reported_with_or_without_cors_headers(local: LocalVerify) -> None:
    # Given the local gateway's 401 carries CORS headers (what API Gateway does is what verify reports on AWS)
    assert check(local, "token-unauthenticated").summary == (
        "401 from the JWT authorizer; the 401 carries CORS headers, so a page can read it"
    )
    # When the answer to the site's origin carries none
    with cors_changed(local, origins=()):
        result = check(local, "token-unauthenticated")
    # Then it still passes, and says what a browser sees
    assert result.status is Status.PASS
    assert result.summary == (
        "401 from the JWT authorizer; the 401 carries no CORS headers, so a browser sees a network error, not the 401"
    )


@breaks("token-unauthenticated")
def test_a_token_route_without_the_jwt_authorizer_fails(local: LocalVerify) -> None:
    # Given POST /token open (no authorizer): the mint answers its own 401
    api = local.served.api
    saved = api.routes
    api.routes = {
        key: replace(route, authorizer=None) if key == ("POST", "/token") else route for key, route in saved.items()
    }
    try:
        result = check(local, "token-unauthenticated")
    finally:
        api.routes = saved
    assert_fails(
        result, "POST /token without a token reached the mint (its own 401)", "docs/verify.md#token-unauthenticated"
    )


@breaks("server-token-unsigned")
def test_a_server_token_route_without_iam_authorization_fails(local: LocalVerify) -> None:
    # Given POST /server/token without AWS_IAM: an unsigned request reaches the mint, which refuses it itself
    assert check(local, "server-token-unsigned").summary == (
        "403 from API Gateway before the mint ran: the route needs a SigV4 signature (AWS_IAM)"
    )
    api = local.served.api
    saved = api.routes
    api.routes = {
        key: replace(route, authorizer=None) if key == ("POST", "/server/token") else route
        for key, route in saved.items()
    }
    try:
        result = check(local, "server-token-unsigned")
    finally:
        api.routes = saved
    assert_fails(
        result,
        "POST /server/token without a signature reached the mint or was not refused",
        "docs/verify.md#server-token-unsigned",
    )


# --- tokens ---------------------------------------------------------------------------------------------------


def test_without_an_identity_provider_token_the_token_check_is_skipped(local: LocalVerify) -> None:
    saved = local.facts.access_token
    local.facts.access_token = lambda: None
    try:
        result = check(local, "token-with-identity")
    finally:
        local.facts.access_token = saved
    assert result.status is Status.SKIP
    assert "set VERIFY_ACCESS_TOKEN, or VERIFY_ACCESS_TOKEN_COMMAND" in result.summary


@breaks("token-with-identity")
def test_a_token_the_authorizer_refuses_fails_with_its_reason(local: LocalVerify) -> None:
    # Given an access token of another issuer (here: not a JWT at all)
    saved = local.facts.access_token
    local.facts.access_token = lambda: "not-a-jwt"
    try:
        result = check(local, "token-with-identity")
    finally:
        local.facts.access_token = saved
    assert_fails(result, "the JWT authorizer refused your token", "docs/verify.md#token-with-identity")


@contextmanager
def mint_started_with(local: LocalVerify, **parameters: str) -> Iterator[None]:
    """The gateway invokes a mint started with other template parameters (a stale version, another setting)."""
    api = local.served.api
    saved = api.mint
    api.mint = local.stack.start_function(
        "MintTokenFunction", {"ServerTokenCallers": LOCAL_DEV_CALLER_ROLE_ARN, **parameters}
    )
    try:
        yield
    finally:
        LEAK_WATCH.read_by_test(api.mint.logs())  # type: ignore[attr-defined]
        api.mint = saved


def test_a_caller_not_listed_in_server_token_callers_passes_and_says_so(local: LocalVerify) -> None:
    with mint_started_with(local, ServerTokenCallers="arn:aws:iam::123456789012:role/someone-else"):
        result = check(local, "server-token")
    assert result.status is Status.PASS
    assert result.summary.startswith(
        "403 caller_not_allowed for arn:aws:sts::123456789012:assumed-role/local-dev-backend"
    )


@breaks("server-token")
def test_a_server_token_request_the_gateway_refuses_fails(local: LocalVerify) -> None:
    # Given a signature API Gateway does not accept (locally: the wrong key)
    saved = local.facts.sign_server_token
    local.facts.sign_server_token = lambda url, body, headers: {**headers, "Authorization": "LocalDevIam wrong"}
    try:
        result = check(local, "server-token")
    finally:
        local.facts.sign_server_token = saved
    assert_fails(result, "API Gateway refused the SigV4-signed request", "docs/verify.md#server-token")
    assert "execute-api:Invoke on the ServerTokenInvokeArn output" in (result.advice or "")


# --- secrets --------------------------------------------------------------------------------------------------


@breaks("signing-secret")
def test_a_rotation_still_running_passes_and_a_stuck_awspending_fails(local: LocalVerify) -> None:
    # Given a rotation that made an AWSPENDING version and stopped
    client = local.stack.client
    arn = local.stack.signing_secret_arn
    pending = client.put_secret_value(
        SecretId=arn,
        SecretString=LEAK_WATCH.register(uuid.uuid4().hex * 2, "signing secret"),
        VersionStages=["AWSPENDING"],
    )["VersionId"]
    try:
        # Then within 10 minutes and one run of the schedule (rate(15 minutes)) it is a rotation running, or one
        # the next scheduled run withdraws
        running = check(local, "signing-secret")
        assert running.status is Status.PASS
        assert "a rotation is running or awaits the next scheduled run (AWSPENDING since" in running.summary
        local.set_clock(timedelta(minutes=24))
        assert check(local, "signing-secret").status is Status.PASS
        # And 26 minutes later it is one that never finished, which blocks rotate-secret
        local.set_clock(timedelta(minutes=26))
        stuck = check(local, "signing-secret")
    finally:
        client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=pending)
    assert_fails(
        stuck,
        "AWSPENDING is left on another version",
        "docs/operations.md#a-rotation-that-never-finished-blocks-rotate-secret",
    )


@breaks("signing-secret")
def test_a_signing_secret_without_a_value_fails(local: LocalVerify) -> None:
    # Given the signing secret as the first deploy leaves it: no version
    empty = local.stack.client.create_secret(Name=f"verify-empty-{uuid.uuid4().hex[:8]}")["ARN"]
    with_outputs(local, SigningSecretArn=empty)
    result = check(local, "signing-secret")
    assert_fails(result, "the signing secret holds no value", "docs/deploy.md#after-the-first-deploy")


@breaks("api-key-secret")
def test_an_api_key_secret_without_a_value_fails(local: LocalVerify) -> None:
    empty = local.stack.client.create_secret(Name=f"verify-empty-{uuid.uuid4().hex[:8]}")["ARN"]
    with_outputs(local, ApiKeySecretArn=empty)
    result = check(local, "api-key-secret")
    assert_fails(result, "the API key secret holds no value", "docs/deploy.md#after-the-first-deploy")
    assert "StoreApiKeyCommand" in (result.advice or "")


# --- the refresher ---------------------------------------------------------------------------------------------


def _schedule(local: LocalVerify) -> tuple[Any, dict[str, Any]]:
    scheduler = local.aws("scheduler")
    stack = local.facts.stack
    (name,) = stack.of_type("AWS::Scheduler::Schedule").values()
    groups = list(stack.of_type("AWS::Scheduler::ScheduleGroup").values()) or ["default"]
    return scheduler, scheduler.get_schedule(Name=name, GroupName=groups[0])


def _set_state(local: LocalVerify, state: str) -> None:
    scheduler, schedule = _schedule(local)
    scheduler.update_schedule(
        Name=schedule["Name"],
        GroupName=schedule["GroupName"],
        ScheduleExpression=schedule["ScheduleExpression"],
        FlexibleTimeWindow=schedule["FlexibleTimeWindow"],
        Target=schedule["Target"],
        State=state,
    )


@breaks("schedule")
def test_a_disabled_schedule_fails(local: LocalVerify) -> None:
    _set_state(local, "DISABLED")
    try:
        result = check(local, "schedule")
    finally:
        _set_state(local, "ENABLED")
    assert_fails(
        result,
        "is DISABLED: a secret regenerated at Kustomer would not reach the mint",
        "docs/operations.md#refreshheartbeatalarm",
    )


@breaks("refresh-runs")
def test_a_refresher_that_fails_after_its_last_success_fails(local: LocalVerify) -> None:
    # Given Kustomer refuses the API key on the next scheduled run, 15 minutes later
    kustomer = local.stack.kustomer
    kustomer.answer(error_reply(403, "Forbidden"))
    try:
        failed = local.refresh(later=timedelta(minutes=15))
    finally:
        kustomer.answer(secret_reply(local.stack.kustomer_secret))
    assert failed.error is not None
    # When verify runs then
    local.set_clock(timedelta(minutes=15))
    result = check(local, "refresh-runs")
    # Then it fails, with the reason the refresher recorded and the runbook of its alarm
    assert_fails(result, "and has not succeeded since", "docs/operations.md#refresherrorsalarm")
    assert result.summary.startswith("the refresher failed in 1 minute(s) of the last 60 min, the last ")
    assert " s ago (Forbidden), and has not succeeded since" in result.summary


def test_a_refresher_whose_failure_a_later_run_recovered_passes(local: LocalVerify) -> None:
    # Given a run that fails 15 minutes later (Kustomer refuses the key), and the retry a minute after it succeeds
    kustomer = local.stack.kustomer
    kustomer.answer(error_reply(403, "Forbidden"))
    try:
        assert local.refresh(later=timedelta(minutes=15)).error is not None
    finally:
        kustomer.answer(secret_reply(local.stack.kustomer_secret))
    assert local.refresh(later=timedelta(minutes=16)).error is None
    # When verify runs then
    local.set_clock(timedelta(minutes=17))
    result = check(local, "refresh-runs")
    # Then it passes, and says the failure was recovered
    assert result.status is Status.PASS, result
    assert "since recovered" in result.summary


@breaks("refresh-runs")
def test_a_refresher_that_stopped_running_fails(local: LocalVerify) -> None:
    # Given no run for two hours (the schedule disabled, its role broken)
    local.set_clock(timedelta(hours=2))
    result = check(local, "refresh-runs")
    assert_fails(result, "no successful refresher run in the last 60 min", "docs/operations.md#refreshheartbeatalarm")


@breaks("dead-letter-queue")
def test_a_dead_letter_queue_with_a_message_fails(local: LocalVerify) -> None:
    sqs = local.aws("sqs")
    url = local.facts.stack.outputs["RefreshDeadLetterQueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"requestContext": {"condition": "RetriesExhausted"}}')
    try:
        result = check(local, "dead-letter-queue")
    finally:
        sqs.purge_queue(QueueUrl=url)
    assert_fails(
        result,
        "1 failed refresher invocation(s) wait in the dead-letter queue",
        "docs/operations.md#refreshdeadletteralarm",
    )


# --- what the routes invoke, and the alarms -------------------------------------------------------------------


@breaks("routes-invoke-live")
def test_routes_that_invoke_a_stale_configuration_fail_naming_what_differs(local: LocalVerify) -> None:
    # Given the routes invoke a mint with the settings of before an update (TokenIdentity changed since)
    with mint_started_with(local, TokenIdentity="both"):
        result = check(local, "routes-invoke-live")
    # Then it fails, naming the setting (never its value)
    assert_fails(
        result,
        "differs from the stack's configuration in environment TOKEN_IDENTITY",
        "docs/deploy.md#what-an-update-changes-in-the-running-code",
    )


@breaks("alarms")
def test_an_alarm_in_alarm_fails_with_its_runbook_section(local: LocalVerify) -> None:
    cloudwatch = local.aws("cloudwatch")
    name = local.facts.stack.resources["MintSecretUnavailableAlarm"].physical_id
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="verify test")
    try:
        result = check(local, "alarms")
    finally:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="verify test")
    assert_fails(result, "in ALARM: MintSecretUnavailableAlarm", "docs/operations.md#mintsecretunavailablealarm")


@breaks("alarms")
def test_a_missing_alarm_fails(local: LocalVerify) -> None:
    cloudwatch = local.aws("cloudwatch")
    name = local.facts.stack.resources["RefreshErrorsAlarm"].physical_id
    (saved,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    cloudwatch.delete_alarms(AlarmNames=[name])
    try:
        result = check(local, "alarms")
    finally:
        cloudwatch.put_metric_alarm(
            **{
                key: saved[key]
                for key in (
                    "AlarmName",
                    "Namespace",
                    "MetricName",
                    "Statistic",
                    "Period",
                    "EvaluationPeriods",
                    "Threshold",
                    "ComparisonOperator",
                )
            }
        )
    assert_fails(result, "missing: RefreshErrorsAlarm", "docs/operations.md#alarms")
