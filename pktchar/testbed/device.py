"""The emulated device: a fraction of one of this machine's cores, how it is made, and what it measures.

Two mechanisms (``docs/architecture.md`` has the measurements that chose the default):

* ``dilate`` (default): time dilation inside the device's own process (:mod:`.dilate`): each torch module
  call of the computing thread is charged what it cost in a warm-up, and the thread sleeps the charge x
  (1/fraction - 1), in sleeps of at least 2 ms and exactly at the end of each unit of work, so work of CPU
  time c takes c / fraction at every length from 1 ms to 1 s. No root, no cgroup.
* ``cfs``: a CFS bandwidth quota on the whole process (:class:`.cgroup.CpuLimit`) with the shortest period
  the kernel allows at this fraction (quota 1 ms, period 1 ms / fraction). It limits every thread and the
  kernel's work for them too, but a unit shorter than the quota runs at full speed when it starts with
  quota left, and the period's refill overshoots (``pktchar testbed device`` measures both).

:func:`measure` runs real work units (a ResNet bottleneck, repeated to the unit's length) in a fresh
process, each unit free and then under the mechanism, interleaved, and gives per unit the free time (its
CPU time run back to back: what it costs a core of its own on this machine, whatever else runs here), the
emulated time (the wall time of one unit after an idle gap: a device's work after a wait, a CFS period's
quota full again), the slowdown and its error against 1 / fraction.

``python -m pktchar.testbed.device SPEC`` is that process (SPEC: JSON).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import PktcharError
from ..core.phases import phase
from ..core.units import human_duration, parse_duration

MECHANISMS = ("dilate", "cfs")
DEFAULT_UNITS = (0.001, 0.01, 0.1, 1.0)
MIN_UNIT_S, MAX_UNIT_S = 0.001, 10.0
CHECK_UNIT_S = 0.01  # the unit whose slowdown an upload states
GAP_S = 0.05  # idle before each timed unit
WINDOW_S = 0.01  # inside a unit, the slowdown of each 10 ms of work
BLOCK = "ResNet bottleneck (256 channels at 28x28: 1x1, 3x3, 1x1 convolutions, batch norm, ReLU, one thread)"


@dataclass(frozen=True)
class DeviceCpu:
    """``fraction`` of one core, made by ``mechanism`` (``dilate`` or ``cfs``)."""

    fraction: float
    mechanism: str = "dilate"

    @property
    def period_us(self) -> int:
        """The CFS period: the shortest that gives this fraction a quota of at least 1 ms."""
        return min(1_000_000, max(1000, math.ceil(1000 / self.fraction)))

    @property
    def quota_us(self) -> int:
        return max(1000, round(self.fraction * self.period_us))

    def how(self) -> str:
        if self.mechanism == "dilate":
            return (f"time dilation (each torch module call of the device's computing thread takes "
                    f"{1 / self.fraction:.3g}x its warm CPU time, in sleeps)")  # fmt: skip
        return f"a CFS quota (cgroup, {self.quota_us} us per {self.period_us} us)"

    def describe(self, slowdown: float | None = None, at_s: float = CHECK_UNIT_S) -> str:
        """``0.25 of a core, by time dilation (...), measured slowdown 3.98x at 10 ms``."""
        text = f"{self.fraction:g} of a core, by {self.how()}"
        return text + (f", measured slowdown {slowdown:.2f}x at {human_duration(at_s)}" if slowdown else "")

    def limit(self, name: str) -> Any:
        """The cgroup of the ``cfs`` mechanism (not created yet)."""
        from .cgroup import CpuLimit

        return CpuLimit(name, self.fraction, self.period_us)


def check(
    fraction: float,
    mechanism: str = "dilate",
    fraction_field: str = "fraction",
    mechanism_field: str = "mechanism",
) -> DeviceCpu:
    """A device of ``fraction`` of a core by ``mechanism``; errors name the caller's fields."""
    if mechanism not in MECHANISMS:
        raise PktcharError(f"`{mechanism_field}` must be {' or '.join(MECHANISMS)}, got {mechanism!r}")
    if not 0 < fraction <= 1:
        raise PktcharError(f"`{fraction_field}` must be in (0, 1] (a fraction of one core), got {fraction:g}")
    if mechanism == "cfs":
        from .cgroup import available

        if available() is None:
            raise PktcharError(f"`{mechanism_field}` cfs needs a cgroup CPU controller (v2 cpu.max or v1 cpu.cfs_quota_us); "
                               "this machine has neither (dilate needs none)")  # fmt: skip
        if os.geteuid() != 0:
            raise PktcharError(f"`{mechanism_field}` cfs needs root (it makes a cgroup); dilate does not")
    return DeviceCpu(fraction, mechanism)


def parse_units(text: str) -> list[float]:
    """``1ms,10ms,100ms,1s`` -> seconds, each from 1 ms to 10 s."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise PktcharError("`units`: give one or more work units, e.g. 1ms,10ms,100ms,1s")
    out = []
    for p in parts:
        try:
            s = parse_duration(p, "work unit")
        except PktcharError as e:
            raise PktcharError(f"`units`: {e}") from None
        if not MIN_UNIT_S <= s <= MAX_UNIT_S:
            raise PktcharError(f"`units`: a work unit must be from 1 ms to 10 s, got {p!r}")
        out.append(s)
    return out


@dataclass
class UnitRow:
    unit_s: float  # the length asked for
    blocks: int  # bottlenecks run back to back
    free_s: float  # median CPU time of the unit, free, run back to back (warm)
    free_wall_s: float  # median wall time of the same (the machine's load adds to it)
    free_cold_s: float  # median CPU time, free, after an idle gap (this host's cold start)
    emulated_s: float  # median wall time under the mechanism
    emulated_cpu_s: float  # median CPU time under the mechanism
    slowdown: float  # emulated_s / free_s
    target: float  # 1 / fraction
    error: float  # slowdown / target - 1
    charged_s: float | None = None  # dilate: median work charged (what the unit's module calls cost warm)
    host_wait_s: float = 0.0  # median time the emulated unit waited for a core (this host's load)
    windows: dict[str, Any] | None = None  # inside the units: each 10 ms of work's slowdown (p5, median, p95)
    free_runs: list[float] = field(default_factory=list)
    emulated_runs: list[float] = field(default_factory=list)


@dataclass
class DeviceReport:
    device: DeviceCpu
    rows: list[UnitRow]
    repeats: int
    block_s: float  # one bottleneck's median CPU time, free
    load: tuple[float, float]  # 1-minute load average before and after
    gap_s: float = GAP_S
    work: str = BLOCK

    def row(self, unit_s: float) -> UnitRow | None:
        return next((r for r in self.rows if math.isclose(r.unit_s, unit_s)), None)

    def describe(self) -> str:
        r = self.row(CHECK_UNIT_S) or (self.rows[0] if self.rows else None)
        return self.device.describe(r.slowdown if r else None, r.unit_s if r else CHECK_UNIT_S)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "pktchar-device", "version": 1, "fraction": self.device.fraction,
                "mechanism": self.device.mechanism, "how": self.device.how(), "describe": self.describe(),
                "repeats": self.repeats, "gap_s": self.gap_s, "work": self.work, "block_s": self.block_s,
                "load": list(self.load), "units": [asdict(r) for r in self.rows]}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# the parent: a fresh process, in a cgroup for cfs


@contextlib.contextmanager
def cgroup_for(device: DeviceCpu, endpoint: str) -> Iterator[Any]:
    """A created ``cfs`` cgroup for ``device``, registered as a run (no other run's cleanup takes it),
    removed at the end with whatever is left in it."""
    from .netns import STATE_DIR, new_run_id

    rid = new_run_id()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = STATE_DIR / f"{rid}.json"
    state.write_text(json.dumps({"pid": os.getpid(), "endpoints": [endpoint]}))
    lim = device.limit(f"{rid}-{endpoint}")
    try:
        yield lim.create()
    finally:
        lim.close()
        state.unlink(missing_ok=True)


def measure(
    device: DeviceCpu, units: list[float] | tuple[float, ...] = DEFAULT_UNITS, repeats: int = 3
) -> DeviceReport:
    """Each unit free and under ``device``'s mechanism, ``repeats`` times, in a fresh process."""
    if repeats < 1:
        raise PktcharError(f"`repeats` must be 1 or more, got {repeats}")
    spec: dict[str, Any] = {"fraction": device.fraction, "mechanism": device.mechanism, "units": list(units),
                            "repeats": repeats, "gap_s": max(GAP_S, 2 * device.period_us / 1e6)}  # fmt: skip
    load0 = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        if device.mechanism == "cfs":
            lim = stack.enter_context(cgroup_for(device, "device"))
            spec["cgroup"] = {
                "group": str(lim.path / "cgroup.procs"),
                "home": str(lim.path.parent / "cgroup.procs"),
            }
        out = _run_worker(spec, budget=sum(units) * (2 + 1 / device.fraction) * repeats * 1.5 + 120)
    rows = [UnitRow(**r) for r in out["rows"]]
    return DeviceReport(device, rows, repeats, out["block_s"], (load0, os.getloadavg()[0]), spec["gap_s"])


def _run_worker(spec: dict[str, Any], budget: float) -> dict[str, Any]:
    """Run the worker, saying each unit as it starts; its last line, or one-line errors."""
    proc = subprocess.Popen([sys.executable, "-m", "pktchar.testbed.device", json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + budget
    last: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            last = json.loads(line)
            if "phase" in last:
                phase(last["phase"])
            if time.monotonic() > deadline:
                raise PktcharError(f"the device measurement did not finish within {budget:.0f} s")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if "rows" not in last:
        err = (
            last.get("error")
            or ((proc.stderr.read() if proc.stderr else "").strip().splitlines() or ["?"])[-1]
        )
        raise PktcharError(f"the device measurement failed: {err}")
    return last


# ----------------------------------------------------------------------------------------------
# the worker (torch)


class _Mechanism:
    """The worker's side of a mechanism: ``limited()`` around the idle gap and the unit (cfs: in the
    cgroup), ``unit()`` around the unit alone (dilate: one dilation context)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.dilation = None
        if spec["mechanism"] == "dilate":
            from .dilate import MIN_SLEEP_NS, Dilation

            self.dilation = Dilation(spec["fraction"], spec.get("min_sleep_ns", MIN_SLEEP_NS))

    @contextlib.contextmanager
    def limited(self) -> Iterator[None]:
        cg = self.spec.get("cgroup")
        if cg is None:
            yield
            return
        with open(cg["group"], "w") as f:
            f.write(str(os.getpid()))
        try:
            yield
        finally:
            with open(cg["home"], "w") as f:
                f.write(str(os.getpid()))

    def learning(self) -> Any:
        return self.dilation.learning() if self.dilation is not None else contextlib.nullcontext()

    def charged(self) -> float:
        """Seconds of work the dilation has charged so far (0 for cfs)."""
        return self.dilation.work_ns / 1e9 if self.dilation is not None else 0.0

    def unit(self) -> Any:
        return self.dilation if self.dilation is not None else contextlib.nullcontext()


def _work() -> tuple[Any, float]:
    """The work: ``run(n)`` runs n bottlenecks; and one bottleneck's median CPU seconds."""
    import torch
    from torchvision.models.resnet import Bottleneck

    torch.set_num_threads(1)
    torch.manual_seed(0)
    block = Bottleneck(256, 64).eval()
    x = torch.randn(1, 256, 28, 28)

    def run(n: int, marks: list[int] | None = None) -> None:
        with torch.no_grad():
            for _ in range(n):
                block(x)
                if marks is not None:
                    marks.append(time.perf_counter_ns())

    run(10)  # warm up
    return run, statistics.median(_timed(run, 1)[0] for _ in range(21))


def _run_queue_s() -> float:
    """Seconds this thread has waited for a core while runnable (the kernel's schedstat; 0 without it)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _timed(run: Any, n: int, ctx: Any = None) -> tuple[float, float]:
    """(CPU s, wall s) of ``run(n)``, inside ``ctx`` when given."""
    c, w = time.thread_time_ns(), time.perf_counter_ns()
    with ctx if ctx is not None else contextlib.nullcontext():
        run(n)
    return (time.thread_time_ns() - c) / 1e9, (time.perf_counter_ns() - w) / 1e9


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    run, block_s = _work()
    mech = _Mechanism(spec)
    f, gap = spec["fraction"], spec["gap_s"]
    rows = []
    for unit in spec["units"]:
        n = max(1, round(unit / block_s))
        print(json.dumps({"phase": f"{human_duration(unit)} units ({n} x a bottleneck), {spec['repeats']} times "
                                   "free and emulated"}), flush=True)  # fmt: skip
        warm, cold, emu, charged, waits, marks = [], [], [], [], [], []
        for _ in range(spec["repeats"]):
            with mech.learning():  # a warm-up, and dilation's: what each module call costs here now
                run(max(n, 20))
            warm.append(_timed(run, n))  # back to back: warm
            time.sleep(gap)
            cold.append(_timed(run, n))  # after a wait, as the emulated unit: this host's cold start
            with mech.limited():
                time.sleep(gap)
                before, waited, stamps = mech.charged(), _run_queue_s(), [time.perf_counter_ns()]
                emu.append(_timed(lambda k, stamps=stamps: run(k, stamps), n, mech.unit()))
                charged.append(mech.charged() - before)
                waits.append(_run_queue_s() - waited)
                marks.append(stamps)
        row = _row(unit, n, f, warm, cold, emu)
        rows.append(row | {"charged_s": statistics.median(charged) or None, "host_wait_s": statistics.median(waits),
                           "windows": _windows(marks, row["free_s"] / n)})  # fmt: skip
    return {"block_s": block_s, "rows": rows}


def _windows(marks: list[list[int]], block_s: float) -> dict[str, Any] | None:
    """Inside the emulated units: the slowdown of each :data:`WINDOW_S` of work (wall time of its
    bottlenecks against their free time), as its 5th percentile, median and 95th; None below 5 windows."""
    per = max(1, round(WINDOW_S / block_s))
    got = sorted(
        (m[i + per] - m[i]) / 1e9 / (per * block_s) for m in marks for i in range(0, len(m) - per, per)
    )
    if len(got) < 5:
        return None
    pick = [got[round(q * (len(got) - 1))] for q in (0.05, 0.5, 0.95)]
    return {"window_s": per * block_s, "count": len(got), "p5": pick[0], "median": pick[1], "p95": pick[2]}


def _row(unit: float, n: int, f: float, warm: list[tuple[float, float]], cold: list[tuple[float, float]],
         emu: list[tuple[float, float]]) -> dict[str, Any]:  # fmt: skip
    free_s = statistics.median(c for c, _ in warm)
    emulated_s = statistics.median(w for _, w in emu)
    slowdown = emulated_s / free_s
    return {"unit_s": unit, "blocks": n, "free_s": free_s, "free_wall_s": statistics.median(w for _, w in warm),
            "free_cold_s": statistics.median(c for c, _ in cold), "emulated_s": emulated_s,
            "emulated_cpu_s": statistics.median(c for c, _ in emu), "slowdown": slowdown, "target": 1 / f,
            "error": slowdown * f - 1, "free_runs": [c for c, _ in warm], "emulated_runs": [w for _, w in emu]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        out = worker(json.loads(args[0]))
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        return 2
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
