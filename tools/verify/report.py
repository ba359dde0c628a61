"""What a check found: PASS, FAIL or SKIP, one line each, with what to do on a FAIL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

OPERATIONS = "docs/operations.md"
DEPLOY = "docs/deploy.md"
VERIFY = "docs/verify.md"


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a status, not a password)
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    summary: str  # what was seen, for a person; never a secret, an API key or a token
    advice: str | None = None  # on a FAIL: what to do, ending with a link to the runbook section

    def line(self, width: int) -> str:
        said = self.summary
        if self.status is Status.FAIL and self.advice:
            said += f" -> {self.advice}"
        said = " ".join(said.split())  # one line, whatever an AWS message held
        return f"{self.status.value}  {self.check.ljust(width)}  {said}"

    def as_json(self) -> dict[str, str | None]:
        return {"check": self.check, "status": self.status.value, "summary": self.summary, "advice": self.advice}


def render_text(results: Sequence[Result]) -> str:
    width = max((len(result.check) for result in results), default=0)
    lines = [result.line(width) for result in results]
    counts = {status: sum(1 for result in results if result.status is status) for status in Status}
    lines.append(f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped")
    return "\n".join(lines)


def render_json(stack: str, where: str, results: Sequence[Result]) -> str:
    return json.dumps(
        {
            "stack": stack,
            "where": where,
            "ok": not any(result.status is Status.FAIL for result in results),
            "checks": [result.as_json() for result in results],
        },
        indent=2,
    )


def exit_status(results: Sequence[Result]) -> int:
    return 1 if any(result.status is Status.FAIL for result in results) else 0
