"""make verify's checks against make serve's local stack, started once per module and broken one defect at a time.

Needs what the runtime tests need: `make build` output, `.venv-runtime`, and the SAM CLI environment (the
template after the SAM transform). Every test that breaks the stack puts it back, and `restored` checks it did.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.project.docs.test_docs_complete import anchors
from tests.support.leaks import LEAK_WATCH
from tools.verify.checks import run_checks
from tools.verify.local import LocalVerify, local_verify_stack
from tools.verify.report import Result, Status

ROOT = Path(__file__).resolve().parents[3]
DOC_LINK = re.compile(r"(docs/[a-z]+\.md)#([a-z0-9-]+)")
Test = TypeVar("Test", bound=Callable[..., None])

# Which tests break which check (filled as the test modules are imported): a test marked @breaks("name") fails
# unless it saw that check FAIL through assert_fails, and test_every_check_is_shown_to_fail_on_its_defect checks
# that every check has such a test.
BREAKERS: dict[str, list[str]] = {}
_failed_checks: list[str] = []


def breaks(*checks: str) -> Callable[[Test], Test]:
    def register(test: Test) -> Test:
        for name in checks:
            BREAKERS.setdefault(name, []).append(f"{test.__module__}.{test.__name__}")

        @functools.wraps(test)
        def seen_failing(*args: Any, **kwargs: Any) -> None:
            _failed_checks.clear()
            test(*args, **kwargs)
            unseen = [name for name in checks if name not in _failed_checks]
            assert not unseen, f"{test.__name__} is marked as breaking {unseen} but never saw it FAIL"

        return seen_failing  # type: ignore[return-value]

    return register


@pytest.fixture(scope="module")
def _running_local_stack() -> Iterator[LocalVerify]:
    with local_verify_stack() as local:
        LEAK_WATCH.register(local.stack.kustomer_secret, "signing secret")
        LEAK_WATCH.register(local.stack.kustomer.api_key, "API key")
        LEAK_WATCH.register(local.served.access_token, "minted token")  # an identity-provider token: never shown
        yield local


@pytest.fixture
def local(_running_local_stack: LocalVerify) -> Iterator[LocalVerify]:
    """The running local stack; after the test, its facts and clock as they were, and every check passing again."""
    stack = _running_local_stack.facts.stack
    yield _running_local_stack
    _running_local_stack.facts.stack = stack
    _running_local_stack.set_clock()
    # What the functions logged is checked for secrets, API keys and tokens like the test's own output.
    LEAK_WATCH.read_by_test(_running_local_stack.refresher.logs())
    LEAK_WATCH.read_by_test(_running_local_stack.served.api.mint.logs())  # type: ignore[attr-defined]
    after = {result.check: result for result in run_checks(_running_local_stack.facts)}
    assert not [result for result in after.values() if result.status is Status.FAIL], "the test left the stack broken"


def check(local: LocalVerify, name: str) -> Result:
    """One check's result (the API probe runs first, as in a whole run)."""
    (result,) = run_checks(local.facts, [name])
    return result


def with_outputs(local: LocalVerify, **outputs: str) -> None:
    """The stack as if its outputs named other resources (restored by the `local` fixture)."""
    local.facts.stack = replace(local.facts.stack, outputs={**local.facts.stack.outputs, **outputs})


def assert_fails(result: Result, summary: str, advice_link: str) -> None:
    """FAIL, with `summary` in what was seen and the advice ending on the link to the section that says what to do,
    a link that resolves."""
    assert result.status is Status.FAIL, result
    assert summary in result.summary, result.summary
    _failed_checks.append(result.check)
    assert result.advice is not None
    assert result.advice.rstrip(")").endswith(advice_link), result.advice
    for page, anchor in DOC_LINK.findall(result.advice):
        assert anchor in anchors(ROOT / page), f"{page}#{anchor} does not resolve"
