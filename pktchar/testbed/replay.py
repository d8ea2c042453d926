"""Replay a split's payloads as real traffic between namespaces, capture it, compare with the prediction.

payloads (real coded activations) ─► topology (device ─veth, tbf─► edge)
    ─► calibration transfer ─► tcpdump in the edge namespace ─► frames (device -> edge, answered)
    ─► pcap + prediction.json + app timings ─► compare
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..codec import Coding, Measured, encode, quantize
from ..errors import PktcharError
from ..packets import Transport, packetize
from .capture import Capture, CaptureStats, wait_line
from .compare import PREDICTION_KIND, Comparison, compare
from .netns import Link, TestbedError, Topology, require_root

DEVICE, EDGE = "dev", "edge"
MAX_FRAME = 512_000_000


@dataclass
class ReplayConfig:
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
    snaplen: int = 262144  # whole packets


@dataclass
class ReplayResult:
    config: dict[str, Any]
    payload_source: str
    prediction_path: Path
    pcap: Path
    calibration: dict[str, Any] | None
    capture: CaptureStats
    comparison: Comparison | None
    frames: list[dict[str, Any]]
    environment: dict[str, Any]
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "payload_source": self.payload_source,
            "prediction": str(self.prediction_path),
            "pcap": str(self.pcap),
            "calibration": self.calibration,
            "capture": {**self.capture.__dict__, "complete": self.capture.complete},
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "frames": self.frames,
            "environment": self.environment,
            "error": self.error,
            "notes": self.notes,
        }


# ----------------------------------------------------------------------------------------------
# payloads


def payloads(cfg: ReplayConfig, measured: Measured | None = None) -> tuple[list[int], bytes, str, Any]:
    """Frame sizes, real coded bytes to send, a description, and the target-resolution profile.

    Real activations of the split's cut set are computed at the measure resolution (a real forward
    pass on real images) and coded; at that resolution the frames are exactly those bytes, at any
    other the frames are the exact coded size at the target, filled with the real coded bytes."""
    import torch

    from ..codec import real_model_and_images
    from ..profiler import cut_sets, profile, trace_values

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


def prediction(cfg: ReplayConfig, sizes: list[int], topo: Topology, split_name: str) -> dict[str, Any]:
    t = Transport(cfg.proto, cfg.mtu)
    frames = []
    for i, s in enumerate(sizes):
        pk = packetize(s, t)
        frames.append(
            {
                "id": i,
                "payload": s,
                "packets": pk.count,
                "sizes": [list(x) for x in pk.sizes],
                "ip_bytes": pk.ip_bytes,
                "frame_bytes": pk.frame_bytes,
                "wire_bytes": pk.wire_bytes,
            }
        )
    return {
        "kind": PREDICTION_KIND,
        "version": 1,
        "model": cfg.model,
        "split": split_name,
        "res": cfg.res,
        "dtype": cfg.dtype,
        "proto": cfg.proto,
        "mtu": cfg.mtu,
        "ip_version": 4,
        "app_header": t.app_header,
        "port": cfg.port,
        "device_ip": topo.eps[DEVICE].ip,
        "edge_ip": topo.eps[EDGE].ip,
        "rate_bps": cfg.link,
        "burst_bytes": topo.link.bucket,
        "frames": frames,
    }


# ----------------------------------------------------------------------------------------------
# processes


def _python() -> list[str]:
    return [sys.executable, "-m", "pktchar.testbed.endpoint"]


def _environment(topo: Topology) -> dict[str, Any]:
    def version(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    import torch

    from .. import __version__

    return {
        "kernel": platform.release(),
        "netem": topo.netem,
        "qdisc": topo.settings.get("qdisc", {}),
        "offloads": topo.settings.get("offloads", {}),
        "tcp_slow_start_after_idle": 0,
        "tools": {
            "pktchar": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "tcpdump": version(["tcpdump", "--version"]),
            "iproute2": version(["ip", "-V"]),
            "ethtool": version(["ethtool", "--version"]),
        },
    }


def _calibrate(topo: Topology, cfg: ReplayConfig, workdir: Path) -> dict[str, Any]:
    """One bulk frame (a quarter second at the rate, 256 kB to 32 MB) timed at the edge."""
    size = int(min(32e6, max(256e3, cfg.link / 8 * 0.25)))
    (workdir / "calib.bin").write_bytes(os.urandom(min(size, 1 << 20)))
    (workdir / "calib.json").write_text(json.dumps([size]))
    proc = topo.popen(
        DEVICE,
        [
            *_python(),
            "send",
            "--host",
            topo.eps[EDGE].ip,
            "--port",
            str(cfg.port),
            "--proto",
            cfg.proto,
            "--payload",
            str(workdir / "calib.bin"),
            "--sizes",
            str(workdir / "calib.json"),
            "--mtu",
            str(cfg.mtu),
            "--calibration",
            "--split",
            "65535",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=60 + size * 8 / cfg.link * 4)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines or "error" in lines[-1]:
        detail = lines[-1].get("error") if lines else (err.strip() or f"exit {proc.returncode}")
        raise TestbedError(f"calibration transfer failed: {detail}")
    r = lines[-1]
    t = Transport(cfg.proto, cfg.mtu)
    pk = packetize(size, t)
    span = (r["done_ns"] - r["first_ns"]) / 1e9
    moved_frame_bytes = pk.frame_bytes - (t.mtu + 14)  # the span starts when the first packet is in
    app = size + t.app_header - t.max_chunk
    return {
        "bytes": size,
        "seconds": span,
        "link_rate_measured_bps": moved_frame_bytes * 8 / span,
        "goodput_measured_bps": app * 8 / span,
        "goodput_predicted_bps": app * 8 / (moved_frame_bytes * 8 / cfg.link),
        "link_rate_set_bps": cfg.link,
    }


def replay(
    cfg: ReplayConfig, measured: Measured | None = None, progress: Callable[[int, int], None] | None = None
) -> ReplayResult:
    """Run one replay. ``progress(done, total)`` is called as frames complete."""
    require_root()
    if cfg.frames < 1:
        raise PktcharError("--frames must be at least 1")
    if not 1 <= cfg.port <= 65534:
        raise PktcharError(f"--port must be 1..65534, got {cfg.port}")
    link = Link(cfg.link, cfg.downlink, cfg.mtu, cfg.delay, cfg.loss)
    Transport(cfg.proto, cfg.mtu)  # validates the MTU against the headers
    sizes, data, source, prof = payloads(cfg, measured)
    if max(sizes) > MAX_FRAME:
        raise PktcharError(
            f"a {max(sizes):,} B frame is more than a replay sends ({MAX_FRAME:,} B): choose a later split, "
            "a smaller --res, --compression or --dtype int8"
        )
    split_name = prof.split(cfg.split).after
    pcap = (
        cfg.pcap
        or Path("captures") / f"{cfg.model}-{cfg.res}-{split_name}-{time.strftime('%Y%m%d-%H%M%S')}.pcap"
    )
    pcap = Path(pcap)
    pcap.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pktchar-") as tmp, Topology([DEVICE, EDGE], link) as topo:
        work = Path(tmp)
        os.chmod(work, 0o755)
        pred = prediction(cfg, sizes, topo, split_name)
        pred_path = pcap.with_suffix(".prediction.json")
        pred_path.write_text(json.dumps(pred, indent=2))
        (work / "payload.bin").write_bytes(data)
        (work / "sizes.json").write_text(json.dumps(sizes))
        recv = topo.popen(
            EDGE,
            [*_python(), "recv", "--port", str(cfg.port), "--proto", cfg.proto],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert recv.stdout is not None
        wait_line(recv, recv.stdout, "READY", 30)
        calibration = _calibrate(topo, cfg, work) if cfg.calibrate else None
        cap = Capture(topo, EDGE, pcap, backend=cfg.capture, snaplen=cfg.snaplen)
        cap.start()
        send = topo.popen(
            DEVICE,
            [
                *_python(),
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
            ]
            + (["--fps", str(cfg.fps)] if cfg.fps else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert send.stdout is not None
        frames: list[dict[str, Any]] = []
        error = None
        budget = 60 + sum(f["frame_bytes"] for f in pred["frames"]) * 8 / cfg.link * 3
        budget += cfg.frames / cfg.fps if cfg.fps else 0
        deadline = time.monotonic() + budget
        for line in send.stdout:
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            if "error" in d:
                error = d["error"]
                break
            frames.append(d)
            if progress:
                progress(len(frames), cfg.frames)
            if time.monotonic() > deadline:
                error = f"replay did not finish within {budget:.0f} s"
                break
        try:
            send.wait(timeout=10)
        except subprocess.TimeoutExpired:
            send.kill()
        if error is None and send.returncode not in (0, None):
            err = send.stderr.read() if send.stderr else ""
            error = f"sender exited {send.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"
        try:
            recv.wait(timeout=5)
        except subprocess.TimeoutExpired:
            recv.terminate()
        stats = cap.stop()
        env = _environment(topo)
        env["qdisc_stats"] = topo.qdisc_stats()
    notes = []
    comparison = None
    if frames:
        if len(frames) < len(sizes):
            pred = {**pred, "frames": pred["frames"][: len(frames)]}
            notes.append(f"compared the {len(frames)} frames measured before the run stopped")
        try:
            comparison = compare(pcap, pred, frames)
        except PktcharError as e:
            notes.append(f"compare failed: {e}")
    cfg_d = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()}
    result = ReplayResult(
        cfg_d, source, pred_path, pcap, calibration, stats, comparison, frames, env, error, notes
    )
    pcap.with_suffix(".result.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result
