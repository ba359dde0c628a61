"""Fuzzing the refresher with hypothesis, against a Kustomer whose answers are generated: it can write, and it does.

Hypothesis draws what Kustomer answers (valid secrets; near-valid and invalid bodies; statuses;
headers, Retry-After and x-ratelimit-reset among them) and what happens (scheduled runs,
rotations, scheduled runs inside rotations). Whether an answer is valid is known by
construction, not by asking the code under test. Each example starts from a fresh pair of
secrets; after every invocation the test compares Secrets Manager's state before and after
(read as the account's admin) and reads the proxy's record of the refresher's calls:

- every value written is the secret of the valid answer that ended that invocation's read;
- an invocation whose read ended on an invalid answer raises and changes nothing; every
  failing invocation changes nothing, except createSecret withdrawing (AWSPENDING off) a
  rotation whose pending value Kustomer no longer holds;
- a valid answer is stored by a scheduled run, and AWSCURRENT is then that value;
- testSecret passes only when Kustomer holds the pending value as it reads, and a finished
  rotation leaves AWSCURRENT on the last secret Kustomer gave, except when a scheduled run lands
  between testSecret and finishSecret (a known window: the next scheduled run repairs it, which
  each example's last run checks).

Retry waits are recorded, not slept (urllib3's sleep is replaced), so big Retry-After values cost nothing.
`make test` runs the "fast" profile; `make fuzz` runs HYPOTHESIS_PROFILE=fuzz (10,000 examples).
"""

from __future__ import annotations

import gzip
import itertools
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from kustomer_token.kustomer import KustomerError, KustomerSettingsClient
from kustomer_token.refresh import SECRETS_MANAGER_RESERVE_SECONDS, RefreshError, SecretRefresher
from kustomer_token.secrets_store import SecretStore
from kustomer_token.settings import RefreshSettings
from tests.support.clocks import RetryWaits
from tests.support.leaks import LEAK_WATCH
from tests.support.secret_versions import SecretVersions, Snapshot, fingerprint
from tools.harness.fake_kustomer import HTML_PAGE, FakeKustomer, Reply
from tools.harness.iam import role_client
from tools.harness.rotation import SecretsManagerRotation, in_process
from tools.harness.sm_proxy import SecretsManagerProxy

FUZZ_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BUDGET = SECRETS_MANAGER_RESERVE_SECONDS + 5
WRITES = ("PutSecretValue", "UpdateSecretVersionStage")

# Every generated secret starts with this, so the leak check can watch each one (a short one alone would be noise).
MARK = "fz" + secrets.token_hex(6)
MAX_SECRET_BYTES = 4096  # the contract's limit on a stored value
_SAFE = string.ascii_letters + string.digits + "-_.~+/=!#$%&*:;<>?@[]^{|}" + "éß東🙂"
_names = itertools.count(1)


def _watched(value: str) -> str:
    return LEAK_WATCH.register(value, "signing secret")


def _exactly_4096_bytes() -> str:
    return MARK + "k" * (MAX_SECRET_BYTES - len(MARK))


def _4096_bytes_in_2055_characters() -> str:
    return MARK + "é" * ((MAX_SECRET_BYTES - len(MARK)) // 2)


valid_secrets = st.one_of(
    st.text(alphabet=_SAFE, max_size=40).map(lambda tail: MARK + tail),
    st.builds(_exactly_4096_bytes),
    st.builds(_4096_bytes_in_2055_characters),
).map(_watched)


class Answer:
    """One reply of Kustomer's, and the secret it carries when it is a valid answer (known by construction).

    Not a dataclass: hypothesis prints a failing example field by field, and its body holds the secret.
    """

    def __init__(self, reply: Reply, secret: str | None, kind: str) -> None:
        self.reply = reply
        self.secret = secret
        self.kind = kind  # what was drawn

    def __repr__(self) -> str:
        carried = f"secret {fingerprint(self.secret)}" if self.secret else "no valid secret"
        return f"Answer({self.reply.status} {self.kind}, {carried}, headers={self.reply.headers})"


def _document(secret: object, json_api: bool) -> dict[str, Any]:
    attributes = {"secret": secret, "enabled": True}
    if json_api:
        return {"data": {"type": "customer_auth_settings", "id": "0123456789abcdef", "attributes": attributes}}
    return {"attributes": attributes}


content_types = st.sampled_from(["application/json", "application/vnd.api+json; charset=utf-8", "text/html", None])
waits = st.fixed_dictionaries(
    {},
    optional={
        "Retry-After": st.sampled_from(["0", "1", "3", "30", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"]),
        "x-ratelimit-reset": st.sampled_from(["0", "0.5", "2", "1000000001", "later"]),
    },
)


@st.composite
def valid_answers(draw: st.DrawFn, pool: list[str]) -> Answer:
    secret = draw(st.sampled_from(pool))
    body = json.dumps(_document(secret, draw(st.booleans())), ensure_ascii=draw(st.booleans())).encode()
    headers = dict(draw(waits))
    content_type = draw(content_types)
    if content_type:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return Answer(Reply(200, body, headers), secret, "valid" + (" gzip" if "Content-Encoding" in headers else ""))


@st.composite
def near_valid_answers(draw: st.DrawFn, pool: list[str]) -> Answer:
    """A 200 that is almost right: the value, the shape, the bytes or the connection is wrong."""
    secret = draw(st.sampled_from(pool))
    json_api = draw(st.booleans())
    flaw = draw(
        st.sampled_from(
            [
                *("padded", "empty", "too-long", "not-a-string", "shape", "truncated", "trailing", "not-utf8"),
                *("huge", "bogus-gzip", "cut-off"),
            ]
        )
    )
    value: object = secret
    if flaw == "padded":
        pad = draw(st.sampled_from([" ", "\n", "\t", "\r\n", "\u00a0", "\u2003"]))
        value = draw(st.sampled_from([pad + secret, secret + pad, pad + secret + pad]))
    elif flaw == "empty":
        value = ""
    elif flaw == "too-long":
        value = _watched(
            draw(st.sampled_from([MARK + "k" * (MAX_SECRET_BYTES + 1 - len(MARK)), MARK + "é" * 2042]))
        )  # 4097 bytes; 4098 bytes in 2056 characters
    elif flaw == "not-a-string":
        value = draw(st.sampled_from([12345, None, True, 1.5, [secret], {"value": secret}]))
    document: object = _document(value, json_api)
    if flaw == "shape":
        document = draw(
            st.sampled_from(
                [
                    {"data": [{"attributes": {"secret": secret}}]},
                    {"data": {"attributes": {"Secret": secret}}},
                    {"data": {"secret": secret}},
                    {"secret": secret},
                    {"attributes": secret},
                    [{"attributes": {"secret": secret}}],
                    secret,
                    None,
                ]
            )
        )
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    if flaw == "truncated":
        body = body[: draw(st.integers(0, len(body) - 1))]
    elif flaw == "trailing":
        body += draw(st.sampled_from([b"}", b" x", b"\x00", b'{"more": 1}']))
    elif flaw == "not-utf8":
        body = b"\xff\xfe" + body
    elif flaw == "huge":
        body = json.dumps({**_document(secret, json_api), "padding": "x" * 70_000}).encode()
    elif flaw == "bogus-gzip":
        headers["Content-Encoding"] = "gzip"
    return Answer(Reply(200, body, headers, cut_off=flaw == "cut-off"), None, flaw)


@st.composite
def invalid_answers(draw: st.DrawFn, pool: list[str]) -> Answer:
    """Not a 200, or not JSON at all; a valid document under another status is still not an answer."""
    status = draw(st.sampled_from([200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 504]))
    kind = draw(st.sampled_from(["valid-document", "errors", "html", "empty", "bytes"]))
    if status in (204, 304) or kind == "empty":
        body = b""  # no body: a 204 or 304 may not have one
    elif kind == "valid-document":
        body = json.dumps(_document(draw(st.sampled_from(pool)), True)).encode()
    elif kind == "errors":
        body = json.dumps({"errors": [{"status": status, "title": draw(st.text(max_size=30))}]}).encode()
    elif kind == "html":
        body = HTML_PAGE
    else:
        body = b"<" + draw(st.binary(max_size=60))
    if status == 200 and kind == "valid-document":
        status = 202
    headers = dict(draw(waits))
    if status in (301, 302):
        headers["Location"] = draw(st.sampled_from(["/v1/auth/customer/settings", "https://evil.example/"]))
    return Answer(Reply(status, body, headers), None, kind)


def answer_lists(pool: list[str]) -> st.SearchStrategy[list[Answer]]:
    """What Kustomer answers to one read, retries included (the last answer repeats)."""
    # Valid answers weigh as much as the rest together, so rotations get far enough to write.
    one = st.one_of(valid_answers(pool), valid_answers(pool), near_valid_answers(pool), invalid_answers(pool))
    return st.lists(one, min_size=1, max_size=4)


@dataclass(frozen=True)
class Scheduled:
    answers: list[Answer]


@dataclass(frozen=True)
class Rotation:
    create: list[Answer]
    test: list[Answer]
    scheduled_after_create: Scheduled | None = None
    scheduled_before_finish: Scheduled | None = None  # the known window


@dataclass(frozen=True)
class Example:
    runs: list[Scheduled | Rotation]
    last: Scheduled = field(repr=False)  # one valid answer: the repair every example ends with


@st.composite
def examples(draw: st.DrawFn) -> Example:
    pool = draw(st.lists(valid_secrets, min_size=1, max_size=3, unique=True))
    answers = answer_lists(pool)
    maybe_scheduled = st.none() | answers.map(Scheduled)
    runs = draw(
        st.lists(
            st.one_of(
                answers.map(Scheduled),
                st.builds(Rotation, answers, answers, maybe_scheduled, maybe_scheduled),
            ),
            min_size=1,
            max_size=3,
        )
    )
    return Example(runs, Scheduled([draw(valid_answers(pool))]))


@dataclass
class Outcome:
    result: dict[str, Any] | None
    error: Exception | None
    answer: Answer | None  # the answer that ended the invocation's read, None when it read nothing
    before: Snapshot
    after: Snapshot
    puts: list[str]  # fingerprints of the values PutSecretValue was asked to store
    writes: list[str]  # the write operations it called


class Trial:
    """One example: a fresh pair of secrets, the refresher under its own role, and the checks after each invocation."""

    def __init__(self, admin: Any, proxy: SecretsManagerProxy, kustomer: FakeKustomer, client: Any) -> None:
        number = next(_names)
        self.signing = admin.create_secret(Name=f"FuzzSigningSecret-{number}")["ARN"]
        api = admin.create_secret(Name=f"FuzzApiKeySecret-{number}", SecretString=kustomer.api_key)["ARN"]
        proxy.reset()
        assert proxy.role_check is not None
        proxy.role_check.bind(SigningSecret=self.signing, ApiKeySecret=api)
        self.proxy = proxy
        self.kustomer = kustomer
        self.versions = SecretVersions(admin, self.signing)
        self.refresher = SecretRefresher(
            RefreshSettings(self.signing, api, kustomer.url),
            SecretStore(client),
            KustomerSettingsClient(kustomer.url, connect_timeout=1, read_timeout=1, backoff_factor=0.01),
        )
        # Only RotateSecret's part is used: the test invokes each step itself, to check it.
        self.rotation = SecretsManagerRotation(admin, in_process(lambda event: self.refresher.handle(event, BUDGET)))
        self.last_good: str | None = None
        self._state: Snapshot | None = None  # the state after the last invocation; nothing else changes it

    def state(self) -> Snapshot:
        if self._state is None:
            self._state = self.versions.snapshot()
        return self._state

    def current(self) -> str | None:
        return next((value for labels, value in self.state().values() if "AWSCURRENT" in labels), None)

    def invoke(self, event: dict[str, Any], answers: list[Answer]) -> Outcome:
        self.kustomer.answer(*(answer.reply for answer in answers))
        by_reply = {id(answer.reply): answer for answer in answers}
        served_mark, call_mark = len(self.kustomer.served), self.proxy.mark()
        before = self.state()
        self._state = None
        result: dict[str, Any] | None = None
        error: Exception | None = None
        try:
            result = self.refresher.handle(event, BUDGET)
        except (RefreshError, KustomerError) as exc:  # anything else escaping fails the example
            error = exc
        served = self.kustomer.served[served_mark:]
        answer = by_reply[id(served[-1])] if served else None
        calls = self.proxy.records(since=call_mark)
        outcome = Outcome(
            result,
            error,
            answer,
            before,
            self.state(),
            [fingerprint(call.secret_string or "") for call in calls if call.operation == "PutSecretValue"],
            [call.operation for call in calls if call.operation in WRITES],
        )
        self._check_every_invocation(outcome)
        # Shown by --hypothesis-show-statistics: how often each step wrote, and how often it refused
        wrote = "wrote" if outcome.writes else "no write"
        hypothesis_event(f"{event.get('Step', 'scheduled')}: {wrote}, {'raised' if error else 'ok'}")
        if answer is not None and answer.secret is not None:
            self.last_good = answer.secret
        return outcome

    def _check_every_invocation(self, outcome: Outcome) -> None:
        read = outcome.answer
        # Every value written is the secret of the valid answer that ended this invocation's read
        for put in outcome.puts:
            assert read is not None
            assert read.secret is not None
            assert put == fingerprint(read.secret)
        # A read that ended on an invalid answer raises, and changes nothing
        if read is not None and read.secret is None:
            assert outcome.error is not None
            assert outcome.after == outcome.before
            assert outcome.writes == []

    def scheduled(self, run: Scheduled) -> None:
        outcome = self.invoke({}, run.answers)
        read_valid = outcome.answer is not None and outcome.answer.secret is not None
        # A scheduled run fails exactly when its read did not end on a valid answer
        assert (outcome.error is None) == read_valid, outcome.error
        if outcome.error is not None:
            assert outcome.after == outcome.before
            assert outcome.writes == []
            return
        # A scheduled run that succeeded read a valid answer and left AWSCURRENT on it
        assert outcome.answer is not None
        assert outcome.answer.secret is not None
        assert self.current() == self.versions.value_name(outcome.answer.secret)

    def rotate(self, run: Rotation) -> None:
        token = self.rotation.start(self.signing).token  # a new rotation, or the incomplete one reattempted
        self._state = None  # RotateSecret may have added a version

        def step(name: str, answers: list[Answer]) -> Outcome:
            return self.invoke({"SecretId": self.signing, "ClientRequestToken": token, "Step": name}, answers)

        created = step("createSecret", run.create)
        if created.error is not None:
            if isinstance(created.error, RefreshError) and created.error.reason == "PendingOutdated":
                # The one failure that writes: AWSPENDING taken off the pending version, nothing else
                withdrawn = dict(created.before)
                labels, value = withdrawn[token]
                withdrawn[token] = (tuple(label for label in labels if label != "AWSPENDING"), value)
                assert created.after == withdrawn
                assert created.writes == ["UpdateSecretVersionStage"]
            else:
                assert created.after == created.before
                assert created.writes == []
                assert created.answer is None or created.answer.secret is None
            return
        # createSecret read Kustomer and its version now holds what Kustomer gave
        assert created.answer is not None
        assert created.answer.secret is not None
        assert created.after[token] == (("AWSPENDING",), self.versions.value_name(created.answer.secret))
        if run.scheduled_after_create:
            self.scheduled(run.scheduled_after_create)
        assert step("setSecret", []).error is None
        pending = self.state()[token][1]
        tested = step("testSecret", run.test)
        # testSecret writes nothing, and passes exactly when Kustomer gave the pending value as it read
        assert tested.after == tested.before
        assert tested.writes == []
        held = tested.answer.secret if tested.answer is not None else None
        assert (tested.error is None) == (held is not None and self.versions.value_name(held) == pending)
        if tested.error is not None:
            return
        if run.scheduled_before_finish:
            self.scheduled(run.scheduled_before_finish)
        finished = step("finishSecret", [])
        assert finished.error is None
        assert finished.puts == []
        if run.scheduled_before_finish is None:
            assert self.last_good is not None
            assert self.current() == self.versions.value_name(self.last_good)


@pytest.fixture
def refresher_client(sm_proxy: SecretsManagerProxy) -> Any:
    """One Secrets Manager client signing as the refresher's role, for every example (clients are slow to make)."""
    return role_client("RefreshSecretFunctionRole", sm_proxy.url)


@pytest.mark.timeout(3600)  # make fuzz: 10,000 examples
@FUZZ_SETTINGS
@given(example=examples())
def test_only_a_value_kustomer_gave_in_a_valid_answer_is_ever_written(
    example: Example,
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    refresher_client: Any,
    retry_waits: RetryWaits,
) -> None:
    # Given a fresh pair of secrets, the API key stored
    trial = Trial(secretsmanager, sm_proxy, kustomer, refresher_client)
    # When the runs happen, Kustomer answering as drawn (each invocation is checked as it ends)
    for run in example.runs:
        if isinstance(run, Scheduled):
            trial.scheduled(run)
        else:
            trial.rotate(run)
    # Then a last scheduled run with a valid answer leaves AWSCURRENT on it, whatever came before
    trial.scheduled(example.last)
    # And the refresher never needed a permission its role lacks
    assert sm_proxy.role_calls(allowed=False) == []


def _events(signing_arn: str, current_version: str) -> st.SearchStrategy[Any]:
    json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    json_values = st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    )
    rotation_like = st.fixed_dictionaries(
        {},
        optional={
            "SecretId": st.sampled_from([signing_arn, "FuzzSigningSecret", "other-secret"]) | json_values,
            "ClientRequestToken": st.sampled_from([current_version, "0" * 36]) | json_values,
            "Step": st.sampled_from(["createSecret", "setSecret", "testSecret", "finishSecret", "dance"]) | json_values,
        },
    )
    return rotation_like | json_values


@pytest.mark.timeout(3600)  # make fuzz: 10,000 examples
@FUZZ_SETTINGS
@given(data=st.data())
def test_every_event_is_a_scheduled_run_or_a_rotation_step_that_raises_clearly_or_writes_nothing(
    data: st.DataObject,
    secretsmanager: Any,
    sm_proxy: SecretsManagerProxy,
    kustomer: FakeKustomer,
    refresher_client: Any,
) -> None:
    # Given a fresh secret holding A, and Kustomer holding B
    trial = Trial(secretsmanager, sm_proxy, kustomer, refresher_client)
    a, b = (trial.versions.name(name, _watched(MARK + secrets.token_hex(16))) for name in "AB")
    trial.scheduled(Scheduled([Answer(Reply(200, json.dumps(_document(a, True)).encode()), a, "valid")]))
    kustomer.answer(Reply(200, json.dumps(_document(b, True)).encode()))
    before = trial.versions.snapshot()
    current = next(version for version, (labels, _) in before.items() if "AWSCURRENT" in labels)
    # And any event, rotation-like or not, some naming the real secret and its current version
    event = data.draw(_events(trial.signing, current))
    mark = trial.proxy.mark()
    # When the refresher gets it
    error: Exception | None = None
    try:
        result = trial.refresher.handle(event, BUDGET)
    except (RefreshError, KustomerError) as exc:  # anything else escaping fails the example
        error = exc
    after = trial.versions.snapshot()
    writes = [call.operation for call in trial.proxy.records(since=mark) if call.operation in WRITES]
    if error is not None:
        # Then either it raised an error that says something, and changed nothing
        assert str(error)
        assert after == before
        assert writes == []
    elif isinstance(event, dict) and any(key in event for key in ("SecretId", "ClientRequestToken", "Step")):
        # Or it was a step for the version that is already current, which changes nothing
        assert result == {"step": event["Step"], "versionId": current, "changed": False}
        assert after == before
        assert writes == []
    else:
        # Or it was a scheduled run, which stored Kustomer's secret
        assert result["changed"] is True
        assert trial.versions.current() == "B"
