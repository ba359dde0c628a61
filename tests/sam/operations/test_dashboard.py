"""The dashboard graphs only metrics that really get written, so a renamed metric cannot leave an empty graph."""

from __future__ import annotations

from typing import Any

from tests.support.cloudwatch import (
    PARAMETERS,
    Deployed,
    MetricSources,
    MetricUse,
    code_emissions,
    expression_ids,
    search_schemas,
    widget_metrics,
)
from tests.support.observed_run import Observations


def _dashboard(deployed: Deployed) -> dict[str, Any]:
    (body,) = deployed.dashboard_bodies().values()
    return body


def _graphs(deployed: Deployed) -> list[dict[str, Any]]:
    return [widget for widget in _dashboard(deployed)["widgets"] if widget["type"] == "metric"]


def test_every_graph_reads_metrics_that_are_really_written(deployed: Deployed, observed: Observations) -> None:
    # Given the dashboard as CloudFormation creates it, and what the functions, the filters and AWS write
    sources = MetricSources(
        deployed,
        observed.emf_lines("mint") + observed.emf_lines("refresher"),
        {name: observed.log_lines(name) for name in ("mint", "refresher")},
    )
    uses = [use for widget in _graphs(deployed) for use in widget_metrics(widget) if isinstance(use, MetricUse)]
    assert len(uses) >= 20  # the parse found the graphs (tokens minted are a SEARCH, not a MetricUse)
    # When each graphed metric is looked up
    problems = [sources.problem(use, exact=False) for use in uses]
    # Then each is written under those dimensions, with values the code really uses
    assert [problem for problem in problems if problem] == []


def test_every_expression_reads_its_own_graph_and_every_search_finds_written_metrics(
    deployed: Deployed, observed: Observations
) -> None:
    emitted = code_emissions(observed.emf_lines("mint") + observed.emf_lines("refresher"))
    schemas = {(namespace, frozenset(name for name, _ in dims), metric) for namespace, metric, dims in emitted}
    searched = 0
    for widget in _graphs(deployed):
        entries = widget["properties"]["metrics"]
        ids = {entry[-1]["id"] for entry in entries if isinstance(entry[-1], dict) and "id" in entry[-1]}
        for expression in (item for item in widget_metrics(widget) if isinstance(item, str)):
            # Then an expression reads only metrics of its graph
            assert expression_ids(expression) <= ids, expression
            # and a SEARCH names a schema (namespace and every dimension name) the code really writes
            for schema in search_schemas(expression):
                searched += 1
                assert schema in schemas, f"nothing writes {schema}"
    assert searched >= 1


def test_the_dashboard_shows_what_the_on_call_engineer_needs(deployed: Deployed) -> None:
    # Given the dashboard's graphs
    graphed = {
        (use.namespace.split("/")[0], use.name)
        for widget in _graphs(deployed)
        for use in widget_metrics(widget)
        if isinstance(use, MetricUse)
    }
    searched = {
        name for widget in _graphs(deployed) for item in widget_metrics(widget) if isinstance(item, str)
        for _, _, name in search_schemas(item)
    }  # fmt: skip
    # Then it shows tokens minted, errors by kind, latency, the secret cache, the refresher and its dead-letter queue
    for metric in ("SecretUnavailable", "MintInternalError", "SecretCacheMiss"):
        assert ("KustomerChatToken", metric) in graphed
    assert "TokensMinted" in searched  # every route and identity type, a new one included
    for metric in ("SecretStaleUse", "SecretReadFailed", "SecretChanged", "SecretUnchanged"):
        assert ("KustomerChatToken", metric) in graphed
    assert "RefreshFailed" in searched
    for metric in ("Errors", "Throttles", "Duration"):
        assert ("AWS", metric) in graphed
    for metric in ("4xx", "5xx", "Latency", "Count", "ApproximateNumberOfMessagesVisible"):
        assert ("AWS", metric) in graphed
    latency_stats = {
        entry[-1].get("stat")
        for widget in _graphs(deployed)
        for entry in widget["properties"]["metrics"]
        if "Latency" in entry and isinstance(entry[-1], dict)
    }
    assert latency_stats == {"p50", "p99"}


def test_the_dashboard_shows_the_state_of_every_alarm(deployed: Deployed) -> None:
    # Given the dashboard's alarm widget
    (widget,) = [widget for widget in _dashboard(deployed)["widgets"] if widget["type"] == "alarm"]
    # Then it lists every alarm of the stack
    assert sorted(widget["properties"]["alarms"]) == sorted(f"<GetAtt {name}.Arn>" for name in deployed.alarms())


def test_the_dashboard_is_on_by_default_and_can_be_left_out() -> None:
    # Given the default parameters, then EnableDashboard=false
    with_default = Deployed()
    without = Deployed({**PARAMETERS, "EnableDashboard": "false"})
    # Then the first stack has the dashboard and the second none, alarms and queries in both
    assert len(with_default.of_type("AWS::CloudWatch::Dashboard")) == 1
    assert without.of_type("AWS::CloudWatch::Dashboard") == {}
    assert sorted(without.alarms()) == sorted(with_default.alarms())
    assert (
        without.of_type("AWS::Logs::QueryDefinition").keys()
        == with_default.of_type("AWS::Logs::QueryDefinition").keys()
    )
