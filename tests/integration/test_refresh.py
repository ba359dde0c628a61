"""The secret refresher, under its own role, against a local Secrets Manager and a fake Kustomer on loopback."""

from __future__ import annotations

import gzip
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import urllib3.util.retry
from botocore.exceptions import ClientError

from kustomer_token.kustomer import KustomerError, KustomerSettingsClient
from kustomer_token.observability import metrics, secret_fingerprint
from kustomer_token.refresh import (
    ROTATION_ENDED_AFTER_SECONDS,
    SECRETS_MANAGER_RESERVE_SECONDS,
    RefreshError,
    SecretRefresher,
    version_token,
)
from kustomer_token.secrets_store import SecretStore
from kustomer_token.settings import RefreshSettings
from tests.support.clocks import RetryWaits
from tests.support.project import project_version
from tools.harness.fake_kustomer import (
    HTML_PAGE,
    POD_MISMATCH_TITLE,
    FakeKustomer,
    Reply,
    error_reply,
    json_reply,
    secret_reply,
)
from tools.harness.iam import role_client
from tools.harness.loopback import free_port
from tools.harness.rotation import STEPS, RotationRun, SecretsManagerRotation, in_process
from tools.harness.sm_proxy import SecretsManagerProxy

BUDGET_SECONDS = 5.0
_names = itertools.count(1)


@dataclass
class Stack:
    client: Any  # the account's admin
    signing_arn: str
    api_key_arn: str
    refresher_client: Any  # signs as RefreshSecretFunctionRole, through the role check

    def current(self) -> str | None:
        try:
            answer = self.client.get_secret_value(SecretId=self.signing_arn, VersionStage="AWSCURRENT")
        except self.client.exceptions.ResourceNotFoundException:
            return None
        return answer.get("SecretString")

    def version_ids(self) -> list[str]:
        answer = self.client.list_secret_version_ids(SecretId=self.signing_arn, IncludeDeprecated=True)
        return sorted(version["VersionId"] for version in answer["Versions"])

    def stages(self) -> dict[str, list[str]]:
        return self.client.describe_secret(SecretId=self.signing_arn).get("VersionIdsToStages") or {}


def _new_stack(secretsmanager: Any, sm_proxy: SecretsManagerProxy, api_key: str | None) -> Stack:
    """The two secrets as CloudFormation creates them (no value), the API key stored when given."""
    n = next(_names)
    signing = secretsmanager.create_secret(Name=f"SigningSecret-{n}")["ARN"]
    stored = {} if api_key is None else {"SecretString": api_key}
    api = secretsmanager.create_secret(Name=f"ApiKeySecret-{n}", **stored)["ARN"]
    assert sm_proxy.role_check is not None
    sm_proxy.role_check.bind(SigningSecret=signing, ApiKeySecret=api)
    return Stack(secretsmanager, signing, api, role_client("RefreshSecretFunctionRole", sm_proxy.url))


@pytest.fixture
def stack(secretsmanager: Any, sm_proxy: SecretsManagerProxy, api_key: str) -> Stack:
    """The signing secret empty, the API key stored."""
    return _new_stack(secretsmanager, sm_proxy, api_key)


def _refresher(stack: Stack, kustomer: FakeKustomer) -> SecretRefresher:
    return _refresher_at(stack, kustomer.url)


def _refresher_at(
    stack: Stack,
    base_url: str,
    *,
    signing_secret_id: str | None = None,
    read_timeout: float = 1,
    backoff_factor: float = 0.05,
    clock: Callable[[], float] = time.time,
) -> SecretRefresher:
    """A refresher of this stack calling Kustomer at `base_url`, with short timeouts (the tests' own)."""
    settings = RefreshSettings(signing_secret_id or stack.signing_arn, stack.api_key_arn, base_url)
    client = KustomerSettingsClient(
        base_url, connect_timeout=1, read_timeout=read_timeout, backoff_factor=backoff_factor
    )
    return SecretRefresher(settings, SecretStore(stack.refresher_client), client, clock=clock)


def _run(refresher: SecretRefresher, event: object | None = None) -> dict[str, Any]:
    return refresher.handle({} if event is None else event, SECRETS_MANAGER_RESERVE_SECONDS + BUDGET_SECONDS)


# --- scheduled runs ------------------------------------------------------------------------------


def test_the_first_run_stores_kustomers_secret(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], api_key: str
) -> None:
    # Given Kustomer holds a secret and the signing secret is still empty
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    # When the scheduled run goes
    result = _run(_refresher(stack, kustomer))
    # Then the secret lands as AWSCURRENT, in one version, with one call to Kustomer
    assert result["changed"] is True
    assert stack.current() == secret
    assert stack.version_ids() == [result["versionId"]]
    calls = kustomer.settings_calls()
    assert len(calls) == 1
    assert calls[0].headers["Authorization"] == f"Bearer {api_key}"
    assert calls[0].headers["Accept"] == "application/json"
    # (the release's version as pyproject.toml states it, not the package's own __version__ read back)
    assert calls[0].headers["User-Agent"] == f"kustomer-chat-token/{project_version()} (python; urllib3)"


def test_an_unchanged_secret_writes_nothing(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    first = _run(_refresher(stack, kustomer))
    second = _run(_refresher(stack, kustomer))
    assert second == {"changed": False, "versionId": first["versionId"]}
    assert stack.version_ids() == [first["versionId"]]


def test_a_value_pasted_by_hand_that_equals_kustomers_is_read_compared_and_kept(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given Kustomer's value stored by an operator (a version id of Secrets Manager's, not the refresher's)
    secret = new_signing_secret(64)
    pasted = stack.client.put_secret_value(SecretId=stack.signing_arn, SecretString=secret)["VersionId"]
    kustomer.answer(secret_reply(secret))
    # When the scheduled run goes: the listing does not show the refresher's own version as AWSCURRENT
    result = _run(_refresher(stack, kustomer))
    # Then it reads the stored value, finds it equal and writes nothing
    assert result == {"changed": False, "versionId": pasted}
    assert stack.version_ids() == [pasted]


def test_the_secret_at_the_top_level_is_accepted(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret, json_api=False))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert stack.current() == secret


def test_a_then_b_then_a_ends_with_a_current_and_one_version_per_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    results = []
    for value in (a, b, a):
        kustomer.answer(secret_reply(value))
        results.append(_run(refresher))
    assert [r["changed"] for r in results] == [True, True, True]
    assert stack.current() == a
    assert results[2]["versionId"] == results[0]["versionId"]
    assert len(stack.version_ids()) == 2
    assert stack.stages()[results[1]["versionId"]] == ["AWSPREVIOUS"]


def test_a_retried_run_makes_no_second_version(
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a run that wrote the secret, then was retried by Lambda
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    refresher = _refresher(stack, kustomer)
    first = _run(refresher)
    # When the retry read AWSCURRENT before the first write landed (it sees no value)
    store = refresher._store
    real_read = store.read
    monkeypatch.setattr(
        store, "read", lambda secret_id, **kw: None if secret_id == stack.signing_arn else real_read(secret_id, **kw)
    )
    retried = _run(refresher)
    # Then it writes under the same version id, and Secrets Manager keeps one version
    assert retried["versionId"] == first["versionId"]
    assert stack.version_ids() == [first["versionId"]]
    assert stack.current() == secret


def test_the_version_id_comes_from_the_value_and_the_key(new_signing_secret: Callable[[int], str]) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    assert version_token("key-1", a) == version_token("key-1", a)
    assert version_token("key-1", a) != version_token("key-1", b)
    assert version_token("key-1", a) != version_token("key-2", a)
    assert 32 <= len(version_token("key-1", a)) <= 64


def test_transient_errors_are_retried_then_succeed(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(
        Reply(503, HTML_PAGE, {"Content-Type": "text/html"}), error_reply(500, "oops"), secret_reply(secret)
    )
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert len(kustomer.settings_calls()) == 3
    assert stack.current() == secret


@pytest.mark.parametrize(
    ("header", "value", "waits"),
    [
        ("x-ratelimit-reset", "2", [2.0]),
        ("x-ratelimit-reset", "1.5", [1.5]),
        ("Retry-After", "2", [2.0]),
        ("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT", []),  # a time already past: no wait
    ],
    ids=["reset-seconds", "reset-fraction", "retry-after-seconds", "retry-after-past-date"],
)
def test_a_429_is_retried_after_the_wait_kustomer_asks_for(
    header: str,
    value: str,
    waits: list[float],
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    retry_waits: RetryWaits,
) -> None:
    # Given Kustomer rate-limits the first request, saying how long to wait
    secret = new_signing_secret(64)
    kustomer.answer(error_reply(429, "Too Many Requests", {header: value}), secret_reply(secret))
    # When the scheduled run goes
    assert _run(_refresher(stack, kustomer))["changed"] is True
    # Then it waited exactly that long (the wait replaces the backoff) before its second and last request
    assert retry_waits.seconds == waits
    assert len(kustomer.settings_calls()) == 2
    assert stack.current() == secret


def test_a_rate_limit_reset_of_zero_waits_only_the_backoff(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], retry_waits: RetryWaits
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(error_reply(429, "Too Many Requests", {"x-ratelimit-reset": "0"}), secret_reply(secret))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    # A first retry has no back-off (urllib3), and a reset of 0 adds no wait of its own
    assert retry_waits.seconds == []
    assert len(kustomer.settings_calls()) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_rate_limit_reset_on_a_server_error_is_not_waited_for(
    status: int,
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    retry_waits: RetryWaits,
) -> None:
    # Given a server error that also carries the org's rate window (30 s left), then the secret
    secret = new_signing_secret(64)
    kustomer.answer(error_reply(status, "down", {"x-ratelimit-reset": "30"}), secret_reply(secret))
    # When the scheduled run goes, with time enough for a 30-second wait
    result = _refresher(stack, kustomer).handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 60)
    # Then it retries at once (a first retry has no back-off): only a 429 is a reason to wait out the window
    assert result["changed"] is True
    assert retry_waits.seconds == []
    assert len(kustomer.settings_calls()) == 2


class _JitterDraws:
    """urllib3's random module: hands out the given draws in turn and counts them."""

    def __init__(self, *draws: float) -> None:
        self._draws = list(draws)
        self.count = 0

    def random(self) -> float:
        self.count += 1
        return self._draws.pop(0)


@pytest.mark.parametrize(
    ("draws", "waits"),
    [((0.0, 0.9), [4.0]), ((0.9, 0.0), [])],
    ids=["fits-then-would-not", "does-not-fit"],
)
def test_the_wait_slept_is_the_wait_checked_against_the_deadline(
    draws: tuple[float, ...],
    waits: list[float],
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    retry_waits: RetryWaits,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given two 500s then the secret, a back-off factor of 2 s with as much jitter, the jitter's draws fixed
    kustomer.answer(error_reply(500, "oops"), error_reply(500, "oops"), secret_reply(new_signing_secret(64)))
    jitter = _JitterDraws(*draws)
    monkeypatch.setattr(urllib3.util.retry, "random", jitter)
    refresher = _refresher_at(stack, kustomer.url, backoff_factor=2.0)
    # When a run goes with room for the second retry's wait of 2 x 2 s and one more attempt (2 s), plus 1.5 s:
    # a draw of 0 (4 s) fits, a draw of 0.9 (5.8 s) does not
    if waits:
        assert refresher.handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 7.5)["changed"] is True
    else:
        with pytest.raises(KustomerError, match="after 2 attempts"):
            refresher.handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 7.5)
    # Then the jitter is drawn once, and the wait slept is the one that draw gave the deadline check
    assert retry_waits.seconds == waits
    assert jitter.count == 1
    assert len(kustomer.settings_calls()) == 1 + len(waits) + 1


@pytest.mark.parametrize(("status", "calls"), [(502, 4), (504, 4), (501, 1), (409, 1)])
def test_only_statuses_worth_retrying_are_retried(
    status: int, calls: int, stack: Stack, kustomer: FakeKustomer, retry_waits: RetryWaits
) -> None:
    kustomer.answer(error_reply(status, "no"))
    with pytest.raises(KustomerError):
        _run(_refresher(stack, kustomer))
    assert len(kustomer.settings_calls()) == calls


def test_a_redirect_is_not_followed(stack: Stack, kustomer: FakeKustomer) -> None:
    # A redirect would carry the API key to wherever it points
    kustomer.answer(Reply(302, b"", {"Location": "https://elsewhere.example.com/v1/auth/customer/settings"}))
    with pytest.raises(KustomerError) as raised:
        _run(_refresher(stack, kustomer))
    assert (raised.value.reason, str(raised.value)) == (
        "UnexpectedStatus",
        "Kustomer answered an unexpected 302; nothing was stored",
    )
    assert len(kustomer.requests) == 1


def test_a_long_retry_after_is_capped_at_30_seconds(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], retry_waits: RetryWaits
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(error_reply(429, "Too Many Requests", {"Retry-After": "600"}), secret_reply(secret))
    refresher = _refresher(stack, kustomer)
    assert refresher.handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 120)["changed"] is True
    assert retry_waits.seconds == [30.0]


def test_a_gzip_answer_is_read(stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]) -> None:
    secret = new_signing_secret(64)
    plain = secret_reply(secret)
    kustomer.answer(Reply(200, gzip.compress(plain.body), {**plain.headers, "Content-Encoding": "gzip"}))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert stack.current() == secret


@pytest.mark.parametrize(("padding", "accepted"), [(0, True), (1, False)], ids=["64KiB", "64KiB+1"])
def test_an_answer_up_to_64_kib_is_read(
    padding: int, accepted: bool, stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given a settings answer of exactly 64 KiB (other attributes make up the size), or one byte more
    secret = new_signing_secret(64)
    document = {"data": {"attributes": {"secret": secret, "note": ""}}}
    filler = 64 * 1024 - len(json.dumps(document).encode()) + padding
    document["data"]["attributes"]["note"] = "n" * filler
    kustomer.answer(json_reply(200, document))
    if accepted:
        assert _run(_refresher(stack, kustomer))["changed"] is True
    else:
        with pytest.raises(KustomerError, match="larger than 64 KiB"):
            _run(_refresher(stack, kustomer))


def test_x_ratelimit_reset_as_a_unix_time_is_waited_until(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], retry_waits: RetryWaits
) -> None:
    secret = new_signing_secret(64)
    reset_at = int(time.time()) + 2
    kustomer.answer(error_reply(429, "Too Many Requests", {"x-ratelimit-reset": str(reset_at)}), secret_reply(secret))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert len(retry_waits.seconds) == 1
    assert 0.5 <= retry_waits.seconds[0] <= 2.0


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(
    stack: Stack, kustomer: FakeKustomer, retry_waits: RetryWaits
) -> None:
    # Given Kustomer asks for a 30-second wait, more than the run has left
    kustomer.answer(error_reply(429, "Too Many Requests", {"Retry-After": "30"}))
    # When the scheduled run goes
    with pytest.raises(KustomerError) as raised:
        _run(_refresher(stack, kustomer))
    # Then it gives up at once, rate-limited, without waiting and without a second request
    assert raised.value.reason == "RateLimited"
    assert retry_waits.seconds == []
    assert len(kustomer.settings_calls()) == 1


# --- faults: each raises, writes nothing, and stays inside the deadline --------------------------


# Each fault, the reason it is counted under, and the whole message the operator reads ({url} is the
# settings URL). Retried statuses are answered on every attempt: 1 + 3 retries.
FAULTS = {
    "500": (
        error_reply(500, "Internal Server Error"),
        "ServerError",
        "Kustomer answered 500 after 4 attempts; the next run will try again",
    ),
    "503-html": (
        Reply(503, HTML_PAGE, {"Content-Type": "text/html"}),
        "ServerError",
        "Kustomer answered 503 after 4 attempts; the next run will try again",
    ),
    "429": (
        error_reply(429, "Too Many Requests", {"Retry-After": "1", "x-ratelimit-remaining": "0"}),
        "RateLimited",
        "Kustomer is rate-limiting this org (429) after 4 attempts; the next run will try again. "
        "Other integrations sharing the org's API quota may be using it up",
    ),
    "401": (
        error_reply(401, "Unauthorized"),
        "Unauthorized",
        "Kustomer rejected the API key (401): store a valid key with the org.admin and org.user roles "
        "in the API key secret",
    ),
    "403": (
        error_reply(403, "Forbidden"),
        "Forbidden",
        "the Kustomer API key may not read the chat settings (403): give it the org.admin and org.user roles",
    ),
    "404": (
        error_reply(404, "Not Found"),
        "NotFound",
        "Kustomer answered 404 for {url}: check the org name (KUSTOMER_ORG) or KUSTOMER_API_BASE_URL",
    ),
    "418": (
        error_reply(418, "I'm a teapot"),
        "UnexpectedStatus",
        "Kustomer answered an unexpected 418; nothing was stored",
    ),
    "wrong-pod": (
        error_reply(401, POD_MISMATCH_TITLE),
        "WrongPod",
        "the Kustomer API key belongs to pod prod2 but {url} is served by pod prod1: set KUSTOMER_API_BASE_URL "
        "(the KustomerApiBaseUrl parameter) to https://api.prod2.kustomerapp.com",
    ),
    "wrong-pod-upper-case": (
        error_reply(401, POD_MISMATCH_TITLE.replace("prod2", "PROD2").replace("prod1", "Prod1")),
        "WrongPod",
        "the Kustomer API key belongs to pod prod2 but {url} is served by pod prod1: set KUSTOMER_API_BASE_URL "
        "(the KustomerApiBaseUrl parameter) to https://api.prod2.kustomerapp.com",
    ),
    "200-html": (
        Reply(200, HTML_PAGE, {"Content-Type": "text/html"}),
        "BadAnswer",
        "Kustomer's settings answer is not JSON (a proxy or login page?); check KUSTOMER_API_BASE_URL",
    ),
    "truncated-json": (
        Reply(200, b'{"data": {"attributes": {"secr', {}),
        "BadAnswer",
        "Kustomer's settings answer is not JSON (a proxy or login page?); check KUSTOMER_API_BASE_URL",
    ),
    "wrong-shape": (
        json_reply(200, {"data": [{"secret": "x" * 40}]}),
        "BadAnswer",
        "Kustomer's settings answer has no attributes.secret: is chat authentication set up for this org?",
    ),
    "empty-secret": (
        secret_reply(""),
        "BadAnswer",
        "the secret in Kustomer's settings answer is empty; nothing was stored",
    ),
    "non-string-secret": (
        secret_reply(12345),
        "BadAnswer",
        "the secret in Kustomer's settings answer is not a string; nothing was stored",
    ),
    "padded-secret": (
        secret_reply(" abc "),
        "BadAnswer",
        "the secret in Kustomer's settings answer has leading or trailing whitespace; store the secret exactly "
        "as Kustomer gives it; nothing was stored",
    ),
    "200kb-secret": (
        secret_reply("k" * 200_000),
        "BadAnswer",
        "Kustomer's settings answer is larger than 64 KiB; refusing it",
    ),
    "5kb-secret": (
        secret_reply("k" * 5000),
        "BadAnswer",
        "the secret in Kustomer's settings answer is longer than 4096 bytes; nothing was stored",
    ),
    "hang": (
        Reply(hang=True),
        "Timeout",
        "Kustomer did not answer {url} in time; it will be tried again on the next run",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_kustomer_fault_raises_and_leaves_the_secret_as_it_was(
    fault: str,
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    api_key: str,
    retry_waits: RetryWaits,
) -> None:
    # Given a good secret already stored
    good = new_signing_secret(64)
    kustomer.answer(secret_reply(good))
    refresher = _refresher(stack, kustomer)
    _run(refresher)
    versions_before = stack.version_ids()
    # When Kustomer misbehaves
    reply, reason, message = FAULTS[fault]
    kustomer.answer(reply)
    started = time.monotonic()
    with pytest.raises(KustomerError) as raised:
        _run(refresher)
    elapsed = time.monotonic() - started
    # Then the run raises an error that says what happened and what to do, within the deadline
    assert raised.value.reason == reason
    assert str(raised.value) == message.format(url=f"{kustomer.url}/v1/auth/customer/settings")
    assert api_key not in str(raised.value)
    assert elapsed <= BUDGET_SECONDS + 1.0
    # And the signing secret and its versions are exactly as they were
    assert stack.current() == good
    assert stack.version_ids() == versions_before


def test_an_answer_cut_off_part_way_is_a_broken_connection(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given Kustomer announces a whole settings answer and sends half of it
    good = new_signing_secret(64)
    kustomer.answer(secret_reply(good))
    refresher = _refresher(stack, kustomer)
    _run(refresher)
    cut = secret_reply(new_signing_secret(64))
    kustomer.answer(Reply(cut.status, cut.body, cut.headers, cut_off=True))
    # When the scheduled run reads it
    with pytest.raises(KustomerError) as raised:
        _run(refresher)
    # Then nothing of it is stored, and the error says the connection broke off
    assert raised.value.reason == "Unreachable"
    assert str(raised.value) == (
        f"the connection to {kustomer.url}/v1/auth/customer/settings broke off; it will be tried again"
    )
    assert stack.current() == good


def test_kustomer_unreachable_says_what_to_check(stack: Stack, new_signing_secret: Callable[[int], str]) -> None:
    # Given a base URL where nothing listens
    nowhere = f"http://127.0.0.1:{free_port()}"
    refresher = _refresher_at(stack, nowhere, backoff_factor=0.01)
    # When the scheduled run goes
    with pytest.raises(KustomerError) as raised:
        _run(refresher)
    # Then it says it could not reach Kustomer, with the kind of error and what to check
    assert raised.value.reason == "Unreachable"
    assert str(raised.value) == (
        f"could not reach Kustomer at {nowhere}/v1/auth/customer/settings (NewConnectionError): check the org name "
        "or KUSTOMER_API_BASE_URL and the function's internet access"
    )
    assert stack.current() is None


def test_a_hang_is_given_up_at_the_deadline_instead_of_retried_past_it(
    stack: Stack, kustomer: FakeKustomer, retry_waits: RetryWaits
) -> None:
    # Given Kustomer does not answer, and a run with time for one attempt (1 s to connect + 1 s to read) only
    kustomer.answer(Reply(hang=True))
    refresher = _refresher(stack, kustomer)
    started = time.monotonic()
    # When the scheduled run goes
    with pytest.raises(KustomerError) as raised:
        refresher.handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 2.5)
    # Then it stops after the first timeout, because a retry could not finish in time, and says it timed out
    assert raised.value.reason == "Timeout"
    assert len(kustomer.settings_calls()) == 1
    assert retry_waits.seconds == []
    assert time.monotonic() - started < 2.5


def test_a_hang_is_retried_three_times_when_there_is_time(stack: Stack, kustomer: FakeKustomer) -> None:
    # Given Kustomer does not answer, a 0.3-second read timeout and a run with ample time
    kustomer.answer(Reply(hang=True))
    refresher = _refresher_at(stack, kustomer.url, read_timeout=0.3, backoff_factor=0.01)
    # When the scheduled run goes
    with pytest.raises(KustomerError) as raised:
        refresher.handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 30)
    # Then it tried once and retried three times, then gave up as timed out
    assert raised.value.reason == "Timeout"
    assert len(kustomer.settings_calls()) == 4


def test_retries_are_counted_together_whatever_failed(stack: Stack, kustomer: FakeKustomer) -> None:
    # Given Kustomer answering 503 twice, then not answering at all
    kustomer.answer(error_reply(503, "down"), error_reply(503, "down"), then=Reply(hang=True))
    refresher = _refresher_at(stack, kustomer.url, read_timeout=0.3, backoff_factor=0.01)
    # When the scheduled run goes
    with pytest.raises(KustomerError) as raised:
        refresher.handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 30)
    # Then the two 503s and the timeouts share the 3 retries: 4 requests in all
    assert raised.value.reason == "Timeout"
    assert len(kustomer.settings_calls()) == 4


def test_retries_back_off_between_errors(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], retry_waits: RetryWaits
) -> None:
    # Given two 500s, then the secret (the refresher's back-off factor here is 0.05 s, with as much jitter)
    secret = new_signing_secret(64)
    kustomer.answer(error_reply(500, "oops"), error_reply(500, "oops"), secret_reply(secret))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    # Then the first retry follows at once and the second waits 0.05 x 2, plus up to 0.05 of jitter
    assert len(retry_waits.seconds) == 1
    assert 0.1 <= retry_waits.seconds[0] <= 0.15


def test_a_run_with_under_a_second_left_still_calls_kustomer(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    assert _refresher(stack, kustomer).handle({}, SECRETS_MANAGER_RESERVE_SECONDS + 0.8)["changed"] is True
    assert stack.current() == secret


@pytest.mark.parametrize("size", [4096, 32], ids=["longest", "shortest-recommended"])
def test_a_secret_up_to_4096_bytes_is_stored(size: int, stack: Stack, kustomer: FakeKustomer) -> None:
    secret = secrets.token_urlsafe(size)[:size]
    kustomer.answer(secret_reply(secret))
    assert _run(_refresher(stack, kustomer))["changed"] is True
    assert stack.current() == secret


def test_a_base_url_with_a_trailing_slash_reaches_the_settings(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    assert _run(_refresher_at(stack, kustomer.url + "/"))["changed"] is True
    assert [call.path for call in kustomer.requests] == ["/v1/auth/customer/settings"]


def test_a_run_with_no_time_left_does_not_call_kustomer(stack: Stack, kustomer: FakeKustomer) -> None:
    with pytest.raises(KustomerError) as raised:
        _refresher(stack, kustomer).handle({}, SECRETS_MANAGER_RESERVE_SECONDS)
    assert raised.value.reason == "Deadline"
    assert str(raised.value) == "no time left to call Kustomer: raise the function's timeout"
    assert kustomer.settings_calls() == []


@pytest.mark.parametrize("stored_key", [None, "   ", b"binary-key"], ids=["no-value", "blank", "binary"])
def test_a_missing_api_key_raises_before_calling_kustomer(
    stored_key: str | bytes | None, secretsmanager: Any, sm_proxy: SecretsManagerProxy, kustomer: FakeKustomer
) -> None:
    # Given the API key secret holds no value (as first deployed), a blank one, or no text at all
    stack = _new_stack(secretsmanager, sm_proxy, None)
    if isinstance(stored_key, bytes):
        secretsmanager.put_secret_value(SecretId=stack.api_key_arn, SecretBinary=stored_key)
    elif stored_key is not None:
        secretsmanager.put_secret_value(SecretId=stack.api_key_arn, SecretString=stored_key)
    # When the refresher runs under its own role
    with pytest.raises(RefreshError) as raised:
        _run(_refresher(stack, kustomer))
    # Then it says what to do, calls nobody, writes nothing, and needed no permission it lacks
    assert raised.value.reason == "ApiKeyMissing"
    assert str(raised.value) == (
        f"the API key secret {stack.api_key_arn} holds no value yet (or no longer exists): store a Kustomer API key "
        "with the org.admin and org.user roles in it (the stack's StoreApiKeyCommand output shows the command)"
    )
    assert kustomer.settings_calls() == []
    assert stack.version_ids() == []
    assert sm_proxy.role_calls(allowed=False) == []


# --- rotation -------------------------------------------------------------------------------------


def _rotation(stack: Stack, refresher: SecretRefresher) -> SecretsManagerRotation:
    """Secrets Manager's side of a rotation, invoking this refresher."""
    return SecretsManagerRotation(stack.client, in_process(lambda event: _run(refresher, event)))


def _current_then_kustomer_holds(stack: Stack, kustomer: FakeKustomer, current: str, held: str) -> SecretRefresher:
    """A refresher that stored `current` on a scheduled run, with Kustomer now holding `held`."""
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(current))
    _run(refresher)
    kustomer.answer(secret_reply(held))
    return refresher


def _rotation_event(stack: Stack, token: str, step: str) -> dict[str, str]:
    return {"SecretId": stack.signing_arn, "ClientRequestToken": token, "Step": step}


def _completed(run: RotationRun) -> RotationRun:
    assert run.completed, run.error
    return run


def test_a_rotation_moves_current_to_kustomers_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given A is current and Kustomer now holds B
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _current_then_kustomer_holds(stack, kustomer, a, b)
    # When Secrets Manager rotates the secret
    run = _completed(_rotation(stack, refresher).rotate(stack.signing_arn))
    # Then B is current under the rotation's version, A is previous, and no rotation is left open
    assert stack.current() == b
    assert stack.stages()[run.token] == ["AWSCURRENT"]
    assert sorted(label for labels in stack.stages().values() for label in labels) == ["AWSCURRENT", "AWSPREVIOUS"]


def test_repeated_steps_are_harmless(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], sm_proxy: SecretsManagerProxy
) -> None:
    # Given A current and Kustomer holding B
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _current_then_kustomer_holds(stack, kustomer, a, b)
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    # When Secrets Manager invokes every step twice
    mark = sm_proxy.mark()
    for step in ("createSecret", "createSecret", "setSecret", "setSecret", "testSecret", "testSecret"):
        _run(refresher, _rotation_event(stack, token, step))
    for _ in range(2):
        _run(refresher, _rotation_event(stack, token, "finishSecret"))
    # Then B was stored once, B is current under the rotation's version, and nothing is left pending
    assert len(sm_proxy.records(since=mark, operation="PutSecretValue")) == 1
    assert stack.current() == b
    assert stack.stages()[token] == ["AWSCURRENT"]
    # And a step for a version that is already current does nothing
    assert _run(refresher, _rotation_event(stack, token, "createSecret"))["changed"] is False


def _pending_b(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> tuple[SecretRefresher, str, dict[str, str]]:
    """A current; a rotation stored Kustomer's B as pending (createSecret, setSecret done); the values by name."""
    values = {"A": new_signing_secret(64), "B": new_signing_secret(64), "C": new_signing_secret(64)}
    refresher = _current_then_kustomer_holds(stack, kustomer, values["A"], values["B"])
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    for step in ("createSecret", "setSecret"):
        _run(refresher, _rotation_event(stack, token, step))
    return refresher, token, values


def test_test_secret_passes_when_kustomer_still_holds_the_pending_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], sm_proxy: SecretsManagerProxy
) -> None:
    # Given B pending, and Kustomer still holding B
    refresher, token, _ = _pending_b(stack, kustomer, new_signing_secret)
    stages_before, reads_before, mark = stack.stages(), len(kustomer.settings_calls()), sm_proxy.mark()
    # When testSecret runs
    _run(refresher, _rotation_event(stack, token, "testSecret"))
    # Then it read Kustomer once, and wrote nothing
    assert len(kustomer.settings_calls()) == reads_before + 1
    assert [call.operation for call in sm_proxy.records(since=mark)] == [
        "DescribeSecret",
        "GetSecretValue",
        "GetSecretValue",
    ]
    assert stack.stages() == stages_before


@pytest.mark.parametrize(
    ("kustomer_now", "reason"),
    [
        ("C", "PendingOutdated"),
        ("A", "PendingOutdated"),
        (error_reply(401, "Unauthorized"), "Unauthorized"),
        (Reply(503, HTML_PAGE, {"Content-Type": "text/html"}), "ServerError"),
        (secret_reply(""), "BadAnswer"),
        (Reply(hang=True), "Timeout"),
    ],
    ids=["changed-to-C", "back-to-A", "key-refused", "kustomer-down", "empty-answer", "no-answer"],
)
def test_test_secret_refuses_when_kustomer_does_not_confirm_the_pending_value(
    kustomer_now: str | Reply,
    reason: str,
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    sm_proxy: SecretsManagerProxy,
) -> None:
    # Given B pending, and Kustomer now holding another value, or not answering with one
    refresher, token, values = _pending_b(stack, kustomer, new_signing_secret)
    kustomer.answer(secret_reply(values[kustomer_now]) if isinstance(kustomer_now, str) else kustomer_now)
    stages_before, mark = stack.stages(), sm_proxy.mark()
    # When testSecret runs
    with pytest.raises((RefreshError, KustomerError)) as raised:
        _run(refresher, _rotation_event(stack, token, "testSecret"))
    # Then it refuses, saying why, and writes nothing: the versions and labels are as they were
    assert raised.value.reason == reason
    assert [call.operation for call in sm_proxy.records(since=mark)] == [
        "DescribeSecret",
        "GetSecretValue",
        "GetSecretValue",
    ]
    assert stack.stages() == stages_before
    assert stack.current() == values["A"]


def test_a_rotation_reattempted_after_kustomer_changed_is_withdrawn_and_the_next_one_completes(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given a rotation that stored B as pending and stopped at testSecret, because Kustomer moved on to C
    refresher, token, values = _pending_b(stack, kustomer, new_signing_secret)
    kustomer.answer(secret_reply(values["C"]))
    with pytest.raises(RefreshError) as refused:
        _run(refresher, _rotation_event(stack, token, "testSecret"))
    assert str(refused.value) == (
        "Kustomer no longer holds the pending signing secret (it changed during this rotation), so it is not "
        "made current; nothing was changed. The next attempt of this rotation withdraws it, and the next "
        "scheduled run stores Kustomer's secret"
    )
    rotation = _rotation(stack, refresher)
    # When Secrets Manager reattempts that rotation (a version can never change its value, so B can never be C)
    reattempt = rotation.rotate(stack.signing_arn)
    # Then createSecret withdraws it: AWSPENDING taken off B's version, A still current, nothing else changed
    assert reattempt.refusal is not None
    assert reattempt.token == token
    assert reattempt.error is not None
    assert "withdrawn" in reattempt.error["errorMessage"]
    assert stack.stages()[token] == []
    assert stack.current() == values["A"]
    # And the next rotation is a new one, which completes with C
    fresh = _completed(rotation.rotate(stack.signing_arn))
    assert fresh.refusal is None
    assert stack.current() == values["C"]


def test_an_incomplete_rotation_is_reattempted_with_its_own_token(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given A is current and a rotation to B stopped after createSecret (AWSPENDING left on B)
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _current_then_kustomer_holds(stack, kustomer, a, b)
    rotation = _rotation(stack, refresher)
    halted = rotation.start(stack.signing_arn)
    _run(refresher, _rotation_event(stack, halted.token, "createSecret"))
    # When a new rotation is asked for
    retried = _completed(rotation.rotate(stack.signing_arn))
    # Then Secrets Manager refuses to start another and completes the halted one: B current, nothing pending
    assert retried.refusal == "A previous rotation isn't complete. That rotation will be reattempted."
    assert retried.token == halted.token
    assert stack.current() == b
    assert stack.stages()[halted.token] == ["AWSCURRENT"]
    assert all("AWSPENDING" not in labels for labels in stack.stages().values())


def test_rotations_a_b_a_end_with_a_current(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    a, b = new_signing_secret(64), new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(a))
    _run(refresher)
    for value in (b, a):
        kustomer.answer(secret_reply(value))
        _completed(_rotation(stack, refresher).rotate(stack.signing_arn))
    assert stack.current() == a


def test_a_then_b_then_a_then_c_leaves_one_current_version(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given A, B, then A again (AWSCURRENT moved back by UpdateSecretVersionStage)
    refresher = _refresher(stack, kustomer)
    a, b, c = (new_signing_secret(64) for _ in range(3))
    for value in (a, b, a, c):
        kustomer.answer(secret_reply(value))
        _run(refresher)
    # Then after C exactly one version is AWSCURRENT (C) and one AWSPREVIOUS (A)
    labelled = {version: labels for version, labels in stack.stages().items() if labels}
    assert sorted(label for labels in labelled.values() for label in labels) == ["AWSCURRENT", "AWSPREVIOUS"]
    assert stack.current() == c


def test_a_kustomer_fault_during_create_writes_no_pending_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    good = new_signing_secret(64)
    refresher = _refresher(stack, kustomer)
    kustomer.answer(secret_reply(good))
    _run(refresher)
    stages_before = stack.stages()
    kustomer.answer(secret_reply(""))
    run = _rotation(stack, refresher).rotate(stack.signing_arn)
    assert run.error is not None
    assert run.error["errorType"] == "KustomerError"
    assert [step for step, _ in run.steps] == ["createSecret"]
    # Only the AWSPENDING version Secrets Manager made itself is new, still without a value
    assert stack.stages() == {**stages_before, run.token: ["AWSPENDING"]}
    with pytest.raises(stack.client.exceptions.ResourceNotFoundException):
        stack.client.get_secret_value(SecretId=stack.signing_arn, VersionId=run.token, VersionStage="AWSPENDING")
    with pytest.raises(RefreshError, match="pending signing secret is missing"):
        _run(refresher, _rotation_event(stack, run.token, "testSecret"))
    assert stack.current() == good


_NEEDS_IDS = "a rotation event needs SecretId and ClientRequestToken strings"
_SCHEDULER_OR_ROTATION = "expected a scheduler event (a JSON object) or a Secrets Manager rotation event"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"SecretId": "x", "ClientRequestToken": "t", "Step": "dance"},
            "unknown rotation step 'dance': expected one of createSecret, setSecret, testSecret, finishSecret",
        ),
        ({"SecretId": "x", "Step": "createSecret"}, _NEEDS_IDS),
        ({"ClientRequestToken": 5, "SecretId": "x", "Step": "createSecret"}, _NEEDS_IDS),
        ({"ClientRequestToken": "t", "SecretId": "", "Step": "createSecret"}, _NEEDS_IDS),
        # Any one of a rotation event's fields makes it one: never mistaken for a scheduled run
        ({"Step": "createSecret"}, _NEEDS_IDS),
        ({"ClientRequestToken": "t"}, _NEEDS_IDS),
        ({"SecretId": "x"}, _NEEDS_IDS),
        ([], f"unrecognised event (list): {_SCHEDULER_OR_ROTATION}"),
        ("createSecret", f"unrecognised event (str): {_SCHEDULER_OR_ROTATION}"),
    ],
    ids=[
        "unknown-step",
        "no-token",
        "token-not-string",
        "empty-secret-id",
        "only-step",
        "only-token",
        "only-secret-id",
        "list",
        "string",
    ],
)
def test_an_unknown_event_shape_raises_and_writes_nothing(
    event: object, message: str, stack: Stack, kustomer: FakeKustomer
) -> None:
    with pytest.raises(RefreshError) as raised:
        _run(_refresher(stack, kustomer), event)
    assert (raised.value.reason, str(raised.value)) == ("BadEvent", message)
    assert stack.version_ids() == []
    assert kustomer.settings_calls() == []


def test_rotation_of_another_secret_is_refused(stack: Stack, kustomer: FakeKustomer) -> None:
    other = stack.client.create_secret(Name="SomethingElse", SecretString="value-of-another-secret")["ARN"]
    event = {"SecretId": other, "ClientRequestToken": "t" * 32, "Step": "createSecret"}
    with pytest.raises(RefreshError) as raised:
        _run(_refresher(stack, kustomer), event)
    assert raised.value.reason == "WrongSecret"
    assert str(raised.value) == f"this function rotates only the signing secret {stack.signing_arn}, not {other}"


# --- what each rotation step says and counts -----------------------------------------------------


@pytest.fixture
def counted() -> Iterator[Callable[[], dict[str, float]]]:
    """The refresher's metrics recorded since the test began (SecretChanged, SecretUnchanged...)."""
    metrics.clear_metrics()

    def read() -> dict[str, float]:
        return {name: sum(entry["Value"]) for name, entry in metrics.metric_set.items()}

    yield read
    metrics.clear_metrics()


def _logged(output: list[dict[str, Any]], message: str) -> list[dict[str, Any]]:
    return [line for line in output if line.get("message") == message]


@pytest.mark.parametrize("named_by", ["ARN", "Name"])
def test_a_rotation_event_may_name_the_signing_secret_by_its_arn_or_its_name(
    named_by: str, stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given the function configured with the secret's name, or with its ARN, and the event naming it the other way
    described = stack.client.describe_secret(SecretId=stack.signing_arn)
    configured = described["Name"] if named_by == "ARN" else described["ARN"]
    refresher = _refresher_at(stack, kustomer.url, signing_secret_id=configured)
    b = new_signing_secret(64)
    kustomer.answer(secret_reply(b))
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    # When createSecret runs for it
    _run(refresher, {"SecretId": described[named_by], "ClientRequestToken": token, "Step": "createSecret"})
    # Then it is the same secret: the pending value is stored
    pending = stack.client.get_secret_value(SecretId=stack.signing_arn, VersionStage="AWSPENDING")
    assert pending["SecretString"] == b


def test_a_version_the_signing_secret_does_not_have_is_refused(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], sm_proxy: SecretsManagerProxy
) -> None:
    refresher = _current_then_kustomer_holds(stack, kustomer, new_signing_secret(64), new_signing_secret(64))
    stages_before, mark = stack.stages(), sm_proxy.mark()
    unknown = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    with pytest.raises(RefreshError) as raised:
        _run(refresher, _rotation_event(stack, unknown, "createSecret"))
    assert raised.value.reason == "UnknownVersion"
    assert str(raised.value) == f"version {unknown} is not a version of the signing secret"
    assert [call.operation for call in sm_proxy.records(since=mark)] == ["DescribeSecret"]
    assert stack.stages() == stages_before


def test_a_step_for_the_version_already_current_clears_a_pending_label_left_on_it(
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a finishSecret cut short after AWSCURRENT moved: AWSPENDING still on the same version
    refresher, token, values = _pending_b(stack, kustomer, new_signing_secret)
    stack.client.update_secret_version_stage(
        SecretId=stack.signing_arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
        RemoveFromVersionId=next(v for v, s in stack.stages().items() if "AWSCURRENT" in s),
    )  # fmt: skip
    assert sorted(stack.stages()[token]) == ["AWSCURRENT", "AWSPENDING"]
    read_output()
    # When Secrets Manager retries the step
    result = _run(refresher, _rotation_event(stack, token, "finishSecret"))
    # Then the label is cleared, nothing else changes, and the log says why nothing was done
    assert result == {"step": "finishSecret", "versionId": token, "changed": False}
    assert stack.stages()[token] == ["AWSCURRENT"]
    assert stack.current() == values["B"]
    (line,) = _logged(read_output(), "rotation: version is already AWSCURRENT")
    assert (line["step"], line["version_id"]) == ("finishSecret", token)


def test_test_secret_refuses_a_pending_version_that_holds_no_value(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], sm_proxy: SecretsManagerProxy
) -> None:
    # Given a rotation started (Secrets Manager made an empty AWSPENDING version) whose createSecret never ran
    refresher = _current_then_kustomer_holds(stack, kustomer, new_signing_secret(64), new_signing_secret(64))
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    stages_before, calls_before = stack.stages(), len(kustomer.settings_calls())
    # When testSecret runs
    with pytest.raises(RefreshError) as raised:
        _run(refresher, _rotation_event(stack, token, "testSecret"))
    # Then it refuses before asking Kustomer, and writes nothing
    assert (raised.value.reason, str(raised.value)) == ("PendingUnusable", "the pending signing secret is missing")
    assert len(kustomer.settings_calls()) == calls_before
    assert stack.stages() == stages_before


def test_test_secret_refuses_a_pending_value_the_mint_would_not_sign_with(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str]
) -> None:
    # Given a pending version that holds a value padded with whitespace (written by hand, not by createSecret)
    padded = f" {new_signing_secret(64)} "
    refresher = _current_then_kustomer_holds(stack, kustomer, new_signing_secret(64), padded)
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    stack.client.put_secret_value(
        SecretId=stack.signing_arn, SecretString=padded, ClientRequestToken=token, VersionStages=["AWSPENDING"]
    )
    calls_before = len(kustomer.settings_calls())
    # When testSecret runs
    with pytest.raises(RefreshError) as raised:
        _run(refresher, _rotation_event(stack, token, "testSecret"))
    # Then it refuses, saying what is wrong with it, before asking Kustomer
    assert raised.value.reason == "PendingUnusable"
    assert str(raised.value).startswith("the pending signing secret ")
    assert "whitespace" in str(raised.value)
    assert len(kustomer.settings_calls()) == calls_before


def test_create_secret_logs_the_pending_value_by_its_fingerprint_and_a_withdrawal_by_its_reason(
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a rotation whose createSecret stored B
    read_output()
    refresher, token, values = _pending_b(stack, kustomer, new_signing_secret)
    (stored,) = _logged(read_output(), "rotation: pending value stored")
    assert stored["secret_fingerprint"] == secret_fingerprint(values["B"])
    # When it is reattempted after Kustomer moved on to C
    kustomer.answer(secret_reply(values["C"]))
    with pytest.raises(RefreshError) as raised:
        _run(refresher, _rotation_event(stack, token, "createSecret"))
    # Then the withdrawal is a PendingOutdated failure that says what was done
    assert raised.value.reason == "PendingOutdated"
    assert str(raised.value) == (
        f"Kustomer's secret changed since this rotation stored its pending version {token}; that version was "
        "withdrawn (AWSPENDING removed) and AWSCURRENT left as it was: the next scheduled run or rotation "
        "stores Kustomer's secret"
    )
    (failed,) = _logged(read_output(), "secret refresh failed")
    assert failed["reason"] == "PendingOutdated"
    assert stack.stages()[token] == []


def test_finish_secret_counts_a_change_or_no_change(
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    counted: Callable[[], dict[str, float]],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a rotation to B tested, and a scheduled run that stored B first under its own version
    refresher, token, values = _pending_b(stack, kustomer, new_signing_secret)
    _run(refresher, _rotation_event(stack, token, "testSecret"))
    scheduled = _run(refresher)
    assert scheduled["changed"] is True
    metrics.clear_metrics()
    read_output()
    # When finishSecret runs
    _run(refresher, _rotation_event(stack, token, "finishSecret"))
    # Then the scheduled run's version stays current, the rotation's is left unlabelled, and it is counted
    # as no change, logged with the version that stays current
    assert stack.stages()[token] == []
    assert stack.stages()[scheduled["versionId"]] == ["AWSCURRENT"]
    assert counted() == {"SecretUnchanged": 1, "RefreshSucceeded": 1}
    (line,) = _logged(read_output(), "rotation: Kustomer's secret is already current")
    assert line["version_id"] == scheduled["versionId"]
    # And a rotation that does move AWSCURRENT is counted as a change
    kustomer.answer(secret_reply(values["C"]))
    rotation = _completed(_rotation(stack, refresher).rotate(stack.signing_arn))
    assert stack.stages()[rotation.token] == ["AWSCURRENT"]
    assert counted()["SecretChanged"] == 1


def test_a_version_that_is_neither_pending_nor_current_is_refused(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], sm_proxy: SecretsManagerProxy
) -> None:
    # Given A, then B, stored by scheduled runs: A's version is now AWSPREVIOUS
    refresher = _current_then_kustomer_holds(stack, kustomer, new_signing_secret(64), new_signing_secret(64))
    previous = next(version for version, stages in stack.stages().items() if "AWSCURRENT" in stages)
    _run(refresher)
    assert stack.stages()[previous] == ["AWSPREVIOUS"]
    stages_before, mark = stack.stages(), sm_proxy.mark()
    # When a rotation step names that version
    with pytest.raises(RefreshError) as raised:
        _run(refresher, _rotation_event(stack, previous, "finishSecret"))
    # Then it is refused, and nothing is written
    assert raised.value.reason == "NotPending"
    assert str(raised.value) == f"version {previous} is not AWSPENDING, so it cannot be rotated to"
    assert [call.operation for call in sm_proxy.records(since=mark)] == ["DescribeSecret"]
    assert stack.stages() == stages_before


def test_each_rotation_step_is_logged_with_its_version(
    stack: Stack,
    kustomer: FakeKustomer,
    new_signing_secret: Callable[[int], str],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    refresher = _current_then_kustomer_holds(stack, kustomer, new_signing_secret(64), new_signing_secret(64))
    read_output()
    rotation = _rotation(stack, refresher)
    token = rotation.start(stack.signing_arn).token
    steps = ("createSecret", "setSecret", "testSecret", "finishSecret")
    results = [_run(refresher, _rotation_event(stack, token, step)) for step in steps]
    assert results == [{"step": step, "versionId": token} for step in steps]
    done = _logged(read_output(), "rotation step done")
    assert [(line["step"], line["version_id"]) for line in done] == [(step, token) for step in steps]


def test_the_first_rotation_of_a_secret_that_never_had_a_value_makes_it_current(
    stack: Stack, kustomer: FakeKustomer, new_signing_secret: Callable[[int], str], sm_proxy: SecretsManagerProxy
) -> None:
    # Given the signing secret as first deployed (no version at all) and the API key stored
    secret = new_signing_secret(64)
    kustomer.answer(secret_reply(secret))
    refresher = _refresher(stack, kustomer)
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    for step in ("createSecret", "setSecret", "testSecret"):
        _run(refresher, _rotation_event(stack, token, step))
    mark = sm_proxy.mark()
    # When finishSecret runs
    _run(refresher, _rotation_event(stack, token, "finishSecret"))
    # Then the rotation's version becomes current, with no AWSCURRENT to move it from, and nothing is left pending
    assert stack.current() == secret
    assert stack.stages()[token] == ["AWSCURRENT"]
    moves = [call.request for call in sm_proxy.records(since=mark, operation="UpdateSecretVersionStage")]
    assert moves == [
        {"SecretId": stack.signing_arn, "VersionStage": "AWSCURRENT", "MoveToVersionId": token},
        {"SecretId": stack.signing_arn, "VersionStage": "AWSPENDING", "RemoveFromVersionId": token},
    ]
    assert [call.operation for call in sm_proxy.records(since=mark)] == [
        "DescribeSecret",
        "DescribeSecret",
        "GetSecretValue",
        "UpdateSecretVersionStage",
        "UpdateSecretVersionStage",
    ]


def test_a_wrong_pod_answer_that_is_not_utf_8_is_still_a_refused_key(stack: Stack, kustomer: FakeKustomer) -> None:
    # Given Kustomer refuses the key with a body that is not UTF-8 (a proxy's page in Latin-1, say)
    kustomer.answer(Reply(401, "Clé refusée".encode("latin-1"), {"Content-Type": "text/plain; charset=latin-1"}))
    with pytest.raises(KustomerError) as raised:
        _run(_refresher(stack, kustomer))
    assert raised.value.reason == "Unauthorized"


# --- a rotation that never finished: the scheduled run withdraws it, so the next RotateSecret is accepted ----


class Clock:
    """The refresher's wall clock, moved on by a test; Secrets Manager dates each version with the real time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# The stack's default RefreshSchedule, rate(15 minutes): the next scheduled run after a rotation failed.
SCHEDULE_PERIOD_SECONDS = 15 * 60
WITHDRAWN = "AWSPENDING removed from a version an unfinished rotation left"
UNFINISHED = ["no-api-key-at-first-deploy", "kustomer-down-at-create", "mismatch-at-test", "kustomer-down-at-test"]


@dataclass
class Unfinished:
    """A rotation that failed and left AWSPENDING on its version; the names of the values involved."""

    stack: Stack
    refresher: SecretRefresher
    rotation: SecretsManagerRotation
    clock: Clock
    token: str  # the failed rotation's version
    pending: str | None  # the name of the value that version holds, None when it holds none
    held: str  # the name of the value Kustomer holds now

    def value_of_token(self) -> str | None:
        try:
            answer = self.stack.client.get_secret_value(SecretId=self.stack.signing_arn, VersionId=self.token)
        except self.stack.client.exceptions.ResourceNotFoundException:
            return None
        value: str = answer["SecretString"]
        return value


def _unfinished(
    case: str,
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    values: dict[str, str],
) -> Unfinished:
    """The stack after a rotation failed as `case` says, before the next scheduled run."""
    down = Reply(503, HTML_PAGE, {"Content-Type": "text/html"})
    first_deploy = case == "no-api-key-at-first-deploy"
    stack = _new_stack(secretsmanager, sm_proxy, None if first_deploy else api_key)
    clock = Clock()
    refresher = _refresher_at(stack, kustomer.url, clock=clock)
    rotation = _rotation(stack, refresher)
    if not first_deploy:
        kustomer.answer(secret_reply(values["A"]))
        _run(refresher)  # A is current
    failed_at, pending, held = {
        # The immediate rotation of the first deploy: no API key yet; then the operator stores it and
        # skips the optional manual rotation.
        "no-api-key-at-first-deploy": ("createSecret", None, "A"),
        "kustomer-down-at-create": ("createSecret", None, "B"),
        # createSecret stored B; Kustomer moved on to C before testSecret.
        "mismatch-at-test": ("testSecret", "B", "C"),
        # createSecret stored B; Kustomer did not answer testSecret, and holds B again since.
        "kustomer-down-at-test": ("testSecret", "B", "B"),
    }[case]
    during = {
        "no-api-key-at-first-deploy": (secret_reply(values["A"]),),
        "kustomer-down-at-create": (down,),
        "mismatch-at-test": (secret_reply(values["B"]), secret_reply(values["C"])),
        "kustomer-down-at-test": (secret_reply(values["B"]), down),
    }[case]
    kustomer.answer(*during)
    failed = rotation.rotate(stack.signing_arn)
    assert failed.error is not None
    assert [step for step, _ in failed.steps][-1] == failed_at, failed.error
    if first_deploy:
        stack.client.put_secret_value(SecretId=stack.api_key_arn, SecretString=api_key)
    kustomer.answer(secret_reply(values[held]))
    unfinished = Unfinished(stack, refresher, rotation, clock, failed.token, pending, held)
    assert stack.stages()[failed.token] == ["AWSPENDING"]
    assert unfinished.value_of_token() == (values[pending] if pending else None)
    return unfinished


@pytest.fixture
def values(new_signing_secret: Callable[[int], str]) -> dict[str, str]:
    return {name: new_signing_secret(64) for name in "ABCD"}


def _no_pending_anywhere(stack: Stack) -> bool:
    return all("AWSPENDING" not in labels for labels in stack.stages().values())


@pytest.mark.parametrize("case", UNFINISHED)
def test_after_a_failed_rotation_the_scheduled_run_lets_the_next_rotate_secret_complete(
    case: str,
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    values: dict[str, str],
) -> None:
    # Given a rotation that failed and left AWSPENDING on its version
    u = _unfinished(case, secretsmanager, sm_proxy, kustomer, api_key, values)
    # When the schedule runs, later than any rotation lasts
    u.clock.advance(SCHEDULE_PERIOD_SECONDS)
    result = _run(u.refresher)
    # Then Kustomer's value is AWSCURRENT, and the failed rotation's version lost AWSPENDING and kept its value
    assert result == {"changed": True, "versionId": version_token(api_key, values[u.held])}
    assert u.stack.current() == values[u.held]
    assert u.stack.stages()[result["versionId"]] == ["AWSCURRENT"]
    assert u.stack.stages()[u.token] == []
    assert u.value_of_token() == (values[u.pending] if u.pending else None)
    # When a stack update's RotateSecret comes, with Kustomer now holding D
    kustomer.answer(secret_reply(values["D"]))
    update = _completed(u.rotation.rotate(u.stack.signing_arn))
    # Then it is accepted as a new rotation, its four steps complete, and nothing is left pending
    assert update.refusal is None
    assert update.token != u.token
    assert u.stack.current() == values["D"]
    assert u.stack.stages()[update.token] == ["AWSCURRENT"]
    assert _no_pending_anywhere(u.stack)
    assert sm_proxy.role_calls(allowed=False) == []


@pytest.mark.parametrize("case", UNFINISHED)
def test_the_withdrawn_rotation_rerun_changes_nothing_and_the_next_rotation_completes(
    case: str,
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    values: dict[str, str],
) -> None:
    # Given a failed rotation withdrawn by a scheduled run
    u = _unfinished(case, secretsmanager, sm_proxy, kustomer, api_key, values)
    u.clock.advance(SCHEDULE_PERIOD_SECONDS)
    _run(u.refresher)
    stages_before, token_value_before = u.stack.stages(), u.value_of_token()
    # When Secrets Manager re-runs that rotation's steps, with its old token
    reruns = [u.rotation.step(u.stack.signing_arn, u.token, step) for step in STEPS]
    # Then each step fails, saying why, and no value or label changed
    refusal = f"version {u.token} is not AWSPENDING, so it cannot be rotated to"
    assert [(r.error or {}).get("errorMessage") for r in reruns] == [refusal] * len(STEPS)
    assert u.stack.stages() == stages_before
    assert u.stack.current() == values[u.held]
    assert u.value_of_token() == token_value_before
    # And the next rotation is a new one, which completes
    kustomer.answer(secret_reply(values["D"]))
    update = _completed(u.rotation.rotate(u.stack.signing_arn))
    assert update.refusal is None
    assert u.stack.current() == values["D"]
    assert _no_pending_anywhere(u.stack)


@pytest.mark.parametrize("progress", ["just-started", "pending-stored"])
def test_a_scheduled_run_leaves_a_rotation_in_progress_to_finish(
    progress: str,
    stack: Stack,
    kustomer: FakeKustomer,
    values: dict[str, str],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given A current and a rotation to Kustomer's B under way: RotateSecret just made its empty AWSPENDING
    # version, or createSecret and setSecret also ran and stored B there
    refresher = _current_then_kustomer_holds(stack, kustomer, values["A"], values["B"])
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    done = ("createSecret", "setSecret") if progress == "pending-stored" else ()
    for step in done:
        _run(refresher, _rotation_event(stack, token, step))
    read_output()
    # When the scheduled run comes between two steps
    assert _run(refresher)["changed"] is True
    # Then the rotation's version keeps AWSPENDING, and the log says why
    assert stack.stages()[token] == ["AWSPENDING"]
    (line,) = _logged(read_output(), "rotation may be in progress: AWSPENDING left as it is")
    assert line["version_id"] == token
    # And the rotation's remaining steps all succeed: B current, nothing pending
    for step in STEPS[len(done) :]:
        _run(refresher, _rotation_event(stack, token, step))
    assert stack.current() == values["B"]
    assert _no_pending_anywhere(stack)


@pytest.mark.parametrize(
    ("age", "labels"),
    [(ROTATION_ENDED_AFTER_SECONDS - 30, ["AWSPENDING"]), (ROTATION_ENDED_AFTER_SECONDS + 30, [])],
    ids=["younger-kept", "older-withdrawn"],
)
def test_only_a_pending_version_older_than_any_rotation_lasts_is_withdrawn(
    age: float, labels: list[str], stack: Stack, kustomer: FakeKustomer, values: dict[str, str]
) -> None:
    # Given A current and a rotation whose empty AWSPENDING version is `age` seconds old
    clock = Clock()
    refresher = _refresher_at(stack, kustomer.url, clock=clock)
    kustomer.answer(secret_reply(values["A"]))
    _run(refresher)
    token = _rotation(stack, refresher).start(stack.signing_arn).token
    clock.advance(age)
    # When the scheduled run finds A unchanged
    assert _run(refresher)["changed"] is False
    # Then the label is taken off only past the age no rotation reaches
    assert stack.stages()[token] == labels
    assert stack.current() == values["A"]


def test_a_failed_withdrawal_raises_after_the_value_is_stored_and_the_next_run_completes_it(
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    values: dict[str, str],
) -> None:
    # Given a rotation that failed at createSecret, and Secrets Manager refusing the label's removal
    u = _unfinished("kustomer-down-at-create", secretsmanager, sm_proxy, kustomer, api_key, values)
    u.clock.advance(SCHEDULE_PERIOD_SECONDS)
    sm_proxy.fail("access-denied", operation="UpdateSecretVersionStage")
    # When the schedule runs
    with pytest.raises(ClientError) as raised:
        _run(u.refresher)
    sm_proxy.heal()
    # Then it raises (alarms see it), and Kustomer's B, stored before, stays current; the label stays too
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert u.stack.current() == values["B"]
    assert u.stack.stages()[u.token] == ["AWSPENDING"]
    # And the next run finds B unchanged and takes the label off
    assert _run(u.refresher) == {"changed": False, "versionId": version_token(api_key, values["B"])}
    assert u.stack.stages()[u.token] == []


def test_a_withdrawal_is_logged_by_version_and_reason_without_any_secret(
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    values: dict[str, str],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a rotation that failed at testSecret, its version holding B
    u = _unfinished("mismatch-at-test", secretsmanager, sm_proxy, kustomer, api_key, values)
    u.clock.advance(SCHEDULE_PERIOD_SECONDS)
    read_output()
    # When the scheduled run withdraws it
    _run(u.refresher)
    # Then one warning names the version, the reason and its age, and holds no value and no API key
    (line,) = _logged(read_output(), WITHDRAWN)
    assert (line["level"], line["version_id"], line["reason"]) == ("WARNING", u.token, "RotationAbandoned")
    assert line["age_seconds"] >= SCHEDULE_PERIOD_SECONDS
    logged = json.dumps(line)
    assert all(value not in logged for value in [*values.values(), api_key])
