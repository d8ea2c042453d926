"""gloo's collectives as messages on its TCP pairs (allreduce.cc, broadcast.cc, transport/tcp/pair.cc),
and DDP's bucket and broadcast grouping rules (nn/parallel/distributed.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

GLOO_PREAMBLE = (
    48  # gloo/transport/tcp/pair.h, struct Op::preamble: nbytes, opcode, slot, offset, length, roffset
)
GLOO_MAX_SEGMENT = 1 << 20  # gloo/allreduce.h, kMaxSegmentSize
MIB = 1 << 20  # DDP's bucket_cap_mb is in MiB (nn/parallel/distributed.py, _MB_TO_BYTES)
DEFAULT_CAP_MB = 25
BROADCAST_BUCKET = 250 * MIB  # DDP's broadcast_bucket_size


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
