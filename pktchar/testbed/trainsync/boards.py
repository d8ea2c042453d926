"""The paper's two boards against this host: the host cost a byte the boards needed to take the paper's
28,248 s (:func:`pktchar.testbed.trainsync.host.board_cost`) beside what a run measured here."""

from __future__ import annotations

from typing import Any

from .host import STEADY, board_cost
from .paper import PAPER, PAPER_STEPS
from .plan import TrainConfig
from .run import prepare


def paper_board(rep: Any | None = None) -> dict[str, Any]:
    """The paper's two boards (seed000 at two workers, 1 Gbit/s): the host cost a byte they needed
    (:func:`board_cost`, nothing hidden), the all-reduce rate that amounts to, and beside them this host's
    own from the run ``rep`` (its collectives alone on the run's links, and gloo alone on loopback)."""
    plan = prepare(TrainConfig(model="seed000", workers=2, steps=STEADY + 1))
    c = board_cost(plan, PAPER["one_board_s"], PAPER["two_boards_s"], PAPER_STEPS, PAPER["link_bps"])
    out = {**c.to_dict(), "allreduce_bps": c.bytes_sent * 8 / c.extra_s, "link_bps": PAPER["link_bps"]}
    h = rep.timing.get("host", {}) if rep is not None else {}
    out["here"] = {"link_bps": rep.config.link if rep is not None else None,
                   "per_byte_s": h.get("path", {}).get("per_byte_s"),
                   "per_message_s": h.get("path", {}).get("per_message_s"),
                   "loopback_per_byte_s": h.get("loopback", {}).get("per_byte_s")}  # fmt: skip
    return out


__all__ = ["paper_board"]
