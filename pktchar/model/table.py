"""The packet-size table of the Yonsei paper (its Table 1), computed exactly for any models, resolutions and codings.

Rows are resolutions, columns models; each cell is the min~max coded payload over
the model's split points (naming the split at each end) and, given a latency
budget or frame rate, the 5QIs that fit each end. For the paper's own cells the
exact range is set beside the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.packets import Transport
from ..core.qos import Requirements, requirements
from ..core.radio import Carrier
from ..core.resolution import Resolution, parse_resolution
from ..core.units import human_bytes, human_number
from .codec import Coding, Measured
from .profiler import profile
from .results import Profile

PAPER_NAME = (
    '"Distributed Architecture and Packet Characteristics for Real-Time Distributed Learning Services" '
    "(Yonsei Univ.)"
)
PAPER_SHORT = "the Yonsei paper on packet characteristics of distributed learning"
# That paper's Table 1 ("packet characteristics of image classifiers"), in bytes (K = 10^3, M = 10^6).
# The 8K and future rows span all three model columns and assume a 10% compression ratio.
PAPER_224 = {"AlexNet": (1e3, 50e3), "VGGNet": (1e3, 100e3), "ResNet": (1e3, 50e3)}
PAPER_8K = (100e3, 10e6)
PAPER_FUTURE = (1e6, 1000e6)
PAPER_COMPRESSION = {"224": None, "8k": 0.1, "future": 0.1}


def paper_family(model: str) -> str | None:
    m = model.lower()
    if m.startswith("alexnet"):
        return "AlexNet"
    if m.startswith("vgg"):
        return "VGGNet"
    if m.startswith("resnet"):
        return "ResNet"
    return None


def paper_cell(model: str, res: Resolution) -> tuple[str, float, float, float | None] | None:
    """(row name, min, max, the paper's compression) of the paper's cell for model/res, if it has one."""
    fam = paper_family(model)
    if fam is None:
        return None
    if (res.height, res.width) == (224, 224):
        lo, hi = PAPER_224[fam]
        return "224x224 image", lo, hi, None
    if (res.height, res.width) == (4320, 7680):
        return "state of the art (8K)", *PAPER_8K, 0.1
    pixels = res.pixels / (4320 * 7680)
    if 9.5 <= pixels <= 105:
        return "future (10~100 times)", *PAPER_FUTURE, 0.1
    return None


@dataclass(frozen=True)
class Cell:
    model: str
    res: str
    input_shape: tuple[int, ...]
    splits: int
    min_bytes: int
    min_split: str
    max_bytes: int
    max_split: str
    min_req: Requirements | None = None
    max_req: Requirements | None = None
    paper: tuple[str, float, float, float | None] | None = None
    paper_exact: tuple[int, int] | None = None  # exact min/max under the paper's assumptions

    def comparison(self) -> str:
        """The paper's range against the exact one under the paper's own assumptions (fp32, and its
        compression ratio); empty when the paper has no cell for this model and resolution."""
        if self.paper is None or self.paper_exact is None:
            return ""
        _, lo, hi, comp = self.paper
        elo, ehi = self.paper_exact
        assumption = f"fp32{f', {comp:.0%} compression' if comp else ', uncompressed'}"
        ends = []
        for what, exact, ref in (("min", elo, lo), ("max", ehi, hi)):
            f = exact / ref
            ends.append((what, f, f"{what} {human_bytes(exact)} vs {human_bytes(ref)} (x{human_number(f)})"))
        off = [
            f"{w} {'over' if f > 1 else 'under'} the paper by x{human_number(max(f, 1 / f))}"
            for w, f, _ in ends
            if not 0.5 <= f <= 2
        ]
        verdict = "the paper's range holds (both ends within 2x)" if not off else "; ".join(off)
        return f"{assumption}: " + ", ".join(t for _, _, t in ends) + f": {verdict}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model": self.model,
            "res": self.res,
            "input_shape": list(self.input_shape),
            "splits": self.splits,
            "min_bytes": self.min_bytes,
            "min_split": self.min_split,
            "max_bytes": self.max_bytes,
            "max_split": self.max_split,
        }
        if self.min_req is not None and self.max_req is not None:
            d["min_5qi"] = self.min_req.fitting
            d["max_5qi"] = self.max_req.fitting
            d["min_packets"] = self.min_req.packets.count
            d["max_packets"] = self.max_req.packets.count
            d["min_rate_bps"] = self.min_req.rate_payload
            d["max_rate_bps"] = self.max_req.rate_payload
            d["min_wire_rate_bps"] = self.min_req.needed("wire")
            d["max_wire_rate_bps"] = self.max_req.needed("wire")
            d["min_characteristics"] = self.min_req.to_dict()["characteristics"]
            d["max_characteristics"] = self.max_req.to_dict()["characteristics"]
            if self.min_req.carrier is not None:
                d["carrier"] = self.min_req.carrier.to_dict()
                d["min_carrier_factor"] = self.min_req.carrier_factor
                d["max_carrier_factor"] = self.max_req.carrier_factor
                d["min_carried"] = self.min_req.carried
                d["max_carried"] = self.max_req.carried
        if self.paper is not None:
            d["paper_row"], d["paper_min"], d["paper_max"], d["paper_compression"] = self.paper
            d["paper_exact_min"], d["paper_exact_max"] = self.paper_exact or (None, None)
            d["vs_paper"] = self.comparison()
        return d


@dataclass(frozen=True)
class PacketTable:
    models: tuple[str, ...]
    resolutions: tuple[str, ...]
    coding: str
    transport: str
    latency: float | None
    fps: float | None
    cells: tuple[Cell, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def unlike_paper(self) -> list[Cell]:
        """The cells whose range (this run's coding) differs from the exact range under the paper's own
        assumptions for that row: there the packet table and the paper comparison show different bytes."""
        return [
            c for c in self.cells if c.paper_exact is not None and c.paper_exact != (c.min_bytes, c.max_bytes)
        ]

    def cell(self, model: str, res: str) -> Cell:
        for c in self.cells:
            if c.model == model and c.res == res:
                return c
        raise KeyError((model, res))

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "resolutions": list(self.resolutions),
            "coding": self.coding,
            "transport": self.transport,
            "latency_s": self.latency,
            "fps": self.fps,
            "cells": [c.to_dict() for c in self.cells],
            "notes": list(self.notes),
        }


def cell_from_profile(
    p: Profile,
    coding: Coding,
    *,
    transport: Transport | None = None,
    latency: float | None = None,
    fps: float | None = None,
    res: Resolution | None = None,
    carrier: Carrier | None = None,
    reliability: float | None = None,
) -> Cell:
    coded = [(coding.split_bytes(s), s) for s in p.splits]
    lo = min(coded, key=lambda c: (c[0], c[1].index))
    hi = max(coded, key=lambda c: (c[0], -c[1].index))
    reqs: tuple[Requirements | None, Requirements | None] = (None, None)
    if latency is not None or fps is not None:
        reqs = (
            requirements(
                lo[0], latency=latency, fps=fps, transport=transport, carrier=carrier, reliability=reliability
            ),
            requirements(
                hi[0], latency=latency, fps=fps, transport=transport, carrier=carrier, reliability=reliability
            ),
        )
    r = res or parse_resolution(p.resolution)
    paper = paper_cell(p.model, r)
    paper_exact = None
    if paper is not None:
        comp = paper[3] or 1.0
        fp32 = [sum(t.elements * 4 if t.floating else t.bytes for t in s.tensors) for s in p.splits]
        paper_exact = (math.ceil(min(fp32) * comp), math.ceil(max(fp32) * comp))
    return Cell(
        model=p.model,
        res=p.resolution,
        input_shape=p.input_shape,
        splits=len(p.splits),
        min_bytes=lo[0],
        min_split=lo[1].after,
        max_bytes=hi[0],
        max_split=hi[1].after,
        min_req=reqs[0],
        max_req=reqs[1],
        paper=paper,
        paper_exact=paper_exact,
    )


def codings_for(
    models: Sequence[str], dtype: str, compression: float | None, measured: dict[str, Measured] | None
) -> dict[str, Coding]:
    """Each model's coding: the shared dtype and ratio, or its own measured coder."""
    return {m: Coding(dtype=dtype, compression=compression, measured=(measured or {}).get(m)) for m in models}


def packet_table(
    models: Sequence[str],
    resolutions: Sequence[str | Resolution],
    *,
    dtype: str = "fp32",
    compression: float | None = None,
    measured: dict[str, Measured] | None = None,
    transport: Transport | None = None,
    latency: float | None = None,
    fps: float | None = None,
    progress: Callable[[Sequence[Any]], Any] | None = None,
    profiles: dict[tuple[str, str], Profile] | None = None,
    carrier: Carrier | None = None,
    reliability: float | None = None,
) -> PacketTable:
    """The paper-style table: every model at every resolution, coded, with 5QI fits.

    ``profiles`` (keyed by model and resolution label) are used where given, made otherwise."""
    ress = [parse_resolution(r) for r in resolutions]
    jobs = [(r, m) for r in ress for m in models]
    cells = []
    codings = codings_for(models, dtype, compression, measured)
    for r, m in progress(jobs) if progress else jobs:
        p = (profiles or {}).get((m, r.label)) or profile(m, r, dtype=dtype)
        cells.append(
            cell_from_profile(
                p,
                codings[m],
                transport=transport,
                latency=latency,
                fps=fps,
                res=r,
                carrier=carrier,
                reliability=reliability,
            )
        )
    first = codings[models[0]] if models else Coding(dtype=dtype, compression=compression)
    coding_desc = (
        first.describe() if not measured else "; ".join(f"{m}: {c.describe()}" for m, c in codings.items())
    )
    return PacketTable(
        models=tuple(models),
        resolutions=tuple(r.label for r in ress),
        coding=coding_desc,
        transport=(transport or Transport()).describe(),
        latency=latency,
        fps=fps,
        cells=tuple(cells),
    )
