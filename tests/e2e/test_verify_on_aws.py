"""make verify on the deployed stack: nothing fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import Deployed

ROOT = Path(__file__).resolve().parents[2]


def test_make_verify_reports_no_failure(deployed: Deployed) -> None:
    # Given the deployed stack, When make verify runs with the same credentials
    arguments = ["--stack-name", deployed.facts.stack.name, "--region", deployed.facts.stack.region, "--json"]
    completed = subprocess.run(
        [sys.executable, "-m", "tools.verify", *arguments],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then every check passed or said why it could not run
    report = json.loads(completed.stdout)
    failed = [f"{entry['check']}: {entry['summary']}" for entry in report["checks"] if entry["status"] == "FAIL"]
    assert (completed.returncode, failed) == (0, []), completed.stderr
