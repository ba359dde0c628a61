"""make demo's script: it works, and when it is stopped part-way it says so and leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tools" / "demo.py"


def _our_processes() -> set[int]:
    """Processes running the emulator, the runtime or moto from this checkout (its directory is their
    working directory, or they run from its runtime or SAM CLI environment)."""
    markers = (b"aws-lambda-rie", str(ROOT / ".venv-runtime").encode(), b"moto.server")
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
                here = (entry / "cwd").resolve() == ROOT or any(
                    str(ROOT / venv).encode() in command for venv in (".venv-runtime", ".venv-sam")
                )
            except OSError:
                continue
            if here and any(marker in command for marker in markers):
                found.add(int(entry.name))
    return found


def _left_running(before: set[int], within: float = 10.0) -> set[int]:
    """Our processes that did not exist before, once they are gone or `within` seconds passed:
    a child stopped by the demo may still be exiting when the demo itself has."""
    deadline = time.monotonic() + within
    while (left := _our_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _run_demo(stop_after: bytes | None = None) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    process = subprocess.Popen(
        [sys.executable, str(DEMO)], cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    output = b""
    if stop_after is not None:
        while stop_after not in output:
            line = process.stdout.readline()
            assert line, "the demo ended before the point where the test stops it"
            output += line
        process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    return process.returncode, (output + out).decode(), err.decode()


def test_the_demo_prints_a_verified_token_and_stops_everything() -> None:
    before = _our_processes()
    code, out, err = _run_demo()
    assert code == 0, err
    assert "[6/6]" in out
    assert "verified   HS256 with Kustomer's secret: yes" in out
    assert 'header     {"alg":"HS256","typ":"JWT"}' in out
    assert "Kustomer.login({ jwtToken })" in out
    left = _left_running(before)
    assert left == set(), [Path(f"/proc/{pid}/cmdline").read_bytes()[:300] for pid in left]


def test_a_demo_stopped_part_way_says_so_and_leaves_no_process() -> None:
    before = _our_processes()
    code, out, err = _run_demo(stop_after=b"[3/6]")
    assert code == 1
    assert "demo failed" in err
    assert "[6/6]" not in out
    left = _left_running(before)
    assert left == set(), [Path(f"/proc/{pid}/cmdline").read_bytes()[:300] for pid in left]
