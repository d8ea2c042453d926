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
    for stem, caption in figs:
        tex += [r"\begin{figure}[H]", r"\centering", rf"\includegraphics[width=0.85\linewidth]{{figures/{stem}.pdf}}",
                rf"\caption{{{tex_escape(caption)}}}", r"\end{figure}"]  # fmt: skip
    tex.append(r"\end{document}")
    (out / "report.tex").write_text("\n".join(tex) + "\n")
    (out / "report.json").write_text(json.dumps([r.to_dict() for r in reps], indent=2, default=str))
    return out


def write_train(reps: list[Any], out: str | Path, *, command: str = "", force: bool = False) -> Path:
    """A train-sync report folder: the plan, per-step and timing tables of the first multi-worker run, the
    workers table, the paper's two-board result explained (md, tex, figures, json)."""
    from .testbed.trainsync import measured_variants, paper_rows

    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise PktcharError(f"{out} exists and is not empty: choose another --report or pass --force")
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    main = next((r for r in reps if r.per_worker), reps[0])
    tables = [("plan", views.train_plan_table(main))]
    if main.per_worker:
        tables.append(("steps", views.train_steps_table(main)))
    tables.append(("timing", views.train_timing_table(main)))
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
    for stem, _, fig in figs:
        fig.savefig(out / "figures" / f"{stem}.png", dpi=130)
        fig.savefig(out / "figures" / f"{stem}.pdf")
    for stem, t in tables:
        (out / "tables" / f"{stem}.tex").write_text(to_latex(t, label=f"tab:{stem}", fit_width=True))
    title = "pktchar train-sync: data-parallel training sync (DDP over gloo) on the testbed"
    md = [f"# {title}", ""]
    if command:
        md += ["Made with:", "", "```", command, "```", ""]
    md += [f"- {line}" for line in views.train_lines(main)]
    md.append("")
    for _, t in tables:
        md.append(to_markdown(t))
    paper_lines = views.train_paper_lines(prows) if prows else []
    if paper_lines:
        md += ["## The paper's 3x, explained", ""] + [f"- {x}" for x in paper_lines] + [""]
    for stem, caption, _ in figs:
        md += [f"![{caption}](figures/{stem}.png)", ""]
    (out / "report.md").write_text("\n".join(md) + "\n")
    tex = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{lmodern}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage{booktabs,longtable,graphicx,float}",
        rf"\title{{{tex_escape(title)}}}",
        r"\begin{document}",
        r"\maketitle",
    ]
    if command:
        tex.append(r"\noindent Made with: \texttt{" + tex_escape(command) + "}\n")
    tex += [rf"\input{{tables/{stem}.tex}}" for stem, _ in tables]
    if paper_lines:
        tex += [r"\section*{The paper's 3x, explained}", r"\begin{itemize}"]
        tex += [r"\item " + tex_escape(x) for x in paper_lines] + [r"\end{itemize}"]
    for stem, caption, _ in figs:
        tex += [r"\begin{figure}[H]", r"\centering", rf"\includegraphics[width=0.85\linewidth]{{figures/{stem}.pdf}}",
                rf"\caption{{{tex_escape(caption)}}}", r"\end{figure}"]  # fmt: skip
    tex.append(r"\end{document}")
    (out / "report.tex").write_text("\n".join(tex) + "\n")
    doc = {"paper_explained": paper_lines, "runs": [r.to_dict() for r in reps], "paper": prows}
    (out / "report.json").write_text(json.dumps(doc, indent=2, default=str))
    return out
