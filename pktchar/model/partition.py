"""Model partitions for incremental upload (IONN, Jeong et al., "IONN: Incremental Offloading of Neural
Network Computations from Mobile Devices to Edge Servers", ACM SoCC 2018).

A model's graph (torch.fx) is collapsed to its *chain*: the points where exactly one tensor is live
(a cut there sends one tensor; IONN's dominator chain). Between two consecutive chain points lies a
*unit*; a partition is a run of adjacent units, executable on its own as a ``GraphModule`` whose input
is the tensor live at its first point and whose output is the tensor live at its last.

What crosses the link for a partition is :func:`pack`: a small JSON description (model, units, input
shape) and its parameters and buffers serialized with ``torch.save``, as sent. The edge rebuilds the
partition for real with :func:`build`: modules constructed from the model's definition, weights loaded,
one warm-up run.

Partitioning (:func:`plan_auto`): the device uploads partitions in order from the input, and every
query offloads the prefix already built. Offloading the first ``j`` units costs, per query,
``T(j) = in/R + sum(server[:j]) + out_j/R + sum(device[j:])`` (``T(0)`` is running all on the device).
A partition boundary is placed at every chain point where ``T`` reaches a new minimum: each boundary
is an upload after which queries get faster, and nothing is uploaded as its own partition that would
not speed a query up. IONN's penalty relaxation finds, for each penalty, the best path given a cost on
upload bytes: each path it finds is a point of the lower convex hull of (bytes uploaded, T), a subset
of these running minima. Taking all of them makes the query time at every moment of the upload no
higher than IONN's (:func:`plan_hull` gives IONN's set, for comparison).
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from ..core.errors import PktcharError, did_you_mean


@dataclass(frozen=True)
class Point:
    """A chain point: after graph node ``node`` exactly one tensor (``value``) is live."""

    index: int  # position in the chain (0 = the input)
    node: int  # position of the graph node in topological order
    name: str  # the layer it follows (the fx node's target for modules, its name otherwise)
    value: str  # the fx node whose output is live here


@dataclass
class Chain:
    """A traced model collapsed to its chain points."""

    model: str
    gm: fx.GraphModule
    nodes: list[fx.Node]
    points: list[Point]  # points[0] is the input, points[-1] the output

    @property
    def units(self) -> int:
        return len(self.points) - 1

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        names = [p.name for p in self.points]
        raise PktcharError(
            f"{name!r} is not a partition point of {self.model} (a point where one tensor crosses)"
            f"{did_you_mean(name, names)}; points: {', '.join(names[:6])} ... {names[-1]}"
        )

    def module(self, a: int, b: int) -> fx.GraphModule:
        """The partition from chain point ``a`` to ``b`` (units a..b-1) as a GraphModule of ``gm``'s modules."""
        if not 0 <= a < b <= self.units:
            raise PktcharError(f"a partition needs 0 <= start < end <= {self.units}, got {a}..{b}")
        pa, pb = self.points[a], self.points[b]
        g = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        by_name = {n.name: n for n in self.nodes}
        env[by_name[pa.value]] = g.placeholder("x")
        for n in self.nodes[pa.node + 1 : pb.node + 1]:
            if n.op == "output":
                break
            env[n] = g.node_copy(n, lambda m: env[m])
        g.output(env[by_name[pb.value]])
        return fx.GraphModule(self.gm, g)


def chain(model: nn.Module, name: str) -> Chain:
    """Trace ``model`` with torch.fx and find its chain points (single live tensor)."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as e:  # fx cannot trace data-dependent control flow
        raise PktcharError(
            f"{name} cannot be partitioned: torch.fx cannot trace it ({type(e).__name__}: {e})"
        ) from e
    nodes = list(gm.graph.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    last_use = {n: max((pos[u] for u in n.users), default=pos[n]) for n in nodes}
    points: list[Point] = []
    seen: dict[str, int] = {}
    live: set[fx.Node] = set()
    for i, n in enumerate(nodes):
        if n.op == "output":
            break
        live.add(n)
        live = {v for v in live if last_use[v] > i}
        if n.op == "placeholder":
            if not points:
                points.append(Point(0, i, "input", n.name))
            continue
        if len(live) == 1:
            (v,) = live
            label = str(n.target) if n.op == "call_module" else n.name
            seen[label] = seen.get(label, 0) + 1
            label = label if seen[label] == 1 else f"{label}#{seen[label]}"  # a module called again
            points.append(Point(len(points), i, label, v.name))
    out = nodes[-1]
    if out.op == "output" and points and points[-1].value != out.args[0].name:  # type: ignore[union-attr]
        raise PktcharError(f"{name} cannot be partitioned: its output is not a single tensor")
    return Chain(name, gm, nodes, points)


# ----------------------------------------------------------------------------------------------
# what crosses the link, and what the edge does with it

LEN = struct.Struct("!I")


def pack(ch: Chain, a: int, b: int, extra: dict[str, Any]) -> bytes:
    """Partition a..b as sent: u32 length, a JSON description, then ``torch.save`` of its state."""
    part = ch.module(a, b)
    buf = io.BytesIO()
    torch.save(part.state_dict(), buf)
    desc = json.dumps({"model": ch.model, "start": a, "end": b, **extra}).encode()
    return LEN.pack(len(desc)) + desc + buf.getvalue()


def unpack(blob: bytes | memoryview) -> tuple[dict[str, Any], bytes]:
    (n,) = LEN.unpack_from(blob)
    return json.loads(bytes(blob[4 : 4 + n])), bytes(blob[4 + n :])


def build(skeleton: Chain, a: int, b: int, states: Sequence[bytes], input_shape: Sequence[int]) -> nn.Module:
    """Construct partition a..b for real from a meta ``skeleton`` of the model: allocate its modules,
    load the weights of the partitions it merges, and run it once (the warm-up)."""
    part = skeleton.module(a, b).to_empty(device="cpu")
    merged: dict[str, torch.Tensor] = {}
    for s in states:
        merged.update(torch.load(io.BytesIO(s), map_location="cpu", weights_only=True))
    missing, unexpected = part.load_state_dict(merged, strict=False)
    if missing or unexpected:
        raise PktcharError(f"partition {a}..{b}: weights missing {missing[:3]} unexpected {unexpected[:3]}")
    part.eval()
    with torch.no_grad():
        part(torch.zeros(*input_shape))
    return part


# ----------------------------------------------------------------------------------------------
# measured costs and the partitioning


@dataclass(frozen=True)
class Costs:
    """Per unit: seconds on the device and on the edge, upload bytes; per point: tensor bytes."""

    device_s: tuple[float, ...]
    edge_s: tuple[float, ...]
    upload_bytes: tuple[int, ...]
    point_bytes: tuple[int, ...]  # bytes of the tensor live at each point (0 = the input)

    def query_time(self, j: int, rate_bps: float) -> float:
        """A query that offloads units 0..j-1 (input up, point j's tensor down) and runs the rest."""
        if j == 0:
            return sum(self.device_s)
        wire = (self.point_bytes[0] + self.point_bytes[j]) * 8 / rate_bps
        return wire + sum(self.edge_s[:j]) + sum(self.device_s[j:])


def unit_times(
    ch: Chain,
    x: torch.Tensor,
    repeats: int = 3,
    around: Callable[[], AbstractContextManager[Any]] | None = None,
) -> tuple[list[float], list[int]]:
    """Median seconds of each unit on this CPU (a real model, real input), and each point's bytes. With
    ``around``, each unit runs (and is timed) inside a fresh ``around()`` context (an emulated device's)."""
    mods = [ch.module(i, i + 1).eval() for i in range(ch.units)]
    sizes = [x.numel() * x.element_size()]
    times: list[list[float]] = [[] for _ in mods]
    ctx = around or contextlib.nullcontext
    with torch.no_grad():
        for r in range(repeats + 1):  # the first pass warms up
            y = x
            for i, m in enumerate(mods):
                t = time.perf_counter()
                with ctx():
                    y = m(y)
                if r:
                    times[i].append(time.perf_counter() - t)
                if r == 1:
                    sizes.append(y.numel() * y.element_size())
    return [sorted(t)[len(t) // 2] for t in times], sizes


def param_bytes(ch: Chain) -> list[int]:
    """Bytes of parameters and buffers each unit carries (shared modules counted in their first unit)."""
    seen: set[int] = set()
    out = []
    for i in range(ch.units):
        n = 0
        for t in ch.module(i, i + 1).state_dict(keep_vars=True).values():
            if id(t) not in seen:
                seen.add(id(t))
                n += t.numel() * t.element_size()
        out.append(n)
    return out


def plan_auto(c: Costs, rate_bps: float) -> list[int]:
    """Partition boundaries (chain point indices, ending with the last): every point where the query
    time reaches a new minimum, then the end of the model."""
    best = c.query_time(0, rate_bps)
    cuts = []
    n = len(c.device_s)
    for j in range(1, n + 1):
        t = c.query_time(j, rate_bps)
        if t < best:
            best = t
            cuts.append(j)
    if not cuts or cuts[-1] != n:
        cuts.append(n)
    return cuts


def plan_hull(c: Costs, rate_bps: float) -> list[int]:
    """IONN's set: the points on the lower convex hull of (bytes uploaded, query time)."""
    n = len(c.device_s)
    pts = [(sum(c.upload_bytes[:j]), c.query_time(j, rate_bps), j) for j in range(n + 1)]
    hull: list[tuple[int, float, int]] = []
    for p in sorted(pts):
        while len(hull) >= 2:
            (x1, y1, _), (x2, y2, _) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    cuts, best = [], pts[0][1]
    for _, t, j in hull:
        if j and t < best:
            best = t
            cuts.append(j)
    if not cuts or cuts[-1] != n:
        cuts.append(n)
    return cuts


def plan_equal(upload_bytes: Sequence[int], parts: int) -> list[int]:
    """``parts`` partitions of about equal bytes (each at least one unit)."""
    n = len(upload_bytes)
    if not 1 <= parts <= n:
        raise PktcharError(f"`partitions` {parts}: the model has {n} units (1..{n} partitions)")
    total = sum(upload_bytes) or 1
    cuts, acc = [], 0
    for j, w in enumerate(upload_bytes, start=1):
        acc += w
        k = len(cuts) + 1
        if k < parts and acc >= total * k / parts and n - j >= parts - k:
            cuts.append(j)
    while len(cuts) < parts - 1:  # too few byte-heavy units: fill with the last single units
        cuts.append(max(cuts, default=0) + 1)
    cuts.append(n)
    return sorted(set(cuts))


def plan_named(ch: Chain, names: Sequence[str]) -> list[int]:
    """Boundaries after the named layers, in model order (each must be a chain point)."""
    idx = [ch.point(n.strip()).index for n in names if n.strip()]
    if any(i == 0 for i in idx):
        raise PktcharError("`partitions`: 'input' is not a boundary (a partition needs at least one layer)")
    if idx != sorted(idx) or len(set(idx)) != len(idx):
        order = ", ".join(ch.points[i].name for i in sorted(set(idx)))
        raise PktcharError(f"`partitions` must name layers in model order, each once: {order}")
    if not idx or idx[-1] != ch.units:
        idx.append(ch.units)
    return idx


def ranges(cuts: Sequence[int]) -> list[tuple[int, int]]:
    starts = [0, *cuts[:-1]]
    return list(zip(starts, cuts, strict=True))
