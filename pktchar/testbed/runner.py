"""The scenario runner: one typed path from topology to compare that every live measurement runs on.

    Scenario.prepare()              heavy work before any namespace exists (real payloads, models)
      ─► Topology                   N namespaces, a shaped link per direction (netns.py)
      ─► calibrate()                one bulk TCP transfer: the link rate as it really is
      ─► Scenario.predict()         a typed Prediction, written beside the capture before a byte is sent
      ─► Capture.start()            libpcap in the capturing endpoint's namespace, completeness checked
      ─► Scenario.start()/traffic() the endpoints run the scenario's own traffic
      ─► Capture.stop() ─► compare() ─► Result, written beside the capture (also on Ctrl-C or a lost peer)

A new kind of traffic (model upload, training sync, a fleet of devices) is a new :class:`Scenario`:
its endpoints, link, prediction and traffic; the orchestration, capture, files and compare stay here.
Everything here is light (no torch): only a scenario's own ``prepare`` may load a model.
The records it reads and writes are in :mod:`~pktchar.testbed.schema`; the real-host stand-in for a
topology in :mod:`~pktchar.testbed.hosts`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..core.errors import PktcharError
from ..core.packets import Transport, packetize
from ..core.phases import phase
from .capture import Capture, CaptureStats, wait_line
from .hosts import Hosts
from .netns import Link, TestbedError, Topology, require_root
from .schema import (
    Artifacts,
    Calibration,
    Comparison,
    FramePrediction,
    FrameTiming,
    Outcome,
    Prediction,
    Result,
    load_frames,
)

CALIBRATION_PORT = 5200
RTT_PROBES = 8  # empty frames a calibration between real hosts sends first: their median is the round trip
Progress = Callable[[int, int], None]


def endpoint_cmd(*args: str) -> list[str]:
    """The command line of a pktchar endpoint process (standard library only, no torch)."""
    return [sys.executable, "-m", "pktchar.testbed.endpoint", *args]


# ----------------------------------------------------------------------------------------------
# the contract a scenario fulfils


class Scenario(Protocol):
    """A kind of traffic. The core calls, in order: ``prepare``, ``predict``, ``start``, ``traffic``,
    ``finish`` (always, also after an error), then compares ``prediction.flows`` with the capture.
    ``traffic`` records into the ``outcome`` it is given as it goes, so what was measured before
    Ctrl-C or a lost peer is kept."""

    name: str
    endpoints: list[str]  # the last one is the edge: tbf on its egress is the downlink
    link: Link
    capture_on: str | list[str]  # the endpoint(s) whose interface is captured; the first is Result.capture
    calibration: tuple[str, str] | None  # (from, to) endpoints of the calibration transfer, or None

    def config(self) -> dict[str, Any]: ...

    def prepare(self) -> str: ...  # heavy work before namespaces; returns what the payloads are

    def predict(self, topo: Topology, calibration: Calibration | None) -> Prediction: ...

    def start(self, topo: Topology, work: Path) -> None: ...

    def traffic(self, topo: Topology, work: Path, outcome: Outcome, progress: Progress | None) -> None: ...

    def finish(self, topo: Topology) -> None: ...


# ----------------------------------------------------------------------------------------------
# the orchestration every scenario shares


def predict_frames(
    payloads: list[int], transport: Transport, link: Link, calibrated_bps: float | None = None
) -> tuple[FramePrediction, ...]:
    """Packets and transfer times of application frames of ``payloads`` bytes over ``link``'s uplink: each
    frame handed to the socket at once, starting on a full tbf bucket (``shaping.transfer_time``)."""
    from ..core.shaping import frame_lengths, transfer_time

    out = []
    for i, s in enumerate(payloads):
        pk = packetize(s, transport)
        lengths = frame_lengths(pk.sizes)
        out.append(
            FramePrediction(
                id=i,
                payload=s,
                packets=pk.count,
                sizes=pk.sizes,
                ip_bytes=pk.ip_bytes,
                frame_bytes=pk.frame_bytes,
                wire_bytes=pk.wire_bytes,
                transfer_s=transfer_time(lengths, link.uplink, link.bucket),
                transfer_s_calibrated=transfer_time(lengths, calibrated_bps, link.bucket)
                if calibrated_bps
                else None,
            )
        )
    return tuple(out)


def calibrate(topo: Topology, src: str, dst: str, link: Link, work: Path) -> Calibration:
    """One bulk TCP frame (a quarter second at the rate, 256 kB to 32 MB) from ``src`` to ``dst``, timed
    from the send call to its last byte at the receiver (CLOCK_MONOTONIC, shared by the namespaces). Between
    real hosts (the edge's clock is another machine's) from the send call to the edge's answer back at the
    sender, less the median round trip of :data:`RTT_PROBES` empty frames sent first."""
    size = int(min(32e6, max(256e3, link.uplink / 8 * 0.25)))
    (work / "calib.bin").write_bytes(os.urandom(min(size, 1 << 20)))
    remote = getattr(topo, "remote", False)  # a real edge: `pktchar serve` answers calibration frames too
    # between real hosts a frame is timed to its answer back here: empty frames first give the round trip
    probes = RTT_PROBES if remote else 0
    (work / "calib.json").write_text(json.dumps([0] * probes + [size]))
    port = topo.port if remote else CALIBRATION_PORT  # type: ignore[attr-defined]
    recv = None
    if not remote:
        recv = topo.popen(dst, endpoint_cmd("recv", "--port", str(port), "--proto", "tcp"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        if recv is not None:
            assert recv.stdout is not None
            wait_line(recv, recv.stdout, "READY", 30)
        send = topo.popen(
            src,
            endpoint_cmd(
                "send",
                "--host",
                topo.eps[dst].ip,
                "--port",
                str(port),
                "--proto",
                "tcp",
                "--payload",
                str(work / "calib.bin"),
                "--sizes",
                str(work / "calib.json"),
                "--mtu",
                str(link.mtu),
                "--calibration",
                "--split",
                "65535",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = send.communicate(timeout=60 + size * 8 / link.uplink * 4)
        except subprocess.TimeoutExpired:
            send.kill()
            raise TestbedError("calibration transfer did not finish in time") from None
    finally:
        if recv is not None:
            recv.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                recv.wait(timeout=5)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if send.returncode != 0 or not lines or "error" in lines[-1]:
        detail = lines[-1].get("error") if lines else (err.strip() or f"exit {send.returncode}")
        raise TestbedError(f"calibration transfer failed: {detail}")
    r = lines[-1]
    t = Transport("tcp", link.mtu)
    pk = packetize(size, t)
    # timed from the send call to the last byte in: everything beyond the bucket's credit went at the rate
    # (timing from the first byte in overstates the rate on a loaded machine, where the receiver wakes late)
    span = (r["done_ns"] - r["send_ns"]) / 1e9
    rtt = None
    if remote:  # the edge's clock is another machine's: timed to the answer back here, less a round trip
        import statistics

        span = (r["answer_ns"] - r["send_ns"]) / 1e9
        rtt = statistics.median([(x["answer_ns"] - x["send_ns"]) / 1e9 for x in lines[:-1]])
        rtt = min(rtt, span / 2)  # a round trip beyond half the bulk frame's time is noise, not the path
    moving = span - (rtt or 0.0)
    moved = max(1, pk.frame_bytes - link.bucket)
    app = size + t.app_header
    return Calibration(
        bytes=size,
        seconds=span,
        link_rate_set_bps=link.uplink,
        link_rate_measured_bps=moved * 8 / moving,
        goodput_measured_bps=app * 8 / moving,
        goodput_predicted_bps=app * 8 / (moved * 8 / link.uplink),
        rtt_s=rtt,
    )


def environment(topo: Topology) -> dict[str, Any]:
    """Kernel, qdiscs, offloads and tool versions: what a reader needs to trust the numbers."""

    def version(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    from .. import __version__

    tools = {
        "pktchar": __version__,
        "python": platform.python_version(),
        "tcpdump": version(["tcpdump", "--version"]),
        "iproute2": version(["ip", "-V"]),
        "ethtool": version(["ethtool", "--version"]),
    }
    if "torch" in sys.modules:  # say which torch made the payloads, without importing it here
        tools["torch"] = sys.modules["torch"].__version__
    env: dict[str, Any] = {
        "kernel": platform.release(),
        "netem": topo.netem,
        "qdisc": topo.settings.get("qdisc", {}),
        "offloads": topo.settings.get("offloads", {}),
        "tcp_slow_start_after_idle": 0,
        "tools": tools,
    }
    with contextlib.suppress(TestbedError):
        env["qdisc_stats"] = topo.qdisc_stats()
    return env


def run(
    scenario: Scenario,
    pcap: Path,
    *,
    calibrate_link: bool = True,
    capture: str = "tcpdump",
    snaplen: int | None = None,
    progress: Progress | None = None,
    hosts: Hosts | None = None,
) -> Result:
    """Run ``scenario`` end to end. The prediction is written before any traffic; the result is
    written at the end, also when a peer is lost or the run is interrupted (then KeyboardInterrupt is
    raised again after the files are safe). With ``hosts`` the run goes between this machine and a real
    edge (``pktchar serve``): no namespaces, no shaping, a capture only on ``hosts``' interface."""
    on = _capture_on(scenario, hosts)
    if hosts is None or on:
        require_root()
    st = _Run(scenario, Artifacts(Path(pcap), tuple(on[1:]), capturing=bool(on)), on)
    st.artifacts.pcap.parent.mkdir(parents=True, exist_ok=True)
    phase(f"{scenario.name}: preparing the payloads")
    source = scenario.prepare()
    phase(
        f"{scenario.name}: "
        + ("reaching the edge host" if hosts is not None else "creating namespaces and links")
    )
    with (
        tempfile.TemporaryDirectory(prefix="pktchar-") as tmp,
        hosts
        or Topology(
            scenario.endpoints,
            scenario.link,
            uplinks=dict(getattr(scenario, "uplinks", {})),
            bridged=bool(getattr(scenario, "bridged", False)),
        ) as topo,
    ):
        work = Path(tmp)
        os.chmod(work, 0o755)  # endpoint processes read their payload files from here
        try:
            st.go(
                topo,
                work,
                calibrate_link,
                progress,
                {"backend": capture, **({"snaplen": snaplen} if snaplen else {})},
            )
        except KeyboardInterrupt:
            st.interrupt()
        finally:
            st.stop(topo)
    result = st.result(source)
    phase(
        f"{scenario.name}: comparing the capture with the prediction"
        if result.capture
        else f"{scenario.name}: done"
    )
    _compare_into(result)
    result.save()
    if st.interrupted:
        raise Interrupted(result)
    return result


def _capture_on(scenario: Scenario, hosts: Hosts | None) -> list[str]:
    """The endpoints captured: the scenario's, or between real hosts this host's named interface, if any."""
    if hosts is not None:
        first = hosts.devices[0]
        return [first] if hosts.eps[first].ifname else []
    return [scenario.capture_on] if isinstance(scenario.capture_on, str) else list(scenario.capture_on)


@dataclass
class _Run:
    """One run's state as it goes: what it has made and measured is kept when it stops early."""

    scenario: Scenario
    artifacts: Artifacts
    on: list[str]  # the endpoints captured
    interrupted: bool = False
    calibration: Calibration | None = None
    prediction: Prediction | None = None
    outcome: Outcome = field(default_factory=Outcome)
    caps: list[Capture] = field(default_factory=list)
    stats: dict[str, CaptureStats] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    def interrupt(self) -> None:
        self.interrupted, self.outcome.error = True, "interrupted"

    def go(
        self, topo: Topology, work: Path, calibrate_link: bool, progress: Progress | None,
        capture: dict[str, Any],
    ) -> None:  # fmt: skip
        """Calibrate, predict (the prediction written at once), start the endpoints and captures, send."""
        sc, on = self.scenario, self.on
        if calibrate_link and sc.calibration:
            phase(f"{sc.name}: calibrating the link (a bulk transfer)")
            self.calibration = calibrate(topo, *sc.calibration, sc.link, work)
        phase(f"{sc.name}: predicting")
        self.prediction = sc.predict(topo, self.calibration)
        self.prediction.save(self.artifacts.prediction)
        phase(f"{sc.name}: starting the endpoints" + (f" and capturing on {', '.join(on)}" if on else ""))
        sc.start(topo, work)
        for ep in on:
            self.caps.append(Capture(topo, ep, self.artifacts.capture(ep), **capture))  # type: ignore[arg-type]
            self.caps[-1].start()
        phase(f"{sc.name}: sending")
        sc.traffic(topo, work, self.outcome, progress)

    def stop(self, topo: Topology) -> None:
        """Always: the scenario's endpoints, then every capture (its statistics), then the environment."""
        with contextlib.suppress(Exception):
            self.scenario.finish(topo)
        for cap in self.caps:
            try:
                self.stats[cap.ep] = cap.stop()
            except KeyboardInterrupt:
                self.interrupt()
        self.env = environment(topo)

    def result(self, source: str) -> Result:
        """The run as a :class:`Result`; stopped before its prediction existed, nothing was sent or captured:
        KeyboardInterrupt again, or the error."""
        sc, out = self.scenario, self.outcome
        if self.prediction is None:
            if self.interrupted:
                raise KeyboardInterrupt
            raise TestbedError(out.error or "the run stopped before its prediction was made")
        return Result(
            sc.name,
            sc.config(),
            self.artifacts,
            self.prediction,
            self.calibration,
            self.stats.get(self.on[0]) if self.on else None,
            out.frames,
            None,
            self.env,
            source,
            out.error,
            self.interrupted,
            details=out.details,
            captures=self.stats,
        )


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: the files are written; ``result`` holds what was measured."""

    def __init__(self, result: Result) -> None:
        super().__init__("interrupted")
        self.result = result


def _compare_into(result: Result) -> None:
    """Set each flow's capture beside its prediction (only the frames measured, when a run stopped early)."""
    from .compare import compare

    if not result.frames or result.capture is None:
        return
    flow = result.prediction.flow()
    if len(result.frames) < len(flow.frames):
        flow = flow.first(len(result.frames))
        result.notes.append(f"compared the {len(result.frames)} frames measured before the run stopped")
    try:
        result.comparison = compare(result.artifacts.pcap, flow, result.frames)
    except PktcharError as e:
        result.notes.append(f"compare failed: {e}")


def wait_done(proc: subprocess.Popen[str], timeout: float) -> None:
    """Wait for ``proc``; terminate it if it does not end in ``timeout`` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def read_frames(
    proc: subprocess.Popen[str], total: int, budget_s: float, out: Outcome, progress: Progress | None = None
) -> None:
    """Collect a sender's JSON lines (one a frame, or an ``error`` line) into ``out`` within ``budget_s``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + budget_s
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "error" in d:
            out.error = d["error"]
            break
        out.frames.append(FrameTiming.from_dict(d))
        if progress:
            progress(len(out.frames), total)
        if time.monotonic() > deadline:
            out.error = f"the run did not finish within {budget_s:.0f} s"
            break
    wait_done(proc, 10)
    if out.error is None and proc.returncode not in (0, None):
        err = proc.stderr.read() if proc.stderr else ""
        out.error = f"sender exited {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"


def compare_capture(pcap: Path, prediction: Path | None = None, *, partial: bool = False) -> Comparison:
    """Compare a capture with the prediction beside it (or ``prediction``) and the application
    timings of the result file beside it; without a prediction, the busiest flow as one transfer."""
    from .compare import compare

    artifacts = Artifacts(Path(pcap))
    path = prediction or artifacts.prediction
    pred = Prediction.load(path) if (prediction or path.exists()) else None
    if pred is None:
        c = compare(pcap, None, None, partial=partial)
        c.notes.append("no prediction: the busiest flow is analysed as one transfer")
        return c
    frames = load_frames(artifacts.result) if artifacts.result.exists() else None
    flow = pred.flow()
    if frames is not None and 0 < len(frames) < len(flow.frames):
        flow = flow.first(len(frames))
    return compare(pcap, flow, frames, partial=partial)
