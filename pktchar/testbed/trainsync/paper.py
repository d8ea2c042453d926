"""The paper's result (two boards at 1 Gbit/s) projected from its one-board step and pktchar's sync."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
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
    """What synchronising added to a step here: measured step - compute measured without DDP, all workers
    computing at once (the host model's figure) where the run has it, else each worker's figure from before
    the process group. Here N workers share this host's cores, the paper's boards each had their own: the
    compute alone before the process group overlaps the others' start-up by chance (0.5-2.2 s measured for
    one configuration) and made this sync negative in a 2-worker run, where it should be the sync alone."""
    t = rep.timing
    if t.get("step_measured_s") is None:
        return None
    compute = (t.get("host") or {}).get("compute_concurrent_s") or t["compute_s"]
    return t["step_measured_s"] - compute


@dataclass(frozen=True)
class PaperRow:
    """One setup of the paper's two-board projection, in numbers (the JSON document's keys; ``key`` names the
    setup, ``what`` describes it for people)."""

    key: str  # one_board, paper_setup, paper_setup_measured, sharded, frozen, frozen_measured, fp16, ...
    what: str
    steps: int  # steps a board
    sync: float  # seconds a step's sync adds
    total: float  # seconds: steps x (compute a step + sync)
    paper: float | None  # the paper's seconds for this setup, where it gives them
    vs_one: float  # total / the paper's one-board time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_rows(model: str = "seed000", measured: dict[str, TrainReport] | None = None) -> list[PaperRow]:
    """The paper's setup (two boards at 1 Gbit/s, 78,200 steps a board) predicted from its one-board step
    (9,310 s / 78,200) plus pktchar's sync a step, and what would have helped. ``measured`` maps a variant
    (full, frozen, fp16) to a two-worker run here: its measured sync beside."""
    measured = measured or {}
    rate, one, two = PAPER["link_bps"], PAPER["one_board_s"], PAPER["two_boards_s"]
    step1 = one / PAPER_STEPS

    def plan(**kw: Any) -> Plan:
        cfg = TrainConfig(model=model, workers=2, steps=3, **kw)
        return prepare(cfg)

    full, frozen, fp16 = plan(), plan(freeze=True), plan(hook="fp16")
    both = plan(freeze=True, hook="fp16")
    big = 256
    steps_big = PAPER["epochs"] * math.ceil(PAPER["images"] / big)
    rows = [PaperRow("one_board", "one board (paper)", PAPER_STEPS, 0.0, one, one, 1.0)]

    def row(
        key: str, what: str, steps: int, compute: float, sync: float | None, paper: float | None = None
    ) -> None:
        if sync is not None:
            total = steps * (compute + sync)
            rows.append(PaperRow(key, what, steps, sync, total, paper, total / one))

    row("paper_setup", "full data on each board, full fine-tuning (the paper's setup), predicted", PAPER_STEPS,
        step1, sync_s(full, rate), two)  # fmt: skip
    if "full" in measured:
        row("paper_setup_measured", "the same with the sync measured here", PAPER_STEPS, step1,
            measured_sync(measured["full"]), two)  # fmt: skip
    row(
        "sharded",
        "sharded data (each board half the steps), predicted",
        PAPER_STEPS // 2,
        step1,
        sync_s(full, rate),
    )
    row("frozen", "frozen backbone (compute a step unchanged: an upper bound), predicted", PAPER_STEPS, step1,
        sync_s(frozen, rate))  # fmt: skip
    if "frozen" in measured:
        row("frozen_measured", "frozen backbone, sync measured here", PAPER_STEPS, step1,
            measured_sync(measured["frozen"]))  # fmt: skip
    row("fp16", "fp16 gradients (DDP fp16_compress_hook), predicted", PAPER_STEPS, step1, sync_s(fp16, rate))
    if "fp16" in measured:
        row("fp16_measured", "fp16 gradients, sync measured here", PAPER_STEPS, step1,
            measured_sync(measured["fp16"]))  # fmt: skip
    row("batch", f"batch {big} (compute a step x{big // PAPER['batch']}), predicted", steps_big,
        step1 * big / PAPER["batch"], sync_s(full, rate))  # fmt: skip
    row("all_four", f"all four: sharded, frozen, fp16, batch {big}, predicted", steps_big // 2,
        step1 * big / PAPER["batch"], sync_s(both, rate))  # fmt: skip
    return rows
