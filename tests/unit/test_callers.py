"""Who may call POST /server/token: SERVER_TOKEN_CALLERS against the SigV4 caller's ARN."""

from __future__ import annotations

import pytest

from kustomer_token.callers import caller_allowed

ROLE = "arn:aws:iam::123456789012:role/backend"
ROLE_WITH_PATH = "arn:aws:iam::123456789012:role/services/payments/backend"
USER = "arn:aws:iam::123456789012:user/ci/token-client"


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        ("arn:aws:sts::123456789012:assumed-role/backend/i-0abc", [ROLE]),
        ("arn:aws:sts::123456789012:assumed-role/backend/i-0abc", [ROLE_WITH_PATH]),
        ("arn:aws:sts::123456789012:assumed-role/backend/botocore-session-1", ["x", ROLE]),
        (USER, [USER]),
        (ROLE, [ROLE]),
        ("arn:aws-cn:sts::123456789012:assumed-role/backend/s", ["arn:aws-cn:iam::123456789012:role/backend"]),
    ],
    ids=["session-of-role", "session-of-role-with-path", "second-entry", "user", "role-itself", "china-partition"],
)
def test_listed_principals_and_their_sessions_may_call(caller: str, allowed: list[str]) -> None:
    assert caller_allowed(caller, allowed) is True


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        ("arn:aws:sts::123456789012:assumed-role/backend/s", []),
        ("arn:aws:sts::210987654321:assumed-role/backend/s", [ROLE]),
        ("arn:aws:sts::123456789012:assumed-role/backend-admin/s", [ROLE]),
        ("arn:aws:sts::123456789012:assumed-role/Backend/s", [ROLE]),
        ("arn:aws-us-gov:sts::123456789012:assumed-role/backend/s", [ROLE]),
        ("arn:aws:iam::123456789012:user/backend", [ROLE]),
        ("arn:aws:iam::123456789012:user/token-client", [USER]),
        ("arn:aws:sts::123456789012:assumed-role/backend", [ROLE]),
        ("arn:aws:sts::123456789012:federated-user/backend", [ROLE]),
        ("arn:aws:iam::123456789012:root", [ROLE]),
        ("", [ROLE]),
        (None, [ROLE]),
        (42, [ROLE]),
    ],
    ids=[
        "nobody-listed",
        "other-account",
        "other-role-with-prefix",
        "other-case",
        "other-partition",
        "user-named-like-role",
        "user-without-its-path",
        "malformed-session",
        "federated-user",
        "root",
        "empty",
        "missing",
        "not-a-string",
    ],
)
def test_anyone_else_may_not(caller: object, allowed: list[str]) -> None:
    assert caller_allowed(caller, allowed) is False
