"""Incremental model upload with parallel model creation, live on the testbed: a scenario of the
scenario core.

The system is IONN's (Jeong, Lee, Shin, Moon and Kim, "IONN: Incremental Offloading of Neural Network
Computations from Mobile Devices to Edge Servers", ACM SoCC 2018) with the fix of "Parallel
Optimization of Deep Learning Computation Offloading in Edge Computing Environment" (Seoul National
University, JOK 2022): a device meets an edge server that lacks its model, uploads the model as
partitions of adjacent layers, and offloads to the edge whatever prefix is already built while the
upload goes on. ``sequential`` builds each partition on the upload thread (the old system: building
stalls the upload); ``parallel`` builds on a create thread that merges the partitions which arrived
during a build (the new system).

    prepare: real model (seed 0) ─► chain (partition.py) ─► unit times on each side (the device's
             under its CPU quota) ─► partitions ─► packed bytes, as sent
    run (each mode): topology ─► prediction (upload flow, frame by frame) ─► edge (upload, create,
             execute threads) ─► device (upload thread + back-to-back queries) ─► capture ─► result
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import PktcharError
from ..core.packets import Transport, packetize
from ..core.phases import phase
from . import device as D
from .capture import default_folder, wait_line
from .cgroup import CpuLimit, check_fraction
from .netns import Link, Topology, require_root
from .runner import Progress, predict_frames, run, wait_done
from .schema import (
    Calibration,
    Events,
    FlowPrediction,
    FrameTiming,
    Measure,
    Outcome,
    Prediction,
    Result,
)

DEVICE, EDGE = "dev", "edge"
UPLOAD_PORT, QUERY_PORT = 5301, 5302
MODES = ("sequential", "parallel")

# The paper's Table 1 (Seoul National University, JOK 2022): size (MB), partitions, seconds saved, %.
# ResNet-152's row also gives the expected, old and new upload times (24.3 s, 32.3 s, 26.0 s) and 5.2 s
# of building; MobileNet's the old and new times (3.0 s -> 2.1 s).
PAPER_TABLE1 = {
    "resnet152": {"size_mb": 243, "partitions": 41, "saved_s": 6.3, "saved_pct": 19.3, "expected_s": 24.3,
                  "sequential_s": 32.3, "parallel_s": 26.0, "build_s": 5.2},
    "resnet50": {"size_mb": 103, "partitions": 11, "saved_s": 0.6, "saved_pct": 4.7},
    "mobilenet_v1": {"size_mb": 17, "partitions": 17, "saved_s": 0.9, "saved_pct": 30.0, "sequential_s": 3.0,
                     "parallel_s": 2.1},
    "alexnet_caffe": {"size_mb": 244, "partitions": 7, "saved_s": 0.3, "saved_pct": 1.1},
}  # fmt: skip


@dataclass
class UploadConfig:
    model: str
    link: float = 80e6
    create: str = "both"  # sequential | parallel | both
    partitions: str = "auto"  # auto | N | LAYER,LAYER,...
    queries_after: int = 10
    device_cpu: float | None = None
    device_limit: str = "dilate"  # how the device is made slow: dilate (time dilation) or cfs (a CPU quota)
    res: str | None = None
    pcap: Path | None = None
    images: str | None = None
    calibrate: bool = True
    max_memory_gb: float = 8.0


@dataclass
class Plan:
    """What the device uploads: the partitions (chain point ranges) and their bytes, as packed."""

    model: str
    res: str
    input_shape: list[int]
    ranges: list[tuple[int, int]]
    names: list[str]  # the layer each partition ends with
    sizes: list[int]  # bytes of each packed partition (description + serialized state)
    params: list[int]  # parameter and buffer bytes of each
    point_shapes: list[list[int]]
    units: int
    device_s: list[float]
    edge_s: list[float]
    point_bytes: list[int]
    algorithm: str
    hull: list[int] = field(default_factory=list)  # IONN's convex-hull boundaries, for comparison
    blobs: bytes = b""
    device_cpu: str = "unlimited"
    device_slowdown: float | None = None  # measured on a 10 ms unit before the run (1 / device_cpu wanted)

    @property
    def packed_bytes(self) -> int:
        """Bytes the device uploads: every packed partition."""
        return sum(self.sizes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("blobs")
        return d


def prepare(cfg: UploadConfig, progress: Any = None) -> Plan:
    """Build the model for real, measure each unit on both sides, choose and pack the partitions."""
    import torch

    from ..core.resolution import parse_resolution
    from ..model import partition as P
    from ..model import zoo

    spec = zoo.resolve(cfg.model)
    res = parse_resolution(cfg.res or str(spec.default_res))
    torch.manual_seed(0)
    meta = zoo.build(spec, device="meta")
    nbytes = sum(p.numel() * p.element_size() for p in meta.parameters())
    need = nbytes * 5 / 1e9  # the model on each side, the packed partitions, the edge's copies
    if need > cfg.max_memory_gb:
        raise PktcharError(f"{cfg.model} needs about {need:.1f} GB for an upload run (weights on both sides and "
                           f"in flight); the limit is {cfg.max_memory_gb:g} GB")  # fmt: skip
    torch.set_num_threads(1)
    phase(f"{cfg.model}: building the model and timing each unit on the edge")
    net = zoo.build(spec, device="cpu").eval()
    ch = P.chain(net, cfg.model)
    x = torch.randn(1, 3, res.height, res.width)
    edge_s, point_bytes = P.unit_times(ch, x)
    dev = D.DeviceCpu(cfg.device_cpu, cfg.device_limit) if cfg.device_cpu else None
    checked = None
    if dev is not None:
        phase(f"{cfg.model}: measuring the device ({dev.describe()})")
        checked = D.measure(dev, [D.CHECK_UNIT_S], repeats=5)
        phase(f"{cfg.model}: timing each unit on the device ({checked.describe()})")
    device_s = _device_times(cfg, ch.units, dev) if dev is not None else edge_s
    shapes: list[list[int]] = [list(x.shape)]
    with torch.no_grad():
        y = x
        for i in range(ch.units):
            y = ch.module(i, i + 1)(y)
            shapes.append(list(y.shape))
    upload_bytes = P.param_bytes(ch)
    costs = P.Costs(tuple(device_s), tuple(edge_s), tuple(upload_bytes), tuple(point_bytes))
    rate = cfg.link
    text = cfg.partitions.strip()
    if text == "auto":
        cuts, algo = (
            P.plan_auto(costs, rate),
            "auto (every point where the offloaded query time reaches a new minimum)",
        )
    elif text.isdigit():
        cuts, algo = P.plan_equal(upload_bytes, int(text)), f"{text} partitions of about equal bytes"
    else:
        cuts, algo = P.plan_named(ch, text.split(",")), "the named layers"
    ranges = P.ranges(cuts)
    phase(f"{cfg.model}: packing {len(ranges)} partitions")
    blobs, sizes, params = [], [], []
    for i, (a, b) in enumerate(ranges):
        blob = P.pack(ch, a, b, {"index": i, "of": len(ranges), "input_shape": shapes[a]})
        blobs.append(blob)
        sizes.append(len(blob))
        params.append(sum(upload_bytes[a:b]))
    return Plan(
        model=cfg.model,
        res=res.label,
        input_shape=list(x.shape),
        ranges=ranges,
        names=[ch.points[b].name for _, b in ranges],
        sizes=sizes,
        params=params,
        point_shapes=shapes,
        units=ch.units,
        device_s=list(device_s),
        edge_s=list(edge_s),
        point_bytes=point_bytes,
        algorithm=algo,
        hull=P.plan_hull(costs, rate),
        blobs=b"".join(blobs),
        device_cpu=checked.describe() if checked else "unlimited",
        device_slowdown=checked.rows[0].slowdown if checked else None,
    )


def _device_times(cfg: UploadConfig, units: int, dev: D.DeviceCpu) -> list[float]:
    """Per-unit seconds measured in a process made slow like the device (dilated, or in its cgroup)."""
    import contextlib

    cmd = [sys.executable, "-m", "pktchar.testbed.upload_procs", "profile", "--model", cfg.model, "--res",
           cfg.res or "224", "--repeats", "1"]  # fmt: skip
    with contextlib.ExitStack() as stack:
        if dev.mechanism == "cfs":
            cmd = stack.enter_context(D.cgroup_for(dev, "profile")).wrap(cmd)
        else:
            cmd += ["--dilate", str(dev.fraction)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not lines or "unit_s" not in lines[-1]:
        raise PktcharError(
            f"profiling on the emulated device failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
        )
    times = lines[-1]["unit_s"]
    if len(times) != units:
        raise PktcharError("profiling on the emulated device found a different chain")
    return [float(t) for t in times]


# ----------------------------------------------------------------------------------------------
# the scenario


class UploadScenario:
    """One mode of an upload run. ``dev`` uploads and queries, ``edge`` builds and serves; captured at the edge."""

    name = "upload"
    endpoints = [DEVICE, EDGE]
    capture_on = EDGE
    calibration = (DEVICE, EDGE)

    def __init__(self, cfg: UploadConfig, plan: Plan, mode: str) -> None:
        self.cfg, self.plan, self.mode = cfg, plan, mode
        self.link = Link(cfg.link, None, 1500)
        self.transport = Transport("tcp", 1500)
        self.edge_proc: subprocess.Popen[str] | None = None
        self.limit: CpuLimit | None = None
        self.events: list[dict[str, Any]] = []

    def config(self) -> dict[str, Any]:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.cfg).items()}
        return {**d, "mode": self.mode, "partitions_count": len(self.plan.ranges)}

    def prepare(self) -> str:
        return (f"{self.plan.model} at {self.plan.res}: {len(self.plan.ranges)} partitions, "
                f"{sum(self.plan.sizes):,} B packed ({self.plan.algorithm}); device CPU {self.plan.device_cpu}; "
                f"edge mode {self.mode}")  # fmt: skip

    def predict(self, topo: Topology, calibration: Calibration | None) -> Prediction:
        cal = calibration.link_rate_measured_bps if calibration else None
        flow = FlowPrediction(
            name="upload", proto="tcp", src_ip=topo.eps[DEVICE].ip, dst_ip=topo.eps[EDGE].ip, port=UPLOAD_PORT,
            mtu=1500, ip_version=4, app_header=self.transport.app_header, rate_bps=self.link.uplink,
            bucket_bytes=self.link.bucket, frames=predict_frames(self.plan.sizes, self.transport, self.link, cal),
            calibrated_rate_bps=cal,
        )  # fmt: skip
        return Prediction(
            "upload", self.config(), (flow,), notes=(upload_expectation(self.plan, self.link.uplink),)
        )

    def start(self, topo: Topology, work: Path) -> None:
        (work / "plan.json").write_text(json.dumps(self.plan.to_dict()))
        (work / "blobs.bin").write_bytes(self.plan.blobs)
        cmd = [sys.executable, "-m", "pktchar.testbed.upload_procs", "edge", "--model", self.plan.model, "--res",
               self.plan.res, "--plan", str(work / "plan.json"), "--mode", self.mode]  # fmt: skip
        self.edge_proc = topo.popen(EDGE, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.edge_proc.stdout is not None
        wait_line(self.edge_proc, self.edge_proc.stdout, "READY", 120)
        if self.cfg.device_cpu and self.cfg.device_limit == "cfs":
            dev = D.DeviceCpu(self.cfg.device_cpu, "cfs")
            self.limit = dev.limit(f"{topo.run_id}-{DEVICE}").create()

    def traffic(self, topo: Topology, work: Path, outcome: Outcome, progress: Progress | None) -> None:
        import threading

        cmd = [sys.executable, "-m", "pktchar.testbed.upload_procs", "device", "--model", self.plan.model, "--res",
               self.plan.res, "--plan", str(work / "plan.json"), "--blobs", str(work / "blobs.bin"), "--edge",
               topo.eps[EDGE].ip, "--queries-after", str(self.cfg.queries_after)]  # fmt: skip
        if self.cfg.images:
            cmd += ["--images", self.cfg.images]
        if self.cfg.device_cpu and self.cfg.device_limit == "dilate":
            cmd += ["--dilate", str(self.cfg.device_cpu)]
        dev = topo.popen(DEVICE, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self.limit:  # at once: the process is still importing Python when it joins
            self.limit.add(dev.pid)
        edge_lines: list[dict[str, Any]] = []
        assert self.edge_proc is not None and self.edge_proc.stdout is not None
        edge_out = self.edge_proc.stdout

        def read_edge() -> None:
            for line in edge_out:
                if line.startswith("{"):
                    d = json.loads(line)
                    d["side"] = "edge"
                    edge_lines.append(d)

        reader = threading.Thread(target=read_edge, daemon=True)
        reader.start()
        self._read_device(dev, outcome, progress)
        wait_done(dev, 30)
        if outcome.error is None and dev.returncode not in (0, None):
            outcome.error = f"device exited {dev.returncode}: {_last_line(dev)}"
        wait_done(self.edge_proc, 30)
        reader.join(timeout=10)
        self.events += edge_lines
        self._edge_error(edge_lines, outcome)
        parts = [e for e in edge_lines if e.get("event") == "partition"]
        outcome.frames = [
            FrameTiming(e["id"], e["len"], e["send_ns"], e["first_ns"], e["done_ns"]) for e in parts
        ]
        outcome.details = Events(self.events)

    def _read_device(self, dev: subprocess.Popen[str], outcome: Outcome, progress: Progress | None) -> None:
        """The device's events, until it ends, says an error, or the budget (300 s + 4 x the wire time) ends."""
        import time

        total = len(self.plan.ranges)
        assert dev.stdout is not None
        budget = 300 + sum(self.plan.sizes) * 8 / self.link.uplink * 4
        deadline = time.monotonic() + budget
        for line in dev.stdout:
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            d["side"] = "device"
            self.events.append(d)
            if "error" in d:
                outcome.error = d["error"]
                break
            if d.get("event") == "built" and progress:
                progress(int(d["upto"]), total)
            if time.monotonic() > deadline:
                outcome.error = f"the upload did not finish within {budget:.0f} s"
                break

    def _edge_error(self, edge_lines: list[dict[str, Any]], outcome: Outcome) -> None:
        """The edge's error line or exit status, unless an error is said already."""
        for e in edge_lines:
            if "error" in e and outcome.error is None:
                outcome.error = f"edge: {e['error']}"
        assert self.edge_proc is not None
        if self.edge_proc.returncode not in (0, None) and outcome.error is None:
            outcome.error = f"edge exited {self.edge_proc.returncode}: {_last_line(self.edge_proc)}"

    def finish(self, topo: Topology) -> None:
        if self.edge_proc is not None and self.edge_proc.poll() is None:
            self.edge_proc.terminate()
        if self.limit is not None:
            self.limit.close()


def _last_line(proc: subprocess.Popen[str]) -> str:
    """The last line a process wrote to stderr (empty if none)."""
    err = proc.stderr.read() if proc.stderr else ""
    return (err.strip().splitlines() or [""])[-1]


def upload_expectation(plan: Plan, rate: float) -> str:
    wire = sum(plan.sizes) * 8 / rate
    return f"pure wire time (bytes x 8 / rate, as the paper computes it): {wire:.3f} s"


# ----------------------------------------------------------------------------------------------
# measured against predicted, per mode


@dataclass
class ModeResult:
    mode: str
    upload_s: float | None  # device's first byte of the first partition -> edge's last byte of the last
    wire_s: float  # packed bytes x 8 / rate (the paper's "expected")
    exact_s: float  # Ethernet frame bytes of every partition x 8 / rate, less the bucket's first packet
    exact_calibrated_s: float | None
    query_up_bytes_during: int  # Ethernet bytes of query traffic on the uplink while the upload ran
    exact_with_queries_s: float | None
    exact_with_builds_s: float | None  # sequential: + every build but the last, on the upload thread
    build_total_s: float
    builds: list[dict[str, Any]]
    stall_s: float | None  # upload time beyond the exact expectation with the measured query traffic
    all_built_s: float | None  # start -> the device hears the last build
    queries: list[dict[str, Any]]
    wire_bytes_measured: int | None
    wire_bytes_predicted: int
    result: Result

    def measures(self) -> ModeMeasures:
        """The upload time against each expectation, and the upload's wire bytes, measured against predicted."""
        u = self.upload_s
        return ModeMeasures(
            Measure("upload time against the pure wire time", self.wire_s, u, "s"),
            Measure("upload time against the exact wire time", self.exact_s, u, "s"),
            Measure("upload time against the exact time at the calibrated rate", self.exact_calibrated_s, u, "s"),
            Measure("upload time against the exact time with the queries", self.exact_with_queries_s, u, "s"),
            Measure("upload time against the exact time with the builds", self.exact_with_builds_s, u, "s"),
            Measure("upload wire bytes", self.wire_bytes_predicted, self.wire_bytes_measured, "B"),
        )  # fmt: skip

    @property
    def framing(self) -> float:
        """What Ethernet, IP and TCP headers add to the pure wire time: exact / pure - 1."""
        return self.exact_s / self.wire_s - 1

    @property
    def queries_during(self) -> list[dict[str, Any]]:
        return [q for q in self.queries if q["during_upload"]]

    @property
    def queries_after(self) -> list[dict[str, Any]]:
        return [q for q in self.queries if not q["during_upload"]]

    @property
    def query_after_s(self) -> float | None:
        """The mean time of a query after the upload (None without one)."""
        after = self.queries_after
        return sum(q["seconds"] for q in after) / len(after) if after else None

    @property
    def whole_model_after(self) -> bool:
        """Every query after the upload offloaded every partition."""
        return all(q["plan"] == q["of"] for q in self.queries_after)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "result"}
        d["files"] = {k: str(v) for k, v in (("pcap", self.result.artifacts.pcap),
                                              ("result", self.result.artifacts.result))}  # fmt: skip
        d["error"] = self.result.error
        d["measures"] = [m.to_dict() for m in self.measures()]
        return d


class ModeMeasures(NamedTuple):
    """An upload mode's figures, measured against predicted (:meth:`ModeResult.measures`), by name."""

    wire: Measure  # upload time against the pure wire time, bytes x 8 / rate (the paper's "expected")
    exact: Measure  # ... against Ethernet frames x 8 / rate
    exact_calibrated: Measure  # ... the same at the calibrated rate
    with_queries: Measure  # ... with the query traffic measured on the uplink
    with_builds: Measure  # ... sequential: plus every build but the last, on the upload thread
    wire_bytes: Measure  # the upload's Ethernet bytes


def analyse(plan: Plan, res: Result, rate: float) -> ModeResult:
    """Upload time, builds, stalls and queries of one mode, from its events and its capture."""
    ev = Events.of(res)
    flow = res.prediction.flow("upload")
    frame_bytes = sum(f.frame_bytes for f in flow.frames)
    credit = min(frame_bytes, flow.bucket_bytes)  # the bucket is full when the upload starts
    exact = (frame_bytes - credit) * 8 / rate
    cal = flow.calibrated_rate_bps
    start, sent, parts, done_ns = _timeline(ev, len(plan.ranges))
    complete = len(parts) == len(plan.ranges)
    upload_s = (parts[-1]["done_ns"] - sent[0]["send_ns"]) / 1e9 if complete and sent else None
    builds = _builds(ev, start)
    all_built = (done_ns - start) / 1e9 if done_ns and start else None
    queries = [
        _query(e, plan, start, done_ns) for e in ev if e.get("event") == "query" and e.get("side") == "device"
    ]
    q_bytes, measured_bytes = _capture_bytes(res, parts, sent) if complete and sent else (0, None)
    with_q = (frame_bytes + q_bytes - credit) * 8 / rate
    sequential = res.config.get("mode") == "sequential"
    return ModeResult(
        mode=res.config.get("mode", "?"),
        upload_s=upload_s,
        wire_s=sum(plan.sizes) * 8 / rate,
        exact_s=exact,
        exact_calibrated_s=(frame_bytes - credit) * 8 / cal if cal else None,
        query_up_bytes_during=q_bytes,
        exact_with_queries_s=with_q,
        exact_with_builds_s=with_q + sum(b["seconds"] for b in builds[:-1]) if sequential else None,
        build_total_s=sum(b["seconds"] for b in builds),
        builds=builds,
        stall_s=(upload_s - with_q) if upload_s is not None else None,
        all_built_s=all_built,
        queries=queries,
        wire_bytes_measured=measured_bytes,
        wire_bytes_predicted=frame_bytes,
        result=res,
    )


def _timeline(
    ev: list[dict[str, Any]], partitions: int
) -> tuple[int | None, list[dict[str, Any]], list[dict[str, Any]], int | None]:
    """The run's start, the partitions sent (device) and received (edge) in order, and when the device
    heard the last of ``partitions`` built (None if it did not)."""
    start = next((e["t_ns"] for e in ev if e.get("event") == "start"), None)
    sent = sorted((e for e in ev if e.get("event") == "sent"), key=lambda e: e["id"])
    parts = sorted((e for e in ev if e.get("event") == "partition"), key=lambda e: e["id"])
    built = [e for e in ev if e.get("event") == "built"]
    done_ns = built[-1]["t_ns"] if built and built[-1]["upto"] == partitions else None
    return start, sent, parts, done_ns


def _builds(ev: list[dict[str, Any]], start: int | None) -> list[dict[str, Any]]:
    """The edge's builds: which partitions, when from the start, how long, on which thread."""
    return [
        {"ids": e["ids"], "start_s": (e["start_ns"] - start) / 1e9 if start else None,
         "seconds": (e["end_ns"] - e["start_ns"]) / 1e9, "thread": e.get("thread")}
        for e in ev if e.get("event") == "build"
    ]  # fmt: skip


def _query(e: dict[str, Any], plan: Plan, start: int | None, done_ns: int | None) -> dict[str, Any]:
    """One of the device's queries: when, how long, with how much of the model on the edge, its bytes."""
    return {"id": e["id"], "start_s": (e["start_ns"] - start) / 1e9 if start else None,
            "seconds": (e["end_ns"] - e["start_ns"]) / 1e9, "plan": e["plan"],
            "offloaded_partitions": e["plan"], "of": len(plan.ranges),
            "offloaded_units": plan.ranges[e["plan"] - 1][1] if e["plan"] else 0,
            "up_bytes": e["up_bytes"], "down_bytes": e["down_bytes"],
            "edge_s": e["edge_ns"] / 1e9, "top1": e["top1"],
            "during_upload": done_ns is None or e["start_ns"] < done_ns}  # fmt: skip


def _capture_bytes(
    res: Result, parts: list[dict[str, Any]], sent: list[dict[str, Any]]
) -> tuple[int, int | None]:
    """From the capture: Ethernet bytes of query packets on the uplink while the upload ran, and the
    upload flow's data bytes."""
    from .pcap import read

    flow = res.prediction.flow("upload")
    try:
        pkts = read(res.artifacts.pcap)
    except PktcharError:
        return 0, None
    up = [p for p in pkts if p.src == flow.src_ip and p.dport == UPLOAD_PORT and p.payload > 0]
    if not up:
        return 0, None
    t0, t1 = up[0].ts, up[-1].ts
    q = sum(p.frame_len for p in pkts if p.src == flow.src_ip and p.dport == QUERY_PORT and t0 <= p.ts <= t1)
    seen: set[int] = set()
    data = 0
    for p in up:
        if p.seq not in seen:
            seen.add(p.seq)
            data += p.frame_len
    return q, data


@dataclass
class UploadReport:
    config: UploadConfig
    plan: Plan
    modes: list[ModeResult]
    notes: list[str] = field(default_factory=list)

    def mode(self, name: str) -> ModeResult | None:
        return next((m for m in self.modes if m.mode == name), None)

    @property
    def saved_s(self) -> float | None:
        """Upload seconds parallel creation saved: sequential - parallel (None unless both modes uploaded)."""
        s, p = self.mode("sequential"), self.mode("parallel")
        if s is None or p is None or not s.upload_s or not p.upload_s:
            return None
        return s.upload_s - p.upload_s

    @property
    def saved_fraction(self) -> float | None:
        """:attr:`saved_s` as a share of the sequential upload time."""
        s, saved = self.mode("sequential"), self.saved_s
        return None if saved is None or s is None or not s.upload_s else saved / s.upload_s

    def to_dict(self) -> dict[str, Any]:
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        return {"kind": "pktchar-upload", "version": 1, "config": cfg, "plan": self.plan.to_dict(),
                "modes": [m.to_dict() for m in self.modes], "paper": PAPER_TABLE1.get(self.config.model),
                "notes": self.notes, "saved_s": self.saved_s, "saved_fraction": self.saved_fraction}  # fmt: skip


def check(cfg: UploadConfig) -> None:
    """Every argument, before anything is built."""
    if cfg.create not in (*MODES, "both"):
        raise PktcharError(f"`create` must be sequential, parallel or both, got {cfg.create!r}")
    if cfg.queries_after < 0:
        raise PktcharError(f"`queries_after` must be 0 or more, got {cfg.queries_after}")
    if cfg.device_cpu is not None:
        check_fraction(cfg.device_cpu)
        D.check(cfg.device_cpu, cfg.device_limit, "device_cpu", "device_limit")
    Link(cfg.link)
    p = cfg.partitions.strip()
    if not p:
        raise PktcharError("`partitions`: give auto, a number, or layer names")


def upload(cfg: UploadConfig, progress: Progress | None = None) -> UploadReport:
    """Prepare once, then run each mode on its own fresh topology (root)."""
    check(cfg)
    require_root()
    plan = prepare(cfg)
    modes = list(MODES) if cfg.create == "both" else [cfg.create]
    out = UploadReport(cfg, plan, [])
    base = Path(cfg.pcap) if cfg.pcap else default_folder() / f"upload-{cfg.model}.pcap"
    for mode in modes:
        pcap = base.with_name(f"{base.stem}-{mode}{base.suffix or '.pcap'}") if len(modes) > 1 else base
        sc = UploadScenario(cfg, plan, mode)
        phase(f"{cfg.model}: {mode} creation")
        res = run(sc, pcap, calibrate_link=cfg.calibrate, progress=progress)
        out.modes.append(analyse(plan, res, cfg.link))
        if res.error:
            out.notes.append(f"{mode}: {res.error}")
            break
    return out


__all__ = ["PAPER_TABLE1", "UploadConfig", "UploadReport", "packetize", "upload"]
