"""Alarms that work at a small site's traffic, and the refresher's heartbeat.

A chat-login API may see a few requests a minute. A p99 alarm CloudWatch evaluates only at 1,000
samples a period never changes state there; a heartbeat must fire on silence, not stay OK; and a
flood of visitors must not take the back ends' route with it. Checked on the template as
CloudFormation gets it (tests.support.cloudwatch.Deployed: intrinsics evaluated).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cloudformation import unresolved_dependencies
from tests.support.cloudwatch import PARAMETERS, Deployed
from tools.harness.template import STACK_NAME
from tools.sam_transform import translated_template


def _queries(deployed: Deployed, alarm: str) -> dict[str, dict[str, Any]]:
    return {query["Id"]: query for query in deployed.properties(alarm)["Metrics"]}


def test_the_latency_alarm_evaluates_a_period_of_tens_of_requests() -> None:
    # Given the latency alarm with its minimum of requests a period
    deployed = Deployed()
    properties = deployed.properties("TokenLatencyAlarm")
    queries = _queries(deployed, "TokenLatencyAlarm")
    # When its metrics are read
    latency, requests = queries["latency"]["MetricStat"], queries["requests"]["MetricStat"]
    # Then it is metric math over the route's p99 and sample count, not a percentile alarm that
    # needs 1,000 samples: a period with 20 requests or more counts, one with fewer counts as fine
    assert "ExtendedStatistic" not in properties
    assert "EvaluateLowSampleCountPercentile" not in properties
    assert (latency["Stat"], requests["Stat"]) == ("p99", "SampleCount")
    assert latency["Metric"] == requests["Metric"]
    assert {item["Name"]: item["Value"] for item in latency["Metric"]["Dimensions"]}.keys() == {
        "ApiId",
        "Method",
        "Resource",
        "Stage",
    }
    assert queries["p99"]["Expression"] == "IF(requests >= 20, latency, 0)"
    assert [query["Id"] for query in properties["Metrics"] if query.get("ReturnData")] == ["p99"]


def _metric_queries(queries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [query["MetricStat"] for query in queries.values() if "MetricStat" in query]


@pytest.mark.parametrize(("seconds", "periods"), [("auto", 4), ("3600", 4), ("1800", 2), ("86400", 96)])
def test_the_heartbeat_fires_when_no_scheduled_refresh_succeeded_in_a_window(seconds: str, periods: int) -> None:
    # Given the refresher's heartbeat alarm, with RefreshHeartbeatSeconds set
    deployed = Deployed({**PARAMETERS, "RefreshHeartbeatSeconds": seconds})
    properties = deployed.properties("RefreshHeartbeatAlarm")
    # When its metric, window and treatment of silence are read
    dimensions = {item["Name"]: item["Value"] for item in properties["Dimensions"]}
    # Then it counts RefreshSucceeded, one metric every successful run writes, in 15-minute periods (no
    # metric math: an empty period is missing data, which breaches), and fires only when every period
    # of the window is empty: a run that lands in the next period is not an alarm, an hour without one is
    assert "Metrics" not in properties
    assert (properties["Namespace"], properties["MetricName"], properties["Statistic"]) == (
        "KustomerChatToken",
        "RefreshSucceeded",
        "Sum",
    )
    assert dimensions == {"service": STACK_NAME}
    assert str(properties["Period"]) == "900"
    assert (str(properties["EvaluationPeriods"]), str(properties["DatapointsToAlarm"])) == (str(periods),) * 2
    assert periods * 900 <= 86400  # CloudWatch evaluates at most a day
    assert (properties["ComparisonOperator"], str(properties["Threshold"])) == ("LessThanThreshold", "1")
    assert properties["TreatMissingData"] == "breaching"


def _refused(parameters: dict[str, str]) -> list[str]:
    return unresolved_dependencies(translated_template(parameters), parameters)


@pytest.mark.parametrize("schedule", ["rate(15 minutes)", "rate(5 minutes)", "rate(30 minutes)"])
def test_the_automatic_heartbeat_is_deployed_with_a_schedule_it_fits(schedule: str) -> None:
    # Given RefreshHeartbeatSeconds left at auto (an hour) and a schedule that runs twice an hour or more
    parameters = {**PARAMETERS, "RefreshSchedule": schedule}
    # When CloudFormation makes the change set
    # Then nothing is refused
    assert _refused(parameters) == []


@pytest.mark.parametrize("schedule", ["rate(1 hour)", "rate(45 minutes)", "cron(0 9-17 ? * MON-FRI *)"])
def test_the_automatic_heartbeat_refuses_a_schedule_it_would_page_on(schedule: str) -> None:
    # Given RefreshHeartbeatSeconds left at auto and a schedule slower than twice an hour (an upgrade of a
    # stack with its own RefreshSchedule, say): the heartbeat would fire between two healthy runs
    parameters = {**PARAMETERS, "RefreshSchedule": schedule}
    # When CloudFormation makes the change set
    # Then it is refused before anything changes, naming the parameter to set
    assert _refused(parameters) == ["SetRefreshHeartbeatSecondsForThisRefreshSchedule"]
    # And a heartbeat set by hand is deployed with it
    assert _refused({**parameters, "RefreshHeartbeatSeconds": "10800"}) == []


def test_the_scheduler_failures_alarm_watches_the_group_the_refreshers_schedule_is_in() -> None:
    # Given the scheduler's failure alarm and the refresher's schedule
    deployed = Deployed()
    properties = deployed.properties("RefreshSchedulerFailuresAlarm")
    (schedule,) = deployed.of_type("AWS::Scheduler::Schedule")
    (group,) = deployed.of_type("AWS::Scheduler::ScheduleGroup")
    # When the metric it reads is looked up
    # Then it is Scheduler's count of failed invocations for the group the schedule is in (a dropped run
    # and a failed dead-letter send both follow one), and one fires it
    assert (properties["Namespace"], properties["MetricName"], properties["Statistic"]) == (
        "AWS/Scheduler",
        "TargetErrorCount",
        "Sum",
    )
    assert properties["Dimensions"] == [{"Name": "ScheduleGroup", "Value": f"<Ref {group}>"}]
    assert deployed.properties(schedule)["GroupName"] == f"<Ref {group}>"
    assert (properties["ComparisonOperator"], str(properties["Threshold"])) == ("GreaterThanOrEqualToThreshold", "1")
    assert properties["TreatMissingData"] == "notBreaching"


def test_the_schedulers_role_trusts_only_the_stacks_schedule_group() -> None:
    # Given the role the schedule runs the refresher with
    deployed = Deployed()
    (group,) = deployed.of_type("AWS::Scheduler::ScheduleGroup")
    (statement,) = deployed.properties("RefreshScheduleRole")["AssumeRolePolicyDocument"]["Statement"]
    # Then Scheduler may assume it for this account's schedules of the stack's group only
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert set(statement["Condition"]["StringEquals"]) == {"aws:SourceAccount", "aws:SourceArn"}
    assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == f"<GetAtt {group}.Arn>"


def test_one_failed_read_of_the_signing_secret_is_not_a_page_a_lasting_failure_is() -> None:
    # Given the alarm on the mint's failed reads of the signing secret, with the API's alarm period at an hour
    deployed = Deployed({**PARAMETERS, "AlarmPeriodSeconds": "3600"})
    properties = deployed.properties("MintSecretReadFailuresAlarm")
    # When its metric and window are read
    # Then it counts failed reads (each one of a container, at most every 5 seconds; a stale signing always
    # follows one) in 5-minute periods of its own, and fires on two out of three: a throttled read retried
    # 5 seconds later passes, a revoked grant fires within 15 minutes, well inside the stale window
    assert (properties["MetricName"], properties["Statistic"], str(properties["Period"])) == (
        "SecretReadFailed",
        "Sum",
        "300",
    )
    assert (str(properties["EvaluationPeriods"]), str(properties["DatapointsToAlarm"])) == ("3", "2")
    assert str(properties["Threshold"]) == "1"
    assert int(PARAMETERS.get("SecretMaxStaleSeconds", "3600")) > 3 * 300
    assert properties["TreatMissingData"] == "notBreaching"


def test_the_back_ends_route_has_throttling_limits_of_its_own() -> None:
    # Given the API's stage
    deployed = Deployed({**PARAMETERS, "ServerTokenThrottlingRateLimit": "7"})
    (stage,) = deployed.of_type("AWS::ApiGatewayV2::Stage")
    properties = deployed.properties(stage)
    # When its route settings are read
    route = properties["RouteSettings"]["POST /server/token"]
    # Then POST /server/token has its own rate and burst, apart from the stage's default (POST /token)
    assert (str(route["ThrottlingRateLimit"]), str(route["ThrottlingBurstLimit"])) == ("7", "100")
    assert str(properties["DefaultRouteSettings"]["ThrottlingRateLimit"]) == "50"


def test_every_route_setting_names_a_route_the_api_defines() -> None:
    # Given the stage and the API's OpenAPI body, as CloudFormation gets them: API Gateway refuses a
    # stage whose RouteSettings name a route it cannot find ("Unable to find Route by key")
    deployed = Deployed()
    (stage,) = deployed.of_type("AWS::ApiGatewayV2::Stage")
    (api,) = deployed.of_type("AWS::ApiGatewayV2::Api")
    paths = deployed.properties(api)["Body"]["paths"]
    routes = {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}
    # When the route settings' keys are read
    keys = set(deployed.properties(stage)["RouteSettings"])
    # Then each is a route of the body, which CloudFormation creates with the API, before the stage
    assert keys
    assert keys <= routes
