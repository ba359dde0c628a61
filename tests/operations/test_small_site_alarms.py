"""Alarms that work at a small site's traffic, and the refresher's heartbeat.

A chat-login API may see a few requests a minute. A p99 alarm CloudWatch evaluates only at 1,000
samples a period never changes state there; a heartbeat must fire on silence, not stay OK; and a
flood of visitors must not take the back ends' route with it. Checked on the template as
CloudFormation gets it (tests.support.cloudwatch.Deployed: intrinsics evaluated).
"""

from __future__ import annotations

from typing import Any

from tests.support.cloudwatch import PARAMETERS, Deployed


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


def test_the_heartbeat_fires_when_no_scheduled_refresh_succeeds() -> None:
    # Given the refresher's heartbeat alarm
    deployed = Deployed()
    properties = deployed.properties("RefreshHeartbeatAlarm")
    queries = _queries(deployed, "RefreshHeartbeatAlarm")
    # When its metrics and its treatment of silence are read
    watched = {query["MetricStat"]["Metric"]["MetricName"] for query in queries.values() if "MetricStat" in query}
    periods = {query["MetricStat"]["Period"] for query in queries.values() if "MetricStat" in query}
    # Then it counts the outcomes every successful run writes, over RefreshHeartbeatSeconds, and an
    # hour with none of them (no run, or only failing ones) is an alarm, not "no data"
    assert watched == {"SecretChanged", "SecretUnchanged"}
    assert periods == {"3600"}
    assert queries["successes"]["Expression"] == "SUM([changed, unchanged])"
    assert (properties["ComparisonOperator"], str(properties["Threshold"])) == ("LessThanThreshold", "1")
    assert properties["TreatMissingData"] == "breaching"


def test_the_back_ends_route_has_throttling_limits_of_its_own() -> None:
    # Given the API's stage
    deployed = Deployed({**PARAMETERS, "ServerTokenThrottlingRateLimit": "7"})
    (stage,) = deployed.of_type("AWS::ApiGatewayV2::Stage")
    properties = deployed.properties(stage)
    # When its route settings are read
    route = properties["RouteSettings"]["POST /server/token"]
    # Then POST /server/token has its own rate and burst, apart from the stage's default (POST /token)
    assert (str(route["ThrottlingRateLimit"]), str(route["ThrottlingBurstLimit"])) == ("7", "40")
    assert str(properties["DefaultRouteSettings"]["ThrottlingRateLimit"]) == "50"
