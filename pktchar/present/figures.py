"""Figures as matplotlib ``Figure`` objects (no pyplot state), saved as PNG and PDF by the report.

Every figure labels its axes with units (SI bytes), keeps legends off the data
(outside the axes or in an empty corner) and draws what it claims: tests read
the series back through matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from ..core.qos import FIVEQI_TABLE
from ..core.units import human_bytes, human_count
from ..model.codec import Coding

if TYPE_CHECKING:
    from ..core.packets import Packets
    from ..model.profiler import Profile
    from ..model.table import PacketTable
    from ..testbed.compare import Comparison
    from ..testbed.fleetrun import FleetRun
    from ..testbed.trainsync import PaperRow
    from ..testbed.upload import UploadReport

_BYTES_FMT = FuncFormatter(lambda v, _: human_bytes(v, 2) if v > 0 else "0")
_COUNT_FMT = FuncFormatter(lambda v, _: human_count(v, 2) if v > 0 else "0")


def _mdbv_limits() -> list[tuple[int, list[int]]]:
    """Distinct DC-GBR maximum data burst volumes and the 5QIs that have them."""
    by: dict[int, list[int]] = {}
    for q in FIVEQI_TABLE:
        if q.mdbv is not None:
            by.setdefault(q.mdbv, []).append(q.qi)
    return sorted(by.items())


def payload_along_network(
    model: str,
    profiles: Sequence[Profile],
    coding: Coding,
    link: float | None = None,
    interval: float | None = None,
) -> Figure:
    """Coded payload at every split point, one line a resolution, log scale, MDBV limits drawn; with a
    ``link`` rate (bit/s) and a frame ``interval`` (s), the bytes the link carries in one interval."""
    n = len(profiles[0].splits)
    fig = Figure(figsize=(max(8.0, min(18.0, 0.09 * n + 6)), 5.2), layout="constrained")
    ax = fig.add_subplot()
    styles = ["-", "--", "-.", ":"]
    for k, p in enumerate(profiles):  # line styles differ so equal payloads (after pooling) stay visible
        ys = [max(coding.split_bytes(s), 1) for s in p.splits]
        ax.plot(
            range(len(ys)),
            ys,
            marker="o" if n <= 60 else None,
            ms=3,
            lw=1.4,
            ls=styles[k % len(styles)],
            label=f"{p.resolution} ({p.input_shape[2]}x{p.input_shape[3]})",
        )
    for mdbv, _ in _mdbv_limits():
        ax.axhline(mdbv, color="0.55", lw=0.8, ls="--", zorder=0)
    if link and interval:
        from ..core.units import human_bytes, human_duration, human_rate

        carried = link * interval / 8
        ax.axhline(
            carried,
            color="tab:red",
            lw=1.2,
            zorder=1,
            label=f"{human_rate(link)} x {human_duration(interval)} = {human_bytes(carried)}",
        )
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(_BYTES_FMT)
    ax.set_ylabel(f"payload per frame ({coding.dtype}, coded; bytes, SI)")
    ax.set_xlabel("split point (the device runs every layer up to and including it)")
    ticks = _tick_positions(n)
    names = [profiles[0].splits[i].after for i in ticks]
    ax.set_xticks(ticks, names, rotation=60, ha="right", fontsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.set_title(f"{model}: payload at every split point ({coding.describe()})", fontsize=10)
    _mdbv_axis(ax)
    ax.legend(title="input", loc="upper left", bbox_to_anchor=(1.09, 1.0), fontsize=8)
    return fig


def _mdbv_axis(ax: object) -> None:
    """The 5QI burst-volume limits as labelled ticks on a right-hand axis (labels never cover data);
    limits closer than 1.3x share one label."""
    groups: list[list[tuple[int, list[int]]]] = []
    for mdbv, qis in _mdbv_limits():
        if groups and mdbv / groups[-1][0][0] < 1.3:
            groups[-1].append((mdbv, qis))
        else:
            groups.append([(mdbv, qis)])
    right = ax.twinx()  # type: ignore[attr-defined]
    right.set_yscale("log")
    right.set_ylim(ax.get_ylim())  # type: ignore[attr-defined]
    ticks, labels = [], []
    for g in groups:
        qis = sorted(q for _, qs in g for q in qs)
        lo, hi = g[0][0], g[-1][0]
        ticks.append(lo)
        size = human_bytes(lo) if lo == hi else f"{human_bytes(lo)}-{human_bytes(hi)}"
        labels.append(f"5QI {','.join(map(str, qis))} MDBV {size}")
    right.set_yticks(ticks, labels, fontsize=7, color="0.35")
    right.minorticks_off()
    right.tick_params(axis="y", length=0)


def _tick_positions(n: int, most: int = 40) -> list[int]:
    step = max(1, math.ceil(n / most))
    ticks = list(range(0, n, step))
    if ticks[-1] != n - 1:
        ticks.append(n - 1)
    return ticks


def macs_vs_payload(model: str, profiles: Sequence[Profile], coding: Coding) -> Figure:
    """The split trade-off: device-side MACs against payload, one series a resolution."""
    fig = Figure(figsize=(8.0, 5.2), layout="constrained")
    ax = fig.add_subplot()
    for p in profiles:
        pts = [(s.device_macs, max(coding.split_bytes(s), 1), s.after) for s in p.splits if s.device_macs > 0]
        xs, ys = [x for x, _, _ in pts], [y for _, y, _ in pts]
        ax.plot(xs, ys, marker=".", ms=5, lw=0.6, label=f"{p.resolution}")
        lo = min(range(len(ys)), key=lambda i: (ys[i], i))
        ax.annotate(pts[lo][2], (xs[lo], ys[lo]), xytext=(4, -10), textcoords="offset points", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(_COUNT_FMT)
    ax.yaxis.set_major_formatter(_BYTES_FMT)
    ax.set_xlabel("device-side compute up to the split (MACs)")
    ax.set_ylabel(f"payload per frame ({coding.dtype}, coded; bytes)")
    ax.set_title(
        f"{model}: compute on the device against traffic on the network\n"
        "(split points after the first MAC; full offload is the input itself)",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(title="input", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def packet_sizes(title: str, packets: Packets) -> Figure:
    """IP packet-size distribution of one frame."""
    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    sizes = [s for s, _ in packets.sizes]
    counts = [n for _, n in packets.sizes]
    width = max(8.0, 0.02 * max(sizes))
    bars = ax.bar(sizes, counts, width=width, color="C0")
    for b, n in zip(bars, counts, strict=True):
        ax.annotate(
            f"{n:,}",
            (b.get_x() + b.get_width() / 2, b.get_height()),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_xlim(0, packets.transport.mtu * 1.08)
    if max(counts) > 50 * min(counts):
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, max(counts) * 1.15)
    ax.set_xlabel("IP packet length (bytes)")
    ax.set_ylabel("packets per frame")
    ax.set_title(
        f"{title}\n{packets.count:,} packets, {human_bytes(packets.wire_bytes)} on the wire, "
        f"{packets.transport.describe()}",
        fontsize=9,
    )
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def packet_table_heatmap(t: PacketTable) -> Figure:
    """log10 of the min and max payload of every model/resolution cell, annotated; both panels share one
    colour scale, the one colour bar drawn."""
    import numpy as np
    from matplotlib.colors import Normalize

    models, ress = list(t.models), list(t.resolutions)
    grids = {
        which: np.array(
            [[getattr(t.cell(m, r), f"{which}_bytes") for m in models] for r in ress], dtype=float
        )
        for which in ("min", "max")
    }
    top = max(g.max() for g in grids.values())
    norm = Normalize(vmin=0, vmax=max(1.0, math.ceil(np.log10(max(top, 10)))))
    fig = Figure(figsize=(3.0 + 2.6 * len(models), 1.6 + 0.75 * len(ress)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, which in zip(axes, ("min", "max"), strict=True):
        grid = grids[which]
        logs = np.log10(np.maximum(grid, 1))
        im = ax.imshow(logs, cmap="viridis", aspect="auto", norm=norm)
        for i in range(len(ress)):
            for j in range(len(models)):
                c = t.cell(models[j], ress[i])
                ax.text(
                    j,
                    i,
                    f"{human_bytes(grid[i, j], 3)}\n{getattr(c, f'{which}_split')}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm(logs[i, j]) < 0.6 else "black",  # viridis is dark below 0.6
                )
        ax.set_xticks(range(len(models)), models, fontsize=8)
        ax.set_yticks(range(len(ress)), ress, fontsize=8)
        ax.set_title(f"{which} payload over the split points", fontsize=9)
        ax.set_xlabel("model")
    axes[0].set_ylabel("input resolution")
    cb = fig.colorbar(im, ax=list(axes), shrink=0.9)
    cb.set_label("log10(payload bytes), both panels")
    return fig


def comparison_histogram(c: Comparison) -> Figure:
    """Predicted and measured packet counts per frame-length bucket, side by side."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    labels = [b for b, _, _ in c.histogram]
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], [p for _, p, _ in c.histogram], width=0.4, label="predicted", color="C0")
    ax.bar([x + 0.2 for x in xs], [m for _, _, m in c.histogram], width=0.4, label="measured", color="C1")
    ax.set_xticks(xs, labels)
    ax.set_xlabel("Ethernet frame length (bytes, tshark plen buckets)")
    ax.set_ylabel("packets (data direction)")
    ax.set_yscale("log")
    ax.set_title(f"Packet lengths: {c.flow}", fontsize=9)
    ax.legend(loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def comparison_frames(c: Comparison) -> Figure:
    """Per-frame transfer time, measured (send to last byte at the edge) against predicted."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    fr = [f for f in c.frames if f.transfer_s is not None]
    ax.plot([f.id for f in fr], [f.transfer_s * 1000 for f in fr], "o-", ms=3, label="measured")  # type: ignore[operator]
    ax.plot([f.id for f in fr], [(f.predicted_transfer_s or 0) * 1000 for f in fr], "--", label="predicted")
    ax.set_xlabel("frame")
    ax.set_ylabel("transfer time (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Per-frame transfer time: {c.flow}", fontsize=9)
    ax.legend(loc="lower right")
    ax.grid(True, alpha=0.3)
    return fig


def upload_timeline(rep: UploadReport) -> Figure:
    """Query start time against query time, one series a mode, upload completion marked (the layout of
    Fig. 3 and Fig. 5 of "Parallel Optimization of Deep Learning Computation Offloading in Edge
    Computing Environment")."""
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    marks = {"sequential": ("o", "tab:red"), "parallel": ("s", "tab:blue")}
    for m in rep.modes:
        marker, color = marks.get(m.mode, ("^", "tab:gray"))
        xs = [q["start_s"] for q in m.queries]
        ys = [q["seconds"] * 1000 for q in m.queries]
        ax.plot(xs, ys, marker=marker, ms=3.5, lw=0.8, color=color, label=f"{m.mode} (old system)"
                if m.mode == "sequential" else f"{m.mode} (new system)")  # fmt: skip
        if m.upload_s is not None:
            ax.axvline(m.upload_s, color=color, ls="--", lw=1.0)
            ax.annotate(f"{m.mode} upload done {m.upload_s:.2f} s", (m.upload_s, 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, va="bottom", ha="right", fontsize=7, color=color)  # fmt: skip
    ax.set_xlabel("query start time (s, from the start of the upload)")
    ax.set_ylabel("query time (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{rep.plan.model}: queries while the model uploads at {rep.config.link / 1e6:g} Mbit/s")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def fleet_sweep(runs: list[FleetRun], saturation: int, budget_s: float) -> Figure:
    """Per-frame latency against fleet size: predicted and measured (mean and worst p99), the budget and
    the predicted saturation point marked."""
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ns = [r.devices for r in runs]
    pred_mean = [max(d.latency_mean_s for d in r.predicted.devices) * 1000 for r in runs]
    pred_p99 = [max(d.latency_p99_s for d in r.predicted.devices) * 1000 for r in runs]
    meas_mean = [max((m.latency_mean_s or 0) for m in r.measured) * 1000 for r in runs]
    meas_p99 = [max((m.latency_p99_s or 0) for m in r.measured) * 1000 for r in runs]
    ax.plot(ns, pred_mean, "--", color="tab:blue", label="predicted mean")
    ax.plot(ns, pred_p99, ":", color="tab:blue", label="predicted p99")
    ax.plot(ns, meas_mean, "o-", color="tab:red", ms=4, label="measured mean")
    ax.plot(ns, meas_p99, "s-", color="tab:orange", ms=4, label="measured p99")
    ax.axhline(budget_s * 1000, color="0.4", lw=0.9, label=f"budget {budget_s * 1000:.3g} ms")
    ax.axvline(saturation, color="0.6", ls="--", lw=0.9)
    ax.annotate(f"edge link saturates (predicted): {saturation}", (saturation, 0.97),
                xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=7)  # fmt: skip
    ax.set_xlabel("devices")
    ax.set_ylabel("latency a frame (ms)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def train_steps(rep: object) -> Figure:
    """Per step, w0's payload and data-frame bytes, measured against predicted."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    rows = rep.steps  # type: ignore[attr-defined]
    xs = [r.step for r in rows]
    ax.bar([x - 0.2 for x in xs], [r.sent_predicted for r in rows], width=0.4, label="predicted", color="C0")
    ax.bar(
        [x + 0.2 for x in xs], [r.sent_measured or 0 for r in rows], width=0.4, label="measured", color="C1"
    )
    ax.yaxis.set_major_formatter(_BYTES_FMT)
    ax.set_xlabel("step")
    ax.set_ylabel("Ethernet bytes of data segments w0 sent")
    ax.set_xticks(xs)
    ax.set_title(f"{rep.config.model}, {rep.config.workers} workers: bytes a step", fontsize=9)  # type: ignore[attr-defined]
    ax.legend(loc="lower right")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def train_workers(reps: Sequence[object]) -> Figure:
    """Step time against the number of workers: compute alone, predicted and measured."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    base = [r for r in reps if not r.config.freeze and r.config.hook == "none"]  # type: ignore[attr-defined]
    ns = [r.config.workers for r in base]  # type: ignore[attr-defined]
    t = [r.timing for r in base]  # type: ignore[attr-defined]
    ax.plot(ns, [x["compute_s"] for x in t], "o-", label="compute without DDP, measured")
    ax.plot(ns, [x["step_predicted_no_overlap_s"] for x in t], "s--", label="step, predicted (link rate)")
    ax.plot(ns, [x["step_measured_s"] or 0 for x in t], "^-", label="step, measured")
    ax.set_xlabel("workers")
    ax.set_ylabel("seconds a step")
    ax.set_xticks(ns)
    ax.set_ylim(bottom=0)
    ax.set_title("Data-parallel step time against workers", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def train_paper(rows: Sequence[PaperRow]) -> Figure:
    """The paper's two-board time and pktchar's predictions, one bar a setup."""
    fig = Figure(figsize=(8.5, 4.6), layout="constrained")
    ax = fig.add_subplot()
    labels = [r.what for r in rows]
    from ..testbed.trainsync import PAPER

    vals = [r.total for r in rows]
    ys = list(range(len(rows)))
    ax.barh(ys, vals, color="C0")
    paper = PAPER["two_boards_s"]
    if paper:
        ax.axvline(paper, color="C3", ls="--", lw=1.2)
        ax.annotate(f"paper, two boards: {paper:,.0f} s", (paper, 0.02), xycoords=("data", "axes fraction"),
                    rotation=90, ha="right", va="bottom", fontsize=7, color="C3")  # fmt: skip
    ax.set_yticks(ys, [textwrap_short(x) for x in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("training time (s)")
    ax.set_title("Two boards at 1 Gbit/s: the paper's time and pktchar's predictions", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def textwrap_short(text: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
