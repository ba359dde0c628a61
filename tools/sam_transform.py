"""What CloudFormation really gets: template.yaml after the AWS SAM transform, offline.

`translated_template(parameters)` runs samtranslator from the pinned SAM CLI environment
(.venv-sam, its own Python) on template.yaml, the way `sam validate` does, and returns the
expanded CloudFormation template as a dict. tools.harness.template.CloudFormationValues then
evaluates its parameter-dependent intrinsics (Ref, Fn::If, Fn::Split...) as CloudFormation
would at deploy time, for tests and for the local gateway (make serve).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.harness.template import REGION

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSLATOR = Path(__file__).resolve().with_name("sam_translate.py")


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
