"""Reads template.yaml the way CloudFormation would, enough to give a local function its environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


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
    parameter_values = {
        name: str(spec["Default"]) for name, spec in template.get("Parameters", {}).items() if "Default" in spec
    }
    parameter_values.update(parameters or {})
    global_properties = template.get("Globals", {}).get("Function", {})
    properties = template["Resources"][logical_id]["Properties"]
    merged = {**global_properties, **properties}
    variables = {
        **global_properties.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    context = _Context(parameter_values, resources, template.get("Conditions", {}))
    environment = {name: context.value(value, f"{logical_id}.{name}") for name, value in variables.items()}
    for key in ("Handler", "Timeout", "MemorySize"):
        if key in merged:
            merged[key] = context.value(merged[key], f"{logical_id}.{key}")
    return environment, merged
