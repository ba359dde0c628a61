"""make bench: figures for the mint and the refresher, each a ratio or a count measured in one run.

The machine is noisy, so every time is compared with a reference measured in
the same run, subjects alternate, and each figure is the median of the rounds.

  cold     process start -> first answer in the Lambda runtime (RIE + awslambdaric),
           for bare / floor / mint / naive subjects
  warm     the mint handler in one process with the secret cached vs raw jwt.encode
  reads    GetSecretValue calls over many warm invocations in one container
  memory   peak RSS of the runtime process, and its growth between two invocation counts
  refresh  Kustomer calls and Secrets Manager writes per refresher run, changed and unchanged
  size     the built layer and functions, zipped

Usage: python benchmarks/bench.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.events import FakeLambdaContext  # noqa: E402
from tests.support.fake_kustomer import secret_reply  # noqa: E402
from tests.support.fake_secrets_extension import FakeSecretsExtension  # noqa: E402
from tests.support.lambda_runtime import BUILD_DIR, LambdaRuntime  # noqa: E402
from tests.support.sm_proxy import SecretsManagerProxy  # noqa: E402
from tools.local_stack import LocalStack, local_stack  # noqa: E402

SUBJECTS = ROOT / "benchmarks" / "subjects"
MINT_EVENT = json.loads((ROOT / "events" / "mint-token-external-id.json").read_text(encoding="utf-8"))
GOALS = {
    "cold_mint_over_floor": 1.2,
    "warm_mint_over_jwt_encode": 5.0,
    "get_secret_value_per_container_per_ttl": 1,
    "peak_rss_mib": 64.0,
    "rss_growth_mib": 1.0,
    "kustomer_calls_per_refresh": 1,
    "writes_when_unchanged": 0,
}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- cold start ------------------------------------------------------------------------------------


@contextmanager
def _naive_layer() -> Iterator[Path]:
    """The built layer without its bytecode, as a first handler would ship."""
    with tempfile.TemporaryDirectory(prefix="naive-layer-") as folder:
        target = Path(folder) / "python"
        shutil.copytree(BUILD_DIR / "SharedLayer" / "python", target, ignore=shutil.ignore_patterns("__pycache__"))
        yield target


EXAMPLE_EXTENSION_LAYER = (
    "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:1"
)


def _cold_runtime(
    subject: str, stack: LocalStack, naive_layer: Path, empty_layer: Path, extension: FakeSecretsExtension
) -> LambdaRuntime:
    mint = stack.runtime("MintTokenFunction")
    if subject == "mint":
        return mint
    if subject == "mint_extension":
        through_extension = stack.runtime("MintTokenFunction", {"SecretsExtensionLayerArn": EXAMPLE_EXTENSION_LAYER})
        through_extension.environment["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(extension.port)
        return through_extension
    task_root = SUBJECTS / subject
    layer = {"bare": empty_layer, "floor": empty_layer, "naive": naive_layer}[subject]
    return LambdaRuntime(
        f"bench-{subject}",
        handler="app.lambda_handler",
        environment=mint.environment,
        timeout_seconds=mint.timeout_seconds,
        memory_mb=mint.memory_mb,
        task_root=task_root,
        layer_python=layer,
    )


def cold_start(stack: LocalStack, rounds: int) -> dict[str, Any]:
    subjects = ["bare", "floor", "mint", "naive", "mint_extension"]
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    os.environ["AWS_SESSION_TOKEN"] = "local-session-token"
    extension = FakeSecretsExtension(stack.secrets_manager_url, os.environ["AWS_SESSION_TOKEN"]).start()
    with _naive_layer() as naive_layer, tempfile.TemporaryDirectory(prefix="empty-layer-") as empty:
        for round_number in range(rounds):
            order = subjects[round_number % len(subjects) :] + subjects[: round_number % len(subjects)]
            for subject in order:
                runtime = _cold_runtime(subject, stack, naive_layer, Path(empty), extension)
                started = time.perf_counter()
                runtime.start()
                invocation = runtime.invoke(MINT_EVENT)
                elapsed = time.perf_counter() - started
                runtime.close()
                if invocation.error or invocation.payload.get("statusCode") != 200:
                    raise RuntimeError(f"cold start subject {subject} failed: {invocation.error or invocation.payload}")
                samples[subject].append(elapsed * 1000)
            log(f"  cold round {round_number + 1}/{rounds}")
    extension.stop()
    median = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "median_ms": {name: round(value, 1) for name, value in median.items()},
        "samples_ms": {name: [round(v, 1) for v in values] for name, values in samples.items()},
        "mint_over_floor": round(median["mint"] / median["floor"], 3),
        "mint_over_bare": round(median["mint"] / median["bare"], 3),
        "naive_over_floor": round(median["naive"] / median["floor"], 3),
        "mint_extension_over_floor": round(median["mint_extension"] / median["floor"], 3),
        "rounds": rounds,
    }


# --- warm cost ---------------------------------------------------------------------------------------


@contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """Logs and metrics still get formatted and written, as in Lambda; only the bytes go nowhere."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)


def _load_built_mint(stack: LocalStack) -> Any:
    os.environ.update(stack.runtime("MintTokenFunction").environment)
    for folder in (BUILD_DIR / "SharedLayer" / "python", BUILD_DIR / "MintTokenFunction"):
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("bench_mint_app", BUILD_DIR / "MintTokenFunction" / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time_calls(call: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count * 1e6


def warm_cost(stack: LocalStack, rounds: int, calls: int) -> dict[str, Any]:
    import jwt

    mint = _load_built_mint(stack)
    context = FakeLambdaContext()
    with _stdout_to_devnull():
        answer = mint.lambda_handler(MINT_EVENT, context)
    if answer["statusCode"] != 200:
        raise RuntimeError(f"warm mint answered {answer['statusCode']}")
    secret = stack.kustomer_secret
    payload = {"externalId": MINT_EVENT["requestContext"]["authorizer"]["jwt"]["claims"]["sub"], "iat": 1_795_608_000}
    handler_us, encode_us = [], []
    with _stdout_to_devnull():
        for _ in range(rounds):
            handler_us.append(_time_calls(lambda: mint.lambda_handler(MINT_EVENT, context), calls))
            encode_us.append(_time_calls(lambda: jwt.encode(payload, secret, algorithm="HS256"), calls))
    handler, encode = statistics.median(handler_us), statistics.median(encode_us)
    return {
        "handler_us": round(handler, 1),
        "jwt_encode_us": round(encode, 1),
        "handler_over_jwt_encode": round(handler / encode, 2),
        "rounds": rounds,
        "calls_per_round": calls,
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


# --- refresher ----------------------------------------------------------------------------------------


def refresher(stack: LocalStack) -> dict[str, Any]:
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
                invocation = runtime.invoke({})
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


def report(results: dict[str, Any]) -> str:
    cold, warm, reads, refresh, size = (
        results["cold"],
        results["warm"],
        results["reads_memory"],
        results["refresh"],
        results["size_bytes"],
    )
    rows = [
        ("cold start, median ms", "", ""),
        ("  bare (constant handler)", f"{cold['median_ms']['bare']:.0f}", ""),
        ("  floor (boto3 + client + GetSecretValue + HMAC)", f"{cold['median_ms']['floor']:.0f}", ""),
        ("  mint (built)", f"{cold['median_ms']['mint']:.0f}", ""),
        ("  naive (module-level Powertools + PyJWT, no bytecode)", f"{cold['median_ms']['naive']:.0f}", ""),
        ("  mint via the Secrets extension (opt-in, no boto3)*", f"{cold['median_ms']['mint_extension']:.0f}", ""),
        (
            "cold mint / floor",
            f"{cold['mint_over_floor']:.2f}",
            f"<= {GOALS['cold_mint_over_floor']} {_verdict(cold['mint_over_floor'], GOALS['cold_mint_over_floor'])}",
        ),
        ("cold mint / bare", f"{cold['mint_over_bare']:.2f}", ""),
        ("cold naive / floor", f"{cold['naive_over_floor']:.2f}", ""),
        ("cold mint via extension / floor*", f"{cold['mint_extension_over_floor']:.2f}", "below 1: the moonshot"),
        (
            "warm mint / jwt.encode",
            f"{warm['handler_over_jwt_encode']:.1f} ({warm['handler_us']:.0f} us / {warm['jwt_encode_us']:.0f} us)",
            f"<= {GOALS['warm_mint_over_jwt_encode']} "
            + _verdict(warm["handler_over_jwt_encode"], GOALS["warm_mint_over_jwt_encode"]),
        ),
        (
            f"GetSecretValue in {reads['invocations']} warm invocations (TTL {reads['ttl_seconds']} s)",
            str(reads["get_secret_value_calls"]),
            f"<= 1 {_verdict(reads['get_secret_value_calls'], 1)}",
        ),
        (
            "peak RSS of the runtime process, MiB",
            f"{reads['peak_rss_mib']:.1f}",
            f"<= {GOALS['peak_rss_mib']:.0f} {_verdict(reads['peak_rss_mib'], GOALS['peak_rss_mib'])}",
        ),
        (
            "RSS growth " + " -> ".join(f"#{n}" for n in reads["rss_at_invocation"]) + ", MiB",
            f"{reads['rss_growth_mib']:.2f}",
            f"< {GOALS['rss_growth_mib']:.0f} {_verdict(reads['rss_growth_mib'], GOALS['rss_growth_mib'])}",
        ),
        (
            "refresher, secret changed: Kustomer calls / SM writes",
            f"{refresh['changed']['kustomer_calls']} / {refresh['changed']['secrets_manager_writes']}",
            f"1 call {_verdict(refresh['changed']['kustomer_calls'], 1)}",
        ),
        (
            "refresher, unchanged: Kustomer calls / SM writes",
            f"{refresh['unchanged']['kustomer_calls']} / {refresh['unchanged']['secrets_manager_writes']}",
            f"0 writes {_verdict(refresh['unchanged']['secrets_manager_writes'], 0)}",
        ),
        ("zipped size, KiB: layer / mint / refresher", " / ".join(f"{v / 1024:.0f}" for v in size.values()), ""),
    ]
    width = max(len(r[0]) for r in rows) + 2
    value_width = max(len(r[1]) for r in rows) + 2
    lines = [f"{'figure':<{width}}{'value':<{value_width}}goal"]
    lines += [f"{name:<{width}}{value:<{value_width}}{goal}" for name, value, goal in rows]
    lines.append("* the extension is a stand-in on loopback: its own start inside Lambda is not counted")
    machine = results["machine"]
    lines.append(f"machine: {machine['cpu']} ({machine['cores']} cores), {machine['python']}, {machine['date']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few rounds: keeps the benchmark working in make test")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = parser.parse_args()
    cold_rounds, warm_rounds, warm_calls = (3, 3, 200) if args.quick else (11, 11, 2000)
    invocations, early = (300, 100) if args.quick else (10_000, 100)

    results: dict[str, Any] = {"quick": args.quick}
    with local_stack() as stack:
        stack.client.put_secret_value(SecretId=stack.signing_secret_arn, SecretString=stack.kustomer_secret)
        log("cold start...")
        results["cold"] = cold_start(stack, cold_rounds)
        log("secrets manager reads and memory...")
        results["reads_memory"] = reads_and_memory(stack, invocations, early)
        log("refresher...")
        results["refresh"] = refresher(stack)
        log("warm cost...")
        results["warm"] = warm_cost(stack, warm_rounds, warm_calls)
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
