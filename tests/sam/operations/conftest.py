"""Fixtures of the operations tests: the functions' real output, and the stack as CloudFormation gets it."""

from __future__ import annotations

import pytest

from tests.support.cloudwatch import Deployed
from tests.support.observed_run import observed  # noqa: F401 (a fixture)


@pytest.fixture(scope="session")
def deployed() -> Deployed:
    """template.yaml after the SAM transform, with an alarm topic and every other parameter at its default."""
    return Deployed()
