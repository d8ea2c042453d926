"""A strict, fast capture reader: every packet's header fields as numpy columns.

Reads classic libpcap files (microsecond or nanosecond timestamps, either byte order) and pcapng
(Wireshark's default; section, interface and enhanced/obsolete packet blocks, any ``if_tsresol``), of
link types Ethernet (1), Linux cooked capture SLL (113) and SLL2 (276, what ``tcpdump -i any``
writes). The records are walked once over the file in memory (no per-packet Python objects); then the
first :data:`GATHER` bytes of every packet are gathered into a 2-D ``uint8`` array and Ethernet/SLL/
SLL2, IPv4/IPv6 and TCP/UDP headers are decoded column by column with numpy. scapy's own readers
(``RawPcapReader``, ``RawPcapNgReader``) are the reference the tests check this one against; they
yield a Python tuple per record, 1.2-1.6 s (pcap) and 2.4 s (pcapng) per million records before any
header is decoded, about what this whole reader takes (benchmarks/bench_pcap.py).

A truncated file raises :class:`PcapError` saying at which byte; with ``partial=True`` the packets
before the truncation are returned and :attr:`Columns.truncated_at` says where it stopped. A malformed
file or another link type is one line too.
"""

from __future__ import annotations

import ipaddress
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import PktcharError
from ..core.wire import ETH_HEADER

MAGICS = {
    0xA1B2C3D4: ("<", 1e-6),
    0xD4C3B2A1: (">", 1e-6),
    0xA1B23C4D: ("<", 1e-9),
    0x4D3CB2A1: (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPES = {
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_LINUX_SLL: "Linux cooked capture (SLL)",
    LINKTYPE_LINUX_SLL2: "Linux cooked capture v2 (SLL2)",
}
# names of other link types one meets, for the error (tcpdump.org/linktypes.html)
OTHER_LINKTYPES = {
    0: "BSD loopback (NULL)",
    9: "PPP",
    12: "raw IP",
    101: "raw IP",
    105: "IEEE 802.11",
    108: "OpenBSD loopback",
    127: "IEEE 802.11 radiotap",
    147: "user-defined (DLT_USER0)",
    195: "IEEE 802.15.4",
    220: "USB (Linux mmapped)",
    228: "raw IPv4",
    229: "raw IPv6",
    249: "netlink",
    253: "netlink (NFLOG)",
}
MAX_SNAPLEN = 262144  # tcpdump's largest
GATHER = 96  # bytes of each packet decoded: SLL2 20 + IPv4 with options 60 + TCP 16 fit
TCP, UDP = 6, 17
_CHUNK = 1 << 17  # rows gathered at a time (bounds the index arrays' memory)

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
    """A capture pktchar cannot read, as one line; ``columns`` hold the packets read before a truncation."""

    def __init__(self, msg: str, columns: Columns | None = None) -> None:
        super().__init__(msg)
        self.columns = columns

    @property
    def packets(self) -> list[Packet]:
        return self.columns.packets() if self.columns is not None else []


@dataclass(frozen=True)
class Packet:
    """One packet's facts (for small uses and tests; :func:`read_columns` is the fast path)."""

    ts: float  # seconds
    frame_len: int  # Ethernet frame length, no FCS (cooked captures: IP length + 14)
    src: str
    dst: str
    proto: str  # "tcp", "udp", "other"
    sport: int
    dport: int
    payload: int  # transport payload bytes
    ip_len: int
    flags: int = 0  # TCP flags
    seq: int = 0


@dataclass
class Columns:
    """Every packet of a capture as numpy columns (row i = packet i, in capture order).

    ``src``/``dst`` are 16-byte strings (``S16``): IPv6 addresses, IPv4 ones mapped (``::ffff:a.b.c.d``);
    compare them with :func:`addr_key`. ``proto`` is 6 (TCP) or 17 (UDP) when that header was captured,
    else 0; ``sport``/``dport``/``payload`` are 0 then, ``flags``/``seq`` are 0 for all but TCP.
    """

    path: str
    linktype: np.ndarray  # uint16, per packet (pcapng interfaces may differ)
    ts: np.ndarray  # float64 seconds since the epoch
    cap_len: np.ndarray  # int64 bytes captured
    orig_len: np.ndarray  # int64 bytes on the link as the capture saw them
    frame_len: np.ndarray  # int64 Ethernet frame (no FCS): orig_len, or for cooked captures IP length + 14
    ip_version: np.ndarray  # uint8 4, 6 or 0
    src: np.ndarray  # S16
    dst: np.ndarray  # S16
    proto: np.ndarray  # uint8 6, 17 or 0
    sport: np.ndarray  # int64
    dport: np.ndarray  # int64
    ip_len: np.ndarray  # int64 IP total length (IPv6: 40 + payload length), 0 if not IP
    payload: np.ndarray  # int64 transport payload bytes (from the IP length, not the snap length)
    flags: np.ndarray  # uint8 TCP flags
    seq: np.ndarray  # uint32 TCP sequence number
    fmt: str = "pcap"  # "pcap" or "pcapng"
    truncated_at: int | None = None  # partial=True: the byte where the incomplete record starts
    truncation: str = ""  # what was cut there

    def __len__(self) -> int:
        return len(self.ts)

    def packets(self) -> list[Packet]:
        """The rows as :class:`Packet` objects (slow: for tests and small captures)."""
        names = {TCP: "tcp", UDP: "udp"}
        return [
            Packet(
                float(self.ts[i]),
                int(self.frame_len[i]),
                addr_str(self.src[i]) if self.ip_version[i] else "",
                addr_str(self.dst[i]) if self.ip_version[i] else "",
                names.get(int(self.proto[i]), "other"),
                int(self.sport[i]),
                int(self.dport[i]),
                int(self.payload[i]),
                int(self.ip_len[i]),
                int(self.flags[i]),
                int(self.seq[i]),
            )
            for i in range(len(self))
        ]


def addr_key(ip: str) -> bytes:
    """The 16-byte form :attr:`Columns.src`/``dst`` hold for an address string."""
    a = ipaddress.ip_address(ip)
    return (b"\0" * 10 + b"\xff\xff" + a.packed) if a.version == 4 else a.packed


def addr_str(key: bytes) -> str:
    a = ipaddress.IPv6Address(bytes(key).ljust(16, b"\0"))
    return str(a.ipv4_mapped or a)


def plen_bucket(frame_len: int) -> int:
    for i in range(len(PLEN_EDGES) - 1):
        if PLEN_EDGES[i] <= frame_len < PLEN_EDGES[i + 1]:
            return i
    return len(PLEN_LABELS) - 1


def plen_counts(frame_len: np.ndarray) -> np.ndarray:
    """Packets per tshark plen bucket (:data:`PLEN_LABELS`)."""
    idx = np.searchsorted(np.array(PLEN_EDGES[1:-1]), frame_len, side="right")
    return np.bincount(idx, minlength=len(PLEN_LABELS))


def read(path: str | Path) -> list[Packet]:
    """Every packet as a :class:`Packet` (small captures; compare uses :func:`read_columns`)."""
    return read_columns(path).packets()


def read_columns(path: str | Path, partial: bool = False) -> Columns:
    """Read a pcap or pcapng capture into numpy columns; see the module docstring for what is accepted."""
    p = Path(path)
    if not p.is_file():
        raise PcapError(f"{p}: no such file")
    size = p.stat().st_size
    buf = np.zeros(size + GATHER, np.uint8)  # zero padding: the gather may read past the last packet
    with p.open("rb") as f:
        got = f.readinto(memoryview(buf)[:size])
    if got != size:
        raise PcapError(f"{p}: could not read the file ({got} of {size} bytes)")
    if size >= 4 and struct.unpack_from("<I", buf, 0)[0] == PCAPNG_SHB:
        rec = _walk_pcapng(p, buf, size)
    else:
        rec = _walk_pcap(p, buf, size)
    if rec.truncated_at is not None and not partial:
        table = _decode(p, buf, rec)
        raise PcapError(f"{p}: {rec.truncation}", table)
    return _decode(p, buf, rec)


@dataclass
class _Records:
    fmt: str
    data_off: np.ndarray  # int64 where each packet's bytes start in the file
    cap_len: np.ndarray
    orig_len: np.ndarray
    ts: np.ndarray
    linktype: np.ndarray
    truncated_at: int | None = None
    truncation: str = ""


def _linktype_error(p: Path, lt: int) -> PcapError:
    name = OTHER_LINKTYPES.get(lt, "")
    ok = ", ".join(f"{v} ({k})" for k, v in LINKTYPES.items())
    return PcapError(f"{p}: link type {lt}{f' ({name})' if name else ''} is not supported (only {ok})")


def _gather(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes from each start offset, as an (n, width) uint8 array (``buf`` must reach
    ``width`` bytes past the last start). Loads 8 bytes at a time through an unaligned uint64 view."""
    words = -(-width // 8)
    win = np.ndarray((len(buf) - 7,), np.uint64, buffer=buf, strides=(1,))
    out = np.empty((len(starts), words), np.uint64)
    for i in range(0, len(starts), _CHUNK):
        s = starts[i : i + _CHUNK]
        for j in range(words):
            out[i : i + len(s), j] = win[s + 8 * j]
    return out.view(np.uint8)[:, :width]


def _cols(h: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """Columns ``start[i] .. start[i] + width`` of each row i; a slice per distinct start (few)."""
    vals = np.unique(start)
    if len(vals) == 1:
        v = int(vals[0])
        return h[:, v : v + width]
    out = np.zeros((len(h), width), np.uint8)
    for v in vals.tolist():
        m = start == v
        out[m] = h[m, v : v + width]
    return out


def _walk_pcap(p: Path, buf: np.ndarray, size: int) -> _Records:
    if size < 24:
        if size >= 4 and struct.unpack_from("<I", buf, 0)[0] in MAGICS:
            raise PcapError(f"{p}: truncated: the pcap file header is cut at byte {size} of 24")
        raise PcapError(f"{p}: not a pcap file (only {size} bytes, a pcap header needs 24)")
    magic = struct.unpack_from("<I", buf, 0)[0]
    if magic not in MAGICS:
        raise PcapError(f"{p}: not a pcap or pcapng file (magic {bytes(buf[:4]).hex()})")
    endian, unit = MAGICS[magic]
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0xFFFF  # upper bits: FCS length flags
    if linktype not in LINKTYPES:
        raise _linktype_error(p, linktype)
    incl_at = struct.Struct(endian + "I").unpack_from
    mv = memoryview(buf)
    offs = array("q")
    add = offs.append
    off = 24
    while off + 16 <= size:  # the one per-packet loop: keep it lean
        nxt = off + 16 + incl_at(mv, off + 8)[0]
        if nxt > size or nxt - off > 16 + MAX_SNAPLEN:
            break
        add(off)
        off = nxt
    n = len(offs)
    truncated_at, why = None, ""
    if off < size:
        if off + 16 > size:
            truncated_at = off
            why = f"record header of packet {n + 1} cut after {size - off} of 16 bytes"
        else:
            incl = incl_at(mv, off + 8)[0]
            if incl > MAX_SNAPLEN:
                raise PcapError(
                    f"{p}: malformed: packet {n + 1} (byte {off}) claims {incl} captured bytes "
                    f"(at most {MAX_SNAPLEN})"
                )
            truncated_at = off
            why = f"packet {n + 1} has {size - off - 16} of {incl} bytes"
    starts = np.frombuffer(offs, np.int64) if n else np.zeros(0, np.int64)
    h = _gather(buf, starts, 16).view(endian + "u4")
    sec, frac, incl_a, orig = (h[:, k].astype(np.int64) for k in range(4))
    bad = np.flatnonzero(incl_a > orig)
    if len(bad):
        i = int(bad[0])
        raise PcapError(f"{p}: malformed: packet {i + 1} claims {incl_a[i]} captured bytes of {orig[i]}")
    return _Records(
        "pcap",
        starts + 16,
        incl_a,
        orig,
        sec + frac * unit,
        np.full(n, linktype, np.uint16),
        truncated_at,
        _truncation(truncated_at, why, n),
    )


def _truncation(at: int | None, why: str, n: int) -> str:
    if at is None:
        return ""
    return f"truncated at byte {at}: {why} ({n} packets before it; `partial` analyses them)"


def _walk_pcapng(p: Path, buf: np.ndarray, size: int) -> _Records:
    """Section header, interface description, enhanced and obsolete packet blocks; others skipped."""
    return _PcapNg(p, buf, size).walk()


class _PcapNg:
    """One walk over a pcapng file: each block is handed to the handler of its type in :attr:`blocktypes`
    (as scapy's ``RawPcapNgReader.blocktypes``); a type without one is skipped. Packet blocks only note
    where they start: their fields are read for every packet at once, with numpy, in :meth:`records`."""

    def __init__(self, p: Path, buf: np.ndarray, size: int) -> None:
        self.p, self.buf, self.size, self.mv = p, buf, size, memoryview(buf)
        self.endian = "<"
        self.u32 = struct.Struct("<I").unpack_from
        self.ifaces: list[tuple[int, int]] = []  # (link type, units per second) per interface of the section
        self.all_ifaces: list[tuple[int, int]] = []  # every section's interfaces, in file order
        self.offs = array("q")  # where each packet block (enhanced 6 or obsolete 2: same layout) starts
        self.ifs = array("q")  # its interface, as an index into all_ifaces
        self.base = 0  # index in all_ifaces of this section's interface 0
        self.n = 0
        self.truncated_at: int | None = None
        self.why = ""

    def walk(self) -> _Records:
        mv, size, handlers = self.mv, self.size, self.blocktypes
        off = 0
        while off < size:  # the one per-packet loop: keep it lean
            if off + 12 > size:
                self.truncated_at, self.why = off, f"block header cut after {size - off} of 12 bytes"
                break
            btype = self.u32(mv, off)[0]
            if btype == PCAPNG_SHB:  # before its length: the section's byte order is read from it
                self.section(off)
            blen = self.u32(mv, off + 4)[0]
            if blen < 12 or blen % 4:
                raise PcapError(
                    f"{self.p}: malformed pcapng: block at byte {off} claims a length of {blen} bytes"
                )
            if off + blen > size:
                what = f"packet {self.n + 1}'s block" if btype in (2, 6) else f"block of type {btype}"
                self.truncated_at, self.why = off, f"{what} has {size - off} of {blen} bytes"
                break
            handler = handlers.get(btype)
            if handler is not None:
                handler(self, off, blen)
            off += blen
        return self.records()

    def section(self, off: int) -> None:
        """A section header: its byte order; its interfaces are numbered from 0 again."""
        bom = struct.unpack_from("<I", self.mv, off + 8)[0]
        if bom == PCAPNG_BOM:
            new = "<"
        elif bom == 0x4D3C2B1A:
            new = ">"
        else:
            raise PcapError(f"{self.p}: malformed pcapng: bad byte-order magic {bom:#x} at byte {off + 8}")
        if self.n and new != self.endian:
            raise PcapError(f"{self.p}: pcapng sections of both byte orders are not supported")
        self.endian = new
        self.u32 = struct.Struct(new + "I").unpack_from
        self.base = len(self.all_ifaces)
        self.ifaces = []

    def interface(self, off: int, blen: int) -> None:
        """An interface description: its link type and timestamp units (option 9, ``if_tsresol``)."""
        lt = struct.unpack_from(self.endian + "H", self.mv, off + 8)[0]
        ups = 10**6
        o, end = off + 16, off + blen - 4
        while o + 4 <= end:
            code, olen = struct.unpack_from(self.endian + "HH", self.mv, o)
            if code == 0:
                break
            if code == 9 and olen >= 1:
                v = int(self.buf[o + 4])
                ups = 2 ** (v & 0x7F) if v & 0x80 else 10**v
            o += 4 + ((olen + 3) & ~3)
        self.ifaces.append((lt, ups))
        self.all_ifaces.append((lt, ups))

    def enhanced(self, off: int, blen: int) -> None:
        self.packet(off, self.u32(self.mv, off + 8)[0])

    def obsolete(self, off: int, blen: int) -> None:
        """The obsolete packet block: a 16-bit interface (and drop count), else the enhanced block's layout."""
        self.packet(off, struct.unpack_from(self.endian + "H", self.mv, off + 8)[0])

    def packet(self, off: int, iface: int) -> None:
        if iface >= len(self.ifaces):
            raise PcapError(
                f"{self.p}: malformed pcapng: packet {self.n + 1} names interface {iface} of {len(self.ifaces)}"
            )
        self.offs.append(off)
        self.ifs.append(self.base + iface)
        self.n += 1

    def simple(self, off: int, blen: int) -> None:
        raise PcapError(f"{self.p}: pcapng simple packet blocks (no timestamps) are not supported")

    blocktypes: dict[int, Callable[[_PcapNg, int, int], None]] = {
        1: interface,
        2: obsolete,
        3: simple,
        6: enhanced,
    }

    def records(self) -> _Records:
        """Every packet block's fields at once: length, interface, timestamp, captured and original length."""
        p, n = self.p, self.n
        starts = np.frombuffer(self.offs, np.int64) if n else np.zeros(0, np.int64)
        ifidx = np.frombuffer(self.ifs, np.int64) if n else np.zeros(0, np.int64)
        w = _gather(self.buf, starts + 4, 24).view(self.endian + "u4")  # length, iface, ts hi/lo, cap, orig
        blen_a = w[:, 0].astype(np.int64)
        hi, lo = w[:, 2].astype(np.uint64), w[:, 3].astype(np.uint64)
        cap, orig = w[:, 4].astype(np.int64), w[:, 5].astype(np.int64)
        lt_of = np.array([lt for lt, _ in self.all_ifaces] or [0], np.int64)
        ups_of = np.array([u for _, u in self.all_ifaces] or [1], np.uint64)
        linktype = lt_of[ifidx]
        for lt in np.unique(linktype):
            if int(lt) not in LINKTYPES:
                raise _linktype_error(p, int(lt))
        ups = ups_of[ifidx]
        t64 = (hi << np.uint64(32)) | lo
        ts = (t64 // ups).astype(np.float64) + (t64 % ups).astype(np.float64) / ups.astype(np.float64)
        bad = np.flatnonzero((cap > orig) | (cap > blen_a - 32) | (cap > MAX_SNAPLEN))
        if len(bad):
            i = int(bad[0])
            raise PcapError(
                f"{p}: malformed pcapng: packet {i + 1} claims {cap[i]} captured bytes of {orig[i]} "
                f"in a block of {blen_a[i]}"
            )
        return _Records(
            "pcapng",
            starts + 28,
            cap,
            orig,
            ts,
            linktype.astype(np.uint16),
            self.truncated_at,
            _truncation(self.truncated_at, self.why, n),
        )


def _be16(a: np.ndarray, col: int) -> np.ndarray:
    return (a[:, col].astype(np.int64) << 8) | a[:, col + 1]


COLUMNS = (
    "frame_len",
    "ip_version",
    "src",
    "dst",
    "proto",
    "sport",
    "dport",
    "ip_len",
    "payload",
    "flags",
    "seq",
)


def _decode(p: Path, buf: np.ndarray, rec: _Records) -> Columns:
    """Decode the headers chunk by chunk (bounded index arrays) and join the columns."""
    n = len(rec.data_off)
    parts = []
    for i in range(0, max(n, 1), _CHUNK):
        sl = slice(i, i + _CHUNK)
        h = _gather(buf, rec.data_off[sl], GATHER)
        parts.append(_decode_chunk(h, rec.linktype[sl], rec.cap_len[sl], rec.orig_len[sl]))
    cols = {k: np.concatenate([c[k] for c in parts]) for k in COLUMNS}
    return Columns(
        str(p),
        rec.linktype,
        rec.ts,
        rec.cap_len,
        rec.orig_len,
        **cols,
        fmt=rec.fmt,
        truncated_at=rec.truncated_at,
        truncation=rec.truncation,
    )


def _decode_chunk(h: np.ndarray, lt: np.ndarray, cap: np.ndarray, orig: np.ndarray) -> dict[str, np.ndarray]:
    n = len(h)
    etype = np.zeros(n, np.int64)
    l3 = np.full(n, 20, np.int64)  # rows of no known link layer get etype 0: masked out below
    eth = lt == LINKTYPE_ETHERNET
    if eth.any():
        e = _be16(h, 12)
        vlan = eth & ((e == 0x8100) | (e == 0x88A8))
        etype = np.where(eth, np.where(vlan, _be16(h, 16), e), etype)
        l3 = np.where(eth, np.where(vlan, 18, 14), l3)
    sll = lt == LINKTYPE_LINUX_SLL
    if sll.any():
        etype = np.where(sll, _be16(h, 14), etype)
        l3 = np.where(sll, 16, l3)
    sll2 = lt == LINKTYPE_LINUX_SLL2
    if sll2.any():
        etype = np.where(sll2, _be16(h, 0), etype)
        l3 = np.where(sll2, 20, l3)
    ip = _cols(h, l3, 40)  # the IP header's first 40 bytes (l3 <= 20: in GATHER)
    ver = ip[:, 0] >> 4
    v4 = (etype == 0x0800) & (ver == 4) & (cap >= l3 + 20)
    v6 = (etype == 0x86DD) & (ver == 6) & (cap >= l3 + 40)
    isip = v4 | v6
    ihl = np.where(v4, (ip[:, 0] & 0x0F).astype(np.int64) * 4, 40)
    ip_len = np.where(v4, _be16(ip, 2), np.where(v6, 40 + _be16(ip, 4), 0))
    nxt = np.where(v4, ip[:, 9], np.where(v6, ip[:, 6], 0))
    addr = np.zeros((n, 32), np.uint8)
    addr[v4, 10:12] = 0xFF
    addr[v4, 26:28] = 0xFF
    addr[v4, 12:16] = ip[v4, 12:16]
    addr[v4, 28:32] = ip[v4, 16:20]
    addr[v6, 0:16] = ip[v6, 8:24]
    addr[v6, 16:32] = ip[v6, 24:40]
    pairs = addr.view("S16")
    l4 = l3 + ihl
    t = _cols(h, np.minimum(l4, GATHER - 14), 14)  # TCP/UDP header to the flags
    tcp = isip & (nxt == TCP) & (cap >= l4 + 20) & (l4 + 14 <= GATHER)
    udp = isip & (nxt == UDP) & (cap >= l4 + 8)
    l4ok = tcp | udp
    body = ip_len - ihl
    doff = (t[:, 12] >> 4).astype(np.int64) * 4
    payload = np.where(tcp, body - doff, np.where(udp, body - 8, 0)).clip(0)
    seq = t[:, 4:8].copy().view(">u4")[:, 0]
    return {
        # a cooked capture has no Ethernet header: the frame it stands for is IP + 14 B
        "frame_len": np.where(eth, orig, np.where(isip, ip_len, orig - l3) + ETH_HEADER),
        "ip_version": np.where(v4, 4, np.where(v6, 6, 0)).astype(np.uint8),
        "src": pairs[:, 0].copy(),
        "dst": pairs[:, 1].copy(),
        "proto": np.where(tcp, TCP, np.where(udp, UDP, 0)).astype(np.uint8),
        "sport": np.where(l4ok, _be16(t, 0), 0),
        "dport": np.where(l4ok, _be16(t, 2), 0),
        "ip_len": ip_len,
        "payload": payload,
        "flags": np.where(tcp, t[:, 13], 0).astype(np.uint8),
        "seq": np.where(tcp, seq, 0).astype(np.uint32),
    }
