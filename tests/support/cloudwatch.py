"""What CloudWatch gets from the translated template: the metrics alarms and the dashboard name,
metric filters, and the fields Logs Insights queries name; and what AWS services emit.

Resources stay symbolic: `!Ref X` becomes "<Ref X>" and `!GetAtt X.Y` "<GetAtt X.Y>", so a test
can tell which resource a dimension names; parameters and pseudo parameters are evaluated as
CloudFormation would (tools.harness.template.CloudFormationValues).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tools.harness.template import CloudFormationValues
from tools.sam_transform import translated_template

PARAMETERS = {
    "KustomerOrg": "example-shop",
    "JwtIssuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "JwtAudience": "1example23456789abcdefghij",
    "AllowedOrigins": "https://shop.example.com",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:on-call",
}

# What AWS documents its services emit, per namespace: metric names and the dimension sets each
# is published under.
# Lambda: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html (FunctionName
#   aggregates every version and alias; Resource adds a version or alias).
# API Gateway HTTP APIs: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html
#   (ApiId; ApiId+Stage; ApiId+Method+Resource+Stage only with detailed metrics enabled).
# SQS: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
# EventBridge Scheduler: https://docs.aws.amazon.com/scheduler/latest/UserGuide/monitoring-cloudwatch.html
#   (per ScheduleGroup, the group's name; the DLQ metrics only for schedules with a dead-letter queue).
AWS_METRICS: dict[str, tuple[frozenset[str], tuple[frozenset[str], ...]]] = {
    "AWS/Lambda": (
        frozenset({"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"}),
        (frozenset({"FunctionName"}), frozenset({"FunctionName", "Resource"})),
    ),
    "AWS/ApiGateway": (
        frozenset({"4xx", "5xx", "Count", "Latency", "IntegrationLatency", "DataProcessed"}),
        (frozenset({"ApiId"}), frozenset({"ApiId", "Stage"}), frozenset({"ApiId", "Method", "Resource", "Stage"})),
    ),
    "AWS/SQS": (
        frozenset({"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"}),
        (frozenset({"QueueName"}),),
    ),
    "AWS/Scheduler": (
        frozenset(
            {
                "InvocationAttemptCount",
                "TargetErrorCount",
                "TargetErrorThrottledCount",
                "InvocationThrottleCount",
                "InvocationDroppedCount",
                "InvocationsSentToDeadLetterCount",
                "InvocationsFailedToBeSentToDeadLetterCount",
            }
        ),
        (frozenset({"ScheduleGroup"}),),
    ),
}
ROUTE_DIMENSIONS = frozenset({"Method", "Resource"})


@dataclass(frozen=True)
class MetricUse:
    """One metric an alarm or a dashboard graph reads."""

    where: str
    namespace: str
    name: str
    dimensions: Mapping[str, str]


class Deployed:
    """The translated template, with values resolved as CloudFormation would and resources left symbolic."""

    def __init__(self, parameters: Mapping[str, str] = PARAMETERS) -> None:
        self.parameters = dict(parameters)
        self.template = translated_template(self.parameters)
        self.resources: dict[str, Any] = self.template["Resources"]
        self._values = CloudFormationValues(self.template, self.parameters)

    def resolve(self, value: Any) -> Any:
        return self._values.resolve(self._symbolic(value))

    def condition(self, name: str) -> bool:
        return self._values.condition(name)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of a type that exist with these parameters (their Condition holds)."""
        return {
            name: spec
            for name, spec in self.resources.items()
            if spec["Type"] == resource_type and ("Condition" not in spec or self.condition(spec["Condition"]))
        }

    def properties(self, name: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolve(self.resources[name].get("Properties", {}))
        return resolved

    def environment(self, function: str) -> dict[str, str]:
        variables: dict[str, str] = self.properties(function)["Environment"]["Variables"]
        return variables

    def _symbolic(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._symbolic(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"} and value["Ref"] in self.resources:
            return f"<Ref {value['Ref']}>"
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            name, attribute = target.split(".", 1) if isinstance(target, str) else target
            return f"<GetAtt {name}.{attribute}>"
        if set(value) == {"Fn::Sub"}:
            argument = value["Fn::Sub"]
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return {"Fn::Sub": [self._symbolic_text(text), self._symbolic(variables)]}
        return {key: self._symbolic(item) for key, item in value.items()}

    def _symbolic_text(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, _, attribute = match.group(1).partition(".")
            if name not in self.resources:
                return match.group(0)
            return f"<GetAtt {name}.{attribute}>" if attribute else f"<Ref {name}>"

        return re.sub(r"\$\{([A-Za-z0-9]+(?:\.[A-Za-z0-9.]+)?)\}", replace, text)

    # --- what reads metrics ----------------------------------------------------------------------

    def alarms(self) -> dict[str, dict[str, Any]]:
        return {name: self.properties(name) for name in self.of_type("AWS::CloudWatch::Alarm")}

    def alarm_metrics(self, name: str, alarm: Mapping[str, Any]) -> list[MetricUse]:
        if "MetricName" in alarm:
            return [MetricUse(name, alarm["Namespace"], alarm["MetricName"], _dimensions(alarm.get("Dimensions", [])))]
        uses = []
        for query in alarm["Metrics"]:
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                uses.append(
                    MetricUse(
                        name, metric["Namespace"], metric["MetricName"], _dimensions(metric.get("Dimensions", []))
                    )
                )
        return uses

    def dashboard_bodies(self) -> dict[str, dict[str, Any]]:
        return {
            name: json.loads(self.properties(name)["DashboardBody"])
            for name in self.of_type("AWS::CloudWatch::Dashboard")
        }


def _dimensions(dimensions: list[dict[str, str]]) -> dict[str, str]:
    return {dimension["Name"]: str(dimension["Value"]) for dimension in dimensions}


def widget_metrics(widget: Mapping[str, Any]) -> Iterator[MetricUse | str]:
    """The metrics of a dashboard graph (as MetricUse) and its expressions (as text)."""
    where = f"dashboard widget {widget['properties'].get('title', '?')!r}"
    for entry in widget["properties"].get("metrics", []):
        if isinstance(entry[0], dict):
            yield entry[0]["expression"]
            continue
        fields = [item for item in entry if not isinstance(item, dict)]
        if {"...", "."} & set(fields):
            raise ValueError(f"{where}: write each metric out in full, not with the '...' shorthand")
        namespace, name, *pairs = fields
        yield MetricUse(where, namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)))


_SEARCH = re.compile(
    r"SEARCH\('\{([^}]*)\}\s+MetricName=\"([^\"]+)\"((?:\s+[A-Za-z]+=\"[^\"]*\")*)'\s*,\s*'[A-Za-z0-9.]+'\s*,\s*\d+\)"
)
_SEARCH_FILTER = re.compile(r"([A-Za-z]+)=\"([^\"]*)\"")


def search_schemas(expression: str) -> list[tuple[str, frozenset[str], str]]:
    """(namespace, dimension names, metric name) of each SEARCH('{Namespace,Dim,...} MetricName="X" Dim="v"', ...)."""
    return [(namespace, dimensions, metric) for namespace, dimensions, metric, _ in searches(expression)]


def searches(expression: str) -> list[tuple[str, frozenset[str], str, dict[str, str]]]:
    """search_schemas with each SEARCH's dimension filters (name -> exact value)."""
    found = []
    for match in _SEARCH.finditer(expression):
        namespace, *dimension_names = [part.strip() for part in match.group(1).split(",")]
        filters = dict(_SEARCH_FILTER.findall(match.group(3)))
        if not set(filters) <= set(dimension_names):
            raise ValueError(f"a SEARCH filters on a dimension outside its schema: {expression}")
        found.append((namespace, frozenset(dimension_names), match.group(2), filters))
    if "SEARCH(" in expression and len(found) != expression.count("SEARCH("):
        raise ValueError(f"a SEARCH of another form than '{{Namespace,Dimension...}} MetricName=\"X\"': {expression}")
    return found


def expression_ids(expression: str) -> set[str]:
    """The metric ids an expression reads (lower-case names that are not functions or SEARCH text)."""
    without_text = re.sub(r"'[^']*'", "", expression)
    names = set(re.findall(r"\b([a-z][A-Za-z0-9_]*)\b(?!\s*\()", without_text))
    return names


# --- metric filters --------------------------------------------------------------------------------

_TERM = re.compile(r'^\(?\s*\$\.([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*\)?$')


def filter_pattern_terms(pattern: str) -> dict[str, str]:
    """The field = "value" terms of a JSON filter pattern of the form { (t1) && (t2) ... }."""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not a JSON filter pattern: {pattern}")
    terms = {}
    for part in text[1:-1].split("&&"):
        match = _TERM.match(part.strip())
        if match is None:
            raise ValueError(f"a term this evaluator does not understand: {part.strip()!r} in {pattern}")
        terms[match.group(1)] = match.group(2)
    return terms


def filter_matches(pattern: str, line: Mapping[str, Any]) -> bool:
    return all(
        str(line.get(field)) == value and field in line for field, value in filter_pattern_terms(pattern).items()
    )


# --- Logs Insights ---------------------------------------------------------------------------------

BUILT_IN_FIELDS = frozenset({"@timestamp", "@message", "@logStream", "@log", "@ingestionTime"})
_KEYWORDS = frozenset(
    {
        "fields",
        "filter",
        "stats",
        "sort",
        "limit",
        "display",
        "by",
        "as",
        "and",
        "or",
        "not",
        "in",
        "like",
        "asc",
        "desc",
    }
)
_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      |(?P<regex>/(?:[^/\\]|\\.)+/)
      |(?P<number>\d+[A-Za-z]*)
      |(?P<name>@?[A-Za-z_][A-Za-z0-9_.]*)
      |(?P<symbol>[()\[\],|=<>!*+\-])
      |(?P<space>\s+)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class QueryNames:
    fields: frozenset[str]
    # field -> literal values it is compared with (=, in [...]) and regexes it is matched with (like)
    values: Mapping[str, frozenset[str]]
    patterns: Mapping[str, frozenset[str]]


def query_names(query: str) -> QueryNames:
    """Every log field a Logs Insights query reads, and the literals it compares them with.

    Functions (a name before "("), keywords, literals and the aliases `as` defines are not fields.
    """
    tokens = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise ValueError(f"cannot read the query at {query[position : position + 20]!r}")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    fields: set[str] = set()
    aliases: set[str] = set()
    values: dict[str, set[str]] = {}
    patterns: dict[str, set[str]] = {}
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        preceding = tokens[index - 1] if index else ("", "")
        if kind != "name" or text in _KEYWORDS or following[1] == "(":
            continue
        if preceding[1] == "as":
            aliases.add(text)
            continue
        fields.add(text)
        if following[1] == "=" and index + 2 < len(tokens) and tokens[index + 2][0] == "string":
            values.setdefault(text, set()).add(tokens[index + 2][1][1:-1])
        elif following[1] == "in" and index + 2 < len(tokens) and tokens[index + 2][1] == "[":
            for item_kind, item in tokens[index + 3 :]:
                if item == "]":
                    break
                if item_kind == "string":
                    values.setdefault(text, set()).add(item[1:-1])
        elif following[1] == "like" and index + 2 < len(tokens) and tokens[index + 2][0] == "regex":
            patterns.setdefault(text, set()).add(tokens[index + 2][1][1:-1])
    return QueryNames(
        fields=frozenset(fields - aliases),
        values={name: frozenset(items) for name, items in values.items()},
        patterns={name: frozenset(items) for name, items in patterns.items()},
    )


def flattened_keys(line: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The field names Logs Insights discovers in a JSON log line (nested keys joined with dots)."""
    keys = set()
    for key, value in line.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= flattened_keys(value, f"{prefix}{key}.")
    return keys


# --- where a metric comes from ---------------------------------------------------------------------

# Which observed function writes to a function's log group (tests.support.observed_run).
OBSERVED_FUNCTIONS = {"MintTokenFunction": "mint", "RefreshSecretFunction": "refresher"}


def code_emissions(lines: list[dict[str, Any]]) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, {(dimension, value)}) of every EMF line: CloudWatch stores a metric once per
    dimension set its line declares, with the values the line holds for those names."""
    emitted = set()
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, str(line[name])) for name in dimension_set)
                for metric in directive["Metrics"]:
                    emitted.add((directive["Namespace"], metric["Name"], dimensions))
    return emitted


def log_group_writers(deployed: Deployed) -> dict[str, str]:
    """Log group logical id -> the observed function ("mint", "refresher") that writes to it."""
    writers = {}
    for function, observed_as in OBSERVED_FUNCTIONS.items():
        group = deployed.properties(function)["LoggingConfig"]["LogGroup"]
        writers[group.removeprefix("<Ref ").removesuffix(">")] = observed_as
    return writers


class MetricSources:
    """Decides whether a metric an alarm or a graph reads is one the code, a metric filter or AWS writes."""

    def __init__(self, deployed: Deployed, emf_lines: list[dict[str, Any]], log_lines: Mapping[str, list[Any]]) -> None:
        self.deployed = deployed
        self.emitted = code_emissions(emf_lines)
        self.log_lines = log_lines
        self.filters = {}
        for name in deployed.of_type("AWS::Logs::MetricFilter"):
            properties = deployed.properties(name)
            for transformation in properties["MetricTransformations"]:
                key = (transformation["MetricNamespace"], transformation["MetricName"])
                self.filters[key] = (name, properties, transformation)

    def problem(self, use: MetricUse, *, exact: bool) -> str | None:
        """None when the metric is written with exactly these dimensions, else what is wrong.

        exact=False (graphs) accepts a metric written under these dimension names, each value of
        which the code writes, without needing that very combination in the run.
        """
        if use.namespace in AWS_METRICS:
            return self._aws_problem(use)
        if (use.namespace, use.name) in self.filters:
            return self._filter_problem(use)
        return self._code_problem(use, exact=exact)

    def _code_problem(self, use: MetricUse, *, exact: bool) -> str | None:
        same_name = [dims for namespace, name, dims in self.emitted if (namespace, name) == (use.namespace, use.name)]
        if not same_name:
            return f"{use.where}: no code writes {use.namespace}/{use.name}"
        wanted = frozenset(use.dimensions.items())
        if wanted in same_name:
            return None
        sets = sorted(sorted(dict(dims)) for dims in same_name)
        if exact or sorted(use.dimensions) not in sets:
            return f"{use.where}: {use.name} is written with the dimensions {same_name}, not {dict(use.dimensions)}"
        # A graph may show a combination of dimension values the run did not make, as long as the code
        # writes this metric with these dimensions and each of the values.
        seen = {pair for _, _, dims in self.emitted for pair in dims}
        unseen = sorted(pair for pair in wanted if pair not in seen)
        return f"{use.where}: {use.name} is never written with {unseen}" if unseen else None

    def _filter_problem(self, use: MetricUse) -> str | None:
        name, properties, transformation = self.filters[(use.namespace, use.name)]
        group = properties["LogGroupName"].removeprefix("<Ref ").removesuffix(">")
        writer = log_group_writers(self.deployed).get(group)
        if writer is None:
            return f"{use.where}: {name} reads {group}, which no function writes to"
        matching = [line for line in self.log_lines[writer] if filter_matches(properties["FilterPattern"], line)]
        if not matching:
            return f"{use.where}: {name}'s pattern matches no line the {writer} wrote"
        fields = {item["Key"]: item["Value"] for item in transformation.get("Dimensions", [])}
        if set(fields) != set(use.dimensions):
            return f"{use.where}: {name} writes the dimensions {sorted(fields)}, not {sorted(use.dimensions)}"
        for key, field in fields.items():
            values = {str(line.get(field.removeprefix("$."))) for line in matching}
            if values != {use.dimensions[key]}:
                return f"{use.where}: {name} writes {key}={values}, not {use.dimensions[key]!r}"
        return None

    def _aws_problem(self, use: MetricUse) -> str | None:
        names, dimension_sets = AWS_METRICS[use.namespace]
        if use.name not in names:
            return f"{use.where}: {use.namespace} has no metric {use.name}"
        if frozenset(use.dimensions) not in dimension_sets:
            return f"{use.where}: {use.namespace} publishes no metric under the dimensions {sorted(use.dimensions)}"
        for dimension, value in use.dimensions.items():
            problem = self._aws_dimension_problem(use, dimension, value)
            if problem:
                return f"{use.where}: {problem}"
        return None

    def _aws_dimension_problem(self, use: MetricUse, dimension: str, value: str) -> str | None:
        expected_type = {
            "FunctionName": "AWS::Lambda::Function",
            "ApiId": "AWS::ApiGatewayV2::Api",
            "QueueName": "AWS::SQS::Queue",
            "ScheduleGroup": "AWS::Scheduler::ScheduleGroup",
        }
        if dimension in expected_type:
            match = re.fullmatch(r"<(?:Ref|GetAtt) ([A-Za-z0-9]+)(\.QueueName)?>", value)
            wanted_form = dimension == "QueueName"
            if match is None or bool(match.group(2)) != wanted_form:
                return f"{dimension}={value!r} does not name a resource of the stack the way AWS does"
            if match.group(1) not in self.deployed.of_type(expected_type[dimension]):
                return f"{dimension}={value!r} is not an {expected_type[dimension]} of the stack"
            return None
        if use.namespace == "AWS/ApiGateway" and dimension in ("Stage", "Method", "Resource"):
            return self._route_problem(use)
        return f"{dimension} is not checked here: add it to tests/support/cloudwatch.py"

    def _route_problem(self, use: MetricUse) -> str | None:
        api = use.dimensions["ApiId"].removeprefix("<Ref ").removesuffix(">")
        stages = [
            self.deployed.properties(name)
            for name, spec in self.deployed.of_type("AWS::ApiGatewayV2::Stage").items()
            if spec["Properties"]["ApiId"] == {"Ref": api}
        ]
        stage = next((stage for stage in stages if stage["StageName"] == use.dimensions["Stage"]), None)
        if stage is None:
            return f"{api} has no stage {use.dimensions['Stage']!r}"
        if ROUTE_DIMENSIONS & set(use.dimensions):
            if not stage.get("DefaultRouteSettings", {}).get("DetailedMetricsEnabled"):
                return f"route metrics need DetailedMetricsEnabled on the {stage['StageName']} stage"
            paths = self.deployed.resources[api]["Properties"]["Body"]["paths"]
            operation = paths.get(use.dimensions["Resource"], {}).get(use.dimensions["Method"].lower())
            if operation is None:
                return f"{api} has no route {use.dimensions['Method']} {use.dimensions['Resource']}"
        return None
