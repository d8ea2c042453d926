"""CPU quotas for endpoint processes: a weak device emulated with a CFS bandwidth limit.

cgroup v2 (``cpu.max`` in a cgroup2 hierarchy whose ``cgroup.controllers`` lists ``cpu``) or v1
(``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` under the v1 ``cpu`` controller, as on these machines).
Groups are named ``pktc-<run id>-<endpoint>``; :meth:`CpuLimit.close` moves nothing and removes the
group once its processes are gone, and :func:`clean_stale` removes groups of runs that died.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from ..core.errors import PktcharError

PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2_CANDIDATES = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
PREFIX = "pktc-"


def _v2_root() -> Path | None:
    for root in V2_CANDIDATES:
        ctl = root / "cgroup.controllers"
        if ctl.exists() and "cpu" in ctl.read_text().split():
            return root
    return None


def available() -> str | None:
    """Which CPU controller can limit a process here: "v2", "v1", or None."""
    if _v2_root() is not None:
        return "v2"
    if (V1 / "cpu.cfs_quota_us").exists():
        return "v1"
    return None


def check_fraction(fraction: float) -> float:
    """``fraction`` checked: cores of this machine (its one caller's field, ``UploadConfig.device_cpu``)."""
    cores = os.cpu_count() or 1
    if not 0 < fraction <= cores:
        raise PktcharError(f"`device_cpu` must be in (0, {cores}] (cores of this machine), got {fraction:g}")
    return fraction


class CpuLimit:
    """A cgroup that gives its processes ``fraction`` of one core (CFS quota per ``period_us``, 100 ms
    unless given)."""

    def __init__(self, name: str, fraction: float, period_us: int = PERIOD_US) -> None:
        self.fraction = check_fraction(fraction)
        self.kind = available()
        if self.kind is None:
            raise PktcharError(
                "`device_cpu` needs a cgroup CPU controller (cgroup v2 cpu.max or v1 cpu.cfs_quota_us); "
                "this machine has neither"
            )
        root = _v2_root() if self.kind == "v2" else V1
        assert root is not None
        self.path = root / f"{PREFIX}{name}"
        self.period_us = period_us
        self.quota_us = max(1000, round(fraction * period_us))

    def create(self) -> CpuLimit:
        self.path.mkdir(exist_ok=True)
        if self.kind == "v2":
            (self.path / "cpu.max").write_text(f"{self.quota_us} {self.period_us}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(self.period_us))
            (self.path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        return self

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` started inside this group (the shell joins it, then becomes ``cmd``). Not for
        ``ip netns exec``, which mounts a fresh /sys without the cgroup trees: use :meth:`add` there."""
        import shlex

        procs = self.path / "cgroup.procs"
        return ["sh", "-c", f"echo $$ > {shlex.quote(str(procs))} && exec {shlex.join(cmd)}"]

    def add(self, pid: int) -> None:
        """Move a running process (and the threads and children it starts from now on) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def describe(self) -> str:
        knob = "cpu.max" if self.kind == "v2" else "cpu.cfs_quota_us"
        return f"{self.fraction:g} of a core (cgroup {self.kind} {knob} = {self.quota_us} us per {self.period_us} us)"

    def close(self) -> None:
        remove(self.path)


def remove(path: Path) -> None:
    """Kill what is left in a group and remove it."""
    procs = path / "cgroup.procs"
    for _ in range(20):
        if not path.exists():
            return
        pids = procs.read_text().split() if procs.exists() else []
        for p in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(p), 9)
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def clean_stale(live_ids: set[str]) -> list[str]:
    """Remove pktchar groups whose run id is not live."""
    removed = []
    roots = [r for r in (V1, *V2_CANDIDATES) if r.is_dir()]
    for root in roots:
        for g in root.glob(f"{PREFIX}*"):
            run_id = g.name.split("-")[1] if g.name.count("-") >= 2 else ""
            if run_id not in live_ids and g.is_dir():
                remove(g)
                removed.append(str(g))
    return removed
