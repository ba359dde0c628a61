"""POST /server/token's body rules: the 400's message says what is wrong, never echoing the value."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from kustomer_token.errors import CallerNotAllowed, InvalidRequest
from kustomer_token.minting import MAX_BODY_BYTES, TokenMinter

# The body is checked before settings or the secret are used.
_MINTER = TokenMinter(cast(Any, None), cast(Any, None))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, 'the body must be JSON: {"externalId": "..."} or {"email": "..."}'),
        ("", 'the body must be JSON: {"externalId": "..."} or {"email": "..."}'),
        ("{not json", "the body is not valid JSON"),
        ("[]", "the body is not valid: body must be object"),
        ('{"externalId": "u", "data": 1}', "the body is not valid: body must not contain {'data'} properties"),
        ("x" * (MAX_BODY_BYTES + 1), f"the body is larger than {MAX_BODY_BYTES} bytes"),
    ],
    ids=["none", "empty", "not-json", "not-object", "extra-field-named-data", "too-large"],
)
def test_a_bad_body_says_what_is_wrong(body: str | None, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        _MINTER._parse_body(body)
    assert str(raised.value) == message


def test_a_body_of_exactly_the_limit_is_read() -> None:
    body = json.dumps({"externalId": "u" * 10})
    body += " " * (MAX_BODY_BYTES - len(body))
    assert _MINTER._parse_body(body) == {"externalId": "u" * 10}


def test_a_refused_back_end_is_logged_with_its_arn_and_route(capfd: pytest.CaptureFixture[str]) -> None:
    """The operator's cue to add the caller to ServerTokenCallers: the log says which ARN and route."""
    minter = TokenMinter(cast(Any, SimpleNamespace(server_token_callers=())), cast(Any, None))
    arn = "arn:aws:iam::123456789012:role/backend"
    with pytest.raises(CallerNotAllowed) as raised:
        minter.for_body('{"externalId": "u"}', route="POST /server/token", caller_arn=arn)
    assert str(raised.value) == (
        "this IAM principal may not call this route: add its role or user ARN to the stack's "
        "ServerTokenCallers parameter (SERVER_TOKEN_CALLERS)"
    )
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    refused = [r for r in records if r.get("message") == "server token caller not allowed"]
    assert len(refused) == 1
    assert (refused[0]["route"], refused[0]["caller"]) == ("POST /server/token", arn)
