"""The emulated device: the slowdown it gives work units of 1 ms to 1 s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.units import human_duration
from ..render import Column, Table
from .base import Output, ms

if TYPE_CHECKING:
    from ...testbed.device import DeviceReport


def device_table(rep: DeviceReport) -> Table:
    cols = (
        Column("unit", "work unit", "text"),
        Column("blocks", "bottlenecks", "int"),
        Column("free", "free ms", "ms", digits=2),
        Column("emulated", "emulated ms", "ms", digits=2),
        Column("slowdown", "slowdown", "float", digits=2),
        Column("target", "target 1/F", "float", digits=2),
        Column("error", "error", "ratio"),
    )
    rows = [{"unit": human_duration(r.unit_s), "blocks": r.blocks, "free": ms(r.free_s), "emulated": ms(r.emulated_s),
             "slowdown": r.slowdown, "target": r.target, "error": r.error} for r in rep.rows]  # fmt: skip
    cap = (f"free: the unit's CPU time run back to back (median of {rep.repeats}); emulated: its wall time as one "
           f"unit after {rep.gap_s * 1000:.0f} ms idle, under the mechanism (median of {rep.repeats}); work: "
           f"{rep.work}, {ms(rep.block_s):.2f} ms each free; load average {rep.load[0]:.2f} before, "
           f"{rep.load[1]:.2f} after")  # fmt: skip
    return Table(f"Emulated device: {rep.device.describe()}", cols, rows, caption=cap)


def device_output(rep: DeviceReport) -> Output:
    return Output([device_table(rep)], rep.to_dict())
