"""Packetization: an application payload as the packets and bytes a link carries.

    payload ─► application frame (FRAME_HEADER bytes + payload)
            ─► TCP segments of at most MSS = MTU - IP header - TCP header (20 + options)
               or UDP datagrams, each with its own fragment header (application-level
               fragmentation: no IP fragments)
            ─► IP packets ─► Ethernet frames

Sizes at three layers, as tools report them:

* ``ip``: IP packet length (IPv4 20 B or IPv6 40 B header included);
* ``frame``: what libpcap captures on Ethernet/veth and what Linux's tc counts
  against a rate: IP packet + 14 B Ethernet header (no FCS);
* ``wire``: what occupies a physical link: frame + 4 B FCS, padded to the 64 B
  minimum, + 8 B preamble + 12 B inter-frame gap.

The application frame header (24 B) and the UDP fragment header (12 B) are the
testbed's own, defined with every other header size in :mod:`pktchar.core.wire`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import PktcharError
from .wire import (  # noqa: F401 - re-exported: the sizes are defined once, in wire
    ETH_FCS,
    ETH_HEADER,
    ETH_MIN_FRAME,
    ETH_PREAMBLE_IFG,
    FRAGMENT_HEADER,
    FRAME_HEADER,
    IP_HEADER,
    TCP_HEADER,
    TCP_TIMESTAMPS,
    UDP_HEADER,
)


@dataclass(frozen=True)
class Transport:
    proto: str = "tcp"  # tcp | udp
    mtu: int = 1500
    ip: int = 4
    tcp_options: int = TCP_TIMESTAMPS
    app_header: int = FRAME_HEADER

    def __post_init__(self) -> None:
        if self.proto not in ("tcp", "udp"):
            raise PktcharError(f"unknown protocol {self.proto!r}: use tcp or udp")
        if self.ip not in IP_HEADER:
            raise PktcharError(f"IP version must be 4 or 6, not {self.ip}")
        if self.tcp_options < 0 or self.tcp_options > 40 or self.tcp_options % 4:
            raise PktcharError(f"TCP options take 0..40 bytes in steps of 4, not {self.tcp_options}")
        if self.max_chunk < 1:
            raise PktcharError(
                f"MTU {self.mtu} is too small for the headers: {self.mtu - self.max_chunk} bytes of IPv{self.ip} "
                f"+ {self.proto.upper()} headers{' + fragment header' if self.proto == 'udp' else ''} leave no payload"
            )

    @property
    def transport_header(self) -> int:
        return TCP_HEADER + self.tcp_options if self.proto == "tcp" else UDP_HEADER

    @property
    def headers(self) -> int:
        """Bytes of IP + transport (+ fragment) header on every packet."""
        frag = FRAGMENT_HEADER if self.proto == "udp" else 0
        return IP_HEADER[self.ip] + self.transport_header + frag

    @property
    def max_chunk(self) -> int:
        """Application bytes one packet carries: the MSS for TCP, the fragment size for UDP."""
        return self.mtu - self.headers

    @property
    def mss(self) -> int:
        return self.max_chunk

    def describe(self) -> str:
        extra = f", MSS {self.mss}" if self.proto == "tcp" else f", {self.max_chunk} B a fragment"
        return f"{self.proto.upper()}/IPv{self.ip}, MTU {self.mtu}{extra}"


def frame_size(ip_len: int) -> int:
    """Captured Ethernet frame (no FCS) for an IP packet."""
    return ip_len + ETH_HEADER


def wire_size(ip_len: int) -> int:
    """Bytes of link time for an IP packet: frame + FCS, padded to 64, + preamble and gap."""
    return max(ip_len + ETH_HEADER + ETH_FCS, ETH_MIN_FRAME) + ETH_PREAMBLE_IFG


@dataclass(frozen=True)
class Packets:
    """The packets one application frame of ``payload`` bytes becomes."""

    payload: int
    transport: Transport
    count: int
    app_bytes: int  # payload + frame header
    sizes: tuple[tuple[int, int], ...]  # (IP packet length, how many)
    ip_bytes: int
    frame_bytes: int
    wire_bytes: int
    acks: int  # TCP: pure ACKs the receiver sends back (one per two segments, delayed ACK)

    @property
    def overhead(self) -> float:
        """Wire bytes beyond the payload, as a fraction of the wire bytes."""
        return (self.wire_bytes - self.payload) / self.wire_bytes if self.wire_bytes else 0.0

    @property
    def frame_overhead(self) -> float:
        return (self.frame_bytes - self.payload) / self.frame_bytes if self.frame_bytes else 0.0

    @property
    def largest(self) -> int:
        return max(s for s, _ in self.sizes)

    @property
    def smallest(self) -> int:
        return min(s for s, _ in self.sizes)

    def histogram(self, edges: list[int]) -> list[int]:
        """IP packet sizes counted into [edges[i], edges[i+1]) bins, tshark plen style."""
        counts = [0] * (len(edges) - 1)
        for size, n in self.sizes:
            for i in range(len(edges) - 1):
                if edges[i] <= size < edges[i + 1]:
                    counts[i] += n
                    break
        return counts

    def to_dict(self) -> dict[str, object]:
        return {
            "payload": self.payload,
            "transport": self.transport.describe(),
            "proto": self.transport.proto,
            "mtu": self.transport.mtu,
            "ip_version": self.transport.ip,
            "packets": self.count,
            "app_bytes": self.app_bytes,
            "sizes": [{"ip_len": s, "count": n} for s, n in self.sizes],
            "ip_bytes": self.ip_bytes,
            "frame_bytes": self.frame_bytes,
            "wire_bytes": self.wire_bytes,
            "overhead": self.overhead,
            "acks": self.acks,
        }


def packetize(payload: int, transport: Transport | None = None) -> Packets:
    """Packets of one application frame carrying ``payload`` bytes."""
    t = transport or Transport()
    if payload < 0:
        raise PktcharError(f"payload must not be negative, got {payload}")
    app = payload + t.app_header
    chunk = t.max_chunk
    full, rest = divmod(app, chunk)
    count = full + (1 if rest else 0)
    hdr = t.headers
    sizes = []
    if full:
        sizes.append((chunk + hdr, full))
    if rest:
        sizes.append((rest + hdr, 1))
    ip_bytes = sum(s * n for s, n in sizes)
    frame_bytes = sum(frame_size(s) * n for s, n in sizes)
    wire_bytes = sum(wire_size(s) * n for s, n in sizes)
    acks = math.ceil(count / 2) if t.proto == "tcp" else 0
    return Packets(payload, t, count, app, tuple(sizes), ip_bytes, frame_bytes, wire_bytes, acks)
