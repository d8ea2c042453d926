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

    devices: list[tuple[str, Group, list[int]]] = []
    for g in groups:
        pk = packetize(g.payload, t)
        lens = [ip + ETH_HEADER for ip, n in pk.sizes for _ in range(n)]
        for k in range(g.count):
            devices.append((f"{g.name}{k}" if g.count > 1 or len(groups) > 1 else g.name, g, lens))
    n = len(devices)
    edge = TokenBucket(edge_rate, bucket_for(edge_rate))
    ups = [TokenBucket(g.uplink, bucket_for(g.uplink)) for _, g, _ in devices]
    slot = [(d / n) / g.fps if stagger else 0.0 for d, (_, g, _) in enumerate(devices)]
    heap: list[tuple[float, int, int, int, int]] = []  # (time, kind 0=send 1=arrive, device, frame, length)
    for d in range(n):
        heapq.heappush(heap, (slot[d], 0, d, 0, 0))
    sent: dict[tuple[int, int], float] = {}
    done: dict[tuple[int, int], float] = {}
    wait: dict[tuple[int, int], float] = {}
    left: dict[tuple[int, int], int] = {}
    while heap:
        now, kind, d, f, length = heapq.heappop(heap)
        _, g, lens = devices[d]
        if kind == 0:
            sent[(d, f)] = now
            left[(d, f)] = len(lens)
            for ln in lens:
                heapq.heappush(heap, (ups[d].send(now, ln), 1, d, f, ln))
            continue
        dep = edge.send(now, length)
        wait[(d, f)] = wait.get((d, f), 0.0) + dep - now
        left[(d, f)] -= 1
        if left[(d, f)] == 0:
            done[(d, f)] = dep
            if f + 1 < frames:
                heapq.heappush(heap, (max(dep, slot[d] + (f + 1) / g.fps), 0, d, f + 1, 0))
    offered = sum(sum(lens) * 8 * g.fps for _, g, lens in devices)
    out = FleetPrediction(edge_rate, offered, offered / edge_rate, offered > edge_rate, budget_s=budget_s,
                          edge_bucket_bytes=edge.bucket)  # fmt: skip
    out.aggregate_bps = aggregate_goodput(
        [[done[(d, f)] for f in range(frames)] for d in range(n)], [g.payload for _, g, _ in devices]
    )
    for d, (name, g, lens) in enumerate(devices):
        lat = [done[(d, f)] - sent[(d, f)] for f in range(frames)]
        late_by = [done[(d, f)] - (slot[d] + f / g.fps) for f in range(frames)]
        k0 = frames // 3  # after the start-up
        steady, steady_late = lat[k0:] or lat, late_by[k0:] or late_by
        span = done[(d, frames - 1)] - sent[(d, 0)]
        budget = budget_s if budget_s is not None else 1 / g.fps
        out.devices.append(
            DevicePrediction(
                device=name,
                group=g.name,
                frame_bytes=sum(lens),
                offered_bps=sum(lens) * 8 * g.fps,
                goodput_bps=g.payload * 8 * (frames - 1) / (done[(d, frames - 1)] - done[(d, 0)])
                if frames > 1 and done[(d, frames - 1)] > done[(d, 0)] else g.payload * 8 / span,
                latency_mean_s=sum(steady) / len(steady),
                latency_p50_s=percentile(steady, 50),
                latency_p99_s=percentile(steady, 99),
                late_fraction=sum(1 for x in steady_late if x > budget) / len(steady_late),
                queueing_mean_s=sum(wait[(d, f)] for f in range(frames)) / (frames * len(lens)),
                bucket_bytes=ups[d].bucket,
            )
        )  # fmt: skip
    return out


def saturation_n(payload: int, fps: float, edge_rate: float, transport: Transport | None = None) -> int:
    """The smallest fleet of identical devices whose offered load exceeds the edge link."""
    fb = packetize(payload, transport or Transport()).frame_bytes
    return math.floor(edge_rate / (fb * 8 * fps)) + 1
