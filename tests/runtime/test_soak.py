"""Soak: 10,000 invocations of the built mint in the Lambda runtime (make soak; not part of make test).

Zero errors, the runtime process's RSS stable, and the time per invocation of
the last 1,000 no worse than the first 1,000 in the same run (medians).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runtime.conftest import LocalStack
from tools.harness.lambda_runtime import LambdaRuntime

INVOCATIONS = int(os.environ.get("SOAK_INVOCATIONS", "10000"))
WINDOW = min(1000, INVOCATIONS // 5)
EVENT = json.loads((Path(__file__).resolve().parents[2] / "events" / "mint-token-external-id.json").read_text())

pytestmark = pytest.mark.soak


def test_ten_thousand_invocations_without_error_growth_or_slowdown(
    local_stack: LocalStack, new_signing_secret: Callable[[int], str], start_function: Callable[..., LambdaRuntime]
) -> None:
    local_stack.client.put_secret_value(SecretId=local_stack.signing_secret_arn, SecretString=new_signing_secret(64))
    mint = start_function("MintTokenFunction")
    seconds, errors, rss = [], 0, {}
    for number in range(1, INVOCATIONS + 1):
        invocation = mint.invoke(EVENT)
        if invocation.error or invocation.payload["statusCode"] != 200:
            errors += 1
        seconds.append(invocation.seconds)
        if number in (WINDOW, INVOCATIONS):
            rss[number] = mint.runtime_memory_kib()
    first, last = statistics.median(seconds[:WINDOW]), statistics.median(seconds[-WINDOW:])
    growth_mib = (rss[INVOCATIONS] - rss[WINDOW]) / 1024
    print(  # the figures for the reliability table of docs/development.md
        f"\nsoak: {INVOCATIONS} invocations, {errors} errors, median first {WINDOW} {first * 1000:.2f} ms, "
        f"last {WINDOW} {last * 1000:.2f} ms (x{last / first:.2f}), RSS {rss[WINDOW] / 1024:.1f} -> "
        f"{rss[INVOCATIONS] / 1024:.1f} MiB"
    )
    assert errors == 0
    assert growth_mib < 1.0
    assert last <= first * 1.25
