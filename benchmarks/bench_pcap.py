"""Reading a 1,000,000-packet capture: the old pure-Python reader, the numpy reader, the whole
``pktchar compare`` process, and tshark and tcpdump reading every packet, side by side.

The capture (cached under /tmp) is a realistic replay flow as the testbed's tcpdump (snap length 128)
writes it: frames of 100,352 B payload + 24 B frame header cut into TCP segments of MSS 1448 with
12 B timestamp options at 1 Gbit/s, a delayed ACK back every second segment, the edge's 20 B answer
after each frame, and a few unrelated packets to make exactly 1,000,000. It is written with struct.
Each cell is the median of 3 fresh processes. Results go to reports/benchmarks.md ("pcap").

    .venv/bin/python benchmarks/bench_pcap.py [--packets 1000000] [--runs 3] [--out reports/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import REPORT, write_section

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pktchar.core.packets import Transport, packetize  # noqa: E402
from pktchar.core.wire import ANSWER, FRAME  # noqa: E402

N = 1_000_000
PAYLOAD, MSS, RATE, SNAP = 100_352, 1448, 1e9, 128
DEV, EDGE, PORT, SPORT = "10.213.0.1", "10.213.0.2", 5201, 40000
CACHE = Path(tempfile.gettempdir()) / "pktchar-bench-1M.pcap"
OLD_COMMIT = "1fdd184"  # the last commit with the hand-written one-object-per-packet reader
RUNS = 3


def _csum(b: bytes) -> int:
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def _ip(src: str, dst: str, length: int) -> bytes:
    h = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, length, 0, 0x4000, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    return h[:10] + struct.pack("!H", _csum(h)) + h[12:]


def write_capture(path: Path) -> int:
    """Write the flow; returns the number of frames (the prediction lists them)."""
    rec = struct.Struct("<IIII")
    tcp = struct.Struct("!HHIIBBHHH")
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", 1, 2)
    mac_to_edge = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    mac_to_dev = bytes.fromhex("020000000001020000000002") + b"\x08\x00"
    ips: dict[tuple[bool, int], bytes] = {}
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAP, 1)]
    n, frames, seq, ack, ts_ns = 0, 0, 1000, 5000, 1_700_000_000 * 10**9
    per_frame = -(-(PAYLOAD + FRAME.size) // MSS) * 3 // 2 + 2

    def emit(to_edge: bool, s: int, a: int, flags: int, data: bytes) -> None:
        nonlocal n, ts_ns
        ln = 20 + 32 + len(data)
        ip = ips.get((to_edge, ln))
        if ip is None:
            ip = ips[(to_edge, ln)] = _ip(DEV, EDGE, ln) if to_edge else _ip(EDGE, DEV, ln)
        ports = (SPORT, PORT) if to_edge else (PORT, SPORT)
        frame = (
            (mac_to_edge if to_edge else mac_to_dev) + ip + tcp.pack(*ports, s, a, 0x80, flags, 65535, 0, 0)
        )
        frame += opts + data
        ts_ns += round((14 + ln) * 8 / RATE * 1e9)
        cut = frame[:SNAP]
        out.append(rec.pack(ts_ns // 10**9, ts_ns % 10**9 // 1000, len(cut), 14 + ln) + cut)
        n += 1

    while n + per_frame <= N:
        app = FRAME.pack(frames, 1, 0, PAYLOAD, ts_ns)
        left = PAYLOAD + FRAME.size
        k = 0
        while left:
            size = min(MSS, left)
            head = app if k == 0 else b""
            emit(True, seq, ack, 0x18 if size < MSS else 0x10, head + bytes(size - len(head)))
            seq += size
            left -= size
            k += 1
            if k % 2 == 0 or not left:
                emit(False, ack, seq, 0x10, b"")
        emit(False, ack, seq, 0x18, ANSWER.pack(frames, ts_ns, ts_ns))
        ack += ANSWER.size
        frames += 1
    while n < N:  # unrelated traffic: ARP requests
        ts_ns += 10**6
        arp = b"\xff" * 6 + bytes.fromhex("020000000003") + b"\x08\x06" + bytes(28)
        out.append(rec.pack(ts_ns // 10**9, ts_ns % 10**9 // 1000, 42, 42) + arp)
        n += 1
    path.write_bytes(b"".join(out))
    return frames


def write_prediction(path: Path, frames: int) -> None:
    pk = packetize(PAYLOAD, Transport("tcp", 1500))
    fr = {
        "payload": PAYLOAD,
        "packets": pk.count,
        "sizes": [list(s) for s in pk.sizes],
        "frame_bytes": pk.frame_bytes,
    }
    pred = {
        "kind": "pktchar-prediction",
        "proto": "tcp",
        "port": PORT,
        "device_ip": DEV,
        "edge_ip": EDGE,
        "mtu": 1500,
        "ip_version": 4,
        "app_header": FRAME.size,
        "rate_bps": RATE,
        "burst_bytes": 3028,
        "frames": [{"id": i, **fr} for i in range(frames)],
    }
    path.write_text(json.dumps(pred))


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Median wall time of RUNS fresh processes."""
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        r = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
        )
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.strip()[-500:]}")
    return statistics.median(times)


def main() -> None:
    global N, RUNS, CACHE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=N, help=f"packets in the capture (default: {N})")
    ap.add_argument(
        "--runs", type=int, default=RUNS, help=f"fresh processes a cell, the median (default: {RUNS})"
    )
    ap.add_argument("--out", type=Path, default=REPORT, help="results file (default: reports/benchmarks.md)")
    a = ap.parse_args()
    if a.packets < 1000 or a.runs < 1:
        ap.error("--packets must be at least 1000 and --runs at least 1")
    if a.packets != N:
        CACHE = CACHE.with_name(f"pktchar-bench-{a.packets}.pcap")
    N, RUNS = a.packets, a.runs
    pred = CACHE.with_suffix(".prediction.json")
    if not CACHE.exists() or not pred.exists():
        t = time.perf_counter()
        frames = write_capture(CACHE)
        write_prediction(pred, frames)
        print(
            f"wrote {CACHE} ({CACHE.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
    frames = len(json.loads(pred.read_text())["frames"])
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "oldtb"  # the old reader and the old per-packet compare, as a package
        old.mkdir()
        (old / "__init__.py").write_text("")
        for name in ("pcap", "compare"):
            src = subprocess.run(
                ["git", "show", f"{OLD_COMMIT}:pktchar/testbed/{name}.py"],
                capture_output=True,
                text=True,
                cwd=REPO,
                check=True,
            ).stdout
            src = src.replace("from ..", "from pktchar.")
            for mod in ("errors", "wire", "packets", "units"):  # moved into pktchar.core since that commit
                src = src.replace(f"from pktchar.{mod} ", f"from pktchar.core.{mod} ")
            (old / f"{name}.py").write_text(src)
        env_old = {**env, "PYTHONPATH": f"{tmp}:{REPO}"}
        cells = {}
        cells["old reader (one Python object per packet)"] = timed(
            [py, "-c", f"from oldtb.pcap import read; assert len(read({str(CACHE)!r})) == {N}"], env_old
        )
        cells["old compare (old reader + per-packet analysis, in one process)"] = timed(
            [
                py,
                "-c",
                "from oldtb.compare import compare, load_prediction; "
                f"compare({str(CACHE)!r}, load_prediction({str(pred)!r}))",
            ],
            env_old,
        )
        cells["new reader (read_columns: numpy columns)"] = timed(
            [
                py,
                "-c",
                f"from pktchar.testbed.pcap import read_columns; assert len(read_columns({str(CACHE)!r})) == {N}",
            ],
            env,
        )
        cells["`pktchar compare` (whole process: reader + analysis + table)"] = timed(
            [py, "-m", "pktchar", "compare", str(CACHE)], env
        )
        check = subprocess.run(
            [py, "-m", "pktchar", "compare", str(CACHE), "--format", "json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        d = json.loads(check.stdout)
        cells["python start + imports only (`import pktchar.testbed.compare`)"] = timed(
            [py, "-c", "import pktchar.testbed.compare"], env
        )
        peers = {}
        peers["scapy `RawPcapReader` (yields every record, decodes nothing)"] = timed(
            [py, "-c", f"from scapy.utils import RawPcapReader\nfor _ in RawPcapReader({str(CACHE)!r}): pass"]
        )
        if shutil.which("tshark"):
            peers["`tshark -r FILE -q -z io,stat,0`"] = timed(
                ["tshark", "-r", str(CACHE), "-q", "-z", "io,stat,0"]
            )
        if shutil.which("tcpdump"):
            peers["`tcpdump -nn -r FILE` (decodes and prints every packet)"] = timed(
                ["tcpdump", "-nn", "-r", str(CACHE)]
            )
            peers["`tcpdump -r FILE -w /dev/null` (copies the records, decodes nothing)"] = timed(
                ["tcpdump", "-r", str(CACHE), "-w", "/dev/null"]
            )
    rows = {r["metric"]: r for r in d["rows"]}
    vals = list(cells.values())
    ver = (
        subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        if shutil.which("tshark")
        else ""
    )
    lines = [
        f"## Reading a {N:,}-packet capture: pktchar compare vs tshark",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; {ver.rstrip('.')}. Produced by `.venv/bin/python benchmarks/bench_pcap.py`.",
        "",
        f"The capture: {N:,} packets, {CACHE.stat().st_size / 1e6:.0f} MB, classic pcap of Ethernet with snap length "
        f"{SNAP} (as the testbed's tcpdump writes it): {frames:,} frames of {PAYLOAD:,} B + {FRAME.size} B header in "
        f"TCP segments of MSS {MSS} (12 B timestamp options) at {RATE / 1e9:g} Gbit/s, an ACK back every second "
        "segment, the edge's 20 B answer after each frame, ARP requests to fill up. Each figure is the median of "
        f"{RUNS} fresh processes (wall time, start-up and imports included).",
        "",
        "| what | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.2f} |" for k, v in cells.items()],
        *[f"| {k} (peer) | {v:.2f} |" for k, v in peers.items()],
        "",
        f"Speed-up of the reader: {vals[0] / vals[2]:.1f}x; of compare (old compare against the whole new "
        f"`pktchar compare` process): {vals[1] / vals[3]:.1f}x. "
        "The old reader (commit "
        f"{OLD_COMMIT}) built one dataclass per packet; the new one walks the records once over the file in memory "
        "and decodes Ethernet/SLL/SLL2, IPv4/IPv6 and TCP/UDP headers as numpy columns; compare works on those "
        "columns (masks, np.unique for retransmissions, np.searchsorted for frame boundaries). tshark dissects "
        "every packet fully; tcpdump -nn decodes and prints one line per packet; neither computes what compare "
        "does. The machine is shared: timings vary by about 20 % from run to run.",
        "",
        f"The comparison it printed: {rows['frames']['measured']:,} of {rows['frames']['predicted']:,} frames, "
        f"{rows['packets (data direction)']['measured']:,} data packets (predicted "
        f"{rows['packets (data direction)']['predicted']:,}), {d['reverse_packets']:,} back, "
        f"{d['other_packets']:,} other, {d['retransmissions']} retransmissions.",
    ]
    text = "\n".join(lines)
    write_section("pcap", text, a.out)
    print(text)


if __name__ == "__main__":
    main()
