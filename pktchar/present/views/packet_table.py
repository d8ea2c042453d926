"""The packet-size table (the Yonsei paper's Table 1): the grid, the long table, the paper comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..render import Column, Table
from .base import Output

if TYPE_CHECKING:
    from ...core.qos import Requirements
    from ...model.table import Cell, PacketTable


def _fmt_5qi(qis: list[int]) -> str:
    return ", ".join(map(str, qis)) if qis else "none"


def carried_text(r: Requirements) -> str:
    from ...core.units import human_factor

    if r.carrier is None:
        return ""
    return f"{'yes' if r.carried else 'NO'} ({human_factor(r.carrier_factor or 0.0)})"


def cell_text(c: Cell) -> str:
    from ...core.units import human_bytes, human_rate

    text = f"{human_bytes(c.min_bytes)} ({c.min_split}) ~ {human_bytes(c.max_bytes)} ({c.max_split})"
    lo, hi = c.min_req, c.max_req
    if lo is not None and hi is not None:
        text += f"\nrate {human_rate(lo.rate_payload)} ~ {human_rate(hi.rate_payload)}"
        if lo.carrier is not None:
            text += f"\ncarried: {carried_text(lo)} ~ {carried_text(hi)}"
        text += f"\n5QI: {_fmt_5qi(lo.fitting)} ~ {_fmt_5qi(hi.fitting)}"
    return text


def packet_grid(t: PacketTable) -> Table:
    """Rows resolutions, columns models, as the paper lays it out."""
    cols = [Column("res", "input", "text")] + [Column(m, m, "text") for m in t.models]
    rows = []
    for r in t.resolutions:
        row: dict[str, object] = {"res": _res_label(t, r)}
        for m in t.models:
            row[m] = cell_text(t.cell(m, r))
        rows.append(row)
    budget = _budget(t)
    caption = f"Payload per frame over all split points, min (split) ~ max (split); coding: {t.coding}"
    if budget:
        caption += f"; rate = payload x 8 / budget for {budget} ({t.transport})"
        first = t.cells[0].min_req if t.cells else None
        if first is not None and first.carrier is not None:
            caption += (
                f"; carried by {first.carrier.name} ({first.carrier.source}), factor = its rate / needed"
            )
        caption += "; standardized 5QIs (TS 23.501 Table 5.7.4-1) that fit each end"
    return Table(f"Packet characteristics of image classifiers, this run's coding ({t.coding})", cols, rows,
                 caption=caption)  # fmt: skip


def _res_label(t: PacketTable, r: str) -> str:
    c = t.cell(t.models[0], r)
    return f"{r} ({c.input_shape[2]}x{c.input_shape[3]})"


def _budget(t: PacketTable) -> str:
    from ...core.units import human_duration, human_number

    parts = []
    if t.latency is not None:
        parts.append(f"a {human_duration(t.latency)} latency budget")
    if t.fps is not None:
        parts.append(f"{human_number(t.fps)} frames/s")
    return " and ".join(parts)


LONG_COLUMNS = (
    Column("res", "input", "text"),
    Column("model", "model", "text"),
    Column("min_bytes", "min payload", "bytes"),
    Column("min_split", "min split", "text"),
    Column("max_bytes", "max payload", "bytes"),
    Column("max_split", "max split", "text"),
)


LONG_FLOW_COLUMNS = (
    Column("min_rate_bps", "min rate", "rate"),
    Column("max_rate_bps", "max rate", "rate"),
    Column("min_wire_rate_bps", "min wire rate", "rate"),
    Column("max_wire_rate_bps", "max wire rate", "rate"),
)


LONG_CARRIER_COLUMNS = (
    Column("min_carried", "carried (min)", "text"),
    Column("max_carried", "carried (max)", "text"),
)


LONG_5QI_COLUMNS = (
    Column("min_5qi", "5QI (min)", "text"),
    Column("max_5qi", "5QI (max)", "text"),
)


def packet_long(t: PacketTable) -> Table:
    rows = []
    flows = any(c.min_req is not None for c in t.cells)
    carrier = any(c.min_req is not None and c.min_req.carrier is not None for c in t.cells)
    for c in t.cells:
        d = c.to_dict()
        d["min_5qi"] = _fmt_5qi(d["min_5qi"]) if "min_5qi" in d else ""
        d["max_5qi"] = _fmt_5qi(d["max_5qi"]) if "max_5qi" in d else ""
        if c.min_req is not None and c.max_req is not None:
            d["min_carried"], d["max_carried"] = carried_text(c.min_req), carried_text(c.max_req)
        rows.append(d)
    cols = list(LONG_COLUMNS)
    if flows:
        cols += (
            list(LONG_FLOW_COLUMNS) + (list(LONG_CARRIER_COLUMNS) if carrier else []) + list(LONG_5QI_COLUMNS)
        )
    return Table("Packet characteristics, one row a cell", cols, rows, caption=f"coding: {t.coding}")


def paper_comparison(t: PacketTable) -> Table | None:
    rows = [
        {"res": c.res, "model": c.model, "paper_row": c.paper[0], "comparison": c.comparison()}
        for c in t.cells
        if c.paper is not None
    ]
    if not rows:
        return None
    from ...model.table import PAPER_NAME

    cols = (
        Column("res", "input", "text"),
        Column("model", "model", "text"),
        Column("paper_row", "paper's Table 1 row", "text"),
        Column("comparison", "paper vs exact", "para"),
    )
    return Table(
        f"{PAPER_NAME}, Table 1, against the exact ranges under the paper's own assumptions for each row "
        "(fp32; uncompressed at 224x224, 10% compression at 8K and beyond), not this run's coding",
        cols,
        rows,
    )


def paper_lines(t: PacketTable) -> list[str]:
    """Why the two tables' bytes differ, where they do (both are exact, under different codings)."""
    unlike = t.unlike_paper()
    if not unlike:
        return []
    rows = ", ".join(f"{c.model} at {c.res}" for c in unlike)
    return [
        f"note: the packet table uses this run's coding ({t.coding}); the comparison with the paper uses the "
        f"paper's assumptions for each row, so the two differ for {rows}"
    ]


def packet_table_output(pt: PacketTable) -> Output:
    """The packet-size table: the grid (and the paper's cells beside it); CSV gets one long table."""
    comparison = paper_comparison(pt)
    tables = [packet_grid(pt)] + ([comparison] if comparison else [])
    lines = paper_lines(pt) if comparison else []
    return Output(tables, pt.to_dict(), lines, per_format={"csv": [packet_long(pt)]})
