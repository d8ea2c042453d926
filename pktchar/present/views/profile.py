"""A model's profile: layers, split points, the model list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..render import Column, Table
from .base import Output

if TYPE_CHECKING:
    from ...model.codec import Coding
    from ...model.profiler import Profile


LAYER_COLUMNS = (
    Column("index", "#", "int"),
    Column("name", "layer", "text"),
    Column("op", "op", "text"),
    Column("shape", "output shape", "shape"),
    Column("elements", "elements", "int"),
    Column("bytes", "bytes", "bytes"),
    Column("params", "params", "int"),
    Column("macs", "MACs", "count"),
)


SPLIT_COLUMNS = (
    Column("index", "#", "int"),
    Column("after", "split after", "text"),
    Column("shapes", "cut set", "shape"),
    Column("tensors", "tensors", "int"),
    Column("bytes", "payload", "bytes"),
    Column("device_macs", "device MACs", "count"),
    Column("device_params", "device params", "int"),
)


def profile_title(p: Profile) -> str:
    shape = "x".join(str(d) for d in p.input_shape)
    return f"{p.model} at {p.resolution} (input {shape}), {p.dtype}"


def layers_table(p: Profile) -> Table:
    rows = [
        {
            "index": x.index,
            "name": x.name,
            "op": x.op,
            "shape": x.shape,
            "elements": x.elements,
            "bytes": x.bytes,
            "params": x.params,
            "macs": x.macs,
        }
        for x in p.layers
    ]
    return Table(f"Layers of {profile_title(p)}", LAYER_COLUMNS, rows)


def splits_table(p: Profile, coding: Coding | None = None) -> Table:
    rows = [
        {
            "coded": coding.split_bytes(s) if coding is not None else None,
            "index": s.index,
            "after": s.after,
            "shapes": [list(t.shape) for t in s.tensors],
            "tensors": len(s.tensors),
            "bytes": s.bytes,
            "tensor_bytes": s.tensor_bytes,
            "device_macs": s.device_macs,
            "device_params": s.device_params,
        }
        for s in p.splits
    ]
    cols = list(SPLIT_COLUMNS)
    caption = (
        "payload = every tensor produced before the cut and still needed after it ('input' = full offload)"
    )
    if any(s.tensor_bytes != s.bytes for s in p.splits):
        cols.insert(4, Column("tensor_bytes", "values", "bytes"))
        caption += (
            f"; at {p.dtype} the payload is the values plus each floating tensor's scale and zero point (8 B)"
        )
    if coding is not None:
        cols.insert(cols.index(SPLIT_COLUMNS[4]) + 1, Column("coded", "coded", "bytes"))
        caption += f"; coded: {coding.describe()}"
    return Table(f"Split points of {profile_title(p)}", cols, rows, caption=caption)


def summary_lines(p: Profile) -> list[str]:
    from ...core.units import human_bytes, human_count

    lo, hi = p.min_split, p.max_split
    lines = [
        f"model {p.model} ({p.source}), input {'x'.join(map(str, p.input_shape))}, dtype {p.dtype}",
        f"params {p.params:,} ({human_bytes(p.param_bytes)} at {p.dtype}), MACs {p.macs:,} ({human_count(p.macs)})",
        f"{len(p.layers)} layers, {len(p.splits)} split points; payload per split "
        f"{human_bytes(lo.bytes)} (after {lo.after}) ~ {human_bytes(hi.bytes)} (after {hi.after})",
    ]
    lines += [f"note: {n}" for n in p.notes]
    return lines


def models_output(rows: list[dict[str, Any]]) -> Output:
    cols = [
        Column("name", "model", "text"),
        Column("params", "params", "int"),
        Column("default_res", "native res", "int"),
        Column("source", "source", "text"),
        Column("description", "description", "text"),
    ]
    return Output([Table(f"{len(rows)} models", cols, rows)], rows)


def profile_output(p: Profile, coding: Coding | None, only: str = "all") -> Output:
    """Layers and/or split points of a profile; ``coding`` adds the coded payload of each split."""
    d = p.to_dict()
    if coding is not None:
        d["coding"] = coding.describe()
        for sd, sp in zip(d["splits"], p.splits, strict=True):
            sd["coded_bytes"] = coding.split_bytes(sp)
    tables = []
    if only in ("all", "layers"):
        tables.append(layers_table(p))
    else:
        d.pop("layers")
    if only in ("all", "splits"):
        tables.append(splits_table(p, coding))
    else:
        d.pop("splits")
    # CSV is one table a file: the layers (``--only splits`` for the split points)
    return Output(tables, d, summary_lines(p), title=profile_title(p), per_format={"csv": tables[:1]})
