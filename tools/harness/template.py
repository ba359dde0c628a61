"""Reads a template the way CloudFormation would, locally: its YAML short tags, its intrinsic functions
(with parameter values, and local stand-ins for resources and their attributes) and functions' settings.

The one evaluator of intrinsic functions, for template.yaml as written (the role check, the runtime
harness) and for the template after the SAM transform (tools.sam_transform: the local gateway, the
alarm and safeguard tests). What it cannot evaluate raises `Unresolvable`, naming where.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
STACK_NAME = "kustomer-chat-token"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
}


def stack_id(stack_name: str) -> str:
    """AWS::StackId of a stack of that name here: CloudFormation adds a UUID of its own to each stack."""
    return (
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/{uuid.uuid5(uuid.NAMESPACE_URL, stack_name)}"
    )


class _CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type hints
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt...) as their long forms."""


def _tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        template: dict[str, Any] = yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 (safe loader subclass)
    return template


# What !Ref AWS::NoValue resolves to: the property or list item is dropped.
_NO_VALUE: Any = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Unresolvable(ValueError):
    """A value that cannot be evaluated here: a resource known only once deployed, or a function not supported."""


def _no_attributes(logical_id: str, attribute: str) -> str:
    raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute} is known only once deployed")


class CloudFormationValues:
    """Evaluates the intrinsic functions of a template as CloudFormation does at deploy time.

    Parameters take their defaults, with `parameters` on top (CommaDelimitedList ones become
    lists). `resources` maps logical ids to what !Ref gives locally, and `attributes(logical_id,
    name)` gives what !GetAtt gives; without them, a resource's Ref or attribute is Unresolvable.
    `stack_name` is AWS::StackName: two stacks of one account and region differ only there.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
        *,
        resources: Mapping[str, str] | None = None,
        attributes: Callable[[str, str], str] = _no_attributes,
        stack_name: str = STACK_NAME,
    ) -> None:
        self._conditions: Mapping[str, Any] = template.get("Conditions", {})
        self._mappings: Mapping[str, Any] = template.get("Mappings", {})
        specs: Mapping[str, Any] = template.get("Parameters", {})
        values: dict[str, Any] = parameter_values(template, parameters)
        for name, spec in specs.items():
            if spec.get("Type") == "CommaDelimitedList" and name in values:
                values[name] = values[name].split(",")
        self._parameters = set(specs)
        self._values = {
            **values,
            **PSEUDO_PARAMETERS,
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id(stack_name),
        }
        self._resources: Mapping[str, str] = resources or {}  # looked up only when referenced
        self._attributes = attributes

    def condition(self, name: str, where: str = "Conditions") -> bool:
        return self._truth(self._conditions[name], f"{where} ({name})")

    def resolve(self, value: Any, where: str = "template") -> Any:
        """The value with every intrinsic evaluated and AWS::NoValue removed."""
        resolved = self._resolve(value, where)
        if resolved is _NO_VALUE:
            raise Unresolvable(f"{where}: the whole value is AWS::NoValue")
        return resolved

    def text(self, value: Any, where: str = "template") -> str:
        """A value that must come out as one string (an environment variable, a handler...)."""
        resolved = self.resolve(value, where)
        if isinstance(resolved, (dict, list, bool)):
            raise Unresolvable(f"{where}: {resolved!r} is not a single value")
        return str(resolved)

    def _resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [item for item in (self._resolve(item, where) for item in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return self._ref(argument, where)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self._attributes(logical_id, attribute)
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self._resolve(when_true if self.condition(name, where) else when_false, where)
            if function == "Fn::Split":
                delimiter, text = argument
                return str(self._resolve(text, where)).split(delimiter)
            if function == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(item) for item in self._resolve(items, where))
            if function == "Fn::Select":
                index, items = argument
                return self._resolve(items, where)[int(self._resolve(index, where))]
            if function == "Fn::Sub":
                return self._sub(argument, where)
            if function == "Fn::FindInMap":
                return self._find_in_map(argument, where)
            if function.startswith("Fn::") or function == "Condition":
                raise Unresolvable(f"{where}: {function} is not evaluated locally")
        resolved = {key: self._resolve(item, f"{where}.{key}") for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _find_in_map(self, argument: Any, where: str) -> Any:
        """Fn::FindInMap: a missing key fails the deploy, as CloudFormation does."""
        name, top, second = (str(self._resolve(item, where)) for item in argument)
        try:
            return self._mappings[name][top][second]
        except KeyError:
            raise Unresolvable(f"{where}: Fn::FindInMap [{name}, {top}, {second}] has no such key") from None

    def _ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._values:
            return self._values[name]
        if name in self._resources:
            return self._resources[name]
        if name in self._parameters:
            raise Unresolvable(f"{where}: no value for the template parameter {name}")
        raise Unresolvable(f"{where}: Ref {name} is a resource, known only once deployed")

    def _sub(self, argument: Any, where: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is written as ${Literal}
            if name in variables:
                return str(self._resolve(variables[name], where))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._attributes(logical_id, attribute)
            return str(self._ref(name, where))

        return _SUB_VARIABLE.sub(replace, text)

    def _truth(self, expression: Any, where: str) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise Unresolvable(f"{where}: condition {expression!r} cannot be evaluated")
        (function, argument), *_ = expression.items()
        if function == "Fn::Equals":
            left, right = (self._resolve(item, where) for item in argument)
            return bool(left == right)
        if function == "Fn::Not":
            return not self._truth(argument[0], where)
        if function == "Fn::And":
            return all(self._truth(item, where) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item, where) for item in argument)
        if function == "Condition":
            return self.condition(argument, where)
        raise Unresolvable(f"{where}: condition function {function} is not evaluated locally")


def function_settings(
    logical_id: str,
    *,
    resources: dict[str, str],
    parameters: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """(environment, properties) of a function as deployed: Globals merged, intrinsics evaluated.

    `resources` maps logical ids (SigningSecret...) to their local ids; `parameters`
    overrides parameter defaults.
    """
    template = template or load_template()
    global_properties = template.get("Globals", {}).get("Function", {})
    properties = template["Resources"][logical_id]["Properties"]
    merged = {**global_properties, **properties}
    variables = {
        **global_properties.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    values = CloudFormationValues(template, parameters, resources=resources)
    environment = {name: values.text(value, f"{logical_id}.{name}") for name, value in variables.items()}
    for key in ("Handler", "Timeout", "MemorySize"):
        if key in merged:
            merged[key] = values.text(merged[key], f"{logical_id}.{key}")
    return environment, merged


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The template's parameter defaults, with `overrides` on top."""
    values = {name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values.update(overrides or {})
    return values
