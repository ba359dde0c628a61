"""End to end against a deployed stack, with the operator's AWS credentials: `make e2e STACK_NAME=<name>`.

Needs a real stack. Skipped without AWS credentials, and never part of `make test`: make e2e runs pytest with
--confcutdir=tests/e2e, so the local suite's conftest (fake credentials, local services) is not loaded; the local suite
does not collect these tests at all (tests/conftest.py ignores this folder, and should it be named on the command line
this file collects nothing). E2E_ALLOW_CHANGES=1 also runs the tests that change the stack (a rotation), for a
throwaway stack such as the end-to-end workflow's.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tools.verify.aws import aws_facts
from tools.verify.facts import Facts, StackRefused
from tools.verify.http import Answer, send

STACK_NAME = os.environ.get("E2E_STACK_NAME", "")
ALLOW_CHANGES = os.environ.get("E2E_ALLOW_CHANGES") == "1"

if "tests.conftest" in sys.modules:  # under the local suite: nothing here is collected (no skipped test hides)
    collect_ignore_glob = ["test_*.py"]


def error_code(answer: Answer) -> str | None:
    """The mint's JSON error code, or None for an answer without one (API Gateway's own {"message": ...})."""
    body = answer.json()
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


@dataclass
class Deployed:
    facts: Facts

    @property
    def api_url(self) -> str:
        return self.facts.stack.outputs["ApiUrl"].rstrip("/")

    @property
    def origin(self) -> str:
        return self.facts.stack.parameters["AllowedOrigins"].split(",")[0]

    def client(self, service: str) -> Any:
        return self.facts.client(service)

    def server_token(self, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        """POST /server/token signed with SigV4 with the operator's credentials."""
        url = f"{self.api_url}/server/token"
        signed = self.facts.sign_server_token(url, body, {"Content-Type": "application/json", **(headers or {})})
        return send("POST", url, signed, body)

    def listed(self) -> bool:
        """Whether the operator's principal may call /server/token (what the mint answers, not a guess)."""
        answer = self.server_token(json.dumps({"externalId": "kustomer-chat-token-e2e"}).encode())
        assert (answer.status, error_code(answer)) in ((200, None), (403, "caller_not_allowed")), (
            answer.status,
            answer.json(),
        )
        return answer.status == 200


@pytest.fixture(scope="session")
def deployed() -> Deployed:
    if not STACK_NAME:  # make e2e refuses to start without STACK_NAME: this is pytest run by hand
        pytest.skip("no stack: make e2e STACK_NAME=<deployed stack> [AWS_REGION=<its region>]")
    if boto3.Session().get_credentials() is None:
        pytest.skip("no AWS credentials")
    try:
        return Deployed(aws_facts(STACK_NAME, os.environ.get("AWS_REGION") or None))
    except StackRefused as refused:
        pytest.fail(f"verify refused the stack: {refused}", pytrace=False)


@pytest.fixture
def changeable(deployed: Deployed) -> Deployed:
    if not ALLOW_CHANGES:
        pytest.skip("changes the stack: E2E_ALLOW_CHANGES=1 (a throwaway stack only)")
    return deployed
