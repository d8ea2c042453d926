"""The scapy capture backend, run inside a namespace as ``python -m pktchar.testbed.sniff``.

scapy's :class:`~scapy.sendrecv.AsyncSniffer` reads the interface through scapy's libpcap backend
(``conf.use_pcap = True``: the same libpcap, ring buffer and BPF path tcpdump uses), on a handle opened
here so the snap length and kernel buffer size can be set (scapy's own listen socket fixes both). No
packet is dissected (the socket hands on a :class:`Record` of bytes, not a scapy Packet, and a session
drains every packet ready at each wake-up): each one is written as a classic pcap record (microsecond
timestamps, Ethernet link type, the original length), the format tcpdump writes.

Protocol with the parent (:class:`pktchar.testbed.capture.Capture`): ``listening on IFACE`` on stderr once
the handle is active; on SIGINT or SIGTERM it stops, reads what is still buffered, and prints one JSON line
on stdout: ``captured`` (records written), ``received_by_filter`` and ``dropped_by_kernel``
(libpcap's ``pcap_stats``: ``ps_recv`` and ``ps_drop``, the counters tcpdump prints), ``dropped_by_interface``
(``ps_ifdrop``). Imports no torch (only the standard library and scapy).
"""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys
import threading
from ctypes import POINTER, byref, c_ubyte, create_string_buffer
from typing import Any, BinaryIO

PCAP_HEADER = struct.Struct("<IHHiIII")
RECORD = struct.Struct("<IIII")
LINKTYPE_ETHERNET = 1


def _open(iface: str, snaplen: int, buffer_bytes: int, timeout_ms: int) -> Any:
    """A scapy libpcap handle on ``iface`` with our snap length, buffer size and read timeout."""
    from scapy.config import conf

    conf.use_pcap = True
    from scapy.arch import libpcap
    from scapy.libs import winpcapy as w

    if not hasattr(libpcap, "_PcapWrapper_libpcap"):
        raise OSError("scapy found no libpcap (install libpcap0.8)")

    class Handle(libpcap._PcapWrapper_libpcap):  # type: ignore[name-defined,misc]
        """scapy's libpcap wrapper, opened with a buffer size, returning the original length too."""

        def __init__(self) -> None:  # noqa: D107 - sets what the parent's __init__ would
            self.errbuf = create_string_buffer(w.PCAP_ERRBUF_SIZE)
            self.iface = iface.encode()
            self.pcap = w.pcap_create(self.iface, self.errbuf)
            if not self.pcap:
                raise OSError(self.errbuf.value.decode(errors="replace"))
            for call, arg in (
                (w.pcap_set_snaplen, snaplen),
                (w.pcap_set_promisc, 0),
                (w.pcap_set_timeout, timeout_ms),
                (w.pcap_set_buffer_size, buffer_bytes),
            ):
                if call(self.pcap, arg) != 0:
                    raise OSError(f"{call.__name__}({arg}) failed")
            status = w.pcap_activate(self.pcap)
            if status < 0:
                raise OSError(f"{iface}: {w.pcap_geterr(self.pcap).decode(errors='replace')}")
            self.dtl = -1
            self.remaining = True
            self.header = POINTER(w.pcap_pkthdr)()
            self.pkt_data = POINTER(c_ubyte)()
            self.bpf_program = w.bpf_program()

        def next_raw(self) -> tuple[int, int, int, bytes] | None:
            c = w.pcap_next_ex(self.pcap, byref(self.header), byref(self.pkt_data))
            if c <= 0:
                return None
            h = self.header.contents
            return h.ts.tv_sec, h.ts.tv_usec, h.len, bytes(self.pkt_data[: h.caplen])

        def stats(self) -> tuple[int, int, int]:
            st = w.pcap_stat()
            if w.pcap_stats(self.pcap, byref(st)) != 0:
                return -1, -1, -1
            return st.ps_recv, st.ps_drop, st.ps_ifdrop

    return Handle()


class Record:
    """One captured packet as bytes: what the sniffer hands on instead of a dissected scapy Packet."""

    __slots__ = ("sec", "usec", "wirelen", "data", "sniffed_on")

    def __init__(self, sec: int, usec: int, wirelen: int, data: bytes) -> None:
        self.sec, self.usec, self.wirelen, self.data = sec, usec, wirelen, data
        self.sniffed_on: Any = None


def _socket(handle: Any) -> Any:
    """A scapy listen socket over ``handle`` whose packets are raw bytes (no dissection)."""
    from scapy.arch.libpcap import _L2libpcapSocket
    from scapy.config import conf

    class RawPcapSocket(_L2libpcapSocket):  # type: ignore[misc]
        desc = "libpcap, raw bytes"

        def __init__(self) -> None:
            self.pcap_fd = handle
            self.iface = handle.iface.decode()
            self.type = 0
            self.LL = conf.raw_layer
            self.lvl = 2

        def recv(self, x: int = 0, **kw: Any) -> Record | None:  # noqa: ARG002 - scapy's signature
            got = self.pcap_fd.next_raw()
            return None if got is None else Record(*got)

    return RawPcapSocket()


def _session() -> Any:
    """A sniffing session that hands on every packet libpcap has ready at each wake-up (the handle is
    non-blocking), so the sniffer's select runs once a block of packets, not once a packet."""
    from scapy.sessions import DefaultSession

    class Drain(DefaultSession):  # type: ignore[misc]
        def recv(self, sock: Any) -> Any:
            while (p := sock.recv()) is not None:
                yield p

    return Drain


class Writer:
    """Classic pcap (microsecond, Ethernet), records written from raw bytes."""

    def __init__(self, f: BinaryIO, snaplen: int) -> None:
        self.f = f
        f.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))
        self.count = 0

    def write(self, sec: int, usec: int, wirelen: int, data: bytes) -> None:
        self.f.write(RECORD.pack(sec, usec, len(data), wirelen))
        self.f.write(data)
        self.count += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pktchar.testbed.sniff")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--snaplen", type=int, default=262144)
    ap.add_argument("--buffer", type=int, default=128 << 20, help="kernel ring buffer, bytes")
    ap.add_argument("--timeout-ms", type=int, default=50, help="libpcap read timeout (buffered mode)")
    a = ap.parse_args(argv)
    from scapy.sendrecv import AsyncSniffer

    try:
        handle = _open(a.iface, a.snaplen, a.buffer, a.timeout_ms)
    except OSError as e:
        print(json.dumps({"error": f"scapy cannot capture on {a.iface}: {e}"}), file=sys.stderr, flush=True)
        return 2
    sock = _socket(handle)
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    with open(a.out, "wb", buffering=1 << 20) as f:
        w = Writer(f, a.snaplen)

        def keep(p: Record) -> None:
            w.write(p.sec, p.usec, p.wirelen, p.data)

        handle.setnonblock(True)
        sniffer = AsyncSniffer(opened_socket=sock, prn=keep, store=False, session=_session())
        sniffer.start()
        print(f"listening on {a.iface} (scapy {_version()}, libpcap)", file=sys.stderr, flush=True)
        stop.wait()
        sniffer.stop(join=True)
        while (got := handle.next_raw()) is not None:  # what the sniffer left in the buffer
            w.write(*got)
        recv, drop, ifdrop = handle.stats()
    print(
        json.dumps(
            {
                "captured": w.count,
                "received_by_filter": recv,
                "dropped_by_kernel": drop,
                "dropped_by_interface": ifdrop,
            }
        ),
        flush=True,
    )
    return 0


def _version() -> str:
    import scapy

    return str(scapy.__version__)


if __name__ == "__main__":
    sys.exit(main())
