"""The host's share of a step: a CPU-bound machine's time for DDP's collectives beside the link's, and the
step it predicts.

On a small shared machine the step is not compute + wire. What this module models, each part measured by
the workers themselves (:mod:`pktchar.testbed.train_clock`) and none read off the DDP steps it predicts:

* compute *concurrently*: between DDP steps every worker runs the same forward and backward on the plain
  model at once (between barriers), with each gradient's ready time stamped, so each bucket's ready time
  within the step is known from compute alone, on the slowest worker (the all-reduce waits for it), under
  the machine's load of that moment;
* each bucket's all-reduce *alone*, on the run's own links (gloo, the kernel's TCP through veth, bridge
  and tbf, the captures): once before DDP is built (``repeats`` times) and once between every two steps,
  with its CPU (the workers' processes and the machine's interrupt time);
* the chain: bucket ``i`` starts when it is ready and the one before it is done, and takes its time alone:
  ``c_i = max(r_i, c_{i-1}) + T_i``; while an all-reduce runs under the backward its CPU is taken from the
  compute, shared by the machine's cores: the backward ends ``sum_i f_i * C_i / P`` later (``f_i`` the
  share of bucket ``i``'s all-reduce that runs before the backward's end, ``C_i`` its CPU seconds, ``P``
  the cores); the step ends at ``max(c_last, backward end)`` plus the optimizer step, everything after the
  buffer broadcast at the link rate.

A collective's time alone, less the wire time of its frames at the link rate, is fitted as a latency a
gloo message plus a cost a byte (the host's share); the same on loopback (N processes, unshaped) gives
gloo's own. :func:`board_cost` turns the paper's two-board time into the cost a byte its boards needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from ..schema import Measure
from .gloo import ring_allreduce
from .plan import Plan, phase

SMALL = 4096  # bytes of the smallest all-reduce calibrated: it is almost all latency
STEADY = 2  # the first steady step (the first iteration has one bucket, the second rebuilds them)


def calibration_sizes(plan: Plan) -> list[int]:
    """Bytes to all-reduce in the calibration: a small buffer, then every bucket of a steady step."""
    out = [SMALL]
    for b in plan.rebuilt_buckets:
        if b not in out:
            out.append(b)
    return out


def ring_wire_s(nbytes: int, elem: int, n: int, rate: float) -> float:
    """Seconds of one worker's Ethernet frames of a ring all-reduce of ``nbytes`` at ``rate`` bit/s."""
    return phase("ring", nbytes, ring_allreduce(nbytes, elem, n), n).frames_sent[0] * 8 / rate


def ring_messages(nbytes: int, elem: int, n: int) -> int:
    """gloo messages with data one worker sends in a ring all-reduce of ``nbytes``."""
    return sum(1 for m in ring_allreduce(nbytes, elem, n) if m.src == 0 and m.size > 48)


@dataclass
class Bucket:
    """One bucket of a step as the chain sees it (seconds from the step's start)."""

    ready: float  # its last gradient ready, on the slowest worker, from compute alone
    cost: float  # its all-reduce alone on these links
    cpu: float = 0.0  # CPU seconds that all-reduce takes on the machine


def chain(buckets: list[Bucket], backward_end: float, bcast: float = 0.0, cores: int = 1) -> dict[str, Any]:
    """The step's all-reduces in order (see the module's docstring): each bucket's start and end, the
    backward's end with the CPU the all-reduces under it took, and the end of the last of them."""
    delay, done = 0.0, 0.0
    starts, ends = [], []
    for b in buckets:
        start = max(b.ready + bcast + delay, done)
        done = start + b.cost
        under = backward_end + bcast + delay - start  # of this all-reduce, the part the backward runs beside
        share = min(1.0, max(0.0, under / b.cost)) if b.cost > 0 else 0.0
        delay += share * b.cpu / cores
        starts.append(start)
        ends.append(done)
    bwd = backward_end + bcast + delay
    return {"starts": starts, "ends": ends, "backward_end": bwd, "delay": delay, "end": max(done, bwd)}


# ----------------------------------------------------------------------------------------------
# the run's events


def _by_step(ev: list[dict[str, Any]], kind: str) -> dict[int, dict[int, dict[str, Any]]]:
    out: dict[int, dict[int, dict[str, Any]]] = {}
    for e in ev:
        if e.get("event") == kind:
            out.setdefault(int(e["step"]), {})[int(e["worker"])] = e
    return out


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def mean(xs: list[float]) -> float:
    """The mean, 0.0 of none (train-sync's figures a step and a worker)."""
    return sum(xs) / len(xs) if xs else 0.0


def _alone(rows: list[dict[str, Any]], nbytes: int) -> tuple[float, float] | None:
    """(seconds, CPU seconds) of the all-reduce of ``nbytes`` alone, from every worker's record of one
    calibration: the median wall time; the workers' CPU summed plus the machine's interrupt time."""
    got = [r for r in rows if r["bytes"] == nbytes]
    if not got:
        return None
    wall = _median([w for r in got for w in r["wall_s"]])
    cpu = sum(_median(r["cpu_s"]) for r in got) + _median([x for r in got for x in r["irq_s"]])
    return wall, cpu


def _plain(p: dict[int, dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """One compute-alone step of every worker: each bucket's ready time on the slowest, the backward's end,
    the first bucket's earliest ready time, and each bucket's all-reduce alone right after."""
    ready = [max(e["t_fwd"] - e["t0"] + e["ready"][i] for e in p.values()) for i in range(len(sizes))]
    first = min(e["t_fwd"] - e["t0"] + e["ready"][0] for e in p.values())
    rows = [r for e in p.values() for r in e.get("collectives", [])]
    return {"ready": ready, "first": first, "bwd": max(e["t_bwd"] - e["t0"] for e in p.values()),
            "fwd_bwd": mean([e["t_bwd"] - e["t0"] for e in p.values()]),
            "alone": [_alone(rows, b) for b in sizes]}  # fmt: skip


def _measured(d: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A DDP step of every worker, seconds from w0's start: each bucket's last launch and w0's completion,
    the backward's end on the slowest worker, the step (w0)."""
    w0 = d[0]
    n = len(w0["buckets"])
    starts = [max(e["buckets"][i][2] for e in d.values()) - w0["t0"] for i in range(n)]
    ends = [w0["buckets"][i][3] - w0["t0"] for i in range(n)]
    first = min(e["buckets"][0][2] for e in d.values()) - w0["t0"]
    bwd = max(e["t_fwd"] + e["grads"][1] for e in d.values()) - w0["t0"]
    return {"step": w0["t_end"] - w0["t0"], "starts": starts, "ends": ends, "span": ends[-1] - first,
            "exposed": ends[-1] - bwd, "backward_end": bwd, "bytes": [b[1] for b in w0["buckets"]],
            "cost": [e - s for s, e in zip(starts, ends, strict=True)]}  # fmt: skip


def _bucket_cost(
    plains: list[dict[str, Any]], calib: tuple[float, float] | None, i: int
) -> tuple[float, float]:
    """Bucket ``i``'s all-reduce alone (seconds, CPU seconds): measured between the steps, else before DDP."""
    got = [p["alone"][i] for p in plains if p["alone"][i] is not None]
    if not got and calib is not None:
        got = [calib]
    return mean([g[0] for g in got]), mean([g[1] for g in got])


def _predict(plains: list[dict[str, Any]], calib: list[tuple[float, float] | None], bcast: float, opt: float,
             cores: int) -> dict[str, Any]:  # fmt: skip
    """The chain from the compute-alone steps around a DDP step (their mean), each bucket's all-reduce
    alone between them (else the calibration before DDP)."""
    n = len(calib)
    buckets = [
        Bucket(mean([p["ready"][i] for p in plains]), *_bucket_cost(plains, calib[i], i)) for i in range(n)
    ]
    c = chain(buckets, mean([p["bwd"] for p in plains]), bcast, cores)
    last = c["ends"][-1]
    return {"step": c["end"] + opt, "span": last - mean([p["first"] for p in plains]) - bcast,
            "exposed": max(0.0, last - c["backward_end"]), "delay": c["delay"], "cost": [b.cost for b in buckets],
            "cpu": [b.cpu for b in buckets], "ready": [b.ready for b in buckets], "starts": c["starts"],
            "compute": mean([p["fwd_bwd"] for p in plains])}  # fmt: skip


def _calibration(ev: list[dict[str, Any]], sizes: list[int]) -> list[tuple[float, float] | None]:
    rows = [r for e in ev if e.get("event") == "collectives" for r in e["sizes"]]
    return [_alone(rows, b) for b in sizes]


def fit(points: list[tuple[int, int, float]]) -> tuple[float, float]:
    """(seconds a message, seconds a byte) of ``excess = a * messages + h * bytes``, least squares over
    ``points`` of (messages, bytes, excess seconds), ``a`` at least 0; with one point, all of it a byte."""
    if len(points) < 2:
        m, b, e = points[0] if points else (0, 1, 0.0)
        return 0.0, e / b if b else 0.0
    smm = sum(m * m for m, _, _ in points)
    sbb = sum(b * b for _, b, _ in points)
    smb = sum(m * b for m, b, _ in points)
    sme = sum(m * e for m, _, e in points)
    sbe = sum(b * e for _, b, e in points)
    det = smm * sbb - smb * smb
    a = (sme * sbb - sbe * smb) / det if abs(det) > 1e-9 * smm * sbb else -1.0
    if a < 0:  # no latency a message (or no way to tell it from the bytes): all of it a byte
        return 0.0, sbe / sbb if sbb else 0.0
    return a, (smm * sbe - smb * sme) / det


def path_costs(ev: list[dict[str, Any]], elem: int, n: int, rate: float) -> dict[str, Any]:
    """The calibration before DDP: each size's time alone (median) against its wire time at ``rate``,
    the CPU it took, and the excess over the wire fitted as a latency a message and a cost a byte."""
    rows = [r for e in ev if e.get("event") == "collectives" for r in e["sizes"]]
    sizes = sorted({int(r["bytes"]) for r in rows})
    pts = []
    out: dict[str, Any] = {"sizes": []}
    for b in sizes:
        alone = _alone(rows, b)
        if alone is None:
            continue
        wire = ring_wire_s(b, elem, n, rate)
        m = ring_messages(b, elem, n)
        irq = _median([x for r in rows if r["bytes"] == b for x in r["irq_s"]])
        out["sizes"].append({"bytes": b, "alone_s": alone[0], "wire_s": wire, "messages": m, "cpu_s": alone[1],
                             "irq_s": irq})  # fmt: skip
        pts.append((m, b, alone[0] - wire))
    a, h = fit(pts)
    out["per_message_s"], out["per_byte_s"] = a, h
    big = out["sizes"][-1] if out["sizes"] else None
    # of the largest: the workers' processes' CPU (all of them) and the machine's interrupt CPU, a byte
    out["cpu_per_byte_s"] = (big["cpu_s"] - big["irq_s"]) / big["bytes"] if big else None
    out["irq_per_byte_s"] = big["irq_s"] / big["bytes"] if big else None
    return out


def host_timing(
    ev: list[dict[str, Any]],
    n: int,
    rate: float,
    elem: int,
    bcast: float,
    opt: float,
    solo: float,
    cores: int | None = None,
) -> dict[str, Any]:
    """The host model of the run's steady steps against what they measured (see the module's docstring);
    ``bcast`` the buffer broadcast at the link rate, ``opt`` the optimizer step and ``solo`` a step's
    compute, both measured by each worker alone before the process group; ``cores`` this machine's."""
    cores = cores or os.cpu_count() or 1
    rows = _step_rows(ev, n, bcast, opt, cores)
    out: dict[str, Any] = {"cores": cores, "steps": rows, "path": path_costs(ev, elem, n, rate),
                           "compute_solo_s": solo}  # fmt: skip
    if rows:
        out.update(_summary(rows, elem, n, rate))
    return out


def _step_rows(
    ev: list[dict[str, Any]], n: int, bcast: float, opt: float, cores: int
) -> list[dict[str, Any]]:
    """Each steady DDP step that every worker finished, measured and predicted."""
    steps, plains = _by_step(ev, "step"), _by_step(ev, "plain")
    rows = []
    for k in sorted(steps):
        d = steps[k]
        if k < STEADY or len(d) < n or not all(e.get("buckets") for e in d.values()):
            continue
        meas = _measured(d)
        around = [plains[j] for j in (k - 1, k) if len(plains.get(j, {})) == n]
        around = [p for p in around if all(len(e["ready"]) == len(meas["bytes"]) for e in p.values())]
        if around:
            pred = _predict([_plain(p, meas["bytes"]) for p in around], _calibration(ev, meas["bytes"]), bcast,
                            opt, cores)  # fmt: skip
            rows.append({"step": k, "measured": meas, "predicted": pred})
    return rows


def _summary(rows: list[dict[str, Any]], elem: int, n: int, rate: float) -> dict[str, Any]:
    """The steps' means (and medians: a step that other load on the machine hit weighs less), each
    bucket's figures, errors as measured against predicted."""
    out: dict[str, Any] = {}
    for key in ("step", "span", "exposed"):
        p, m = mean([r["predicted"][key] for r in rows]), mean([r["measured"][key] for r in rows])
        out[f"{key}_predicted_s"], out[f"{key}_measured_s"] = p, m
        out[f"{key}_error"] = Measure(key, p, m).error
        p, m = _median([r["predicted"][key] for r in rows]), _median([r["measured"][key] for r in rows])
        out[f"{key}_predicted_median_s"], out[f"{key}_measured_median_s"] = p, m
        out[f"{key}_median_error"] = Measure(key, p, m).error
    out["compute_concurrent_s"] = mean([r["predicted"]["compute"] for r in rows])
    out["backward_delay_s"] = mean([r["predicted"]["delay"] for r in rows])
    sizes = rows[0]["measured"]["bytes"]
    out["buckets"] = [{"bytes": b, "wire_s": ring_wire_s(b, elem, n, rate),
                       "alone_s": mean([r["predicted"]["cost"][i] for r in rows]),
                       "cpu_s": mean([r["predicted"]["cpu"][i] for r in rows]),
                       "measured_s": mean([r["measured"]["cost"][i] for r in rows]),
                       "ready_s": mean([r["predicted"]["ready"][i] for r in rows]),
                       "start_s": mean([r["predicted"]["starts"][i] for r in rows]),
                       "start_measured_s": mean([r["measured"]["starts"][i] for r in rows])}
                      for i, b in enumerate(sizes)]  # fmt: skip
    return out


class HostMeasures(NamedTuple):
    """The host model's figures of a run (:func:`host_measures`), measured against predicted, by name."""

    step: Measure  # a steady step
    span: Measure  # the first bucket's launch to the last one's end
    exposed: Measure  # the all-reduce after the backward's end
    buckets: list[Measure]  # each bucket's all-reduce: alone on the links (predicted) against in the step
    starts: list[Measure]  # each bucket's start: the chain's against its last launch


def host_measures(h: dict[str, Any]) -> HostMeasures | None:
    """The joins of :func:`host_timing`'s figures (``h``); None when no steady step was modelled."""
    if "step_predicted_s" not in h:
        return None
    return HostMeasures(
        Measure("step", h["step_predicted_s"], h["step_measured_s"], "s"),
        Measure("all-reduce span", h["span_predicted_s"], h["span_measured_s"], "s"),
        Measure("all-reduce after the backward", h["exposed_predicted_s"], h["exposed_measured_s"], "s"),
        [
            Measure(f"bucket {i} all-reduce", b["alone_s"], b["measured_s"], "s")
            for i, b in enumerate(h["buckets"])
        ],
        [
            Measure(f"bucket {i} start", b["start_s"], b["start_measured_s"], "s")
            for i, b in enumerate(h["buckets"])
        ],
    )


# ----------------------------------------------------------------------------------------------
# gloo alone: N processes on loopback


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback(
    n: int, sizes: list[int], elem: int = 4, repeats: int = 5, timeout: float = 120
) -> dict[str, Any]:
    """gloo's all-reduce alone: ``n`` processes on this host's loopback (unshaped, MTU of lo), each size
    ``repeats`` times; rank 0's medians, and their time fitted as a latency a message and a cost a byte.
    Empty with ``error`` set when the processes fail."""
    port = _free_port()
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "pktchar.testbed.train_clock", "--world", str(n), "--sizes",
           ",".join(str(b) for b in sizes), "--elem", str(elem), "--repeats", str(repeats)]  # fmt: skip
    procs = [subprocess.Popen([*cmd, "--rank", str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for r in range(n)]  # fmt: skip
    outs = []
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if len(outs) < n or any(p.returncode != 0 for p in procs):
        err = next((o[1].strip().splitlines()[-1] for o in outs if o[1].strip()), "timed out")
        return {"error": f"loopback all-reduce failed: {err[:200]}"}
    rows = json.loads(outs[0][0].strip().splitlines()[-1])
    pts = [(ring_messages(r["bytes"], elem, n), r["bytes"], r["wall_s"]) for r in rows]
    a, h = fit(pts)
    big = rows[-1]
    return {"sizes": rows, "per_message_s": a, "per_byte_s": h, "cpu_per_byte_s": big["cpu_s"] / big["bytes"]}


# ----------------------------------------------------------------------------------------------
# the paper's boards


@dataclass
class BoardCost:
    one_step_s: float  # the paper's one-board step: its time / its steps
    two_step_s: float  # the same for two boards
    extra_s: float  # what the second board added to every step
    wire_s: float  # the step's collectives on one board's uplink at the link rate (nothing hidden)
    bytes_sent: int  # gloo bytes one board sends a step (the ring: the whole gradient each way at N = 2)
    messages: int  # gloo messages with data a board sends a step
    per_byte_s: float  # the host cost a byte a board would need to explain ``extra_s`` beside the wire

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def board_cost(plan: Plan, one_board_s: float, two_boards_s: float, steps: int, rate: float,
               per_message_s: float = 0.0) -> BoardCost:  # fmt: skip
    """The cost a byte a board's host would need for the paper's two boards to take ``two_boards_s``:
    (two-board step - one-board step - wire time - ``per_message_s`` a message) / bytes a board sends, with
    nothing hidden behind the backward (hiding some would need more)."""
    k = min(STEADY, len(plan.steps) - 1)
    one, two = one_board_s / steps, two_boards_s / steps
    wire = plan.step_total(k, "frames_sent") * 8 / rate
    sent = plan.step_total(k, "sent")
    msgs = sum(
        ring_messages(p.bytes, plan.elem, plan.workers) for p in plan.steps[k] if p.name.startswith("bucket")
    )
    need = (two - one - wire - msgs * per_message_s) / sent
    return BoardCost(one, two, two - one, wire, sent, msgs, need)


__all__ = ["HostMeasures", "host_measures", "SMALL", "BoardCost", "Bucket", "board_cost", "calibration_sizes", "chain", "fit",
           "host_timing", "loopback", "path_costs", "ring_messages", "ring_wire_s"]  # fmt: skip
