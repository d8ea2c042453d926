"""Network requirements of a flow, and the 5G QoS classes (5QI) that can carry it.

Rates follow 3GPP's split-inference form (TS 22.261 clause 7.10, TR 22.874):
``rate = payload x 8 / latency`` (bits per second, SI). A flow is one application
frame of ``payload`` bytes every ``1/fps`` seconds, each due within ``latency``
(default: the frame interval).

The standardized 5QI table is 3GPP TS 23.501 Table 5.7.4-1 (as summarised in
the project's REFERENCE.md). A 5QI fits a flow when every characteristic it
defines meets the flow's: its packet delay budget (PDB) is within the flow's
latency budget, its packet error rate (PER) at or below the one the flow
tolerates (1 - ``reliability``), for delay-critical GBR the data sent within
one PDB (IP bytes, what the 5G user plane carries) within its maximum data
burst volume (MDBV), and the flow's rate within what the named radio profile
or link carries. "No standardized 5QI fits" is a finding: the flow then needs
a non-standardized 5QI, whose characteristics are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .errors import PktcharError
from .packets import Packets, Transport, packetize
from .units import human_bytes, human_duration, human_per, human_rate

if TYPE_CHECKING:
    from .radio import Carrier


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


# The reliability a flow needs when none is given: TS 22.261 Table 7.10.1-1 (KPIs for split AI/ML
# inference), row "split AI/ML image recognition", uplink reliability 99.9 % -> PER 10^-3.
DEFAULT_RELIABILITY = 0.999
RELIABILITY_SOURCE = "3GPP TS 22.261 Table 7.10.1-1, split AI/ML image recognition, uplink reliability 99.9 %"
# The largest PDB of a delay-critical GBR 5QI in TS 23.501 Table 5.7.4-1 (5QI 84: 30 ms).
DC_GBR_MAX_PDB_MS = max(q.pdb_ms for q in FIVEQI_TABLE if q.resource == "DC-GBR")


@dataclass(frozen=True)
class Fit:
    fiveqi: FiveQI
    fits: bool
    reason: str
    failing: tuple[str, ...] = ()  # characteristics that fail: "PDB", "PER", "MDBV", "rate"
    rate_checked: bool = False


@dataclass(frozen=True)
class Requirements:
    """What one flow needs from the network (its QoS characteristics), and which 5QIs can carry it."""

    payload: int
    latency: float  # seconds: each frame is due within this (the PDB the flow needs)
    fps: float | None
    packets: Packets
    rate_payload: float  # bit/s, 3GPP form: payload x 8 / latency
    rate_wire: float  # bit/s of Ethernet wire bytes within the latency budget
    avg_rate_payload: float | None  # bit/s at fps
    avg_rate_wire: float | None
    link: float | None  # bit/s (an Ethernet link)
    serialization: float | None  # seconds to put one frame's wire bytes on the link
    max_fps: float | None  # frames a second the link can carry
    fits_link: bool | None
    size_class: str
    fits: tuple[Fit, ...] = field(default_factory=tuple)
    reliability: float = DEFAULT_RELIABILITY
    reliability_source: str = RELIABILITY_SOURCE
    carrier: Carrier | None = None

    @property
    def per(self) -> float:
        """The packet error rate the flow tolerates: 1 - reliability (rounded off float noise)."""
        return round(1.0 - self.reliability, 12)

    @property
    def rate_ip(self) -> float:
        """bit/s of IP packets within the latency budget (what the 5G user plane carries)."""
        return self.packets.ip_bytes * 8 / self.latency

    def frames_per(self, window: float) -> int:
        """Frames sent within a window of ``window`` seconds (at least the one frame)."""
        return max(1, math.ceil(window * self.fps - 1e-9)) if self.fps else 1

    @property
    def burst(self) -> int:
        """Data burst per PDB: IP bytes sent within one latency budget."""
        return self.packets.ip_bytes * self.frames_per(self.latency)

    @property
    def resource(self) -> str:
        """The resource type the flow calls for: a frame due every interval within a budget needs a
        guaranteed bit rate; delay-critical when the budget is within the DC-GBR PDBs (<= 30 ms)."""
        return "DC-GBR" if self.latency * 1000 <= DC_GBR_MAX_PDB_MS + 1e-9 else "GBR"

    def needed(self, layer: str) -> float:
        """The rate a carrier must give: within the budget, and on average at fps."""
        if layer == "wire":
            return max(self.rate_wire, self.avg_rate_wire or 0.0)
        avg_ip = self.packets.ip_bytes * 8 * self.fps if self.fps else 0.0
        return max(self.rate_ip, avg_ip)

    @property
    def carrier_factor(self) -> float | None:
        """Carrier rate / needed rate: >= 1 is room, < 1 falls short by 1/factor."""
        if self.carrier is None:
            return None
        return self.carrier.rate / self.needed(self.carrier.layer)

    @property
    def carried(self) -> bool | None:
        f = self.carrier_factor
        return None if f is None else f >= 1.0 - 1e-12

    @property
    def fitting(self) -> list[int]:
        return [f.fiveqi.qi for f in self.fits if f.fits]

    @property
    def fitting_dc_gbr(self) -> list[int]:
        return [f.fiveqi.qi for f in self.fits if f.fits and f.fiveqi.resource == "DC-GBR"]

    def non_standardized(self) -> dict[str, object]:
        """The characteristics a non-standardized 5QI would signal for this flow (TS 23.501 clause
        5.7.3: resource type, PDB, PER, MDBV for delay-critical GBR, and the GFBR of the QoS flow)."""
        out: dict[str, object] = {
            "resource": self.resource,
            "pdb_ms": self.latency * 1000,
            "per": self.per,
            "gfbr_bps": self.needed("ip"),
        }
        if self.resource == "DC-GBR":
            out["mdbv"] = self.burst
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "payload": self.payload,
            "latency_s": self.latency,
            "fps": self.fps,
            "packets": self.packets.to_dict(),
            "characteristics": {
                "pdb_ms": self.latency * 1000,
                "per": self.per,
                "reliability": self.reliability,
                "reliability_source": self.reliability_source,
                "burst_bytes": self.burst,
                "resource": self.resource,
                "rate_payload_bps": self.rate_payload,
                "rate_ip_bps": self.rate_ip,
                "rate_wire_bps": self.rate_wire,
                "avg_rate_payload_bps": self.avg_rate_payload,
                "avg_rate_wire_bps": self.avg_rate_wire,
            },
            "rate_payload_bps": self.rate_payload,
            "rate_ip_bps": self.rate_ip,
            "rate_wire_bps": self.rate_wire,
            "avg_rate_payload_bps": self.avg_rate_payload,
            "avg_rate_wire_bps": self.avg_rate_wire,
            "carrier": None
            if self.carrier is None
            else {
                **self.carrier.to_dict(),
                "needed_bps": self.needed(self.carrier.layer),
                "factor": self.carrier_factor,
                "carries": self.carried,
            },
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
                    "per": f.fiveqi.per,
                    "mdbv": f.fiveqi.mdbv,
                    "services": f.fiveqi.services,
                    "fits": f.fits,
                    "failing": list(f.failing),
                    "rate_checked": f.rate_checked,
                    "reason": f.reason,
                }
                for f in self.fits
            ],
            "fitting_5qi": self.fitting,
            "non_standardized_5qi": None if self.fitting else self.non_standardized(),
            "fiveqi_source": FIVEQI_SOURCE,
        }


def size_class(nbytes: int) -> str:
    """The order of magnitude of a packet/payload size, as the Yonsei paper classifies them (SI decades)."""
    if nbytes <= 0:
        return "0 B"
    k = int(math.floor(math.log10(nbytes)))
    return f"{human_bytes(10**k)}–{human_bytes(10 ** (k + 1))}"


def _ms(v: float) -> str:
    return human_duration(v / 1000)


def fit_5qi(
    ip_bytes: int,
    latency: float,
    fps: float | None = None,
    *,
    per: float = 1.0 - DEFAULT_RELIABILITY,
    carrier: Carrier | None = None,
    needed: float | None = None,
) -> tuple[Fit, ...]:
    """Check every standardized 5QI against a flow of ``ip_bytes`` per frame due within ``latency``.

    A 5QI fits when every characteristic it defines meets the flow's: PDB within the budget, its PER
    at or below the flow's, for delay-critical GBR the burst within one PDB at most its MDBV, and the
    ``needed`` rate (bit/s) within the ``carrier``'s (when one is named). All failing ones are named."""
    out = []
    for q in FIVEQI_TABLE:
        pdb = q.pdb_ms / 1000.0
        fails: list[str] = []
        why: list[str] = []
        if pdb > latency + 1e-12:
            fails.append("PDB")
            why.append(f"PDB {_ms(q.pdb_ms)} exceeds the {human_duration(latency)} budget")
        if q.per > per * (1 + 1e-9):
            fails.append("PER")
            why.append(f"PER {human_per(q.per)} above the {human_per(per)} the flow tolerates")
        if q.mdbv is not None:
            frames = max(1, math.ceil(pdb * fps - 1e-9)) if fps else 1
            burst = ip_bytes * frames
            if burst > q.mdbv:
                fails.append("MDBV")
                why.append(f"{burst:,} B within a {_ms(q.pdb_ms)} PDB exceeds MDBV {q.mdbv:,} B")
        if carrier is not None and needed is not None and needed > carrier.rate * (1 + 1e-12):
            fails.append("rate")
            why.append(f"needs {human_rate(needed)}, {carrier.name} carries {human_rate(carrier.rate)}")
        if fails:
            out.append(Fit(q, False, "; ".join(why), tuple(fails), carrier is not None))
        else:
            ok = f"PDB {_ms(q.pdb_ms)}, PER {human_per(q.per)}"
            if q.mdbv is not None:
                ok += f", MDBV {q.mdbv:,} B"
            ok += f", {carrier.name} carries it" if carrier is not None else ", rate not checked (no radio)"
            out.append(Fit(q, True, ok, (), carrier is not None))
    return tuple(out)


def _checked_reliability(
    latency: float | None, fps: float | None, link: float | None, reliability: float | None
) -> float:
    """Each of a flow's inputs checked on its own; the reliability it asks for (default if none)."""
    if latency is None and fps is None:
        raise PktcharError("give a latency budget (`latency`) or a frame rate (`fps`)")
    if fps is not None and fps <= 0:
        raise PktcharError(f"`fps` must be positive, got {fps}")
    if latency is not None and latency <= 0:
        raise PktcharError(f"`latency` must be positive, got {latency} s")
    if link is not None and link <= 0:
        raise PktcharError(f"`link` must be positive, got {link} bit/s")
    rel = DEFAULT_RELIABILITY if reliability is None else float(reliability)
    if not 0.0 < rel < 1.0:
        raise PktcharError(f"`reliability` must be between 0 and 1 (e.g. 0.99999), got {reliability}")
    return rel


def _on_link(
    pk: Packets, link: float | None, budget: float, avg_wire: float | None
) -> tuple[float | None, bool | None, float | None]:
    """On an Ethernet ``link``: a frame's serialization time, whether the flow fits (each frame within the
    budget, the average wire rate within the link) and the frames a second it carries; all None without."""
    if not link:
        return None, None, None
    ser = pk.wire_bytes * 8 / link
    fits = ser <= budget + 1e-12 and (avg_wire is None or avg_wire <= link)
    return ser, fits, (link / (pk.wire_bytes * 8)) if pk.wire_bytes else None


def requirements(
    payload: int,
    *,
    latency: float | None = None,
    fps: float | None = None,
    transport: Transport | None = None,
    link: float | None = None,
    carrier: Carrier | None = None,
    reliability: float | None = None,
) -> Requirements:
    """Requirements of a flow of ``payload`` bytes a frame. Give ``latency`` (s), ``fps``, or both.

    ``link`` (bit/s) is an Ethernet link; ``carrier`` a radio profile or link (``radio.carrier``);
    ``reliability`` in (0, 1), default :data:`DEFAULT_RELIABILITY`."""
    rel = _checked_reliability(latency, fps, link, reliability)
    if carrier is None and link is not None:
        from .radio import carrier as make_carrier

        carrier = make_carrier(link=link)
    budget = latency if latency is not None else 1.0 / float(fps)  # type: ignore[arg-type]
    pk = packetize(payload, transport)
    avg_p = payload * 8 * fps if fps else None
    avg_w = pk.wire_bytes * 8 * fps if fps else None
    ser, fits_link, max_fps = _on_link(pk, link, budget, avg_w)
    req = Requirements(
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
        max_fps=max_fps,
        fits_link=fits_link,
        size_class=size_class(payload),
        reliability=rel,
        reliability_source=RELIABILITY_SOURCE if reliability is None else "the reliability given",
        carrier=carrier,
    )
    needed = req.needed(carrier.layer) if carrier is not None else None
    fits = fit_5qi(pk.ip_bytes, budget, fps, per=req.per, carrier=carrier, needed=needed)
    return replace(req, fits=fits)
