"""The mint handler against a local Secrets Manager: every answer of the contract."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

import kustomer_token.minting
from tests.support.events import BACKEND_ROLE_ARN, http_api_event
from tests.support.functions import MintContainer
from tests.support.metrics import metric_total

VISITOR = {"sub": "user-1", "email": "ann@example.com", "email_verified": "true", "iss": "https://idp.example.com"}


def _assert_contract_error(answer: Any, status: int, code: str) -> None:
    assert answer.status == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert set(answer.body) == {"error", "message"}
    assert answer.body["error"] == code
    assert isinstance(answer.body["message"], str)
    assert answer.body["message"]


@pytest.fixture
def mint(stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]) -> MintContainer:
    arn, _ = stored_secret
    return start_mint(SIGNING_SECRET_ID=arn, SERVER_TOKEN_CALLERS=BACKEND_ROLE_ARN)


# --- 200 -----------------------------------------------------------------------------------------


def test_end_user_gets_a_token_for_their_verified_claims(
    mint: MintContainer, stored_secret: tuple[str, str], read_output: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a visitor whose access token the authorizer verified
    _, secret = stored_secret
    # When the page asks for a token
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    # Then it gets the contract's success answer, with a token signed by the org's secret
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert set(answer.body) == {"jwtToken", "externalId", "issuedAt", "expiresAt"}
    assert answer.body["externalId"] == "user-1"
    assert answer.body["expiresAt"] == answer.body["issuedAt"] + 900
    header = jwt.get_unverified_header(answer.body["jwtToken"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])
    assert claims == {"externalId": "user-1", "iat": answer.body["issuedAt"]}
    read_output()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("externalId", {"externalId": "user-1"}),
        ("email", {"email": "ann@example.com"}),
        ("both", {"externalId": "user-1", "email": "ann@example.com"}),
    ],
)
def test_the_identity_policy_decides_what_the_token_carries(
    policy: str,
    expected: dict[str, str],
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
) -> None:
    arn, secret = stored_secret
    mint = start_mint(SIGNING_SECRET_ID=arn, TOKEN_IDENTITY=policy)
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    assert answer.status == 200
    claims = jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])
    assert {k: v for k, v in claims.items() if k != "iat"} == expected
    assert {k: v for k, v in answer.body.items() if k in ("externalId", "email")} == expected


def test_the_body_can_never_change_the_end_users_identity(mint: MintContainer, stored_secret: tuple[str, str]) -> None:
    # Given a visitor who sends someone else's identity, and an iat, in the body
    _, secret = stored_secret
    body = json.dumps({"externalId": "admin", "email": "ceo@example.com", "iat": 1, "sub": "admin"})
    # When they ask for a token
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR, body=body))
    # Then the token is still theirs, issued now
    claims = jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])
    assert claims["externalId"] == "user-1"
    assert claims["iat"] > 1_700_000_000
    assert "email" not in claims


def test_a_trusted_back_end_gets_a_token_for_the_body_identity(
    mint: MintContainer, stored_secret: tuple[str, str]
) -> None:
    _, secret = stored_secret
    body = json.dumps({"externalId": "crm-42", "email": "renée@example.com"}, ensure_ascii=False)
    answer = mint.invoke(http_api_event("POST", "/server/token", iam=True, body=body))
    assert answer.status == 200
    assert answer.body["externalId"] == "crm-42"
    assert answer.body["email"] == "renée@example.com"
    claims = jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])
    assert list(claims) == ["externalId", "email", "iat"]


def test_a_base64_body_is_decoded(mint: MintContainer) -> None:
    event = http_api_event("POST", "/server/token", iam=True, body='{"email":"ann@example.com"}', base64_body=True)
    answer = mint.invoke(event)
    assert answer.status == 200
    assert answer.body["email"] == "ann@example.com"


# --- 400 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "not json",
        '{"externalId": "unterminated',
        "[]",
        '"user-1"',
        "{}",
        '{"externalId": 42}',
        '{"externalId": ""}',
        '{"externalID": "typo"}',
        '{"externalId": "u", "iat": 1}',
        '{"email": "not-an-email"}',
        '{"externalId": "' + "x" * 5000 + '"}',
    ],
    ids=[
        "no-body",
        "empty",
        "not-json",
        "truncated",
        "array",
        "string",
        "no-identifier",
        "number",
        "empty-id",
        "unknown-field",
        "iat-in-body",
        "bad-email",
        "too-large",
    ],
)
def test_a_bad_server_body_is_an_invalid_request(mint: MintContainer, body: str | None) -> None:
    answer = mint.invoke(http_api_event("POST", "/server/token", iam=True, body=body))
    _assert_contract_error(answer, 400, "invalid_request")


def test_an_invalid_request_message_does_not_echo_the_value(mint: MintContainer) -> None:
    answer = mint.invoke(http_api_event("POST", "/server/token", iam=True, body='{"email": "secret-ish@"}'))
    _assert_contract_error(answer, 400, "invalid_request")
    assert "secret-ish" not in answer.body["message"]


# --- 401 / 403 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [None, {}, {"email": "ann@example.com", "email_verified": "true"}, {"sub": ""}],
    ids=["no-authorizer", "no-claims", "no-sub", "empty-sub"],
)
def test_no_usable_identity_claim_is_unauthenticated(mint: MintContainer, claims: dict[str, Any] | None) -> None:
    answer = mint.invoke(http_api_event("POST", "/token", claims=claims))
    _assert_contract_error(answer, 401, "unauthenticated")


def test_the_server_route_without_iam_context_is_unauthenticated(mint: MintContainer) -> None:
    answer = mint.invoke(http_api_event("POST", "/server/token", body='{"externalId": "u"}'))
    _assert_contract_error(answer, 401, "unauthenticated")


@pytest.mark.parametrize(
    "callers",
    [
        "",
        "arn:aws:iam::123456789012:role/other-service",
        "arn:aws:iam::210987654321:role/service/backend",
        "arn:aws:iam::123456789012:user/backend",
    ],
    ids=["nobody-listed", "another-role", "same-role-name-in-another-account", "a-user-of-the-same-name"],
)
def test_a_server_caller_not_listed_is_refused_and_named_in_the_log(
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
    callers: str,
) -> None:
    # Given SERVER_TOKEN_CALLERS that does not name the caller's role
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], SERVER_TOKEN_CALLERS=callers)
    # When a SigV4-signed session of role service/backend asks for a token
    answer = mint.invoke(http_api_event("POST", "/server/token", iam=True, body='{"externalId": "crm-1"}'))
    # Then it is refused, nothing is minted, and the log names the caller so an operator can allow it
    _assert_contract_error(answer, 403, "caller_not_allowed")
    assert "ServerTokenCallers" in answer.body["message"]
    output = read_output()
    refusals = [line for line in output if line.get("message") == "server token caller not allowed"]
    assert [line["caller"] for line in refusals] == ["arn:aws:sts::123456789012:assumed-role/backend/session"]
    assert metric_total(output, "TokensMinted") == 0


def test_a_listed_caller_is_named_in_the_audit_line(
    mint: MintContainer, read_output: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given SERVER_TOKEN_CALLERS naming role service/backend, and a session of that role calling
    answer = mint.invoke(http_api_event("POST", "/server/token", iam=True, body='{"externalId": "crm-1"}'))
    # Then the token is minted and the audit line names the calling session
    assert answer.status == 200
    minted = [line for line in read_output() if line.get("message") == "token minted"]
    assert [(line["route"], line["caller"]) for line in minted] == [
        ("/server/token", "arn:aws:sts::123456789012:assumed-role/backend/session")
    ]


def test_an_iam_user_listed_by_arn_may_call(
    stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    user = "arn:aws:iam::123456789012:user/ci/token-client"
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], SERVER_TOKEN_CALLERS=f"{BACKEND_ROLE_ARN},{user}")
    event = http_api_event("POST", "/server/token", iam=True, body='{"email": "a@example.com"}', caller_arn=user)
    assert mint.invoke(event).status == 200


@pytest.mark.parametrize(
    ("raw_path", "stage"),
    [("/chat/token", "$default"), ("/v1/chat/token", "$default"), ("/chat/token", "prod"), ("/prod/token", "prod")],
    ids=["base-path-mapping", "nested-mapping", "mapping-to-named-stage", "named-stage-url"],
)
def test_routing_follows_the_route_api_gateway_matched(mint: MintContainer, raw_path: str, stage: str) -> None:
    # Given a request that reached POST /token through a custom domain's base-path mapping or a named stage
    event = http_api_event("POST", "/token", claims=VISITOR, raw_path=raw_path, stage=stage)
    # When the mint routes it
    answer = mint.invoke(event)
    # Then it is the /token route (routeKey), whatever prefix rawPath carries
    assert answer.status == 200
    assert answer.body["externalId"] == "user-1"


def test_an_email_verified_flag_under_a_custom_claim_name_is_honoured(
    stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    # Given an IdP that puts the email and its verification flag under namespaced claims (Auth0 style)
    mint = start_mint(
        SIGNING_SECRET_ID=stored_secret[0],
        TOKEN_IDENTITY="email",
        EMAIL_CLAIM="https://example.com/email",
        EMAIL_VERIFIED_CLAIM="https://example.com/email_verified",
    )
    claims = {"sub": "auth0|1", "https://example.com/email": "ann@example.com"}
    # Then the flag is read from the configured claim, not from email_verified
    unverified = mint.invoke(http_api_event("POST", "/token", claims={**claims, "email_verified": "true"}))
    _assert_contract_error(unverified, 403, "email_not_verified")
    verified = mint.invoke(
        http_api_event("POST", "/token", claims={**claims, "https://example.com/email_verified": "true"})
    )
    assert verified.status == 200
    assert verified.body["email"] == "ann@example.com"


def test_an_access_token_without_the_email_claim_says_what_to_send(
    stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    # Given TOKEN_IDENTITY=email and a Cognito access token (it carries no email)
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], TOKEN_IDENTITY="email")
    cognito_access_token_claims = {"sub": "u-1", "client_id": "app", "token_use": "access", "scope": "openid"}
    answer = mint.invoke(http_api_event("POST", "/token", claims=cognito_access_token_claims))
    # Then the 401 says which claim is missing and what token to send instead
    _assert_contract_error(answer, 401, "unauthenticated")
    assert "'email'" in answer.body["message"]
    assert "ID token" in answer.body["message"]


def test_an_unverified_email_is_forbidden(
    stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], TOKEN_IDENTITY="email")
    claims = {**VISITOR, "email_verified": "false"}
    answer = mint.invoke(http_api_event("POST", "/token", claims=claims))
    _assert_contract_error(answer, 403, "email_not_verified")


# --- 404 / 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", "/nope"), ("GET", "/"), ("POST", "/token/extra")])
def test_other_routes_are_not_found(mint: MintContainer, method: str, path: str) -> None:
    answer = mint.invoke(http_api_event(method, path, claims=VISITOR))
    _assert_contract_error(answer, 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [("GET", "/token"), ("PUT", "/token"), ("DELETE", "/server/token")])
def test_other_methods_are_not_allowed(mint: MintContainer, method: str, path: str) -> None:
    answer = mint.invoke(http_api_event(method, path, claims=VISITOR))
    _assert_contract_error(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "POST"


# --- 503 -----------------------------------------------------------------------------------------


def test_a_secret_never_provisioned_is_unavailable_with_retry_after(
    secretsmanager: Any, start_mint: Callable[..., MintContainer]
) -> None:
    # Given the signing secret exists, as the stack creates it, but holds no value yet
    arn = secretsmanager.create_secret(Name="signing-secret-empty")["ARN"]
    mint = start_mint(SIGNING_SECRET_ID=arn)
    # When a visitor asks for a token
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    # Then the answer says to come back later
    _assert_contract_error(answer, 503, "signing_secret_unavailable")
    assert int(answer.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (b"\x00\x01", "is binary (SecretBinary); store the secret as SecretString"),
        (" padded ", "has leading or trailing whitespace; store the secret exactly as Kustomer gives it"),
        ("x" * 5000, "is longer than 4096 bytes"),
    ],
    ids=["binary", "whitespace", "too-long"],
)
def test_an_unusable_stored_value_is_unavailable_and_says_why(
    secretsmanager: Any,
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
    stored: str | bytes,
    problem: str,
) -> None:
    # Secrets Manager refuses an empty SecretString: a binary value is the closest real case of one.
    value = {"SecretBinary": stored} if isinstance(stored, bytes) else {"SecretString": stored}
    arn = secretsmanager.create_secret(Name="signing-secret-bad", **value)["ARN"]
    read_output()
    mint = start_mint(SIGNING_SECRET_ID=arn)
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    _assert_contract_error(answer, 503, "signing_secret_unavailable")
    output = read_output()
    at_start = [line for line in output if line.get("message", "").startswith("signing secret not read at start")]
    assert [line["reason"] for line in at_start] == [f"UnusableValue: the stored signing secret {problem}"]
    refused = [line for line in output if line.get("message") == "the stored signing secret cannot be used"]
    assert [(line["level"], line["problem"]) for line in refused] == [("ERROR", problem)]
    unavailable = [line for line in output if line.get("message") == "no usable signing secret"]
    assert [line["reason"] for line in unavailable] == ["UnusableValue"]


def test_a_missing_secret_is_unavailable(
    moto_server: Any, secretsmanager: Any, start_mint: Callable[..., MintContainer]
) -> None:
    mint = start_mint(SIGNING_SECRET_ID="arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf")
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    _assert_contract_error(answer, 503, "signing_secret_unavailable")


# --- 500 -----------------------------------------------------------------------------------------


def test_anything_unexpected_is_an_internal_error_without_details(
    mint: MintContainer,
    stored_secret: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a fault deep inside signing that no handler expects
    _, secret = stored_secret

    def broken_sign(*_: Any, **__: Any) -> Any:
        raise RuntimeError("unexpected fault in the signer")

    monkeypatch.setattr("kustomer_token.minting.sign_login_token", broken_sign)
    # When a visitor asks for a token
    answer = mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    # Then the answer is the contract's 500, with no trace, no secret and no fault text
    _assert_contract_error(answer, 500, "internal_error")
    text = json.dumps(answer.body)
    assert "Traceback" not in text
    assert "unexpected fault" not in text
    assert secret not in text
    # And the fault is logged for the operator
    logs = read_output()
    assert any(line.get("message") == "unexpected error" and line.get("level") == "ERROR" for line in logs)


# --- Observability -------------------------------------------------------------------------------


def test_logs_carry_the_request_id_and_hash_the_identity(
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], TOKEN_IDENTITY="email")
    read_output()
    event = http_api_event("POST", "/token", claims=VISITOR)
    answer = mint.invoke(event)
    assert answer.status == 200
    output = read_output()
    minted = [line for line in output if line.get("message") == "token minted"]
    assert len(minted) == 1
    assert minted[0]["correlation_id"] == event["requestContext"]["requestId"]
    assert minted[0]["identity_type"] == "email"
    assert len(minted[0]["identity_fingerprint"]) == 16
    assert "ann@example.com" not in json.dumps(output)


def test_metrics_count_tokens_by_route_and_type_in_one_line_per_request_and_the_reads_apart(
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], SERVER_TOKEN_CALLERS=BACKEND_ROLE_ARN)
    # The secret was read during INIT: that read is counted then, on the service alone
    start_output = read_output()
    assert metric_total(start_output, "SecretCacheMiss") == 1
    mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    mint.invoke(http_api_event("POST", "/server/token", iam=True, body='{"email": "ann@example.com"}'))
    output = read_output()
    assert metric_total(output, "TokensMinted", Route="/token", IdentityType="externalId") == 1
    assert metric_total(output, "TokensMinted", Route="/server/token", IdentityType="email") == 1
    assert metric_total(output, "TokensMinted") == 2
    # Both requests used the cached value: no read, and each request wrote one EMF line, its TokensMinted
    assert metric_total(output, "SecretCacheMiss") == 0
    emf_lines = [line for line in output if "_aws" in line]
    assert [[m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for line in emf_lines] == [
        ["TokensMinted"],
        ["TokensMinted"],
    ]


def test_a_request_that_fails_after_counting_its_token_leaves_no_dimension_to_the_next(
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a mint whose audit log line fails once, after the request counted its token
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0], SERVER_TOKEN_CALLERS=BACKEND_ROLE_ARN)
    read_output()
    minting_logger = kustomer_token.minting.logger
    log_info = minting_logger.info

    def failing_once(message: str, *args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(minting_logger, "info", log_info)
        raise RuntimeError("the log failed")

    monkeypatch.setattr(minting_logger, "info", failing_once)
    # When that request fails (500), a refused one follows (404), then a server token for an email
    assert mint.invoke(http_api_event("POST", "/token", claims=VISITOR)).status == 500
    assert mint.invoke(http_api_event("GET", "/nowhere")).status == 404
    answer = mint.invoke(http_api_event("POST", "/server/token", iam=True, body='{"email": "ann@example.com"}'))
    assert answer.status == 200
    # Then each request wrote only its own metrics: the failed one its count, the refusal nothing, the last its own
    # route and identity type with no dimension of the first
    emf_lines = [line for line in read_output() if "_aws" in line]
    assert [
        (line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], line.get("Route"), line.get("IdentityType"))
        for line in emf_lines
    ] == [
        ([["Route", "IdentityType", "service"]], "/token", "externalId"),
        ([["Route", "IdentityType", "service"]], "/server/token", "email"),
    ]


def test_unavailable_secret_is_counted(
    secretsmanager: Any, start_mint: Callable[..., MintContainer], read_output: Callable[[], list[dict[str, Any]]]
) -> None:
    arn = secretsmanager.create_secret(Name="signing-secret-empty")["ARN"]
    mint = start_mint(SIGNING_SECRET_ID=arn)
    start_output = read_output()
    mint.invoke(http_api_event("POST", "/token", claims=VISITOR))
    output = read_output()
    assert metric_total(output, "SecretUnavailable") == 1
    # Two reads failed: the one during INIT (counted then) and the first request's.
    assert metric_total(start_output, "SecretReadFailed") == 1
    assert metric_total(output, "SecretReadFailed") == 1


# --- Start -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({}, "SIGNING_SECRET_ID"),
        ({"SIGNING_SECRET_ID": "s", "TOKEN_IDENTITY": "phone"}, "TOKEN_IDENTITY"),
        ({"SIGNING_SECRET_ID": "s", "SECRET_CACHE_TTL_SECONDS": "soon"}, "SECRET_CACHE_TTL_SECONDS"),
    ],
)
def test_a_bad_setting_fails_the_cold_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, start_mint: Callable[..., MintContainer], environment: dict[str, str], named: str
) -> None:
    from kustomer_token.settings import ConfigurationError

    monkeypatch.delenv("SIGNING_SECRET_ID", raising=False)
    with pytest.raises(ConfigurationError, match=named):
        start_mint(**environment)


def test_the_minter_signs_with_the_current_second(mint: MintContainer, stored_secret: tuple[str, str]) -> None:
    # RFC 8725: iat comes from our clock (tests/unit/test_token_rules.py: never from the identity provider's claims)
    _, secret = stored_secret
    before = int(time.time())
    answer = mint.invoke(http_api_event("POST", "/token", claims={"sub": "user-1", "iat": "1"}))
    after = int(time.time())
    iat = jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])["iat"]
    assert before <= iat <= after
