"""A report folder for a testbed run or a capture: measured against predicted as md, standalone tex
with table fragments, figures (PNG, PDF) and json. Light: no torch (``pktchar compare`` uses it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import figures, views
from .errors import PktcharError
from .render import tex_escape, to_latex, to_markdown


def write_comparison(
    c: Any, out: str | Path, *, force: bool = False, extra: dict[str, Any] | None = None
) -> Path:
    """A compare report folder: report.md, report.tex, report.json, figures (the same renderers)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise PktcharError(f"{out} exists and is not empty: choose another --out or pass --force")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    figs = [("histogram", "Packet lengths, predicted and measured.", figures.comparison_histogram(c))]
    if any(f.transfer_s is not None for f in c.frames):
        figs.append(
            ("frames", "Per-frame transfer time, measured and predicted.", figures.comparison_frames(c))
        )
    for stem, _, fig in figs:
        fig.savefig(out / "figures" / f"{stem}.png", dpi=130)
        fig.savefig(out / "figures" / f"{stem}.pdf")
    tables = [
        ("comparison", views.comparison_table(c)),
        ("histogram", views.histogram_table(c)),
        ("frames", views.frames_table(c)),
    ]
    for stem, t in tables:
        (out / "tables" / f"{stem}.tex").write_text(
            to_latex(t, label=f"tab:{stem}", fit_width=len(t.rows) <= 40)
        )
    md = [f"# pktchar compare: {c.flow}", "", f"- **capture**: {c.pcap}"]
    md += [f"- **{k}**: {v}" for k, v in (extra or {}).items()]
    md.append("")
    for _, t in tables:
        md.append(to_markdown(t))
    for stem, caption, _ in figs:
        md += [f"![{caption}](figures/{stem}.png)", ""]
    (out / "report.md").write_text("\n".join(md) + "\n")
    tex = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{lmodern}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{booktabs,longtable,graphicx,float}",
        rf"\title{{{tex_escape('pktchar compare: ' + c.flow)}}}",
        r"\begin{document}",
        r"\maketitle",
    ]
    tex += [rf"\input{{tables/{stem}.tex}}" for stem, _ in tables]
    for stem, caption, _ in figs:
        tex += [
            r"\begin{figure}[H]",
            r"\centering",
            rf"\includegraphics[width=0.8\linewidth]{{figures/{stem}.pdf}}",
            rf"\caption{{{tex_escape(caption)}}}",
            r"\end{figure}",
        ]
    tex.append(r"\end{document}")
    (out / "report.tex").write_text("\n".join(tex) + "\n")
    (out / "report.json").write_text(json.dumps({**c.to_dict(), **(extra or {})}, indent=2, default=str))
    return out


def write_upload(reps: list[Any], out: str | Path, *, command: str = "", force: bool = False) -> Path:
    """An upload report folder: per model its partitions and modes, the query timeline figure, and with
    several models the paper's Table 1 beside pktchar's measurement (md, tex, figures, json)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise PktcharError(f"{out} exists and is not empty: choose another --report or pass --force")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    tables = []
    if len(reps) > 1 or reps[0].mode("sequential") and reps[0].mode("parallel"):
        tables.append(("table1", views.upload_table1(reps)))
    figs = []
    for r in reps:
        m = r.plan.model
        tables += [
            (f"{m}-partitions", views.partitions_table(r)),
            (f"{m}-modes", views.upload_modes_table(r)),
        ]
        fig = figures.upload_timeline(r)
        fig.savefig(out / "figures" / f"{m}-timeline.png", dpi=130)
        fig.savefig(out / "figures" / f"{m}-timeline.pdf")
        figs.append((f"{m}-timeline", f"{m}: query start time against query time, upload completion marked."))
    for stem, t in tables:
        (out / "tables" / f"{stem}.tex").write_text(to_latex(t, label=f"tab:{stem}", fit_width=True))
    md = ["# pktchar upload: incremental model upload with parallel model creation", ""]
    if command:
        md += ["Made with:", "", "```", command, "```", ""]
    for r in reps:
        md += [f"- **{r.plan.model}**: {line}" for line in views.upload_lines(r)]
    md.append("")
    diffs = [x for r in reps for x in views.upload_differences(r)]
    if diffs:
        md += ["## How this differs from the paper", ""] + [f"- {x}" for x in diffs] + [""]
    for _, t in tables:
        md.append(to_markdown(t))
    for stem, caption in figs:
        md += [f"![{caption}](figures/{stem}.png)", ""]
    (out / "report.md").write_text("\n".join(md) + "\n")
    tex = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{lmodern}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{booktabs,longtable,graphicx,float}",
        r"\title{pktchar upload: incremental model upload with parallel model creation}",
        r"\begin{document}",
        r"\maketitle",
    ]
    if command:
        tex.append(r"\noindent Made with: \texttt{" + tex_escape(command) + "}\n")
    tex += [rf"\input{{tables/{stem}.tex}}" for stem, _ in tables]
    if diffs:
        tex += [r"\section*{How this differs from the paper}", r"\begin{itemize}"]
        tex += [rf"\item {tex_escape(x)}" for x in diffs] + [r"\end{itemize}"]
    for stem, caption in figs:
        tex += [r"\begin{figure}[H]", r"\centering", rf"\includegraphics[width=0.85\linewidth]{{figures/{stem}.pdf}}",
                rf"\caption{{{tex_escape(caption)}}}", r"\end{figure}"]  # fmt: skip
    tex.append(r"\end{document}")
    (out / "report.tex").write_text("\n".join(tex) + "\n")
    (out / "report.json").write_text(json.dumps([r.to_dict() for r in reps], indent=2, default=str))
    return out


def write_fleet(runs: list[Any], out: str | Path, *, budget: float, command: str = "") -> Path:
    """A fleet report folder: the per-device table of each run, the sweep table and figure (md, tex, json)."""
    from .fleet import saturation_n

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    first = runs[0]
    g = first.result.config["groups"][0]
    sat = saturation_n(
        first.result.prediction.flows[0].frames[0].payload, g["fps"], first.predicted.edge_rate
    )
    miss = next((r.devices for r in runs if max(d.late_fraction for d in r.predicted.devices) > 0), None)
    tables = [("sweep", views.sweep_table(runs))] if len(runs) > 1 else []
    tables += [(f"fleet-{r.devices}", views.fleet_devices_table(r)) for r in runs]
    lines = views.sweep_lines(runs, sat, miss) if len(runs) > 1 else views.fleet_lines(first)
    figs = []
    if len(runs) > 1:
        fig = figures.fleet_sweep(runs, sat, budget)
        fig.savefig(out / "figures" / "latency-vs-devices.png", dpi=130)
        fig.savefig(out / "figures" / "latency-vs-devices.pdf")
        figs.append(("latency-vs-devices", "Latency a frame against fleet size, predicted and measured."))
    for stem, t in tables:
        (out / "tables" / f"{stem}.tex").write_text(to_latex(t, label=f"tab:{stem}", fit_width=True))
    md = ["# pktchar fleet: many devices to one edge server", ""]
    if command:
        md += ["Made with:", "", "```", command, "```", ""]
    md += [f"- {x}" for x in lines] + [""]
    md += [to_markdown(t) for _, t in tables]
    md += [f"![{c}](figures/{s}.png)\n" for s, c in figs]
    (out / "report.md").write_text("\n".join(md) + "\n")
    tex = [r"\documentclass[10pt]{article}", r"\usepackage[T1]{fontenc}", r"\usepackage{lmodern}",
           r"\usepackage[margin=2cm]{geometry}", r"\usepackage{booktabs,longtable,graphicx,float}",
           r"\title{pktchar fleet: many devices to one edge server}", r"\begin{document}", r"\maketitle"]  # fmt: skip
    if command:
        tex.append(r"\noindent Made with: \texttt{" + tex_escape(command) + "}\n")
    tex += [r"\begin{itemize}"] + [rf"\item {tex_escape(x)}" for x in lines] + [r"\end{itemize}"]
    tex += [rf"\input{{tables/{stem}.tex}}" for stem, _ in tables]
    for stem, caption in figs:
        tex += [r"\begin{figure}[H]", r"\centering", rf"\includegraphics[width=0.8\linewidth]{{figures/{stem}.pdf}}",
                rf"\caption{{{tex_escape(caption)}}}", r"\end{figure}"]  # fmt: skip
    tex.append(r"\end{document}")
    (out / "report.tex").write_text("\n".join(tex) + "\n")
    (out / "report.json").write_text(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
    return out
