"""Data-parallel training sync, live on the testbed: a scenario of the scenario core.

The system is the one of "Performance Evaluation of Deep Learning Distributed Training on Edge Devices"
(KETI/ETRI, 2023): N workers train the same network on the CPU, synchronising every step. Here each
worker is a process in its own namespace on a bridge, each worker's link shaped, running PyTorch's
DistributedDataParallel over gloo (bound to the namespace's veth with GLOO_SOCKET_IFNAME; the
rendezvous is a TCPStore on rank 0). Every worker's link is captured.

What is predicted, from first principles (checked against torch 2.14's nn/parallel/distributed.py and
gloo's allreduce.cc, broadcast.cc and transport/tcp/pair.cc):

* construction: rank 0 broadcasts every parameter and buffer (``_sync_module_states``: flattened per
  dtype in buckets of 250 MiB); before it, ``_verify_params_across_processes`` exchanges shapes;
* every forward (``broadcast_buffers=True``): rank 0 broadcasts the buffers (BatchNorm statistics),
  one flattened broadcast per dtype;
* every backward: the gradients of the trainable parameters, all-reduced in buckets. In torch 2.14 the
  first iteration has ONE bucket (without ``find_unused_parameters`` the initial limit is sys.maxsize);
  after it the buckets are rebuilt in gradient-ready order (reverse registration order for a chain),
  the first closed at 1 MiB (torch's default first bucket, ``torch_compat.DDP_FIRST_BUCKET_BYTES``, only
  when ``bucket_cap_mb`` is left at its default; otherwise the first bucket has the cap too), the rest at
  ``bucket_cap_mb`` (25 MiB); a bucket closes once it reaches its limit. The rebuild costs two broadcasts of int32 indices (every
  trainable parameter's + 1, then one a bucket) in the second forward;
* gloo's ring all-reduce (allreduce.cc): numSegments = roundUp(max(ceil(bytes / 1 MiB), 2N), N)
  segments; N-1 rounds of reduce-scatter then N-1 of all-gather, each rank sending its segments to
  rank-1: 2(N-1)/N of the bucket; a broadcast is a binomial tree (broadcast.cc);
* gloo's TCP framing (pair.h, pair.cc): every message starts with a 48-byte preamble (six size_t); a
  send is a NOTIFY_SEND_READY preamble then a SEND_UNBOUND_BUFFER preamble with the data; every
  receive posts a NOTIFY_RECV_READY preamble to the sender. So a message of L bytes costs the sender
  96 + L and the receiver 48;
* TCP/IPv4/Ethernet: 66 B of headers a segment (14 + 20 + 20 + 12 B timestamps), MSS 1448 at MTU 1500.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import PktcharError
from ..core.packets import Transport
from ..core.phases import phase as announce
from ..core.wire import ETH_HEADER, IP_HEADER, TCP_HEADER, TCP_TIMESTAMPS
from .netns import Link, Topology, require_root
from .runner import Progress, run
from .schema import Calibration, FlowPrediction, FramePrediction, Outcome, Prediction, Result

GLOO_PREAMBLE = (
    48  # gloo/transport/tcp/pair.h, struct Op::preamble: nbytes, opcode, slot, offset, length, roffset
)
GLOO_MAX_SEGMENT = 1 << 20  # gloo/allreduce.h, kMaxSegmentSize
MIB = 1 << 20  # DDP's bucket_cap_mb is in MiB (nn/parallel/distributed.py, _MB_TO_BYTES)
DEFAULT_CAP_MB = 25
BROADCAST_BUCKET = 250 * MIB  # DDP's broadcast_bucket_size
MASTER_PORT = 29500
PER_PACKET = ETH_HEADER + IP_HEADER[4] + TCP_HEADER + TCP_TIMESTAMPS  # 66 B of headers a TCP segment
MAX_WORKERS = 8
WORKER_MB = 450  # resident memory of one idle worker process with torch loaded (measured here: ~400 MB)
PAPER = {"one_board_s": 9310.0, "two_boards_s": 28248.0, "epochs": 100, "images": 50000, "batch": 64,
         "link_bps": 1e9}  # fmt: skip
PAPER_STEPS = PAPER["epochs"] * math.ceil(PAPER["images"] / PAPER["batch"])  # 100 x 782 = 78,200


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m


# ----------------------------------------------------------------------------------------------
# gloo's collectives as messages


@dataclass(frozen=True)
class Msg:
    """One gloo message on the TCP stream from ``src`` to ``dst``: ``size`` bytes, preamble included."""

    src: int
    dst: int
    size: int
    what: str


def ring_allreduce(total: int, elem: int, n: int) -> list[Msg]:
    """Every message of gloo's ring all-reduce of ``total`` bytes over ``n`` ranks (allreduce.cc, ring)."""
    if n < 2 or total <= 0:
        return []
    seg_max = elem * max(1, GLOO_MAX_SEGMENT // elem)
    num = _round_up(max(-(-total // seg_max), 2 * n), n)
    per = num // n
    seg = _round_up(-(-total // num), elem)
    out: list[Msg] = []
    for r in range(n):
        send_to, recv_from = (r - 1) % n, (r + 1) % n
        for phase, (s_off, r_off) in (("reduce-scatter", (1, 2)), ("all-gather", (0, 1))):
            for i in range(num - per):
                so = (((r + s_off) * per + i) * seg) % (num * seg)
                ro = (((r + r_off) * per + i) * seg) % (num * seg)
                if total - ro > 0:
                    out.append(Msg(r, recv_from, GLOO_PREAMBLE, "recv-ready"))
                if total - so > 0:
                    length = min(seg, total - so)
                    out.append(Msg(r, send_to, GLOO_PREAMBLE, "send-ready"))
                    out.append(Msg(r, send_to, GLOO_PREAMBLE + length, phase))
    return out


def broadcast(total: int, n: int, root: int = 0) -> list[Msg]:
    """Every message of gloo's binomial-tree broadcast of ``total`` bytes from ``root`` (broadcast.cc)."""
    if n < 2:
        return []
    dim = max(1, math.ceil(math.log2(n)))
    out: list[Msg] = []
    for rank in range(n):
        vrank = (rank - root) % n
        mask = (1 << dim) - 1
        for i in range(dim):
            mask ^= 1 << i
            if vrank & mask:
                continue
            vpeer = vrank ^ (1 << i)
            if vpeer >= n:
                continue
            peer = (vpeer + root) % n
            if vrank & (1 << i) == 0:
                out += [
                    Msg(rank, peer, GLOO_PREAMBLE, "send-ready"),
                    Msg(rank, peer, GLOO_PREAMBLE + total, "bcast"),
                ]
            else:
                out.append(Msg(rank, peer, GLOO_PREAMBLE, "recv-ready"))
    return out


def coalesced(tensors: list[tuple[int, str]], limit: int) -> list[int]:
    """Bytes of each flattened broadcast of ``_broadcast_coalesced``: tensors (bytes, dtype) grouped by
    dtype, each group cut where it reaches ``limit``."""
    groups: dict[str, list[int]] = {}
    out: list[int] = []
    for nbytes, dtype in tensors:
        g = groups.setdefault(dtype, [0])
        g[-1] += nbytes
        if g[-1] >= limit:
            g.append(0)
    for g in groups.values():
        out += [b for b in g if b > 0]
    return out


def buckets(sizes: list[int], limits: list[int]) -> list[int]:
    """Bucket bytes of DDP's assignment (compute_bucket_assignment_by_size): tensors in the order given,
    a bucket closes once it reaches its limit; the limits are used in turn, the last one repeated."""
    out: list[int] = []
    cur, k = 0, 0
    for s in sizes:
        cur += s
        if cur >= limits[min(k, len(limits) - 1)]:
            out.append(cur)
            cur, k = 0, k + 1
    if cur:
        out.append(cur)
    return out


# ----------------------------------------------------------------------------------------------
# the plan: what one step puts on the wire


@dataclass
class TrainConfig:
    model: str = "seed000"
    workers: int = 2
    link: float = 1e9
    batch: int = 64
    res: int = 64
    classes: int = 100
    steps: int = 5
    freeze: bool = False
    bucket_mb: float | None = None  # None: DDP's default (first bucket 1 MiB, then 25 MiB)
    hook: str = "none"
    data: str | None = None
    pcap: Path | None = None
    port: int = MASTER_PORT
    gap: float = 0.3
    timeout: float = 30.0
    calibrate: bool = True  # time a bulk transfer w0 -> w1 first: the rate this machine really forwards


@dataclass
class Phase:
    """One collective of a step: what it is, its bytes, and its messages' bytes per worker."""

    name: str
    bytes: int  # the tensor bytes it moves (a bucket, a broadcast)
    sent: list[int]  # gloo stream bytes each worker sends (preambles included)
    received: list[int]
    frames_sent: list[int]  # Ethernet frame bytes (no FCS) of the data segments each worker sends

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    model: str
    workers: int
    params: list[list[Any]]  # name, elements, bytes an element, dtype, trainable, dims
    buffers: list[list[Any]]
    trainable: int  # trainable parameter elements
    grad_bytes: int  # trainable gradient bytes as all-reduced (after the hook's compression)
    elem: int  # bytes an all-reduced element
    first_buckets: list[int]
    rebuilt_buckets: list[int]
    buffer_bcasts: list[int]
    state_bcasts: list[int]
    construction: Phase
    steps: list[list[Phase]]  # one list of phases per step
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def step_total(self, k: int, key: str = "sent", rank: int = 0) -> int:
        return sum(getattr(p, key)[rank] for p in self.steps[k])

    def allreduce_frames(self, k: int, rank: int = 0) -> int:
        return sum(p.frames_sent[rank] for p in self.steps[k] if p.name.startswith("bucket"))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d


def _frames(msgs: list[Msg], n: int, mss: int, per_packet: int) -> list[int]:
    """Ethernet bytes of the data segments each rank sends for ``msgs``: every message its own segments
    (gloo writes each with its own writev on a TCP_NODELAY socket). Pure ACKs are not in it: how many
    there are depends on timing (they ride on data going the other way when there is some); they are
    measured and shown beside."""
    out = [0] * n
    for m in msgs:
        seg = max(1, -(-m.size // mss))
        out[m.src] += m.size + seg * per_packet
    return out


def phase(name: str, nbytes: int, msgs: list[Msg], n: int, mtu: int = 1500) -> Phase:
    per_packet = ETH_HEADER + IP_HEADER[4] + TCP_HEADER + TCP_TIMESTAMPS
    mss = mtu - IP_HEADER[4] - TCP_HEADER - TCP_TIMESTAMPS
    sent, recv = [0] * n, [0] * n
    for m in msgs:
        sent[m.src] += m.size
        recv[m.dst] += m.size
    return Phase(name, nbytes, sent, recv, _frames(msgs, n, mss, per_packet))


def make_plan(model: str, desc: dict[str, Any], cfg: TrainConfig, mtu: int = 1500) -> Plan:
    """Per step and per worker, from the parameter list alone (see the module's docstring)."""
    n = cfg.workers
    params, bufs = desc["params"], desc["buffers"]
    train = [p for p in params if p[4]]
    if not train:
        raise PktcharError(f"{model} has no trainable parameters{' with --freeze-backbone' if cfg.freeze else ''}: "
                           "there is nothing to synchronise")  # fmt: skip
    elem = 2 if cfg.hook in ("fp16", "bf16") else 4
    grads = [p[1] * elem for p in train]
    # torch is loaded by now (the parameter list came from a model built with it); this module is not
    from ..model.torch_compat import DDP_FIRST_BUCKET_BYTES

    cap = int((cfg.bucket_mb if cfg.bucket_mb is not None else DEFAULT_CAP_MB) * MIB)
    first = DDP_FIRST_BUCKET_BYTES if cfg.bucket_mb is None else cap
    first_buckets = [sum(grads)]  # torch 2.14: one bucket for the first iteration
    rebuilt = buckets(list(reversed(grads)), [first, cap])
    buffer_b = coalesced([(b[1] * b[2], b[3]) for b in bufs], BROADCAST_BUCKET)
    state_b = coalesced(
        [(p[1] * p[2], p[3]) for p in params] + [(b[1] * b[2], b[3]) for b in bufs], BROADCAST_BUCKET
    )
    # construction: _verify_params_across_processes (shapes: an all-gather of one int64, then rank 0's
    # metadata broadcast, two int64 a dimension of every trainable parameter) then the state broadcast
    verify = 8 * (2 * sum(p[5] for p in train) + 1)
    cmsgs = broadcast(verify, n) + [m for b in state_b for m in broadcast(b, n)]
    construction = phase("construction", verify + sum(state_b), cmsgs, n, mtu)
    steps: list[list[Phase]] = []
    for k in range(cfg.steps):
        ph: list[Phase] = []
        if k == 1 and n > 1:  # the rebuild: rank 0's bucket indices, then the bucket count
            idx = 4 * (len(train) + 1)
            ph.append(phase("rebuild indices", idx, broadcast(idx, n), n, mtu))
            ph.append(phase("rebuild sizes", 4 * len(rebuilt), broadcast(4 * len(rebuilt), n), n, mtu))
        for i, b in enumerate(buffer_b):
            ph.append(phase(f"buffers {i}", b, broadcast(b, n), n, mtu))
        for i, b in enumerate(first_buckets if k == 0 else rebuilt):
            ph.append(phase(f"bucket {i}", b, ring_allreduce(b, elem, n), n, mtu))
        steps.append(ph)
    return Plan(model, n, params, bufs, sum(p[1] for p in train), sum(grads), elem, first_buckets, rebuilt,
                buffer_b, state_b, construction, steps)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# the scenario


def worker_name(k: int) -> str:
    return f"w{k}"


def worker_cmd(cfg: TrainConfig, rank: int, local: bool = False) -> list[str]:
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
                rc = self.procs[r].wait()
                if rc != 0 and outcome.error is None:
                    err = (self.procs[r].stderr.read() if self.procs[r].stderr else "").strip().splitlines()
                    why = f"killed by signal {-rc}" if rc < 0 else f"exited {rc}"
                    outcome.error = f"worker w{r} {why}" + (f" ({err[-1][:200]})" if err and rc > 0 else "")
                if rc != 0:
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
            while True:  # what the others said before they were stopped
                try:
                    r, d = self.q.get(timeout=0.2)
                except queue.Empty:
                    break
                if d is not None:
                    d["worker"] = r
                    events.append(d)
        return events

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
        for r in range(self.cfg.workers):
            env = {**os.environ, "GLOO_SOCKET_IFNAME": topo.eps[f"w{r}"].ifname, "MASTER_ADDR": master,
                   "MASTER_PORT": str(self.cfg.port), "OMP_NUM_THREADS": "1"}  # fmt: skip
            procs.append(topo.popen(f"w{r}", worker_cmd(self.cfg, r), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env))  # fmt: skip
        self.workers = Workers(procs)
        budget = 120 + self.cfg.steps * 60 * max(1, self.cfg.batch / 16) * self.cfg.workers
        events = self.workers.collect(outcome, budget, progress, self.cfg.steps)
        if outcome.error and "Address already in use" in outcome.error:
            outcome.error = f"the rendezvous port {self.cfg.port} is in use on w0 ({outcome.error})"
        outcome.extra["events"] = events

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
            f"the rendezvous port {port} is in use on {ep} ({topo.eps[ep].ip}): choose another --port"
        )


# ----------------------------------------------------------------------------------------------
# measured against predicted


@dataclass
class StepRow:
    step: int
    sent_measured: int | None  # w0's Ethernet bytes of data segments sent in the step (first transmissions)
    sent_predicted: int
    payload_measured: int | None  # w0's TCP payload bytes sent in the step
    payload_predicted: int
    fwd_s: float
    bwd_s: float
    opt_s: float
    step_s: float
    allreduce_s: float | None = None  # w0's capture: first to last gradient segment after its forward ended


@dataclass
class TrainReport:
    config: TrainConfig
    plan: Plan
    source: str
    compute: dict[str, float]  # mean local seconds: fwd, bwd, opt, total
    steps: list[StepRow]
    per_worker: list[dict[str, Any]]  # steady-state bytes sent/received a step, each worker
    construction: dict[str, Any]
    timing: dict[str, Any]
    ddp_buckets: dict[str, str]
    captures: dict[str, Any]
    error: str | None
    result: Result | None
    notes: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)  # what each worker loaded (its compute event)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("result", "plan", "config")}
        d["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}
        plan = self.plan.to_dict()
        plan.pop("params"), plan.pop("buffers")
        d["plan"] = plan
        d["kind"], d["version"] = "pktchar-train-sync", 1
        if self.result is not None:
            d["files"] = {
                "pcap": str(self.result.artifacts.pcap),
                "result": str(self.result.artifacts.result),
            }
        return d


def _windows(ev: list[dict[str, Any]], rank: int, gap: float) -> tuple[float, list[tuple[float, float]]]:
    """The capture's step windows for one worker: from half a gap before its step to half a gap after."""
    steps = sorted(
        (e for e in ev if e.get("event") == "step" and e["worker"] == rank), key=lambda e: e["step"]
    )
    ddp = [e["t0"] for e in ev if e.get("event") == "ddp"]
    start = min(ddp) - 0.05 if ddp else (steps[0]["t0"] - gap if steps else 0.0)
    return start, [(s["t0"] - gap / 2, s["t_end"] + gap / 2) for s in steps]


def measure_bytes(
    pcap: Path,
    ip: str,
    port: int,
    windows: list[tuple[float, float]],
    start: float,
    fwd_ends: list[float] | None = None,
) -> dict[str, Any]:
    """Ethernet and TCP payload bytes one worker sent and received, per step window and before the first
    (construction); the rendezvous (TCPStore, ``port``) and ARP are left out."""
    from .pcap import read

    pk = [p for p in read(pcap) if p.proto == "tcp" and port not in (p.sport, p.dport)]
    out: dict[str, Any] = {"steps": [], "construction": {}}

    def tally(sel: list[Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for side, mine in (
            ("sent", [p for p in sel if p.src == ip]),
            ("received", [p for p in sel if p.dst == ip]),
        ):
            payload, segments, retx, retx_n = _first_transmissions([p for p in mine if p.payload > 0])
            acks = [p for p in mine if p.payload == 0]
            out[side] = (
                payload + segments * PER_PACKET
            )  # Ethernet bytes of data segments, each byte sent once
            out[f"{side}_payload"] = payload
            out[f"{side}_segments"] = segments
            out[f"{side}_acks"] = len(acks)
            out[f"{side}_ack_bytes"] = sum(p.frame_len for p in acks)
            out[f"{side}_retransmitted"] = retx
            out[f"{side}_retransmitted_segments"] = retx_n
        return out

    first = windows[0][0] if windows else float("inf")
    out["spans"] = []
    for (a, b), f in zip(windows, fwd_ends or [None] * len(windows), strict=False):
        data = [p.ts for p in pk if a <= p.ts < b and p.payload > 0 and (f is None or p.ts >= f)]
        out["spans"].append(data[-1] - data[0] if len(data) > 1 else None)
    out["construction"] = tally([p for p in pk if start <= p.ts < first and not (p.flags & 0x02)])
    for a, b in windows:
        out["steps"].append(tally([p for p in pk if a <= p.ts < b]))
    return out


def _segments(plan: Plan, k: int, r: int) -> int:
    """Data segments predicted for worker ``r`` in step ``k``: (frame bytes - payload) / 66."""
    per_packet = ETH_HEADER + IP_HEADER[4] + TCP_HEADER + TCP_TIMESTAMPS
    return (plan.step_total(k, "frames_sent", r) - plan.step_total(k, "sent", r)) // per_packet


def _first_transmissions(pkts: list[Any]) -> tuple[int, int, int, int]:
    """(payload bytes, segments) sent for the first time, and (bytes, segments) retransmitted: a segment
    whose sequence range a segment before it already covered is a retransmission (per connection, the
    sequence numbers taken relative to the first seen, modulo 2^32)."""
    covered: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    base: dict[tuple[Any, ...], int] = {}
    payload = segments = retx = retx_n = 0
    for p in pkts:
        key = (p.src, p.sport, p.dst, p.dport)
        b = base.setdefault(key, p.seq)
        a = (p.seq - b) % (1 << 32)
        z = a + p.payload
        ivs = covered.setdefault(key, [])
        new = p.payload
        for x, y in ivs:
            lo, hi = max(a, x), min(z, y)
            if hi > lo:
                new -= hi - lo
        if new <= 0:
            retx, retx_n = retx + p.frame_len, retx_n + 1
            continue
        payload += new
        segments += 1
        ivs.append((a, z))
        if len(ivs) > 64:  # merge: keep the list short
            ivs.sort()
            merged = [ivs[0]]
            for x, y in ivs[1:]:
                if x <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], y))
                else:
                    merged.append((x, y))
            covered[key] = merged
    return payload, segments, retx, retx_n


def analyse(cfg: TrainConfig, plan: Plan, res: Result) -> TrainReport:
    ev = res.extra.get("events", [])
    n = cfg.workers
    comp = [e for e in ev if e.get("event") == "compute"]

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    def imean(xs: list[int]) -> int:
        return round(mean(xs))  # type: ignore[arg-type]

    compute = {k: mean([mean(e[f"{k}_s"]) for e in comp]) for k in ("fwd", "bwd", "opt")}
    compute["total"] = compute["fwd"] + compute["bwd"] + compute["opt"]
    per_worker, rows = [], []
    cons: dict[str, Any] = {}
    for r in range(n):
        pcap = res.artifacts.capture(f"w{r}")
        ip = f"10.213.0.{r + 1}"
        start, wins = _windows(ev, r, cfg.gap)
        try:
            fe = [e["t_fwd"] for e in sorted((e for e in ev if e.get("event") == "step" and e["worker"] == r),
                                             key=lambda e: e["step"])]  # fmt: skip
            m = measure_bytes(pcap, ip, cfg.port, wins, start, fe)
        except PktcharError as e:
            res.notes.append(f"w{r}: {e}")
            continue
        if r == 0:
            cons = {**m["construction"], "predicted_sent": plan.construction.frames_sent[0],
                    "predicted_payload": plan.construction.sent[0]}  # fmt: skip
        steady = m["steps"][2:] or m["steps"][1:] or m["steps"]
        k = min(2, len(plan.steps) - 1)
        per_worker.append({
            "worker": f"w{r}", "steps_measured": len(m["steps"]),
            "sent": imean([s["sent"] for s in steady]), "sent_predicted": plan.step_total(k, "frames_sent", r),
            "payload": imean([s["sent_payload"] for s in steady]), "payload_predicted": plan.step_total(k, "sent", r),
            "received_payload": imean([s["received_payload"] for s in steady]),
            "received_payload_predicted": plan.step_total(k, "received", r),
            "acks_sent": mean([s["sent_acks"] for s in steady]),
            "ack_bytes_sent": imean([s["sent_ack_bytes"] for s in steady]),
            "retransmitted": imean([s["sent_retransmitted"] for s in steady]),
            "segments": mean([s["sent_segments"] for s in steady]),
            "segments_predicted": _segments(plan, k, r),
            "by_step": m["steps"], "spans": m["spans"],
        })  # fmt: skip
    steps = sorted((e for e in ev if e.get("event") == "step" and e["worker"] == 0), key=lambda e: e["step"])
    w0 = per_worker[0]["by_step"] if per_worker else []
    spans = per_worker[0]["spans"] if per_worker else []
    for s in steps:
        k = s["step"]
        rows.append(StepRow(
            k, w0[k]["sent"] if k < len(w0) else None, plan.step_total(k, "frames_sent"),
            w0[k]["sent_payload"] if k < len(w0) else None, plan.step_total(k, "sent"),
            s["t_fwd"] - s["t0"], s["t_bwd"] - s["t_fwd"], s["t_end"] - s["t_bwd"], s["t_end"] - s["t0"],
            spans[k] if k < len(spans) else None))  # fmt: skip
    cal = res.calibration.link_rate_measured_bps if res.calibration else None
    timing = predict_time(cfg, plan, compute, rows, cal)
    done = next((e for e in ev if e.get("event") == "done" and e["worker"] == 0), {})
    ddp = {
        "bucket_sizes": done.get("bucket_sizes", ""),
        "rebuilt_bucket_sizes": done.get("rebuilt_bucket_sizes", ""),
    }
    caps = {e: {**asdict(c), "complete": c.complete} for e, c in res.captures.items()}
    return TrainReport(cfg, plan, res.source, compute, rows, per_worker, cons, timing, ddp, caps, res.error, res,
                       list(res.notes), _loaded(comp))  # fmt: skip


def step_comm(plan: Plan, k: int, rate: float) -> tuple[float, float, float]:
    """(buffer broadcast, all-reduce, last bucket's all-reduce) seconds of step ``k`` on w0's uplink."""
    bc = sum(p.frames_sent[0] for p in plan.steps[k] if not p.name.startswith("bucket")) * 8 / rate
    ar = [p.frames_sent[0] * 8 / rate for p in plan.steps[k] if p.name.startswith("bucket")]
    return bc, sum(ar), ar[-1] if ar else 0.0


def predict_time(
    cfg: TrainConfig,
    plan: Plan,
    compute: dict[str, float],
    rows: list[StepRow],
    calibrated: float | None = None,
) -> dict[str, Any]:
    """Time a step: compute measured without DDP plus the wire time at the link rate, with nothing hidden
    (upper bound) and with every bucket but the last hidden behind backward (lower bound); the same at
    the calibrated rate; against the measured steady steps (from the third on, after the rebuild).
    Hidden = compute + measured all-reduce span - measured step: the part of the all-reduce that ran
    while backward was still computing."""
    k = min(2, len(plan.steps) - 1)
    bc, ar, last = step_comm(plan, k, cfg.link)
    steady = [r for r in rows if r.step >= 2] or rows

    def mean(xs: list[float | None]) -> float | None:
        v = [x for x in xs if x is not None]
        return sum(v) / len(v) if v else None

    meas = mean([r.step_s for r in steady])
    span = mean([r.allreduce_s for r in steady])
    no_overlap = compute["total"] + bc + ar
    full = compute["total"] + bc + max(last, ar - compute["bwd"])
    out: dict[str, Any] = {
        "compute_s": compute["total"], "compute_bwd_s": compute["bwd"], "buffer_bcast_s": bc, "allreduce_s": ar,
        "last_bucket_s": last, "step_predicted_no_overlap_s": no_overlap, "step_predicted_overlap_s": full,
        "step_measured_s": meas, "backward_measured_s": mean([r.bwd_s for r in steady]),
        "allreduce_measured_s": span, "calibrated_bps": calibrated,
    }  # fmt: skip
    if calibrated:
        bc_c, ar_c, last_c = step_comm(plan, k, calibrated)
        out["allreduce_calibrated_s"] = ar_c
        out["step_predicted_calibrated_s"] = compute["total"] + bc_c + ar_c
        out["step_predicted_calibrated_overlap_s"] = (
            compute["total"] + bc_c + max(last_c, ar_c - compute["bwd"])
        )
    if meas is not None and span is not None:
        hidden = max(0.0, compute["total"] + span - meas)
        out["hidden_s"], out["hidden_fraction"] = hidden, min(1.0, hidden / span) if span else None
    return out


# ----------------------------------------------------------------------------------------------
# entry points


def check(cfg: TrainConfig) -> None:
    """Every argument, before anything is built."""
    if cfg.workers < 1:
        raise PktcharError(f"--workers must be 1 or more, got {cfg.workers}")
    if cfg.workers > MAX_WORKERS:
        raise PktcharError(f"--workers {cfg.workers} is more than this testbed runs ({MAX_WORKERS}: each worker is a "
                           f"process of about {WORKER_MB} MB on {os.cpu_count()} cores, and a ring of more "
                           "would measure CPU contention, not the network)")  # fmt: skip
    avail = _mem_available_mb()
    if avail is not None and cfg.workers * WORKER_MB > avail * 0.8:
        raise PktcharError(f"--workers {cfg.workers} needs about {cfg.workers * WORKER_MB} MB; this machine has "
                           f"{avail:.0f} MB available")  # fmt: skip
    for name, v in (
        ("--batch", cfg.batch),
        ("--res", cfg.res),
        ("--classes", cfg.classes),
        ("--steps", cfg.steps),
    ):
        if v < 1:
            raise PktcharError(f"{name} must be 1 or more, got {v}")
    if cfg.hook not in ("none", "fp16", "bf16"):
        raise PktcharError(f"--hook must be none, fp16 or bf16, got {cfg.hook!r}")
    if cfg.bucket_mb is not None and cfg.bucket_mb <= 0:
        raise PktcharError(f"--bucket-mb must be positive, got {cfg.bucket_mb:g}")
    if not 1024 <= cfg.port <= 65535:
        raise PktcharError(f"--port must be 1024..65535, got {cfg.port}")
    if cfg.data and not Path(cfg.data).is_dir():
        raise PktcharError(f"--data {cfg.data} is not a folder (an ImageFolder: one sub-folder a class)")
    Link(cfg.link)


def _mem_available_mb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return None


def prepare(cfg: TrainConfig) -> Plan:
    """The model on the meta device: its parameters and buffers, then the plan."""
    from .train_procs import build_model, describe

    try:
        net, _ = build_model(cfg.model, cfg.classes, cfg.freeze, device="meta")
    except PktcharError:
        raise
    except Exception as e:
        raise PktcharError(f"building {cfg.model} failed: {type(e).__name__}: {e}") from e
    plan = make_plan(cfg.model, describe(net), cfg)
    data = (
        f"ImageFolder {cfg.data}"
        if cfg.data
        else "synthetic CIFAR-100-shaped tensors (random pixels and labels)"
    )
    plan.source = (f"{cfg.model} at {cfg.res}x{cfg.res}, batch {cfg.batch}, {cfg.classes} classes, "
                   f"{'frozen backbone' if cfg.freeze else 'full fine-tuning'}, {plan.trainable:,} trainable "
                   f"parameters; data: {data}")  # fmt: skip
    return plan


def train_local(cfg: TrainConfig, plan: Plan) -> TrainReport:
    """One worker: no network, compute only (nothing to synchronise)."""
    r = subprocess.run(worker_cmd(cfg, 0, local=True), capture_output=True, text=True, timeout=3600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    ev = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    for e in ev:
        e["worker"] = 0
    err = next((e["error"] for e in ev if "error" in e), None)
    if r.returncode != 0 and err is None:
        err = f"worker exited {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}"
    comp = next((e for e in ev if e.get("event") == "compute"), {"fwd_s": [], "bwd_s": [], "opt_s": []})

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    compute = {k: mean(comp[f"{k}_s"]) for k in ("fwd", "bwd", "opt")}
    compute["total"] = sum(compute.values())
    rows = [StepRow(e["step"], 0, 0, 0, 0, e["t_fwd"] - e["t0"], e["t_bwd"] - e["t_fwd"], e["t_end"] - e["t_bwd"],
                    e["t_end"] - e["t0"]) for e in ev if e.get("event") == "step"]  # fmt: skip
    timing = predict_time(cfg, plan, compute, rows)
    return TrainReport(cfg, plan, plan.source, compute, rows, [], {}, timing, {}, {}, err, None,
                       ["one worker: run locally without a network (nothing to synchronise), compute only"],
                       _loaded([e for e in ev if e.get("event") == "compute"]))  # fmt: skip


def _loaded(compute_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each worker says it loaded, from its compute event, in worker order."""
    return [{"worker": f"w{e['worker']}", **e["data"]} for e in sorted(compute_events, key=lambda e: e["worker"])
            if "data" in e]  # fmt: skip


def train_sync(cfg: TrainConfig, progress: Progress | None = None, plan: Plan | None = None) -> TrainReport:
    """Check, plan (unless ``plan`` is given), run (N namespaces, or locally for one worker) and compare."""
    check(cfg)
    plan = plan or prepare(cfg)
    if cfg.workers == 1:
        return train_local(cfg, plan)
    require_root()
    pcap = Path(cfg.pcap) if cfg.pcap else Path("captures") / f"train-sync-{cfg.model}-{cfg.workers}w.pcap"
    res = run(TrainScenario(cfg, plan), pcap, calibrate_link=cfg.calibrate, progress=progress)
    return analyse(cfg, plan, res)


# ----------------------------------------------------------------------------------------------
# the paper's result


def sync_s(plan: Plan, rate: float) -> float:
    """Seconds a steady step's collectives take on w0's uplink at ``rate`` (data frames, nothing hidden)."""
    k = min(2, len(plan.steps) - 1)
    return plan.step_total(k, "frames_sent") * 8 / rate


def measured_sync(rep: TrainReport) -> float | None:
    """What synchronising added to a step here: measured step - compute measured without DDP."""
    t = rep.timing
    return (t["step_measured_s"] - t["compute_s"]) if t.get("step_measured_s") is not None else None


def paper_rows(
    model: str = "seed000", measured: dict[str, TrainReport] | None = None
) -> list[dict[str, Any]]:
    """The paper's setup (two boards at 1 Gbit/s, 78,200 steps a board) predicted from its one-board step
    (9,310 s / 78,200) plus pktchar's sync a step, and what would have helped. ``measured`` maps a variant
    (full, frozen, fp16) to a two-worker run here: its measured sync beside."""
    measured = measured or {}
    rate = PAPER["link_bps"]
    step1 = PAPER["one_board_s"] / PAPER_STEPS

    def plan(**kw: Any) -> Plan:
        cfg = TrainConfig(model=model, workers=2, steps=3, **kw)
        return prepare(cfg)

    full, frozen, fp16 = plan(), plan(freeze=True), plan(hook="fp16")
    both = plan(freeze=True, hook="fp16")
    big = 256
    steps_big = PAPER["epochs"] * math.ceil(PAPER["images"] / big)
    rows: list[dict[str, Any]] = [
        {"what": "one board (paper)", "steps": PAPER_STEPS, "sync": "0", "total": f"{PAPER['one_board_s']:,.0f}",
         "paper": f"{PAPER['one_board_s']:,.0f}", "vs_one": "1.00x"},
    ]  # fmt: skip

    def row(what: str, steps: int, compute: float, sync: float | None, paper: str = "") -> None:
        if sync is None:
            return
        total = steps * (compute + sync)
        rows.append({"what": what, "steps": steps, "sync": f"{sync:.4f}", "total": f"{total:,.0f}", "paper": paper,
                     "vs_one": f"{total / PAPER['one_board_s']:.2f}x"})  # fmt: skip

    row("full data on each board, full fine-tuning (the paper's setup), predicted", PAPER_STEPS, step1,
        sync_s(full, rate), f"{PAPER['two_boards_s']:,.0f}")  # fmt: skip
    if "full" in measured:
        row("the same with the sync measured here", PAPER_STEPS, step1, measured_sync(measured["full"]),
            f"{PAPER['two_boards_s']:,.0f}")  # fmt: skip
    row("sharded data (each board half the steps), predicted", PAPER_STEPS // 2, step1, sync_s(full, rate))
    row("frozen backbone (compute a step unchanged: an upper bound), predicted", PAPER_STEPS, step1,
        sync_s(frozen, rate))  # fmt: skip
    if "frozen" in measured:
        row("frozen backbone, sync measured here", PAPER_STEPS, step1, measured_sync(measured["frozen"]))
    row("fp16 gradients (DDP fp16_compress_hook), predicted", PAPER_STEPS, step1, sync_s(fp16, rate))
    if "fp16" in measured:
        row("fp16 gradients, sync measured here", PAPER_STEPS, step1, measured_sync(measured["fp16"]))
    row(f"batch {big} (compute a step x{big // PAPER['batch']}), predicted", steps_big, step1 * big / PAPER["batch"],
        sync_s(full, rate))  # fmt: skip
    row(f"all four: sharded, frozen, fp16, batch {big}, predicted", steps_big // 2, step1 * big / PAPER["batch"],
        sync_s(both, rate))  # fmt: skip
    return rows


def parse_workers(text: str) -> list[int]:
    """``2`` or ``1,2,3,4``: the worker counts to run, one run each."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise PktcharError(
            f"--workers takes a number or numbers separated by commas (e.g. 2 or 1,2,3,4), got {text!r}"
        ) from e
    if not out:
        raise PktcharError("--workers needs at least one number")
    return out


def train_runs(
    cfg: TrainConfig, workers: list[int], what_if: bool = False, progress: Progress | None = None
) -> list[TrainReport]:
    """One run a worker count; with ``what_if`` also a frozen backbone and fp16 gradients at two workers.
    Every configuration is checked before the first run; a run that stops ends the series (its
    measurements kept)."""
    from dataclasses import replace

    cfgs = []
    for n in workers:
        pcap = cfg.pcap
        if pcap and len(workers) > 1:
            pcap = Path(pcap).with_name(f"{Path(pcap).stem}-{n}w{Path(pcap).suffix or '.pcap'}")
        cfgs.append(replace(cfg, workers=n, pcap=pcap))
    if what_if:
        for tag, kw in (
            ("frozen", {"freeze": True, "hook": "none"}),
            ("fp16", {"freeze": False, "hook": "fp16"}),
        ):
            pcap = Path(cfg.pcap).with_name(f"{Path(cfg.pcap).stem}-{tag}.pcap") if cfg.pcap else None
            cfgs.append(replace(cfg, workers=2, pcap=pcap, **kw))  # type: ignore[arg-type]
    for c in cfgs:
        check(c)
    plans = [prepare(c) for c in cfgs]  # a model that cannot train fails here, before any run
    out = []
    for c, plan in zip(cfgs, plans, strict=True):
        what = " (frozen backbone)" if c.freeze else f" ({c.hook} gradients)" if c.hook != "none" else ""
        announce(f"train-sync: {c.workers} worker{'s' if c.workers > 1 else ''}{what}")
        rep = train_sync(c, progress, plan)
        out.append(rep)
        if rep.error:
            break
    return out


def measured_variants(reps: list[TrainReport]) -> dict[str, TrainReport]:
    """The two-worker runs at 1 Gbit/s, by variant (full, frozen, fp16)."""
    out: dict[str, TrainReport] = {}
    for r in reps:
        if r.config.workers != 2 or r.error or abs(r.config.link - 1e9) > 1:
            continue
        key = (
            "frozen"
            if r.config.freeze
            else "fp16"
            if r.config.hook == "fp16"
            else "full"
            if r.config.hook == "none"
            else ""
        )
        if key and key not in out:
            out[key] = r
    return out


__all__ = ["PAPER", "TrainConfig", "TrainReport", "TrainScenario", "make_plan", "paper_rows", "train_sync"]
