"""docs/operations.md answers "this alarm fired, what do I do?" for every alarm of the stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.harness.template import load_template

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "docs" / "operations.md"
TEMPLATE = load_template()
ALARMS = sorted(name for name, spec in TEMPLATE["Resources"].items() if spec["Type"] == "AWS::CloudWatch::Alarm")


def _sections(level: int) -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading of the same or a higher level."""
    text = RUNBOOK.read_text(encoding="utf-8")
    marks = list(re.finditer(rf"^{'#' * level} (.+)$", text, flags=re.MULTILINE))
    sections = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        higher = re.search(rf"^#{{1,{level - 1}}} ", text[mark.end() : end], flags=re.MULTILINE)
        sections[mark.group(1).strip()] = text[mark.end() : mark.end() + higher.start() if higher else end]
    return sections


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_has_a_runbook_section(alarm: str) -> None:
    # Given the runbook's alarm sections, headed by the alarm's logical id (its name starts with it)
    sections = {heading.split()[0].strip("`"): body for heading, body in _sections(3).items()}
    # Then this alarm has one that says what it means, how to confirm it, and what to do
    assert alarm in sections
    body = sections[alarm]
    for part in ("**What it means**", "**Confirm**", "**What to do**"):
        assert part in body, f"{alarm}: no {part}"
    # and the confirmation is something to run: a saved Logs Insights query, a command or a graph
    confirm = body.split("**Confirm**", 1)[1].split("**What to do**", 1)[0]
    assert "```" in confirm or "dashboard" in confirm


def test_the_runbook_has_the_procedures_an_operator_needs() -> None:
    procedures = _sections(3)
    for title in (
        "Rotate the Kustomer API key",
        "The signing secret was regenerated in Kustomer",
        "Suspected leak of the signing secret",
        "Move to another Kustomer pod",
    ):
        assert title in procedures
        assert len(procedures[title]) > 400
