"""Captures written byte by byte with struct (no scapy objects: fast enough for a million packets).

Packets are ``(ts_seconds, frame_bytes)`` with Ethernet frames; :func:`sll` and :func:`sll2` turn one
into a Linux cooked capture record. Writers: classic pcap (µs or ns, either byte order) and pcapng.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from pktchar.core.wire import ANSWER, FRAME
from pktchar.testbed.schema import FlowPrediction

DEV, EDGE, PORT, SPORT = "10.213.0.1", "10.213.0.2", 5201, 40000
MAC_DEV, MAC_EDGE = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
TS_OPTS = b"\x01\x01\x08\x0a" + struct.pack("!II", 1, 2)  # NOP NOP timestamps: 12 B, as Linux sends


def _csum(b: bytes) -> int:
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ipv4_tcp(
    src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes
) -> bytes:
    """Ethernet + IPv4 (20 B) + TCP with timestamp options (32 B) + payload."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 8 << 4, flags, 65535, 0, 0) + TS_OPTS
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        0,
        0x4000,
        64,
        6,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    macs = (MAC_EDGE + MAC_DEV) if src == DEV else (MAC_DEV + MAC_EDGE)
    return macs + b"\x08\x00" + ip + tcp + payload


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        28 + len(payload),
        0,
        0x4000,
        64,
        17,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return (
        MAC_EDGE
        + MAC_DEV
        + b"\x08\x00"
        + ip
        + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
        + payload
    )


def tcp_flow(
    frames: Iterable[bytes | int],
    mss: int = 1448,
    rate: float = 80e6,
    handshake: bool = False,
    retransmit: int | None = None,
    seq0: int = 1000,
    answers: bool = False,
) -> Iterator[tuple[float, bytes]]:
    """The device's stream of application frames (each ``bytes``, or an int: a frame header declaring that
    many payload bytes, then zeros) cut
    into MSS segments, paced at ``rate``, one ACK back after each frame; ``retransmit=k`` repeats the
    k-th data segment (1-based) right after it; ``answers=True``: the ACK after a frame carries the
    edge's 20 B answer to it."""
    seq, ack, ts, k = seq0, 5000, 1.0, 0
    if handshake:
        yield ts, ipv4_tcp(DEV, EDGE, SPORT, PORT, seq - 1, 0, 0x02, b"")
        yield ts + 1e-5, ipv4_tcp(EDGE, DEV, PORT, SPORT, ack - 1, seq, 0x12, b"")
        yield ts + 2e-5, ipv4_tcp(DEV, EDGE, SPORT, PORT, seq, ack, 0x10, b"")
        ts += 1e-3
    for i, fr in enumerate(frames):
        data = memoryview(FRAME.pack(i, 0, 0, fr, 0) + bytes(fr) if isinstance(fr, int) else fr)
        for o in range(0, len(data), mss):
            chunk = data[o : o + mss]
            pkt = ipv4_tcp(DEV, EDGE, SPORT, PORT, seq, ack, 0x18, bytes(chunk))
            ts += len(pkt) * 8 / rate  # stamped when its last bit is in
            k += 1
            yield ts, pkt
            if retransmit == k:
                yield ts + 1e-4, pkt
            seq = (seq + len(chunk)) & 0xFFFFFFFF
        answer = ANSWER.pack(i, 10 + i, 20 + i) if answers else b""
        yield ts, ipv4_tcp(EDGE, DEV, PORT, SPORT, ack, seq, 0x18 if answers else 0x10, answer)
        ack += len(answer)
        ts += 0.01


def sll(frame: bytes) -> bytes:
    """An Ethernet frame as a Linux cooked (SLL, 16 B header) record: packet type 0 (to us), ARPHRD 1."""
    return (
        struct.pack("!HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", struct.unpack("!H", frame[12:14])[0])
        + frame[14:]
    )


def sll2(frame: bytes, ifindex: int = 3) -> bytes:
    """An Ethernet frame as an SLL2 record (20 B header): protocol, reserved, interface index, ARPHRD 1,
    packet type 0, address length 6, the source MAC padded to 8."""
    return (
        struct.pack(
            "!HHIHBB8s", struct.unpack("!H", frame[12:14])[0], 0, ifindex, 1, 0, 6, frame[6:12] + b"\0\0"
        )
        + frame[14:]
    )


def write_pcap(
    path: str | Path,
    pkts: Iterable[tuple[float, bytes]],
    linktype: int = 1,
    nano: bool = False,
    endian: str = "<",
    snaplen: int = 262144,
) -> None:
    unit = 10**9 if nano else 10**6
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    rec = struct.Struct(endian + "IIII")
    with open(path, "wb") as f:
        f.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        for ts, b in pkts:
            t = round(ts * unit)
            cut = b[:snaplen]
            f.write(rec.pack(t // unit, t % unit, len(cut), len(b)) + cut)


def write_pcapng(
    path: str | Path,
    pkts: Iterable[tuple[float, bytes]],
    linktype: int = 1,
    tsresol: int = 6,
    endian: str = "<",
) -> None:
    """One section, one interface (``if_tsresol`` = 10^-tsresol s), enhanced packet blocks."""
    e = endian
    unit = 10**tsresol
    with open(path, "wb") as f:
        f.write(struct.pack(e + "IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
        opt = struct.pack(e + "HHB3x", 9, 1, tsresol) + struct.pack(e + "HH", 0, 0)
        f.write(
            struct.pack(e + "IIHHI", 1, 20 + len(opt), linktype, 0, 0)
            + opt
            + struct.pack(e + "I", 20 + len(opt))
        )
        for ts, b in pkts:
            t = round(ts * unit)
            pad = b + b"\0" * (-len(b) % 4)
            blen = 32 + len(pad)
            f.write(struct.pack(e + "IIIIIII", 6, blen, 0, t >> 32, t & 0xFFFFFFFF, len(b), len(b)) + pad)
            f.write(struct.pack(e + "I", blen))


def prediction(payloads: list[int], dev: str, edge: str, port: int, rate: float = 80e6) -> FlowPrediction:
    """The flow prediction replay makes for frames of ``payloads`` (TCP, MTU 1500)."""
    from pktchar.core.packets import Transport
    from pktchar.testbed.netns import Link
    from pktchar.testbed.runner import predict_frames

    link = Link(rate)
    frames = predict_frames(payloads, Transport("tcp", 1500), link)
    flow = FlowPrediction("device -> edge", "tcp", dev, edge, port, 1500, 4, 24, rate, link.bucket, frames)
    return flow


def flat_v1(flow: FlowPrediction) -> dict:
    """``flow`` in the flat form replay wrote before the scenario core (a version 1 prediction: no
    ``version``, the addresses as ``device_ip``/``edge_ip``, the bucket as ``burst_bytes``)."""
    return {
        "kind": "pktchar-prediction",
        "proto": flow.proto,
        "port": flow.port,
        "device_ip": flow.src_ip,
        "edge_ip": flow.dst_ip,
        "mtu": flow.mtu,
        "ip_version": flow.ip_version,
        "app_header": flow.app_header,
        "rate_bps": flow.rate_bps,
        "calibrated_rate_bps": flow.calibrated_rate_bps,
        "burst_bytes": flow.bucket_bytes,
        "frames": [f.to_dict() for f in flow.frames],
    }
