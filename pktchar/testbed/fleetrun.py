"""A fleet of devices sending to one edge server, live: a scenario of the scenario core.

N device namespaces on a bridge, each with its own shaped uplink; the bridge's port into the edge
namespace is shaped to the edge link, the bottleneck every device shares. Each device sends real coded
payloads of its split (the frames of ``replay``) at its frame rate to its own receiver on the edge,
which answers each frame. Predicted (pktchar.core.fleet_model: packetization and both token buckets) before a byte
is sent; measured per device from the application timings and the capture at the edge.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

try:  # Python 3.11+; pyproject installs tomli, the same parser, on 3.10
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..core.errors import PktcharError
from ..core.fleet_model import FleetPrediction, Group, aggregate_goodput, jain, percentile, predict
from ..core.packets import Transport
from ..core.phases import phase
from .capture import default_folder, wait_line
from .netns import Link, Topology
from .runner import Progress, endpoint_cmd, predict_frames, run, wait_done
from .schema import Calibration, FlowPrediction, FrameTiming, Measure, Outcome, Prediction, Result

if TYPE_CHECKING:
    from ..core.fleet_model import FlowDemand, SweepPoint, SweepSummary
    from ..core.qos import Requirements

EDGE = "edge"
MAX_DEVICES = 24  # each device is two Python processes (sender, receiver) on a 2-core machine
PORT_BASE = 5201


@dataclass
class GroupSpec:
    """A group of alike devices, as a scenario file gives it."""

    model: str
    split: str
    count: int = 1
    res: str = "224"
    dtype: str = "fp32"
    compression: float | None = None
    fps: float = 10.0
    uplink: str = "100mbit"
    name: str = ""
    where: str = ""  # "scenario FILE line N" when the group came from a scenario file


@dataclass
class FleetConfig:
    groups: list[GroupSpec]
    edge_link: float
    stagger: bool = False
    frames: int = 30
    latency: float | None = None  # budget a frame (default 1/fps)
    pcap: Path | None = None
    calibrate: bool = False
    to: str | None = None  # HOST:PORT of `pktchar serve`: every device here, no namespaces, no shaping
    capture_iface: str | None = None

    @property
    def devices(self) -> int:
        return sum(g.count for g in self.groups)


def load_scenario(path: Path) -> tuple[list[GroupSpec], dict[str, Any]]:
    """A fleet scenario file (TOML): top-level ``edge_link``, ``stagger``, ``frames``, ``latency`` and
    one ``[[group]]`` table a device group. Unknown keys are named with their line."""
    try:
        text = path.read_text()
    except OSError as e:
        raise PktcharError(f"scenario {path}: {e.strerror}") from e
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PktcharError(f"scenario {path}: {e}") from e

    def line_of(key: str) -> str:
        for i, ln in enumerate(text.splitlines(), start=1):
            if ln.strip().startswith((f"{key} ", f"{key}=")):
                return f"line {i}"
        return "?"

    top = {"edge_link", "stagger", "frames", "latency", "group"}
    for k in doc:
        if k not in top:
            raise PktcharError(
                f"scenario {path} {line_of(k)}: unknown key {k!r} (top level: {', '.join(sorted(top))})"
            )
    allowed = {f.name for f in fields(GroupSpec)} - {"where"}
    headers = [i for i, ln in enumerate(text.splitlines(), start=1) if ln.strip() == "[[group]]"]
    groups = []
    for i, g in enumerate(doc.get("group", [])):
        for k in g:
            if k not in allowed:
                raise PktcharError(
                    f"scenario {path} {line_of(k)}: unknown key {k!r} in group {i + 1} (keys: {', '.join(sorted(allowed))})"
                )
        if "model" not in g or "split" not in g:
            raise PktcharError(f"scenario {path}: group {i + 1} needs a model and a split")
        where = f"scenario {path} line {headers[i]}" if i < len(headers) else f"scenario {path}"
        groups.append(GroupSpec(**{**g, "name": g.get("name") or f"g{i}", "where": where}))
    if not groups:
        raise PktcharError(f"scenario {path}: no [[group]] of devices")
    return groups, {k: v for k, v in doc.items() if k != "group"}


def config_from(
    scenario: Path | None = None,
    *,
    model: str | None = None,
    split: str | None = None,
    devices: int = 1,
    res: str = "224",
    dtype: str = "fp32",
    compression: float | None = None,
    fps: float = 10.0,
    uplink: str = "100mbit",
    edge_link: str = "100mbit",
    stagger: bool = False,
    frames: int = 30,
    latency: str | None = None,
    pcap: Path | None = None,
    to: str | None = None,
    capture_iface: str | None = None,
) -> FleetConfig:
    """A fleet from a scenario file, its top-level ``edge_link``, ``stagger``, ``frames`` and ``latency``
    over the values given here; without one, ``devices`` alike devices of ``model`` split at ``split``.
    Not yet checked (:func:`check`)."""
    from ..core.units import parse_duration, parse_rate

    lat = parse_duration(latency) if latency else None
    edge = parse_rate(edge_link)
    if scenario is not None:
        groups, top = load_scenario(scenario)
        edge = parse_rate(str(top.get("edge_link", edge_link)))
        stagger = bool(top.get("stagger", stagger))
        frames = int(top.get("frames", frames))
        lat = parse_duration(str(top["latency"])) if "latency" in top else lat
    elif model is None or split is None:
        raise PktcharError("give MODEL and `split` (or `scenario` FILE)")
    else:
        groups = [GroupSpec(model, split, devices, res, dtype, compression, fps, uplink, "d")]
    return FleetConfig(groups, edge, stagger, frames, lat, pcap, to=to, capture_iface=capture_iface)


def parse_sweep(text: str) -> int:
    """The largest fleet of a sweep ``1..N``."""
    lo, _, hi = text.partition("..")
    if not (lo.strip() == "1" and hi.strip().isdigit() and int(hi) >= 1):
        raise PktcharError(f"`sweep` takes 1..N, e.g. 1..8, got {text!r}")
    return int(hi)


@dataclass
class Prepared:
    spec: GroupSpec
    sizes: list[int]
    data: bytes
    source: str
    split: str
    uplink_bps: float


def check(cfg: FleetConfig) -> None:
    from ..core.units import parse_rate

    n = cfg.devices
    if n < 1:
        raise PktcharError("a fleet needs at least one device")
    if n > MAX_DEVICES:
        raise PktcharError(f"{n} devices is more than this machine runs ({MAX_DEVICES}: each device is a sender and a "
                           f"receiver process on {os.cpu_count()} cores)")  # fmt: skip
    if cfg.frames < 2:
        raise PktcharError(f"`frames` must be at least 2, got {cfg.frames}")
    for g in cfg.groups:
        if g.fps <= 0:
            raise PktcharError(f"group {g.name or g.model}: fps must be positive, got {g.fps:g}")
        Link(parse_rate(g.uplink))
    Link(cfg.edge_link)


class FleetScenario:
    """Devices ``d0..`` and the ``edge``; captured at the edge (after the bottleneck)."""

    name = "fleet"
    capture_on = EDGE
    calibration = None

    def __init__(self, cfg: FleetConfig, prepared: list[Prepared]) -> None:
        self.cfg, self.prepared = cfg, prepared
        self.devices: list[tuple[str, Prepared]] = []
        for p in prepared:
            for _ in range(p.spec.count):
                self.devices.append((f"d{len(self.devices)}", p))
        self.endpoints = [d for d, _ in self.devices] + [EDGE]
        self.bridged = True  # even for one device: the edge link is the bridge's port into the edge
        fastest = max(p.uplink_bps for p in prepared)
        self.link = Link(fastest, fastest, 1500, edge=cfg.edge_link)
        self.uplinks = {d: p.uplink_bps for d, p in self.devices}
        self.transport = Transport("tcp", 1500)
        self.recvs: list[subprocess.Popen[str]] = []
        self.model: FleetPrediction | None = None

    def config(self) -> dict[str, Any]:
        return {"groups": [asdict(p.spec) for p in self.prepared], "edge_link": self.cfg.edge_link,
                "stagger": self.cfg.stagger, "frames": self.cfg.frames, "latency": self.cfg.latency,
                "devices": len(self.devices)}  # fmt: skip

    def prepare(self) -> str:
        return "; ".join(f"{p.spec.count} x {p.source}" for p in self.prepared)

    def predict(self, topo: Topology, calibration: Calibration | None) -> Prediction:
        groups = [Group(p.spec.name, p.spec.count, p.sizes[0], p.spec.fps, p.uplink_bps, p.spec.model, p.split,
                        p.spec.res) for p in self.prepared]  # fmt: skip
        self.model = predict(groups, self.cfg.edge_link, transport=self.transport, stagger=self.cfg.stagger,
                             frames=self.cfg.frames, budget_s=self.cfg.latency,
                             bucket=self.link.burst)  # fmt: skip
        flows = []
        for k, (d, p) in enumerate(self.devices):
            # the tbf on this device's egress, with its own bucket (not the fastest device's)
            up = Link(self.uplinks[d], mtu=self.link.mtu, burst=self.link.burst)
            flows.append(FlowPrediction(
                name=d, proto="tcp", src_ip=topo.eps[d].ip, dst_ip=topo.eps[EDGE].ip, port=PORT_BASE + k, mtu=1500,
                ip_version=4, app_header=self.transport.app_header, rate_bps=self.uplinks[d],
                bucket_bytes=up.bucket, frames=predict_frames(p.sizes, self.transport, up),
            ))  # fmt: skip
        m = self.model
        model = {"offered_bps": m.offered_bps, "edge_rate": m.edge_rate, "utilisation": m.utilisation,
                 "saturated": m.saturated, "goodput_bps": m.goodput_bps, "jain": m.jain,
                 "edge_bucket_bytes": m.edge_bucket_bytes, "devices": [asdict(x) for x in m.devices]}  # fmt: skip
        return Prediction("fleet", {**self.config(), "model": model}, tuple(flows))

    def start(self, topo: Topology, work: Path) -> None:
        for k, (d, p) in enumerate(self.devices):
            (work / f"{d}.bin").write_bytes(p.data)
            (work / f"{d}.json").write_text(json.dumps(p.sizes))
            if getattr(topo, "remote", False):  # the edge is `pktchar serve` on the other host
                continue
            r = topo.popen(EDGE, endpoint_cmd("recv", "--port", str(PORT_BASE + k)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)  # fmt: skip
            self.recvs.append(r)
        for r in self.recvs:
            assert r.stdout is not None
            wait_line(r, r.stdout, "READY", 30)

    def traffic(self, topo: Topology, work: Path, outcome: Outcome, progress: Progress | None) -> None:
        start_at = time.monotonic_ns() + int(1.5e9)  # every sender starts its clock at this instant
        n = len(self.devices)
        procs = []
        for k, (d, p) in enumerate(self.devices):
            offset = int(k / n / p.spec.fps * 1e9) if self.cfg.stagger else 0
            port = topo.port if getattr(topo, "remote", False) else PORT_BASE + k  # type: ignore[attr-defined]
            cmd = endpoint_cmd("send", "--host", topo.eps[EDGE].ip, "--port", str(port), "--payload",
                               str(work / f"{d}.bin"), "--sizes", str(work / f"{d}.json"), "--fps", str(p.spec.fps),
                               "--start-at", str(start_at + offset), "--split", str(k))  # fmt: skip
            procs.append(topo.popen(d, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        flows: dict[str, list[FrameTiming]] = {d: [] for d, _ in self.devices}
        remote = bool(getattr(topo, "remote", False))
        errors: list[str] = []
        total = n * self.cfg.frames
        lock = threading.Lock()
        count = [0]

        def read(d: str, proc: subprocess.Popen[str]) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                x = json.loads(line)
                if "error" in x:
                    errors.append(f"{d}: {x['error']}")
                    return
                f = FrameTiming.from_dict(x)
                if remote:  # the edge's clock is another machine's: time each frame at this host
                    f = FrameTiming(f.id, f.len, f.send_ns, f.answer_ns or f.done_ns, f.answer_ns or f.done_ns,
                                    f.answer_ns)  # fmt: skip
                flows[d].append(f)
                with lock:
                    count[0] += 1
                    if progress:
                        progress(count[0], total)

        threads = [
            threading.Thread(target=read, args=(d, pr), daemon=True)
            for (d, _), pr in zip(self.devices, procs, strict=True)
        ]
        for t in threads:
            t.start()
        longest = max(self.cfg.frames / p.spec.fps for p in self.prepared)
        wire = sum(sum(p.sizes) * 8 for _, p in self.devices) / self.cfg.edge_link
        deadline = time.monotonic() + 60 + 2 * longest + 3 * wire
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        for pr in procs:
            wait_done(pr, 10)
        if any(t.is_alive() for t in threads):
            errors.append("the fleet did not finish in time")
        outcome.error = errors[0] if errors else None
        outcome.details = FleetFlows(flows, start_at)

    def finish(self, topo: Topology) -> None:
        for r in self.recvs:
            wait_done(r, 5)


# ----------------------------------------------------------------------------------------------
# measured against predicted


@dataclass
class FleetFlows:
    """What the fleet's senders timed: each device's frames, and the CLOCK_MONOTONIC instant every sender
    started its clock at (the result file's ``extra``)."""

    flows: dict[str, list[FrameTiming]]
    start_at_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "flows": {d: [f.to_dict() for f in fr] for d, fr in self.flows.items()},
            "start_at_ns": self.start_at_ns,
        }


@dataclass
class DeviceMeasured:
    device: str
    frames: int
    goodput_bps: float | None
    latency_mean_s: float | None
    latency_p50_s: float | None
    latency_p99_s: float | None
    late_fraction: float | None
    wire_bytes: int | None
    wire_bytes_predicted: int


@dataclass
class FleetRun:
    devices: int
    predicted: FleetPrediction
    measured: list[DeviceMeasured]
    result: Result
    aggregate_goodput_bps: float | None = None
    jain: float | None = None
    payload_offered_bps: float = 0.0
    notes: list[str] = field(default_factory=list)

    def measures(self, k: int) -> DeviceMeasures:
        """Device ``k``, measured against the model: goodput, latency (mean, p50, p99), lateness, wire bytes."""
        p, m = self.predicted.devices[k], self.measured[k]
        return DeviceMeasures(
            Measure("goodput", p.goodput_bps, m.goodput_bps, "bit/s"),
            Measure("latency, mean", p.latency_mean_s, m.latency_mean_s, "s"),
            Measure("latency, p50", p.latency_p50_s, m.latency_p50_s, "s"),
            Measure("latency, p99", p.latency_p99_s, m.latency_p99_s, "s"),
            Measure("frames later than the budget", p.late_fraction, m.late_fraction),
            Measure("wire bytes", m.wire_bytes_predicted, m.wire_bytes, "B"),
        )

    def fleet_measures(self) -> FleetMeasures:
        """The fleet as a whole, measured against the model: aggregate goodput, the worst device's p99 latency
        and late share (a device that measured none left out)."""
        p = self.predicted
        p99 = [m.latency_p99_s for m in self.measured if m.latency_p99_s is not None]
        late = [m.late_fraction for m in self.measured if m.late_fraction is not None]
        worst = max(d.latency_p99_s for d in p.devices), max(d.late_fraction for d in p.devices)
        return FleetMeasures(
            Measure("aggregate goodput", p.goodput_bps, self.aggregate_goodput_bps, "bit/s"),
            Measure("latency, p99, worst device", worst[0], max(p99, default=None), "s"),
            Measure("frames later than the budget, worst device", worst[1], max(late, default=None)),
        )

    def sweep_point(self) -> SweepPoint:
        """This fleet size as the numbers :func:`pktchar.core.fleet_model.sweep_summary` reads."""
        from ..core.fleet_model import SweepPoint

        p, late = self.predicted, self.fleet_measures().late
        return SweepPoint(self.devices, p.edge_rate, p.offered_bps, self.payload_offered_bps,
                          self.aggregate_goodput_bps, late.predicted, late.measured)  # fmt: skip

    def demands(self) -> list[FlowDemand]:
        """Each group as a :class:`pktchar.core.fleet_model.FlowDemand`: its first device's payload and uplink."""
        from ..core.fleet_model import FlowDemand

        flows = list(self.result.prediction.flows)
        out, k = [], 0
        for g in self.result.config["groups"]:
            f = flows[k]
            out.append(FlowDemand(f"{g['name']}: {g['count']} x {g['model']} {g['split']}", int(g["count"]),
                                  f.frames[0].payload, g["fps"], float(f.rate_bps)))  # fmt: skip
            k += int(g["count"])
        return out

    def requirements(
        self, radio: str | None = None, direction: str = "ul", reliability: float | None = None
    ) -> list[Requirements]:
        """The QoS requirements of each group's device flow over its own uplink (or ``radio``), then of the
        aggregate into the edge link: :func:`pktchar.core.fleet_model.fleet_requirements`."""
        from ..core.fleet_model import fleet_requirements

        return fleet_requirements(self.demands(), self.predicted.edge_rate, latency=self.result.config.get("latency"),
                                  radio=radio, direction=direction, reliability=reliability)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        p = self.predicted
        return {
            "devices": self.devices,
            "predicted": {"offered_bps": p.offered_bps, "edge_rate": p.edge_rate, "utilisation": p.utilisation,
                          "saturated": p.saturated, "goodput_bps": p.goodput_bps, "jain": p.jain,
                          "edge_bucket_bytes": p.edge_bucket_bytes, "devices": [asdict(x) for x in p.devices]},
            "measured": {"goodput_bps": self.aggregate_goodput_bps, "jain": self.jain,
                         "devices": [asdict(x) for x in self.measured]},
            "files": {"pcap": str(self.result.artifacts.pcap), "result": str(self.result.artifacts.result)},
            "error": self.result.error,
            "notes": self.notes + self.result.notes,
            "measures": {"fleet": [m.to_dict() for m in self.fleet_measures()],
                         "devices": [[m.to_dict() for m in self.measures(k)] for k in range(len(self.measured))]},
        }  # fmt: skip


class DeviceMeasures(NamedTuple):
    """A device of a fleet (:meth:`FleetRun.measures`), measured against the model, by name."""

    goodput: Measure
    latency_mean: Measure
    latency_p50: Measure
    latency_p99: Measure
    late: Measure  # the share of frames later than the budget
    wire_bytes: Measure


class FleetMeasures(NamedTuple):
    """The fleet as a whole (:meth:`FleetRun.fleet_measures`), measured against the model, by name."""

    goodput: Measure  # aggregate
    p99: Measure  # the worst device's p99 latency
    late: Measure  # the worst device's late share


def summarise_sweep(runs: list[FleetRun]) -> SweepSummary:
    """Where a sweep's edge link saturates (predicted: :func:`pktchar.core.fleet_model.saturation_n` of its one
    group's payload and frame rate) and where a frame first misses its budget, predicted against measured."""
    from ..core.fleet_model import saturation_n, sweep_summary

    first = runs[0]
    fps = first.result.config["groups"][0]["fps"]
    sat = saturation_n(first.result.prediction.flows[0].frames[0].payload, fps, first.predicted.edge_rate)
    return sweep_summary([r.sweep_point() for r in runs], sat)


def analyse(sc: FleetScenario, res: Result) -> FleetRun:
    """Each device's frames (latency, lateness, goodput; wire bytes from the capture) against the model."""
    assert sc.model is not None
    got = res.details if isinstance(res.details, FleetFlows) else FleetFlows({}, 0)
    flows, start = got.flows, got.start_at_ns
    n = len(sc.devices)
    measured = [_device(sc, res, k, flows.get(d, []), start) for k, (d, _) in enumerate(sc.devices)]
    gps = [m.goodput_bps for m in measured if m.goodput_bps is not None]
    offered = sum(p.sizes[0] * 8 * p.spec.fps for _, p in sc.devices)
    done = [[x.done_ns / 1e9 for x in flows.get(d, [])] for d, _ in sc.devices]
    agg = aggregate_goodput(done, [p.sizes[0] for _, p in sc.devices])  # as the model counts it
    return FleetRun(n, sc.model, measured, res, agg, jain(gps) if gps else None, offered)


def _wire_bytes(sc: FleetScenario, res: Result, d: str, fr: list[FrameTiming]) -> int | None:
    """Device ``d``'s Ethernet bytes in the capture for the frames it sent (None between real hosts, where
    every device has the one address and the flows are not apart, or without a capture)."""
    from .compare import compare

    if not fr or res.capture is None or sc.cfg.to:
        return None
    try:
        c = compare(res.artifacts.pcap, res.prediction.flow(d).first(len(fr)), fr)
    except PktcharError as e:
        res.notes.append(f"{d}: compare failed: {e}")
        return None
    return int(c.row("wire_bytes").measured)


def _device(sc: FleetScenario, res: Result, k: int, fr: list[FrameTiming], start: int) -> DeviceMeasured:
    """Device ``k``'s frames from the second third on (past the start-up): latency, the share later than
    its budget after its scheduled instant, and its goodput over the whole run."""
    d, p = sc.devices[k]
    fp = res.prediction.flow(d)
    wire = _wire_bytes(sc, res, d, fr)
    offset = int(k / len(sc.devices) / p.spec.fps * 1e9) if sc.cfg.stagger else 0
    budget = sc.cfg.latency if sc.cfg.latency is not None else 1 / p.spec.fps
    k0 = len(fr) // 3
    lat = [f.transfer_s for f in fr][k0:]
    late = [(f.done_ns - (start + offset + f.id * 1e9 / p.spec.fps)) / 1e9 > budget for f in fr][k0:]
    gp = (p.sizes[0] * 8 * (len(fr) - 1) / ((fr[-1].done_ns - fr[0].done_ns) / 1e9)
          if len(fr) > 1 and fr[-1].done_ns > fr[0].done_ns else None)  # fmt: skip
    return DeviceMeasured(
        device=d, frames=len(fr), goodput_bps=gp,
        latency_mean_s=sum(lat) / len(lat) if lat else None,
        latency_p50_s=percentile(lat, 50) if lat else None, latency_p99_s=percentile(lat, 99) if lat else None,
        late_fraction=sum(late) / len(late) if late else None, wire_bytes=wire,
        wire_bytes_predicted=sum(f.frame_bytes for f in fp.frames[: len(fr)]),
    )  # fmt: skip


def prepare(cfg: FleetConfig) -> list[Prepared]:
    from ..core.units import parse_rate
    from .replay import ReplayConfig, payloads

    out = []
    for g in cfg.groups:
        rc = ReplayConfig(model=g.model, split=g.split, res=g.res, dtype=g.dtype, compression=g.compression,
                          frames=cfg.frames)  # fmt: skip
        try:
            sizes, data, source, prof = payloads(rc)
            split = prof.split(g.split).after
        except PktcharError as e:
            if not g.where:
                raise
            raise PktcharError(f"{g.where} (group {g.name}): {e}") from e
        out.append(Prepared(g, sizes, data, source, split, parse_rate(g.uplink)))
    return out


def fleet(
    cfg: FleetConfig, progress: Progress | None = None, prepared: list[Prepared] | None = None
) -> FleetRun:
    """Run one fleet (root; with ``cfg.to``, root only to capture)."""
    from .netns import require_root

    check(cfg)
    if not cfg.to or cfg.capture_iface:
        require_root()
    prepared = prepared or prepare(cfg)
    sc = FleetScenario(cfg, prepared)
    pcap = Path(cfg.pcap) if cfg.pcap else default_folder() / f"fleet-{cfg.devices}.pcap"
    hosts = None
    if cfg.to:
        from .hosts import Hosts, check_serving
        from .replay import parse_hostport

        host, port = parse_hostport(cfg.to)
        check_serving(host, port)
        hosts = Hosts(host, port, cfg.capture_iface, sc.link, tuple(d for d, _ in sc.devices))
    res = run(sc, pcap, calibrate_link=False, progress=progress, hosts=hosts)
    if cfg.to:
        res.notes.append(
            "between real hosts: no shaping and no namespaces (the model's rates are the uplink and edge "
            "link rates given); frames are timed from their send to the edge's answer back at this host"
            + (
                ""
                if cfg.capture_iface
                else "; no capture (a capture needs a capture interface, and root): application timings only"
            )
        )
        res.save()
    return analyse(sc, res)


def sweep(cfg: FleetConfig, upto: int, progress: Progress | None = None) -> list[FleetRun]:
    """The fleet at 1..``upto`` devices of its (single) group, each on a fresh topology."""
    if len(cfg.groups) != 1:
        raise PktcharError(
            "`sweep` grows one group of devices: give one model and split, not a mixed scenario"
        )
    if upto > MAX_DEVICES:
        raise PktcharError(f"`sweep` 1..{upto} is more devices than this machine runs ({MAX_DEVICES})")
    from .netns import require_root

    if not cfg.to or cfg.capture_iface:
        require_root()
    base = Path(cfg.pcap) if cfg.pcap else default_folder() / "fleet.pcap"
    prepared = prepare(FleetConfig([GroupSpec(**{**asdict(cfg.groups[0]), "count": 1})], cfg.edge_link,
                                   frames=cfg.frames))  # fmt: skip
    runs = []
    for n in range(1, upto + 1):
        g = GroupSpec(**{**asdict(cfg.groups[0]), "count": n})
        c = FleetConfig([g], cfg.edge_link, cfg.stagger, cfg.frames, cfg.latency,
                        base.with_name(f"{base.stem}-n{n}{base.suffix or '.pcap'}"), to=cfg.to,
                        capture_iface=cfg.capture_iface)  # fmt: skip
        p = [Prepared(g, prepared[0].sizes, prepared[0].data, prepared[0].source, prepared[0].split,
                      prepared[0].uplink_bps)]  # fmt: skip
        phase(f"fleet: {n} of {upto} device{'s' if n > 1 else ''}")
        runs.append(fleet(c, progress, p))
        if runs[-1].result.error:
            break
    return runs
