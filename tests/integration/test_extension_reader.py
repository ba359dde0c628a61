"""ExtensionReader against a loopback stand-in: binary secrets, no proxy, the token header as Lambda sets it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kustomer_token.errors import SigningSecretUnavailable
from kustomer_token.secret_cache import SigningSecretCache
from kustomer_token.secret_readers import ExtensionReader
from tools.harness.loopback import Exchange, LoopbackServer


class _Extension(LoopbackServer):
    """Answers every read with one document, or holds it unanswered (`hang`)."""

    def __init__(self, answer: dict[str, Any] | bytes, *, hang: bool = False) -> None:
        self.answer = answer
        self.hang = hang
        self.headers: list[str | None] = []
        super().__init__()

    def handle(self, exchange: Exchange) -> None:
        self.headers.append(exchange.header("X-Aws-Parameters-Secrets-Token"))
        if self.hang:
            exchange.hold(self, 30)
        elif isinstance(self.answer, bytes):
            exchange.reply(200, self.answer, {"Content-Type": "text/plain"})
        else:
            exchange.reply_json(200, self.answer)


@pytest.fixture
def binary_extension() -> Iterator[_Extension]:
    with _Extension({"SecretBinary": base64.b64encode(b"\x00binary secret").decode()}) as extension:
        yield extension


def test_an_extension_that_does_not_answer_fails_the_read_after_the_timeout() -> None:
    # Without a bound the invocation would hang until Lambda's own timeout: the cache falls back instead.
    with _Extension({}, hang=True) as extension, pytest.raises(TimeoutError):
        ExtensionReader(extension.port, timeout_seconds=0.2).read("secret-id")
    assert len(extension.headers) == 1


def test_a_binary_secret_is_decoded(binary_extension: _Extension) -> None:
    assert ExtensionReader(binary_extension.port).read("secret-id") == b"\x00binary secret"


def test_a_proxy_in_the_environment_is_not_used(binary_extension: _Extension, monkeypatch: pytest.MonkeyPatch) -> None:
    # The extension is on the function's own loopback: a proxy (here one that refuses) must not see it.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert ExtensionReader(binary_extension.port).read("secret-id") == b"\x00binary secret"


def test_without_a_session_token_the_header_is_empty(
    binary_extension: _Extension, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    ExtensionReader(binary_extension.port).read("secret-id")
    assert binary_extension.headers == [""]


def test_an_answer_that_is_not_json_is_logged_as_such(read_output: Callable[[], list[dict[str, Any]]]) -> None:
    # Given an extension that answers with something other than the GetSecretValue document
    with _Extension(b"not ready yet") as extension:
        cache = SigningSecretCache(
            "secret-id",
            ttl_seconds=300,
            max_stale_seconds=0,
            reader_factory=lambda: ExtensionReader(extension.port),
        )
        read_output()
        # When a request needs the secret
        with pytest.raises(SigningSecretUnavailable):
            cache.get()
    # Then the log names the failure the operator can act on, not the parser's internal StopIteration
    reasons = [line.get("reason") for line in read_output() if line.get("message") == "no usable signing secret"]
    assert reasons == ["JSONDecodeError"]
