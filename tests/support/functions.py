"""The functions as in-process Lambda containers: functions/<name>/app.py imported afresh, the mint's answers read."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.events import FakeLambdaContext
from tests.support.leaks import LEAK_WATCH

ROOT = Path(__file__).resolve().parents[2]


def load_function(name: str, module_name: str) -> ModuleType:
    """Imports functions/<name>/app.py afresh, as a new Lambda container would."""
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


class MintContainer:
    """The mint function as one Lambda container would hold it: module state included."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Runs the container's signing-secret cache (TTL, back-off, stale bound) on this clock from now on."""
        self.module.minter._secret_cache._clock = clock

    def invoke(self, event: dict[str, Any]) -> HttpAnswer:
        raw = self.module.lambda_handler(event, FakeLambdaContext())
        body = json.loads(raw["body"]) if raw.get("body") else {}
        if isinstance(body, dict) and isinstance(body.get("jwtToken"), str):
            LEAK_WATCH.register(body["jwtToken"], "minted token")
        headers = {name.lower(): value for name, value in (raw.get("headers") or {}).items()}
        return HttpAnswer(status=raw["statusCode"], headers=headers, body=body)
