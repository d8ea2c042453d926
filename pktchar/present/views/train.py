"""Data-parallel training sync: the plan, steps, timing, workers, the paper's two boards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..render import Column, Table
from .base import Output

if TYPE_CHECKING:
    from ...testbed.trainsync import PaperRow


def _signed(error: float | None) -> str:
    """A relative error as a signed percentage with two decimals ('' when there is none)."""
    return "" if error is None else f"{error:+.2%}"


def _sec(key: str, title: str) -> Column:
    return Column(key, title, "seconds", missing="—")


def train_plan_table(rep: Any) -> Table:
    """The bucket plan and the collectives of one steady step, per worker (w0)."""
    p = rep.plan
    k = min(2, len(p.steps) - 1)
    rows = [{"what": ph.name, "bytes": ph.bytes, "sent": ph.sent[0], "recv": ph.received[0],
             "frames": ph.frames_sent[0]} for ph in p.steps[k]]  # fmt: skip
    rows.append({"what": "total", "bytes": sum(ph.bytes for ph in p.steps[k]), "sent": p.step_total(k, "sent"),
                 "recv": p.step_total(k, "received"), "frames": p.step_total(k, "frames_sent")})  # fmt: skip
    cols = (
        Column("what", "collective", "text"),
        Column("bytes", "tensor bytes", "int"),
        Column("sent", "w0 sends (gloo, B)", "int"),
        Column("recv", "w0 receives (gloo, B)", "int"),
        Column("frames", "w0 Ethernet bytes sent", "int"),
    )
    cap = (f"{p.trainable:,} trainable parameters, {p.grad_bytes:,} B of gradients as all-reduced "
           f"({p.elem} B an element); first iteration one bucket of {p.first_buckets[0]:,} B, rebuilt buckets "
           f"{', '.join(f'{b:,}' for b in p.rebuilt_buckets)} B; DDP's own logging: "
           f"{rep.ddp_buckets.get('bucket_sizes') or '—'} then {rep.ddp_buckets.get('rebuilt_bucket_sizes') or '—'}")  # fmt: skip
    return Table(f"What one step puts on the wire, predicted ({rep.config.workers} workers, steady step)", cols,
                 rows, caption=cap)  # fmt: skip


def train_steps_table(rep: Any) -> Table:
    """Per step, w0: bytes measured against predicted, and the step's times."""
    rows = []
    for r in rep.steps:
        j = r.measures()  # the one join: bytes measured against predicted, and their errors
        rows.append({"step": r.step, "pay_m": j.payload.measured, "pay_p": j.payload.predicted,
                     "pay_e": j.payload.error, "eth_m": j.sent.measured, "eth_p": j.sent.predicted,
                     "eth_e": j.sent.error, "fwd": r.fwd_s, "bwd": r.bwd_s, "ar": r.allreduce_s,
                     "step_s": r.step_s})  # fmt: skip
    cols = (
        Column("step", "step", "int"),
        Column("pay_m", "payload sent (B)", "int"),
        Column("pay_p", "predicted", "int"),
        Column("pay_e", "error", "ratio", digits=2),
        Column("eth_m", "data frames sent (B)", "int"),
        Column("eth_p", "predicted", "int"),
        Column("eth_e", "error", "ratio", digits=2),
        _sec("fwd", "forward s"),
        _sec("bwd", "backward s"),
        _sec("ar", "all-reduce span s"),
        _sec("step_s", "step s"),
    )
    return Table(f"Per step, worker w0: {rep.source}", cols, rows,
                 caption="payload = TCP payload bytes w0 sent in the step (each byte once: retransmissions "
                 "apart); data frames = their Ethernet frames (66 B of headers a segment); step 0 all-reduces "
                 "one bucket, step 1 also broadcasts the rebuilt bucket indices")  # fmt: skip


def train_timing_table(rep: Any) -> Table:
    t = rep.timing
    j = rep.timing_measures()  # the one join: each error is its Measure's
    rows = [
        {"q": "compute a step, measured without DDP (s)", "v": t["compute_s"]},
        {"q": "buffer broadcast at the link rate (s)", "v": t["buffer_bcast_s"]},
        {"q": "all-reduce at the link rate, predicted (s)", "v": j.allreduce.predicted},
        {"q": "all-reduce at the calibrated rate, predicted (s)", "v": t.get("allreduce_calibrated_s")},
        {"q": "all-reduce span, measured (s)", "v": j.allreduce.measured, "e": j.allreduce.error},
        {"q": "step, predicted, nothing hidden (s)", "v": j.step_no_overlap.predicted, "e": j.step_no_overlap.error},
        {"q": "step, predicted, all but the last bucket hidden (s)", "v": j.step_overlap.predicted,
         "e": j.step_overlap.error},
        {"q": "step, predicted at the calibrated rate (s)", "v": j.step_calibrated.predicted,
         "e": j.step_calibrated.error},
        {"q": "step, measured (s)", "v": j.step_no_overlap.measured},
        {"q": "all-reduce hidden behind backward, measured (s)", "v": t.get("hidden_s")},
    ]  # fmt: skip
    cal = t.get("calibrated_bps")
    share = t.get("hidden_fraction")
    cap = (f"link {rep.config.link / 1e9:g} Gbit/s each way" + (f", calibrated {cal / 1e6:.0f} Mbit/s (one bulk TCP "
           "transfer w0 -> w1)" if cal else "") + "; error = measured against the figure on that row; steady "
           "steps (from the third)" + (f"; {share:.0%} of the all-reduce hidden" if share is not None else ""))  # fmt: skip
    cols = (Column("q", "quantity", "text"), Column("v", "value", "seconds", digits=4, missing="—"),
            Column("e", "error", "ratio", digits=2))  # fmt: skip
    return Table("Time a step, measured and predicted", cols, rows, caption=cap)


def train_workers_table(reps: list[Any]) -> Table:
    """One row a run: workers, variant, bytes a step (w0), times."""
    rows = []
    for r in reps:
        t = r.timing
        var = ("frozen backbone" if r.config.freeze else "full") + (
            f", {r.config.hook}" if r.config.hook != "none" else ""
        )
        row = {"n": r.config.workers, "var": var, "grad": r.plan.grad_bytes, "comp": t["compute_s"],
               "pred": t["step_predicted_no_overlap_s"], "meas": t.get("step_measured_s"),
               "hid": t.get("hidden_fraction"), "err": r.error or ""}  # fmt: skip
        if r.per_worker:  # w0's steady step, the one join
            j = r.worker_measures(0)
            row |= {"pay_m": j.payload.measured, "pay_p": j.payload.predicted, "pay_e": j.payload.error,
                    "eth_m": j.sent.measured, "eth_p": j.sent.predicted, "eth_e": j.sent.error}  # fmt: skip
        rows.append(row)
    cols = (
        Column("n", "workers", "int"),
        Column("var", "variant", "text"),
        Column("grad", "gradient bytes", "int"),
        Column("pay_m", "w0 payload a step (B)", "int"),
        Column("pay_p", "predicted", "int"),
        Column("pay_e", "error", "ratio", digits=2),
        Column("eth_m", "w0 data frames (B)", "int"),
        Column("eth_p", "predicted", "int"),
        Column("eth_e", "error", "ratio", digits=2),
        _sec("comp", "compute s"),
        _sec("pred", "step s, predicted"),
        _sec("meas", "step s, measured"),
        Column("hid", "all-reduce hidden", "percent", missing="—"),
        Column("err", "stopped", "text"),
    )
    return Table("Workers and variants: bytes and time a steady step", cols, rows,
                 caption="one worker runs locally, without a network (compute only); predicted step = compute + "
                 "buffer broadcast + all-reduce at the link rate, nothing hidden")  # fmt: skip


def train_paper_table(rows: list[PaperRow]) -> Table:
    cols = (
        Column("what", "setup (two boards, 1 Gbit/s)", "text"),
        Column("steps", "steps a board", "int"),
        Column("sync", "sync a step s", "seconds", digits=4),
        Column("total", "total s", "seconds", digits=0),
        Column("paper", "paper s", "seconds", digits=0),
        Column("vs_one", "against one board", "float", unit="x", digits=2),
    )
    from ...testbed.trainsync import PAPER, PAPER_STEPS

    cap = ('paper: "Performance Evaluation of Deep Learning Distributed Training on Edge Devices" (KETI/ETRI, 2023): '
           f"one board {PAPER['one_board_s']:,.0f} s, two boards {PAPER['two_boards_s']:,.0f} s, {PAPER['epochs']} "
           f"epochs of {PAPER['images']:,} images at batch {PAPER['batch']} ({PAPER_STEPS:,} steps a board: each "
           "board trained on the full data set)")  # fmt: skip
    return Table("The paper's two-board training, predicted from its one-board time and the sync cost", cols,
                 [r.to_dict() for r in rows], caption=cap)  # fmt: skip


def train_lines(rep: Any) -> list[str]:
    out = [f"data: {rep.source}"]
    c = rep.construction_measure()
    if c is not None:
        out.append(f"construction (initial state broadcast and shape check), w0 sent {c.measured:,} B payload; "
                   f"predicted {c.predicted:,} B ({_signed(c.error)})")  # fmt: skip
    for k, w in enumerate(rep.per_worker):
        pay = rep.worker_measures(k).payload
        out.append(f"{w['worker']}: {pay.measured:,.0f} B payload a steady step (predicted {pay.predicted:,}, "
                   f"{_signed(pay.error)}), {w['acks_sent']:.0f} pure ACKs "
                   f"({w['ack_bytes_sent']:,.0f} B) and {w['retransmitted']:,.0f} B retransmitted a step beside")  # fmt: skip
    for e, c in rep.captures.items():
        out.append(f"capture {e}: {c['captured']:,} packets, {'complete' if c['complete'] else 'INCOMPLETE'}")
    if rep.error:
        out.append(f"stopped: {rep.error}")
    out += [f"note: {n}" for n in rep.notes]
    return out


def train_output(rep: Any) -> Output:
    from rich.markup import escape  # errors quote paths in brackets, which rich would read as markup

    from .train_host import train_host_lines, train_host_table

    tables = [train_plan_table(rep), train_timing_table(rep)]
    if rep.per_worker:
        tables.insert(1, train_steps_table(rep))
    host = train_host_table(rep)
    tables += [host] if host else []
    return Output(tables, rep.to_dict(), [escape(x) for x in train_lines(rep) + train_host_lines(rep)])


def train_paper_lines(rows: list[PaperRow]) -> list[str]:
    """The paper's 3x in sentences, from the projection rows and the paper's own figures
    (:data:`pktchar.testbed.trainsync.PAPER`)."""
    from ...testbed.trainsync import PAPER, PAPER_STEPS

    two, steps = PAPER["two_boards_s"], PAPER_STEPS
    by = {r.key: r for r in rows}
    one = by["one_board"].total
    pred, meas = by.get("paper_setup"), by.get("paper_setup_measured")
    out = []
    if pred:
        gap = two - pred.total
        out.append(
            f"one board: {one:,.0f} s for {steps:,} steps = {one / steps:.3f} s a step. Two boards each train the "
            f"full data set, so each still runs {steps:,} steps and adds the sync of every step: "
            f"{pred.sync:.4f} s at 1 Gbit/s predicted (gradients all-reduced, BatchNorm buffers broadcast) "
            f"-> {pred.total:,.0f} s ({pred.vs_one:.2f}x one board) against the paper's {two:,.0f} s "
            f"({two / one:.2f}x)"
        )
        out.append(
            f"left unexplained by the wire: {gap:,.0f} s, {gap / steps * 1000:.0f} ms a step: the paper's stack "
            "(TensorFlow MultiWorkerMirroredStrategy, its collectives on the boards' CPUs) costs more than the "
            "link time, as the sync measured here does on two shared cores"
        )
    if meas:
        out.append(
            f"with the sync measured here ({meas.sync:.3f} s a step, CPU-bound on this machine rather than "
            f"wire-bound): {meas.total:,.0f} s ({meas.vs_one:.2f}x one board)"
        )
    return out
