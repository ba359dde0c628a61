"""What a failed read of the signing secret is reported as: a short reason, never a value."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kustomer_token.secret_readers import read_failure_reason


def _raised_from(cause: BaseException) -> BaseException:
    try:
        raise RuntimeError("read failed") from cause
    except RuntimeError as exc:
        return exc


class _AwsError(Exception):
    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("aws")
        self.response = response


class _HttpError(Exception):
    code = 503  # as urllib's HTTPError from the extension


def _raised_by(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")


def _wrapped_without_context() -> None:
    # `from None` hides the context from tracebacks, as json does with its StopIteration
    try:
        raise _HttpError
    except _HttpError:
        raise ValueError("not a secret document") from None


def _raised_while_handling() -> None:
    # an error raised while handling another, without `from`: the traceback shows the first one
    try:
        raise _AwsError({"Error": {"Code": "ResourceNotFoundException"}})
    except _AwsError:
        raise RuntimeError("read failed")  # noqa: B904 (the implicit context is what this case is about)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_AwsError({"Error": {"Code": "ThrottlingException"}}), "ThrottlingException"),
        (_raised_from(_AwsError({"Error": {"Code": "AccessDeniedException"}})), "AccessDeniedException"),
        (_AwsError({}), "_AwsError"),
        (_AwsError({"Error": {"Code": ""}}), "_AwsError"),
        (_HttpError(), "HTTP503"),
        (ConnectionError("down"), "ConnectionError"),
        (_raised_by(lambda: json.loads("<html>not ready</html>")), "JSONDecodeError"),
        (_raised_by(_wrapped_without_context), "ValueError"),
        (_raised_by(_raised_while_handling), "ResourceNotFoundException"),
    ],
    ids=[
        "code",
        "code-of-the-cause",
        "no-error",
        "empty-code",
        "http-status",
        "class",
        "non-json-answer",
        "suppressed-context",
        "context-shown",
    ],
)
def test_a_failed_read_is_reported_by_its_code_or_class(exc: BaseException, reason: str) -> None:
    assert read_failure_reason(exc) == reason
