"""`make verify-local` as make test runs it: the command itself, against a local stack of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.verify.checks import CHECKS
from tools.verify.local import LOCALLY_UNAVAILABLE

ROOT = Path(__file__).resolve().parents[3]


def test_make_verify_local_passes_every_check_it_can_run_and_exits_0() -> None:
    # Given nothing running: the command starts make serve's stack itself
    # When it runs as `make verify-local` runs it (with --json, to read each check)
    completed = subprocess.run(
        [sys.executable, "-m", "tools.verify", "--local", "--json"],
        cwd=ROOT,
        # as from a shell: no endpoint another test's fixture pointed this process at
        env={name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it exits 0, every check passes but those without a local stand-in, which say why
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert (report["stack"], report["where"], report["ok"]) == ("kustomer-chat-token", "local", True)
    statuses = {entry["check"]: entry["status"] for entry in report["checks"]}
    assert statuses == {name: "SKIP" if name in LOCALLY_UNAVAILABLE else "PASS" for name in CHECKS}
    # And no token is in what it prints (a JWT starts with the base64 of '{"')
    assert "eyJ" not in completed.stdout + completed.stderr
