"""The functions' real output, for the tests that compare the docs with it."""

from tests.support.observed_run import observed  # noqa: F401 (a fixture)
