"""The facts of a stack deployed on AWS, read with the operator's credentials (read-only calls only)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)

from tools.verify.facts import (
    Facts,
    FunctionConfig,
    Resource,
    RoutesTarget,
    StackDescription,
    StackRefused,
    not_this_application,
)

STACK_ARN = re.compile(r"^arn:aws[a-z-]*:cloudformation:([a-z0-9-]+):\d{12}:stack/([A-Za-z][A-Za-z0-9-]*)/[0-9a-f-]+$")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(?::[A-Za-z0-9_$-]+)?")
# States whose stack may lack the application's outputs: not refused, the stack check says what they are.
BEING_CREATED_OR_FAILED = ("ROLLBACK", "DELETE", "CREATE_FAILED", "CREATE_IN_PROGRESS", "REVIEW_IN_PROGRESS")
TOKEN_VARIABLE = "VERIFY_ACCESS_TOKEN"  # noqa: S105 (the variable's name)
TOKEN_COMMAND_VARIABLE = "VERIFY_ACCESS_TOKEN_COMMAND"  # noqa: S105
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=10, read_timeout=30)
_CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}


def _refusal(error: ClientError) -> str:
    info = error.response.get("Error", {})
    return f"{info.get('Code', '?')}: {info.get('Message', '')}".strip()


# RFC 6750's b64token: what an access token may hold in an Authorization header (a JWT is one).
ACCESS_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def _one_token(token: str, source: str) -> str:
    """The token when it can go in an Authorization header as it is; ValueError naming the source, never the token."""
    if not ACCESS_TOKEN.match(token):
        raise ValueError(
            f"{source} is not one access token (letters, digits and -._~+/ only, = at the end; its value is not shown)"
        )
    return token


def access_token_from_environment(environment: dict[str, str] | None = None) -> str | None:
    """VERIFY_ACCESS_TOKEN, or what VERIFY_ACCESS_TOKEN_COMMAND prints; None when neither is set.
    Raises ValueError with one line when the command fails or either is not one token (neither is ever shown)."""
    environment = dict(os.environ if environment is None else environment)
    token = environment.get(TOKEN_VARIABLE, "").strip()
    if token:
        return _one_token(token, TOKEN_VARIABLE)
    command = environment.get(TOKEN_COMMAND_VARIABLE, "").strip()
    if not command:
        return None
    try:
        completed = subprocess.run(  # noqa: S603 (the operator's own command, no shell)
            shlex.split(command), capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        raise ValueError(f"{TOKEN_COMMAND_VARIABLE} could not run: {type(error).__name__}") from None
    if completed.returncode != 0:
        raise ValueError(f"{TOKEN_COMMAND_VARIABLE} exited with status {completed.returncode}")
    printed = completed.stdout.strip()
    if not printed or len(printed.split()) != 1:
        raise ValueError(f"{TOKEN_COMMAND_VARIABLE} did not print one token")
    return _one_token(printed, f"what {TOKEN_COMMAND_VARIABLE} printed")


def _session(region: str | None) -> boto3.Session:
    try:
        session = boto3.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    except ProfileNotFound as error:
        raise StackRefused(f"{error}: set AWS_PROFILE to a profile of your AWS configuration") from None
    if not session.region_name:
        raise StackRefused("no AWS region: pass --region (make verify AWS_REGION=...) or set AWS_REGION")
    if not REGION.match(session.region_name):
        raise StackRefused(f"{session.region_name!r} is not an AWS region name (e.g. us-east-1)")
    return session


def describe_stack(session: boto3.Session, stack_name: str) -> StackDescription:
    """The stack's status, outputs, parameters and resources; StackRefused with one line when there is none."""
    region = session.region_name
    cloudformation = session.client("cloudformation", config=_CONFIG)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        resources: dict[str, Resource] = {}
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
            for summary in page["StackResourceSummaries"]:
                resources[summary["LogicalResourceId"]] = Resource(
                    summary.get("PhysicalResourceId", ""), summary["ResourceType"]
                )
    except (NoCredentialsError, PartialCredentialsError):
        raise StackRefused(
            "no AWS credentials: set AWS_PROFILE (and run `aws sso login` for SSO), or export AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY"
        ) from None
    except EndpointConnectionError as error:
        raise StackRefused(
            f"CloudFormation in {region} cannot be reached ({error}): check the region and your network"
        ) from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "ValidationError" and "does not exist" in message:
            raise StackRefused(
                f"no stack {stack_name!r} in {region}: check the name, or pass the region it is in "
                "(--region, make verify AWS_REGION=...)"
            ) from None
        if code in _CREDENTIAL_CODES:
            raise StackRefused(f"AWS refused your credentials ({_refusal(error)}): renew them and try again") from None
        if "AccessDenied" in code:
            raise StackRefused(
                f"your credentials may not read the stack ({_refusal(error)}): they need "
                "cloudformation:DescribeStacks and ListStackResources (docs/verify.md#permissions)"
            ) from None
        raise StackRefused(f"CloudFormation refused: {_refusal(error)}") from None
    except BotoCoreError as error:
        raise StackRefused(f"AWS could not be asked: {error}") from None
    stack = stacks[0]
    description = StackDescription(
        name=stack["StackName"],
        region=region,
        status=stack["StackStatus"],
        status_reason=stack.get("StackStatusReason", ""),
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        resources=resources,
        last_changed=stack.get("LastUpdatedTime") or stack["CreationTime"],
    )
    refusal = not_this_application(description)
    # A stack being created, or whose first create failed, has none of its outputs yet: the stack check says so.
    if refusal and not description.status.startswith(BEING_CREATED_OR_FAILED):
        raise StackRefused(refusal)
    return description


def _function_config(lambda_client: Any, function: str, label: str) -> FunctionConfig:
    configuration = lambda_client.get_function_configuration(FunctionName=function)
    settings = {
        key: str(configuration.get(key))
        for key in (
            "Runtime",
            "Handler",
            "MemorySize",
            "Timeout",
            "Role",
            "CodeSha256",
            "TracingConfig",
            "SnapStart",
            "LoggingConfig",
        )
    }
    settings["Architectures"] = ",".join(configuration.get("Architectures", []))
    # A published version reports SnapStart's OptimizationStatus On, $LATEST Off: only ApplyOn is configuration.
    settings["SnapStart"] = str((configuration.get("SnapStart") or {}).get("ApplyOn"))
    version = configuration.get("Version", "")
    if version and version != "$LATEST":
        label = f"{label} (version {version})"
    return FunctionConfig(
        label,
        configuration.get("Environment", {}).get("Variables", {}),
        tuple(layer["Arn"] for layer in configuration.get("Layers", [])),
        settings,
    )


def _every(client: Any, operation: str, **arguments: Any) -> list[dict[str, Any]]:
    """Every item of a paged API Gateway listing."""
    return [item for page in client.get_paginator(operation).paginate(**arguments) for item in page.get("Items", [])]


def routes_target(session: boto3.Session, stack: StackDescription) -> RoutesTarget:
    """What each route of TokenApi invokes, against the mint's $LATEST configuration (what the stack declares)."""
    lambda_client = session.client("lambda", config=_CONFIG)
    api = session.client("apigatewayv2", config=_CONFIG)
    mint = stack.resources["MintTokenFunction"].physical_id
    declared = _function_config(lambda_client, mint, "$LATEST")
    # A published version's CodeSha256 equals $LATEST's when the code is the deployed one; the rest likewise.
    api_id = stack.resources["TokenApi"].physical_id
    integrations = {i["IntegrationId"]: i for i in _every(api, "get_integrations", ApiId=api_id)}
    invoked: dict[str, FunctionConfig] = {}
    problems: list[str] = []
    for route in _every(api, "get_routes", ApiId=api_id):
        target = route.get("Target", "").removeprefix("integrations/")
        uri = integrations.get(target, {}).get("IntegrationUri", "")
        found = FUNCTION_ARN.search(uri)
        if not found:
            problems.append(f"{route['RouteKey']} invokes no Lambda function ({uri or 'no integration'})")
            continue
        arn = found.group(0)
        qualifier = arn.split(":")[7] if arn.count(":") == 7 else None
        if f":function:{mint}" not in arn:
            problems.append(f"{route['RouteKey']} invokes {arn}, not the stack's mint")
            continue
        if qualifier is None or qualifier == "$LATEST":
            problems.append(f"{route['RouteKey']} invokes $LATEST, not the live alias")
            continue
        invoked[route["RouteKey"]] = _function_config(lambda_client, arn, f"alias {qualifier}")
    return RoutesTarget(invoked, declared, stack.resources["SharedLayer"].physical_id, tuple(problems))


def server_token_signer(session: boto3.Session) -> Callable[[str, bytes, dict[str, str]], dict[str, str]]:
    def sign(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        credentials = session.get_credentials()
        if credentials is None:
            raise StackRefused("no AWS credentials to sign POST /server/token with")
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", session.region_name).add_auth(request)
        return dict(request.headers.items())

    return sign


def aws_facts(stack_name: str, region: str | None = None) -> Facts:
    arn = STACK_ARN.match(stack_name)
    if arn:
        if region and region != arn.group(1):
            raise StackRefused(f"the stack ARN is in {arn.group(1)}, not in --region {region}")
        region = arn.group(1)
    elif not STACK_NAME.match(stack_name):
        raise StackRefused(f"{stack_name!r} is not a stack name (letters, digits and hyphens, starting with a letter)")
    session = _session(region)
    stack = describe_stack(session, stack_name)
    try:
        caller = session.client("sts", config=_CONFIG).get_caller_identity()["Arn"]
    except (ClientError, BotoCoreError) as error:
        raise StackRefused(f"your credentials cannot be identified (sts:GetCallerIdentity): {error}") from None
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, config=_CONFIG)
        return clients[service]

    return Facts(
        where=f"AWS {session.region_name}",
        stack=stack,
        client=client,
        sign_server_token=server_token_signer(session),
        caller=caller,
        access_token=access_token_from_environment,
        routes_target=lambda: routes_target(session, stack),
    )
