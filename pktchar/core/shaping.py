"""The tbf token bucket as Linux's ``sch_tbf`` fills and drains it, and the per-frame times it implies.

What the kernel does (net/sched/sch_tbf.c, ``tbf_dequeue``; no peak rate, as the testbed sets it up):

* tokens are kept in *time* units (ns): the bucket is ``buffer = burst * 8 / rate`` (iproute2 passes
  the burst in bytes as ``TCA_TBF_BURST`` and the kernel converts it with ``psched_l2t_ns``);
* a packet costs ``len * 8 / rate`` where ``len`` is ``qdisc_pkt_len(skb)`` = ``skb->len``: on a veth,
  the Ethernet frame without FCS (IP packet + 14 B), what libpcap reports as the frame length;
* at each dequeue attempt at time ``now``: ``toks = min(tokens + (now - t_c), buffer)``; if
  ``toks >= cost`` the head packet leaves, ``tokens = toks - cost`` and ``t_c = now``; otherwise the
  watchdog fires exactly when the deficit is made up;
* a packet longer than the bucket never leaves (tbf drops it on enqueue): :class:`ShapingError`.

So with a full bucket of ``B`` bytes and a frame whose packets are all queued at time 0, packet ``k``
(cumulative length ``S_k`` bytes, itself included) leaves at ``max(0, (S_k - B) * 8 / rate)``: the first
packets ride on the bucket back to back (two full 1,514 B packets with the testbed's 3,028 B bucket up to
242 Mbit/s, nine with its 13,626 B at 1 Gbit/s), every later byte at the rate. The bucket is full again
``B * 8 / rate`` after the link goes idle. :func:`default_bucket` is the one rule for the bucket at a rate:
the testbed's tbf, compare (for a prediction that names none) and the fleet model all take it.

Times are seconds relative to the frame's first packet entering the qdisc; the veth itself adds no
serialization, so a capture on the receiving side sees the same spacing (plus a near-constant delay).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import PktcharError
from .wire import ETH_HEADER


class ShapingError(PktcharError):
    pass


# How late the qdisc watchdog (an hrtimer) and the softirq that dequeues may run without losing rate:
# tokens beyond the bucket are thrown away, so a bucket shorter than that latency caps the rate below
# the one set. tc-tbf(8) asks for a burst of at least rate / HZ for the same reason (tick timers). On
# the 2-core test VM at 1 Gbit/s a 3,028 B bucket (24 us) gave 720-800 Mbit/s, a 13,626 B one (109 us)
# 967-1004 Mbit/s (benchmarks/bench_capture.py); 100 us keeps the 2-packet bucket up to 242 Mbit/s.
LATENCY_BUDGET_S = 100e-6


def default_bucket(rate_bps: float, mtu: int = 1500, latency_s: float = LATENCY_BUDGET_S) -> int:
    """The testbed's tbf bucket at ``rate_bps``: whole full-size frames (``mtu`` + 14 B), at least two
    (one frame's bucket cannot send a frame while the previous is in flight) and enough for
    ``latency_s`` at the rate: 3,028 B up to 242 Mbit/s at MTU 1,500, 13,626 B (9 frames) at 1 Gbit/s."""
    frame = mtu + ETH_HEADER
    need = rate_bps * latency_s / 8
    return max(2, math.ceil(need / frame)) * frame


def _check(rate_bps: float, bucket: int) -> None:
    if not rate_bps > 0:
        raise ShapingError(f"the shaped rate must be positive, got {rate_bps:g} bit/s")
    if bucket < 1:
        raise ShapingError(f"the tbf bucket must be at least 1 byte, got {bucket}")


def frame_lengths(ip_sizes: Iterable[Sequence[int]]) -> list[int]:
    """Ethernet frame lengths (what tbf and libpcap count) from ``[(ip_bytes, count), ...]``, the
    ``sizes`` of a :func:`pktchar.core.packets.packetize` result or a prediction's frame."""
    out: list[int] = []
    for size, count in ip_sizes:
        out += [int(size) + ETH_HEADER] * int(count)
    return out


def departures(
    lengths: Sequence[int],
    rate_bps: float,
    bucket: int,
    start_tokens: float | None = None,
    arrivals: Sequence[float] | None = None,
) -> list[float]:
    """Departure time (s) of each packet from tbf, in order.

    ``lengths``: Ethernet frame lengths (B, no FCS). ``bucket``: tbf burst (B). ``start_tokens``: bytes
    of credit at time 0 (None: a full bucket, as after an idle gap of at least ``bucket * 8 / rate``).
    ``arrivals``: when each packet enters the queue (s, non-decreasing; None: all at 0, a frame handed
    to the socket at once)."""
    return _run(lengths, rate_bps, bucket, start_tokens, arrivals)[0]


def _run(
    lengths: Sequence[int],
    rate_bps: float,
    bucket: int,
    start_tokens: float | None = None,
    arrivals: Sequence[float] | None = None,
) -> tuple[list[float], float]:
    """:func:`departures`, and the bytes of credit left in the bucket after the last one."""
    _check(rate_bps, bucket)
    if arrivals is not None and len(arrivals) != len(lengths):
        raise ShapingError(f"{len(arrivals)} arrival times for {len(lengths)} packets")
    byte_s = 8.0 / rate_bps  # seconds a byte of tokens takes to accrue
    cap = bucket * byte_s  # the bucket in time units, as the kernel keeps it
    tokens = cap if start_tokens is None else min(max(0.0, float(start_tokens)), bucket) * byte_s
    t_c = 0.0  # time the tokens were last brought up to date
    out: list[float] = []
    prev = 0.0
    for k, length in enumerate(lengths):
        if length > bucket:
            raise ShapingError(f"a {length} B packet does not fit the {bucket} B tbf bucket: tbf drops it")
        cost = length * byte_s
        ready = max(prev, arrivals[k] if arrivals is not None else 0.0)  # head of the queue from then
        toks = min(tokens + (ready - t_c), cap)
        short = cost - toks  # the kernel counts integer ns; a float remainder of ~1e-19 s is not a wait
        t = ready if short <= cost * 1e-9 else ready + short  # the watchdog fires when the deficit is paid
        toks = min(tokens + (t - t_c), cap)
        tokens, t_c = max(0.0, toks - cost), t
        out.append(t)
        prev = t
    return out, tokens * rate_bps / 8  # departures, and the bytes of credit left after the last one


def tokens_after(
    lengths: Sequence[int], rate_bps: float, bucket: int, idle_s: float, start_tokens: float | None = None
) -> float:
    """Bytes of credit in the bucket ``idle_s`` seconds after a frame's last packet left (all queued at
    0): the ``start_tokens`` of a next frame that follows after that gap."""
    _, left = _run(lengths, rate_bps, bucket, start_tokens)
    return min(float(bucket), left + max(0.0, idle_s) * rate_bps / 8)


def transfer_time(
    lengths: Sequence[int], rate_bps: float, bucket: int, start_tokens: float | None = None
) -> float:
    """Seconds from a frame handed to the socket (all packets queued at once) to its last packet leaving
    tbf: ``max(0, (sum(lengths) - B) * 8 / rate)`` with a full bucket ``B``. With ``rate_bps`` the
    nominal (set) rate this is the shaper's prediction; with the calibrated rate, what the testbed's
    end hosts can deliver."""
    d = departures(lengths, rate_bps, bucket, start_tokens)
    return d[-1] if d else 0.0


def span(lengths: Sequence[int], rate_bps: float, bucket: int, start_tokens: float | None = None) -> float:
    """Seconds from a frame's first to its last packet at a capture point after tbf (the receiving
    side): the departure spacing, which the veth keeps."""
    d = departures(lengths, rate_bps, bucket, start_tokens)
    return d[-1] - d[0] if d else 0.0


def span_bytes(lengths: Sequence[int]) -> int:
    """Frame bytes a span times: every packet after the first (the span starts when the first is in)."""
    return sum(lengths[1:])


def bucket_packets(lengths: Sequence[int], bucket: int, start_tokens: float | None = None) -> int:
    """How many packets leave back to back at time 0 on the bucket's credit."""
    credit = bucket if start_tokens is None else min(start_tokens, bucket)
    n = 0
    for length in lengths:
        if length > credit:
            break
        credit -= length
        n += 1
    return n


@dataclass(frozen=True)
class FrameTiming:
    """One frame of a sequence through tbf: its credit at the start, departures (s, from the first
    packet entering the queue) and the credit left after its last packet (B)."""

    start_tokens: float
    departures: list[float]
    left: float

    @property
    def span(self) -> float:
        return self.departures[-1] - self.departures[0] if self.departures else 0.0

    @property
    def back_to_back(self) -> int:
        """Packets that left at the frame's first instant, on the bucket's credit."""
        return sum(1 for d in self.departures if d == self.departures[0])


def sequence(
    frames: Sequence[Sequence[int]],
    rate_bps: float,
    bucket: int,
    idle_s: Sequence[float | None],
    between: Sequence[int] | None = None,
) -> list[FrameTiming]:
    """Frames sent one after another, each after an idle gap: the bucket refills only while the link is
    idle, so a frame that follows its predecessor within ``bucket * 8 / rate`` starts on part of a bucket
    (at 80 Mbit/s with 3,028 B that is 303 us, and the testbed's answer-then-send loop often takes less).

    ``idle_s[k]``: seconds from frame ``k - 1``'s last packet leaving to frame ``k``'s first (at a capture
    point after tbf: the capture's gap; None: long enough for a full bucket; ``idle_s[0]`` is the gap
    before the first frame). ``between[k]``: bytes of other packets the same qdisc sent in that gap (the
    sender's pure ACKs), which spend credit too."""
    if len(idle_s) != len(frames):
        raise ShapingError(f"{len(idle_s)} idle gaps for {len(frames)} frames")
    out: list[FrameTiming] = []
    left: float = bucket
    for k, lengths in enumerate(frames):
        gap = idle_s[k]
        credit = float(bucket) if gap is None else min(float(bucket), left + max(0.0, gap) * rate_bps / 8)
        credit = max(0.0, credit - (between[k] if between else 0))
        d, left = _run(lengths, rate_bps, bucket, credit)
        out.append(FrameTiming(credit, d, left))
    return out
