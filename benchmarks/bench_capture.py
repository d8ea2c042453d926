"""Capture backends (tcpdump, scapy) at 80 Mbit/s and 1 Gbit/s: completeness, CPU, goodput, frame times.

Each case is one short replay between two namespaces (device -veth, tbf-> edge) with pktchar's own
endpoint processes (``python -m pktchar.testbed.endpoint``: TCP, the testbed's framing, one answer a
frame), a calibration transfer first (as ``pktchar replay`` runs), then N frames captured on the edge
with the backend under test. Frames are random bytes of a fixed size (the size of a real split's
payload; what the bytes are does not change the packets). Per backend and rate it reports: packets
through the interface, captured, kernel drops, complete yes/no, CPU seconds of the capture process,
of the sender and the receiver, softirq seconds of the whole machine, goodput measured against the tbf
model (:mod:`pktchar.core.shaping`) at the nominal and the calibrated rate, and the per-frame
transfer time error. Written to ``reports/benchmarks.md`` (section ``capture``).

    .venv/bin/python benchmarks/bench_capture.py [--frames 40] [--repeat 2] [--out reports/benchmarks.md]   (as root)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import REPORT, write_section  # noqa: E402

from pktchar.core import shaping  # noqa: E402
from pktchar.core.packets import Transport, packetize  # noqa: E402
from pktchar.testbed.capture import Capture, wait_line  # noqa: E402
from pktchar.testbed.netns import Link, Topology  # noqa: E402
from pktchar.testbed.pcap import read  # noqa: E402

DEV, EDGE, PORT = "dev", "edge", 5201
# frame sizes of real splits: VGG-16 pool5 (features.30) at 224 x 224 and at 896 x 896, fp32
CASES = {80e6: 100_352, 1e9: 1_605_632}
HZ = os.sysconf("SC_CLK_TCK")


def _cpu_total() -> dict[str, float]:
    f = open("/proc/stat").readline().split()[1:]
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    return {n: int(v) / HZ for n, v in zip(names, f, strict=False)}


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (/proc/PID/stat fields 14, 15)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def _wait_cpu(proc: subprocess.Popen[str], timeout: float) -> float | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_utime + ru.ru_stime
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    return None


def _endpoint(root: str | None) -> list[str]:
    return [sys.executable, "-m", "pktchar.testbed.endpoint"]


def _send(topo: Topology, work: Path, name: str, sizes: list[int], calib: bool) -> subprocess.Popen[str]:
    (work / f"{name}.bin").write_bytes(os.urandom(min(max(sizes), 4 << 20)))
    (work / f"{name}.json").write_text(json.dumps(sizes))
    cmd = [*_endpoint(None), "send", "--host", topo.eps[EDGE].ip, "--port", str(PORT)]
    cmd += ["--payload", str(work / f"{name}.bin"), "--sizes", str(work / f"{name}.json"), "--split", "1"]
    if calib:
        cmd.append("--calibration")
    return topo.popen(DEV, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def run_case(
    rate: float,
    backend: str,
    frames: int,
    work: Path,
    snaplen: int,
    immediate: bool,
    burst: int | None = None,
) -> dict:
    size = CASES[rate]
    t = Transport("tcp", 1500)
    link = Link(rate, burst=burst)
    pcap = work / f"{backend}-{rate:g}.pcap"
    with Topology([DEV, EDGE], link) as topo:
        recv = topo.popen(
            EDGE,
            [*_endpoint(None), "recv", "--port", str(PORT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert recv.stdout is not None
        wait_line(recv, recv.stdout, "READY", 30)
        # calibration: one bulk frame of a quarter second at the rate, as replay's _calibrate
        csize = int(min(32e6, max(256e3, rate / 8 * 0.25)))
        cal = _send(topo, work, "calib", [csize], calib=True)
        cout, _ = cal.communicate(timeout=120)
        c = _lines(cout)[-1]
        clen = shaping.frame_lengths(packetize(csize, t).sizes)
        # the rate that makes the tbf model's transfer time (send call -> last byte at the edge) fit the
        # calibration transfer, the quantity the frames are judged on; a 0.25 s transfer makes the fixed
        # costs of a send (system call, wake-ups: ~0.3 ms) 0.1% of it
        ctrans = (c["done_ns"] - c["send_ns"]) / 1e9
        rate_cal = (sum(clen) - link.bucket) * 8 / ctrans
        # replay's way (first byte -> last byte at the receiver): a late wake-up for the first byte on a
        # busy machine shortens the span and overstates the rate (seen: 1,066 Mbit/s at 1 Gbit/s)
        cspan = (c["done_ns"] - c["first_ns"]) / 1e9
        rate_span = (sum(clen) - link.bucket) * 8 / cspan
        cap = Capture(topo, EDGE, pcap, backend=backend, snaplen=snaplen, immediate=immediate)
        cap.start()
        assert cap.proc is not None
        cpu0 = _cpu_total()
        recv0, cap0 = _proc_cpu(recv.pid), _proc_cpu(cap.proc.pid)  # startup and calibration excluded
        send = _send(topo, work, "frames", [size] * frames, calib=False)
        assert send.stdout is not None
        sout = send.stdout.read()
        send_cpu = _wait_cpu(send, 60)  # includes the interpreter's start (about 0.05 s)
        recv_cpu = (_wait_cpu(recv, 30) or float("nan")) - recv0
        cpu1 = _cpu_total()
        stats = cap.stop()
        cap_cpu = (stats.cpu_s or float("nan")) - cap0
    got = _lines(sout)
    lengths = shaping.frame_lengths(packetize(size, t).sizes)
    app = size + t.app_header
    # per-frame capture spans: the data packets (device -> edge, with payload) split by app bytes
    pk = [p for p in read(pcap) if p.proto == "tcp" and p.dport == PORT and p.payload > 0]
    seen: set[int] = set()
    uniq = []
    for p in pk:
        if p.seq not in seen:
            seen.add(p.seq)
            uniq.append(p)
    spans, i = [], 0
    for _ in range(frames):
        got_b, first = 0, i
        while i < len(uniq) and got_b < app:
            got_b += uniq[i].payload
            i += 1
        if i - first > 1:
            spans.append(uniq[i - 1].ts - uniq[first].ts)
    transfer = [(f["done_ns"] - f["send_ns"]) / 1e9 for f in got if "id" in f]
    pred_nom = shaping.transfer_time(lengths, rate, link.bucket)
    pred_cal = shaping.transfer_time(lengths, rate_cal, link.bucket)
    moved = shaping.span_bytes(lengths)
    span_nom = shaping.span(lengths, rate, link.bucket)
    span_cal = shaping.span(lengths, rate_cal, link.bucket)
    mean = sum(spans) / len(spans) if spans else float("nan")
    mean_tr = sum(transfer) / len(transfer) if transfer else float("nan")
    busy = {k: cpu1[k] - cpu0[k] for k in cpu0}
    return {
        "rate": rate,
        "backend": backend,
        "frames": frames,
        "frame_bytes_app": size,
        "interface_packets": stats.interface_packets,
        "captured": stats.captured,
        "dropped_by_kernel": stats.dropped_by_kernel,
        "complete": stats.complete,
        "note": stats.note,
        "capture_cpu_s": cap_cpu,
        "sender_cpu_s": send_cpu,
        "receiver_cpu_s": recv_cpu,
        "machine_softirq_s": busy["softirq"],
        "machine_system_s": busy["system"],
        "machine_user_s": busy["user"],
        "machine_idle_s": busy["idle"],
        "file_bytes": stats.file_bytes,
        "rate_calibrated": rate_cal,
        "rate_calibrated_span": rate_span,
        "bucket": link.bucket,
        "goodput_measured": moved * 8 / mean,
        "goodput_pred_nominal": moved * 8 / span_nom,
        "goodput_pred_calibrated": moved * 8 / span_cal,
        "transfer_measured": mean_tr,
        "transfer_pred_nominal": pred_nom,
        "transfer_pred_calibrated": pred_cal,
        "transfers_ms": [round(x * 1e3, 3) for x in transfer],
        "spans_ms": [round(x * 1e3, 3) for x in spans],
        "within_5pct": sum(abs(x / pred_cal - 1) < 0.05 for x in transfer),
        "transfer_err_max_cal": max(abs(x / pred_cal - 1) for x in transfer) if transfer else None,
    }


def table(rows: list[dict]) -> str:
    head = (
        "| rate | backend | settings | packets (iface) | captured | kernel drops | complete | capture CPU s | "
        "sender CPU s | receiver CPU s | softirq s | pcap MB | goodput measured | predicted (nominal) | "
        "predicted (calibrated) | transfer a frame measured | pred. nominal | pred. calibrated | error vs "
        "calibrated (mean / worst frame) | frames within 5% | machine idle s |"
    )
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        err = r["transfer_measured"] / r["transfer_pred_calibrated"] - 1
        out.append(
            f"| {r['rate'] / 1e6:g} Mbit/s | {r['backend']} | {r['settings']} | {r['interface_packets']:,} | {r['captured']:,} | "
            f"{r['dropped_by_kernel']} | {'yes' if r['complete'] else 'NO'} | {r['capture_cpu_s']:.2f} | "
            f"{r['sender_cpu_s']:.2f} | {r['receiver_cpu_s']:.2f} | {r['machine_softirq_s']:.2f} | "
            f"{r['file_bytes'] / 1e6:.1f} | {r['goodput_measured'] / 1e6:.1f} Mbit/s | "
            f"{r['goodput_pred_nominal'] / 1e6:.1f} | {r['goodput_pred_calibrated'] / 1e6:.1f} | "
            f"{r['transfer_measured'] * 1e3:.3f} ms | {r['transfer_pred_nominal'] * 1e3:.3f} | "
            f"{r['transfer_pred_calibrated'] * 1e3:.3f} | {err:+.1%} / {r['transfer_err_max_cal']:.1%} | "
            f"{r['within_5pct']}/{len(r['transfers_ms'])} | {r['machine_idle_s']:.2f} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40, help="frames a replay (default: 40)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of every case (default: 2)")
    ap.add_argument("--rates", default="80e6,1e9", help="link rates, bit/s (default: 80e6,1e9)")
    ap.add_argument("--backends", default="tcpdump,scapy", help="capture backends (default: tcpdump,scapy)")
    ap.add_argument("--snaplen", type=int, default=262144)
    ap.add_argument("--immediate", action="store_true", help="tcpdump --immediate-mode (the old setting)")
    ap.add_argument("--burst", type=int, default=None, help="tbf bucket, bytes (default: the Link's)")
    ap.add_argument(
        "--old",
        action="store_true",
        help="also run 1 Gbit/s with the old capture and shaping settings (tcpdump --immediate-mode, 128 B "
        "snap length, 3,028 B bucket) for comparison",
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the captures in this folder")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--out", type=Path, default=REPORT, help="results file (default: reports/benchmarks.md)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pktchar-bench-") as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.chmod(work, 0o755)
        for rep in range(a.repeat):
            for rate in (float(x) for x in a.rates.split(",")):
                for backend in a.backends.split(","):
                    r = run_case(rate, backend, a.frames, work, a.snaplen, a.immediate, a.burst)
                    r["run"], r["settings"] = rep + 1, "now"
                    rows.append(r)
                    print(json.dumps(r), flush=True)
                if a.old and rate >= 1e9:  # the settings before: per-packet wake-ups, 128 B, 2-packet bucket
                    r = run_case(rate, "tcpdump", a.frames, work, 128, True, 2 * 1514)
                    r["run"], r["settings"] = rep + 1, "old"
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    load = os.getloadavg()
    text = [
        "## Capture backends: tcpdump and scapy at 80 Mbit/s and 1 Gbit/s",
        "",
        f"`benchmarks/bench_capture.py --frames {a.frames}{' --old' if a.old else ''}` on {platform.node()} "
        f"({os.cpu_count()} cores shared with other users, load average {load[0]:.2f} at the end; kernel "
        f"{platform.release()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. One replay a row: a "
        "calibration transfer (a quarter second at the rate), then the frames (TCP, 1,500 B MTU) captured on "
        f"the edge. Settings *now*: whole packets (snap length {a.snaplen:,} B), libpcap's buffered mode, tbf "
        "bucket `shaping.default_bucket` (3,028 B at 80 Mbit/s, 13,626 B at 1 Gbit/s); *old*: tcpdump "
        "--immediate-mode, 128 B snap length, 3,028 B bucket. Frames: 100,352 B at 80 Mbit/s, 1,605,632 B at "
        "1 Gbit/s (the sizes of VGG-16 pool5 at 224 and 896, fp32; random bytes). Predictions: the tbf model "
        "of `pktchar.core.shaping` (full bucket at each frame start) at the set (nominal) rate and at the "
        "calibrated rate (the rate that makes the model's transfer time fit the calibration transfer). "
        "Goodput: frame bytes after each frame's first packet over the capture's first-to-last-packet span. "
        "Transfer: the sender's send call to the last byte read at the edge. CPU: user + system seconds of "
        "each process during the frames (/proc and wait4), softirq seconds of the whole machine "
        "(/proc/stat), which other users' work also lands in; machine idle seconds (of 2 cores) during the frames "
        "say how loaded the machine was.",
        "",
    ]
    for rep in range(a.repeat):
        text += [f"Run {rep + 1}:", "", table([r for r in rows if r["run"] == rep + 1]), ""]
    if not a.no_report:
        write_section("capture", "\n".join(text), a.out)
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
