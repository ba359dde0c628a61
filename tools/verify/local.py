"""make verify-local: the checks of make verify against the local stack of make serve.

The stack's facts come from the template after the SAM transform and the local endpoints: the local
gateway (tools.local_api) is the API, moto is Secrets Manager, and, for the checks' sake, also the
stand-in for Scheduler (the template's schedule), SQS (the dead-letter queue) and CloudWatch (the
template's alarms, and the metrics the refresher's log lines carry as EMF, as CloudWatch would read
them). What the routes invoke is the mint runtime the gateway holds. What has no stand-in says SKIP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from tools.harness.lambda_runtime import BUILD_DIR, Invocation, LambdaRuntime
from tools.harness.template import ACCOUNT_ID, REGION, STACK_NAME, CloudFormationValues, function_settings
from tools.local_api import LOCAL_DEV_CALLER_ARN, Served, gateway_parameters, serve_stack
from tools.local_stack import LocalStack, local_stack
from tools.sam_transform import translated_template
from tools.verify.facts import Facts, FunctionConfig, Resource, RoutesTarget, StackDescription

ROOT = Path(__file__).resolve().parents[2]
REFRESH_EVENT = ROOT / "events" / "refresh-scheduled.json"
REFRESHER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK_NAME}-RefreshSecretFunction"
MINT_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK_NAME}-MintTokenFunction"
LOCALLY_UNAVAILABLE = {
    "signing-secret-rotation": (
        "no stand-in: moto turns rotation on only by invoking the rotation function in a Lambda of its own "
        "(which needs Docker); on AWS the SigningSecretRotation resource does it"
    ),
    "alarm-metrics": (
        "no stand-in: the local gateway writes no API Gateway metrics and Lambda's are not written locally, so "
        "no alarm's metric could have data; on AWS the check reads each alarm's metric with its dimensions"
    ),
}
# The one form of SEARCH verify sends (tools.verify.checks.refresh_failed_search): a schema of exact dimension names
# and exact "quoted" terms.
_SEARCH = re.compile(
    r"^SEARCH\('\{(?P<schema>[^}]+)\} (?P<terms>[^']*)', '(?P<stat>[A-Za-z0-9.]+)', (?P<period>\d+)\)$"
)
_TERM = re.compile(r'(\w+)="([^"]*)"')
_PROPERTY = re.compile(r"\$\{PROP\('Dim\.(\w+)'\)\}")
# Variables the harness adds to a local runtime (its endpoint and role credentials), not the template.
_HARNESS_VARIABLES = ("AWS_",)


@dataclass
class LocalVerify:
    """The running local stack, its stand-ins, and the facts the checks read."""

    stack: LocalStack
    served: Served
    refresher: LambdaRuntime
    parameters: dict[str, str]
    moto_url: str
    facts: Facts
    _shipped: int = 0  # how much of the refresher's output is already in the local CloudWatch

    def aws(self, service: str) -> Any:
        """The admin's client of a moto stand-in."""
        return boto3.client(service, endpoint_url=self.moto_url, region_name=REGION)

    def refresh(self, *, later: timedelta = timedelta(0)) -> Invocation:
        """One scheduled run of the built refresher, its metrics shipped to the local CloudWatch as Lambda's
        log pipeline would. `later` dates them that far ahead: a run of the schedule to come."""
        invocation = self.refresher.invoke(json.loads(REFRESH_EVENT.read_text(encoding="utf-8")))
        logs = self.refresher.logs()
        ship_emf_metrics(logs[self._shipped :], self.aws("cloudwatch"), later=later)
        self._shipped = len(logs)
        return invocation

    def set_clock(self, later: timedelta = timedelta(0)) -> None:
        """The checks' clock runs `later` ahead of this machine's (timedelta(0) sets it back)."""
        self.facts.now = lambda: datetime.now(UTC) + later

    def declared_mint(self) -> FunctionConfig:
        environment, properties = function_settings(
            "MintTokenFunction",
            resources={"SigningSecret": self.stack.signing_secret_arn, "ApiKeySecret": self.stack.api_key_secret_arn},
            parameters=self.parameters,
        )
        return FunctionConfig(
            "the template", environment, (str(BUILD_DIR / "SharedLayer" / "python"),), _settings(properties)
        )

    def routes_target(self) -> RoutesTarget:
        declared = self.declared_mint()
        mint = self.served.api.mint
        if not isinstance(mint, LambdaRuntime):
            return RoutesTarget({}, declared, declared.layers[0], (f"the local gateway invokes {type(mint).__name__}",))
        environment = {
            name: value
            for name, value in mint.environment.items()
            if name in declared.environment or not name.startswith(_HARNESS_VARIABLES)
        }
        settings = {"Handler": mint.handler, "Timeout": str(mint.timeout_seconds), "MemorySize": str(mint.memory_mb)}
        invoked = FunctionConfig("the local mint runtime", environment, (str(mint.layer_python),), settings)
        routes = {f"{method} {path}": invoked for (method, path) in self.served.api.routes}
        return RoutesTarget(routes, declared, declared.layers[0])


def _label(label: str, dimensions: dict[str, str]) -> str:
    """A SEARCH result's label: the query's, each ${PROP('Dim.NAME')} replaced by that dimension's value."""
    return _PROPERTY.sub(lambda found: dimensions.get(found.group(1), ""), label)


class LocalCloudWatch:
    """moto's CloudWatch, with a stand-in for what moto lacks: SEARCH in GetMetricData. A SEARCH of the form verify
    sends is answered as CloudWatch documents it, one result per series found (ListMetrics: moto lists a metric at
    once), each labelled by the query's ${PROP('Dim.NAME')}; any other expression goes to moto as it is."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_paginator(self, operation: str) -> Any:
        if operation != "get_metric_data":
            return self._client.get_paginator(operation)
        answer = self.get_metric_data

        class _OnePage:
            def paginate(self, **arguments: Any) -> Iterator[dict[str, Any]]:
                yield answer(**arguments)

        return _OnePage()

    def get_metric_data(self, **arguments: Any) -> dict[str, Any]:
        queries: list[dict[str, Any]] = []
        found: dict[str, tuple[str, str]] = {}  # inner id -> (the SEARCH's id, its label)
        for query in arguments["MetricDataQueries"]:
            search = _SEARCH.match(query.get("Expression", ""))
            if not search:
                queries.append(query)
                continue
            namespace, *names = [part.strip() for part in search["schema"].split(",")]
            terms = dict(_TERM.findall(search["terms"]))
            metric_name = terms.pop("MetricName")
            listed = self._client.list_metrics(
                Namespace=namespace,
                MetricName=metric_name,
                Dimensions=[{"Name": name, "Value": value} for name, value in terms.items()],
            )["Metrics"]
            for metric in listed:
                dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                if set(dimensions) != set(names):
                    continue
                inner = f"{query['Id']}x{len(found)}"
                label = _label(query.get("Label", metric_name), dimensions)
                found[inner] = (query["Id"], label)
                stat = {"Metric": metric, "Period": int(search["period"]), "Stat": search["stat"]}
                queries.append({"Id": inner, "MetricStat": stat})
        answer = self._client.get_metric_data(**{**arguments, "MetricDataQueries": queries})
        for result in answer.get("MetricDataResults", []):
            if result["Id"] in found:
                result["Id"], result["Label"] = found[result["Id"]]
        return dict(answer)


def stack_parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """The stack's parameters as DescribeStacks answers them: every parameter of the template, as a string, its
    default unless the local stack overrides it."""
    return {
        name: str(overrides.get(name, spec.get("Default", ""))) for name, spec in template.get("Parameters", {}).items()
    }


def _settings(properties: dict[str, Any]) -> dict[str, str]:
    return {key: str(properties[key]) for key in ("Handler", "Timeout", "MemorySize") if key in properties}


def ship_emf_metrics(logs: str, cloudwatch: Any, *, later: timedelta = timedelta(0)) -> int:
    """Puts the metrics of the EMF lines in a function's output into CloudWatch, as Lambda's log
    pipeline does on AWS (dated `later` ahead). Returns how many data points it put."""
    put = 0
    for line in logs.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        emf = document.get("_aws") if isinstance(document, dict) else None
        if not isinstance(emf, dict):
            continue
        timestamp = datetime.fromtimestamp(emf["Timestamp"] / 1000, UTC) + later
        for directive in emf.get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", [[]]):
                dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
                data = []
                for metric in directive.get("Metrics", []):
                    values = document.get(metric["Name"])
                    for value in values if isinstance(values, list) else [values]:
                        data.append(
                            {
                                "MetricName": metric["Name"],
                                "Dimensions": dimensions,
                                "Timestamp": timestamp,
                                "Value": float(value),
                                "Unit": metric.get("Unit", "None"),
                            }
                        )
                if data:
                    cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
                    put += len(data)
    return put


def _stand_ins(
    template: dict[str, Any], parameters: dict[str, str], aws: Any, secrets: dict[str, str]
) -> dict[str, Resource]:
    """Creates in moto what the template declares and moto can stand in for; every resource's local id."""
    resources = template["Resources"]
    queue_url = aws("sqs").create_queue(QueueName=f"{STACK_NAME}-RefreshDeadLetterQueue")["QueueUrl"]
    queue_arn: str = aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    physical: dict[str, str] = {name: f"{STACK_NAME}-{name}" for name in resources}
    physical.update(secrets)
    physical.update(
        {"RefreshDeadLetterQueue": queue_url, "MintTokenFunction": MINT_ARN, "RefreshSecretFunction": REFRESHER_ARN}
    )

    def attribute(logical_id: str, name: str) -> str:
        if logical_id == "RefreshSecretFunction" and name == "Arn":
            return REFRESHER_ARN
        if logical_id == "RefreshDeadLetterQueue" and name == "Arn":
            return queue_arn
        if name == "Arn":
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{STACK_NAME}-{logical_id}"
        return f"{STACK_NAME}-{logical_id}-{name}"

    values = CloudFormationValues(template, parameters, resources=physical, attributes=attribute)
    scheduler = aws("scheduler")
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Scheduler::ScheduleGroup":
            scheduler.create_schedule_group(Name=physical[logical_id])
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind == "AWS::Scheduler::Schedule":
            properties = values.resolve(resource["Properties"], logical_id)
            properties.pop("Name", None)
            # GroupName resolved to the group's local name; none (templates before 1.0.2): the default group
            scheduler.create_schedule(Name=physical[logical_id], **properties)
        elif kind == "AWS::CloudWatch::Alarm":
            # A stand-in for existence and state only: moto does not evaluate alarms.
            aws("cloudwatch").put_metric_alarm(
                AlarmName=physical[logical_id],
                Namespace="KustomerChatToken",
                MetricName=f"LocalStandInFor{logical_id}",
                Statistic="Sum",
                Period=900,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
    return {name: Resource(physical[name], resource["Type"]) for name, resource in resources.items()}


def describe_local_stack(
    stack: LocalStack,
    served: Served,
    parameters: dict[str, str],
    resources: dict[str, Resource],
    template: dict[str, Any],
) -> StackDescription:
    outputs = {
        "Version": str(template["Outputs"]["Version"]["Value"]),
        "ApiUrl": served.api.url,
        "SigningSecretArn": stack.signing_secret_arn,
        "ApiKeySecretArn": stack.api_key_secret_arn,
        "RefreshDeadLetterQueueUrl": resources["RefreshDeadLetterQueue"].physical_id,
        "MintTokenFunctionArn": MINT_ARN,
        "RefreshSecretFunctionArn": REFRESHER_ARN,
    }
    # The translated template's types, as CloudFormation lists a deployed stack's resources.
    return StackDescription(
        name=STACK_NAME,
        region="local",
        status="CREATE_COMPLETE",
        status_reason="",
        outputs=outputs,
        parameters=parameters,
        resources=resources,
        last_changed=datetime.now(UTC),
    )


@contextmanager
def local_verify_stack(*, refresh: bool = True) -> Iterator[LocalVerify]:
    """make serve's stack (the refresher run once, unless refresh=False), its stand-ins and the facts."""
    with local_stack() as stack, ExitStack() as running:
        refresher = stack.start_function("RefreshSecretFunction")
        served = running.enter_context(serve_stack(stack, site_root=ROOT / "examples" / "web"))
        overrides = {
            **gateway_parameters(served.issuer.url, served.site.url),
            "KustomerApiBaseUrl": stack.kustomer.url,
        }
        template = translated_template(overrides)
        parameters = stack_parameters(template, overrides)
        moto_url = str(stack.client.meta.endpoint_url)

        def aws(service: str) -> Any:
            return boto3.client(service, endpoint_url=moto_url, region_name=REGION)

        secrets = {"SigningSecret": stack.signing_secret_arn, "ApiKeySecret": stack.api_key_secret_arn}
        resources = _stand_ins(template, parameters, aws, secrets)
        description = describe_local_stack(stack, served, parameters, resources, template)
        clients = {
            "secretsmanager": stack.client,
            "scheduler": aws("scheduler"),
            "sqs": aws("sqs"),
            "cloudwatch": LocalCloudWatch(aws("cloudwatch")),
        }
        facts = Facts(
            where="local",
            stack=description,
            client=clients.get,
            sign_server_token=lambda url, body, headers: {
                **headers,
                "Authorization": f"LocalDevIam {served.api.iam_key}",
            },
            caller=LOCAL_DEV_CALLER_ARN,
            access_token=lambda: served.access_token,
            routes_target=lambda: local.routes_target(),
            unavailable=dict(LOCALLY_UNAVAILABLE),
        )
        local = LocalVerify(stack, served, refresher, parameters, moto_url, facts)
        if refresh:
            local.refresh()
        yield local
