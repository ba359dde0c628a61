"""Secrets Manager failing in every way it can, through the fault-injecting proxy on loopback.

Each function runs under its own role: the same proxy checks every call against the role's
policy before it injects the fault, and keeps a record of every call, which the tests read
to show that a fault met the call it names.

The mint: a warm container keeps minting from its cache and counts each stale use; a cold one
answers 503 with Retry-After; nothing answers 500.
The refresher: a fault on any one of its calls, in a scheduled run or in any rotation step,
makes the run raise and leaves every version and label exactly as it was, except for
documented half-way states that the next run repairs (a scheduled run's value stays stored when
the listing after it fails); once Secrets Manager answers again, the run completes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jwt
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from kustomer_token.refresh import SECRETS_MANAGER_RESERVE_SECONDS, RefreshError
from tests.support.events import FakeLambdaContext, http_api_event
from tests.support.functions import MintContainer
from tests.support.metrics import metric_total
from tests.support.secret_versions import Labels, SecretVersions, state
from tools.harness.fake_kustomer import FakeKustomer, secret_reply
from tools.harness.rotation import SecretsManagerRotation, in_process
from tools.harness.sm_proxy import FAULTS, FORWARDED, HANG, SecretsManagerProxy

ALL_FAULTS = [*sorted(FAULTS), HANG]
# What the refresher's client (secrets_store.default_client: standard mode, 3 attempts) retries.
SDK_RETRIES = {"throttling", "internal-error", "unavailable", HANG}
SDK_ATTEMPTS = 3
# The fault of the matrix: one the SDK does not retry, so one failed call fails the run.
ONE_CALL_FAULT = "access-denied"
VISITOR = {"sub": "user-1"}
CURRENT, PENDING, PREVIOUS = ("AWSCURRENT",), ("AWSPENDING",), ("AWSPREVIOUS",)


@pytest.fixture
def proxy(sm_proxy: SecretsManagerProxy) -> SecretsManagerProxy:
    """The proxy every function reaches Secrets Manager through; healed after each test."""
    return sm_proxy


def _mint(container: MintContainer) -> Any:
    return container.invoke(http_api_event("POST", "/token", claims=VISITOR))


# --- the mint ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_a_warm_mint_keeps_minting_from_its_cache_and_asks_secrets_manager_once(
    fault: str,
    proxy: SecretsManagerProxy,
    stored_secret: tuple[str, str],
    start_mint: Callable[..., MintContainer],
    read_output: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given a warm container whose TTL has run out (TTL 0)
    arn, secret = stored_secret
    mint = start_mint(SIGNING_SECRET_ID=arn, SECRET_CACHE_TTL_SECONDS="0", SECRET_MAX_STALE_SECONDS="600")
    assert _mint(mint).status == 200
    # When Secrets Manager fails
    proxy.fail_with(fault)
    read_output()
    answers, reads = [], []
    for _ in range(3):
        mark = proxy.mark()
        answers.append(_mint(mint))
        reads.append(proxy.records(since=mark, operation="GetSecretValue"))
    # Then every answer is a token signed with the cached secret, and each stale use is counted
    assert [a.status for a in answers] == [200, 200, 200]
    for answer in answers:
        assert jwt.decode(answer.body["jwtToken"], secret, algorithms=["HS256"])["externalId"] == "user-1"
    output = read_output()
    assert metric_total(output, "SecretStaleUse") == 3
    assert metric_total(output, "SecretReadFailed") == 1
    # And only the first request read Secrets Manager (each attempt met the fault); the next two backed off
    assert reads[0]
    assert all(call.outcome == fault for call in reads[0])
    assert reads[1:] == [[], []]
    # And the mint read as its own role, which allowed every read
    assert {call.role for call in proxy.role_calls()} == {"MintTokenFunctionRole"}
    assert proxy.role_calls(allowed=False) == []


@pytest.mark.parametrize("fault", ALL_FAULTS)
def test_a_cold_mint_answers_503_with_retry_after(
    fault: str, proxy: SecretsManagerProxy, stored_secret: tuple[str, str], start_mint: Callable[..., MintContainer]
) -> None:
    # Given Secrets Manager failing before the container starts
    proxy.fail_with(fault)
    # When a new container gets its first request
    mint = start_mint(SIGNING_SECRET_ID=stored_secret[0])
    answer = _mint(mint)
    # Then it answers 503 with Retry-After, after its reads met the fault
    assert answer.status == 503
    assert answer.body["error"] == "signing_secret_unavailable"
    assert int(answer.headers["retry-after"]) >= 1
    reads = proxy.records(operation="GetSecretValue")
    assert reads
    assert all(call.outcome == fault for call in reads)


# --- the refresher: a rig, and each step brought to the point just before it runs --------------


class _ShortContext(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return int((SECRETS_MANAGER_RESERVE_SECONDS + 5) * 1000)


@dataclass
class Rig:
    """The stack's two secrets, the refresh function under its own role, Kustomer, and the admin's view."""

    admin: Any
    proxy: SecretsManagerProxy
    kustomer: FakeKustomer
    app: ModuleType
    signing: str
    api_key_secret: str
    versions: SecretVersions
    values: dict[str, str] = field(default_factory=dict, repr=False)

    def holds(self, name: str) -> None:
        """Kustomer now holds the value called `name`."""
        self.kustomer.answer(secret_reply(self.values[name]))

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.app.lambda_handler(event, _ShortContext())
        return result

    def start_rotation(self) -> str:
        """RotateSecret, as Secrets Manager does it: an AWSPENDING version without a value; its token."""
        return self._rotation().start(self.signing).token

    def rotate(self) -> None:
        """A whole rotation, which must complete."""
        run = self._rotation().rotate(self.signing)
        assert run.completed, run.error

    def step(self, token: str, step: str) -> dict[str, Any]:
        return {"SecretId": self.signing, "ClientRequestToken": token, "Step": step}

    def calls(self, since: int) -> list[str]:
        """The refresher's calls since `since`, as "Operation(SigningSecret)"."""
        names = {self.signing: "SigningSecret", self.api_key_secret: "ApiKeySecret"}
        return [
            f"{call.operation}({names.get(call.secret_id or '', call.secret_id)})"
            for call in self.proxy.records(since=since)
        ]

    def _rotation(self) -> SecretsManagerRotation:
        return SecretsManagerRotation(self.admin, in_process(self.run))


@pytest.fixture
def rig(
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    api_key: str,
    start_refresher: Callable[..., ModuleType],
    new_signing_secret: Callable[[int], str],
) -> Rig:
    signing = secretsmanager.create_secret(Name="FaultSigningSecret")["ARN"]
    api = secretsmanager.create_secret(Name="FaultApiKeySecret", SecretString=api_key)["ARN"]
    app = start_refresher(SIGNING_SECRET_ID=signing, API_KEY_SECRET_ID=api, KUSTOMER_API_BASE_URL=kustomer.url)
    versions = SecretVersions(secretsmanager, signing)
    values = {name: versions.name(name, new_signing_secret(64)) for name in "ABC"}
    return Rig(secretsmanager, sm_proxy, kustomer, app, signing, api, versions, values)


@dataclass
class Ready:
    """A step ready to run: its event, what completes the work after it ran once more, and how that ends."""

    event: dict[str, Any]
    complete: Callable[[], None]
    end: list[tuple[str | None, Labels]]  # as SecretVersions.by_value gives it
    raises: str | None = None  # the reason the step raises by design, even with no fault


def _then(rig: Rig, event: dict[str, Any], *after: dict[str, Any]) -> Callable[[], None]:
    def complete() -> None:
        rig.run(event)
        for step in after:
            rig.run(step)

    return complete


def _scheduled_new_value(rig: Rig) -> Ready:
    # A is current; Kustomer now holds B
    rig.holds("A")
    rig.run({})
    rig.holds("B")
    return Ready({}, _then(rig, {}), state(("A", PREVIOUS), ("B", CURRENT)))


def _scheduled_unchanged(rig: Rig) -> Ready:
    # A is current, stored by a scheduled run under the version id A gets from this API key; Kustomer still holds A
    rig.holds("A")
    rig.run({})
    return Ready({}, _then(rig, {}), state(("A", CURRENT)))


def _scheduled_value_returns(rig: Rig) -> Ready:
    # A, then B; Kustomer holds A again: A's version already exists, and AWSCURRENT moves back to it
    for name in ("A", "B"):
        rig.holds(name)
        rig.run({})
    rig.holds("A")
    return Ready({}, _then(rig, {}), state(("A", CURRENT), ("B", PREVIOUS)))


def _rotation_to_b(rig: Rig, *, steps_done: tuple[str, ...]) -> str:
    rig.holds("A")
    rig.run({})
    rig.holds("B")
    token = rig.start_rotation()
    for step in steps_done:
        rig.run(rig.step(token, step))
    return token


def _create(rig: Rig) -> Ready:
    token = _rotation_to_b(rig, steps_done=())
    steps = [rig.step(token, step) for step in ("createSecret", "setSecret", "testSecret", "finishSecret")]
    return Ready(steps[0], _then(rig, *steps), state(("A", PREVIOUS), ("B", CURRENT)))


def _create_reattempted_after_kustomer_changed(rig: Rig) -> Ready:
    # A rotation stored B as pending and stopped; Kustomer now holds C; the rotation is reattempted
    token = _rotation_to_b(rig, steps_done=("createSecret",))
    rig.holds("C")

    def complete() -> None:
        with pytest.raises(RefreshError, match="withdrawn"):
            rig.run(rig.step(token, "createSecret"))
        rig.rotate()

    return Ready(
        rig.step(token, "createSecret"), complete, state(("A", PREVIOUS), ("B", ()), ("C", CURRENT)), "withdrawn"
    )


def _set(rig: Rig) -> Ready:
    token = _rotation_to_b(rig, steps_done=("createSecret",))
    steps = [rig.step(token, step) for step in ("setSecret", "testSecret", "finishSecret")]
    return Ready(steps[0], _then(rig, *steps), state(("A", PREVIOUS), ("B", CURRENT)))


def _test(rig: Rig) -> Ready:
    token = _rotation_to_b(rig, steps_done=("createSecret", "setSecret"))
    steps = [rig.step(token, step) for step in ("testSecret", "finishSecret")]
    return Ready(steps[0], _then(rig, *steps), state(("A", PREVIOUS), ("B", CURRENT)))


def _finish(rig: Rig) -> Ready:
    token = _rotation_to_b(rig, steps_done=("createSecret", "setSecret", "testSecret"))
    finish = rig.step(token, "finishSecret")
    return Ready(finish, _then(rig, finish), state(("A", PREVIOUS), ("B", CURRENT)))


def _finish_after_a_scheduled_run_stored_the_value(rig: Rig) -> Ready:
    # The rotation stored B as pending; a scheduled run stored B as current in its own version meanwhile
    token = _rotation_to_b(rig, steps_done=("createSecret",))
    rig.run({})
    for step in ("setSecret", "testSecret"):
        rig.run(rig.step(token, step))
    finish = rig.step(token, "finishSecret")
    return Ready(finish, _then(rig, finish), state(("A", PREVIOUS), ("B", ()), ("B", CURRENT)))


@dataclass(frozen=True)
class Flow:
    prepare: Callable[[Rig], Ready]
    # The step's calls to Secrets Manager, in order, when nothing fails (test_the_matrix_knows_every_call checks it).
    calls: tuple[str, ...]
    # Calls whose fault leaves a documented half-way state instead of the state before: index -> that state.
    halfway: dict[int, list[tuple[str | None, Labels]]] = field(default_factory=dict)


GET_KEY, GET_SECRET = "GetSecretValue(ApiKeySecret)", "GetSecretValue(SigningSecret)"
DESCRIBE, PUT = "DescribeSecret(SigningSecret)", "PutSecretValue(SigningSecret)"
STAGE = "UpdateSecretVersionStage(SigningSecret)"
# A scheduled run lists the versions: AWSCURRENT on the version id Kustomer's value gets from the API key means
# unchanged (nothing to read); after a write it lists them again, to withdraw rotations that never finished.
LIST = "ListSecretVersionIds(SigningSecret)"
FLOWS: dict[str, Flow] = {
    "scheduled-new-value": Flow(
        _scheduled_new_value,
        # The first listing finds AWSCURRENT on another version than B's, so A is read and compared.
        (GET_KEY, LIST, GET_SECRET, PUT, LIST),
        # B is stored and current before the second listing: the run raises, and the write stays.
        halfway={4: state(("A", PREVIOUS), ("B", CURRENT))},
    ),
    # Most runs: the listing shows AWSCURRENT on the version this value gets from this key, so nothing is read.
    "scheduled-unchanged": Flow(_scheduled_unchanged, (GET_KEY, LIST)),
    "scheduled-value-returns": Flow(
        _scheduled_value_returns,
        (GET_KEY, LIST, GET_SECRET, PUT, STAGE, LIST),
        halfway={5: state(("A", CURRENT), ("B", PREVIOUS))},
    ),
    "createSecret": Flow(_create, (DESCRIBE, GET_SECRET, GET_KEY, PUT)),
    "createSecret-reattempt-outdated": Flow(
        _create_reattempted_after_kustomer_changed, (DESCRIBE, GET_SECRET, GET_KEY, STAGE)
    ),
    "setSecret": Flow(_set, (DESCRIBE,)),
    "testSecret": Flow(_test, (DESCRIBE, GET_SECRET, GET_KEY)),
    "finishSecret": Flow(
        _finish,
        (DESCRIBE, DESCRIBE, GET_SECRET, GET_SECRET, STAGE, STAGE),
        # AWSCURRENT moved, AWSPENDING not yet taken off: one of the two states a successful rotation ends
        # in (API_RotateSecret); the next step invoked for this version takes AWSPENDING off.
        halfway={5: state(("A", PREVIOUS), ("B", ("AWSCURRENT", "AWSPENDING")))},
    ),
    "finishSecret-value-already-current": Flow(
        _finish_after_a_scheduled_run_stored_the_value, (DESCRIBE, DESCRIBE, GET_SECRET, GET_SECRET, STAGE)
    ),
}
MATRIX = [(name, index) for name, flow in FLOWS.items() for index in range(len(flow.calls))]


def _nth(calls: tuple[str, ...], index: int) -> tuple[str, int]:
    """The operation of calls[index], and which of that operation's calls it is (from 1)."""
    operation = calls[index].split("(")[0]
    return operation, sum(1 for call in calls[: index + 1] if call.split("(")[0] == operation)


@pytest.mark.parametrize("flow_name", FLOWS)
def test_the_matrix_knows_every_call_of_each_step(flow_name: str, rig: Rig) -> None:
    # Given the step ready to run
    flow = FLOWS[flow_name]
    ready = flow.prepare(rig)
    # When it runs with nothing failing
    mark = rig.proxy.mark()
    if ready.raises:
        with pytest.raises(RefreshError, match=ready.raises):
            rig.run(ready.event)
    else:
        rig.run(ready.event)
    # Then its calls are exactly the ones the fault matrix below fails one by one
    assert rig.calls(since=mark) == list(flow.calls)


@pytest.mark.parametrize(
    ("flow_name", "index"),
    MATRIX,
    ids=[
        f"{name}-{FLOWS[name].calls[index].split('(')[0]}#{_nth(FLOWS[name].calls, index)[1]}" for name, index in MATRIX
    ],
)
def test_a_fault_on_any_one_call_changes_nothing_and_a_rerun_completes(flow_name: str, index: int, rig: Rig) -> None:
    # Given the step ready to run, and Secrets Manager failing this one call of it and passing every other
    flow = FLOWS[flow_name]
    ready = flow.prepare(rig)
    before = rig.versions.snapshot()
    operation, nth = _nth(flow.calls, index)
    rig.proxy.fail(ONE_CALL_FAULT, operation=operation, call=nth)
    mark = rig.proxy.mark()
    # When the step runs
    with pytest.raises(ClientError) as raised:
        rig.run(ready.event)
    rig.proxy.heal()
    # Then it raised for that fault, which met exactly that call: every call before it passed, none came after
    assert raised.value.response["Error"]["Code"] == FAULTS[ONE_CALL_FAULT][1]
    assert rig.calls(since=mark) == list(flow.calls[: index + 1])
    assert [call.outcome for call in rig.proxy.records(since=mark)] == [FORWARDED] * index + [ONE_CALL_FAULT]
    # And every version and label is exactly as before, or in the documented half-way state
    if index in flow.halfway:
        assert rig.versions.by_value() == flow.halfway[index]
    else:
        assert rig.versions.snapshot() == before
    # When Secrets Manager answers again and the step runs again, with what follows it
    ready.complete()
    # Then it ends as a run that met no fault does, and the role needed nothing it lacks
    assert rig.versions.by_value() == ready.end
    assert rig.proxy.role_calls(allowed=False) == []


WRITES = {
    "scheduled-PutSecretValue": ("scheduled-new-value", "PutSecretValue"),
    "createSecret-PutSecretValue": ("createSecret", "PutSecretValue"),
    "finishSecret-UpdateSecretVersionStage": ("finishSecret", "UpdateSecretVersionStage"),
}


@pytest.mark.parametrize("fault", ALL_FAULTS)
@pytest.mark.parametrize("write", WRITES)
def test_every_kind_of_fault_on_a_write_changes_nothing(write: str, fault: str, rig: Rig) -> None:
    # Given a step ready to run, and Secrets Manager failing every call of its (first) write
    flow_name, operation = WRITES[write]
    ready = FLOWS[flow_name].prepare(rig)
    before = rig.versions.snapshot()
    rig.proxy.fail(fault, operation=operation)
    mark = rig.proxy.mark()
    # When the step runs
    with pytest.raises((BotoCoreError, ClientError)) as raised:
        rig.run(ready.event)
    rig.proxy.heal()
    # Then it raised for the fault, after the SDK tried the write (again, for the faults it retries)
    assert str(raised.value)
    attempts = rig.proxy.records(since=mark, operation=operation)
    assert len(attempts) == (SDK_ATTEMPTS if fault in SDK_RETRIES else 1)
    assert all(attempt.outcome == fault and not attempt.applied for attempt in attempts)
    # And each attempt asked for the same thing (a PutSecretValue retried under one ClientRequestToken)
    assert all(dict(attempt.request) == dict(attempts[0].request) for attempt in attempts)
    # And the secret, its versions and labels are exactly as before; a run after the fault completes
    assert rig.versions.snapshot() == before
    ready.complete()
    assert rig.versions.by_value() == ready.end
    assert rig.proxy.role_calls(allowed=False) == []


AFTER_THE_PUT = {
    "scheduled-new-value": state(("A", PREVIOUS), ("B", CURRENT)),
    "createSecret": state(("A", CURRENT), ("B", PENDING)),
}


@pytest.mark.parametrize("landed", [False, True], ids=["refused-once", "landed-answer-lost"])
@pytest.mark.parametrize("flow_name", AFTER_THE_PUT)
def test_a_put_the_sdk_retries_stores_the_value_once(flow_name: str, landed: bool, rig: Rig) -> None:
    # Given a step whose PutSecretValue fails once with a 500: before Secrets Manager saw it, or after it
    # stored the value (the answer is lost)
    ready = FLOWS[flow_name].prepare(rig)
    rig.proxy.fail("internal-error", operation="PutSecretValue", call=1, after_forwarding=landed)
    mark = rig.proxy.mark()
    # When the step runs
    rig.run(ready.event)
    # Then the SDK sent the same request again (same ClientRequestToken), which succeeded
    puts = rig.proxy.records(since=mark, operation="PutSecretValue")
    assert [(put.outcome, put.applied) for put in puts] == [("internal-error", landed), (FORWARDED, True)]
    assert dict(puts[0].request) == dict(puts[1].request)
    # And B is stored once, in one version, with the step's labels
    assert rig.versions.by_value() == AFTER_THE_PUT[flow_name]


def test_a_stage_move_whose_answer_is_lost_ends_in_a_state_the_next_run_completes(rig: Rig) -> None:
    # Given finishSecret ready to run, and its move of AWSCURRENT landing in Secrets Manager with the answer lost
    ready = FLOWS["finishSecret"].prepare(rig)
    rig.proxy.fail("internal-error", operation="UpdateSecretVersionStage", call=1, after_forwarding=True)
    mark = rig.proxy.mark()
    # When the step runs
    try:
        rig.run(ready.event)
    except ClientError as exc:
        refused_retry: str | None = exc.response["Error"]["Code"]
    else:
        refused_retry = None
    rig.proxy.heal()
    moves = rig.proxy.records(since=mark, operation="UpdateSecretVersionStage")
    assert moves[0].outcome == "internal-error"
    assert moves[0].applied
    # Then B is current (the move landed), and whatever the SDK's retry met, a re-run ends the rotation cleanly
    assert rig.versions.current() == "B"
    ready.complete()
    assert rig.versions.by_value() == ready.end, refused_retry
