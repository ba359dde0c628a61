"""The stale-if-error bound and value checks of SigningSecretCache, with a scripted provider and clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kustomer_token.errors import SigningSecretUnavailable
from kustomer_token.observability import secret_fingerprint
from kustomer_token.secret_cache import FAILURE_BACKOFF_SECONDS, SigningSecretCache


class ScriptedProvider:
    """Stands in for Secrets Manager: answers each read from a script."""

    def __init__(self, *answers: object) -> None:
        self._answers = list(answers)
        self.reads = 0

    def read(self, secret_id: str) -> Any:
        self.reads += 1
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(provider: ScriptedProvider, clock: Clock, ttl: int = 60, max_stale: int = 120) -> SigningSecretCache:
    return SigningSecretCache(
        "secret-id", ttl_seconds=ttl, max_stale_seconds=max_stale, reader_factory=lambda: provider, clock=clock
    )


def test_stale_use_stops_at_the_bound(new_signing_secret: Callable[[int], str]) -> None:
    # Given a value read at t=1000 with TTL 60 and a stale bound of 120, then an outage
    secret = new_signing_secret(48)
    clock = Clock()
    cache = _cache(ScriptedProvider(secret, ConnectionError("down")), clock)
    assert cache.get() == secret
    # Then the value is served up to TTL + bound after it was read
    clock.now = 1000 + 60 + 120
    assert cache.get() == secret
    # And not one second more
    clock.now = 1000 + 60 + 120 + FAILURE_BACKOFF_SECONDS + 1
    with pytest.raises(SigningSecretUnavailable) as raised:
        cache.get()
    assert raised.value.headers == {"Retry-After": str(FAILURE_BACKOFF_SECONDS)}


def test_after_a_failure_the_next_read_waits_for_the_back_off(new_signing_secret: Callable[[int], str]) -> None:
    secret = new_signing_secret(48)
    clock = Clock()
    provider = ScriptedProvider(secret, ConnectionError("down"))
    cache = _cache(provider, clock)
    cache.get()
    clock.now += 61
    cache.get()
    reads_after_failure = provider.reads
    clock.now += FAILURE_BACKOFF_SECONDS - 1
    cache.get()
    assert provider.reads == reads_after_failure
    # The back-off ends FAILURE_BACKOFF_SECONDS after the failure, to the second
    clock.now += 1
    cache.get()
    assert provider.reads == reads_after_failure + 1


def test_the_value_is_read_again_when_the_ttl_has_run_out_to_the_second(
    new_signing_secret: Callable[[int], str],
) -> None:
    first, second = new_signing_secret(48), new_signing_secret(48)
    clock = Clock()
    provider = ScriptedProvider(first, second)
    cache = _cache(provider, clock, ttl=60)
    assert cache.get() == first
    clock.now += 59.999
    assert cache.get() == first
    clock.now = 1000 + 60
    assert cache.get() == second
    assert provider.reads == 2


def test_a_zero_bound_turns_stale_use_off(new_signing_secret: Callable[[int], str]) -> None:
    clock = Clock()
    cache = _cache(ScriptedProvider(new_signing_secret(48), ConnectionError("down")), clock, ttl=60, max_stale=0)
    cache.get()
    clock.now += 61
    with pytest.raises(SigningSecretUnavailable):
        cache.get()


def test_a_short_secret_signs_but_warns_once_per_container(
    new_signing_secret: Callable[[int], str], read_output: Callable[[], list[dict[str, Any]]]
) -> None:
    short = new_signing_secret(16)
    clock = Clock()
    cache = _cache(ScriptedProvider(short), clock, ttl=0)
    read_output()
    for _ in range(3):
        assert cache.get() == short
        clock.now += 1
    warnings = [line for line in read_output() if line.get("level") == "WARNING"]
    assert [line["message"] for line in warnings] == [
        "the Kustomer signing secret is shorter than 32 bytes; tokens are still signed, as Kustomer expects, "
        "but consider regenerating it in Kustomer"
    ]


@pytest.mark.parametrize(("size", "warned"), [(31, True), (32, False)])
def test_a_secret_of_32_bytes_is_long_enough(
    size: int, warned: bool, read_output: Callable[[], list[dict[str, Any]]]
) -> None:
    cache = _cache(ScriptedProvider("k" * size), Clock())
    read_output()
    cache.get()
    warnings = [line for line in read_output() if line.get("level") == "WARNING"]
    assert bool(warnings) is warned


def test_signing_with_a_cached_value_is_logged_with_its_age_and_reason(
    new_signing_secret: Callable[[int], str], capfd: pytest.CaptureFixture[str]
) -> None:
    secret = new_signing_secret(48)
    clock = Clock()
    cache = _cache(ScriptedProvider(secret, ConnectionError("down")), clock)
    assert cache.get() == secret
    clock.now = 1000 + 61
    assert cache.get() == secret
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    stale = [r for r in records if r.get("message") == "signing secret read failed; signing with the cached value"]
    assert len(stale) == 1
    assert stale[0]["cached_age_seconds"] == 61
    assert stale[0]["reason"]


def test_an_unavailable_secret_says_to_try_again() -> None:
    cache = _cache(ScriptedProvider(ConnectionError("down")), Clock())
    with pytest.raises(SigningSecretUnavailable) as raised:
        cache.get()
    assert str(raised.value) == "the signing secret is not available yet; try again shortly"


def test_each_new_value_is_logged_once_by_its_fingerprint(
    new_signing_secret: Callable[[int], str], capfd: pytest.CaptureFixture[str]
) -> None:
    first, second = new_signing_secret(48), new_signing_secret(48)
    clock = Clock()
    cache = _cache(ScriptedProvider(first, first, second), clock)
    for step in range(3):
        clock.now = 1000 + step * 61
        cache.get()
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    loaded = [r.get("secret_fingerprint") for r in records if r.get("message") == "signing secret loaded"]
    assert loaded == [secret_fingerprint(first), secret_fingerprint(second)]


def test_an_unusable_new_value_is_refused_once_and_the_cached_one_signs_meanwhile(
    new_signing_secret: Callable[[int], str], read_output: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a good value cached, then the stored value replaced by one padded with whitespace
    good = new_signing_secret(48)
    clock = Clock()
    provider = ScriptedProvider(good, f" {good} ")
    cache = _cache(provider, clock, ttl=60, max_stale=120)
    assert cache.get() == good
    read_output()
    # When the TTL runs out, and again during the back-off
    clock.now += 60
    assert cache.get() == good
    clock.now += 1
    assert cache.get() == good
    # Then the new value was read once, refused once with its problem, and the cached value signed
    assert provider.reads == 2
    output = read_output()
    problem = "has leading or trailing whitespace; store the secret exactly as Kustomer gives it"
    refused = [line for line in output if line.get("message") == "the stored signing secret cannot be used"]
    assert [(line["level"], line["problem"]) for line in refused] == [("ERROR", problem)]
    stale_use = "signing secret read failed; signing with the cached value"
    stale = [line for line in output if line.get("message") == stale_use]
    assert [(line["reason"], line["cached_age_seconds"]) for line in stale] == [("UnusableValue", 60)]
    # And after the back-off, within the TTL, the stored value is read again: still refused, so reported again
    clock.now += FAILURE_BACKOFF_SECONDS
    assert cache.get() == good
    assert provider.reads == 3
    refused_again = [
        line for line in read_output() if line.get("message") == "the stored signing secret cannot be used"
    ]
    assert [line["problem"] for line in refused_again] == [problem]


def test_a_refused_value_is_read_again_once_the_back_off_the_503_announced_is_over(
    new_signing_secret: Callable[[int], str],
) -> None:
    # Given a hand-pasted value with a trailing newline and nothing cached: the request answers 503
    fixed = new_signing_secret(48)
    clock = Clock()
    provider = ScriptedProvider("abc\n", fixed)
    cache = _cache(provider, clock, ttl=300)
    with pytest.raises(SigningSecretUnavailable) as raised:
        cache.get()
    retry_after = int(raised.value.headers["Retry-After"])
    # When the operator fixes the value, and a visitor comes back a moment too early
    clock.now += retry_after - 0.001
    with pytest.raises(SigningSecretUnavailable):
        cache.get()
    assert provider.reads == 1
    # Then the first request after Retry-After reads the fixed value and signs with it, long before the TTL
    clock.now = 1000 + retry_after
    assert cache.get() == fixed
    assert provider.reads == 2
