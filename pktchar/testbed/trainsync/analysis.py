"""Measured against predicted: per-step bytes from each worker's capture (first transmissions apart from
retransmissions), step times, and the share of the all-reduce hidden behind backward."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ...core.errors import PktcharError
from ..schema import Events, Measure, Result
from .host import mean as _mean
from .plan import PER_PACKET, Plan, TrainConfig


@dataclass
class StepRow:
    step: int
    sent_measured: int | None  # w0's Ethernet bytes of data segments sent in the step (first transmissions)
    sent_predicted: int
    payload_measured: int | None  # w0's TCP payload bytes sent in the step
    payload_predicted: int
    fwd_s: float
    bwd_s: float
    opt_s: float
    step_s: float
    allreduce_s: float | None = None  # w0's capture: first to last gradient segment after its forward ended

    def measures(self) -> StepMeasures:
        """w0's bytes of the step, measured against predicted: TCP payload, then Ethernet frames."""
        return StepMeasures(
            Measure("payload sent", self.payload_predicted, self.payload_measured, "B"),
            Measure("Ethernet bytes sent (data segments)", self.sent_predicted, self.sent_measured, "B"),
        )


class StepMeasures(NamedTuple):
    """A step's bytes (:meth:`StepRow.measures`), measured against predicted, by name."""

    payload: Measure  # TCP payload w0 sent
    sent: Measure  # the Ethernet frames of its data segments


class WorkerMeasures(NamedTuple):
    """A worker's steady step (:meth:`TrainReport.worker_measures`), measured against predicted, by name."""

    payload: Measure  # TCP payload sent
    sent: Measure  # Ethernet bytes of the data segments sent
    received: Measure  # TCP payload received
    segments: Measure  # data segments sent


class TimingMeasures(NamedTuple):
    """A steady step's times (:meth:`TrainReport.timing_measures`), measured against predicted, by name."""

    allreduce: Measure  # the all-reduce span at the link rate
    step_no_overlap: Measure  # the step, nothing hidden
    step_overlap: Measure  # the step, all but the last bucket hidden behind backward
    step_calibrated: Measure  # the step at the calibrated rate, nothing hidden


@dataclass
class TrainReport:
    config: TrainConfig
    plan: Plan
    source: str
    compute: dict[str, float]  # mean local seconds: fwd, bwd, opt, total
    steps: list[StepRow]
    per_worker: list[dict[str, Any]]  # steady-state bytes sent/received a step, each worker
    construction: dict[str, Any]
    timing: dict[str, Any]
    ddp_buckets: dict[str, str]
    captures: dict[str, Any]
    error: str | None
    result: Result | None
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)  # what each worker loaded (its compute event)

    def worker_measures(self, k: int) -> WorkerMeasures:
        """Worker ``k`` of :attr:`per_worker` in a steady step, measured against predicted."""
        w = self.per_worker[k]
        return WorkerMeasures(
            Measure("payload sent", w["payload_predicted"], w["payload"], "B"),
            Measure("Ethernet bytes sent (data segments)", w["sent_predicted"], w["sent"], "B"),
            Measure("payload received", w["received_payload_predicted"], w["received_payload"], "B"),
            Measure("data segments sent", w["segments_predicted"], w["segments"]),
        )

    def timing_measures(self) -> TimingMeasures:
        """The steady step's times, measured against predicted (:func:`predict_time`)."""
        t = self.timing
        meas = t.get("step_measured_s")
        return TimingMeasures(
            Measure("all-reduce span", t["allreduce_s"], t.get("allreduce_measured_s"), "s"),
            Measure("step, nothing hidden", t["step_predicted_no_overlap_s"], meas, "s"),
            Measure("step, all but the last bucket hidden", t["step_predicted_overlap_s"], meas, "s"),
            Measure("step at the calibrated rate", t.get("step_predicted_calibrated_s"), meas, "s"),
        )

    def construction_measure(self) -> Measure | None:
        """w0's payload at construction (initial state broadcast, shape check), None without a capture."""
        c = self.construction
        if not c:
            return None
        return Measure("construction payload sent", c["predicted_payload"], c["sent_payload"], "B")

    def measures(self) -> dict[str, Any]:
        """Every measured-against-predicted figure of the run, as the JSON document gives them."""
        cons = self.construction_measure()
        return {
            "steps": [[m.to_dict() for m in r.measures()] for r in self.steps],
            "workers": [[m.to_dict() for m in self.worker_measures(k)] for k in range(len(self.per_worker))],
            "timing": [m.to_dict() for m in self.timing_measures()],
            "construction": cons.to_dict() if cons else None,
        }

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("result", "plan", "config")}
        d["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        plan = self.plan.to_dict()
        plan.pop("params"), plan.pop("buffers")
        d["plan"] = plan
        d["kind"], d["version"] = "pktchar-train-sync", 1
        d["measures"] = self.measures()
        if self.result is not None:
            d["files"] = {
                "pcap": str(self.result.artifacts.pcap),
                "result": str(self.result.artifacts.result),
            }
        return d


def _windows(ev: list[dict[str, Any]], rank: int, gap: float) -> tuple[float, list[tuple[float, float]]]:
    """The capture's step windows for one worker: from half a gap before its step to half a gap after."""
    steps = sorted(
        (e for e in ev if e.get("event") == "step" and e["worker"] == rank), key=lambda e: e["step"]
    )
    ddp = [e["t0"] for e in ev if e.get("event") == "ddp"]
    start = min(ddp) - 0.05 if ddp else (steps[0]["t0"] - gap if steps else 0.0)
    return start, [(s["t0"] - gap / 2, s["t_end"] + gap / 2) for s in steps]


def measure_bytes(
    pcap: Path,
    ip: str,
    port: int,
    windows: list[tuple[float, float]],
    start: float,
    fwd_ends: list[float] | None = None,
) -> dict[str, Any]:
    """Ethernet and TCP payload bytes one worker sent and received, per step window and before the first
    (construction); the rendezvous (TCPStore, ``port``) and ARP are left out."""
    from ..pcap import read

    pk = [p for p in read(pcap) if p.proto == "tcp" and port not in (p.sport, p.dport)]
    out: dict[str, Any] = {"steps": [], "construction": {}}

    def tally(sel: list[Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for side, mine in (
            ("sent", [p for p in sel if p.src == ip]),
            ("received", [p for p in sel if p.dst == ip]),
        ):
            payload, segments, retx, retx_n = _first_transmissions([p for p in mine if p.payload > 0])
            acks = [p for p in mine if p.payload == 0]
            out[side] = (
                payload + segments * PER_PACKET
            )  # Ethernet bytes of data segments, each byte sent once
            out[f"{side}_payload"] = payload
            out[f"{side}_segments"] = segments
            out[f"{side}_acks"] = len(acks)
            out[f"{side}_ack_bytes"] = sum(p.frame_len for p in acks)
            out[f"{side}_retransmitted"] = retx
            out[f"{side}_retransmitted_segments"] = retx_n
        return out

    first = windows[0][0] if windows else float("inf")
    out["spans"] = []
    for (a, b), f in zip(windows, fwd_ends or [None] * len(windows), strict=False):
        data = [p.ts for p in pk if a <= p.ts < b and p.payload > 0 and (f is None or p.ts >= f)]
        out["spans"].append(data[-1] - data[0] if len(data) > 1 else None)
    out["construction"] = tally([p for p in pk if start <= p.ts < first and not (p.flags & 0x02)])
    for a, b in windows:
        out["steps"].append(tally([p for p in pk if a <= p.ts < b]))
    return out


def _segments(plan: Plan, k: int, r: int) -> int:
    """Data segments predicted for worker ``r`` in step ``k``: (frame bytes - payload) / 66."""
    return (plan.step_total(k, "frames_sent", r) - plan.step_total(k, "sent", r)) // PER_PACKET


def _first_transmissions(pkts: list[Any]) -> tuple[int, int, int, int]:
    """(payload bytes, segments) sent for the first time, and (bytes, segments) retransmitted: a segment
    whose sequence range a segment before it already covered is a retransmission (per connection, the
    sequence numbers taken relative to the first seen, modulo 2^32)."""
    covered: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    base: dict[tuple[Any, ...], int] = {}
    payload = segments = retx = retx_n = 0
    for p in pkts:
        key = (p.src, p.sport, p.dst, p.dport)
        b = base.setdefault(key, p.seq)
        a = (p.seq - b) % (1 << 32)
        z = a + p.payload
        ivs = covered.setdefault(key, [])
        new = p.payload
        for x, y in ivs:
            lo, hi = max(a, x), min(z, y)
            if hi > lo:
                new -= hi - lo
        if new <= 0:
            retx, retx_n = retx + p.frame_len, retx_n + 1
            continue
        payload += new
        segments += 1
        ivs.append((a, z))
        if len(ivs) > 64:  # merge: keep the list short
            ivs.sort()
            merged = [ivs[0]]
            for x, y in ivs[1:]:
                if x <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], y))
                else:
                    merged.append((x, y))
            covered[key] = merged
    return payload, segments, retx, retx_n


def _imean(xs: list[int]) -> int:
    return round(_mean(xs))  # type: ignore[arg-type]


def _steps_of(ev: list[dict[str, Any]], rank: int) -> list[dict[str, Any]]:
    """Worker ``rank``'s step events, in step order."""
    return sorted(
        (e for e in ev if e.get("event") == "step" and e["worker"] == rank), key=lambda e: e["step"]
    )


def analyse(cfg: TrainConfig, plan: Plan, res: Result) -> TrainReport:
    """Each worker's capture against the plan (bytes a step), the steps' times against the prediction."""
    ev = Events.of(res)
    comp = [e for e in ev if e.get("event") == "compute"]
    compute = {k: _mean([_mean(e[f"{k}_s"]) for e in comp]) for k in ("fwd", "bwd", "opt")}
    compute["total"] = compute["fwd"] + compute["bwd"] + compute["opt"]
    per_worker = []
    cons: dict[str, Any] = {}
    for r in range(cfg.workers):
        start, wins = _windows(ev, r, cfg.gap)
        try:
            fe = [e["t_fwd"] for e in _steps_of(ev, r)]
            m = measure_bytes(res.artifacts.capture(f"w{r}"), f"10.213.0.{r + 1}", cfg.port, wins, start, fe)
        except PktcharError as e:
            res.notes.append(f"w{r}: {e}")
            continue
        if r == 0:
            cons = {**m["construction"], "predicted_sent": plan.construction.frames_sent[0],
                    "predicted_payload": plan.construction.sent[0]}  # fmt: skip
        per_worker.append(_worker(plan, r, m))
    rows = _step_rows(plan, _steps_of(ev, 0), per_worker[0] if per_worker else None)
    cal = res.calibration.link_rate_measured_bps if res.calibration else None
    timing = predict_time(cfg, plan, compute, rows, cal, ev)
    done = next((e for e in ev if e.get("event") == "done" and e["worker"] == 0), {})
    ddp = {
        "bucket_sizes": done.get("bucket_sizes", ""),
        "rebuilt_bucket_sizes": done.get("rebuilt_bucket_sizes", ""),
    }
    caps = {e: {**asdict(c), "complete": c.complete} for e, c in res.captures.items()}
    return TrainReport(cfg, plan, res.source, compute, rows, per_worker, cons, timing, ddp, caps, res.error, res,
                       list(res.notes), _loaded(comp))  # fmt: skip


def _worker(plan: Plan, r: int, m: dict[str, Any]) -> dict[str, Any]:
    """Worker ``r``'s steady state (from the third step on, after the rebuild) against the plan's third step."""
    steady = m["steps"][2:] or m["steps"][1:] or m["steps"]
    k = min(2, len(plan.steps) - 1)
    return {
        "worker": f"w{r}", "steps_measured": len(m["steps"]),
        "sent": _imean([s["sent"] for s in steady]), "sent_predicted": plan.step_total(k, "frames_sent", r),
        "payload": _imean([s["sent_payload"] for s in steady]), "payload_predicted": plan.step_total(k, "sent", r),
        "received_payload": _imean([s["received_payload"] for s in steady]),
        "received_payload_predicted": plan.step_total(k, "received", r),
        "acks_sent": _mean([s["sent_acks"] for s in steady]),
        "ack_bytes_sent": _imean([s["sent_ack_bytes"] for s in steady]),
        "retransmitted": _imean([s["sent_retransmitted"] for s in steady]),
        "segments": _mean([s["sent_segments"] for s in steady]),
        "segments_predicted": _segments(plan, k, r),
        "by_step": m["steps"], "spans": m["spans"],
    }  # fmt: skip


def _step_rows(plan: Plan, steps: list[dict[str, Any]], w0: dict[str, Any] | None) -> list[StepRow]:
    """w0's steps: bytes from its capture (``w0``: its :func:`_worker` entry) beside the plan, and times."""
    by_step = w0["by_step"] if w0 else []
    spans = w0["spans"] if w0 else []
    rows = []
    for s in steps:
        k = s["step"]
        got = by_step[k] if k < len(by_step) else None
        rows.append(StepRow(
            k, got["sent"] if got else None, plan.step_total(k, "frames_sent"),
            got["sent_payload"] if got else None, plan.step_total(k, "sent"),
            s["t_fwd"] - s["t0"], s["t_bwd"] - s["t_fwd"], s["t_end"] - s["t_bwd"], s["t_end"] - s["t0"],
            spans[k] if k < len(spans) else None))  # fmt: skip
    return rows


def step_comm(plan: Plan, k: int, rate: float) -> tuple[float, float, float]:
    """(buffer broadcast, all-reduce, last bucket's all-reduce) seconds of step ``k`` on w0's uplink."""
    bc = sum(p.frames_sent[0] for p in plan.steps[k] if not p.name.startswith("bucket")) * 8 / rate
    ar = [p.frames_sent[0] * 8 / rate for p in plan.steps[k] if p.name.startswith("bucket")]
    return bc, sum(ar), ar[-1] if ar else 0.0


def predict_time(
    cfg: TrainConfig,
    plan: Plan,
    compute: dict[str, float],
    rows: list[StepRow],
    calibrated: float | None = None,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Time a step: compute measured without DDP plus the wire time at the link rate, with nothing hidden
    (upper bound) and with every bucket but the last hidden behind backward (lower bound); the same at
    the calibrated rate; against the measured steady steps (from the third on, after the rebuild).
    Hidden = compute + measured all-reduce span - measured step: the part of the all-reduce that ran
    while backward was still computing. With the workers' ``events``, also ``host``: the host model
    (:func:`pktchar.testbed.trainsync.host.host_timing`), each bucket chained from compute and the
    all-reduce measured alone on this machine."""
    k = min(2, len(plan.steps) - 1)
    bc, ar, last = step_comm(plan, k, cfg.link)
    steady = [r for r in rows if r.step >= 2] or rows

    def mean(xs: list[float | None]) -> float | None:
        v = [x for x in xs if x is not None]
        return sum(v) / len(v) if v else None

    meas = mean([r.step_s for r in steady])
    span = mean([r.allreduce_s for r in steady])
    no_overlap = compute["total"] + bc + ar
    full = compute["total"] + bc + max(last, ar - compute["bwd"])
    out: dict[str, Any] = {
        "compute_s": compute["total"], "compute_bwd_s": compute["bwd"], "buffer_bcast_s": bc, "allreduce_s": ar,
        "last_bucket_s": last, "step_predicted_no_overlap_s": no_overlap, "step_predicted_overlap_s": full,
        "step_measured_s": meas, "backward_measured_s": mean([r.bwd_s for r in steady]),
        "allreduce_measured_s": span, "calibrated_bps": calibrated,
    }  # fmt: skip
    if calibrated:
        bc_c, ar_c, last_c = step_comm(plan, k, calibrated)
        out["allreduce_calibrated_s"] = ar_c
        out["step_predicted_calibrated_s"] = compute["total"] + bc_c + ar_c
        out["step_predicted_calibrated_overlap_s"] = (
            compute["total"] + bc_c + max(last_c, ar_c - compute["bwd"])
        )
    if meas is not None and span is not None:
        hidden = max(0.0, compute["total"] + span - meas)
        out["hidden_s"], out["hidden_fraction"] = hidden, min(1.0, hidden / span) if span else None
    if events is not None and cfg.workers > 1:
        from .host import host_timing

        out["host"] = host_timing(
            events, cfg.workers, cfg.link, plan.elem, bc, compute["opt"], compute["total"]
        )
    return out


def _loaded(compute_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each worker says it loaded, from its compute event, in worker order."""
    return [{"worker": f"w{e['worker']}", **e["data"]} for e in sorted(compute_events, key=lambda e: e["worker"])
            if "data" in e]  # fmt: skip
