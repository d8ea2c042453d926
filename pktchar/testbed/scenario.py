"""The scenario core: one typed path from topology to compare that every live measurement runs on.

    Scenario.prepare()              heavy work before any namespace exists (real payloads, models)
      ─► Topology                   N namespaces, a shaped link per direction (netns.py)
      ─► calibrate()                one bulk TCP transfer: the link rate as it really is
      ─► Scenario.predict()         a typed Prediction, written beside the capture before a byte is sent
      ─► Capture.start()            libpcap in the capturing endpoint's namespace, completeness checked
      ─► Scenario.start()/traffic() the endpoints run the scenario's own traffic
      ─► Capture.stop() ─► compare() ─► Result, written beside the capture (also on Ctrl-C or a lost peer)

A new kind of traffic (model upload, training sync, a fleet of devices) is a new :class:`Scenario`:
its endpoints, link, prediction and traffic; the orchestration, capture, files and compare stay here.
Everything here is light (no torch): only a scenario's own ``prepare`` may load a model.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core.errors import PktcharError
from ..core.packets import Transport, packetize
from ..core.phases import phase
from .capture import Capture, CaptureStats, wait_line
from .netns import Link, TestbedError, Topology, require_root

PREDICTION_KIND = "pktchar-prediction"
RESULT_KIND = "pktchar-result"
SCHEMA_VERSION = 2
CALIBRATION_PORT = 5200
RTT_PROBES = 8  # empty frames a calibration between real hosts sends first: their median is the round trip
Progress = Callable[[int, int], None]


def endpoint_cmd(*args: str) -> list[str]:
    """The command line of a pktchar endpoint process (standard library only, no torch)."""
    return [sys.executable, "-m", "pktchar.testbed.endpoint", *args]


# ----------------------------------------------------------------------------------------------
# the files written beside a capture


@dataclass(frozen=True)
class Artifacts:
    """Every file a run writes, named in one place: the capture and what sits beside it. A scenario
    that captures on several endpoints gets one more capture for each after the first,
    ``<stem>-<endpoint>.pcap`` (``others``)."""

    pcap: Path
    others: tuple[str, ...] = ()  # endpoints captured besides the first, each in its own pcap
    capturing: bool = True  # False: no capture is made (real hosts without one); ``pcap`` only names the stem

    def capture(self, ep: str | None = None) -> Path:
        """The capture of endpoint ``ep`` (the first capture for None or the first endpoint)."""
        if ep is None or ep not in self.others:
            return self.pcap
        return self.pcap.with_name(f"{self.pcap.stem}-{ep}{self.pcap.suffix or '.pcap'}")

    @property
    def prediction(self) -> Path:
        return self.pcap.with_suffix(".prediction.json")

    @property
    def result(self) -> Path:
        return self.pcap.with_suffix(".result.json")

    def captures(self) -> list[Path]:
        """The capture files this run makes (none when it captures nothing)."""
        return [self.pcap, *(self.capture(e) for e in self.others)] if self.capturing else []

    def all(self) -> list[Path]:
        return [*self.captures(), self.prediction, self.result]

    def written(self) -> list[Path]:
        """The files of this run that exist (a capture it did not make is not listed, even if a file of
        that name is there from another run)."""
        return [p for p in self.all() if p.exists()]


# ----------------------------------------------------------------------------------------------
# prediction


@dataclass(frozen=True)
class FramePrediction:
    """One application frame: its payload, the packets it becomes, and how long it takes."""

    id: int
    payload: int
    packets: int
    sizes: tuple[tuple[int, int], ...]  # (IP packet length, how many)
    ip_bytes: int
    frame_bytes: int  # Ethernet frames without FCS: what libpcap captures and tbf counts
    wire_bytes: int
    transfer_s: float  # send -> last byte at the receiver, at the nominal (configured) rate
    transfer_s_calibrated: float | None = None  # the same at the calibrated rate

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sizes"] = [list(s) for s in self.sizes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FramePrediction:
        return cls(
            id=int(d["id"]),
            payload=int(d["payload"]),
            packets=int(d["packets"]),
            sizes=tuple((int(a), int(b)) for a, b in d["sizes"]),
            ip_bytes=int(d.get("ip_bytes", 0)),
            frame_bytes=int(d["frame_bytes"]),
            wire_bytes=int(d.get("wire_bytes", 0)),
            transfer_s=float(d.get("transfer_s", 0.0)),
            transfer_s_calibrated=d.get("transfer_s_calibrated"),
        )


@dataclass(frozen=True)
class FlowPrediction:
    """One direction of application traffic between two endpoints, frame by frame."""

    name: str
    proto: str
    src_ip: str
    dst_ip: str
    port: int
    mtu: int
    ip_version: int
    app_header: int
    rate_bps: float  # the link rate as configured (tbf)
    bucket_bytes: int  # tbf's bucket
    frames: tuple[FramePrediction, ...]
    calibrated_rate_bps: float | None = None  # the link rate a calibration transfer measured

    @property
    def transport(self) -> Transport:
        return Transport(self.proto, self.mtu, self.ip_version, app_header=self.app_header)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frames"] = [f.to_dict() for f in self.frames]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowPrediction:
        return cls(
            name=str(d.get("name", "flow")),
            proto=str(d["proto"]),
            src_ip=str(d["src_ip"]),
            dst_ip=str(d["dst_ip"]),
            port=int(d["port"]),
            mtu=int(d["mtu"]),
            ip_version=int(d.get("ip_version", 4)),
            app_header=int(d.get("app_header", 24)),
            rate_bps=float(d["rate_bps"]),
            bucket_bytes=int(d.get("bucket_bytes", 0)),
            frames=tuple(FramePrediction.from_dict(f) for f in d["frames"]),
            calibrated_rate_bps=d.get("calibrated_rate_bps"),
        )

    def compare_input(self) -> dict[str, Any]:
        """The flat form :func:`pktchar.testbed.compare.compare` reads."""
        return {
            "kind": PREDICTION_KIND,
            "proto": self.proto,
            "port": self.port,
            "device_ip": self.src_ip,
            "edge_ip": self.dst_ip,
            "mtu": self.mtu,
            "ip_version": self.ip_version,
            "app_header": self.app_header,
            "rate_bps": self.rate_bps,
            "calibrated_rate_bps": self.calibrated_rate_bps,
            "burst_bytes": self.bucket_bytes,
            "frames": [f.to_dict() for f in self.frames],
        }


@dataclass(frozen=True)
class Prediction:
    """What a scenario will put on the wire, worked out before a byte is sent (versioned JSON)."""

    scenario: str
    config: dict[str, Any]
    flows: tuple[FlowPrediction, ...]
    made_at: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    notes: tuple[str, ...] = ()

    def flow(self, name: str | None = None) -> FlowPrediction:
        if name is None:
            return self.flows[0]
        for f in self.flows:
            if f.name == name:
                return f
        raise PktcharError(
            f"the prediction has no flow {name!r} (flows: {', '.join(f.name for f in self.flows)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PREDICTION_KIND,
            "version": SCHEMA_VERSION,
            "scenario": self.scenario,
            "made_at": self.made_at,
            "config": self.config,
            "flows": [f.to_dict() for f in self.flows],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "prediction") -> Prediction:
        if d.get("kind") != PREDICTION_KIND:
            raise PktcharError(f"{source} is not a pktchar prediction (written by `pktchar replay`)")
        version = int(d.get("version", 1))
        try:
            if version == 1:  # the flat form replay wrote before the scenario core: one flow
                flow = {
                    **d,
                    "name": "device -> edge",
                    "src_ip": d["device_ip"],
                    "dst_ip": d["edge_ip"],
                    "bucket_bytes": d.get("burst_bytes", 0),
                }
                cfg = {k: d[k] for k in ("model", "split", "res", "dtype") if k in d}
                return cls(str(d.get("scenario", "replay")), cfg, (FlowPrediction.from_dict(flow),), "")
            if version > SCHEMA_VERSION:
                raise PktcharError(
                    f"{source} is prediction version {version}; this pktchar reads up to "
                    f"{SCHEMA_VERSION}: upgrade pktchar"
                )
            return cls(
                scenario=str(d["scenario"]),
                config=dict(d.get("config", {})),
                flows=tuple(FlowPrediction.from_dict(f) for f in d["flows"]),
                made_at=str(d.get("made_at", "")),
                notes=tuple(d.get("notes", ())),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PktcharError(f"{source} is not a valid pktchar prediction: {type(e).__name__} {e}") from e

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Prediction:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError as e:
            raise PktcharError(f"prediction {p} does not exist") from e
        except json.JSONDecodeError as e:
            raise PktcharError(f"prediction {p} is not JSON: {e.msg} at line {e.lineno}") from e
        if not isinstance(d, dict):
            raise PktcharError(f"{p} is not a pktchar prediction (written by `pktchar replay`)")
        return cls.from_dict(d, str(p))


def predict_frames(
    payloads: list[int], transport: Transport, link: Link, calibrated_bps: float | None = None
) -> tuple[FramePrediction, ...]:
    """Packets and transfer times of application frames of ``payloads`` bytes over ``link``'s uplink: each
    frame handed to the socket at once, starting on a full tbf bucket (``shaping.transfer_time``)."""
    from ..core.shaping import frame_lengths, transfer_time

    out = []
    for i, s in enumerate(payloads):
        pk = packetize(s, transport)
        lengths = frame_lengths(pk.sizes)
        out.append(
            FramePrediction(
                id=i,
                payload=s,
                packets=pk.count,
                sizes=pk.sizes,
                ip_bytes=pk.ip_bytes,
                frame_bytes=pk.frame_bytes,
                wire_bytes=pk.wire_bytes,
                transfer_s=transfer_time(lengths, link.uplink, link.bucket),
                transfer_s_calibrated=transfer_time(lengths, calibrated_bps, link.bucket)
                if calibrated_bps
                else None,
            )
        )
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True)
class Calibration:
    """One bulk TCP transfer over the shaped uplink, timed at the receiver (between real hosts: at the
    sender, to the edge's answer, less the round trip of an empty frame)."""

    bytes: int
    seconds: float
    link_rate_set_bps: float
    link_rate_measured_bps: float  # Ethernet frame bytes after the first packet / the time they took
    goodput_measured_bps: float
    goodput_predicted_bps: float
    # between real hosts: the median round trip of an empty frame (send -> answer back), timed before the
    # bulk frame and taken out of its time (``seconds`` keeps it); None between namespaces
    rtt_s: float | None = None

    @property
    def goodput_error(self) -> float:
        return self.goodput_measured_bps / self.goodput_predicted_bps - 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.rtt_s is None:
            del d["rtt_s"]
        return d


@dataclass(frozen=True)
class FrameTiming:
    """Application timestamps of one frame (CLOCK_MONOTONIC ns, shared by every namespace)."""

    id: int
    len: int
    send_ns: int
    first_ns: int
    done_ns: int
    answer_ns: int | None = None

    @property
    def transfer_s(self) -> float:
        return (self.done_ns - self.send_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameTiming:
        return cls(
            int(d["id"]),
            int(d["len"]),
            int(d["send_ns"]),
            int(d["first_ns"]),
            int(d["done_ns"]),
            d.get("answer_ns"),
        )


@dataclass(frozen=True)
class AppFrame:
    """One frame timed at the sender: from its send call to the edge's answer back here, against the round
    trip and the time its bytes (payload and frame header) take at the path rate."""

    id: int
    payload: int
    measured_s: float
    predicted_s: float

    @property
    def error(self) -> float:
        return self.measured_s / self.predicted_s - 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error": self.error}


@dataclass(frozen=True)
class AppTiming:
    """Frames between real hosts, where nothing shapes the path, judged at the application: each frame's
    time from its send call to the edge's answer back at the sender (the edge's clock is another
    machine's) against ``rtt_s + (payload + app_header) x 8 / rate_bps``. With a calibration (``basis``
    "calibrated") ``rate_bps`` is the goodput its bulk frame carried over the path and ``rtt_s`` the round
    trip of its empty frames; without one (``basis`` "link") ``rate_bps`` is ``--link`` as given, a rate
    nothing enforces, and ``rtt_s`` is 0."""

    basis: str  # "calibrated" | "link"
    rate_bps: float
    rtt_s: float  # the round trip of an empty frame, measured in calibration (0 without one)
    link_bps: float  # --link: what the user said; not enforced between real hosts
    app_header: int
    frames: tuple[AppFrame, ...]

    @classmethod
    def of(
        cls, frames: list[FrameTiming], app_header: int, link_bps: float, calibration: Calibration | None
    ) -> AppTiming:
        basis, rate = ("calibrated", calibration.goodput_measured_bps) if calibration else ("link", link_bps)
        rtt = (calibration.rtt_s or 0.0) if calibration else 0.0
        timed = tuple(
            AppFrame(
                f.id,
                f.len,
                ((f.answer_ns or f.done_ns) - f.send_ns) / 1e9,
                rtt + (f.len + app_header) * 8 / rate,
            )
            for f in frames
        )
        return cls(basis, rate, rtt, link_bps, app_header, timed)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, p50 and max of the measured and the predicted frame times, and the errors between them."""
        import statistics

        out: dict[str, dict[str, float]] = {}
        if not self.frames:
            return out
        for name, fn in (("mean", statistics.fmean), ("p50", statistics.median), ("max", max)):
            m, p = fn([f.measured_s for f in self.frames]), fn([f.predicted_s for f in self.frames])
            out[name] = {"measured_s": m, "predicted_s": p, "error": m / p - 1}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "timed": "send call -> the edge's answer back at the sender",
            "basis": self.basis,
            "rate_bps": self.rate_bps,
            "rtt_s": self.rtt_s,
            "predicted": "rtt_s + (payload + app_header) x 8 / rate_bps",
            "link_bps": self.link_bps,
            "link_enforced": False,
            "app_header": self.app_header,
            "count": len(self.frames),
            "summary": self.summary(),
            "frames": [f.to_dict() for f in self.frames],
        }


@dataclass
class Outcome:
    """What a scenario's traffic measured, and why it stopped early if it did."""

    frames: list[FrameTiming] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """A run: what was predicted, captured and measured, with the comparison (versioned JSON)."""

    scenario: str
    config: dict[str, Any]
    artifacts: Artifacts
    prediction: Prediction
    calibration: Calibration | None
    capture: CaptureStats | None
    frames: list[FrameTiming]
    comparison: Any  # pktchar.testbed.compare.Comparison | None
    environment: dict[str, Any]
    source: str = ""  # what the payloads are
    error: str | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    captures: dict[str, CaptureStats] = field(default_factory=dict)  # every captured endpoint's, in order
    application: AppTiming | None = None  # frames timed at the sender against a path rate (real hosts)

    @property
    def pcap(self) -> Path:
        return self.artifacts.pcap

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": RESULT_KIND,
            "version": SCHEMA_VERSION,
            "scenario": self.scenario,
            "config": self.config,
            "source": self.source,
            "files": self.files(),
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "capture": {**asdict(self.capture), "complete": self.capture.complete} if self.capture else None,
            **(
                {"captures": {e: {**asdict(c), "complete": c.complete} for e, c in self.captures.items()}}
                if len(self.captures) > 1
                else {}
            ),
            "comparison": self.comparison.to_dict() if self.comparison is not None else None,
            "frames": [f.to_dict() for f in self.frames],
            "environment": self.environment,
            "error": self.error,
            "interrupted": self.interrupted,
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
            **({"application": self.application.to_dict()} if self.application is not None else {}),
        }

    def files(self) -> dict[str, str]:
        """The files of this run that exist, by role; the result file is the one being written."""
        a = self.artifacts
        named = {"pcap": a.pcap, "prediction": a.prediction, "result": a.result,
                 **{f"pcap_{e}": a.capture(e) for e in a.others}}  # fmt: skip
        made = {*a.captures(), a.prediction}
        return {k: str(p) for k, p in named.items() if p == a.result or (p in made and p.exists())}

    def save(self) -> Path:
        self.artifacts.result.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return self.artifacts.result


def load_frames(result_path: Path) -> list[dict[str, Any]] | None:
    """The application timings a result file holds (any version), or None."""
    try:
        d = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    frames = d.get("frames") if isinstance(d, dict) else None
    return frames if isinstance(frames, list) else None


# ----------------------------------------------------------------------------------------------
# the contract a scenario fulfils


class Scenario(Protocol):
    """A kind of traffic. The core calls, in order: ``prepare``, ``predict``, ``start``, ``traffic``,
    ``finish`` (always, also after an error), then compares ``prediction.flows`` with the capture.
    ``traffic`` records into the ``outcome`` it is given as it goes, so what was measured before
    Ctrl-C or a lost peer is kept."""

    name: str
    endpoints: list[str]  # the last one is the edge: tbf on its egress is the downlink
    link: Link
    capture_on: str | list[str]  # the endpoint(s) whose interface is captured; the first is Result.capture
    calibration: tuple[str, str] | None  # (from, to) endpoints of the calibration transfer, or None

    def config(self) -> dict[str, Any]: ...

    def prepare(self) -> str: ...  # heavy work before namespaces; returns what the payloads are

    def predict(self, topo: Topology, calibration: Calibration | None) -> Prediction: ...

    def start(self, topo: Topology, work: Path) -> None: ...

    def traffic(self, topo: Topology, work: Path, outcome: Outcome, progress: Progress | None) -> None: ...

    def finish(self, topo: Topology) -> None: ...


# ----------------------------------------------------------------------------------------------
# real hosts: this machine (the device) and a remote edge running `pktchar serve`


class Hosts:
    """Two real hosts in place of namespaces: no shaping, no namespaces; the device's processes run here,
    the edge is ``pktchar serve`` at ``host:port``. Captures (root) run on ``iface`` of this host."""

    remote = True
    netem = False
    bridge_ns = None

    def __init__(
        self, host: str, port: int, iface: str | None, link: Link, devices: tuple[str, ...] = ("dev",)
    ) -> None:
        import socket

        from .netns import Endpoint, new_run_id

        try:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise TestbedError(f"--to {host}:{port}: cannot resolve {host}: {e.strerror}") from e
        remote_ip = infos[0][4][0]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((remote_ip, port))  # no packet: picks the source address the route uses
            local_ip = probe.getsockname()[0]
        except OSError as e:
            raise TestbedError(f"--to {host}:{port}: no route to {remote_ip}: {e.strerror}") from e
        finally:
            probe.close()
        self.port, self.link, self.run_id = port, link, new_run_id()
        self.eps = {d: Endpoint(d, "", local_ip, iface or "") for d in devices}
        self.eps["edge"] = Endpoint("edge", "", remote_ip, "")
        self.devices = devices
        self.settings: dict[str, Any] = {"remote": f"{remote_ip}:{port}", "capture_iface": iface}

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def popen(self, ep: str, cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
        if ep not in self.devices:
            raise TestbedError(
                "only the device runs on this host; the edge is `pktchar serve` on the other one"
            )
        return subprocess.Popen(cmd, text=True, **kw)

    def counters(self, ep: str) -> dict[str, int]:
        e = self.eps[ep]
        base = Path(f"/sys/class/net/{e.ifname}/statistics")
        keys = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped")
        out = {k: int((base / k).read_text()) for k in keys}
        if e.ifname == "lo":  # loopback counts every packet twice, sent and received; a capture sees it once
            out.update(rx_packets=0, rx_bytes=0, rx_dropped=0)
        return out

    def qdisc_stats(self) -> dict[str, str]:
        return {}


def check_serving(host: str, port: int) -> None:
    """One line when nothing listens at ``host:port`` (before anything else is done)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise TestbedError(
            f"--to {host}:{port}: {e.strerror or e} (is `pktchar serve --port {port}` running there?)"
        ) from e


# ----------------------------------------------------------------------------------------------
# the orchestration every scenario shares


def calibrate(topo: Topology, src: str, dst: str, link: Link, work: Path) -> Calibration:
    """One bulk TCP frame (a quarter second at the rate, 256 kB to 32 MB) from ``src`` to ``dst``, timed
    from the send call to its last byte at the receiver (CLOCK_MONOTONIC, shared by the namespaces). Between
    real hosts (the edge's clock is another machine's) from the send call to the edge's answer back at the
    sender, less the median round trip of :data:`RTT_PROBES` empty frames sent first."""
    size = int(min(32e6, max(256e3, link.uplink / 8 * 0.25)))
    (work / "calib.bin").write_bytes(os.urandom(min(size, 1 << 20)))
    remote = getattr(topo, "remote", False)  # a real edge: `pktchar serve` answers calibration frames too
    # between real hosts a frame is timed to its answer back here: empty frames first give the round trip
    probes = RTT_PROBES if remote else 0
    (work / "calib.json").write_text(json.dumps([0] * probes + [size]))
    port = topo.port if remote else CALIBRATION_PORT  # type: ignore[attr-defined]
    recv = None
    if not remote:
        recv = topo.popen(dst, endpoint_cmd("recv", "--port", str(port), "--proto", "tcp"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        if recv is not None:
            assert recv.stdout is not None
            wait_line(recv, recv.stdout, "READY", 30)
        send = topo.popen(
            src,
            endpoint_cmd(
                "send",
                "--host",
                topo.eps[dst].ip,
                "--port",
                str(port),
                "--proto",
                "tcp",
                "--payload",
                str(work / "calib.bin"),
                "--sizes",
                str(work / "calib.json"),
                "--mtu",
                str(link.mtu),
                "--calibration",
                "--split",
                "65535",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = send.communicate(timeout=60 + size * 8 / link.uplink * 4)
        except subprocess.TimeoutExpired:
            send.kill()
            raise TestbedError("calibration transfer did not finish in time") from None
    finally:
        if recv is not None:
            recv.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                recv.wait(timeout=5)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if send.returncode != 0 or not lines or "error" in lines[-1]:
        detail = lines[-1].get("error") if lines else (err.strip() or f"exit {send.returncode}")
        raise TestbedError(f"calibration transfer failed: {detail}")
    r = lines[-1]
    t = Transport("tcp", link.mtu)
    pk = packetize(size, t)
    # timed from the send call to the last byte in: everything beyond the bucket's credit went at the rate
    # (timing from the first byte in overstates the rate on a loaded machine, where the receiver wakes late)
    span = (r["done_ns"] - r["send_ns"]) / 1e9
    rtt = None
    if remote:  # the edge's clock is another machine's: timed to the answer back here, less a round trip
        import statistics

        span = (r["answer_ns"] - r["send_ns"]) / 1e9
        rtt = statistics.median([(x["answer_ns"] - x["send_ns"]) / 1e9 for x in lines[:-1]])
        rtt = min(rtt, span / 2)  # a round trip beyond half the bulk frame's time is noise, not the path
    moving = span - (rtt or 0.0)
    moved = max(1, pk.frame_bytes - link.bucket)
    app = size + t.app_header
    return Calibration(
        bytes=size,
        seconds=span,
        link_rate_set_bps=link.uplink,
        link_rate_measured_bps=moved * 8 / moving,
        goodput_measured_bps=app * 8 / moving,
        goodput_predicted_bps=app * 8 / (moved * 8 / link.uplink),
        rtt_s=rtt,
    )


def environment(topo: Topology) -> dict[str, Any]:
    """Kernel, qdiscs, offloads and tool versions: what a reader needs to trust the numbers."""

    def version(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    from .. import __version__

    tools = {
        "pktchar": __version__,
        "python": platform.python_version(),
        "tcpdump": version(["tcpdump", "--version"]),
        "iproute2": version(["ip", "-V"]),
        "ethtool": version(["ethtool", "--version"]),
    }
    if "torch" in sys.modules:  # say which torch made the payloads, without importing it here
        tools["torch"] = sys.modules["torch"].__version__
    env: dict[str, Any] = {
        "kernel": platform.release(),
        "netem": topo.netem,
        "qdisc": topo.settings.get("qdisc", {}),
        "offloads": topo.settings.get("offloads", {}),
        "tcp_slow_start_after_idle": 0,
        "tools": tools,
    }
    with contextlib.suppress(TestbedError):
        env["qdisc_stats"] = topo.qdisc_stats()
    return env


def run(
    scenario: Scenario,
    pcap: Path,
    *,
    calibrate_link: bool = True,
    capture: str = "tcpdump",
    snaplen: int | None = None,
    progress: Progress | None = None,
    hosts: Hosts | None = None,
) -> Result:
    """Run ``scenario`` end to end. The prediction is written before any traffic; the result is
    written at the end, also when a peer is lost or the run is interrupted (then KeyboardInterrupt is
    raised again after the files are safe). With ``hosts`` the run goes between this machine and a real
    edge (``pktchar serve``): no namespaces, no shaping, a capture only on ``hosts``' interface."""
    on = [scenario.capture_on] if isinstance(scenario.capture_on, str) else list(scenario.capture_on)
    if hosts is not None:  # real hosts: capture only on this host's named interface, if any
        first = hosts.devices[0]
        on = [first] if hosts.eps[first].ifname else []
    if hosts is None or on:
        require_root()
    artifacts = Artifacts(Path(pcap), tuple(on[1:]), capturing=bool(on))
    artifacts.pcap.parent.mkdir(parents=True, exist_ok=True)
    phase(f"{scenario.name}: preparing the payloads")
    source = scenario.prepare()
    phase(
        f"{scenario.name}: "
        + ("reaching the edge host" if hosts is not None else "creating namespaces and links")
    )
    interrupted = False
    calibration: Calibration | None = None
    stats: dict[str, CaptureStats] = {}
    env: dict[str, Any] = {}
    outcome = Outcome()
    prediction: Prediction | None = None
    with (
        tempfile.TemporaryDirectory(prefix="pktchar-") as tmp,
        hosts
        or Topology(
            scenario.endpoints,
            scenario.link,
            uplinks=dict(getattr(scenario, "uplinks", {})),
            bridged=bool(getattr(scenario, "bridged", False)),
        ) as topo,
    ):
        work = Path(tmp)
        os.chmod(work, 0o755)  # endpoint processes read their payload files from here
        caps: list[Capture] = []
        try:
            if calibrate_link and scenario.calibration:
                phase(f"{scenario.name}: calibrating the link (a bulk transfer)")
                calibration = calibrate(topo, *scenario.calibration, scenario.link, work)
            phase(f"{scenario.name}: predicting")
            prediction = scenario.predict(topo, calibration)
            prediction.save(artifacts.prediction)
            phase(
                f"{scenario.name}: starting the endpoints"
                + (f" and capturing on {', '.join(on)}" if on else "")
            )
            scenario.start(topo, work)
            for ep in on:
                caps.append(
                    Capture(
                        topo,  # type: ignore[arg-type]
                        ep,
                        artifacts.capture(ep) if ep in artifacts.others else artifacts.pcap,
                        backend=capture,
                        **({"snaplen": snaplen} if snaplen else {}),
                    )
                )
                caps[-1].start()
            phase(f"{scenario.name}: sending")
            scenario.traffic(topo, work, outcome, progress)
        except KeyboardInterrupt:
            interrupted, outcome.error = True, "interrupted"
        finally:
            with contextlib.suppress(Exception):
                scenario.finish(topo)
            for cap in caps:
                try:
                    stats[cap.ep] = cap.stop()
                except KeyboardInterrupt:
                    interrupted, outcome.error = True, "interrupted"
            env = environment(topo)
    frames, error = outcome.frames, outcome.error
    if prediction is None:  # stopped before the prediction existed: nothing was sent or captured
        if interrupted:
            raise KeyboardInterrupt
        raise TestbedError(error or "the run stopped before its prediction was made")
    result = Result(
        scenario.name,
        scenario.config(),
        artifacts,
        prediction,
        calibration,
        stats.get(on[0]) if on else None,
        frames,
        None,
        env,
        source,
        error,
        interrupted,
        extra=outcome.extra,
        captures=stats,
    )
    phase(
        f"{scenario.name}: comparing the capture with the prediction"
        if result.capture
        else f"{scenario.name}: done"
    )
    _compare_into(result)
    result.save()
    if interrupted:
        raise Interrupted(result)
    return result


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: the files are written; ``result`` holds what was measured."""

    def __init__(self, result: Result) -> None:
        super().__init__("interrupted")
        self.result = result


def _compare_into(result: Result) -> None:
    """Set each flow's capture beside its prediction (only the frames measured, when a run stopped early)."""
    from .compare import compare

    if not result.frames or result.capture is None:
        return
    flow = result.prediction.flow()
    pred = flow.compare_input()
    if len(result.frames) < len(flow.frames):
        pred["frames"] = pred["frames"][: len(result.frames)]
        result.notes.append(f"compared the {len(result.frames)} frames measured before the run stopped")
    try:
        result.comparison = compare(result.artifacts.pcap, pred, [f.to_dict() for f in result.frames])
    except PktcharError as e:
        result.notes.append(f"compare failed: {e}")


def wait_done(proc: subprocess.Popen[str], timeout: float) -> None:
    """Wait for ``proc``; terminate it if it does not end in ``timeout`` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def read_frames(
    proc: subprocess.Popen[str], total: int, budget_s: float, out: Outcome, progress: Progress | None = None
) -> None:
    """Collect a sender's JSON lines (one a frame, or an ``error`` line) into ``out`` within ``budget_s``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + budget_s
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "error" in d:
            out.error = d["error"]
            break
        out.frames.append(FrameTiming.from_dict(d))
        if progress:
            progress(len(out.frames), total)
        if time.monotonic() > deadline:
            out.error = f"the run did not finish within {budget_s:.0f} s"
            break
    wait_done(proc, 10)
    if out.error is None and proc.returncode not in (0, None):
        err = proc.stderr.read() if proc.stderr else ""
        out.error = f"sender exited {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"


def compare_capture(pcap: Path, prediction: Path | None = None, *, partial: bool = False) -> Any:
    """Compare a capture with the prediction beside it (or ``prediction``) and the application
    timings of the result file beside it; without a prediction, the busiest flow as one transfer."""
    from .compare import compare

    artifacts = Artifacts(Path(pcap))
    path = prediction or artifacts.prediction
    pred = Prediction.load(path) if (prediction or path.exists()) else None
    if pred is None:
        c = compare(pcap, None, None, partial=partial)
        c.notes.append("no prediction: the busiest flow is analysed as one transfer")
        return c
    frames = load_frames(artifacts.result) if artifacts.result.exists() else None
    flow = pred.flow().compare_input()
    if frames is not None and 0 < len(frames) < len(flow["frames"]):
        flow["frames"] = flow["frames"][: len(frames)]
    return compare(pcap, flow, frames, partial=partial)
