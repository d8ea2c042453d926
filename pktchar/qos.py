"""Network requirements of a flow, and the 5G QoS classes (5QI) that can carry it.

Rates follow 3GPP's split-inference form (TS 22.261 clause 7.10, TR 22.874):
``rate = payload x 8 / latency`` (bits per second, SI). A flow is one application
frame of ``payload`` bytes every ``1/fps`` seconds, each due within ``latency``
(default: the frame interval).

The standardized 5QI table is 3GPP TS 23.501 Table 5.7.4-1 (as summarised in
the project's REFERENCE.md). A 5QI fits a flow when its packet delay budget
(PDB) is within the flow's latency budget, and — for delay-critical GBR — the
data sent within one PDB (IP bytes, what the 5G user plane carries) is within
its maximum data burst volume (MDBV). "No standardized 5QI fits" is a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import PktcharError
from .packets import Packets, Transport, packetize
from .units import human_bytes


@dataclass(frozen=True)
class FiveQI:
    qi: int
    resource: str  # "GBR", "Non-GBR", "DC-GBR" (delay-critical GBR)
    priority: int
    pdb_ms: float
    per: float
    mdbv: int | None  # bytes, delay-critical GBR only
    services: str


# 3GPP TS 23.501, Table 5.7.4-1: standardized 5QI to QoS characteristics mapping.
FIVEQI_TABLE: tuple[FiveQI, ...] = (
    FiveQI(1, "GBR", 20, 100, 1e-2, None, "conversational voice"),
    FiveQI(2, "GBR", 40, 150, 1e-3, None, "conversational video (live streaming)"),
    FiveQI(3, "GBR", 30, 50, 1e-3, None, "real-time gaming, V2X messages"),
    FiveQI(4, "GBR", 50, 300, 1e-6, None, "non-conversational video (buffered streaming)"),
    FiveQI(65, "GBR", 7, 75, 1e-2, None, "mission-critical push-to-talk voice"),
    FiveQI(66, "GBR", 20, 100, 1e-2, None, "non-mission-critical push-to-talk voice"),
    FiveQI(67, "GBR", 15, 100, 1e-3, None, "mission-critical video user plane"),
    FiveQI(71, "GBR", 56, 150, 1e-6, None, "live uplink streaming"),
    FiveQI(72, "GBR", 56, 300, 1e-4, None, "live uplink streaming"),
    FiveQI(73, "GBR", 56, 300, 1e-8, None, "live uplink streaming"),
    FiveQI(74, "GBR", 56, 500, 1e-8, None, "live uplink streaming"),
    FiveQI(76, "GBR", 56, 500, 1e-4, None, "live uplink streaming"),
    FiveQI(5, "Non-GBR", 10, 100, 1e-6, None, "IMS signalling"),
    FiveQI(6, "Non-GBR", 60, 300, 1e-6, None, "buffered video, TCP-based apps"),
    FiveQI(7, "Non-GBR", 70, 100, 1e-3, None, "voice, live video, interactive gaming"),
    FiveQI(8, "Non-GBR", 80, 300, 1e-6, None, "buffered video, TCP-based apps"),
    FiveQI(9, "Non-GBR", 90, 300, 1e-6, None, "buffered video, TCP-based apps"),
    FiveQI(10, "Non-GBR", 90, 1100, 1e-6, None, "as 6/8/9, satellite access"),
    FiveQI(69, "Non-GBR", 5, 60, 1e-6, None, "mission-critical delay-sensitive signalling"),
    FiveQI(70, "Non-GBR", 55, 200, 1e-6, None, "mission-critical data"),
    FiveQI(79, "Non-GBR", 65, 50, 1e-2, None, "V2X messages"),
    FiveQI(80, "Non-GBR", 68, 10, 1e-6, None, "low-latency eMBB, augmented reality"),
    FiveQI(82, "DC-GBR", 19, 10, 1e-4, 255, "discrete automation"),
    FiveQI(83, "DC-GBR", 22, 10, 1e-4, 1354, "discrete automation, V2X platooning"),
    FiveQI(84, "DC-GBR", 24, 30, 1e-5, 1354, "intelligent transport systems"),
    FiveQI(85, "DC-GBR", 21, 5, 1e-5, 255, "electricity distribution, high voltage"),
    FiveQI(86, "DC-GBR", 18, 5, 1e-4, 1354, "V2X collision avoidance, platooning"),
    FiveQI(87, "DC-GBR", 25, 5, 1e-3, 500, "interactive service, motion tracking"),
    FiveQI(88, "DC-GBR", 25, 10, 1e-3, 1125, "interactive service, motion tracking"),
    FiveQI(89, "DC-GBR", 25, 15, 1e-4, 17000, "visual content for cloud/edge/split rendering"),
    FiveQI(90, "DC-GBR", 25, 20, 1e-4, 63000, "visual content for cloud/edge/split rendering"),
)
FIVEQI_SOURCE = "3GPP TS 23.501, Table 5.7.4-1 (standardized 5QI to QoS characteristics mapping)"


@dataclass(frozen=True)
class Fit:
    fiveqi: FiveQI
    fits: bool
    reason: str


@dataclass(frozen=True)
class Requirements:
    """What one flow needs from the network, and which 5QIs can carry it."""

    payload: int
    latency: float  # seconds: each frame is due within this
    fps: float | None
    packets: Packets
    rate_payload: float  # bit/s, 3GPP form: payload x 8 / latency
    rate_wire: float  # bit/s of Ethernet wire bytes within the latency budget
    avg_rate_payload: float | None  # bit/s at fps
    avg_rate_wire: float | None
    link: float | None  # bit/s
    serialization: float | None  # seconds to put one frame's wire bytes on the link
    max_fps: float | None  # frames a second the link can carry
    fits_link: bool | None
    size_class: str
    fits: tuple[Fit, ...] = field(default_factory=tuple)

    @property
    def fitting(self) -> list[int]:
        return [f.fiveqi.qi for f in self.fits if f.fits]

    @property
    def fitting_dc_gbr(self) -> list[int]:
        return [f.fiveqi.qi for f in self.fits if f.fits and f.fiveqi.resource == "DC-GBR"]

    def to_dict(self) -> dict[str, object]:
        return {
            "payload": self.payload,
            "latency_s": self.latency,
            "fps": self.fps,
            "packets": self.packets.to_dict(),
            "rate_payload_bps": self.rate_payload,
            "rate_wire_bps": self.rate_wire,
            "avg_rate_payload_bps": self.avg_rate_payload,
            "avg_rate_wire_bps": self.avg_rate_wire,
            "link_bps": self.link,
            "serialization_s": self.serialization,
            "max_fps": self.max_fps,
            "fits_link": self.fits_link,
            "size_class": self.size_class,
            "fiveqi": [
                {
                    "5qi": f.fiveqi.qi,
                    "resource": f.fiveqi.resource,
                    "pdb_ms": f.fiveqi.pdb_ms,
                    "mdbv": f.fiveqi.mdbv,
                    "fits": f.fits,
                    "reason": f.reason,
                }
                for f in self.fits
            ],
            "fitting_5qi": self.fitting,
            "fiveqi_source": FIVEQI_SOURCE,
        }


def size_class(nbytes: int) -> str:
    """The order of magnitude of a packet/payload size, as seed 002 classifies them (SI decades)."""
    if nbytes <= 0:
        return "0 B"
    k = int(math.floor(math.log10(nbytes)))
    return f"{human_bytes(10**k)}–{human_bytes(10 ** (k + 1))}"


def fit_5qi(ip_bytes: int, latency: float, fps: float | None = None) -> tuple[Fit, ...]:
    """Check every standardized 5QI against a flow of ``ip_bytes`` per frame due within ``latency``."""
    out = []
    for q in FIVEQI_TABLE:
        pdb = q.pdb_ms / 1000.0
        if pdb > latency + 1e-12:
            out.append(Fit(q, False, f"PDB {q.pdb_ms:g} ms exceeds the {latency * 1000:g} ms budget"))
            continue
        if q.mdbv is not None:
            frames = max(1, math.ceil(pdb * fps - 1e-9)) if fps else 1
            burst = ip_bytes * frames
            if burst > q.mdbv:
                out.append(
                    Fit(q, False, f"{burst:,} B within a {q.pdb_ms:g} ms PDB exceeds MDBV {q.mdbv:,} B")
                )
                continue
            out.append(Fit(q, True, f"PDB {q.pdb_ms:g} ms, {burst:,} B <= MDBV {q.mdbv:,} B"))
        else:
            out.append(Fit(q, True, f"PDB {q.pdb_ms:g} ms within budget"))
    return tuple(out)


def requirements(
    payload: int,
    *,
    latency: float | None = None,
    fps: float | None = None,
    transport: Transport | None = None,
    link: float | None = None,
) -> Requirements:
    """Requirements of a flow of ``payload`` bytes a frame. Give ``latency`` (s), ``fps``, or both."""
    if latency is None and fps is None:
        raise PktcharError("give a latency budget (--latency 10ms) or a frame rate (--fps 30)")
    if fps is not None and fps <= 0:
        raise PktcharError(f"fps must be positive, got {fps:g}")
    if latency is not None and latency <= 0:
        raise PktcharError(f"latency must be positive, got {latency:g} s")
    if link is not None and link <= 0:
        raise PktcharError(f"link rate must be positive, got {link:g} bit/s")
    budget = latency if latency is not None else 1.0 / float(fps)  # type: ignore[arg-type]
    pk = packetize(payload, transport)
    ser = pk.wire_bytes * 8 / link if link else None
    avg_p = payload * 8 * fps if fps else None
    avg_w = pk.wire_bytes * 8 * fps if fps else None
    fits_link = None
    if link:
        fits_link = ser <= budget + 1e-12 and (avg_w is None or avg_w <= link)  # type: ignore[operator]
    return Requirements(
        payload=payload,
        latency=budget,
        fps=fps,
        packets=pk,
        rate_payload=payload * 8 / budget,
        rate_wire=pk.wire_bytes * 8 / budget,
        avg_rate_payload=avg_p,
        avg_rate_wire=avg_w,
        link=link,
        serialization=ser,
        max_fps=(link / (pk.wire_bytes * 8)) if link and pk.wire_bytes else None,
        fits_link=fits_link,
        size_class=size_class(payload),
        fits=fit_5qi(pk.ip_bytes, budget, fps),
    )
