"""A small, strict pcap reader and the packet facts ``compare`` needs.

Reads classic libpcap files (microsecond or nanosecond, either byte order) of
Ethernet (linktype 1) captures, as tcpdump writes them; parses Ethernet, IPv4,
IPv6, TCP and UDP headers. A truncated or malformed file raises
:class:`PcapError` saying where, with the packets read before it available
(``PcapError.packets``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import PktcharError

MAGICS = {
    0xA1B2C3D4: ("<", 1e-6),
    0xD4C3B2A1: (">", 1e-6),
    0xA1B23C4D: ("<", 1e-9),
    0x4D3CB2A1: (">", 1e-9),
}
LINKTYPE_ETHERNET = 1
# tshark's "-z plen,tree" buckets of frame length
PLEN_EDGES = [0, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 1 << 31]
PLEN_LABELS = [
    "0-19",
    "20-39",
    "40-79",
    "80-159",
    "160-319",
    "320-639",
    "640-1279",
    "1280-2559",
    "2560-5119",
    "5120 and greater",
]


class PcapError(PktcharError):
    def __init__(self, msg: str, packets: list[Packet] | None = None) -> None:
        super().__init__(msg)
        self.packets = packets or []


@dataclass(frozen=True)
class Packet:
    ts: float  # seconds
    frame_len: int  # original length on the wire as captured (Ethernet header included, no FCS)
    src: str
    dst: str
    proto: str  # "tcp", "udp", "arp", "other"
    sport: int
    dport: int
    payload: int  # transport payload bytes
    ip_len: int
    flags: int = 0  # TCP flags
    seq: int = 0


def plen_bucket(frame_len: int) -> int:
    for i in range(len(PLEN_EDGES) - 1):
        if PLEN_EDGES[i] <= frame_len < PLEN_EDGES[i + 1]:
            return i
    return len(PLEN_LABELS) - 1


def read(path: str | Path) -> list[Packet]:
    return list(iter_packets(path))


def iter_packets(path: str | Path) -> Iterator[Packet]:
    p = Path(path)
    if not p.is_file():
        raise PcapError(f"{p}: no such file")
    got: list[Packet] = []
    with p.open("rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise PcapError(f"{p}: not a pcap file (only {len(head)} bytes, a pcap header needs 24)")
        magic = struct.unpack("<I", head[:4])[0]
        if magic not in MAGICS:
            if head[:4] == b"\x0a\x0d\x0d\x0a":
                raise PcapError(
                    f"{p}: pcapng is not supported; convert with `tcpdump -r {p.name} -w out.pcap`"
                )
            raise PcapError(f"{p}: not a pcap file (magic {head[:4].hex()})")
        endian, unit = MAGICS[magic]
        _, _, _, _, _snap, linktype = struct.unpack(endian + "HHiIII", head[4:])
        if linktype != LINKTYPE_ETHERNET:
            raise PcapError(f"{p}: link type {linktype} is not Ethernet (1)")
        rec = struct.Struct(endian + "IIII")
        n = 0
        while True:
            rh = f.read(16)
            if not rh:
                return
            if len(rh) < 16:
                raise PcapError(
                    f"{p}: truncated: record header of packet {n + 1} cut after {len(rh)} bytes "
                    f"({n} packets read)",
                    got,
                )
            sec, frac, incl, orig = rec.unpack(rh)
            if incl > 262144 or incl > orig:
                raise PcapError(f"{p}: malformed: packet {n + 1} claims {incl} captured bytes of {orig}", got)
            data = f.read(incl)
            if len(data) < incl:
                raise PcapError(
                    f"{p}: truncated: packet {n + 1} has {len(data)} of {incl} bytes ({n} packets read)", got
                )
            n += 1
            pkt = _parse(sec + frac * unit, orig, data)
            got.append(pkt)
            yield pkt


def _parse(ts: float, orig: int, d: bytes) -> Packet:
    if len(d) < 14:
        return Packet(ts, orig, "", "", "other", 0, 0, 0, 0)
    etype = struct.unpack("!H", d[12:14])[0]
    off = 14
    if etype == 0x8100 and len(d) >= 18:  # VLAN tag
        etype = struct.unpack("!H", d[16:18])[0]
        off = 18
    if etype == 0x0806:
        return Packet(ts, orig, "", "", "arp", 0, 0, 0, 0)
    if etype == 0x0800 and len(d) >= off + 20:
        ihl = (d[off] & 0x0F) * 4
        ip_len = struct.unpack("!H", d[off + 2 : off + 4])[0]
        proto = d[off + 9]
        src = ".".join(map(str, d[off + 12 : off + 16]))
        dst = ".".join(map(str, d[off + 16 : off + 20]))
        t = off + ihl
        body = ip_len - ihl
    elif etype == 0x86DD and len(d) >= off + 40:
        ip_len = 40 + struct.unpack("!H", d[off + 4 : off + 6])[0]
        proto = d[off + 6]
        src = d[off + 8 : off + 24].hex()
        dst = d[off + 24 : off + 40].hex()
        t = off + 40
        body = ip_len - 40
    else:
        return Packet(ts, orig, "", "", "other", 0, 0, 0, 0)
    if proto == 6 and len(d) >= t + 20:
        sport, dport, seq = struct.unpack("!HHI", d[t : t + 8])
        doff = (d[t + 12] >> 4) * 4
        return Packet(ts, orig, src, dst, "tcp", sport, dport, max(0, body - doff), ip_len, d[t + 13], seq)
    if proto == 17 and len(d) >= t + 8:
        sport, dport = struct.unpack("!HH", d[t : t + 4])
        return Packet(ts, orig, src, dst, "udp", sport, dport, max(0, body - 8), ip_len)
    return Packet(ts, orig, src, dst, "other", 0, 0, 0, ip_len)
