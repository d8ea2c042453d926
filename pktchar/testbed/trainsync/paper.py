"""The paper's result (two boards at 1 Gbit/s) projected from its one-board step and pktchar's sync."""

from __future__ import annotations

import math
from typing import Any

from .analysis import TrainReport
from .plan import Plan, TrainConfig
from .run import prepare

PAPER = {"one_board_s": 9310.0, "two_boards_s": 28248.0, "epochs": 100, "images": 50000, "batch": 64,
         "link_bps": 1e9}  # fmt: skip
PAPER_STEPS = PAPER["epochs"] * math.ceil(PAPER["images"] / PAPER["batch"])  # 100 x 782 = 78,200


def sync_s(plan: Plan, rate: float) -> float:
    """Seconds a steady step's collectives take on w0's uplink at ``rate`` (data frames, nothing hidden)."""
    k = min(2, len(plan.steps) - 1)
    return plan.step_total(k, "frames_sent") * 8 / rate


def measured_sync(rep: TrainReport) -> float | None:
    """What synchronising added to a step here: measured step - compute measured without DDP."""
    t = rep.timing
    return (t["step_measured_s"] - t["compute_s"]) if t.get("step_measured_s") is not None else None


def paper_rows(
    model: str = "seed000", measured: dict[str, TrainReport] | None = None
) -> list[dict[str, Any]]:
    """The paper's setup (two boards at 1 Gbit/s, 78,200 steps a board) predicted from its one-board step
    (9,310 s / 78,200) plus pktchar's sync a step, and what would have helped. ``measured`` maps a variant
    (full, frozen, fp16) to a two-worker run here: its measured sync beside."""
    measured = measured or {}
    rate = PAPER["link_bps"]
    step1 = PAPER["one_board_s"] / PAPER_STEPS

    def plan(**kw: Any) -> Plan:
        cfg = TrainConfig(model=model, workers=2, steps=3, **kw)
        return prepare(cfg)

    full, frozen, fp16 = plan(), plan(freeze=True), plan(hook="fp16")
    both = plan(freeze=True, hook="fp16")
    big = 256
    steps_big = PAPER["epochs"] * math.ceil(PAPER["images"] / big)
    rows: list[dict[str, Any]] = [
        {"what": "one board (paper)", "steps": PAPER_STEPS, "sync": "0", "total": f"{PAPER['one_board_s']:,.0f}",
         "paper": f"{PAPER['one_board_s']:,.0f}", "vs_one": "1.00x"},
    ]  # fmt: skip

    def row(what: str, steps: int, compute: float, sync: float | None, paper: str = "") -> None:
        if sync is None:
            return
        total = steps * (compute + sync)
        rows.append({"what": what, "steps": steps, "sync": f"{sync:.4f}", "total": f"{total:,.0f}", "paper": paper,
                     "vs_one": f"{total / PAPER['one_board_s']:.2f}x"})  # fmt: skip

    row("full data on each board, full fine-tuning (the paper's setup), predicted", PAPER_STEPS, step1,
        sync_s(full, rate), f"{PAPER['two_boards_s']:,.0f}")  # fmt: skip
    if "full" in measured:
        row("the same with the sync measured here", PAPER_STEPS, step1, measured_sync(measured["full"]),
            f"{PAPER['two_boards_s']:,.0f}")  # fmt: skip
    row("sharded data (each board half the steps), predicted", PAPER_STEPS // 2, step1, sync_s(full, rate))
    row("frozen backbone (compute a step unchanged: an upper bound), predicted", PAPER_STEPS, step1,
        sync_s(frozen, rate))  # fmt: skip
    if "frozen" in measured:
        row("frozen backbone, sync measured here", PAPER_STEPS, step1, measured_sync(measured["frozen"]))
    row("fp16 gradients (DDP fp16_compress_hook), predicted", PAPER_STEPS, step1, sync_s(fp16, rate))
    if "fp16" in measured:
        row("fp16 gradients, sync measured here", PAPER_STEPS, step1, measured_sync(measured["fp16"]))
    row(f"batch {big} (compute a step x{big // PAPER['batch']}), predicted", steps_big, step1 * big / PAPER["batch"],
        sync_s(full, rate))  # fmt: skip
    row(f"all four: sharded, frozen, fp16, batch {big}, predicted", steps_big // 2, step1 * big / PAPER["batch"],
        sync_s(both, rate))  # fmt: skip
    return rows
