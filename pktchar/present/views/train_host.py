"""train-sync on a CPU-bound host: the host model's step and all-reduce beside the measured ones, and
the calibration behind them (:func:`pktchar.testbed.trainsync.host.host_timing`)."""

from __future__ import annotations

from typing import Any

from ..render import Column, Table


def _row(m: Any, note: str = "") -> dict[str, Any]:
    """A row of a Measure (the one join: its error is the Measure's)."""
    return {"q": m.metric, "p": m.predicted, "m": m.measured, "e": m.error, "note": note}


def train_host_table(rep: Any) -> Table | None:
    """Predicted and measured seconds of a steady step on this host, each bucket's all-reduce, compute."""
    from ...testbed.trainsync.host import host_measures

    h = rep.timing.get("host") or {}
    j = host_measures(h)
    if j is None:
        return None
    rows = [
        _row(j.step, "chain of the buckets, optimizer step after"),
        _row(j.span, "first bucket's launch to the last one's end"),
        _row(j.exposed, "what the step waits for once its backward is done"),
    ]
    for b, cost, start in zip(h["buckets"], j.buckets, j.starts, strict=True):
        rows.append(_row(cost, f"{b['bytes']:,} B alone on these links; wire {b['wire_s'] * 1e3:.1f} ms, "
                               f"CPU {b['cpu_s'] * 1e3:.0f} ms"))  # fmt: skip
        rows.append(_row(start, f"ready at {b['ready_s']:.3f} s from compute alone (slowest worker); measured: "
                                "its last launch"))  # fmt: skip
    rows.append({"q": "compute a step, all workers at once", "p": h["compute_concurrent_s"],
                 "note": f"alone before the process group: {h['compute_solo_s']:.3f} s"})  # fmt: skip
    rows.append({"q": "backward delayed by the all-reduces under it", "p": h["backward_delay_s"],
                 "note": f"their CPU shared by {h['cores']} cores"})  # fmt: skip
    cols = (
        Column("q", "quantity", "text"),
        Column("p", "predicted s", "seconds", digits=3, missing="—"),
        Column("m", "measured s", "seconds", digits=3, missing="—"),
        Column("e", "error", "ratio", digits=1),
        Column("note", "how", "text"),
    )
    cap = (f"steady steps {', '.join(str(r['step']) for r in h['steps'])}, each predicted from the compute "
           "measured alone between DDP steps (every worker at once) and each bucket's all-reduce measured alone "
           "on the run's links; error = measured against predicted")  # fmt: skip
    return Table(
        "Step time on this host: compute and the collectives' host cost, chained", cols, rows, caption=cap
    )


def _per(x: float | None, unit: float) -> str:
    return "—" if x is None else f"{x / unit:.2f}"


def train_host_lines(rep: Any) -> list[str]:
    """The calibration figures: the collective alone on the run's links and on loopback."""
    h = rep.timing.get("host") or {}
    out = []
    p = h.get("path") or {}
    if p.get("sizes"):
        sizes = ", ".join(f"{s['bytes']:,} B {s['alone_s'] * 1e3:.1f} ms (wire {s['wire_s'] * 1e3:.1f})"
                          for s in p["sizes"])  # fmt: skip
        out.append(f"all-reduce alone on the run's links: {sizes}; beyond the wire {_per(p['per_message_s'], 1e-6)} "
                   f"µs a gloo message + {_per(p['per_byte_s'], 1e-9)} ns a byte; CPU {_per(p['cpu_per_byte_s'], 1e-9)} "
                   f"ns a byte in the workers' processes (all of them) + {_per(p['irq_per_byte_s'], 1e-9)} ns in interrupts")  # fmt: skip
    lo = h.get("loopback") or {}
    if lo.get("error"):
        out.append(f"gloo alone on loopback: {lo['error']}")
    elif lo.get("sizes"):
        sizes = ", ".join(f"{s['bytes']:,} B {s['wall_s'] * 1e3:.2f} ms" for s in lo["sizes"])
        out.append(f"gloo alone on loopback ({rep.config.workers} processes): {sizes}; "
                   f"{_per(lo['per_message_s'], 1e-6)} µs a message + {_per(lo['per_byte_s'], 1e-9)} ns a byte, "
                   f"CPU {_per(lo['cpu_per_byte_s'], 1e-9)} ns a byte")  # fmt: skip
    return out


def train_board_lines(board: dict[str, Any]) -> list[str]:
    """The paper's two boards against this host (:func:`pktchar.testbed.trainsync.host.paper_board`)."""
    b, here = board, board.get("here") or {}
    out = [
        f"two boards add {b['extra_s']:.3f} s to each of the paper's one-board steps ({b['one_step_s']:.3f} -> "
        f"{b['two_step_s']:.3f} s); the wire at {b['link_bps'] / 1e9:g} Gbit/s explains {b['wire_s']:.3f} s of it "
        f"({b['bytes_sent']:,} B of gloo stream a board sends a step, {b['messages']} messages)",
        f"the rest, {b['extra_s'] - b['wire_s']:.3f} s, is {b['per_byte_s'] * 1e9:.1f} ns a byte of host cost on each "
        f"board if nothing was hidden behind the backward (hiding some would need more): an all-reduce at "
        f"{b['allreduce_bps'] / 1e6:.0f} Mbit/s, {b['allreduce_bps'] / b['link_bps']:.0%} of the link",
    ]
    if here.get("per_byte_s") is not None:
        lo = here.get("loopback_per_byte_s")
        out.append(
            f"this host, on the run's links at {here['link_bps'] / 1e6:g} Mbit/s: {here['per_byte_s'] * 1e9:.1f} ns a "
            f"byte beyond the wire and {here['per_message_s'] * 1e6:.0f} µs a message"
            + (f"; gloo alone on loopback {lo * 1e9:.2f} ns a byte" if lo is not None else "")
            + "; no published gloo or CPU all-reduce figure for ARM boards is cited here"
        )
    return out
