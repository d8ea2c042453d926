"""Time dilation: a thread that computes as if its core were ``fraction`` of this one, at every time scale
from a few milliseconds up, and exactly at the end of every unit of work it wraps.

Why not a CFS quota (``docs/architecture.md`` has the numbers; ``pktchar testbed device`` measures both):
the kernel's least quota is 1 ms and a period is at most 1 s, so at 0.1 of a core the shortest period is
10 ms; work shorter than the quota that starts with quota left runs at full speed, and the refill and the
tick overshoot on longer work (13x for 100 ms of work at 0.1 of a core).

Here the thread pays for its own work with sleep. Inside a :class:`Dilation` (a context manager), a forward
hook on every module call (``torch.nn.modules.module.register_module_forward_hook``, present only while
some thread is inside one) charges the work done since the previous call, and an account in wall time
keeps the rest: the charge x 1/fraction is owed, the wall time that passed is paid. When the debt reaches
:data:`MIN_SLEEP_NS` the thread sleeps it. Measured on this project's machines (2 vCPUs of a shared host),
two things shaped what is charged and when it is paid:

* A sleep costs the work after it its caches (the vCPU halts, other tenants take the core): a 1 ms ResNet
  bottleneck takes 1.2-1.8 ms of CPU after a 10-50 ms sleep. Charging the CPU time each call took would
  stretch that host effect by 1/fraction too (20-60% over the target). So a call is charged what it cost
  in a warm-up at full speed (:meth:`Dilation.learning`: the median of its warm-up calls, a call being
  one module with one output shape, less what the hook itself adds to a call, about 2 us); a call the warm-up did not make, the least it has taken; work after
  the last call of a context, what it took. The time a call takes beyond its charge counts as paid.
* So does any other delay of the host (a wait for a core on a loaded machine, a sleep's overshoot), up
  to :data:`MAX_CREDIT_NS` ahead: the device's time is its own, not the host's load.
* Sleeps are at least :data:`MIN_SLEEP_NS` (2 ms): the cold start after each sleep must fit in the
  device's slack (at 0.5 of a core, as long as the work itself), which sleeping after every call (ten a
  millisecond) overran. The device is uniform at scales of a few milliseconds and up; the end of a
  context pays the rest to the microsecond (a sleep, then a spin of at most :data:`SPIN_NS`), so a wrapped
  unit of work takes its charge / fraction, whether 1 ms or 1 s: wrap each unit that is timed.

Only the thread inside the context is slowed, and only its torch work (one intra-op thread: the device
processes set ``torch.set_num_threads(1)``); other threads (sockets) run at this machine's speed. Within
one module call the work runs at full speed and its sleep follows it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

MIN_SLEEP_NS = 2_000_000  # pay a debt once it is this large (see the module)
MAX_CREDIT_NS = 10_000_000  # the host's delays the thread may make up for later (not more: no faster device)
SPIN_NS = (
    150_000  # a context's end sleeps to within this of its target, then spins (sleeps overshoot 30-100 us)
)
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30

_LOCAL = threading.local()
_LOCK = threading.Lock()
_HOOK: dict[str, Any] = {"handle": None, "users": 0}
_LIBC: list[Any] = []
_OVERHEAD: list[int] = []  # ns the hook adds to each call it measures (a free run has no hook)


def _checkpoint_hook(module: Any, args: Any, output: Any) -> None:
    d = getattr(_LOCAL, "dilation", None)
    if d is not None:
        d.checkpoint((id(module), getattr(output, "shape", None)))


def _hook_on() -> None:
    from torch.nn.modules.module import register_module_forward_hook

    with _LOCK:
        if _HOOK["users"] == 0:
            _HOOK["handle"] = register_module_forward_hook(_checkpoint_hook)
        _HOOK["users"] += 1


def _hook_off() -> None:
    with _LOCK:
        _HOOK["users"] -= 1
        if _HOOK["users"] == 0 and _HOOK["handle"] is not None:
            _HOOK["handle"].remove()  # no hook left: modules take torch's fast path again
            _HOOK["handle"] = None


def _timer_slack(ns: int | None) -> int | None:
    """Set this thread's timer slack (Linux; the default 50 us would be added to every sleep) for good;
    returns the old value, or None where prctl is not there."""
    try:
        if not _LIBC:
            import ctypes

            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        old = int(_LIBC[0].prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0))
        if ns is not None:
            _LIBC[0].prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0)
        return old
    except (OSError, AttributeError):
        return None


def _hook_overhead_ns() -> int:
    """What a learned call's CPU time holds of the hook itself (the slow path of a module call with a
    global hook, and the hook's call up to its clock): an empty module timed with and without it, once."""
    if not _OVERHEAD:
        import torch

        _OVERHEAD.append(0)  # the probe below learns with no correction
        m, x, n = torch.nn.Identity(), torch.zeros(1), 1000
        t = time.thread_time_ns()
        for _ in range(n):
            m(x)
        plain = (time.thread_time_ns() - t) / n
        probe = Dilation(1.0)
        with probe.learning():
            for _ in range(n):
                m(x)
        seen = sorted(v for vs in probe.learned.values() for v in vs)
        _OVERHEAD[0] = max(0, round(seen[len(seen) // 2] - plain))
    return _OVERHEAD[0]


class Dilation:
    """``with Dilation(0.25):`` the torch work of this thread takes 4x its CPU time (see the module);
    ``with d.learning():`` runs at full speed and only learns what each module call costs."""

    def __init__(self, fraction: float, min_sleep_ns: int = MIN_SLEEP_NS) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"a dilation's fraction must be in (0, 1], got {fraction!r}")
        self.fraction = fraction
        self.stretch = 1.0 / fraction
        self.min_sleep = min_sleep_ns
        # a module call is (module id, output shape): the CPU ns of each of its warm-up calls, their median,
        # and the least it took where it had none
        self.learned: dict[Any, list[int]] = {}
        self.fixed: dict[Any, int] = {}
        self.least: dict[Any, int] = {}
        self.learn = False
        self.overhead = 0  # ns of each learned call that was the hook's (see _hook_overhead_ns)
        self.depth = 0
        self.owed = 0.0  # ns of wall time the thread still owes (negative: ahead, the host delayed it)
        self.cpu = self.wall = 0
        self.work_ns = 0  # CPU time charged, over every context
        self.slept_ns = 0  # wall time spent paying, over every context

    def learning(self) -> Dilation:
        """This object as a context that only learns (no sleep): a warm-up. What each call it makes is
        charged from then on is the median of its calls in the latest warm-up that made it."""
        self.overhead = _hook_overhead_ns()
        self.learn = True
        self.learned = {}
        return self

    def __enter__(self) -> Dilation:
        if self.depth == 0:
            self.wall = time.perf_counter_ns()  # from here on, this context's own cost counts as paid
            if getattr(_LOCAL, "dilation", None) is not None:
                raise RuntimeError("this thread is already inside a Dilation")
            _hook_on()
            _LOCAL.dilation = self
            if not getattr(_LOCAL, "slack", False):  # once a thread: its sleeps end when asked
                _LOCAL.slack = _timer_slack(1) is not None
            self.owed = 0.0
            self.cpu = time.thread_time_ns()
        self.depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth:
            return
        try:
            self.checkpoint(None, final=True)
        finally:
            _LOCAL.dilation = None
            if self.learn:
                self.fixed.update(
                    {k: max(1, sorted(v)[(len(v) - 1) // 2] - self.overhead) for k, v in self.learned.items()}
                )
            self.learn = False
            _hook_off()

    def checkpoint(self, key: Any, final: bool = False) -> None:
        """Charge the work since the last checkpoint (ended by the module call ``key``, or by the
        context's end when None) and pay what is owed (all of it when ``final``)."""
        cpu = time.thread_time_ns()
        if self.learn:
            if key is not None:
                self.learned.setdefault(key, []).append(cpu - self.cpu)
            self.cpu = time.thread_time_ns()  # the bookkeeping is not the call's
            return
        wall = time.perf_counter_ns()
        work = self.fixed.get(key) if key is not None else None
        if work is None:
            work = self._least(key, cpu - self.cpu)
        self.work_ns += work
        self.owed = max(self.owed + work * self.stretch - (wall - self.wall), -MAX_CREDIT_NS)
        self.wall = wall  # the sleep below is paid in the next interval's wall time
        self.cpu = cpu
        if final:
            self._settle(wall + self.owed)
        elif self.owed >= self.min_sleep:
            time.sleep(self.owed / 1e9)
            self.slept_ns += time.perf_counter_ns() - wall
            self.cpu = time.thread_time_ns()  # the sleep is not the device's work

    def _least(self, key: Any, used: int) -> int:
        """A call the warm-up did not make is charged the least it has taken (the end of a context: what
        it took)."""
        if key is None:
            return used
        least = self.least[key] = min(used, self.least.get(key, used))
        return least

    def _settle(self, until: float) -> None:
        now = time.perf_counter_ns()
        if until - now > SPIN_NS:
            time.sleep((until - now - SPIN_NS) / 1e9)
        while time.perf_counter_ns() < until:
            pass
        self.slept_ns += max(0, time.perf_counter_ns() - now)
        self.owed = 0.0


__all__ = ["MAX_CREDIT_NS", "MIN_SLEEP_NS", "Dilation"]
