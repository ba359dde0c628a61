"""Holds processes to a share of one CPU with the Linux cgroup cpu controller, as Lambda does per invocation.

Lambda gives an invocation memory/1769 of one vCPU (one vCPU at 1,769 MB). Here a
cgroup of our own gets a CFS quota of share x period per period: cgroup v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`, or cgroup v2 `cpu.max`. It needs write
access to the cgroup tree (root, as in CI). `CpuCap.probe()` says whether the
controller can be used here and, when not, why, so a caller can report the
uncapped figures only instead of inventing capped ones.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

ONE_VCPU_MB = 1769
DEFAULT_PERIOD_US = 100_000  # the kernel's default CFS period
_names = itertools.count(1)


def lambda_cpu_share(memory_mb: int) -> float:
    """The share of one vCPU Lambda gives a function of this memory size (capped at one vCPU here)."""
    return min(memory_mb / ONE_VCPU_MB, 1.0)


@dataclass(frozen=True)
class CgroupRoot:
    """Where new cgroups go: the folder of this process's own cgroup, and the interface version."""

    folder: Path
    version: int


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of every mount, from /proc/self/mountinfo."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3:
            mounts.append((fields[4], tail[0], tail[2]))
    return mounts


def _own_cgroup(version: int) -> str:
    """This process's cgroup path in the v1 cpu hierarchy or in the v2 unified one."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if version == 2 and number == "0" and controllers == "":
            return path
        if version == 1 and "cpu" in controllers.split(","):
            return path
    raise LookupError(f"this process is in no cgroup v{version} cpu hierarchy")


def _find_root() -> CgroupRoot:
    problems = []
    for mount_point, fstype, options in _mounts():
        if fstype == "cgroup" and "cpu" in options.split(","):
            folder = Path(mount_point) / _own_cgroup(1).lstrip("/")
            if (folder / "cpu.cfs_quota_us").exists():
                return CgroupRoot(folder, 1)
            problems.append(f"{folder} has no cpu.cfs_quota_us")
    for mount_point, fstype, _ in _mounts():
        if fstype == "cgroup2":
            folder = Path(mount_point) / _own_cgroup(2).lstrip("/")
            controllers = (folder / "cgroup.controllers").read_text().split()
            if "cpu" in controllers:
                return CgroupRoot(folder, 2)
            problems.append(f"the cgroup v2 cpu controller is not available in {folder}")
    raise LookupError("; ".join(problems) or "no cgroup cpu controller is mounted")


class CpuCap:
    """A cgroup of our own with a CPU quota; processes added to it run at most `share` of one CPU."""

    def __init__(self, share: float, period_us: int = DEFAULT_PERIOD_US, root: CgroupRoot | None = None) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a CPU share is in (0, 1], got {share}")
        self.share = share
        self.period_us = period_us
        self.quota_us = max(1000, round(share * period_us))  # the kernel refuses a quota under 1 ms
        self._root = root or _find_root()
        self.folder = self._root.folder / f"lambda-cpu-{os.getpid()}-{next(_names)}"
        self.folder.mkdir()
        try:
            if self._root.version == 1:
                (self.folder / "cpu.cfs_period_us").write_text(str(self.period_us))
                (self.folder / "cpu.cfs_quota_us").write_text(str(self.quota_us))
            else:
                (self.folder / "cpu.max").write_text(f"{self.quota_us} {self.period_us}")
        except OSError:
            self.folder.rmdir()
            raise

    @property
    def mechanism(self) -> str:
        return "cgroup v1 cpu.cfs_quota_us" if self._root.version == 1 else "cgroup v2 cpu.max"

    @classmethod
    def probe(cls) -> str | None:
        """None when a cap can be made here, else why not (in words for a report)."""
        try:
            root = _find_root()
            if root.version == 2:
                # A v2 child gets the cpu controller only if this cgroup delegates it.
                subtree = (root.folder / "cgroup.subtree_control").read_text().split()
                if "cpu" not in subtree:
                    (root.folder / "cgroup.subtree_control").write_text("+cpu")
            cls(0.5, root=root).close()
        except (OSError, LookupError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def add(self, pid: int) -> None:
        """Moves the process (all its threads) into the cap."""
        (self.folder / "cgroup.procs").write_text(str(pid))

    def throttled_us(self) -> int:
        """Time the cap held the cgroup's processes back so far, in microseconds."""
        for line in (self.folder / "cpu.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "throttled_time":  # v1, nanoseconds
                return int(value) // 1000
            if name == "throttled_usec":  # v2
                return int(value)
        return 0

    def close(self) -> None:
        """Moves any process still inside back to the parent cgroup and removes the cap."""
        _remove(self.folder, self._root.folder)

    @classmethod
    def remove_stale(cls) -> list[str]:
        """Removes caps left behind by runs that were killed (their owner process is gone); returns their names."""
        try:
            root = _find_root()
        except (OSError, LookupError):
            return []
        removed = []
        for folder in root.folder.glob("lambda-cpu-*-*"):
            owner = folder.name.split("-")[2]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                _remove(folder, root.folder)
                removed.append(folder.name)
        return removed


def _remove(folder: Path, parent: Path) -> None:
    if not folder.exists():
        return
    for _ in range(50):
        for pid in (folder / "cgroup.procs").read_text().split():
            try:
                (parent / "cgroup.procs").write_text(pid)
            except OSError:  # it exited meanwhile
                continue
        try:
            folder.rmdir()
            return
        except OSError:  # a process killed a moment ago can keep the cgroup busy until it is reaped
            time.sleep(0.02)
    folder.rmdir()
