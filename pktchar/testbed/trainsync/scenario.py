"""The training-sync scenario on the runner: workers w0..wN-1 on a bridge, every link captured."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...core.errors import PktcharError
from ...core.packets import Transport
from ..netns import Link, Topology
from ..runner import Progress
from ..schema import Calibration, Events, FlowPrediction, FramePrediction, Outcome, Prediction
from .host import calibration_sizes
from .plan import Plan, TrainConfig


def worker_name(k: int) -> str:
    return f"w{k}"


def worker_cmd(cfg: TrainConfig, rank: int, local: bool = False, sizes: list[int] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pktchar.testbed.train_procs", "--rank", str(rank), "--world", str(cfg.workers),
           "--model", cfg.model, "--classes", str(cfg.classes), "--batch", str(cfg.batch), "--res", str(cfg.res),
           "--steps", str(cfg.steps), "--hook", cfg.hook, "--gap", str(cfg.gap), "--timeout", str(cfg.timeout)]  # fmt: skip
    if cfg.bucket_mb is not None:
        cmd += ["--bucket-mb", str(cfg.bucket_mb)]
    if cfg.freeze:
        cmd.append("--freeze")
    if cfg.data:
        cmd += ["--data", cfg.data]
    if local:
        cmd.append("--local")
    elif sizes:
        cmd += ["--collectives", ",".join(str(b) for b in sizes)]
    return cmd


class Workers:
    """N worker processes read line by line; when one dies the others are stopped at once."""

    def __init__(self, procs: list[subprocess.Popen[str]]) -> None:
        self.procs = procs
        self.q: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        self.threads = [
            threading.Thread(target=self._read, args=(r,), daemon=True) for r in range(len(procs))
        ]
        for t in self.threads:
            t.start()

    def _read(self, r: int) -> None:
        out = self.procs[r].stdout
        assert out is not None
        for line in out:
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    self.q.put((r, json.loads(line)))
        self.q.put((r, None))

    def collect(
        self, outcome: Outcome, budget: float, progress: Progress | None, steps: int
    ) -> list[dict[str, Any]]:
        """Every worker's events until all have ended, one fails, or ``budget`` seconds pass (then the
        others are stopped and what they said before is kept)."""
        events: list[dict[str, Any]] = []
        ended: set[int] = set()
        deadline = time.monotonic() + budget
        while len(ended) < len(self.procs):
            try:
                r, d = self.q.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() > deadline:
                    outcome.error = f"training did not finish within {budget:.0f} s"
                    break
                continue
            if d is None:
                ended.add(r)
                if not self._ended_well(r, outcome):
                    break
                continue
            d["worker"] = r
            events.append(d)
            if "error" in d and outcome.error is None:
                outcome.error = d["error"]
                break
            if d.get("event") == "step" and r == 0 and progress:
                progress(int(d["step"]) + 1, steps)
        if outcome.error:
            self.stop()
            events += self._drain()
        return events

    def _ended_well(self, r: int, outcome: Outcome) -> bool:
        """Worker ``r``'s output ended: False (its exit said in ``outcome``, unless an error is there) if it
        failed."""
        rc = self.procs[r].wait()
        if rc != 0 and outcome.error is None:
            err = (self.procs[r].stderr.read() if self.procs[r].stderr else "").strip().splitlines()
            why = f"killed by signal {-rc}" if rc < 0 else f"exited {rc}"
            outcome.error = f"worker w{r} {why}" + (f" ({err[-1][:200]})" if err and rc > 0 else "")
        return rc == 0

    def _drain(self) -> list[dict[str, Any]]:
        """What the workers said before they were stopped."""
        out = []
        while True:
            try:
                r, d = self.q.get(timeout=0.2)
            except queue.Empty:
                return out
            if d is not None:
                d["worker"] = r
                out.append(d)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)


class TrainScenario:
    """N workers w0..w{N-1} on a bridge, each link shaped both ways at the same rate, all captured."""

    name = "train-sync"

    def __init__(self, cfg: TrainConfig, plan: Plan) -> None:
        self.cfg, self.plan = cfg, plan
        self.calibration = ("w0", "w1") if cfg.calibrate else None
        self.endpoints = [worker_name(k) for k in range(cfg.workers)]
        self.capture_on = list(self.endpoints)
        self.link = Link(cfg.link, cfg.link, 1500)
        self.workers: Workers | None = None
        self.topo: Topology | None = None

    def config(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.cfg).items()}

    def prepare(self) -> str:
        return self.plan.source

    def predict(self, topo: Topology, calibration: Calibration | None) -> Prediction:
        n = self.cfg.workers
        flows = []
        t = Transport("tcp", 1500, app_header=0)
        for r in range(n):
            to = (r - 1) % n
            frames = []
            for k, ph in enumerate(self.plan.steps):
                payload = sum(p.sent[r] for p in ph)
                frames.append(FramePrediction(k, payload, 0, (), 0, sum(p.frames_sent[r] for p in ph), 0,
                                              sum(p.frames_sent[r] for p in ph) * 8 / self.cfg.link))  # fmt: skip
            flows.append(FlowPrediction(
                name=f"w{r} -> w{to}", proto="tcp", src_ip=topo.eps[f"w{r}"].ip, dst_ip=topo.eps[f"w{to}"].ip,
                port=0, mtu=1500, ip_version=4, app_header=t.app_header, rate_bps=self.cfg.link,
                bucket_bytes=self.link.bucket, frames=tuple(frames)))  # fmt: skip
        plan = self.plan.to_dict()
        plan.pop("params"), plan.pop("buffers")
        return Prediction("train-sync", {**self.config(), "plan": plan}, tuple(flows),
                          notes=("frames are steps: payload = gloo stream bytes a worker sends in the step, "
                                 "frame_bytes = its Ethernet bytes (pure ACKs included)",))  # fmt: skip

    def start(self, topo: Topology, work: Path) -> None:
        self.topo = topo
        port_free(topo, "w0", self.cfg.port)

    def traffic(self, topo: Topology, work: Path, outcome: Outcome, progress: Progress | None) -> None:
        procs = []
        master = topo.eps["w0"].ip
        sizes = calibration_sizes(self.plan)  # each worker times these all-reduces alone first
        for r in range(self.cfg.workers):
            env = {**os.environ, "GLOO_SOCKET_IFNAME": topo.eps[f"w{r}"].ifname, "MASTER_ADDR": master,
                   "MASTER_PORT": str(self.cfg.port), "OMP_NUM_THREADS": "1"}  # fmt: skip
            procs.append(topo.popen(f"w{r}", worker_cmd(self.cfg, r, sizes=sizes), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env))  # fmt: skip
        self.workers = Workers(procs)
        budget = 120 + self.cfg.steps * 60 * max(1, self.cfg.batch / 16) * self.cfg.workers
        events = self.workers.collect(outcome, budget, progress, self.cfg.steps)
        if outcome.error and "Address already in use" in outcome.error:
            outcome.error = f"the rendezvous port {self.cfg.port} is in use on w0 ({outcome.error})"
        outcome.details = Events(events)

    def finish(self, topo: Topology) -> None:
        if self.workers is not None:
            self.workers.stop()


def port_free(topo: Topology, ep: str, port: int) -> None:
    """Fail in one line when the rendezvous port cannot be bound in ``ep``'s namespace."""
    code = (f"import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('{topo.eps[ep].ip}', {port}))")  # fmt: skip
    r = subprocess.run(["ip", "netns", "exec", topo.eps[ep].ns, sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    if r.returncode != 0:
        raise PktcharError(
            f"the rendezvous port {port} is in use on {ep} ({topo.eps[ep].ip}): choose another `port`"
        )
