"""make bench keeps working: one quick run, its counts checked (times are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_runs_and_its_counts_meet_their_goals(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(output.read_text())
    assert set(results["cold"]["median_ms"]) == {"bare", "floor", "mint", "naive", "mint_extension"}
    assert all(value > 0 for value in results["cold"]["median_ms"].values())
    assert results["warm"]["handler_us"] > 0
    # Counts are deterministic: these goals are checked here too.
    assert results["reads_memory"]["get_secret_value_calls"] == 1
    assert results["refresh"]["changed"]["kustomer_calls"] == 1
    assert results["refresh"]["changed"]["secrets_manager_writes"] == 1
    assert results["refresh"]["unchanged"]["kustomer_calls"] == 1
    assert results["refresh"]["unchanged"]["secrets_manager_writes"] == 0
    assert set(results["size_bytes"]) == {"SharedLayer", "MintTokenFunction", "RefreshSecretFunction"}
    assert "cold mint / floor" in completed.stdout
