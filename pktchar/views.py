"""Results as render.Table objects: what every command and report shows."""

from __future__ import annotations

from .profile import Profile
from .render import Column, Table

LAYER_COLUMNS = (
    Column("index", "#", "int"),
    Column("name", "layer"),
    Column("op", "op"),
    Column("shape", "output shape", "shape"),
    Column("elements", "elements", "int"),
    Column("bytes", "bytes", "bytes"),
    Column("params", "params", "int"),
    Column("macs", "MACs", "count"),
)

SPLIT_COLUMNS = (
    Column("index", "#", "int"),
    Column("after", "split after"),
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


def splits_table(p: Profile) -> Table:
    rows = [
        {
            "index": s.index,
            "after": s.after,
            "shapes": [list(t.shape) for t in s.tensors],
            "tensors": len(s.tensors),
            "bytes": s.bytes,
            "device_macs": s.device_macs,
            "device_params": s.device_params,
        }
        for s in p.splits
    ]
    return Table(
        f"Split points of {profile_title(p)}",
        SPLIT_COLUMNS,
        rows,
        caption="payload = every tensor produced before the cut and still needed after it ('input' = full offload)",
    )


def summary_lines(p: Profile) -> list[str]:
    from .units import human_bytes, human_count

    lo, hi = p.min_split, p.max_split
    lines = [
        f"model {p.model} ({p.source}), input {'x'.join(map(str, p.input_shape))}, dtype {p.dtype}",
        f"params {p.params:,} ({human_bytes(p.param_bytes)} at {p.dtype}), MACs {p.macs:,} ({human_count(p.macs)})",
        f"{len(p.layers)} layers, {len(p.splits)} split points; payload per split "
        f"{human_bytes(lo.bytes)} (after {lo.after}) ~ {human_bytes(hi.bytes)} (after {hi.after})",
    ]
    lines += [f"note: {n}" for n in p.notes]
    return lines
