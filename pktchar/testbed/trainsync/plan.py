"""The plan: what one step of DDP over gloo puts on the wire, per worker, from the parameter list alone."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import PktcharError
from ...core.wire import ETH_HEADER, IP_HEADER, TCP_HEADER, TCP_TIMESTAMPS
from .gloo import BROADCAST_BUCKET, DEFAULT_CAP_MB, MIB, Msg, broadcast, buckets, coalesced, ring_allreduce

MASTER_PORT = 29500
PER_PACKET = ETH_HEADER + IP_HEADER[4] + TCP_HEADER + TCP_TIMESTAMPS  # 66 B of headers a TCP segment


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
        raise PktcharError(f"{model} has no trainable parameters{' with `freeze_backbone`' if cfg.freeze else ''}: "
                           "there is nothing to synchronise")  # fmt: skip
    elem = 2 if cfg.hook in ("fp16", "bf16") else 4
    grads = [p[1] * elem for p in train]
    # torch is loaded by now (the parameter list came from a model built with it); this module is not
    from ...model.torch_compat import DDP_FIRST_BUCKET_BYTES

    cap = int((cfg.bucket_mb if cfg.bucket_mb is not None else DEFAULT_CAP_MB) * MIB)
    first = DDP_FIRST_BUCKET_BYTES if cfg.bucket_mb is None else cap
    first_buckets = [sum(grads)]  # torch 2.14: one bucket for the first iteration
    rebuilt = buckets(list(reversed(grads)), [first, cap])
    buffer_b = coalesced([(b[1] * b[2], b[3]) for b in bufs], BROADCAST_BUCKET)
    state_b = coalesced(
        [(p[1] * p[2], p[3]) for p in params] + [(b[1] * b[2], b[3]) for b in bufs], BROADCAST_BUCKET
    )
    construction = _construction(train, state_b, n, mtu)
    steps = [
        _step(k, len(train), rebuilt if k else first_buckets, buffer_b, elem, n, mtu)
        for k in range(cfg.steps)
    ]
    return Plan(model, n, params, bufs, sum(p[1] for p in train), sum(grads), elem, first_buckets, rebuilt,
                buffer_b, state_b, construction, steps)  # fmt: skip


def _construction(train: list[list[Any]], state_b: list[int], n: int, mtu: int) -> Phase:
    """DDP's construction: _verify_params_across_processes (shapes: an all-gather of one int64, then rank 0's
    metadata broadcast, two int64 a dimension of every trainable parameter) then the state broadcast."""
    verify = 8 * (2 * sum(p[5] for p in train) + 1)
    cmsgs = broadcast(verify, n) + [m for b in state_b for m in broadcast(b, n)]
    return phase("construction", verify + sum(state_b), cmsgs, n, mtu)


def _step(
    k: int, trainable: int, grads: list[int], buffer_b: list[int], elem: int, n: int, mtu: int
) -> list[Phase]:
    """Step ``k``'s collectives: in the second, the rebuild's broadcasts (rank 0's bucket indices, then the
    bucket count); in every one, the buffer broadcasts then each gradient bucket's all-reduce."""
    ph: list[Phase] = []
    if k == 1 and n > 1:
        idx = 4 * (trainable + 1)
        ph.append(phase("rebuild indices", idx, broadcast(idx, n), n, mtu))
        ph.append(phase("rebuild sizes", 4 * len(grads), broadcast(4 * len(grads), n), n, mtu))
    for i, b in enumerate(buffer_b):
        ph.append(phase(f"buffers {i}", b, broadcast(b, n), n, mtu))
    for i, b in enumerate(grads):
        ph.append(phase(f"bucket {i}", b, ring_allreduce(b, elem, n), n, mtu))
    return ph
