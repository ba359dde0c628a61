"""The score of the last `make mutation` run, from mutmut's results in mutants/.

Prints `mutation score: KILLED/TOTAL killed (P%)` and fails if a mutant survived that
tests/mutation-survivors.txt does not list (one mutant name a line, then `#` and why it is left).
A killed mutant is one a test failed on, or one that timed out. Mutants not yet run are not counted.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURVIVORS_FILE = ROOT / "tests" / "mutation-survivors.txt"
KILLED = {"killed", "timeout", "caught by type check"}
NOT_RUN = {"not checked", "skipped"}


def mutant_statuses() -> dict[str, str]:
    """Mutant name -> status, as `mutmut results --all true` reports them."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    statuses = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name:
            statuses[name] = status
    return statuses


def listed_survivors() -> dict[str, str]:
    """Mutant name -> the reason given for leaving it."""
    listed = {}
    for line in SURVIVORS_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, reason = line.partition("#")
        listed[name.strip()] = reason.strip()
    return listed


def module_of(mutant: str) -> str:
    return mutant.split(".x_")[0].split(".xǁ")[0]


def main() -> int:
    statuses = mutant_statuses()
    if not statuses:
        print("no mutmut results: run `make mutation`", file=sys.stderr)
        return 1
    counted = {name: status for name, status in statuses.items() if status not in NOT_RUN}
    killed = sum(status in KILLED for status in counted.values())
    survivors = sorted(name for name, status in counted.items() if status not in KILLED)
    listed = listed_survivors()

    by_status = Counter(counted.values())
    modules = sorted({module_of(name) for name in counted})
    print("modules: " + ", ".join(modules))
    print("statuses: " + ", ".join(f"{status} {n}" for status, n in sorted(by_status.items())))
    not_run = len(statuses) - len(counted)
    if not_run:
        print(f"{not_run} mutants not run (not counted)")
    unexplained = [name for name in survivors if name not in listed]
    for name in unexplained:
        print(f"survivor not in {SURVIVORS_FILE.relative_to(ROOT)}: {name} ({counted[name]})", file=sys.stderr)
    for name in sorted(set(listed) - set(survivors)):
        if counted.get(name) in KILLED:
            print(f"listed as a survivor but now killed (remove it): {name}")
    total = len(counted)
    percent = 100 * killed / total if total else 0.0
    print(f"mutation score: {killed}/{total} killed ({percent:.1f}%)")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
