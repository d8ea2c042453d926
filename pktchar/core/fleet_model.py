"""Many devices to one edge server: the fleet's prediction from packetization and a queueing model.

The architecture is Fig. 1 of "Distributed Architecture and Packet Characteristics for Real-Time
Distributed Learning Services" (Yonsei Univ.): many devices, each running a local DNN, send encoded
intermediate data to one edge server. On the testbed every device has its own shaped uplink (tbf) and
all of them share one shaped link into the edge: the bottleneck.

The model is a packet-level simulation of both token buckets, as the kernel's sch_tbf drains them: each
device's frames become the Ethernet frames :func:`pktchar.core.packets.packetize` predicts, leave its uplink
at its rate (the first packets on the bucket's tokens), and join one FIFO queue at the edge link that
drains at the edge rate. Every tbf has the bucket the testbed gives it, the one rule
:func:`pktchar.core.shaping.default_bucket` applied to its own rate: each device's uplink its own, the
edge link its own. A frame's latency is its send time to the moment its last packet is through the edge
link. Standard library only (shaping is too).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import PktcharError
from .packets import Transport, packetize
from .qos import Requirements, requirements
from .radio import carrier
from .shaping import default_bucket
from .wire import ETH_HEADER


@dataclass(frozen=True)
class Group:
    """Devices alike: ``count`` of them sending ``payload`` bytes a frame at ``fps`` over ``uplink``."""

    name: str
    count: int
    payload: int
    fps: float
    uplink: float  # bit/s
    model: str = ""
    split: str = ""
    res: str = ""
    coding: str = ""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise PktcharError(f"group {self.name}: count must be at least 1, got {self.count}")
        if self.fps <= 0:
            raise PktcharError(f"group {self.name}: fps must be positive, got {self.fps:g}")
        if self.uplink <= 0:
            raise PktcharError(f"group {self.name}: the uplink rate must be positive")


@dataclass(frozen=True)
class DevicePrediction:
    device: str
    group: str
    frame_bytes: int  # Ethernet frame bytes of one application frame (what tbf counts)
    offered_bps: float  # frame_bytes x 8 x fps
    goodput_bps: float  # payload bits delivered a second in the steady state
    latency_mean_s: float
    latency_p50_s: float
    latency_p99_s: float
    late_fraction: float  # frames whose latency exceeds the budget
    queueing_mean_s: float  # time spent waiting at the edge link
    bucket_bytes: int = 0  # its uplink's tbf bucket


@dataclass
class FleetPrediction:
    edge_rate: float
    offered_bps: float
    utilisation: float  # offered / edge rate
    saturated: bool
    devices: list[DevicePrediction] = field(default_factory=list)
    budget_s: float | None = None
    edge_bucket_bytes: int = 0  # the edge link's tbf bucket

    aggregate_bps: float | None = None  # aggregate_goodput() of the simulated completions

    @property
    def goodput_bps(self) -> float:
        return (
            self.aggregate_bps if self.aggregate_bps is not None else sum(d.goodput_bps for d in self.devices)
        )

    @property
    def jain(self) -> float:
        return jain([d.goodput_bps for d in self.devices])


def aggregate_goodput(done: Sequence[Sequence[float]], payload: Sequence[int]) -> float | None:
    """Payload bits a second the edge receives from the whole fleet, over the window every device is in
    its steady state: from the latest of the devices' first-third frames to the earliest last frame,
    counting every frame completed inside it (the same definition for predicted and measured)."""
    if not done or any(len(d) < 3 for d in done):
        return None
    t1 = max(d[len(d) // 3] for d in done)
    t2 = min(d[-1] for d in done)
    if t2 <= t1:
        return None
    bits = sum(8 * p * sum(1 for x in d if t1 < x <= t2) for d, p in zip(done, payload, strict=True))
    return bits / (t2 - t1)


def jain(xs: Sequence[float]) -> float:
    """Jain's fairness index: (sum x)^2 / (n sum x^2); 1 when all equal."""
    if not xs or not any(xs):
        return 1.0
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    s = sorted(xs)
    if not s:
        return math.nan
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class TokenBucket:
    """A tbf as the kernel's sch_tbf drains it: FIFO; a packet leaves once it is first in the queue and
    the bucket holds its length in tokens; tokens refill at ``rate`` up to ``bucket`` bytes (full at 0)."""

    def __init__(self, rate: float, bucket: int) -> None:
        self.rate, self.bucket = rate, bucket
        self.tokens, self.t_tokens, self.free = float(bucket), 0.0, 0.0

    def send(self, t_arrival: float, length: int) -> float:
        """Departure time of a packet that arrives at ``t_arrival`` (arrivals in time order)."""
        t = max(t_arrival, self.free)
        self.tokens = min(self.bucket, self.tokens + (t - self.t_tokens) * self.rate / 8)
        self.t_tokens = t
        if self.tokens < length:
            t += (length - self.tokens) * 8 / self.rate
            self.tokens, self.t_tokens = float(length), t
        self.tokens -= length
        self.free = t
        return t


_Key = tuple[int, int]  # (device, frame)


@dataclass
class _Sim:
    """What the simulation records: per (device, frame) its send time, completion, and edge wait."""

    sent: dict[_Key, float] = field(default_factory=dict)
    done: dict[_Key, float] = field(default_factory=dict)
    wait: dict[_Key, float] = field(default_factory=dict)


def _devices(groups: Sequence[Group], t: Transport) -> list[tuple[str, Group, list[int]]]:
    """Every device: its name, its group, the Ethernet frame lengths of one application frame."""
    devices: list[tuple[str, Group, list[int]]] = []
    for g in groups:
        pk = packetize(g.payload, t)
        lens = [ip + ETH_HEADER for ip, n in pk.sizes for _ in range(n)]
        for k in range(g.count):
            devices.append((f"{g.name}{k}" if g.count > 1 or len(groups) > 1 else g.name, g, lens))
    return devices


def _simulate(
    devices: Sequence[tuple[str, Group, list[int]]],
    ups: Sequence[TokenBucket],
    edge: TokenBucket,
    slot: Sequence[float],
    frames: int,
) -> _Sim:
    """The closed loop: each frame's packets through the device's uplink, then the edge link, in time order."""
    sim = _Sim()
    left: dict[_Key, int] = {}
    heap: list[tuple[float, int, int, int, int]] = []  # (time, kind 0=send 1=arrive, device, frame, length)
    for d in range(len(devices)):
        heapq.heappush(heap, (slot[d], 0, d, 0, 0))
    while heap:
        now, kind, d, f, length = heapq.heappop(heap)
        _, g, lens = devices[d]
        if kind == 0:
            sim.sent[(d, f)] = now
            left[(d, f)] = len(lens)
            for ln in lens:
                heapq.heappush(heap, (ups[d].send(now, ln), 1, d, f, ln))
            continue
        dep = edge.send(now, length)
        sim.wait[(d, f)] = sim.wait.get((d, f), 0.0) + dep - now
        left[(d, f)] -= 1
        if left[(d, f)] == 0:
            sim.done[(d, f)] = dep
            if f + 1 < frames:
                heapq.heappush(heap, (max(dep, slot[d] + (f + 1) / g.fps), 0, d, f + 1, 0))
    return sim


def _device_goodput(payload: int, done: Sequence[float], span: float) -> float:
    """Payload bits a second between the first and the last completion (over the whole span for one)."""
    if len(done) > 1 and done[-1] > done[0]:
        return payload * 8 * (len(done) - 1) / (done[-1] - done[0])
    return payload * 8 / span


def _device_prediction(
    sim: _Sim, d: int, device: tuple[str, Group, list[int]], slot: float, frames: int, budget_s: float | None,
    bucket_bytes: int,
) -> DevicePrediction:  # fmt: skip
    name, g, lens = device
    done = [sim.done[(d, f)] for f in range(frames)]
    lat = [done[f] - sim.sent[(d, f)] for f in range(frames)]
    late_by = [done[f] - (slot + f / g.fps) for f in range(frames)]
    k0 = frames // 3  # after the start-up
    steady, steady_late = lat[k0:] or lat, late_by[k0:] or late_by
    budget = budget_s if budget_s is not None else 1 / g.fps
    return DevicePrediction(
        device=name,
        group=g.name,
        frame_bytes=sum(lens),
        offered_bps=sum(lens) * 8 * g.fps,
        goodput_bps=_device_goodput(g.payload, done, done[-1] - sim.sent[(d, 0)]),
        latency_mean_s=sum(steady) / len(steady),
        latency_p50_s=percentile(steady, 50),
        latency_p99_s=percentile(steady, 99),
        late_fraction=sum(1 for x in steady_late if x > budget) / len(steady_late),
        queueing_mean_s=sum(sim.wait[(d, f)] for f in range(frames)) / (frames * len(lens)),
        bucket_bytes=bucket_bytes,
    )


def predict(
    groups: Sequence[Group],
    edge_rate: float,
    *,
    transport: Transport | None = None,
    stagger: bool = False,
    frames: int = 30,
    budget_s: float | None = None,
    bucket: int | None = None,
) -> FleetPrediction:
    """Per-device goodput, latency and lateness over ``frames`` frames of every device.

    Closed loop, as the replay sender runs: a device sends frame i at its slot (i / fps, offset by
    d / (N fps) with ``stagger``) or, if the edge has not yet answered frame i - 1, when it does.
    Latency is send -> last packet through the edge link; a frame is late when it is through more
    than the budget (1 / fps unless given) after its slot. Each tbf's bucket is ``default_bucket`` of its
    own rate (every device's uplink, the edge link), as the testbed sets them; ``bucket`` (bytes) sets
    all of them instead, as ``Link.burst`` does."""
    t = transport or Transport()
    if edge_rate <= 0:
        raise PktcharError("the edge link rate must be positive")

    def bucket_for(rate: float) -> int:
        return bucket or default_bucket(rate, t.mtu)

    devices = _devices(groups, t)
    n = len(devices)
    edge = TokenBucket(edge_rate, bucket_for(edge_rate))
    ups = [TokenBucket(g.uplink, bucket_for(g.uplink)) for _, g, _ in devices]
    slot = [(d / n) / g.fps if stagger else 0.0 for d, (_, g, _) in enumerate(devices)]
    sim = _simulate(devices, ups, edge, slot, frames)
    offered = sum(sum(lens) * 8 * g.fps for _, g, lens in devices)
    out = FleetPrediction(edge_rate, offered, offered / edge_rate, offered > edge_rate, budget_s=budget_s,
                          edge_bucket_bytes=edge.bucket)  # fmt: skip
    out.aggregate_bps = aggregate_goodput(
        [[sim.done[(d, f)] for f in range(frames)] for d in range(n)], [g.payload for _, g, _ in devices]
    )
    out.devices = [
        _device_prediction(sim, d, dev, slot[d], frames, budget_s, ups[d].bucket)
        for d, dev in enumerate(devices)
    ]
    return out


def saturation_n(payload: int, fps: float, edge_rate: float, transport: Transport | None = None) -> int:
    """The smallest fleet of identical devices whose offered load exceeds the edge link."""
    fb = packetize(payload, transport or Transport()).frame_bytes
    return math.floor(edge_rate / (fb * 8 * fps)) + 1


# ----------------------------------------------------------------------------------------------
# A sweep of fleet sizes: where the edge link saturates, where a frame first misses its budget

SATURATION_SHARE = 0.97  # a measured fleet saturates the edge link at this share of what the link carries


@dataclass(frozen=True)
class SweepPoint:
    """One fleet size of a sweep, as numbers: the prediction's offered load (Ethernet frame bits and payload
    bits a second) against the edge rate, the measured aggregate goodput, and the worst lateness each way."""

    devices: int
    edge_rate: float  # bit/s
    offered_bps: float  # Ethernet frame bits a second, predicted
    payload_offered_bps: float  # payload bits a second offered
    goodput_measured_bps: float | None  # aggregate payload bits a second, measured
    late_predicted: float  # the worst device's predicted late fraction
    late_measured: float | None  # the worst device's measured late fraction (None: not measured)


@dataclass(frozen=True)
class SweepSummary:
    """Where a sweep 1..``last`` saturates the edge link and where a frame first misses its budget,
    predicted and measured (None: not within the sweep)."""

    last: int
    predicted_saturation: int
    measured_saturation: int | None
    predicted_miss: int | None
    measured_miss: int | None


def edge_payload_capacity(edge_rate: float, offered_bps: float, payload_offered_bps: float) -> float:
    """Payload bits a second the edge link carries when full: its rate times the payload's share of the
    Ethernet frame bytes offered."""
    return edge_rate * payload_offered_bps / offered_bps if offered_bps > 0 else 0.0


def measured_saturated(p: SweepPoint) -> bool:
    """The measured goodput reaches SATURATION_SHARE of what the edge link carries."""
    capacity = edge_payload_capacity(p.edge_rate, p.offered_bps, p.payload_offered_bps)
    return p.goodput_measured_bps is not None and p.goodput_measured_bps >= SATURATION_SHARE * capacity


def first_miss(points: Sequence[SweepPoint], measured: bool = False) -> int | None:
    """The first fleet size where a frame misses its budget, predicted (or ``measured``)."""
    for p in points:
        late = p.late_measured if measured else p.late_predicted
        if (late or 0.0) > 0:
            return p.devices
    return None


def sweep_summary(points: Sequence[SweepPoint], predicted_saturation: int) -> SweepSummary:
    """The sweep's summary: ``predicted_saturation`` (:func:`saturation_n`: the offered load passes the
    edge rate) beside the first size whose measured goodput fills the link, and the first late frame
    each way."""
    if not points:
        raise PktcharError("a sweep needs at least one fleet size")
    return SweepSummary(
        last=points[-1].devices,
        predicted_saturation=predicted_saturation,
        measured_saturation=next((p.devices for p in points if measured_saturated(p)), None),
        predicted_miss=first_miss(points),
        measured_miss=first_miss(points, measured=True),
    )


# ----------------------------------------------------------------------------------------------
# The QoS of a fleet's flows


@dataclass(frozen=True)
class FlowDemand:
    """A group's device flow: ``payload`` bytes a frame at ``fps`` from each of ``count`` devices."""

    name: str
    count: int
    payload: int
    fps: float
    uplink_bps: float  # the device's own uplink


def aggregate_payload(flows: Sequence[FlowDemand]) -> tuple[int, float]:
    """The fleet as one flow into the edge: the payload bytes every device together sends within one frame
    interval of the fastest group, and that frame rate."""
    if not flows:
        raise PktcharError("a fleet needs at least one group")
    total_bps = sum(f.count * f.payload * 8 * f.fps for f in flows)
    fps = max(f.fps for f in flows)
    return int(-(-total_bps // (8 * fps))), fps


def fleet_requirements(
    flows: Sequence[FlowDemand],
    edge_rate: float,
    *,
    latency: float | None,
    radio: str | None,
    direction: str,
    reliability: float | None,
    transport: Transport | None = None,
) -> list[Requirements]:
    """The requirements of each group's device flow over its own uplink (or ``radio``), then of the
    aggregate into the edge link (or ``radio``): one :class:`pktchar.core.qos.Requirements` a group, the
    aggregate last."""
    t = transport or Transport()
    out = []
    for f in flows:
        via = carrier(radio, None if radio else float(f.uplink_bps), direction)
        out.append(requirements(f.payload, latency=latency, fps=f.fps, transport=t, carrier=via,
                                reliability=reliability))  # fmt: skip
    payload, fps = aggregate_payload(flows)
    via = carrier(radio, None if radio else edge_rate, direction)
    out.append(
        requirements(payload, latency=latency, fps=fps, transport=t, carrier=via, reliability=reliability)
    )
    return out
