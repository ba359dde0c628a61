"""make bench: figures for the mint and the refresher, run the way Lambda runs them.

Lambda gives INIT (imports, everything outside the handler) a burst of CPU and
each invocation, the first one included, memory/1769 of one vCPU. So each cold
start here runs in the Lambda runtime (RIE + awslambdaric) with its INIT on a
free core, and from the runtime's first request for an event (the end of INIT,
seen by a proxy in front of the Runtime API) its process is held to the
memory's share of a core by a Linux cgroup. Without a usable cgroup cpu
controller (it needs root) the run says so and reports uncapped figures only.

The machine is noisy, so every time is compared with a reference measured in
the same run, subjects and memory sizes alternate, and each figure is the
median of the rounds. Counts are exact.

  cold       invoke -> first answer, INIT, and the first invocation, at each memory size, for
             bare / floor / mint / mint (extension) / naive subjects
  warm       the invocations after the first in the same container, same cap (mean per invocation)
  refresher  its cold scheduled run at 128 and 512 MB, against a refresher floor (boto3, one GetSecretValue,
             one HTTPS GET, one PutSecretValue)
  snapstart  the mint restored from a (simulated) snapshot: secret read on the first request vs after restore
  cost       Lambda cost per million tokens at each size, INIT billed
  reads      GetSecretValue calls over many warm invocations in one container
  memory     peak RSS of the runtime process, and its growth between two invocation counts
  refresh    Kustomer calls and Secrets Manager writes per refresher run, changed and unchanged
  size       the built layer and functions, zipped

It shows its progress on stderr, then prints the figures and draws them (benchmarks/plot.py) as an SVG.

Usage: python benchmarks/bench.py [--quick] [--json PATH] [--svg PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.harness.cpu_cap import DEFAULT_PERIOD_US, ONE_VCPU_MB, CpuCap, lambda_cpu_share  # noqa: E402
from tools.harness.fake_kustomer import secret_reply  # noqa: E402
from tools.harness.fake_secrets_extension import FakeSecretsExtension  # noqa: E402
from tools.harness.lambda_runtime import BUILD_DIR, LambdaRuntime  # noqa: E402
from tools.harness.runtime_api_proxy import RuntimeApiProxy  # noqa: E402
from tools.harness.sm_proxy import SecretsManagerProxy  # noqa: E402
from tools.local_stack import LocalStack, local_stack  # noqa: E402

SUBJECTS_DIR = ROOT / "benchmarks" / "subjects"
MINT_EVENT = json.loads((ROOT / "events" / "mint-token-external-id.json").read_text(encoding="utf-8"))
REFRESH_EVENT = json.loads((ROOT / "events" / "refresh-scheduled.json").read_text(encoding="utf-8"))
SIZES_MB = (128, 256, 512, 1024)
REFRESHER_SIZES_MB = (128, 512)
SNAPSTART_SIZE_MB = 512
SUBJECTS = ("bare", "floor", "mint", "mint_extension", "naive")
LABELS = {
    "bare": "bare",
    "floor": "floor",
    "mint": "mint (SDK)",
    "mint_extension": "mint (extension)*",
    "naive": "naive",
}
GOALS = {
    "cold_mint_over_floor": 1.1,  # at every size and pooled
    "cold_mint_extension_over_floor": 1.0,
    "warm_mint_mean_over_floor_at_512": 2.0,
    "warm_mint_p99_over_floor_at_512": 3.0,
    "cold_refresher_over_floor": 1.1,
    "get_secret_value_per_container_per_ttl": 1,
    "peak_rss_mib": 64.0,
    "rss_growth_mib": 1.0,
    "kustomer_calls_per_refresh": 1,
    "writes_when_unchanged": 0,
}
# Lambda arm64 in us-east-1 (https://aws.amazon.com/lambda/pricing/): per request and per GB-second.
PRICE_PER_MILLION_REQUESTS = 0.20
PRICE_PER_GB_SECOND = 0.0000133334
# Cold starts per request assumed for the cost: AWS puts INITs "under 1%" of invocations.
COLD_START_SHARE = 0.01
EXAMPLE_EXTENSION_LAYER = (
    "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:1"
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Progress:
    """How far the run is, on stderr: one updating line on a terminal, a line every 5 % otherwise (CI logs)."""

    def __init__(self) -> None:
        self.start(1)
        self._tty = sys.stderr.isatty()

    def start(self, total: int) -> None:
        self.total, self.done, self.started, self._last_step = total, 0, time.monotonic(), -1

    def tick(self, what: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        line = (
            f"[{self.done:>3}/{self.total}] {self.done / self.total:4.0%}  {what:<34} "
            f"elapsed {_clock(elapsed)}, about {_clock(left)} left"
        )
        if self._tty:
            end = "\n" if self.done == self.total else ""
            print(f"\r{line}", end=end, file=sys.stderr, flush=True)
        elif (step := self.done * 20 // self.total) != self._last_step:
            self._last_step = step
            log(line)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


PROGRESS = Progress()  # main() starts it with the run's count of measurements


def _rotated(items: tuple[Any, ...], by: int) -> list[Any]:
    """The same items, starting at a different one each round, so no subject always runs first."""
    shift = by % len(items)
    return [*items[shift:], *items[:shift]]


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


# --- one cold start, INIT on a free core, invocations capped -------------------------------------


@dataclass
class ColdStart:
    cold_ms: float  # invoke sent -> first answer (the emulator starts the runtime on the first invoke)
    init_ms: float  # invoke sent -> the runtime's first request for an event
    first_invocation_ms: float  # event handed to the runtime -> answer posted, capped
    warm_ms: list[float]  # the same for each following invocation
    restore_to_answer_ms: float | None = None  # SnapStart only: restore -> first answer

    @property
    def warm_mean_ms(self) -> float:
        return statistics.mean(self.warm_ms) if self.warm_ms else math.nan

    @property
    def warm_billed_ms(self) -> float:
        """Lambda bills each invocation in whole milliseconds, rounded up."""
        return statistics.mean(math.ceil(ms) for ms in self.warm_ms) if self.warm_ms else math.nan


def _cap_hook(runtime: LambdaRuntime, cap: CpuCap | None) -> Callable[[], None]:
    """What the Runtime API proxy calls when the capped phase starts: the runtime process joins the cap."""

    def add_to_cap() -> None:
        pid = runtime.runtime_pid()
        if cap is not None and pid is not None:
            cap.add(pid)

    return add_to_cap


def _close(runtime: LambdaRuntime, cap: CpuCap | None) -> None:
    """Stops the runtime, then removes its cap, even when stopping fails."""
    try:
        runtime.close()
    finally:
        if cap is not None:
            cap.close()


def run_cold_start(
    runtime: LambdaRuntime,
    event: Any,
    *,
    memory_mb: int | None,
    warm_invocations: int,
    accept: Callable[[Any], bool],
    snap_start: bool = False,
) -> ColdStart:
    """Starts the runtime, caps it at `memory_mb`'s CPU share from the end of INIT (None: never), invokes."""
    cap = CpuCap(lambda_cpu_share(memory_mb)) if memory_mb else None
    proxy = RuntimeApiProxy(_cap_hook(runtime, cap), snap_start=snap_start)
    runtime.runtime_api_proxy = proxy
    if memory_mb:
        runtime.memory_mb = memory_mb
    try:
        runtime.start()
        sent = time.monotonic()
        first = runtime.invoke(event)
        answered = time.monotonic()
        if proxy.hook_error is not None:
            raise RuntimeError(f"could not cap {runtime.logical_id}: {proxy.hook_error}")
        if first.error or not accept(first.payload):
            raise RuntimeError(f"{runtime.logical_id} failed: {first.error or first.payload}\n{runtime.logs()[-2000:]}")
        for _ in range(warm_invocations):
            warm = runtime.invoke(event)
            if warm.error or not accept(warm.payload):
                raise RuntimeError(f"{runtime.logical_id} failed warm: {warm.error or warm.payload}")
        durations = proxy.times.invocation_ms()
        assert proxy.times.init_done is not None
        restored = proxy.times.restore_asked
        return ColdStart(
            cold_ms=(answered - sent) * 1000,
            init_ms=(proxy.times.init_done - sent) * 1000,
            first_invocation_ms=durations[0],
            warm_ms=durations[1:],
            restore_to_answer_ms=(answered - restored) * 1000 if restored is not None else None,
        )
    finally:
        _close(runtime, cap)


# --- the mint and its references, at each memory size ----------------------------------------------


@contextmanager
def _naive_layer() -> Iterator[Path]:
    """The built layer without its bytecode, as a first handler would ship."""
    with tempfile.TemporaryDirectory(prefix="naive-layer-") as folder:
        target = Path(folder) / "python"
        shutil.copytree(BUILD_DIR / "SharedLayer" / "python", target, ignore=shutil.ignore_patterns("__pycache__"))
        yield target


class Subjects:
    """Makes a fresh, unstarted runtime of each subject, wired to the local stack."""

    def __init__(self, stack: LocalStack, running: ExitStack) -> None:
        self.stack = stack
        self.naive_layer = running.enter_context(_naive_layer())
        self.empty_layer = Path(running.enter_context(tempfile.TemporaryDirectory(prefix="empty-layer-")))
        os.environ["AWS_SESSION_TOKEN"] = "local-session-token"
        self.extension = FakeSecretsExtension(stack.secrets_manager_url, os.environ["AWS_SESSION_TOKEN"]).start()
        running.callback(self.extension.stop)

    def runtime(self, subject: str) -> LambdaRuntime:
        mint = self.stack.runtime("MintTokenFunction")
        if subject == "mint":
            return mint
        if subject == "mint_extension":
            runtime = self.stack.runtime("MintTokenFunction", {"SecretsExtensionLayerArn": EXAMPLE_EXTENSION_LAYER})
            runtime.environment["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(self.extension.port)
            return runtime
        layer = {"bare": self.empty_layer, "floor": self.empty_layer, "naive": self.naive_layer}[subject]
        return LambdaRuntime(
            f"bench-{subject}",
            handler="app.lambda_handler",
            environment=mint.environment,
            timeout_seconds=mint.timeout_seconds,
            task_root=SUBJECTS_DIR / subject,
            layer_python=layer,
        )


def _answered_200(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("statusCode") == 200


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)], 2)


def _summary(runs: list[ColdStart]) -> dict[str, Any]:
    every_warm = [ms for run in runs for ms in run.warm_ms]
    return {
        "cold_ms": _median([r.cold_ms for r in runs]),
        "init_ms": _median([r.init_ms for r in runs]),
        "first_invocation_ms": _median([r.first_invocation_ms for r in runs]),
        "warm_mean_ms": _median([r.warm_mean_ms for r in runs]),
        "warm_billed_ms": _median([r.warm_billed_ms for r in runs]),
        # Over every warm invocation of every round: the typical one, and the tail the CPU cap makes.
        "warm_p50_ms": _percentile(every_warm, 0.50) if every_warm else math.nan,
        "warm_p99_ms": _percentile(every_warm, 0.99) if every_warm else math.nan,
        "samples": {
            "cold_ms": [round(r.cold_ms, 1) for r in runs],
            "init_ms": [round(r.init_ms, 1) for r in runs],
            "first_invocation_ms": [round(r.first_invocation_ms, 2) for r in runs],
            "warm_mean_ms": [round(r.warm_mean_ms, 3) for r in runs],
        },
    }


def _paired_ratio(runs: dict[str, list[ColdStart]], subject: str, reference: str) -> float:
    """Median over rounds of subject / reference, each pair measured minutes apart at most: steadier than
    a ratio of medians when the machine's load drifts."""
    pairs = zip(runs[subject], runs[reference], strict=True)
    return round(statistics.median(a.cold_ms / b.cold_ms for a, b in pairs), 3)


def mint_cold_and_warm(subjects: Subjects, sizes: tuple[int | None, ...], rounds: int, warm: int) -> dict[str, Any]:
    runs: dict[str, dict[str, list[ColdStart]]] = {str(s or "uncapped"): {n: [] for n in SUBJECTS} for s in sizes}
    for round_number in range(rounds):
        for size in _rotated(sizes, round_number):
            for subject in _rotated(SUBJECTS, round_number):
                run = run_cold_start(
                    subjects.runtime(subject), MINT_EVENT, memory_mb=size, warm_invocations=warm, accept=_answered_200
                )
                runs[str(size or "uncapped")][subject].append(run)
                PROGRESS.tick(f"round {round_number + 1}/{rounds}: {LABELS[subject]}, {size or 'uncapped'} MB")
    by_size: dict[str, Any] = {}
    for size_key, by_subject in runs.items():
        summary = {subject: _summary(subject_runs) for subject, subject_runs in by_subject.items()}
        summary["ratios"] = {
            "mint_over_floor": _paired_ratio(by_subject, "mint", "floor"),
            "mint_extension_over_floor": _paired_ratio(by_subject, "mint_extension", "floor"),
            "naive_over_floor": _paired_ratio(by_subject, "naive", "floor"),
            "mint_over_bare": _paired_ratio(by_subject, "mint", "bare"),
        }
        by_size[size_key] = summary
    every_size = [run for by_subject in runs.values() for run in by_subject["mint"]]
    every_floor = [run for by_subject in runs.values() for run in by_subject["floor"]]
    pooled = _paired_ratio({"mint": every_size, "floor": every_floor}, "mint", "floor")
    # INIT runs on a free core at every size, so the sizes' cold starts differ by the first invocation only.
    return {"rounds": rounds, "warm_invocations": warm, "by_size": by_size, "mint_over_floor_all_sizes": pooled}


# --- the refresher's cold scheduled run -------------------------------------------------------------


REFRESHER_SUBJECTS = ("refresher_floor", "refresher")


def _refresher_runtime(stack: LocalStack, subject: str, empty_layer: Path) -> LambdaRuntime:
    refresher = stack.runtime("RefreshSecretFunction")
    if subject == "refresher":
        return refresher
    return LambdaRuntime(
        "bench-refresher-floor",
        handler="app.lambda_handler",
        environment=refresher.environment,  # the refresher's settings and role
        timeout_seconds=refresher.timeout_seconds,
        task_root=SUBJECTS_DIR / "refresher_floor",
        layer_python=empty_layer,
    )


def _refresher_answered(subject: str) -> Callable[[Any], bool]:
    if subject == "refresher":
        return lambda payload: isinstance(payload, dict) and payload.get("changed") is False
    return lambda payload: isinstance(payload, dict) and bool(payload.get("written"))


def refresher_cold(stack: LocalStack, sizes: tuple[int | None, ...], rounds: int) -> dict[str, Any]:
    """A scheduled run of a new container (the secret unchanged, as on most runs), INIT free, run capped,
    beside the refresher floor's in the same round."""
    runs: dict[str, dict[str, list[ColdStart]]] = {
        str(s or "uncapped"): {subject: [] for subject in REFRESHER_SUBJECTS} for s in sizes
    }
    empty_layer = tempfile.TemporaryDirectory(prefix="empty-layer-")
    for round_number in range(rounds):
        for size in _rotated(sizes, round_number):
            for subject in _rotated(REFRESHER_SUBJECTS, round_number):
                run = run_cold_start(
                    _refresher_runtime(stack, subject, Path(empty_layer.name)),
                    REFRESH_EVENT,
                    memory_mb=size,
                    warm_invocations=0,
                    accept=_refresher_answered(subject),
                )
                runs[str(size or "uncapped")][subject].append(run)
                label = subject.replace("_", " ")
                PROGRESS.tick(f"round {round_number + 1}/{rounds}: {label}, {size or 'uncapped'} MB")
    empty_layer.cleanup()
    timeout = stack.runtime("RefreshSecretFunction").timeout_seconds
    every = {subject: [run for sized in runs.values() for run in sized[subject]] for subject in REFRESHER_SUBJECTS}
    return {
        "rounds": rounds,
        "timeout_seconds": timeout,
        "by_size": {
            key: {
                **{
                    subject: {
                        "cold_ms": _median([r.cold_ms for r in subject_runs]),
                        "init_ms": _median([r.init_ms for r in subject_runs]),
                        "run_ms": _median([r.first_invocation_ms for r in subject_runs]),
                        "samples": {
                            "cold_ms": [round(r.cold_ms, 1) for r in subject_runs],
                            "run_ms": [round(r.first_invocation_ms, 1) for r in subject_runs],
                        },
                    }
                    for subject, subject_runs in by_subject.items()
                },
                "refresher_over_floor": _paired_ratio(by_subject, "refresher", "refresher_floor"),
            }
            for key, by_subject in runs.items()
        },
        "refresher_over_floor_all_sizes": _paired_ratio(every, "refresher", "refresher_floor"),
    }


# --- SnapStart, simulated: where the restored container reads the secret -------------------------

_READ_AFTER_RESTORE = '''"""Bench subject: the built mint, its secret read after restore, not by the first request."""

from snapshot_restore_py import register_after_restore

import app

register_after_restore(app.minter._secret_cache.read_ahead)  # runs after the mint's own hook, which forgets
lambda_handler = app.lambda_handler
'''


def snapstart(stack: LocalStack, size: int | None, rounds: int) -> dict[str, Any]:
    """Restore -> first answer of a mint container initialised for SnapStart, the restore capped like an
    invocation (Lambda documents no burst for it). The snapshot is simulated: the process is not frozen."""
    variants = ("read_on_first_request", "read_after_restore")
    runs: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="snapstart-mint-") as folder:
        task_root = Path(folder)
        shutil.copytree(BUILD_DIR / "MintTokenFunction", task_root, dirs_exist_ok=True)
        (task_root / "read_after_restore.py").write_text(_READ_AFTER_RESTORE, encoding="utf-8")
        for round_number in range(rounds):
            for variant in _rotated(variants, round_number):
                runtime = stack.runtime("MintTokenFunction")
                runtime.environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
                if variant == "read_after_restore":
                    runtime.task_root, runtime.handler = task_root, "read_after_restore.lambda_handler"
                cap = CpuCap(lambda_cpu_share(size)) if size else None
                run = _snapstart_run(runtime, cap)
                runs[variant].append(run)
                PROGRESS.tick(f"round {round_number + 1}/{rounds}: SnapStart, {variant.replace('_', ' ')}")
    return {
        "memory_mb": size,
        "rounds": rounds,
        "restore_to_answer_ms": {name: _median(values) for name, values in runs.items()},
        "samples": {name: [round(v, 1) for v in values] for name, values in runs.items()},
    }


def _snapstart_run(runtime: LambdaRuntime, cap: CpuCap | None) -> float:
    proxy = RuntimeApiProxy(snap_start=True, on_restore=_cap_hook(runtime, cap))
    runtime.runtime_api_proxy = proxy
    try:
        runtime.start()
        answer = runtime.invoke(MINT_EVENT)
        answered = time.monotonic()
        if answer.error or not _answered_200(answer.payload) or proxy.times.restore_asked is None:
            raise RuntimeError(f"SnapStart run failed: {answer.error or answer.payload}\n{runtime.logs()[-2000:]}")
        return (answered - proxy.times.restore_asked) * 1000
    finally:
        _close(runtime, cap)


# --- cost ----------------------------------------------------------------------------------------


def cost_per_million_tokens(mint: dict[str, Any]) -> dict[str, Any]:
    """Lambda's part of the bill per million tokens at each size, from the measured mint, INIT billed:
    with 1% of requests cold (AWS's figure for typical traffic) and with every request cold (a quiet site)."""
    by_size = {}
    for size_key, summary in mint["by_size"].items():
        if size_key == "uncapped":
            continue
        gigabytes = int(size_key) / 1024
        figures = summary["mint"]
        cold_billed_ms = math.ceil(figures["init_ms"]) + math.ceil(figures["first_invocation_ms"])
        costs = {}
        for label, share in (("typical", COLD_START_SHARE), ("all_cold", 1.0)):
            billed_ms = (1 - share) * figures["warm_billed_ms"] + share * cold_billed_ms
            gb_seconds = 1e6 * billed_ms / 1000 * gigabytes
            costs[label] = {
                "gb_seconds": round(gb_seconds, 1),
                "usd": round(PRICE_PER_MILLION_REQUESTS + gb_seconds * PRICE_PER_GB_SECOND, 4),
            }
        by_size[size_key] = {
            "warm_billed_ms": figures["warm_billed_ms"],
            "cold_billed_ms": cold_billed_ms,
            **costs,
        }
    return {
        "cold_start_share_typical": COLD_START_SHARE,
        "price_per_gb_second_usd": PRICE_PER_GB_SECOND,
        "price_per_million_requests_usd": PRICE_PER_MILLION_REQUESTS,
        "by_size": by_size,
    }


# --- Secrets Manager reads and memory, in one container ----------------------------------------------


def reads_and_memory(stack: LocalStack, invocations: int, early: int) -> dict[str, Any]:
    proxy = SecretsManagerProxy(stack.secrets_manager_url).start()
    try:
        runtime = stack.runtime("MintTokenFunction")
        runtime.environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = proxy.url
        runtime.start()
        rss_early = 0
        try:
            for number in range(1, invocations + 1):
                invocation = runtime.invoke(MINT_EVENT)
                if invocation.error or invocation.payload["statusCode"] != 200:
                    raise RuntimeError(f"invocation {number} failed: {invocation.error or invocation.payload}")
                if number == early:
                    rss_early = runtime.runtime_memory_kib("VmRSS")
            rss_late, peak = runtime.runtime_memory_kib("VmRSS"), runtime.runtime_memory_kib("VmHWM")
        finally:
            runtime.close()
        ttl = int(runtime.environment["SECRET_CACHE_TTL_SECONDS"])
        return {
            "invocations": invocations,
            "get_secret_value_calls": proxy.count("GetSecretValue"),
            "ttl_seconds": ttl,
            "peak_rss_mib": round(peak / 1024, 1),
            "rss_at_invocation": {str(early): round(rss_early / 1024, 2), str(invocations): round(rss_late / 1024, 2)},
            "rss_growth_mib": round((rss_late - rss_early) / 1024, 2),
        }
    finally:
        proxy.stop()


# --- refresher counts -----------------------------------------------------------------------------


def refresher_counts(stack: LocalStack) -> dict[str, Any]:
    proxy = SecretsManagerProxy(stack.secrets_manager_url).start()
    try:
        runtime = stack.runtime("RefreshSecretFunction")
        runtime.environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = proxy.url
        runtime.start()
        results = {}
        try:
            stack.kustomer.answer(secret_reply(stack.kustomer_secret + "rotated"))
            for label in ("changed", "unchanged"):
                calls_before = len(stack.kustomer.settings_calls())
                proxy.reset()
                invocation = runtime.invoke(REFRESH_EVENT)
                if invocation.error:
                    raise RuntimeError(f"refresher failed: {invocation.error}")
                results[label] = {
                    "answer_changed": invocation.payload["changed"],
                    "kustomer_calls": len(stack.kustomer.settings_calls()) - calls_before,
                    "secrets_manager_writes": proxy.count("PutSecretValue") + proxy.count("UpdateSecretVersionStage"),
                    "secrets_manager_reads": proxy.count("GetSecretValue"),
                }
        finally:
            runtime.close()
            stack.kustomer.answer(secret_reply(stack.kustomer_secret))
            stack.client.put_secret_value(SecretId=stack.signing_secret_arn, SecretString=stack.kustomer_secret)
        return results
    finally:
        proxy.stop()


# --- package size -------------------------------------------------------------------------------------


def _zipped_bytes(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.tell()


def package_sizes() -> dict[str, int]:
    return {
        name: _zipped_bytes(BUILD_DIR / name) for name in ("SharedLayer", "MintTokenFunction", "RefreshSecretFunction")
    }


# --- report -------------------------------------------------------------------------------------------


def _verdict(value: float, goal: float) -> str:
    return "meets" if value <= goal else "MISSES"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]


def _size_label(size: str) -> str:
    return size if size == "uncapped" else f"{size} MB"


def _warm_cell(figures: dict[str, Any]) -> str:
    return f"{figures['warm_mean_ms']:.2f} ({figures['warm_p50_ms']:.2f}/{figures['warm_p99_ms']:.1f})"


def report(results: dict[str, Any]) -> str:
    cap = results["cpu_cap"]
    mint = results["mint"]["by_size"]
    lines = []
    if cap["available"]:
        lines.append(
            f"INIT on a free core; every invocation capped to memory/{ONE_VCPU_MB} of one CPU "
            f"({cap['mechanism']}, period {cap['period_us'] // 1000} ms). "
            f"Medians of {results['mint']['rounds']} rounds; ratios are medians of each round's pair."
        )
    else:
        lines.append(f"NO CPU CAP ({cap['reason']}): uncapped figures only, one free core for everything.")
    subject_headers = [LABELS[s] for s in SUBJECTS]
    ratio_names = ("mint_over_floor", "mint_extension_over_floor", "naive_over_floor")
    lines += ["", "cold start, invoke -> first answer, median ms"]
    lines += _table(
        ["memory", *subject_headers, "mint/floor", "ext/floor", "naive/floor"],
        [
            [_size_label(size)]
            + [f"{mint[size][s]['cold_ms']:.0f}" for s in SUBJECTS]
            + [f"{mint[size]['ratios'][r]:.2f}" for r in ratio_names]
            for size in mint
        ],
    )
    lines += ["", "of which: INIT ms / first invocation ms"]
    lines += _table(
        ["memory", *subject_headers],
        [
            [_size_label(size)]
            + [f"{mint[size][s]['init_ms']:.0f} / {mint[size][s]['first_invocation_ms']:.1f}" for s in SUBJECTS]
            for size in mint
        ],
    )
    lines += [
        "",
        f"warm, ms per invocation: mean of {results['mint']['warm_invocations']} back-to-back invocations "
        "(p50/p99 of all of them)",
    ]
    lines += _table(
        ["memory", *subject_headers],
        [[_size_label(size)] + [_warm_cell(mint[size][s]) for s in SUBJECTS] for size in mint],
    )
    refresher = results["refresher_cold"]
    lines += [
        "",
        f"refresher, cold scheduled run (secret unchanged), median ms of {refresher['rounds']} rounds, "
        f"timeout {refresher['timeout_seconds']} s",
    ]
    lines += _table(
        ["memory", "refresher: invoke->answer", "INIT", "the run", "floor: invoke->answer", "INIT", "the run", "ratio"],
        [
            [_size_label(size)]
            + [
                f"{f[subject][figure]:.0f}"
                for subject in ("refresher", "refresher_floor")
                for figure in ("cold_ms", "init_ms", "run_ms")
            ]
            + [f"{f['refresher_over_floor']:.2f}"]
            for size, f in refresher["by_size"].items()
        ],
    )
    snap = results["snapstart"]
    restore = ", ".join(f"{name.replace('_', ' ')} {ms:.0f}" for name, ms in snap["restore_to_answer_ms"].items())
    lines += [
        "",
        f"SnapStart (simulated restore, capped, {snap['memory_mb'] or 'uncapped'} MB), "
        f"restore -> first answer, median ms: {restore}",
    ]
    if results["cost"]["by_size"]:
        lines += [
            "",
            "Lambda cost per million tokens, USD (arm64, INIT billed; API Gateway, logs and Secrets Manager "
            "come on top: docs/performance.md)",
        ]
        lines += _table(
            ["memory", "warm billed ms", "cold billed ms", f"{COLD_START_SHARE:.0%} cold", "all cold"],
            [
                [
                    _size_label(size),
                    f"{c['warm_billed_ms']:.2f}",
                    f"{c['cold_billed_ms']}",
                    f"{c['typical']['usd']:.3f}",
                    f"{c['all_cold']['usd']:.3f}",
                ]
                for size, c in results["cost"]["by_size"].items()
            ],
        )
    lines.append("")
    lines += _goal_lines(results)
    lines.append("* the extension is a stand-in on loopback: its own start inside Lambda is not counted")
    machine = results["machine"]
    lines.append(f"machine: {machine['cpu']} ({machine['cores']} cores), {machine['python']}, {machine['date']}")
    return "\n".join(lines)


def _goal_lines(results: dict[str, Any]) -> list[str]:
    mint = results["mint"]["by_size"]
    reads, refresh = results["reads_memory"], results["refresh"]
    rows = []
    cold_goal = GOALS["cold_mint_over_floor"]
    for size in mint:
        ratio = mint[size]["ratios"]["mint_over_floor"]
        rows.append(
            [f"cold mint / floor, {_size_label(size)}", f"{ratio:.2f}", f"<= {cold_goal} {_verdict(ratio, cold_goal)}"]
        )
    pooled = results["mint"]["mint_over_floor_all_sizes"]
    rows.append(
        ["cold mint / floor, all sizes pooled", f"{pooled:.2f}", f"<= {cold_goal} {_verdict(pooled, cold_goal)}"]
    )
    for size in mint:
        ratio = mint[size]["ratios"]["mint_extension_over_floor"]
        rows.append([f"cold mint (extension)* / floor, {size}", f"{ratio:.2f}", f"< 1 {_verdict(ratio, 0.999)}"])
    warm_key = "512" if "512" in mint else "uncapped"
    warm_mint, warm_floor = mint[warm_key]["mint"], mint[warm_key]["floor"]
    for figure, label, goal in (
        ("warm_mean_ms", "mean", GOALS["warm_mint_mean_over_floor_at_512"]),
        ("warm_p99_ms", "p99", GOALS["warm_mint_p99_over_floor_at_512"]),
    ):
        ratio = warm_mint[figure] / warm_floor[figure]
        rows.append(
            [
                f"warm mint / floor, {label}, {_size_label(warm_key)}",
                f"{ratio:.2f} ({warm_mint[figure]:.2f} / {warm_floor[figure]:.2f} ms)",
                f"<= {goal} {_verdict(ratio, goal)}",
            ]
        )
    refresher = results["refresher_cold"]
    refresher_goal = GOALS["cold_refresher_over_floor"]
    for size, figures in refresher["by_size"].items():
        ratio = figures["refresher_over_floor"]
        rows.append(
            [
                f"cold refresher / its floor, {_size_label(size)}",
                f"{ratio:.2f}",
                f"<= {refresher_goal} {_verdict(ratio, refresher_goal)}",
            ]
        )
    ratio = refresher["refresher_over_floor_all_sizes"]
    rows.append(
        ["cold refresher / its floor, pooled", f"{ratio:.2f}", f"<= {refresher_goal} {_verdict(ratio, refresher_goal)}"]
    )
    rows.append(
        [
            f"GetSecretValue in {reads['invocations']} warm invocations (TTL {reads['ttl_seconds']} s)",
            str(reads["get_secret_value_calls"]),
            f"<= 1 {_verdict(reads['get_secret_value_calls'], 1)}",
        ]
    )
    rows.append(
        [
            "peak RSS of the runtime process, MiB",
            f"{reads['peak_rss_mib']:.1f}",
            f"<= {GOALS['peak_rss_mib']:.0f} {_verdict(reads['peak_rss_mib'], GOALS['peak_rss_mib'])}",
        ]
    )
    growth_label = "RSS growth " + " -> ".join(f"#{n}" for n in reads["rss_at_invocation"]) + ", MiB"
    rows.append(
        [
            growth_label,
            f"{reads['rss_growth_mib']:.2f}",
            f"< {GOALS['rss_growth_mib']:.0f} {_verdict(reads['rss_growth_mib'], GOALS['rss_growth_mib'])}",
        ]
    )
    for label in ("changed", "unchanged"):
        counts = refresh[label]
        rows.append(
            [
                f"refresher, secret {label}: Kustomer calls / SM writes",
                f"{counts['kustomer_calls']} / {counts['secrets_manager_writes']}",
                f"1 call {_verdict(counts['kustomer_calls'], 1)}"
                if label == "changed"
                else f"0 writes {_verdict(counts['secrets_manager_writes'], 0)}",
            ]
        )
    sizes = results["size_bytes"]
    rows.append(
        ["zipped size, KiB: layer / mint / refresher", " / ".join(f"{v / 1024:.0f}" for v in sizes.values()), ""]
    )
    return _table(["figure", "value", "goal"], rows)


def _cpu_cap_status() -> dict[str, Any]:
    reason = CpuCap.probe()
    mechanism = None
    if reason is None:
        probe = CpuCap(0.5)
        mechanism = probe.mechanism
        probe.close()
    return {"available": reason is None, "reason": reason, "mechanism": mechanism, "period_us": DEFAULT_PERIOD_US}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few rounds: keeps the benchmark working in make test")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--svg", type=Path, default=ROOT / "benchmarks" / "figures.svg")
    args = parser.parse_args()
    rounds, warm, snap_rounds = (2, 5, 2) if args.quick else (11, 100, 11)
    invocations, early = (300, 100) if args.quick else (10_000, 100)

    # A SIGTERM (a CI timeout, make interrupted) unwinds like Ctrl-C, so every cap and runtime is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in CpuCap.remove_stale():
        log(f"removed {name}, a CPU cap left behind by a run that was killed")
    cap = _cpu_cap_status()
    if not cap["available"]:
        log(f"no CPU cap: {cap['reason']}; reporting uncapped figures only")
    sizes: tuple[int | None, ...] = SIZES_MB if cap["available"] else (None,)
    refresher_sizes: tuple[int | None, ...] = REFRESHER_SIZES_MB if cap["available"] else (None,)
    results: dict[str, Any] = {"quick": args.quick, "cpu_cap": cap}
    cold_starts = len(sizes) * len(SUBJECTS) + len(refresher_sizes) * len(REFRESHER_SUBJECTS)
    PROGRESS.start(rounds * cold_starts + snap_rounds * 2 + 2)
    with local_stack() as stack, ExitStack() as running:
        stack.client.put_secret_value(SecretId=stack.signing_secret_arn, SecretString=stack.kustomer_secret)
        log("mint cold starts and warm invocations...")
        results["mint"] = mint_cold_and_warm(Subjects(stack, running), sizes, rounds, warm)
        log("refresher cold starts...")
        results["refresher_cold"] = refresher_cold(stack, refresher_sizes, rounds)
        log("SnapStart (simulated)...")
        results["snapstart"] = snapstart(stack, SNAPSTART_SIZE_MB if cap["available"] else None, snap_rounds)
        log("secrets manager reads and memory...")
        results["reads_memory"] = reads_and_memory(stack, invocations, early)
        PROGRESS.tick(f"{invocations} invocations in one container")
        log("refresher counts...")
        results["refresh"] = refresher_counts(stack)
        PROGRESS.tick("refresher counts")
    results["cost"] = cost_per_million_tokens(results["mint"])
    results["size_bytes"] = package_sizes()
    results["goals"] = GOALS
    results["machine"] = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "arch": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report(results))
    print(f"written: {args.json}")
    if not args.quick:  # the quick run's figures mean little; the SVG shows a full run's
        from benchmarks.plot import draw

        draw(results, args.svg)
        print(f"drawn: {args.svg}")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
