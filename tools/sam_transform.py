"""What CloudFormation really gets: template.yaml after the AWS SAM transform, offline.

`translated_template(parameters)` runs samtranslator from the pinned SAM CLI environment
(.venv-sam, its own Python) on template.yaml, the way `sam validate` does, and returns the
expanded CloudFormation template as a dict. `CloudFormationValues` then evaluates the
parameter-dependent intrinsics (Ref, Fn::If, Fn::Split...) of that template as
CloudFormation would at deploy time, for tests and for the local gateway (make serve).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSLATOR = Path(__file__).resolve().with_name("sam_translate.py")
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "kustomer-chat-token"


class TransformFailed(RuntimeError):
    """The SAM transform refused the template or could not run."""


def translated_template(parameters: Mapping[str, str], template: Path = TEMPLATE) -> dict[str, Any]:
    """The template after the SAM transform with these parameter values (a fresh copy; cached per content)."""
    source = template.read_bytes()
    key = (str(template), hashlib.sha256(source).hexdigest(), tuple(sorted(parameters.items())))
    return copy.deepcopy(_translate(*key))


@functools.cache
def _translate(template: str, digest: str, parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        raise TransformFailed(f"{SAM_PYTHON} is missing: run `make install` to create the SAM CLI environment")
    # No credentials and no profile: the transform must not need AWS, and never reaches it.
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAM_CLI_TELEMETRY": "0",
    }
    completed = subprocess.run(  # noqa: S603 (fixed interpreter and script of this repository)
        [str(SAM_PYTHON), str(TRANSLATOR), template],
        input=json.dumps(dict(parameters)),
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise TransformFailed(completed.stderr.strip()[-2000:] or f"exit status {completed.returncode}")
    translated: dict[str, Any] = json.loads(completed.stdout)
    return translated


class Unresolvable(ValueError):
    """A value that only exists once the stack is deployed (a resource's id or attribute)."""


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
_NO_VALUE = object()


class CloudFormationValues:
    """Evaluates parameter-dependent intrinsic functions of a template as CloudFormation does."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        self._conditions: Mapping[str, Any] = template.get("Conditions", {})
        specs: Mapping[str, Any] = template.get("Parameters", {})
        values: dict[str, Any] = {name: str(spec["Default"]) for name, spec in specs.items() if "Default" in spec}
        values.update(parameters)
        missing = sorted(set(specs) - set(values))
        if missing:
            raise KeyError(f"no value for the template parameters {', '.join(missing)}")
        for name, spec in specs.items():
            if spec.get("Type") == "CommaDelimitedList":
                values[name] = values[name].split(",")
        self._values = {
            **values,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
        }

    def condition(self, name: str) -> bool:
        return self._truth(self._conditions[name])

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic evaluated and AWS::NoValue removed."""
        resolved = self._resolve(value)
        if resolved is _NO_VALUE:
            raise Unresolvable("the whole value is AWS::NoValue")
        return resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self._resolve, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return self._ref(argument)
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self._resolve(when_true if self.condition(name) else when_false)
            if function == "Fn::Split":
                delimiter, text = argument
                return str(self._resolve(text)).split(delimiter)
            if function == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(item) for item in self._resolve(items))
            if function == "Fn::Select":
                index, items = argument
                return self._resolve(items)[int(self._resolve(index))]
            if function == "Fn::Sub":
                return self._sub(argument)
            if function.startswith("Fn::") or function == "Condition":
                raise Unresolvable(f"{function} is not evaluated locally")
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name not in self._values:
            raise Unresolvable(f"Ref {name} is a resource, known only once deployed")
        return self._values[name]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {name: self._resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(local[name]) if name in local else str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _truth(self, expression: Any) -> bool:
        (function, argument), *_ = expression.items()
        if function == "Fn::Equals":
            left, right = (self._resolve(item) for item in argument)
            return bool(left == right)
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        if function == "Condition":
            return self.condition(argument)
        raise Unresolvable(f"condition function {function} is not evaluated locally")
