"""make bench keeps working: one quick run, its counts checked (times are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = {"bare", "floor", "mint", "mint_extension", "naive"}


def test_the_quick_benchmark_runs_and_its_counts_meet_their_goals(tmp_path: Path) -> None:
    # Given a quick benchmark run
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # Then it finished and wrote every section
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(output.read_text())
    capped = results["cpu_cap"]["available"]
    sizes = {"128", "256", "512", "1024"} if capped else {"uncapped"}
    assert capped or results["cpu_cap"]["reason"], "an uncapped run must say why"
    mint = results["mint"]
    assert set(mint["by_size"]) == sizes
    for by_subject in mint["by_size"].values():
        assert set(by_subject) >= SUBJECTS
        for subject in SUBJECTS:
            # one cold start per round, each with its warm invocations measured
            assert len(by_subject[subject]["samples"]["cold_ms"]) == mint["rounds"]
            assert len(by_subject[subject]["samples"]["warm_mean_ms"]) == mint["rounds"]
        assert set(by_subject["ratios"]) == {
            "mint_over_floor",
            "mint_extension_over_floor",
            "naive_over_floor",
            "mint_over_bare",
        }
    assert set(results["refresher_cold"]["by_size"]) == ({"128", "512"} if capped else {"uncapped"})
    assert set(results["snapstart"]["restore_to_answer_ms"]) == {"read_on_first_request", "read_after_restore"}
    assert set(results["cost"]["by_size"]) == (sizes if capped else set())
    # And the counts meet their goals (counts are exact, unlike times)
    assert results["reads_memory"]["get_secret_value_calls"] == 1
    assert results["refresh"]["changed"]["kustomer_calls"] == 1
    assert results["refresh"]["changed"]["secrets_manager_writes"] == 1
    assert results["refresh"]["unchanged"]["kustomer_calls"] == 1
    assert results["refresh"]["unchanged"]["secrets_manager_writes"] == 0
    assert set(results["size_bytes"]) == {"SharedLayer", "MintTokenFunction", "RefreshSecretFunction"}
    # And the table is printed
    assert "cold start, invoke -> first answer" in completed.stdout
    assert "cold mint / floor" in completed.stdout
