"""A watch list of values that must never appear in any output of the suite.

Tests register each signing secret they create and each token the service
returns; conftest.py checks every test's captured stdout, stderr and log
records against the list.
"""

from __future__ import annotations


class LeakWatch:
    def __init__(self) -> None:
        self._sensitive: dict[str, str] = {}
        self._read_by_tests: list[str] = []

    def register(self, value: str, kind: str) -> str:
        if value:
            self._sensitive[value] = kind
        return value

    def read_by_test(self, text: str) -> str:
        """Output a test consumed itself; still checked when the test ends."""
        self._read_by_tests.append(text)
        return text

    def take_read_by_tests(self) -> str:
        text = "".join(self._read_by_tests)
        self._read_by_tests.clear()
        return text

    def findings(self, text: str) -> list[str]:
        """What kinds of sensitive values the text contains (never the values themselves)."""
        return sorted({kind for value, kind in self._sensitive.items() if value in text})


LEAK_WATCH = LeakWatch()
