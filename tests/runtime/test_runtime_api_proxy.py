"""The benchmark's view of Lambda's phases: the Runtime API proxy sees INIT end, and the CPU cap takes hold then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.harness.cpu_cap import CpuCap, lambda_cpu_share
from tools.harness.lambda_runtime import LambdaRuntime
from tools.harness.runtime_api_proxy import RuntimeApiProxy

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events" / "mint-token-external-id.json").read_text(encoding="utf-8"))


def _bare_runtime(tmp_path: Path, proxy: RuntimeApiProxy) -> LambdaRuntime:
    return LambdaRuntime(
        "bench-bare",
        handler="app.lambda_handler",
        environment={},
        task_root=ROOT / "benchmarks" / "subjects" / "bare",
        layer_python=tmp_path,
        runtime_api_proxy=proxy,
    )


def test_the_proxy_sees_init_end_before_the_first_event_and_times_each_invocation(tmp_path: Path) -> None:
    # Given a runtime that reaches the Runtime API through the proxy, with a hook on the end of INIT
    seen: list[tuple[float | None, int]] = []
    proxy = RuntimeApiProxy(lambda: seen.append((proxy.times.init_done, len(proxy.times.event_handed))))
    runtime = _bare_runtime(tmp_path, proxy)
    try:
        # When it is invoked three times
        runtime.start()
        answers = [runtime.invoke(EVENT) for _ in range(3)]
    finally:
        runtime.close()
    # Then every invocation answered through the proxy
    assert [answer.payload for answer in answers] == [{"statusCode": 200, "body": "ok"}] * 3
    # And the hook ran once, at the end of INIT, before any event was handed to the runtime
    assert len(seen) == 1
    assert seen[0][0] is not None
    assert seen[0][1] == 0
    assert proxy.hook_error is None
    # And each invocation has a duration
    assert len(proxy.times.invocation_ms()) == 3
    assert all(ms >= 0 for ms in proxy.times.invocation_ms())


def test_the_cap_holds_the_runtime_process_from_the_end_of_init(tmp_path: Path) -> None:
    reason = CpuCap.probe()
    if reason is not None:
        pytest.skip(f"no cgroup cpu controller to cap with here: {reason}")
    # Given a 128 MB cap put on the runtime when INIT ends
    cap = CpuCap(lambda_cpu_share(128))
    in_cap_at_init_end: list[bool] = []

    def cap_runtime() -> None:
        pid = runtime.runtime_pid()
        assert pid is not None
        in_cap_at_init_end.append(str(pid) in (cap.folder / "cgroup.procs").read_text().split())
        cap.add(pid)

    proxy = RuntimeApiProxy(cap_runtime)
    runtime = _bare_runtime(tmp_path, proxy)
    try:
        # When the function is invoked
        runtime.start()
        answer = runtime.invoke(EVENT)
        pid = runtime.runtime_pid()
        # Then INIT ran outside the cap, and the runtime process is inside it afterwards
        assert answer.payload == {"statusCode": 200, "body": "ok"}
        assert in_cap_at_init_end == [False]
        assert str(pid) in (cap.folder / "cgroup.procs").read_text().split()
        # And the cap's quota is 128/1769 of the period
        assert cap.quota_us == round(128 / 1769 * cap.period_us)
    finally:
        runtime.close()
        cap.close()
    assert not cap.folder.exists()


def test_a_cap_left_behind_by_a_killed_run_is_removed_and_a_live_one_is_kept() -> None:
    reason = CpuCap.probe()
    if reason is not None:
        pytest.skip(f"no cgroup cpu controller to cap with here: {reason}")
    # Given a cap of this (live) process, and one named after a process that no longer exists
    live = CpuCap(0.5)
    dead_owner = next(pid for pid in range(4_194_000, 4_194_304) if not Path(f"/proc/{pid}").exists())
    stale = live.folder.parent / f"lambda-cpu-{dead_owner}-1"
    stale.mkdir()
    try:
        # When stale caps are swept
        removed = CpuCap.remove_stale()
        # Then only the dead run's cap is gone
        assert stale.name in removed
        assert not stale.exists()
        assert live.folder.exists()
    finally:
        live.close()
        if stale.exists():
            stale.rmdir()
