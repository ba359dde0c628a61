"""Time under a test's control: a clock moved by hand, and retry waits recorded instead of slept."""

from __future__ import annotations

import time
from typing import Any


class ManualClock:
    """A monotonic clock a test moves by hand. It starts at the real one, so a time taken before it
    was installed (the read during INIT) lines up with it."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RetryWaits:
    """The Kustomer client's and urllib3's view of the time module: each wait between retries is recorded
    and returns at once; the clock itself is the real one."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
