"""Clocks inside a training worker: when each gradient is ready, when each DDP bucket's all-reduce is
launched and completes, and what the same work costs without DDP (wall-clock seconds, the clock
tcpdump stamps packets with).

Used by :mod:`pktchar.testbed.train_procs`; it imports torch only inside functions (the worker has it
loaded by then).

* :class:`GradClock` stamps every trainable parameter's gradient as autograd accumulates it
  (``register_post_accumulate_grad_hook``): in a plain (no DDP) backward this gives, for each DDP bucket,
  the moment its last gradient is ready from compute alone;
* :func:`timed_hook` wraps a DDP communication hook (the default all-reduce, or fp16/bf16 compression):
  the same all-reduce of the same bucket buffer, so the same bytes on the wire, with the bucket's launch
  (the hook's call) and completion (its future's callback) stamped;
* :func:`time_collectives` all-reduces buffers of given sizes with nothing else going on: on the
  namespaces' links (gloo, the kernel's TCP through veth, bridge and tbf, the captures) or, run as
  ``python -m pktchar.testbed.train_clock`` by N processes on loopback, gloo alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


class GradClock:
    """When each trainable parameter's gradient was last accumulated, and which DDP bucket holds it."""

    def __init__(self, params: list[Any]) -> None:
        self.index = {id(p): k for k, p in enumerate(params)}
        self.ready: list[float] = [0.0] * len(params)
        self.members: dict[int, list[int]] = {}  # bucket index -> parameter indices, as DDP last gave them
        for k, p in enumerate(params):
            p.register_post_accumulate_grad_hook(self._stamp(k))

    def _stamp(self, k: int) -> Callable[[Any], None]:
        def hook(_: Any) -> None:
            self.ready[k] = time.time()

        return hook

    def learn(self, bucket: Any) -> None:
        """Remember which parameters DDP put in ``bucket`` (a ``GradBucket``)."""
        self.members[bucket.index()] = [self.index[id(p)] for p in bucket.parameters() if id(p) in self.index]

    def buckets_ready(self, since: float) -> list[float]:
        """Seconds after ``since`` at which each bucket (in index order) had all its gradients ready; one
        figure for all gradients while no bucket is known yet."""
        if not self.members:
            return [max(self.ready) - since] if self.ready else []
        return [max(self.ready[k] for k in self.members[i]) - since for i in sorted(self.members)]

    def span(self, since: float) -> tuple[float, float]:
        """Seconds after ``since`` of the first and the last gradient ready."""
        return min(self.ready) - since, max(self.ready) - since


def timed_hook(
    inner: Callable[[Any, Any], Any], clock: GradClock, log: list[list[float]]
) -> Callable[..., Any]:
    """``inner`` (a DDP comm hook) with each bucket's [index, bytes, launched, completed] appended to ``log``."""

    def hook(state, bucket):  # type: ignore[no-untyped-def]  # DDP takes no annotation but dist.GradBucket
        t = time.time()
        clock.learn(bucket)
        buf = bucket.buffer()
        row = [bucket.index(), buf.numel() * buf.element_size(), t, 0.0]
        log.append(row)
        fut = inner(state, bucket)

        def done(f: Any) -> Any:
            row[3] = time.time()
            return f.value()

        return fut.then(done)

    return hook


def comm_hook(kind: str) -> Callable[[Any, Any], Any]:
    """DDP's own hook for ``kind``: none (the default all-reduce, averaged), fp16 or bf16 compression."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks as hooks

    return {"none": hooks.allreduce_hook, "fp16": hooks.fp16_compress_hook, "bf16": hooks.bf16_compress_hook}[
        kind
    ]


def machine_cpu() -> tuple[float, float]:
    """CPU seconds all cores of the machine have spent since boot (/proc/stat, 10 ms ticks): busy (all but
    idle and iowait; guest time is inside user) and, of it, in interrupts and softirqs (the kernel's
    packet work, which no process is charged for)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    return (sum(v[:8]) - v[3] - v[4]) / 100, (v[5] + v[6]) / 100


def _costs(fn: Callable[[], Any]) -> dict[str, float]:
    """Run ``fn``: its wall seconds, this process's CPU seconds, the machine's interrupt CPU seconds."""
    m0, c0, t0 = machine_cpu(), time.process_time(), time.time()
    fn()
    return {"wall_s": time.time() - t0, "cpu_s": time.process_time() - c0, "irq_s": machine_cpu()[1] - m0[1]}


def time_collectives(sizes: list[int], elem: int, repeats: int, in_a_row: int = 1) -> list[dict[str, Any]]:
    """All-reduce a buffer of each size (bytes, elements of ``elem`` bytes) ``repeats`` times with
    nothing else of the run going on, each after a barrier (``in_a_row`` all-reduces after it, the
    figures then per all-reduce: the workers leaving the barrier at different moments weighs less). Per
    size: the bytes and, each repeat, wall seconds, this process's CPU seconds and the machine's
    interrupt CPU seconds (see :func:`_costs`)."""
    import torch
    import torch.distributed as dist

    dtype = {2: torch.float16, 4: torch.float32, 8: torch.float64}[elem]
    out = []
    for b in sizes:
        t = torch.ones(max(1, b // elem), dtype=dtype)
        runs = []
        for _ in range(repeats):
            dist.barrier()
            cost = _costs(lambda t=t: [dist.all_reduce(t) for _ in range(in_a_row)])
            runs.append({k: v / in_a_row for k, v in cost.items()})
        out.append({"bytes": t.numel() * elem, **{k: [r[k] for r in runs] for k in runs[0]}})
    return out


class Probe:
    """A DDP worker's measurements beside its steps: each bucket's all-reduce stamped in the step, and
    between steps (every worker at once, between barriers, nothing on the wire during a step's window)
    the same forward and backward on the plain model and the step's collectives alone."""

    def __init__(self, params: list[Any], hook: str, sizes: list[int], elem: int) -> None:
        self.clock, self.log = GradClock(params), []  # type: ignore[var-annotated]
        self.hook, self.sizes, self.elem = hook, sizes, elem

    def attach(self, ddp: Any) -> None:
        """DDP's own all-reduce (or compression hook), each bucket's launch and completion stamped."""
        ddp.register_comm_hook(None, timed_hook(comm_hook(self.hook), self.clock, self.log))

    def step(self, run: Callable[[], tuple[float, float, float, float]]) -> dict[str, Any]:
        """One DDP step (``run`` returns its start, forward end, backward end and end): its buckets."""
        self.log.clear()
        box: list[tuple[float, float, float, float]] = []
        cost = _costs(lambda: box.append(run()))
        t0, t1, t2, t3 = box[0]
        return {"t0": t0, "t_fwd": t1, "t_bwd": t2, "t_end": t3, "cpu_s": cost["cpu_s"], "irq_s": cost["irq_s"],
                "buckets": [list(r) for r in self.log], "ready": self.clock.buckets_ready(t1),
                "grads": self.clock.span(t1)}  # fmt: skip

    def between(self, fwd_bwd: Callable[[], float]) -> dict[str, Any]:
        """Between two DDP steps: ``fwd_bwd`` (a forward and backward on the plain model; returns when
        its forward ended) in every worker at once, then each collective of the step alone."""
        import torch.distributed as dist

        dist.barrier()
        t0 = time.time()
        box: list[float] = []
        plain = _costs(lambda: box.append(fwd_bwd()))
        t1 = box[0]
        out = {"t0": t0, "t_fwd": t1, "t_bwd": t0 + plain["wall_s"], "cpu_s": plain["cpu_s"],
               "irq_s": plain["irq_s"], "ready": self.clock.buckets_ready(t1), "grads": self.clock.span(t1)}  # fmt: skip
        out["collectives"] = time_collectives(self.sizes, self.elem, 1) if self.sizes else []
        dist.barrier()
        return out


def main(argv: list[str] | None = None) -> int:
    """One rank of the loopback calibration: all-reduce each size ``repeats`` times, print the medians."""
    ap = argparse.ArgumentParser(prog="pktchar.testbed.train_clock")
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--world", type=int, required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--elem", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--in-a-row", type=int, default=5)
    args = ap.parse_args(argv)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=args.rank, world_size=args.world)
    sizes = [int(x) for x in args.sizes.split(",")]
    dist.all_reduce(torch.ones(max(sizes) // args.elem))  # the pairs' buffers and TCP windows grown once
    rows = time_collectives(sizes, args.elem, args.repeats, args.in_a_row)
    if args.rank == 0:
        print(json.dumps([{"bytes": r["bytes"], "wall_s": statistics.median(r["wall_s"]),
                           "cpu_s": statistics.median(r["cpu_s"])} for r in rows]))  # fmt: skip
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["GradClock", "Probe", "comm_hook", "machine_cpu", "time_collectives", "timed_hook"]
