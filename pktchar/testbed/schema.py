"""The testbed's records: what a run predicts, measures and writes, as frozen dataclasses and versioned JSON.

    Prediction ─► FlowPrediction ─► FramePrediction   written beside the capture before a byte is sent
    Result ─► Calibration, FrameTiming, Comparison      written beside the capture at the end
    Measure                                             one figure, predicted against measured

A leaf: it imports only :mod:`pktchar.core` (other testbed types are named for type checkers only), so
:mod:`~pktchar.testbed.compare`, the runner and every scenario import it and nothing imports back.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import PktcharError
from ..core.packets import Transport

if TYPE_CHECKING:
    from .capture import CaptureStats

PREDICTION_KIND = "pktchar-prediction"
RESULT_KIND = "pktchar-result"
SCHEMA_VERSION = 2


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

    def first(self, n: int) -> FlowPrediction:
        """The flow's first ``n`` frames: what a run that stopped after ``n`` frames was predicted to send."""
        return replace(self, frames=self.frames[:n])

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
    trip of its empty frames; without one (``basis`` "link") ``rate_bps`` is ``link_bps``, the link rate
    given, a rate nothing enforces, and ``rtt_s`` is 0."""

    basis: str  # "calibrated" | "link"
    rate_bps: float
    rtt_s: float  # the round trip of an empty frame, measured in calibration (0 without one)
    link_bps: float  # the link rate given (ReplayConfig.link); not enforced between real hosts
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


class Details(Protocol):
    """What a scenario measured beyond its frames, typed by the scenario (its worker events, its devices'
    frames); written into the result file under ``extra``."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class Events:
    """The JSON events a scenario's processes wrote, in the order they came (upload's edge and device,
    train-sync's workers: each event tagged with its process)."""

    events: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events}

    @staticmethod
    def of(result: Result) -> list[dict[str, Any]]:
        """The events of ``result`` (none when its scenario recorded none)."""
        return result.details.events if isinstance(result.details, Events) else []


@dataclass
class Outcome:
    """What a scenario's traffic measured, and why it stopped early if it did."""

    frames: list[FrameTiming] = field(default_factory=list)
    error: str | None = None
    details: Details | None = None  # the scenario's own measurements (its type), if any


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
    comparison: Comparison | None
    environment: dict[str, Any]
    source: str = ""  # what the payloads are
    error: str | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    details: Details | None = None  # the scenario's own measurements: read them as its own type
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
            # the scenario's own details, under the result file's key for them since version 1
            **({"extra": extra} if (extra := self.details.to_dict() if self.details else {}) else {}),
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


def load_frames(result_path: Path) -> list[FrameTiming] | None:
    """The application timings a result file holds (any version), or None. An entry without an ``id``
    names no frame and is left out; a missing ``len`` or ``first_ns`` (which compare does not read) is 0."""
    try:
        d = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    frames = d.get("frames") if isinstance(d, dict) else None
    if not isinstance(frames, list):
        return None
    return [
        FrameTiming(
            int(f["id"]),
            int(f.get("len", 0)),
            int(f["send_ns"]),
            int(f.get("first_ns", 0)),
            int(f["done_ns"]),
            f.get("answer_ns"),
        )  # fmt: skip
        for f in frames
        if isinstance(f, dict) and "id" in f
    ]


# ----------------------------------------------------------------------------------------------
# measured against predicted


@dataclass(frozen=True)
class Measure:
    """One figure, predicted and measured: the one join every scenario's comparison is made of (compare's
    rows, an upload mode's times, a fleet device's goodput and latency, a training step's bytes). A figure
    the run could not measure (or predict) is None."""

    metric: str
    predicted: float | None
    measured: float | None
    unit: str = ""
    key: str = ""  # a stable name code finds the figure by (Comparison.row); not in the JSON

    @property
    def error(self) -> float | None:
        """measured / predicted - 1 (None when either is missing or both are 0; infinite when only the
        prediction is 0)."""
        if self.measured is None or self.predicted is None:
            return None
        if self.predicted == 0:
            return None if self.measured == 0 else float("inf")
        return (self.measured - self.predicted) / self.predicted

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "predicted": self.predicted,
            "measured": self.measured,
            "unit": self.unit,
            "relative_error": self.error,
        }


@dataclass
class FrameResult:
    id: int
    payload: int
    packets: int
    predicted_packets: int
    frame_bytes: int
    predicted_frame_bytes: int
    capture_span_s: float | None
    predicted_span_s: float | None
    transfer_s: float | None = None  # application: send -> last byte at the edge
    predicted_transfer_s: float | None = None

    @property
    def transfer(self) -> Measure:
        """The frame's transfer time (send -> last byte at the edge), measured against predicted."""
        return Measure("transfer time", self.predicted_transfer_s, self.transfer_s, "s", "transfer")


@dataclass
class Comparison:
    """One flow of a capture against its prediction (:func:`pktchar.testbed.compare.compare`)."""

    pcap: str
    flow: str
    rows: list[Measure]
    histogram: list[tuple[str, int, int]]  # (plen bucket, predicted, measured)
    frames: list[FrameResult]
    reverse_packets: int
    retransmissions: int
    other_packets: int
    notes: list[str] = field(default_factory=list)
    packets_analysed: int = 0  # packets read from the capture (all of them, or those before a truncation)
    truncated_at: int | None = None  # partial analysis: the byte where the capture is cut

    def row(self, key: str) -> Measure:
        """The row named ``key`` (one of compare's: frames, packets, wire_bytes, payload_bytes,
        goodput, transfer), never found by its display label."""
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pcap": self.pcap,
            "flow": self.flow,
            "rows": [r.to_dict() for r in self.rows],
            "plen_histogram": [{"bucket": b, "predicted": p, "measured": m} for b, p, m in self.histogram],
            "frames": [f.__dict__ for f in self.frames],
            "reverse_packets": self.reverse_packets,
            "retransmissions": self.retransmissions,
            "other_packets": self.other_packets,
            "notes": self.notes,
            "packets_analysed": self.packets_analysed,
            "truncated_at": self.truncated_at,
        }
