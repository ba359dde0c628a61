"""Every alarm watches a metric that really gets written, with the dimensions it is written under.

A metric name, namespace or dimension that nothing writes gives an alarm that never fires: these
tests read the alarms as CloudFormation gets them (the translated template) and compare them with
what the functions wrote when run through every outcome (tests.support.observed_run), with the
mint's metric filter applied to its real log lines, and with what AWS documents for its services.
"""

from __future__ import annotations

import pytest

from tests.support.cloudwatch import (
    OBSERVED_FUNCTIONS,
    PARAMETERS,
    Deployed,
    MetricSources,
    code_emissions,
    expression_ids,
    filter_matches,
    log_group_writers,
)
from tests.support.observed_run import Observations
from tools.harness.template import load_template

ALARMS = sorted(name for name, spec in load_template()["Resources"].items() if spec["Type"] == "AWS::CloudWatch::Alarm")
# The alarms on what visitors feel (issue 16); the refresher's came before and keep fixed thresholds, and
# the early warning on failed secret reads (visitors still get tokens) fires on two periods out of three.
EARLY_WARNING = {"MintSecretReadFailuresAlarm"}
VISITOR_FACING = {
    "MintSecretUnavailableAlarm",
    "MintInternalErrorAlarm",
    "MintErrorsAlarm",
    "MintThrottlesAlarm",
    "ApiServerErrorsAlarm",
    "ApiClientErrorRateAlarm",
    "TokenLatencyAlarm",
}


def _sources(deployed: Deployed, observed: Observations) -> MetricSources:
    return MetricSources(
        deployed,
        observed.emf_lines("mint") + observed.emf_lines("refresher"),
        {name: observed.log_lines(name) for name in ("mint", "refresher")},
    )


def test_the_functions_ran_with_the_namespace_and_service_the_template_gives_them(
    deployed: Deployed, observed: Observations
) -> None:
    # Given the functions' environment as CloudFormation sets it
    for function, observed_as in OBSERVED_FUNCTIONS.items():
        environment = deployed.environment(function)
        # When they ran through every outcome
        lines = observed.emf_lines(observed_as)
        # Then every EMF line went to the template's namespace, with the template's service name
        assert lines, f"the {observed_as} wrote no metric"
        namespaces = {directive["Namespace"] for line in lines for directive in line["_aws"]["CloudWatchMetrics"]}
        assert namespaces == {environment["POWERTOOLS_METRICS_NAMESPACE"]}
        assert {line["service"] for line in lines} == {environment["POWERTOOLS_SERVICE_NAME"]}


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_watches_a_metric_that_is_really_written(
    alarm: str, deployed: Deployed, observed: Observations
) -> None:
    # Given an alarm as CloudFormation creates it
    properties = deployed.alarms()[alarm]
    uses = deployed.alarm_metrics(alarm, properties)
    assert uses, f"{alarm} reads no metric"
    # When each metric it reads is looked up among what the code, the metric filters and AWS write
    sources = _sources(deployed, observed)
    problems = [sources.problem(use, exact=True) for use in uses]
    # Then every one is written with exactly the alarm's namespace, name and dimensions
    assert [problem for problem in problems if problem] == []


def test_an_alarm_on_a_metric_of_the_code_sees_every_data_point_of_it(
    deployed: Deployed, observed: Observations
) -> None:
    # Given the alarms that read a metric the functions write themselves (EMF)
    emitted = code_emissions(observed.emf_lines("mint") + observed.emf_lines("refresher"))
    code_namespaces = {namespace for namespace, _, _ in emitted}
    watched = [
        use
        for name, properties in deployed.alarms().items()
        for use in deployed.alarm_metrics(name, properties)
        if use.namespace in code_namespaces and any(metric == use.name for _, metric, _ in emitted)
    ]
    assert {use.name for use in watched} == {
        "SecretUnavailable",
        "SecretReadFailed",
        "RefreshSucceeded",
    }
    for use in watched:
        # When the code writes that metric, in any outcome
        written_under = {
            dims for namespace, metric, dims in emitted if (namespace, metric) == (use.namespace, use.name)
        }
        # Then always under the alarm's dimensions: no data point escapes it under another set
        assert written_under == {frozenset(use.dimensions.items())}


def test_the_internal_error_filter_counts_exactly_the_mints_500_answers(
    deployed: Deployed, observed: Observations
) -> None:
    # Given the metric filter on the mint's log group and every line the mint wrote
    (name,) = deployed.of_type("AWS::Logs::MetricFilter")
    properties = deployed.properties(name)
    group = properties["LogGroupName"].removeprefix("<Ref ").removesuffix(">")
    assert log_group_writers(deployed)[group] == "mint"
    lines = observed.log_lines("mint")
    # When its pattern is applied to them
    matching = [line for line in lines if filter_matches(properties["FilterPattern"], line)]
    # Then it matches one line per 500 answer, and no line of any other answer (the 503s included)
    answered_500 = [answer for answer in observed.answers if answer.answer.status == 500]
    assert len(answered_500) == 1
    assert len(matching) == len(answered_500)
    assert {line["error"] for line in matching} == {"internal_error"}
    assert [transformation["MetricValue"] for transformation in properties["MetricTransformations"]] == ["1"]


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_says_what_it_means_notifies_the_topic_and_treats_missing_data_deliberately(
    alarm: str, deployed: Deployed
) -> None:
    # Given an alarm, with AlarmTopicArn set
    properties = deployed.alarms()[alarm]
    # Then it says what it means, notifies the topic when it fires and when it recovers,
    assert len(properties["AlarmDescription"]) > 80
    assert properties["AlarmActions"] == [PARAMETERS["AlarmTopicArn"]]
    assert properties["OKActions"] == [PARAMETERS["AlarmTopicArn"]]
    # and chooses what missing data means instead of taking the default
    assert properties["TreatMissingData"] in ("notBreaching", "breaching", "ignore", "missing")


def test_without_a_topic_the_alarms_notify_nobody() -> None:
    # Given no AlarmTopicArn
    parameters = {name: value for name, value in PARAMETERS.items() if name != "AlarmTopicArn"}
    # When the stack is transformed
    alarms = Deployed(parameters).alarms()
    # Then the alarms exist without actions
    assert sorted(alarms) == ALARMS
    assert all("AlarmActions" not in alarm and "OKActions" not in alarm for alarm in alarms.values())


def test_the_visitor_facing_alarms_take_thresholds_and_periods_from_documented_parameters(deployed: Deployed) -> None:
    # Given the alarms on what visitors feel, as written in the template
    template = load_template()
    assert set(ALARMS) - {name for name in ALARMS if name.startswith("Refresh")} - EARLY_WARNING == VISITOR_FACING
    for alarm in sorted(VISITOR_FACING):
        properties = template["Resources"][alarm]["Properties"]
        # Then threshold, evaluation periods and period are parameters (the math alarm's period is in its metrics)
        periods = [properties.get("Period")] + [
            query["MetricStat"]["Period"] for query in properties.get("Metrics", []) if "MetricStat" in query
        ]
        for value in [properties["Threshold"], properties["EvaluationPeriods"], *filter(None, periods)]:
            assert set(value) == {"Ref"}, f"{alarm}: {value} is not a parameter"
            parameter = template["Parameters"][value["Ref"]]
            # each with a default and a description
            assert "Default" in parameter
            assert len(parameter["Description"]) > 30


def test_the_client_error_rate_alarm_divides_the_4xx_by_all_requests_of_the_same_api(deployed: Deployed) -> None:
    # Given the 4xx rate alarm's metric math
    queries = deployed.alarms()["ApiClientErrorRateAlarm"]["Metrics"]
    metrics = {query["Id"]: query["MetricStat"]["Metric"] for query in queries if "MetricStat" in query}
    (expression,) = [query for query in queries if "Expression" in query]
    # Then it returns one series, computed from its own metrics only
    assert [query["Id"] for query in queries if query["ReturnData"]] == [expression["Id"]]
    assert expression_ids(expression["Expression"]) == set(metrics)
    # from the API's 4xx and its request count, below a minimum of requests never a rate
    assert {metric["MetricName"] for metric in metrics.values()} == {"4xx", "Count"}
    assert len({str(metric["Dimensions"]) for metric in metrics.values()}) == 1
    assert expression["Expression"].startswith(
        f"IF(requests >= {deployed.parameters.get('ApiClientErrorMinRequests', 20)},"
    )
