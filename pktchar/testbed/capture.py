"""Capture on a namespace's interface, with its completeness checked.

tcpdump (libpcap, the default) or scapy (:mod:`pktchar.testbed.sniff`, scapy's AsyncSniffer on libpcap)
writes the pcap; libpcap's kernel drop counter and the interface's packet counters before and after
are read back, so a capture is *complete* only when it holds every packet that crossed the interface
and the kernel dropped none. An incomplete capture says so in one line (:attr:`CaptureStats.note`).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.wire import ETH_HEADER, IP_HEADER
from .netns import TestbedError, Topology


@dataclass
class CaptureStats:
    captured: int
    received_by_filter: int
    dropped_by_kernel: int
    interface_packets: int  # rx + tx on the captured interface while capturing
    interface_dropped: int
    backend: str = "tcpdump"
    snaplen: int = 0
    cpu_s: float | None = None  # user + system CPU seconds of the capture process (wait4's rusage)
    file_bytes: int = 0

    @property
    def complete(self) -> bool:
        """Nothing missed: the file holds at least every packet the interface counted, none dropped. The
        counters are read just after the capture listens and just before it stops, so a packet at either
        edge (a late ACK, an IPv6 neighbour message on a bridge) can be in the file and not in the count:
        1-2 more captured than counted is seen on fleet runs, and is not a loss."""
        return self.dropped_by_kernel == 0 and self.captured >= self.interface_packets

    @property
    def extra(self) -> int:
        """Packets in the file beyond the count (crossed at the window's edges)."""
        return max(0, self.captured - self.interface_packets)

    @property
    def missed(self) -> int:
        """Packets that crossed the interface but are not in the file."""
        return max(0, self.interface_packets - self.captured)

    @property
    def note(self) -> str:
        """One line: complete, or how many packets the capture missed and the kernel's drop count."""
        if self.complete:
            edge = f", {self.extra:,} more at the window's edges" if self.extra else ""
            return f"complete: {self.captured:,} of {self.interface_packets:,} packets{edge} ({self.backend})"
        return (
            f"INCOMPLETE: {self.backend} captured {self.captured:,} of the {self.interface_packets:,} packets "
            f"through the interface ({self.missed:,} missed, {self.dropped_by_kernel:,} dropped by the kernel)"
        )


def wait_line(proc: subprocess.Popen[str], stream: Any, want: str, timeout: float) -> str:
    """Read lines of ``stream`` until one contains ``want``; raise with what the process said."""
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        r, _, _ = select.select([stream], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        line = stream.readline()
        if not line:
            break
        seen.append(line.strip())
        if want in line:
            return line
    proc.poll()
    detail = "; ".join(x for x in seen if x) or f"exit {proc.returncode}"
    for x in seen:
        if x.startswith("{"):
            try:
                detail = json.loads(x).get("error", detail)
            except json.JSONDecodeError:
                pass
    raise TestbedError(f"{' '.join(proc.args[4:7]) if isinstance(proc.args, list) else proc.args}: {detail}")


BACKENDS = ("tcpdump", "scapy")
WHOLE_PACKETS = 262144  # tcpdump's default snap length: every packet whole
# The default: every header the analysis reads and the first bytes of every application message, not the
# payload (compare and the scenarios count bytes from the IP header's length, never from the snap length):
# Ethernet 14 + IPv6 40 + the longest TCP header 60 + gloo's 48 B preamble (longer than pktchar's 24 B frame
# header) = 162 B. A run's captures are then about a tenth of whole packets (a 1,514 B frame is kept as
# 162 B + a 16 B record header), so a checkout does not grow by hundreds of MB unasked.
HEADERS = ETH_HEADER + IP_HEADER[6] + 60 + 48


def default_folder() -> Path:
    """Where a run captures when the caller names no file: ``$PKTCHAR_CAPTURES``, else the system's
    temporary folder (``pktchar-captures``), never the working directory: an upload of four models
    captures about 200 MB even with headers only, and a checkout must not grow by that unasked. The run
    names each file it wrote, with its size, at its end."""
    import tempfile

    return Path(os.environ.get("PKTCHAR_CAPTURES") or Path(tempfile.gettempdir()) / "pktchar-captures")


class Capture:
    """A capture on endpoint ``ep``'s interface, inside its namespace, with its completeness checked.

    ``backend``: ``tcpdump`` (libpcap, the default) or ``scapy`` (scapy's AsyncSniffer on its libpcap
    backend, :mod:`pktchar.testbed.sniff`). Both write a classic pcap of every packet's first
    ``snaplen`` bytes (:data:`HEADERS` by default: every header, not the payload; ``WHOLE_PACKETS`` keeps
    all) through a 128 MiB kernel buffer in libpcap's buffered mode (packets are
    handed over in blocks, at the latest every 50 ms for scapy and 1 s for tcpdump, instead of one
    wake-up a packet). :meth:`stop` returns :class:`CaptureStats`: libpcap's own counters (what tcpdump
    prints; for scapy ``pcap_stats`` read in the sniffer), the interface's rx+tx packet counters over
    the capture, the capture process's CPU time and the file size."""

    def __init__(
        self,
        topo: Topology,
        ep: str,
        path: Path,
        backend: str = "tcpdump",
        snaplen: int = HEADERS,
        buffer_kib: int = 131072,
        immediate: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise TestbedError(f"unknown capture backend {backend!r}: use {' or '.join(BACKENDS)}")
        if not 1 <= snaplen <= WHOLE_PACKETS:
            raise TestbedError(f"snap length must be 1..{WHOLE_PACKETS} bytes, got {snaplen}")
        self.topo, self.ep, self.path, self.backend, self.snaplen = topo, ep, Path(path), backend, snaplen
        self.immediate = immediate
        iface = topo.eps[ep].ifname
        if backend == "tcpdump":
            self.cmd = [
                "tcpdump",
                "-i",
                iface,
                "-n",
                "-s",
                str(snaplen),
                "-B",
                str(buffer_kib),
                "-w",
                str(path),
            ]
            if immediate:
                self.cmd.append("--immediate-mode")
        else:
            self.cmd = [
                sys.executable,
                "-m",
                "pktchar.testbed.sniff",
                "--iface",
                iface,
                "--out",
                str(path),
                "--snaplen",
                str(snaplen),
                "--buffer",
                str(buffer_kib * 1024),
            ]
        self.proc: subprocess.Popen[str] | None = None
        self.before: dict[str, int] = {}

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = self.topo.popen(
            self.ep, self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env()
        )
        assert self.proc.stderr is not None
        wait_line(self.proc, self.proc.stderr, "listening on", 30)
        time.sleep(0.2)
        self.before = self.topo.counters(self.ep)

    def stop(self) -> CaptureStats:
        assert self.proc is not None and self.proc.stderr is not None and self.proc.stdout is not None
        # libpcap's buffered mode (TPACKET_V3) hands a block of packets over when it fills or when its
        # read timeout retires it (tcpdump: 1 s, the sniffer: 50 ms); a block still open when tcpdump
        # gets SIGINT is never read, so wait out one timeout after the traffic before stopping
        time.sleep(1.2 if self.backend == "tcpdump" and not self.immediate else 0.3)
        after = self.topo.counters(self.ep)
        self.proc.send_signal(signal.SIGINT)
        out, err, cpu = _finish(self.proc, timeout=30)
        if self.backend == "tcpdump":

            def num(pattern: str) -> int:
                m = re.search(r"(\d+) packets? " + pattern, err)
                return int(m.group(1)) if m else -1

            captured, by_filter, dropped = (
                num("captured"),
                num("received by filter"),
                num("dropped by kernel"),
            )
        else:
            res = _last_json(out)
            if "error" in res or "captured" not in res:
                raise TestbedError(f"scapy capture failed: {res.get('error') or err.strip() or 'no summary'}")
            captured, by_filter, dropped = (
                int(res["captured"]),
                int(res["received_by_filter"]),
                int(res["dropped_by_kernel"]),
            )
        return CaptureStats(
            captured=captured,
            received_by_filter=by_filter,
            dropped_by_kernel=dropped,
            interface_packets=(after["rx_packets"] - self.before["rx_packets"])
            + (after["tx_packets"] - self.before["tx_packets"]),
            interface_dropped=(after["rx_dropped"] - self.before["rx_dropped"])
            + (after["tx_dropped"] - self.before["tx_dropped"]),
            backend=self.backend,
            snaplen=self.snaplen,
            cpu_s=cpu,
            file_bytes=self.path.stat().st_size if self.path.exists() else 0,
        )


def _child_env() -> dict[str, str]:
    """The sniffer imports pktchar from wherever this process does."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                return dict(json.loads(line))
            except json.JSONDecodeError:
                break
    return {}


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str, float | None]:
    """Wait for ``proc`` (``ip netns exec`` execs the capture program, so it is that PID), reading its
    output; return stdout, stderr and its user + system CPU seconds from ``wait4``."""
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
    ]
    for t in readers:
        t.start()
    cpu = None
    end = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = ru.ru_utime + ru.ru_stime
            break
        if time.monotonic() > end:
            proc.kill()
            proc.wait()
            break
        time.sleep(0.02)
    for t in readers:
        t.join(timeout=5)
    return "".join(out), "".join(err), cpu
