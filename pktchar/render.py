"""One rendering layer for every command: a table is data, rendered to rich, markdown, CSV, LaTeX.

Human formats (the terminal table) show SI units; machine formats (markdown,
CSV, JSON, LaTeX) keep exact integers so they parse back to the same numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .units import human_bytes, human_count, human_number, human_rate


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = (
        "text"  # text | para (long text, wrapped in LaTeX) | int | bytes | count | shape | float | rate
    )
    unit: str = ""


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]
    caption: str = ""
    notes: Sequence[str] = field(default_factory=tuple)


def _shape(v: Any) -> str:
    if isinstance(v, list | tuple):
        if v and isinstance(v[0], list | tuple):
            return " + ".join(_shape(s) for s in v)
        return "x".join(str(d) for d in v)
    return str(v)


def cell_human(col: Column, v: Any) -> str:
    if v is None:
        return ""
    if col.kind == "bytes":
        return human_bytes(v)
    if col.kind == "count":
        return human_count(v)
    if col.kind == "int":
        return f"{v:,}"
    if col.kind == "float":
        return human_number(v, 4)
    if col.kind == "rate":
        return human_rate(v)
    if col.kind == "shape":
        return _shape(v)
    return str(v)


def plain(v: float) -> str:
    """A number as plain decimals, never an exponent: integers exactly, others to 6 significant digits."""
    f = float(v)
    if f.is_integer():
        return str(int(f))
    text = f"{f:.6g}"
    if "e" not in text:
        return text
    if abs(f) >= 1:
        return f"{f:.0f}"
    return f"{f:.15f}".rstrip("0").rstrip(".")


def cell_exact(col: Column, v: Any, thousands: bool = True) -> str:
    if v is None:
        return ""
    if col.kind in ("bytes", "count", "int"):
        return f"{int(v):,}" if thousands else str(int(v))
    if col.kind == "float":
        return plain(v)
    if col.kind == "rate":
        return f"{round(v):,}" if thousands else str(round(v))
    if col.kind == "shape":
        return _shape(v)
    return str(v)


def _title(col: Column, human: bool) -> str:
    if col.unit:
        return f"{col.title} ({col.unit})"
    if col.kind == "bytes" and not human:
        return f"{col.title} (B)"
    if col.kind == "rate" and not human:
        return f"{col.title} (bit/s)"
    return col.title


def to_rich(table: Table) -> Any:
    from rich.table import Table as RichTable

    t = RichTable(title=table.title, caption=table.caption or None, show_lines=False, header_style="bold")
    for c in table.columns:
        numeric = c.kind in ("bytes", "count", "int", "float", "rate")
        t.add_column(_title(c, True), justify="right" if numeric else "left", overflow="fold")
    for r in table.rows:
        t.add_row(*(cell_human(c, r.get(c.key)) for c in table.columns))
    return t


def to_markdown(table: Table, heading: str = "###") -> str:
    out = []
    if table.title:
        out.append(f"{heading} {table.title}\n")
    cols = table.columns
    out.append("| " + " | ".join(_title(c, False) for c in cols) + " |")
    out.append(
        "|"
        + "|".join("---:" if c.kind in ("bytes", "count", "int", "float", "rate") else "---" for c in cols)
        + "|"
    )
    for r in table.rows:
        out.append("| " + " | ".join(_md_escape(cell_exact(c, r.get(c.key))) for c in cols) + " |")
    if table.caption:
        out.append(f"\n{table.caption}")
    for n in table.notes:
        out.append(f"\n> {n}")
    return "\n".join(out) + "\n"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", "<br>")


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.key for c in table.columns])
    for r in table.rows:
        w.writerow([cell_exact(c, r.get(c.key), thousands=False) for c in table.columns])
    return buf.getvalue()


_TEX_ESCAPE = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"$\sim$",
    "^": r"\textasciicircum{}",
}


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in s)


def _tex_cell(col: Column, v: Any) -> str:
    text = cell_exact(col, v)
    lines = [tex_escape(x) for x in text.split("\n")]
    if col.kind == "shape":
        lines = [x.replace("x", r"$\times$") for x in lines]
    if len(lines) > 1:  # a cell of several lines, top-aligned with its row
        return r"\begin{tabular}[t]{@{}l@{}}" + r"\\".join(lines) + r"\end{tabular}"
    return lines[0]


def to_latex(table: Table, label: str = "", longtable: bool | None = None, fit_width: bool = True) -> str:
    """A booktabs table (a longtable when it has many rows); a wide one shrinks to the line width."""
    cols = table.columns
    paras = sum(c.kind == "para" for c in cols)
    spec = "".join(
        "r"
        if c.kind in ("bytes", "count", "int", "float", "rate")
        else f"p{{{0.55 / paras:.2f}\\linewidth}}"
        if c.kind == "para"
        else "l"
        for c in cols
    )
    fit_width = fit_width and not paras  # wrapped columns already fit
    head = " & ".join(tex_escape(_title(c, False)) for c in cols) + r" \\"
    body = [" & ".join(_tex_cell(c, r.get(c.key)) for c in cols) + r" \\" for r in table.rows]
    long = len(table.rows) > 40 if longtable is None else longtable
    cap = tex_escape(table.title)
    lab = f"\\label{{{label}}}" if label else ""
    if long:
        lines = [
            "{\\footnotesize\\setlength{\\tabcolsep}{3pt}",
            f"\\begin{{longtable}}{{{spec}}}",
            f"\\caption{{{cap}}}{lab}\\\\",
            "\\toprule",
            head,
            "\\midrule",
            "\\endfirsthead",
            "\\toprule",
            head,
            "\\midrule",
            "\\endhead",
            *body,
            "\\bottomrule",
            "\\end{longtable}",
            "}",
        ]
    else:
        lines = [
            "\\begin{table}[htbp]",
            "\\centering",
            "\\small",
            f"\\caption{{{cap}}}{lab}",
            *([r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"] if fit_width else []),
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            head,
            "\\midrule",
            *body,
            "\\bottomrule",
            "\\end{tabular}" + ("}" if fit_width else ""),
            "\\end{table}",
        ]
    return "\n".join(lines) + "\n"


def render(table: Table, fmt: str) -> str:
    """Render ``table`` as ``md``, ``csv`` or ``tex`` text (``table`` -> plain text via rich)."""
    if fmt == "md":
        return to_markdown(table)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "tex":
        return to_latex(table)
    if fmt == "table":
        from rich.console import Console

        console = Console(record=True, width=200, file=io.StringIO())
        console.print(to_rich(table))
        return console.export_text()
    raise ValueError(f"unknown table format {fmt!r}")


Renderer = Callable[[Table], str]
