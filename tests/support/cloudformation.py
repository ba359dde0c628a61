"""What CloudFormation does with a translated template on an update: which physical resources it keeps.

CloudFormation keeps a resource across an update when its logical id stays and none of its
create-only properties (the resource type's schema, as cfn-lint ships it) changes; otherwise it
creates a new one (a new Lambda version, a new layer version...). `Deployment.physical(logical_id)`
names the physical resource a template with these parameter values leads to: the logical id and
the evaluated create-only properties, where a Ref or GetAtt of another resource stands for that
resource's own physical name. Two deployments name the same physical resource exactly when an
update from one to the other keeps it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tools.harness.template import REGION, STACK_NAME, CloudFormationValues

_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")
_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z0-9.]+)?\}")  # pseudo parameters too


@functools.cache
def create_only_properties(resource_type: str) -> tuple[str, ...]:
    """Top-level properties whose change makes CloudFormation replace a resource of this type."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema
    paths: list[str] = schema.get("createOnlyProperties", [])
    return tuple(sorted({path.split("/")[2] for path in paths}))


class _PhysicalNames(Mapping[str, str]):
    """What !Ref of each resource gives: its physical name, worked out only when referenced."""

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment

    def __getitem__(self, logical_id: str) -> str:
        if logical_id not in self._deployment.resources:
            raise KeyError(logical_id)
        return self._deployment.physical(logical_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._deployment.resources)

    def __len__(self) -> int:
        return len(self._deployment.resources)


class Deployment:
    """A translated template deployed with these parameter values as stack `stack_name`."""

    def __init__(self, translated: Mapping[str, Any], parameters: Mapping[str, str], stack_name: str = STACK_NAME):
        self.resources: Mapping[str, Any] = translated["Resources"]
        self.stack_name = stack_name
        self.values = CloudFormationValues(
            translated,
            parameters,
            resources=_PhysicalNames(self),
            attributes=lambda logical_id, attribute: f"{self.physical(logical_id)}.{attribute}",
            stack_name=stack_name,
        )
        self._physical: dict[str, str] = {}

    def physical(self, logical_id: str) -> str:
        """The physical resource: the same string in two deployments exactly when an update keeps it."""
        if logical_id not in self._physical:
            resource = self.resources[logical_id]
            properties = resource.get("Properties", {})
            create_only = {
                name: self.values.resolve(properties[name], f"{logical_id}.{name}")
                for name in create_only_properties(resource["Type"])
                if name in properties
            }
            digest = hashlib.sha256(json.dumps(create_only, sort_keys=True).encode()).hexdigest()[:16]
            self._physical[logical_id] = f"{self.stack_name}-{logical_id}#{digest}"  # as generated names run
        return self._physical[logical_id]

    def invoked(self, logical_id: str) -> str:
        """What an invocation of this resource runs: a version, an alias's version, or a function's $LATEST."""
        resource = self.resources[logical_id]
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Alias":
            return str(self.values.resolve(properties["FunctionVersion"], f"{logical_id}.FunctionVersion"))
        if resource["Type"] == "AWS::Lambda::Version":
            return self.physical(logical_id)
        if resource["Type"] == "AWS::Lambda::Function":
            # Unqualified: $LATEST runs whatever the function's properties are now.
            configuration = self.values.resolve(properties, logical_id)
            return f"{self.physical(logical_id)}:$LATEST:{json.dumps(configuration, sort_keys=True)}"
        raise ValueError(f"{logical_id} ({resource['Type']}) is not something Lambda invokes")

    def routes(self, api_logical_id: str) -> dict[str, str]:
        """Each route of an HTTP API's OpenAPI body -> the logical id its Lambda integration invokes."""
        body = self.resources[api_logical_id]["Properties"]["Body"]
        targets: dict[str, str] = {}
        for path, operations in body["paths"].items():
            for method, operation in operations.items():
                uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
                names = [name for name in _SUB_NAME.findall(uri) if name in self.resources]
                (target,) = names
                targets[f"{method.upper()} {path}"] = target
        return targets

    def invoked_by_routes(self, api_logical_id: str) -> dict[str, str]:
        """Each route -> what an invocation through it runs."""
        return {route: self.invoked(target) for route, target in self.routes(api_logical_id).items()}


def parameters_referenced(value: Any, conditions: Mapping[str, Any]) -> set[str]:
    """Every name a value reaches with Ref, GetAtt or ${...}: parameters, pseudo parameters, resources.

    Through Fn::If's conditions too.
    """
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= parameters_referenced(item, conditions)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".", 1)[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else item
                found |= set(_SUB_REFERENCE.findall(text)) - set(variables)
                found |= parameters_referenced(variables, conditions)
            elif key == "Fn::If":
                found |= parameters_referenced(conditions[item[0]], conditions)
                found |= parameters_referenced(item[1:], conditions)
            elif key == "Condition" and isinstance(item, str):
                found |= parameters_referenced(conditions[item], conditions)
            else:
                found |= parameters_referenced(item, conditions)
    return found


def unresolved_dependencies(translated: Mapping[str, Any], parameters: Mapping[str, str]) -> list[str]:
    """What CloudFormation's change set refuses as "Unresolved resource dependencies [...]" for these values:
    each DependsOn of a resource that is created on a resource whose Condition is false."""
    resources, values = translated["Resources"], CloudFormationValues(translated, parameters)
    kept = {name for name, spec in resources.items() if "Condition" not in spec or values.condition(spec["Condition"])}
    missing = []
    for name in sorted(kept):
        depends_on = resources[name].get("DependsOn", [])
        missing += [
            target for target in ([depends_on] if isinstance(depends_on, str) else depends_on) if target not in kept
        ]
    return missing
