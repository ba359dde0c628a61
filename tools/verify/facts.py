"""Where the checks' facts come from: the stack's description, AWS clients, and the few things only the
place knows (how to sign a /server/token request, an identity provider's token, what the routes invoke).

tools.verify.aws reads them from CloudFormation and the operator's credentials; tools.verify.local from
the translated template and the local stack's endpoints. The checks see only this interface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

APPLICATION = "kustomer-chat-token"
# What makes a stack this application: the contract's logical ids with their types, and the Version output.
APPLICATION_RESOURCES = {
    "MintTokenFunction": "AWS::Lambda::Function",
    "RefreshSecretFunction": "AWS::Lambda::Function",
    "SharedLayer": "AWS::Lambda::LayerVersion",
    "TokenApi": "AWS::ApiGatewayV2::Api",
    "SigningSecret": "AWS::SecretsManager::Secret",
    "ApiKeySecret": "AWS::SecretsManager::Secret",
}
APPLICATION_OUTPUTS = ("Version", "ApiUrl", "SigningSecretArn", "ApiKeySecretArn", "RefreshDeadLetterQueueUrl")


class StackRefused(Exception):
    """The input names no stack this tool can check (unknown, elsewhere, not this application, no credentials).

    Its message is the one line the operator reads."""


@dataclass(frozen=True)
class Resource:
    physical_id: str
    type: str


@dataclass(frozen=True)
class StackDescription:
    name: str
    region: str
    status: str
    status_reason: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]
    resources: Mapping[str, Resource]
    last_changed: datetime  # creation or last update

    def of_type(self, resource_type: str) -> dict[str, str]:
        """logical id -> physical id of the stack's resources of that type."""
        return {name: res.physical_id for name, res in self.resources.items() if res.type == resource_type}


def not_this_application(stack: StackDescription) -> str | None:
    """Why the stack is not kustomer-chat-token, or None when it is."""
    missing = [
        f"{name} ({kind})"
        for name, kind in APPLICATION_RESOURCES.items()
        if name not in stack.resources or stack.resources[name].type != kind
    ]
    missing += [f"output {name}" for name in APPLICATION_OUTPUTS if name not in stack.outputs]
    if not missing:
        return None
    return f"stack {stack.name!r} in {stack.region} is not {APPLICATION}: it has no " + ", ".join(missing)


@dataclass(frozen=True)
class FunctionConfig:
    """A function's configuration as far as the checks compare it. Values are never printed, only names."""

    label: str  # "live -> version 7", "$LATEST", "local runtime"...
    environment: Mapping[str, str]
    layers: tuple[str, ...]
    settings: Mapping[str, str]  # memory, timeout, handler, runtime, architecture, code hash...


@dataclass(frozen=True)
class RoutesTarget:
    """What the API's routes invoke, and the configuration the stack declares for the mint."""

    invoked: Mapping[str, FunctionConfig]  # route key -> configuration of what it invokes
    declared: FunctionConfig
    declared_layer: str  # the stack's SharedLayer version
    problems: tuple[str, ...] = ()  # what was wrong before any comparison (a route invoking $LATEST...)


@dataclass
class Facts:
    """Everything a check may look at. `client` answers None for a service the place has no stand-in for."""

    where: str  # "AWS us-east-1", "local"
    stack: StackDescription
    client: Callable[[str], Any | None]
    sign_server_token: Callable[[str, bytes, dict[str, str]], dict[str, str]]  # url, body, headers -> headers
    caller: str  # who the /server/token request is signed as (an ARN)
    access_token: Callable[[], str | None]  # an identity provider's access token, or None (SKIP)
    routes_target: Callable[[], RoutesTarget]
    # Checks that cannot be run here, with the reason (a service without a stand-in).
    unavailable: Mapping[str, str] = field(default_factory=dict)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class Client(Protocol):
    """Any boto3 client; typed loosely on purpose (boto3 has no type hints here)."""

    def __getattr__(self, name: str) -> Any: ...
