"""examples/web in headless Chromium against make serve's stack, with Kustomer's SDK stubbed at its CDN URL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support.leaks import LEAK_WATCH
from tools.local_api import Served, serve_stack
from tools.local_stack import LocalStack, local_stack

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "run.mjs"
ARTIFACTS = ROOT / ".artifacts" / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def _node() -> str:
    node = shutil.which("node", path=str(Path(sys.executable).parent)) or shutil.which("node")
    assert node, "Node.js is required: run the browser test through make test"
    return node


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    assert CHROMIUM.exists(), "Chromium is missing: make test installs it (tools/install-chromium)"
    with local_stack() as running:
        LEAK_WATCH.register(running.kustomer_secret, "signing secret")
        LEAK_WATCH.register(running.kustomer.api_key, "API key")
        yield running


@pytest.fixture
def served(stack: LocalStack) -> Iterator[Served]:
    with serve_stack(stack, site_root=ROOT / "examples" / "web") as serving:
        yield serving


def _refresh(stack: LocalStack) -> None:
    refreshed = stack.start_function("RefreshSecretFunction").invoke({})
    assert refreshed.error is None, refreshed.error


def _open_page(
    served: Served,
    name: str,
    wait_for: str,
    query: str = "",
    stub: dict[str, Any] | None = None,
    *,
    hold_on_status: int | None = None,
    while_held: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Loads the page; `stub` makes the stubbed SDK misbehave (tests/browser/kustomer-stub.js).

    With `hold_on_status`, the page's clock stops when the token API first answers that status;
    `while_held` runs then, and the page's clock runs on for the answer's Retry-After once it returns.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "KUSTOMER_STUB": json.dumps(stub or {})}
    if hold_on_status is not None:
        environment["HOLD_ON_STATUS"] = str(hold_on_status)
    command = [_node(), str(RUNNER), f"{served.site.url}/{query}", served.api.url, str(ARTIFACTS / f"{name}.png")]
    with subprocess.Popen(
        [*command, wait_for],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    ) as runner:
        assert runner.stdin is not None
        assert runner.stdout is not None
        try:
            line = runner.stdout.readline()
            if line == "HELD\n":
                assert while_held is not None, "the page was held but the test gave nothing to do meanwhile"
                while_held()
                runner.stdin.write("go\n")
                runner.stdin.flush()
                line = runner.stdout.readline()
            _, errors = runner.communicate(timeout=120)
        finally:
            runner.kill()
    assert runner.returncode == 0, errors[-3000:]
    result: dict[str, Any] = json.loads(line)
    for event in result["events"]:
        body = event.get("body") or {}
        if isinstance(body, dict) and isinstance(body.get("jwtToken"), str):
            LEAK_WATCH.register(body["jwtToken"], "minted token")
        for argument in event.get("args") or []:
            if isinstance(argument, dict) and isinstance(argument.get("jwtToken"), str):
                LEAK_WATCH.register(argument["jwtToken"], "minted token")
    assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000
    return result


def _sequence(result: dict[str, Any]) -> list[str]:
    names = []
    for event in result["events"]:
        if event["kind"] == "sdk":
            names.append(event["name"])
        elif event["kind"] == "fetch":
            names.append("fetch token")
        elif event["kind"] == "answer":
            names.append(f"answer {event['status']}")
    return names


def test_the_page_signs_the_visitor_into_chat(stack: LocalStack, served: Served) -> None:
    # Given the signing secret is in place and the visitor is signed in to the site
    _refresh(stack)
    # When the page loads
    result = _open_page(served, "signed-in", "signed-in,anonymous,reauthenticate")
    # Then chat starts, a token is fetched, isLoggedIn is asked, login is called, and once it succeeded
    # the page's describe hook shares what the site knows, in that order
    assert result["state"] == "signed-in"
    assert _sequence(result) == ["start", "fetch token", "answer 200", "isLoggedIn", "login", "describeCustomer"]
    sdk = {event["name"]: event["args"] for event in result["events"] if event["kind"] == "sdk"}
    assert sdk["start"] == [{"brandId": "local-brand"}]
    answer = next(event["body"] for event in result["events"] if event["kind"] == "answer")
    identifier = {"email": answer["email"]} if "email" in answer else {"externalId": answer["externalId"]}
    assert sdk["isLoggedIn"] == [identifier]
    # And the token the SDK received verifies with the secret Kustomer holds
    jwt_token = sdk["login"][0]["jwtToken"]
    claims = jwt.decode(jwt_token, stack.kustomer_secret, algorithms=["HS256"])
    assert claims["externalId"] == "dev-visitor-0001"
    # And describeCustomer got the attributes the page's hook returned (the access token's email), no token
    assert sdk["describeCustomer"] == [{"attributes": {"sharedEmails": ["dev.visitor@example.com"]}}]


def test_describe_never_runs_when_the_login_failed(stack: LocalStack, served: Served) -> None:
    # Given Kustomer refuses the login
    _refresh(stack)
    # When the page loads
    result = _open_page(served, "login-refused", "signed-in,anonymous,reauthenticate", stub={"loginFails": True})
    # Then chat stays anonymous and nothing is described: there is no signed-in customer to describe
    assert result["state"] == "anonymous"
    assert _sequence(result) == ["start", "fetch token", "answer 200", "isLoggedIn", "login"]


def test_describe_does_not_run_for_a_visitor_already_signed_in_to_chat(stack: LocalStack, served: Served) -> None:
    # Given the chat widget already holds this visitor's session (an earlier login on this browser)
    _refresh(stack)
    stub = {"loggedInAs": {"externalId": "dev-visitor-0001"}}
    # When the page loads
    result = _open_page(served, "already-signed-in", "already-signed-in,signed-in,anonymous,reauthenticate", stub=stub)
    # Then no login is needed, so none happens, and nothing is described
    assert result["state"] == "already-signed-in"
    assert _sequence(result) == ["start", "fetch token", "answer 200", "isLoggedIn"]


def test_a_failed_describe_leaves_the_visitor_signed_in(stack: LocalStack, served: Served) -> None:
    # Given Kustomer refuses describeCustomer
    _refresh(stack)
    result = _open_page(served, "describe-refused", "signed-in,anonymous,reauthenticate", stub={"describeFails": True})
    # Then the visitor is still signed in, and the failure is logged as a warning
    assert result["state"] == "signed-in"
    assert _sequence(result) == ["start", "fetch token", "answer 200", "isLoggedIn", "login", "describeCustomer"]
    warnings = [
        event["text"] for event in result["events"] if event["kind"] == "console" and event["type"] == "warning"
    ]
    assert any("describeCustomer failed" in text for text in warnings)


def test_an_access_token_the_gateway_refuses_asks_the_visitor_to_sign_in_again(
    stack: LocalStack, served: Served
) -> None:
    _refresh(stack)
    result = _open_page(served, "reauthenticate", "reauthenticate,signed-in,anonymous", "?accessToken=not-a-jwt")
    assert result["state"] == "reauthenticate"
    assert _sequence(result) == ["start", "fetch token", "answer 401"]


def test_an_expired_access_token_asks_the_visitor_to_sign_in_again_without_calling(
    stack: LocalStack, served: Served
) -> None:
    # Given the site hands the module an access token that expired a minute ago (API Gateway's
    # 401 for it may carry no CORS headers, so the page could not read it)
    _refresh(stack)
    expired = served.issuer.access_token({"sub": "dev-visitor-0001"}, lifetime=-60)
    # When the page loads
    result = _open_page(served, "expired", "reauthenticate,signed-in,anonymous", f"?accessToken={expired}")
    # Then it asks the visitor to sign in again, and the token API was never called
    assert result["state"] == "reauthenticate"
    assert _sequence(result) == ["start"]
    assert served.api.statuses == []


def test_a_503_is_retried_after_retry_after_and_then_signs_in(stack: LocalStack, served: Served) -> None:
    # Given the signing secret is not there yet: the API answers 503 with Retry-After. The refresher
    # is started first; the page's clock stops at the 503 while the refresher stores the secret.
    refresher = stack.start_function("RefreshSecretFunction")

    def store_the_secret() -> None:
        assert served.api.statuses == [503]
        refreshed = refresher.invoke({})
        assert refreshed.error is None, refreshed.error

    result = _open_page(
        served, "retried", "signed-in,anonymous,reauthenticate", hold_on_status=503, while_held=store_the_secret
    )
    # Then the page called once, was held before it called again, and signed in once the secret landed
    assert _sequence(result)[:3] == ["start", "fetch token", "answer 503"]
    kinds = [event["kind"] for event in result["events"]]
    assert kinds.index("held") < kinds.index("resumed") < [i for i, k in enumerate(kinds) if k == "fetch"][1]
    answers = [event for event in result["events"] if event["kind"] == "answer"]
    retry_after = int(answers[0]["retryAfter"])
    # And on the page's clock, the second call waited as long as Retry-After said (plus what the page
    # took to read the answer before its clock stopped), not its own shorter back-off
    first, second = result["tokenCalls"][:2]
    assert first["status"] == 503
    assert retry_after * 1000 <= second["sentAt"] - first["answeredAt"] < retry_after * 1000 + 500
    assert answers[-1]["status"] == 200
    assert result["state"] == "signed-in"
    assert _sequence(result)[-3:] == ["isLoggedIn", "login", "describeCustomer"]
