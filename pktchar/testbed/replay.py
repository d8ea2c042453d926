"""Replay: a split's real coded payloads sent as frames from a device to an edge over a shaped link,
each answered, captured and compared with the prediction. One :class:`~pktchar.testbed.runner.Scenario`
of the scenario core (which owns the topology, calibration, capture, files and compare).

    payloads (real coded activations, a real forward pass) ─► scenario core ─► Result
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import PktcharError
from ..core.packets import Transport
from ..model.codec import Coding, Measured, encode, quantize
from .capture import default_folder, wait_line
from .netns import Link, Topology, require_root
from .runner import Progress, endpoint_cmd, predict_frames, read_frames, run, wait_done
from .schema import (
    AppTiming,
    Calibration,
    FlowPrediction,
    FrameTiming,
    Outcome,
    Prediction,
    Result,
)

DEVICE, EDGE = "dev", "edge"
MAX_FRAME = 512_000_000
CAPTURES = ("tcpdump",)


@dataclass
class ReplayConfig:
    """Everything a replay needs; checked once by :class:`Replay` before anything is built."""

    model: str
    split: str
    res: str = "224"
    dtype: str = "fp32"
    compression: float | None = None
    coder: str | None = None
    measure_res: str = "224"
    weights: str | None = None
    images: str | None = None
    link: float = 80e6
    downlink: float | None = None
    delay: float | None = None
    loss: float | None = None
    mtu: int = 1500
    proto: str = "tcp"
    fps: float | None = None
    frames: int = 20
    pcap: Path | None = None
    port: int = 5201
    calibrate: bool = True
    capture: str = "tcpdump"  # capture backend: tcpdump | scapy (pktchar.testbed.capture)
    snaplen: int | None = None  # bytes kept of each packet (None: whole packets)
    to: str | None = None  # HOST:PORT of `pktchar serve` on another machine: no namespaces, no shaping
    capture_iface: str | None = None  # with ``to``: capture on this interface of this host (root)


# ----------------------------------------------------------------------------------------------
# payloads


def payloads(cfg: ReplayConfig, measured: Measured | None = None) -> tuple[list[int], bytes, str, Any]:
    """Frame sizes, real coded bytes to send, a description, and the target-resolution profile.

    Real activations of the split's cut set are computed at the measure resolution (a real forward
    pass on real images) and coded; at that resolution the frames are exactly those bytes, at any
    other the frames are the exact coded size at the target, filled with the real coded bytes."""
    import torch

    from ..model.codec import real_model_and_images
    from ..model.profiler import cut_sets, profile, trace_values

    p = profile(cfg.model, cfg.res, dtype=cfg.dtype)
    split = p.split(cfg.split)
    coding = Coding(cfg.dtype, compression=cfg.compression, measured=measured)
    target = coding.split_bytes(split)
    net, batch, mres, img_desc, weights = real_model_and_images(
        cfg.model, cfg.measure_res, weights=cfg.weights, images=cfg.images, limit=min(cfg.frames, 8)
    )
    real: list[bytes] = []
    for i in range(batch.shape[0]):
        kept: dict[int, Any] = {}

        def on_value(vid: int, t: Any) -> None:
            kept[vid] = t.detach().clone()  # noqa: B023 - used within this iteration

        with torch.no_grad():
            tracer = trace_values(net, batch[i : i + 1], on_value)
        cut = dict(cut_sets(tracer))[split.after]
        blob = b""
        for vid in cut:
            t = kept[vid]
            if cfg.coder:
                blob += encode(t, cfg.dtype, cfg.coder)
            else:
                blob += quantize(t, cfg.dtype) if t.is_floating_point() else t.numpy().tobytes()
        if cfg.compression is not None:
            blob = blob[: math.ceil(len(blob) * cfg.compression)]
        real.append(blob)
        kept.clear()
    same_res = (mres.height, mres.width) == (p.input_shape[2], p.input_shape[3])
    if same_res:
        sizes = [len(real[i % len(real)]) for i in range(cfg.frames)]
        data = b"".join(real[i % len(real)] for i in range(cfg.frames))
        src = (
            f"real coded activations of {split.after} at {mres.label} ({len(real)} images: {img_desc}; "
            f"weights {weights}; coding {coding.describe()})"
        )
    else:
        sizes = [target] * cfg.frames
        data = b"".join(real)
        src = (
            f"the exact coded size at {cfg.res} ({target:,} B a frame, {coding.describe()}), filled with real "
            f"coded activations of {split.after} at {mres.label} ({img_desc}; weights {weights})"
        )
    return sizes, data, src, p


class Replay:
    """The replay scenario: ``dev`` sends frames to ``edge``, which answers each; captured at the edge."""

    name = "replay"
    endpoints = [DEVICE, EDGE]
    capture_on = EDGE
    calibration = (DEVICE, EDGE)

    def __init__(self, cfg: ReplayConfig, measured: Measured | None = None) -> None:
        if cfg.frames < 1:
            raise PktcharError(f"`frames` must be at least 1, got {cfg.frames}")
        if not 1 <= cfg.port <= 65534 or cfg.port == 5200:
            raise PktcharError(f"`port` must be 1..65534 and not 5200 (the calibration port), got {cfg.port}")
        if cfg.fps is not None and cfg.fps <= 0:
            raise PktcharError(f"`fps` must be positive, got {cfg.fps:g}")
        self.link = Link(
            cfg.link, cfg.downlink, cfg.mtu, cfg.delay, cfg.loss
        )  # the one place links are checked
        self.transport = Transport(cfg.proto, cfg.mtu)  # and the MTU against the headers
        self.cfg, self.measured = cfg, measured
        self.sizes: list[int] = []
        self.data = b""
        self.split_name = cfg.split
        self.recv: subprocess.Popen[str] | None = None

    def config(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.cfg).items()}

    def default_pcap(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{self.cfg.model}-{self.cfg.res}-{self.cfg.split}-{stamp}.pcap"
        return default_folder() / name.replace("/", "_").replace(":", "_")

    def prepare(self) -> str:
        cfg = self.cfg
        if cfg.coder and self.measured is None:
            from ..model.codec import measure

            self.measured = measure(
                cfg.model,
                cfg.coder,
                dtype=cfg.dtype,
                measure_res=cfg.measure_res,
                weights=cfg.weights,
                images=Path(cfg.images) if cfg.images else None,
            )
        self.sizes, self.data, source, prof = payloads(cfg, self.measured)
        if max(self.sizes) > MAX_FRAME:
            raise PktcharError(
                f"a {max(self.sizes):,} B frame is more than a replay sends ({MAX_FRAME:,} B): choose a later "
                "split, a smaller `res`, `compression` or `dtype` int8"
            )
        self.split_name = prof.split(cfg.split).after
        return source

    def predict(self, topo: Topology, calibration: Calibration | None) -> Prediction:
        cal = calibration.link_rate_measured_bps if calibration else None
        flow = FlowPrediction(
            name="device -> edge",
            proto=self.cfg.proto,
            src_ip=topo.eps[DEVICE].ip,
            dst_ip=topo.eps[EDGE].ip,
            port=self.cfg.port,
            mtu=self.cfg.mtu,
            ip_version=4,
            app_header=self.transport.app_header,
            rate_bps=self.link.uplink,
            bucket_bytes=self.link.bucket,
            frames=predict_frames(self.sizes, self.transport, self.link, cal),
            calibrated_rate_bps=cal,
        )
        notes: tuple[str, ...] = ()
        if getattr(topo, "remote", False):
            at = (f"the round trip of an empty frame ({calibration.rtt_s or 0:.6f} s) + (payload + "
                  f"{self.transport.app_header} B) x 8 / the goodput the calibration carried over the path "
                  f"({calibration.goodput_measured_bps:.0f} bit/s)" if calibration
                  else "rate_bps (the link rate given; no calibration)")  # fmt: skip
            notes = (
                "between real hosts nothing shapes the path: rate_bps is the link rate given, not enforced; "
                f"each frame's time (send -> the edge's answer back at the sender) is judged at {at}",
            )
        return Prediction("replay", {**self.config(), "split": self.split_name}, (flow,), notes=notes)

    def start(self, topo: Topology, work: Path) -> None:
        (work / "payload.bin").write_bytes(self.data)
        (work / "sizes.json").write_text(str(self.sizes))
        if getattr(topo, "remote", False):  # the edge is `pktchar serve` on the other host
            return
        self.recv = topo.popen(
            EDGE,
            endpoint_cmd("recv", "--port", str(self.cfg.port), "--proto", self.cfg.proto),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.recv.stdout is not None
        wait_line(self.recv, self.recv.stdout, "READY", 30)

    def traffic(self, topo: Topology, work: Path, outcome: Outcome, progress: Progress | None) -> None:
        cfg = self.cfg
        send = topo.popen(
            DEVICE,
            endpoint_cmd(
                "send",
                "--host",
                topo.eps[EDGE].ip,
                "--port",
                str(cfg.port),
                "--proto",
                cfg.proto,
                "--payload",
                str(work / "payload.bin"),
                "--sizes",
                str(work / "sizes.json"),
                "--mtu",
                str(cfg.mtu),
                "--split",
                "1",
                *(["--fps", str(cfg.fps)] if cfg.fps else []),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wire = sum(self.sizes) * 8 / self.link.uplink
        budget = 60 + wire * 3 + (cfg.frames / cfg.fps if cfg.fps else 0)
        read_frames(send, cfg.frames, budget, outcome, progress)
        if getattr(topo, "remote", False):  # another machine's clock: time each frame at this host
            outcome.frames = [
                FrameTiming(
                    f.id, f.len, f.send_ns, f.answer_ns or f.done_ns, f.answer_ns or f.done_ns, f.answer_ns
                )
                for f in outcome.frames
            ]

    def finish(self, topo: Topology) -> None:
        if self.recv is not None:
            wait_done(self.recv, 5)


def replay(cfg: ReplayConfig, measured: Measured | None = None, progress: Progress | None = None) -> Result:
    """Run one replay (root). ``progress(done, total)`` is called as frames complete. With ``cfg.to`` it
    runs from this machine to ``pktchar serve`` on another (root only to capture)."""
    if cfg.to:
        return _replay_to(cfg, measured, progress)
    sc = Replay(cfg, measured)
    require_root()
    return run(
        sc,
        Path(cfg.pcap) if cfg.pcap else sc.default_pcap(),
        calibrate_link=cfg.calibrate,
        capture=cfg.capture,
        snaplen=cfg.snaplen,
        progress=progress,
    )


def parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise PktcharError(f"`to` wants HOST:PORT, e.g. 192.0.2.10:5201, got {text!r}")
    return host.strip("[]"), int(port)


def _replay_to(cfg: ReplayConfig, measured: Measured | None, progress: Progress | None) -> Result:
    from .hosts import Hosts, check_serving
    from .runner import Interrupted

    host, port = parse_hostport(cfg.to or "")
    cfg.port = port
    sc = Replay(cfg, measured)
    # no tbf between real hosts: a frame's first packet is on its way at once, the rest at the rate given
    sc.link = Link(cfg.link, cfg.downlink, cfg.mtu, burst=cfg.mtu + 14)
    if cfg.capture_iface:
        require_root()
        if not Path(f"/sys/class/net/{cfg.capture_iface}").exists():
            raise PktcharError(f"`capture_iface` {cfg.capture_iface}: no such interface on this host")
    check_serving(host, port)
    hosts = Hosts(host, port, cfg.capture_iface, sc.link)
    pcap = Path(cfg.pcap) if cfg.pcap else sc.default_pcap()
    stale = not cfg.capture_iface and pcap.exists()  # a capture of this name from another run
    try:
        res = run(sc, pcap, calibrate_link=cfg.calibrate, capture=cfg.capture, snaplen=cfg.snaplen,
                  progress=progress, hosts=hosts)  # fmt: skip
    except Interrupted as e:  # the frames measured before Ctrl-C are judged too
        _judge_at_the_path(e.result, cfg, stale)
        raise
    _judge_at_the_path(res, cfg, stale)
    return res


def _judge_at_the_path(res: Result, cfg: ReplayConfig, stale: bool) -> None:
    """Between real hosts nothing enforces ``cfg.link``: time each frame at this host (send -> the edge's
    answer back here) against the rate the calibration measured on the path (``cfg.link`` without one)."""
    from ..core.units import human_rate

    flow = res.prediction.flow()
    res.application = AppTiming.of(res.frames, flow.app_header, cfg.link, res.calibration)
    res.notes.append(
        f"between real hosts nothing shapes the path: the link rate given ({human_rate(cfg.link)}) is only "
        "the prediction file's rate, not enforced; the edge's clock is another machine's, so a frame's time "
        "runs from its send to the edge's answer back at this host"
        + (
            ""
            if cfg.capture_iface
            else "; no capture (a capture needs a capture interface, and root): application timings only"
        )
    )
    if stale:
        res.notes.append(f"{res.artifacts.pcap} is from another run: this one made no capture")
    res.save()
