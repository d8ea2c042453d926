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

Modules: ``gloo`` (collectives as messages, DDP's bucket rules), ``plan`` (a step per worker), ``scenario``
(the workers on the runner), ``analysis`` (measured against predicted), ``host`` (the step on a
CPU-bound host: compute and each bucket's all-reduce measured alone, chained), ``run`` (entry points),
``paper`` (the two-board projection), ``boards`` (the host cost a byte the paper's boards needed).
"""

from __future__ import annotations

from .analysis import StepRow, TrainReport, analyse, measure_bytes, predict_time, step_comm
from .gloo import (
    BROADCAST_BUCKET,
    DEFAULT_CAP_MB,
    GLOO_MAX_SEGMENT,
    GLOO_PREAMBLE,
    MIB,
    Msg,
    broadcast,
    buckets,
    coalesced,
    ring_allreduce,
)
from .paper import PAPER, PAPER_STEPS, PaperRow, measured_sync, paper_rows, sync_s
from .plan import MASTER_PORT, PER_PACKET, Phase, Plan, TrainConfig, make_plan, phase
from .run import (
    MAX_WORKERS,
    WORKER_MB,
    check,
    measured_variants,
    parse_workers,
    prepare,
    train_local,
    train_runs,
    train_sync,
)
from .scenario import TrainScenario, Workers, port_free, worker_cmd, worker_name

__all__ = [
    "BROADCAST_BUCKET", "DEFAULT_CAP_MB", "GLOO_MAX_SEGMENT", "GLOO_PREAMBLE", "MASTER_PORT", "MAX_WORKERS", "MIB",
    "PAPER", "PAPER_STEPS", "PER_PACKET", "WORKER_MB", "Msg", "PaperRow", "Phase", "Plan", "StepRow", "TrainConfig",
    "TrainReport", "TrainScenario", "Workers", "analyse", "broadcast", "buckets", "check", "coalesced",
    "make_plan", "measure_bytes", "measured_sync", "measured_variants", "paper_rows", "parse_workers", "phase",
    "port_free", "predict_time", "prepare", "ring_allreduce", "step_comm", "sync_s", "train_local", "train_runs",
    "train_sync", "worker_cmd", "worker_name",
]  # fmt: skip
