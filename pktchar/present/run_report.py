"""Report folders for testbed runs and captures: report.md, a standalone report.tex with table fragments
(tables/*.tex), figures (PNG and PDF) and report.json, all from one skeleton (:func:`write_folder`).
Light: no torch (``pktchar compare`` uses it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..core.errors import PktcharError
from . import figures, views
from .render import TEX_PREAMBLE, Table, tex_command, tex_escape, to_latex, to_markdown


def write_folder(
    out: str | Path,
    title: str,
    *,
    tables: Sequence[tuple[str, Table]],
    figs: Sequence[tuple[str, str, Figure]] = (),
    data: Any = None,
    command: str = "",
    bullets: Sequence[str] = (),
    sections: Sequence[tuple[str, Sequence[str]]] = (),
    force: bool = True,
) -> Path:
    """Write one report folder: ``bullets`` under the title, then each (heading, items) of ``sections``,
    every table (md inline, tex as fragments), every figure (PNG and PDF) and ``data`` as JSON."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise PktcharError(f"{out} exists and is not empty: choose another folder or pass `force`")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for stem, _, fig in figs:
        fig.savefig(out / "figures" / f"{stem}.png", dpi=130)
        fig.savefig(out / "figures" / f"{stem}.pdf")
    for stem, t in tables:
        (out / "tables" / f"{stem}.tex").write_text(to_latex(t, label=f"tab:{stem}"))
    lists = ([("", bullets)] if bullets else []) + list(sections)
    (out / "report.md").write_text(_markdown(title, command, lists, tables, figs))
    (out / "report.tex").write_text(_latex(title, command, lists, tables, figs))
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str))
    return out


_Lists = Sequence[tuple[str, Sequence[str]]]  # (heading, items); "" the items under the title


def _markdown(
    title: str,
    command: str,
    lists: _Lists,
    tables: Sequence[tuple[str, Table]],
    figs: Sequence[tuple[str, str, Any]],
) -> str:
    """report.md: the title, the command, the lists, every table inline, every figure's PNG."""
    md = [f"# {title}", ""]
    if command:
        md += ["Made with:", "", "```", command, "```", ""]
    for heading, items in lists:
        md += ([f"## {heading}", ""] if heading else []) + [f"- {x}" for x in items] + [""]
    md += [to_markdown(t) for _, t in tables]
    for stem, caption, _ in figs:
        md += [f"![{caption}](figures/{stem}.png)", ""]
    return "\n".join(md) + "\n"


def _latex(
    title: str,
    command: str,
    lists: _Lists,
    tables: Sequence[tuple[str, Table]],
    figs: Sequence[tuple[str, str, Any]],
) -> str:
    """report.tex, standalone: the lists as itemize, the tables as \\input fragments, the figures' PDFs."""
    tex = [*TEX_PREAMBLE, rf"\title{{{tex_escape(title)}}}", r"\begin{document}", r"\maketitle"]
    if command:
        tex.append(r"{\raggedright\noindent Made with: " + tex_command(command) + "\\par}\n")
    for heading, items in lists:
        tex += ([rf"\section*{{{tex_escape(heading)}}}"] if heading else []) + [r"\begin{itemize}"]
        tex += [rf"\item {tex_escape(x.replace('**', ''))}" for x in items] + [r"\end{itemize}"]
    tex += [rf"\input{{tables/{stem}.tex}}" for stem, _ in tables]
    tex += [r"\clearpage"] if tables and figs else []  # figures on pages of their own, as in pktchar report
    for stem, caption, _ in figs:
        tex += [
            r"\begin{figure}[H]",
            r"\centering",
            rf"\includegraphics[width=0.85\linewidth]{{figures/{stem}.pdf}}",
            rf"\caption{{{tex_escape(caption)}}}",
            r"\end{figure}",
        ]
    tex.append(r"\end{document}")
    return "\n".join(tex) + "\n"


def write_comparison(
    c: Any, out: str | Path, *, force: bool = False, extra: dict[str, Any] | None = None
) -> Path:
    """A compare report folder: the comparison, packet-length histogram and per-frame tables and figures."""
    figs = [("histogram", "Packet lengths, predicted and measured.", figures.comparison_histogram(c))]
    if any(f.transfer_s is not None for f in c.frames):
        figs.append(
            ("frames", "Per-frame transfer time, measured and predicted.", figures.comparison_frames(c))
        )
    tables = [
        ("comparison", views.comparison_table(c)),
        ("histogram", views.histogram_table(c)),
        ("frames", views.frames_table(c)),
    ]
    bullets = [f"**capture**: {c.pcap}"] + [f"**{k}**: {v}" for k, v in (extra or {}).items()]
    return write_folder(out, f"pktchar compare: {c.flow}", tables=tables, figs=figs, bullets=bullets,
                        data={**c.to_dict(), **(extra or {})}, force=force)  # fmt: skip


def write_upload(reps: list[Any], out: str | Path, *, command: str = "", force: bool = False) -> Path:
    """An upload report folder: per model its partitions and modes and the query timeline; with both modes
    the paper's Table 1 beside pktchar's measurement, and how each figure differs from the paper."""
    tables: list[tuple[str, Table]] = []
    if len(reps) > 1 or (reps[0].mode("sequential") and reps[0].mode("parallel")):
        tables.append(("table1", views.upload_table1(reps)))
    figs = []
    for r in reps:
        m = r.plan.model
        tables += [
            (f"{m}-partitions", views.partitions_table(r)),
            (f"{m}-modes", views.upload_modes_table(r)),
        ]
        figs.append((f"{m}-timeline", f"{m}: query start time against query time, upload completion marked.",
                     figures.upload_timeline(r)))  # fmt: skip
    bullets = [f"**{r.plan.model}**: {line}" for r in reps for line in views.upload_lines(r)]
    diffs = [x for r in reps for x in views.upload_differences(r)]
    return write_folder(out, "pktchar upload: incremental model upload with parallel model creation", tables=tables,
                        figs=figs, data=[r.to_dict() for r in reps], command=command, bullets=bullets,
                        sections=[("How this differs from the paper", diffs)] if diffs else [], force=force)  # fmt: skip


def write_fleet(runs: list[Any], out: str | Path, *, budget: float, command: str = "") -> Path:
    """A fleet report folder: the per-device table of each run and, for a sweep, the sweep table and the
    latency-against-fleet-size figure."""
    from ..testbed.fleetrun import summarise_sweep

    first, summary = runs[0], summarise_sweep(runs)
    tables = [("sweep", views.sweep_table(runs))] if len(runs) > 1 else []
    tables += [(f"fleet-{r.devices}", views.fleet_devices_table(r)) for r in runs]
    tables.append(("qos", views.fleet_qos(runs[-1], None, "ul", None)[0]))  # the largest fleet's flows
    figs = []
    if len(runs) > 1:
        figs.append(("latency-vs-devices", "Latency a frame against fleet size, predicted and measured.",
                     figures.fleet_sweep(runs, summary.predicted_saturation, budget)))  # fmt: skip
    bullets = views.sweep_summary_lines(summary) if len(runs) > 1 else views.fleet_lines(first)
    return write_folder(out, "pktchar fleet: many devices to one edge server", tables=tables, figs=figs,
                        data=[r.to_dict() for r in runs], command=command, bullets=bullets)  # fmt: skip


def _train_host(main: Any, model_is_the_papers: bool) -> tuple[list[Any], Any, list[Any]]:
    """The host model's table of ``main`` (if it has one), and for the paper's model the host cost a byte
    the paper's boards needed, as data and as a report section."""
    from ..testbed.trainsync.boards import paper_board

    host = views.train_host_table(main)
    board = paper_board(main) if model_is_the_papers else None
    lines = views.train_board_lines(board) if board else []
    sections = [("The host cost a byte the paper's boards needed", lines)] if lines else []
    return ([("host", host)] if host else []), board, sections


def write_train(reps: list[Any], out: str | Path, *, command: str = "", force: bool = False) -> Path:
    """A train-sync report folder: the plan, per-step and timing tables of the first multi-worker run, the
    workers table, the paper's two-board result explained (md, tex, figures, json)."""
    from ..testbed.trainsync import measured_variants, paper_rows

    main = next((r for r in reps if r.per_worker), reps[0])
    tables = [("plan", views.train_plan_table(main))]
    if main.per_worker:
        tables.append(("steps", views.train_steps_table(main)))
    tables.append(("timing", views.train_timing_table(main)))
    host, board, board_sections = _train_host(main, model_is_the_papers=main.config.model == "seed000")
    tables += host
    if len(reps) > 1:
        tables.append(("workers", views.train_workers_table(reps)))
    prows = paper_rows(main.config.model, measured_variants(reps)) if main.config.model == "seed000" else []
    if prows:
        tables.append(("paper", views.train_paper_table(prows)))
    figs = []
    if main.per_worker:
        figs.append(("steps", "Bytes w0 sent a step, predicted and measured.", figures.train_steps(main)))
    if len([r for r in reps if not r.config.freeze and r.config.hook == "none"]) > 1:
        figs.append(("workers", "Step time against the number of workers.", figures.train_workers(reps)))
    if prows:
        figs.append(
            ("paper", "The paper's two-board time beside pktchar's predictions.", figures.train_paper(prows))
        )
    paper_lines = views.train_paper_lines(prows) if prows else []
    doc = {
        "paper_explained": paper_lines,
        "runs": [r.to_dict() for r in reps],
        "paper": [r.to_dict() for r in prows],
        "board": board,
    }
    return write_folder(
        out,
        "pktchar train-sync: data-parallel training sync (DDP over gloo) on the testbed",
        tables=tables,
        figs=figs,
        data=doc,
        command=command,
        bullets=views.train_lines(main) + views.train_host_lines(main),
        sections=([("The paper's 3x, explained", paper_lines)] if paper_lines else []) + board_sections,
        force=force,
    )
