"""The capture reader across formats and link types, truncation with and without --partial, the
Wireshark dissector under real tshark. Captures are written byte by byte (tests/craft.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace

import pytest
from craft import (
    DEV,
    EDGE,
    PORT,
    flat_v1,
    ipv4_tcp,
    prediction,
    sll,
    sll2,
    tcp_flow,
    write_pcap,
    write_pcapng,
)
from scapy.utils import RawPcapNgReader, RawPcapReader

from pktchar.core import wire
from pktchar.core.errors import PktcharError
from pktchar.core.packets import Transport, packetize
from pktchar.testbed.compare import compare
from pktchar.testbed.dissector import lua_dissector
from pktchar.testbed.pcap import PcapError, addr_key, read_columns
from pktchar.testbed.schema import FlowPrediction

from conftest import run_cli

PAYLOADS = [100_000, 5_000]
# by hand: 100,024 B = 69 x 1448 + 112 -> 70 segments (69 x 1514 B frames + one of 112 + 66 = 178 B);
# 5,024 B = 3 x 1448 + 680 -> 4 segments (3 x 1514 + 746); one 66 B ACK back after each frame.
DATA_PACKETS = 74
WIRE = 69 * 1514 + 178 + 3 * 1514 + 746
ALL = DATA_PACKETS + 2


def _prediction(payloads: list[int]) -> FlowPrediction:
    return prediction(payloads, DEV, EDGE, PORT)


def _figures(path) -> dict:
    d = compare(path, _prediction(PAYLOADS)).to_dict()
    d.pop("pcap")
    return d


def _variants(tmp_path) -> dict:
    flow = list(tcp_flow(PAYLOADS))
    out = {}
    out["pcap-us-le"] = tmp_path / "a.pcap"
    write_pcap(out["pcap-us-le"], flow)
    out["pcap-ns-be"] = tmp_path / "b.pcap"
    write_pcap(out["pcap-ns-be"], flow, nano=True, endian=">")
    out["pcapng-us"] = tmp_path / "c.pcapng"
    write_pcapng(out["pcapng-us"], flow)
    out["pcapng-ns-be"] = tmp_path / "d.pcapng"
    write_pcapng(out["pcapng-ns-be"], flow, tsresol=9, endian=">")
    out["sll"] = tmp_path / "e.pcap"
    write_pcap(out["sll"], [(t, sll(b)) for t, b in flow], linktype=113)
    out["sll2"] = tmp_path / "f.pcap"
    write_pcap(out["sll2"], [(t, sll2(b)) for t, b in flow], linktype=276)
    out["sll2-pcapng"] = tmp_path / "g.pcapng"
    write_pcapng(out["sll2-pcapng"], [(t, sll2(b)) for t, b in flow], linktype=276)
    out["snap128"] = tmp_path / "h.pcap"  # what the testbed's tcpdump -s 128 writes
    write_pcap(out["snap128"], flow, snaplen=128)
    return out


def test_every_format_and_link_type_gives_the_same_figures(tmp_path):
    files = _variants(tmp_path)
    ref = _figures(files["pcap-us-le"])
    rows = {r["metric"]: r["measured"] for r in ref["rows"]}
    assert rows["packets (data direction)"] == DATA_PACKETS
    assert rows["bytes on the wire (data direction, Ethernet frames)"] == WIRE
    assert rows["payload bytes"] == 105_000
    assert ref["reverse_packets"] == 2 and ref["packets_analysed"] == ALL
    for name, f in files.items():
        got = _figures(f)
        # µs and ns stamps of the same instants differ by the µs rounding (1 µs in a 10 ms frame)
        for r, q in zip(got.pop("rows"), ref["rows"], strict=True):
            assert r["measured"] == pytest.approx(q["measured"], rel=2e-4), (name, r)
            if "goodput" not in r["metric"]:
                assert r["measured"] == q["measured"], (name, r)
        for fr, fq in zip(got.pop("frames"), ref["frames"], strict=True):
            assert fr.pop("capture_span_s") == pytest.approx(fq["capture_span_s"], abs=2e-6), name
            assert fr == {k: v for k, v in fq.items() if k != "capture_span_s"}, name
        assert got == {k: v for k, v in ref.items() if k not in ("rows", "frames")}, name


def test_reader_agrees_with_scapy(tmp_path):
    """scapy's own raw readers as the reference: the same number of records and original lengths."""
    files = _variants(tmp_path)
    for name in ("pcap-us-le", "pcap-ns-be", "sll2", "snap128"):
        tab = read_columns(files[name])
        ref = [meta.wirelen for _, meta in RawPcapReader(str(files[name]))]
        assert tab.orig_len.tolist() == ref, name
    for name in ("pcapng-us", "pcapng-ns-be", "sll2-pcapng"):
        tab = read_columns(files[name])
        ref = [meta.wirelen for _, meta in RawPcapNgReader(str(files[name]))]
        assert tab.orig_len.tolist() == ref, name
    tab = read_columns(files["sll2"])
    assert set(tab.linktype.tolist()) == {276}
    # SLL2 keeps no Ethernet header: frame length = IP length + 14, as on the Ethernet link
    eth = read_columns(files["pcap-us-le"])
    assert tab.frame_len.tolist() == eth.frame_len.tolist()
    assert (tab.src[:1] == addr_key(DEV)).all()


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (Wireshark's) is not installed")
def test_editcap_pcapng(tmp_path):
    files = _variants(tmp_path)
    ng = tmp_path / "editcap.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(files["sll2"]), str(ng)], check=True, capture_output=True)
    assert ng.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert _figures(ng)["frames"] == _figures(files["sll2"])["frames"]


def _truncated(tmp_path):
    f = tmp_path / "t.pcap"
    write_pcap(f, tcp_flow([10_000]))
    # by hand: 10,024 B = 6 x 1448 + 1336 -> 7 segments; records of 16 + 1514 B. Cut 100 B into the
    # fourth: the file header (24) + 3 x 1530 = 4614 is where the cut record starts.
    f.write_bytes(f.read_bytes()[: 24 + 3 * 1530 + 100])
    return f


def test_truncated_without_and_with_partial(tmp_path):
    f = _truncated(tmp_path)
    with pytest.raises(PcapError, match=r"truncated at byte 4614: packet 4 has 84 of 1514 bytes") as e:
        compare(f, _prediction([10_000]))
    assert "partial analyses them" in str(e.value) and len(e.value.packets) == 3
    c = compare(f, _prediction([10_000]), partial=True)
    assert c.packets_analysed == 3 and c.truncated_at == 4614
    assert "analysed the 3 packets before the truncation at byte 4614" in c.notes
    assert c.row("packets").measured == 3
    assert c.row("payload_bytes").measured == 3 * 1448 - 24
    # pcapng: the block of the fourth packet is cut
    ng = tmp_path / "t.pcapng"
    write_pcapng(ng, tcp_flow([10_000]))
    # section header 28 + interface block 32 (one 8 B option + end) + 3 blocks of 32 + 1516 (1514 padded)
    ng.write_bytes(ng.read_bytes()[: 28 + 32 + 3 * 1548 + 50])
    with pytest.raises(PcapError, match=r"truncated at byte 4704: packet 4's block has 50 of 1548 bytes"):
        read_columns(ng)
    assert len(read_columns(ng, partial=True)) == 3


def test_cli_partial(tmp_path):
    f = _truncated(tmp_path)
    (tmp_path / "t.prediction.json").write_text(json.dumps(flat_v1(_prediction([10_000]))))
    r = run_cli("compare", str(f))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "truncated at byte 4614" in r.stderr
    r = run_cli("compare", str(f), "--partial", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["packets_analysed"] == 3 and d["rows"][1]["measured"] == 3


def test_other_link_types_and_garbage(tmp_path):
    f = tmp_path / "raw.pcap"
    write_pcap(f, [(1.0, b"\x45" + b"\0" * 39)], linktype=101)
    with pytest.raises(PcapError, match=r"link type 101 \(raw IP\) is not supported \(only Ethernet"):
        read_columns(f)
    ng = tmp_path / "wifi.pcapng"
    write_pcapng(ng, [(1.0, b"\0" * 30)], linktype=105)
    with pytest.raises(PcapError, match=r"link type 105 \(IEEE 802.11\) is not supported"):
        read_columns(ng)
    f.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x1c\0\0\0" + b"\x00\x00\x00\x00" + b"\0" * 16)
    with pytest.raises(PcapError, match="malformed pcapng: bad byte-order magic"):
        read_columns(f)
    # a pcap header (Ethernet), then a record claiming 16 MB
    f.write_bytes(
        b"\xd4\xc3\xb2\xa1" + b"\0" * 16 + b"\x01\0\0\0" + b"\0" * 8 + b"\xff\xff\xff\x00" + b"\0" * 4
    )
    with pytest.raises(PcapError, match="claims 16777215 captured bytes"):
        read_columns(f)


def test_encrypted_traffic_is_not_pktchar(tmp_path):
    """TLS-looking bytes on 443 between other hosts: the one-line 'no pktchar traffic' error."""
    pkts = [
        (
            1.0 + i / 1000,
            ipv4_tcp("10.0.0.5", "10.0.0.9", 443, 51000, 1 + 600 * i, 1, 0x18, b"\x17\x03\x03" + bytes(597)),
        )
        for i in range(5)
    ]
    f = tmp_path / "tls.pcapng"
    write_pcapng(f, pkts)
    with pytest.raises(
        PktcharError, match=r"no pktchar traffic .* found tcp 10.0.0.5:443 -> 10.0.0.9:51000\)"
    ):
        compare(f, _prediction([1000]))


def test_sequence_wrap_is_not_a_retransmission(tmp_path):
    f = tmp_path / "w.pcap"
    write_pcap(f, tcp_flow([100_000], seq0=(1 << 32) - 5000, retransmit=10))
    c = compare(f, _prediction([100_000]))
    assert c.retransmissions == 1  # only the one repeated on purpose
    assert c.row("packets").measured == 70


def _frames() -> list[bytes]:
    sizes = [3000, 100, 100_000, 5000]
    return [
        wire.FRAME.pack(i, 7, wire.FLAG_LAST if i == len(sizes) - 1 else 0, n, 10**9 + i) + bytes([i + 1]) * n
        for i, n in enumerate(sizes)
    ]


def test_dissector_is_generated_from_the_wire_table():
    lua = lua_dissector(6000)
    for name, size in wire.FRAME_FIELDS:
        assert f'ProtoField.uint{size * 8}("pktchar.{name}"' in lua
    for name, _ in wire.FRAGMENT_FIELDS:
        assert f'"pktchar.frag.{name}"' in lua
    assert 'Pref.uint("Replay port", 6000' in lua and "dissect_tcp_pdus" in lua
    r = run_cli("wireshark-dissector", "--port", "70000")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--port" in r.stderr and "65535" in r.stderr


@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark is not installed (scripts/setup.sh --test)"
)
def test_dissector_under_tshark(tmp_path):
    lua = tmp_path / "pktchar.lua"
    r = run_cli("wireshark-dissector")
    assert r.returncode == 0, r.stderr
    lua.write_text(r.stdout)
    f = tmp_path / "x.pcap"
    write_pcap(f, tcp_flow(_frames(), handshake=True, answers=True))
    out = subprocess.run(
        ["tshark", "-X", f"lua_script:{lua}", "-r", str(f), "-Y", "pktchar.frame_id", "-T", "fields"]
        + [
            "-e",
            "pktchar.frame_id",
            "-e",
            "pktchar.length",
            "-e",
            "pktchar.flags.last",
            "-e",
            "pktchar.split",
        ]
        + ["-e", "pktchar.payload_bytes"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = [line.split("\t") for line in out.stdout.splitlines()]
    # one reassembled PDU per frame, in order, with the lengths written above
    assert [(int(a), int(b), int(e)) for a, b, _, _, e in got] == [
        (0, 3000, 3000),
        (1, 100, 100),
        (2, 100_000, 100_000),
        (3, 5000, 5000),
    ]
    assert [c for _, _, c, _, _ in got] == ["0", "0", "0", "1"]  # FLAG_LAST on the last frame only
    assert {s for _, _, _, s, _ in got} == {"7"}
    # the edge's answers on the same connection
    out = subprocess.run(
        ["tshark", "-X", f"lua_script:{lua}", "-r", str(f), "-Y", "pktchar.answer.frame_id", "-T", "fields"]
        + ["-e", "pktchar.answer.frame_id", "-e", "pktchar.answer.first_ns", "-e", "pktchar.answer.done_ns"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [line.split("\t") for line in out.stdout.splitlines()] == [
        [str(i), str(10 + i), str(20 + i)] for i in range(4)
    ]
    # UDP: fragment headers; fragment 0 carries the frame header
    chunk = 1500 - 28 - wire.FRAGMENT_HEADER
    app = _frames()[0]
    from craft import ipv4_udp

    n = -(-len(app) // chunk)
    dgrams = [
        (
            1.0 + k / 1000,
            ipv4_udp(DEV, EDGE, 40000, PORT, wire.FRAGMENT.pack(0, k, n) + app[k * chunk : (k + 1) * chunk]),
        )
        for k in range(n)
    ]
    write_pcap(f, dgrams)
    out = subprocess.run(
        ["tshark", "-X", f"lua_script:{lua}", "-r", str(f), "-Y", "pktchar", "-T", "fields"]
        + ["-e", "pktchar.frag.index", "-e", "pktchar.frag.count", "-e", "pktchar.length"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # by hand: 3024 B in chunks of 1460 -> 3 datagrams; only the first holds the frame header
    assert [line.split("\t") for line in out.stdout.splitlines()] == [
        ["0", "3", "3000"],
        ["1", "3", ""],
        ["2", "3", ""],
    ]


@pytest.mark.root
def test_real_tcpdump_any_sll2_reads_like_ethernet(tmp_path):
    """A real transfer on loopback captured at once by tcpdump on ``lo`` (Ethernet, link type 1) and on
    ``any`` (SLL2, 276, what a capture on every interface writes), and by Wireshark's dumpcap on ``any``
    (pcapng of SLL, 113) when it is installed. All must decode the same."""
    import signal
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    caps = {}
    procs = []
    for iface in ("lo", "any"):
        caps[iface] = tmp_path / f"{iface}.pcap"
        p = subprocess.Popen(
            [
                "tcpdump",
                "-i",
                iface,
                "-U",
                "--immediate-mode",
                "-s",
                "128",
                "-w",
                str(caps[iface]),
                f"tcp port {port}",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stderr is not None
        while "listening on" not in (line := p.stderr.readline()):  # "data link type LINUX_SLL2" first
            assert line, "tcpdump did not start"
        procs.append(p)
    if shutil.which("dumpcap"):
        caps["dumpcap"] = tmp_path / "any.pcapng"
        p = subprocess.Popen(
            ["dumpcap", "-i", "any", "-f", f"tcp port {port}", "-w", str(caps["dumpcap"])],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert p.stderr is not None
        while not (line := p.stderr.readline()).startswith("File:"):
            assert line, "dumpcap did not start"
        time.sleep(0.5)
        procs.append(p)
    got = []

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(1 << 16):
                got.append(len(data))

    th = threading.Thread(target=serve)
    th.start()
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(bytes(300_000))
    th.join(10)
    srv.close()
    time.sleep(0.5)
    for p in procs:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    assert sum(got) == 300_000
    lo, anyc = read_columns(caps["lo"]), read_columns(caps["any"])
    assert set(lo.linktype.tolist()) == {1} and set(anyc.linktype.tolist()) == {276}
    assert len(lo) == len(anyc) > 0
    for col in ("frame_len", "src", "dst", "proto", "sport", "dport", "payload", "seq", "flags"):
        assert getattr(lo, col).tolist() == getattr(anyc, col).tolist(), col
    if "dumpcap" in caps:
        ng = read_columns(caps["dumpcap"])
        assert ng.fmt == "pcapng" and set(ng.linktype.tolist()) == {113}
        for col in ("frame_len", "src", "dst", "proto", "sport", "dport", "payload", "seq", "flags"):
            assert getattr(lo, col).tolist() == getattr(ng, col).tolist(), col
    to_srv = lo.dport == port
    assert int(lo.payload[to_srv].sum()) == 300_000  # every byte sent, seen once


def test_udp_flow_and_inference_among_flows(tmp_path):
    from craft import ipv4_udp

    # by hand: a 5,000 B frame + 24 B header in chunks of 1500 - 28 - 12 = 1460 B: 1460, 1460, 1460, 644,
    # each behind the 12 B fragment header -> IP lengths 1500 x 3 and 684 -> Ethernet 1514 x 3 + 698 = 5240
    app = wire.FRAME.pack(0, 1, 0, 5000, 0) + bytes(5000)
    chunk = 1460
    pkts = [
        (
            1.0 + k * 1e-4,
            ipv4_udp(DEV, EDGE, 40000, PORT, wire.FRAGMENT.pack(0, k, 4) + app[k * chunk : (k + 1) * chunk]),
        )
        for k in range(4)
    ]
    # a smaller unrelated TCP flow the inference must not pick: 3 segments of 100 B
    pkts += [
        (2.0 + i, ipv4_tcp("10.0.0.5", "10.0.0.9", 443, 51000, 1 + 100 * i, 1, 0x18, bytes(100)))
        for i in range(3)
    ]
    f = tmp_path / "u.pcapng"
    write_pcapng(f, pkts)
    pk = packetize(5000, Transport("udp", 1500))
    tcp = _prediction([5000])
    frame = replace(tcp.frames[0], packets=pk.count, sizes=pk.sizes, frame_bytes=pk.frame_bytes)
    pred = replace(tcp, proto="udp", frames=(frame,))
    c = compare(f, pred)
    assert c.row("packets").measured == 4 == c.row("packets").predicted
    assert c.row("wire_bytes").measured == 3 * 1514 + 698
    assert c.row("payload_bytes").measured == 5000 and c.other_packets == 3
    inferred = compare(f)
    assert inferred.flow == f"udp {DEV} -> {EDGE}:{PORT}"
    assert inferred.row("packets").measured == 4


def test_pcapng_block_types_each_have_their_handler(tmp_path):
    """The pcapng walk by block type: an obsolete packet block (type 2: a 16-bit interface and a drop
    count, then the enhanced block's layout) reads like an enhanced one, a block of a type without a
    handler (here a name resolution block, 4) is skipped, a simple packet block (3) is refused, and a
    packet naming an interface the section has not described is malformed."""
    import struct

    pkt = ipv4_tcp(DEV, EDGE, 40000, PORT, 1, 1, 0x18, bytes(100))  # 14 + 20 + 32 + 100 = 166 B
    pad = pkt + b"\0" * (-len(pkt) % 4)
    blen = 32 + len(pad)
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 0, 20)
    t = 2_000_000  # 2 s in microseconds (no if_tsresol: the default)

    def packet(btype: int, iface: int) -> bytes:
        head = (
            struct.pack("<III", btype, blen, iface)
            if btype == 6
            else struct.pack("<IIHH", btype, blen, iface, 0)
        )
        return (
            head
            + struct.pack("<IIII", t >> 32, t & 0xFFFFFFFF, len(pkt), len(pkt))
            + pad
            + struct.pack("<I", blen)
        )

    nrb = struct.pack("<II", 4, 16) + struct.pack("<HH", 0, 0) + struct.pack("<I", 16)
    f = tmp_path / "blocks.pcapng"
    f.write_bytes(shb + idb + packet(2, 0) + nrb + packet(6, 0))
    tab = read_columns(f)
    assert len(tab) == 2 and tab.fmt == "pcapng"
    assert tab.ts.tolist() == [2.0, 2.0] and tab.frame_len.tolist() == [166, 166]
    assert tab.payload.tolist() == [100, 100]
    f.write_bytes(shb + idb + struct.pack("<III", 3, 16, len(pkt)) + struct.pack("<I", 16))
    with pytest.raises(PcapError, match="simple packet blocks"):
        read_columns(f)
    f.write_bytes(shb + idb + packet(6, 1))
    with pytest.raises(PcapError, match="packet 1 names interface 1 of 1"):
        read_columns(f)
