"""Two stacks in one account and region stand alone: staging and prod, or one stack per Kustomer org.

Nothing one stack names may be named the same by the other: physical names (a layer, a dashboard,
a saved query...), the dimensions of the stack's own metrics and the alarms on them, the metric
filter and the dashboard's graphs. Checked on the template as CloudFormation gets it, with every
value evaluated for two stack names (tests.support.cloudformation).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.support.cloudformation import Deployment
from tests.support.cloudwatch import searches
from tests.support.project import REQUIRED_PARAMETERS
from tools.harness.template import REGION
from tools.sam_transform import translated_template

STACKS = ("shop-staging", "shop-prod")

# The property that holds a resource's explicit physical name, for the types that have one
# CloudFormation would otherwise generate. A type that appears in the template must be in one of
# the two tables, so a new kind of resource is classified on purpose.
PHYSICAL_NAME = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Logs::QueryDefinition": "Name",
    "AWS::Logs::MetricFilter": "FilterName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::AppConfig::Application": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
}
# Named only within a resource of the stack (an alias of the stack's function, the $default stage
# of its API, a profile of its AppConfig application) or not named at all.
NO_ACCOUNT_WIDE_NAME = {
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::ApiGatewayV2::Stage",
    "AWS::SecretsManager::ResourcePolicy",
    "AWS::SecretsManager::RotationSchedule",
    "AWS::AppConfig::ConfigurationProfile",
    "AWS::AppConfig::HostedConfigurationVersion",
    "AWS::CloudFormation::WaitConditionHandle",  # the ServerTokenCallers check: no name, no state
}
EVERY_OPTION = {
    **REQUIRED_PARAMETERS,
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
    "SecretsExtensionLayerArn": (
        "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12"
    ),
    "EnableSnapStart": "true",
}


def _stacks(parameters: dict[str, str]) -> tuple[Deployment, Deployment]:
    translated = translated_template(parameters)
    first, second = (Deployment(translated, parameters, stack_name) for stack_name in STACKS)
    return first, second


def _own_metric_alarm_dimensions(deployment: Deployment, logical_id: str) -> list[Any]:
    """The dimensions of every metric of the stack's own namespace (not AWS/...) an alarm watches."""
    properties = deployment.resources[logical_id]["Properties"]
    metrics = [{"Namespace": properties.get("Namespace"), "Dimensions": properties.get("Dimensions", [])}]
    metrics += [query["MetricStat"]["Metric"] for query in properties.get("Metrics", []) if "MetricStat" in query]
    return [
        deployment.values.resolve(metric["Dimensions"], logical_id)
        for metric in metrics
        if metric["Namespace"] and not str(metric["Namespace"]).startswith("AWS/")
    ]


@pytest.mark.parametrize("parameters", [REQUIRED_PARAMETERS, EVERY_OPTION], ids=["defaults", "every option"])
def test_no_physical_name_is_shared_by_two_stacks(parameters: dict[str, str]) -> None:
    # Given the same template deployed as two stacks in one account and region
    first, second = _stacks(parameters)
    unclassified = {
        resource["Type"] for resource in first.resources.values() if resource["Type"] not in PHYSICAL_NAME
    } - NO_ACCOUNT_WIDE_NAME
    # When every explicit physical name is evaluated in both
    shared = {}
    for logical_id, resource in first.resources.items():
        name_property = PHYSICAL_NAME.get(resource["Type"])
        if name_property and name_property in resource.get("Properties", {}):
            names = [
                stack.values.resolve(resource["Properties"][name_property], logical_id) for stack in (first, second)
            ]
            if names[0] == names[1]:
                shared[logical_id] = names[0]
    # Then every type is classified and no name is the same in both stacks
    assert unclassified == set()
    assert shared == {}


def test_the_layer_is_named_after_its_stack() -> None:
    # Given two stacks
    first, second = _stacks(REQUIRED_PARAMETERS)
    # When the shared layer's name is read
    (layer,) = [name for name, item in first.resources.items() if item["Type"] == "AWS::Lambda::LayerVersion"]
    names = [stack.values.resolve(stack.resources[layer]["Properties"]["LayerName"]) for stack in (first, second)]
    # Then each stack publishes versions of its own layer
    assert names == ["shop-staging-shared", "shop-prod-shared"]


def test_each_stack_writes_its_metrics_and_logs_under_its_own_service_name() -> None:
    # Given two stacks
    first, second = _stacks(REQUIRED_PARAMETERS)
    # When the service name each function logs and counts under is read
    services = [
        {
            function: stack.values.resolve(
                stack.resources[function]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            )
            for function in ("MintTokenFunction", "RefreshSecretFunction")
        }
        for stack in (first, second)
    ]
    # Then it is the stack's name: the "service" dimension of every metric they write
    assert services == [
        {"MintTokenFunction": "shop-staging", "RefreshSecretFunction": "shop-staging"},
        {"MintTokenFunction": "shop-prod", "RefreshSecretFunction": "shop-prod"},
    ]


@pytest.mark.parametrize("parameters", [REQUIRED_PARAMETERS, EVERY_OPTION], ids=["defaults", "every option"])
def test_alarms_on_the_stacks_own_metrics_watch_only_that_stack(parameters: dict[str, str]) -> None:
    # Given two stacks
    first, second = _stacks(parameters)
    alarms = [name for name, item in first.resources.items() if item["Type"] == "AWS::CloudWatch::Alarm"]
    # When the dimensions of the custom metrics each alarm watches are evaluated in both
    watched = {name: [_own_metric_alarm_dimensions(stack, name) for stack in (first, second)] for name in alarms}
    own = {name: pair for name, pair in watched.items() if pair[0]}
    # Then each alarm on a custom metric watches its own stack's service, never the other's
    assert own, "no alarm on the stack's own metrics was found"
    for name, (in_first, in_second) in own.items():
        assert in_first != in_second, name
        assert all({"Name": "service", "Value": "shop-staging"} in dimensions for dimensions in in_first), name


def test_the_metric_filter_counts_under_the_logged_service() -> None:
    # Given the metric filter that counts the mint's 500 answers
    first, _ = _stacks(REQUIRED_PARAMETERS)
    filters = [item for item in first.resources.values() if item["Type"] == "AWS::Logs::MetricFilter"]
    # When its dimensions are read
    dimensions = [
        dimension for item in filters for transform in item["Properties"]["MetricTransformations"]
        for dimension in transform.get("Dimensions", [])
    ]  # fmt: skip
    # Then the service dimension is taken from each log line, whose service is the stack's name (above)
    assert dimensions == [{"Key": "service", "Value": "$.service"}]


def test_the_dashboard_graphs_only_its_own_stacks_metrics() -> None:
    # Given two stacks
    first, second = _stacks(REQUIRED_PARAMETERS)
    dashboards = []
    for stack in (first, second):
        (logical_id,) = [name for name, item in stack.resources.items() if item["Type"] == "AWS::CloudWatch::Dashboard"]
        dashboards.append(json.loads(stack.values.resolve(stack.resources[logical_id]["Properties"]["DashboardBody"])))
    for stack_name, body in zip(STACKS, dashboards, strict=True):
        entries = [
            entry for widget in body["widgets"] if widget["type"] == "metric"
            for entry in widget["properties"]["metrics"]
        ]  # fmt: skip
        # When the custom metrics and searches of its graphs are read
        own = [
            dict(zip(entry[2:-1:2], entry[3:-1:2], strict=False)) if isinstance(entry[-1], dict) else {}
            for entry in entries
            if isinstance(entry[0], str) and not entry[0].startswith("AWS/")
        ]
        found = [
            filters
            for entry in entries
            if isinstance(entry[0], dict) and "expression" in entry[0]
            for _, _, _, filters in searches(entry[0]["expression"])
        ]
        # Then each is filtered on this stack's service
        assert own
        assert all(dimensions.get("service") == stack_name for dimensions in own), own
        assert found == [{"service": stack_name}] * 3  # tokens minted (twice), refresher failures


# The longest stack name CloudFormation allows, and the name it gives a nested stack (parent, logical id, suffix).
LONG_STACK_NAMES = ("s" + "-long" * 25 + "-n", "acme-website-production-ChatTokenSecondOrg-1A2B3C4D5E6F7")


@pytest.mark.parametrize("stack_name", LONG_STACK_NAMES, ids=["128 characters", "nested stack"])
def test_every_explicit_name_fits_its_limit_for_any_stack_name(stack_name: str) -> None:
    # Given a stack with a long name (a nested stack's is its parent's and more)
    assert len(LONG_STACK_NAMES[0]) == 128
    translated = translated_template(EVERY_OPTION)
    deployment = Deployment(translated, EVERY_OPTION, stack_name)
    # When every explicit physical name is evaluated and compared with its type's schema
    too_long = {}
    for logical_id, resource in deployment.resources.items():
        name_property = PHYSICAL_NAME.get(resource["Type"])
        if name_property and name_property in resource.get("Properties", {}):
            name = deployment.values.resolve(resource["Properties"][name_property], logical_id)
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource["Type"]).schema
            limit = schema["properties"][name_property].get("maxLength")
            if limit is not None and len(name) > limit:
                too_long[logical_id] = (len(name), limit)
    # Then none is over its limit: a create or an upgrade would fail on it
    assert too_long == {}
