"""Reads template.yaml the way CloudFormation would: functions' environments, and any part resolved locally."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "kustomer-chat-token",
}
# What !Ref AWS::NoValue resolves to: the property or list item is dropped.
NO_VALUE: Any = object()


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt...) as their long forms."""


def _tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
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


class _Context:
    def __init__(self, parameters: dict[str, str], resources: dict[str, str], conditions: dict[str, Any]) -> None:
        self.parameters = parameters
        self.resources = resources
        self.conditions = conditions

    def condition(self, name: str, where: str) -> bool:
        return self.truth(self.conditions[name], where)

    def truth(self, expression: Any, where: str) -> bool:
        if isinstance(expression, dict) and set(expression) == {"Fn::Equals"}:
            left, right = (self.value(item, where) for item in expression["Fn::Equals"])
            return left == right
        if isinstance(expression, dict) and set(expression) == {"Fn::Not"}:
            return not self.truth(expression["Fn::Not"][0], where)
        if isinstance(expression, dict) and set(expression) == {"Condition"}:
            return self.condition(expression["Condition"], where)
        raise ValueError(f"{where}: condition {expression!r} cannot be evaluated locally")

    def value(self, value: Any, where: str) -> str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            name = value["Ref"]
            if name in self.resources:
                return self.resources[name]
            if name in self.parameters:
                return self.parameters[name]
            raise KeyError(f"{where}: no local value for !Ref {name}")
        if isinstance(value, dict) and set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return self.value(when_true if self.condition(name, where) else when_false, where)
        raise ValueError(f"{where}: {value!r} cannot be resolved locally")

    def resolve(self, value: Any, where: str, attributes: Callable[[str, str], str]) -> Any:
        """Any template value with its intrinsic functions applied; NO_VALUE where AWS::NoValue removes it."""
        if isinstance(value, list):
            items = [self.resolve(item, where, attributes) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            resolved = {key: self.resolve(item, f"{where}.{key}", attributes) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        function, argument = next(iter(value.items()))
        if function == "Ref":
            return self._ref(argument, where)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return attributes(logical_id, attribute)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(name, where) else when_false, where, attributes)
        if function == "Fn::Sub":
            return self._sub(argument, where, attributes)
        if function == "Fn::Split":
            delimiter, source = argument
            return str(self.resolve(source, where, attributes)).split(delimiter)
        if function == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(str(item) for item in self.resolve(items, where, attributes))
        raise ValueError(f"{where}: {function} cannot be resolved locally")

    def _ref(self, name: str, where: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        return self.value({"Ref": name}, where)

    def _sub(self, argument: Any, where: str, attributes: Callable[[str, str], str]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name], where, attributes))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return attributes(logical_id, attribute)
            return str(self._ref(name, where))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def function_settings(
    logical_id: str,
    *,
    resources: dict[str, str],
    parameters: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """(environment, properties) of a function as deployed: Globals merged, Refs resolved.

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
    context = _Context(parameter_values(template, parameters), resources, template.get("Conditions", {}))
    environment = {name: context.value(value, f"{logical_id}.{name}") for name, value in variables.items()}
    for key in ("Handler", "Timeout", "MemorySize"):
        if key in merged:
            merged[key] = context.value(merged[key], f"{logical_id}.{key}")
    return environment, merged


def parameter_values(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The template's parameter defaults, with `overrides` on top."""
    values = {name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec}
    values.update(overrides or {})
    return values


class TemplateResolver:
    """Resolves any part of a template (policies, properties) as CloudFormation would, locally.

    `resources` maps logical ids to what !Ref gives; `attributes(logical_id, name)` gives
    what !GetAtt gives. Anything it cannot resolve raises, naming where.
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        resources: dict[str, str],
        attributes: Callable[[str, str], str],
        parameters: dict[str, str] | None = None,
    ) -> None:
        self._context = _Context(parameter_values(template, parameters), resources, template.get("Conditions", {}))
        self._attributes = attributes

    def resolve(self, value: Any, where: str) -> Any:
        return self._context.resolve(value, where, self._attributes)
