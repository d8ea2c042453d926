"""Incremental model upload, live: a complete mobilenet_v1 upload in both modes (root, runs under CI)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from pktchar.model import partition as P
from pktchar.model import zoo
from pktchar.testbed.upload import UploadConfig, upload

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("nothing_left_behind")]

# Idle uplink: a gap between the device's packets longer than two full packets take at 80 Mbit/s (151 us each).
IDLE_GAP_S = 3e-4


def test_mobilenet_v1_both_modes(tmp_path):
    # 4 partitions of about equal bytes, not "auto": auto's plan follows unit times this loaded machine
    # measures, and gave 1 to 13 partitions between runs; with one there is no build to overlap
    cfg = UploadConfig("mobilenet_v1", link=80e6, create="both", partitions="4", queries_after=3,
                       device_cpu=0.25, pcap=tmp_path / "m.pcap")  # fmt: skip
    rep = upload(cfg)
    assert not rep.notes, rep.notes
    seq, par = rep.mode("sequential"), rep.mode("parallel")
    assert seq and par and seq.upload_s and par.upload_s
    # the bytes sent are the serialized partitions: rebuild each partition's state here, independently
    torch.manual_seed(0)
    ch = P.chain(zoo.build(zoo.resolve("mobilenet_v1"), device="cpu").eval(), "mobilenet_v1")
    for (a, b), size, blob_state in zip(rep.plan.ranges, rep.plan.sizes, _states(rep), strict=True):
        buf = io.BytesIO()
        torch.save(ch.module(a, b).state_dict(), buf)
        assert len(blob_state) == len(buf.getvalue()) and size > len(blob_state)
    for m in (seq, par):
        # every partition crossed the link: the capture's upload bytes within 1% of the prediction
        assert m.wire_bytes_measured is not None
        assert abs(m.wire_bytes_measured / m.wire_bytes_predicted - 1) < 0.01
        assert m.result.capture is not None and m.result.capture.complete
        after = [q for q in m.queries if not q["during_upload"]]
        assert len(after) >= 3 and all(q["plan"] == len(rep.plan.ranges) for q in after)
        # the upload cannot beat the bytes it carries at the link rate
        assert m.upload_s > m.exact_s * 0.99
    assert par.build_total_s > 0 and len(par.builds) <= len(seq.builds) == len(rep.plan.ranges)
    # The paper's claim: with parallel creation the upload thread never waits for a build (each thread
    # names itself in its build event) ...
    assert {b["thread"] for b in par.builds} == {"create"}
    assert "create" not in {b["thread"] for b in seq.builds}
    # ... so its builds leave the uplink busy where the sequential ones idled it. A build stalls the link only
    # once the edge's receive window is full (TCP grows the window as the connection goes: the first build,
    # early, stalls most of its time, later ones little), so what a mode's builds cost is the uplink's idle
    # time during them in the capture; the last build starts after the last byte is in, and costs none.
    spans = {m.mode: [(b["start_s"], b["start_s"] + b["seconds"]) for b in m.builds[:-1]] for m in (seq, par)}
    stalled, idle_par = _link_idle(seq, spans["sequential"]), _link_idle(par, spans["parallel"])
    # 9 runs of this plan (2026-12-01, 3 quiet, 6 beside other work): the sequential builds idled the link
    # 36-61 ms, the parallel builds 0.6-10.5 ms (the create thread takes a core from the edge's receiver and
    # tcpdump): a factor of 3.8 or more. Equal idling would mean the builds block the upload again.
    assert idle_par < stalled, (idle_par, stalled)
    # The paper's measure, upload completion: parallel creation not slower. Tolerance, the widest run-to-run
    # spread of one mode's upload time in those 9 runs (sequential 2.341-2.503 s, parallel 2.254-2.317 s),
    # 0.16 s: the builds here are short (tens of ms, against 0.9 s saved in the paper's MobileNet row), so
    # the saving itself (0.05-0.25 s in those runs, parallel faster in all 9) is within a run's noise, and
    # what the test can hold on every run is that parallel creation costs the upload nothing beyond it.
    assert par.upload_s <= seq.upload_s + 0.16, (par.upload_s, seq.upload_s)


def _link_idle(m, spans: list[tuple[float, float]]) -> float:
    """Seconds the uplink (every packet the device sent with data, the queries' too) carried nothing during
    ``spans`` (seconds from the run's start, CLOCK_MONOTONIC), from the capture at the edge. The capture's
    clock is put on the events' by the first packet of partition 0, which the edge's upload thread, waiting
    in recv, stamps (first_ns) as it arrives."""
    from pktchar.testbed.pcap import read
    from pktchar.testbed.schema import Events
    from pktchar.testbed.upload import UPLOAD_PORT

    ev = Events.of(m.result)
    start = next(e["t_ns"] for e in ev if e.get("event") == "start") / 1e9
    first = min(e["first_ns"] for e in ev if e.get("event") == "partition" and e["id"] == 0) / 1e9
    dev = m.result.prediction.flow("upload").src_ip
    pkts = [p for p in read(m.result.artifacts.pcap) if p.src == dev and p.payload > 0]
    offset = next(p.ts for p in pkts if p.dport == UPLOAD_PORT) - first  # capture clock - monotonic
    ts = [p.ts - offset - start for p in pkts]
    idle = 0.0
    for a, b in spans:
        inside = [a, *(t for t in ts if a < t < b), b]
        idle += sum(g for g in (y - x for x, y in pairwise(inside)) if g > IDLE_GAP_S)
    return idle


def _states(rep) -> list[bytes]:
    out, off = [], 0
    for n in rep.plan.sizes:
        _, state = P.unpack(rep.plan.blobs[off : off + n])
        out.append(state)
        off += n
    return out


def test_edge_killed_mid_upload(tmp_path):
    """The edge dies while partitions upload: one line, exit 3, the measurements kept, nothing left."""
    exe = Path(sys.executable).with_name("pktchar")
    pcap = tmp_path / "k.pcap"
    proc = subprocess.Popen([str(exe), "upload", "mobilenet_v1", "--link", "10mbit", "--create", "parallel",
                             "--partitions", "8", "--no-calibrate", "--pcap", str(pcap)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    end = time.monotonic() + 240
    edge = None
    while time.monotonic() < end and edge is None:
        assert proc.poll() is None, proc.communicate()
        if _ours("upload_procs device"):  # the device is up: the upload starts
            edge = (_ours("upload_procs edge") or [None])[0]
        time.sleep(0.5)
    assert edge is not None, "the upload never started"
    time.sleep(2.0)  # 16 MB at 10 Mbit/s takes 14 s: the upload is under way
    os.kill(edge, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "Traceback" not in err
    assert "edge lost" in err or "edge exited" in err or "connection" in err.lower()
    saved = json.loads(pcap.with_suffix(".result.json").read_text())
    assert saved["error"] and saved["extra"]["events"]


def _ours(pattern: str) -> list[int]:
    """PIDs matching ``pattern`` started by this test's runs (their environment carries its tag)."""
    tag = f"PKTCHAR_RUN_TAG={os.environ['PKTCHAR_RUN_TAG']}".encode()
    out = []
    for p in subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split():
        try:
            if tag in Path(f"/proc/{p}/environ").read_bytes().split(b"\0"):
                out.append(int(p))
        except OSError:
            pass
    return out
