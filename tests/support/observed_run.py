"""Runs the mint and the refresher through every outcome they have and keeps what they wrote.

The operations tests (alarms, dashboard, saved Logs Insights queries) and the API description
test compare the template and the docs with what the code really does: the EMF metric lines,
the log lines and the HTTP answers collected here, from the functions' own handlers against the
local Secrets Manager and the fake Kustomer, each under its own role (tests/conftest.py, tests/support/functions.py).
The run happens once per session; `observed` hands every test the same record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from kustomer_token.minting import TokenMinter
from kustomer_token.observability import logger
from kustomer_token.secret_cache import SigningSecretCache
from kustomer_token.settings import MintSettings
from tests.support.events import BACKEND_ROLE_ARN, FakeLambdaContext, http_api_event
from tests.support.functions import HttpAnswer, MintContainer
from tools.harness.fake_kustomer import FakeKustomer, error_reply, secret_reply
from tools.harness.iam import RoleCheck
from tools.harness.rotation import SecretsManagerRotation, in_process
from tools.harness.sm_proxy import SecretsManagerProxy

VISITOR = {"sub": "user-1", "email": "ann@example.com", "email_verified": "true", "iss": "https://idp.example.com"}
UNVERIFIED = {**VISITOR, "email_verified": "false"}
CONTEXT = FakeLambdaContext()
UNLISTED_CALLER = "arn:aws:sts::123456789012:assumed-role/not-listed/session"


@dataclass(frozen=True)
class ObservedAnswer:
    method: str
    path: str
    answer: HttpAnswer


@dataclass
class Observations:
    """What the functions answered and wrote, as JSON lines per function (logs and EMF alike)."""

    answers: list[ObservedAnswer] = field(default_factory=list)
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"mint": [], "refresher": []})

    def log_lines(self, function: str) -> list[dict[str, Any]]:
        """The structured log lines (Powertools Logger), without the EMF metric lines."""
        return [line for line in self.lines[function] if "_aws" not in line and "level" in line]

    def emf_lines(self, function: str) -> list[dict[str, Any]]:
        return [line for line in self.lines[function] if "_aws" in line]


_cache: dict[str, Observations] = {}


@pytest.fixture
def observed(request: pytest.FixtureRequest) -> Observations:
    """Every outcome of both functions, run once per session (the first test that asks runs it, with its fixtures)."""
    if "run" not in _cache:
        _cache["run"] = _run_everything(request.getfixturevalue)
    return _cache["run"]


def _run_everything(fixture: Callable[[str], Any]) -> Observations:
    start_mint: Callable[..., MintContainer] = fixture("start_mint")
    start_refresher: Callable[..., Any] = fixture("start_refresher")
    stored_secret: tuple[str, str] = fixture("stored_secret")
    secretsmanager: Any = fixture("secretsmanager")
    sm_proxy: SecretsManagerProxy = fixture("sm_proxy")
    kustomer: FakeKustomer = fixture("kustomer")
    api_key: str = fixture("api_key")
    new_signing_secret: Callable[[int], str] = fixture("new_signing_secret")
    read_output: Callable[[], list[dict[str, Any]]] = fixture("read_output")
    observations = Observations()
    read_output()  # what earlier fixtures wrote is not the functions' output

    def ask(mint: MintContainer, method: str, path: str, **event: Any) -> HttpAnswer:
        answer = mint.invoke(http_api_event(method, path, **event))
        observations.answers.append(ObservedAnswer(method, path, answer))
        return answer

    arn, _ = stored_secret
    externalid = start_mint(SIGNING_SECRET_ID=arn, SERVER_TOKEN_CALLERS=BACKEND_ROLE_ARN)
    ask(externalid, "POST", "/token", claims=VISITOR)  # 200, the secret read: cache miss
    ask(externalid, "POST", "/token", claims=VISITOR)  # 200 from the cache: cache hit
    for body in ({"externalId": "crm-42"}, {"email": "ann@example.com"}, {"externalId": "crm-42", "email": "a@b.co"}):
        ask(externalid, "POST", "/server/token", iam=True, body=json.dumps(body))
    ask(externalid, "POST", "/server/token", iam=True, body="{not json")  # 400
    ask(externalid, "POST", "/server/token", iam=True, body=json.dumps({"externalID": "typo"}))  # 400
    ask(externalid, "POST", "/server/token", iam=True, body='{"externalId": "x"}', caller_arn=UNLISTED_CALLER)  # 403
    ask(externalid, "POST", "/token", claims={})  # 401
    ask(externalid, "GET", "/token", claims=VISITOR)  # 405
    ask(externalid, "POST", "/no/such/route", claims=VISITOR)  # 404
    for policy in ("email", "both"):
        mint = start_mint(SIGNING_SECRET_ID=arn, TOKEN_IDENTITY=policy)
        ask(mint, "POST", "/token", claims=VISITOR)  # 200
        ask(mint, "POST", "/token", claims=UNVERIFIED)  # 403 email_not_verified
    # A warm container whose TTL ran out while Secrets Manager fails: signs with the cached value.
    stale = start_mint(SIGNING_SECRET_ID=arn, SECRET_CACHE_TTL_SECONDS="0", SECRET_MAX_STALE_SECONDS="600")
    ask(stale, "POST", "/token", claims=VISITOR)
    sm_proxy.fail_with("throttling")
    ask(stale, "POST", "/token", claims=VISITOR)  # 200 from the stale value
    # A cold container while Secrets Manager fails: 503 with Retry-After.
    ask(start_mint(SIGNING_SECRET_ID=arn), "POST", "/token", claims=VISITOR)
    sm_proxy.heal()
    # Something unexpected (a clock that breaks): 500 internal_error.
    broken = start_mint(SIGNING_SECRET_ID=arn)
    settings = MintSettings.from_env()
    cache = SigningSecretCache(settings.signing_secret_id, ttl_seconds=300, max_stale_seconds=0)
    vars(broken.module)["minter"] = TokenMinter(settings, cache, clock=_broken_clock)  # the handler reads it per call
    ask(broken, "POST", "/token", claims=VISITOR)
    # A signing secret that was never stored: 503.
    empty = secretsmanager.create_secret(Name="never-stored-signing-secret")["ARN"]
    sm_proxy.role_check = RoleCheck()  # this container's SigningSecret is another secret
    ask(start_mint(SIGNING_SECRET_ID=empty), "POST", "/token", claims=VISITOR)
    # A stored value the mint refuses to sign with (padded with whitespace): 503.
    padded = secretsmanager.create_secret(Name="padded-signing-secret", SecretString=f" {new_signing_secret(48)} ")
    sm_proxy.role_check = RoleCheck()
    ask(start_mint(SIGNING_SECRET_ID=padded["ARN"]), "POST", "/token", claims=VISITOR)
    observations.lines["mint"] = read_output()
    logger.remove_keys(["correlation_id"])  # a new process: the refresher's lines carry no request id of the mint's

    signing = secretsmanager.create_secret(Name="SigningSecret")["ARN"]
    sm_proxy.role_check = RoleCheck()  # the refresher's own two secrets
    api = secretsmanager.create_secret(Name="ApiKeySecret", SecretString=api_key)["ARN"]
    refresher = start_refresher(SIGNING_SECRET_ID=signing, API_KEY_SECRET_ID=api, KUSTOMER_API_BASE_URL=kustomer.url)
    kustomer.answer(secret_reply(new_signing_secret(64)))
    refresher.lambda_handler({}, FakeLambdaContext())  # changed
    refresher.lambda_handler({}, FakeLambdaContext())  # unchanged
    kustomer.answer(secret_reply(new_signing_secret(64)))
    rotation = SecretsManagerRotation(secretsmanager, in_process(lambda e: refresher.lambda_handler(e, CONTEXT)))
    run = rotation.rotate(signing)
    assert run.completed, run.error
    kustomer.answer(error_reply(401, "Unauthorized"))
    with pytest.raises(Exception, match=r"org\.admin"):
        refresher.lambda_handler({}, FakeLambdaContext())
    with pytest.raises(Exception, match="unrecognised event"):
        refresher.lambda_handler(["not", "an", "event"], FakeLambdaContext())
    sm_proxy.role_check = RoleCheck()
    no_key = secretsmanager.create_secret(Name="EmptyApiKeySecret")["ARN"]
    keyless = start_refresher(SIGNING_SECRET_ID=signing, API_KEY_SECRET_ID=no_key, KUSTOMER_API_BASE_URL=kustomer.url)
    with pytest.raises(Exception, match="holds no value"):
        keyless.lambda_handler({}, FakeLambdaContext())
    observations.lines["refresher"] = read_output()
    return observations


def _broken_clock() -> float:
    raise RuntimeError("the clock broke")
