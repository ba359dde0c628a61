"""The rule for a usable signing-secret value: pure, the same for the mint and the refresher."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kustomer_token.secret_value import secret_problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        (b"bytes", "is binary"),
        (" x", "whitespace"),
        ("x\n", "whitespace"),
        ("x" * 4097, "longer than 4096 bytes"),
        (None, "is empty"),
    ],
)
def test_unusable_values_are_named(value: object, problem: str) -> None:
    found = secret_problem(value)
    assert found is not None
    assert problem in found


def test_a_good_value_has_no_problem(new_signing_secret: Callable[[int], str]) -> None:
    assert secret_problem(new_signing_secret(64)) is None
