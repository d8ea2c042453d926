"""Capture on a namespace's interface, with its completeness checked.

tcpdump (libpcap) writes the pcap; the kernel's drop counter (from tcpdump's own summary) and the
interface's packet counters before and after are read back, so a capture is *complete* only when it
holds every packet that crossed the interface and the kernel dropped none.
"""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .netns import TestbedError, Topology


@dataclass
class CaptureStats:
    captured: int
    received_by_filter: int
    dropped_by_kernel: int
    interface_packets: int  # rx + tx on the captured interface while capturing
    interface_dropped: int

    @property
    def complete(self) -> bool:
        return self.dropped_by_kernel == 0 and self.captured == self.interface_packets


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


class Capture:
    """tcpdump (libpcap) in a namespace, large buffer; kernel drops and interface counters read back."""

    def __init__(
        self, topo: Topology, ep: str, path: Path, snaplen: int = 128, buffer_kib: int = 131072
    ) -> None:
        self.topo, self.ep, self.path = topo, ep, path
        self.cmd = [
            "tcpdump",
            "-i",
            topo.eps[ep].ifname,
            "-n",
            "-s",
            str(snaplen),
            "-B",
            str(buffer_kib),
            "-w",
            str(path),
            "--immediate-mode",
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.before: dict[str, int] = {}

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = self.topo.popen(self.ep, self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        wait_line(self.proc, self.proc.stderr, "listening on", 15)
        time.sleep(0.2)
        self.before = self.topo.counters(self.ep)

    def stop(self) -> CaptureStats:
        assert self.proc is not None and self.proc.stderr is not None
        time.sleep(0.3)
        after = self.topo.counters(self.ep)
        self.proc.send_signal(signal.SIGINT)
        try:
            err = self.proc.stderr.read()
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            err = ""

        def num(pattern: str) -> int:
            m = re.search(r"(\d+) packets? " + pattern, err)
            return int(m.group(1)) if m else -1

        return CaptureStats(
            captured=num("captured"),
            received_by_filter=num("received by filter"),
            dropped_by_kernel=num("dropped by kernel"),
            interface_packets=(after["rx_packets"] - self.before["rx_packets"])
            + (after["tx_packets"] - self.before["tx_packets"]),
            interface_dropped=(after["rx_dropped"] - self.before["rx_dropped"])
            + (after["tx_dropped"] - self.before["tx_dropped"]),
        )
