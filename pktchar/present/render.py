"""One rendering layer for every command: a table is data, rendered to rich, markdown, CSV, LaTeX.

Rows hold numbers; every column declares its kind, and the renderer formats it for its target. Human
formats (the terminal table, LaTeX) show SI units and rounded figures; machine formats (markdown, CSV,
JSON) keep exact values so they parse back to the same numbers: integers exactly (markdown with thousands
separators), floats in full (never an exponent). Relative errors (``ratio``) and shares
(``percent``) read as percentages everywhere but CSV, which keeps the fraction itself.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..core.units import human_bytes, human_count, human_number, human_per, human_rate

# The kinds a column declares, and what its cells hold:
#   text, para  text (para: long text, wrapped in LaTeX)   shape  a tensor shape (list of ints, or lists)
#   int         an integer                                 count  an integer shown in SI (1.2 G)
#   bytes       bytes (SI in human formats; B exact)       rate   bit/s (SI in human formats; exact)
#   float       a number (``digits`` decimals, or 4 significant digits, in human formats)
#   seconds     seconds (``digits`` decimals, 3 unless given)
#   ms          milliseconds (``digits`` decimals, 1 unless given)
#   ratio       a relative error, measured / predicted - 1 (signed percent, ``digits`` decimals, 1 unless given)
#   percent     a share, 0..1 (percent, ``digits`` decimals, 0 unless given)
#   per         a packet error rate, 0..1 (as 3GPP writes it, 10^-6, in human formats and markdown; exact in CSV)
NUMERIC = frozenset({"int", "count", "bytes", "rate", "float", "seconds", "ms", "ratio", "percent", "per"})
KINDS = NUMERIC | {"text", "para", "shape"}
_DIGITS = {"seconds": 3, "ms": 1, "ratio": 1, "percent": 0}


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"  # one of KINDS
    unit: str = ""
    digits: int | None = None  # decimals in human formats (float, seconds, ms, ratio, percent)
    missing: str = ""  # what a cell without a value (None) shows, but in CSV (always empty)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.key!r}: unknown kind {self.kind!r}")

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC


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


def _decimals(col: Column) -> int:
    return col.digits if col.digits is not None else _DIGITS.get(col.kind, 3)


def _human_number(col: Column, v: Any) -> str:
    """A number in the units people read: SI prefixes, rounded figures, percentages."""
    if col.kind == "bytes":
        return human_bytes(v)
    if col.kind == "count":
        return human_count(v)
    if col.kind == "int":
        return f"{int(v):,}"
    if col.kind == "rate":
        return human_rate(v)
    if col.kind == "per":
        return human_per(v)
    if isinstance(v, int) and col.kind not in ("ratio", "percent"):  # a count among figures: exactly
        return f"{v:,}"
    if col.kind == "float" and col.digits is None:
        return human_number(v, 4)
    if col.kind == "ratio":
        return f"{v:+.{_decimals(col)}%}"
    if col.kind == "percent":
        return f"{v:.{_decimals(col)}%}"
    return f"{v:,.{_decimals(col)}f}"


def cell_human(col: Column, v: Any) -> str:
    """A cell for people (the terminal, LaTeX): SI units, rounded."""
    if v is None:
        return col.missing
    if isinstance(v, str):  # a figure its source gave as text, shown as it is
        return v
    if col.kind in NUMERIC:
        return _human_number(col, v)
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


def exact(v: float) -> str:
    """A number in full, as plain decimals: integers exactly, floats as the shortest text that reads back
    to the same float (``repr``), never an exponent."""
    f = float(v)
    if f.is_integer():
        return str(int(f))
    return format(Decimal(repr(f)), "f")


def cell_exact(col: Column, v: Any, thousands: bool = True) -> str:
    """A cell for markdown (``thousands``) and CSV: integers exactly (markdown with thousands separators),
    floats in full; relative errors and shares as percentages in markdown, fractions in CSV."""
    if v is None:
        return col.missing if thousands else ""
    if isinstance(v, str):
        return v
    if col.kind in ("bytes", "count", "int"):
        return f"{int(v):,}" if thousands else str(int(v))
    if col.kind == "rate":
        return f"{round(v):,}" if thousands else str(round(v))
    if col.kind in ("ratio", "percent", "per"):
        return _human_number(col, v) if thousands else exact(v)
    if col.kind in NUMERIC:
        return exact(v)
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
    for i, c in enumerate(table.columns):
        # the first column names the row (a model, a split, a fleet size): never broken across lines, the
        # other columns give way on a narrow terminal
        t.add_column(
            _title(c, True), justify="right" if c.numeric else "left", overflow="fold", no_wrap=i == 0
        )
    for r in table.rows:
        t.add_row(*(cell_human(c, r.get(c.key)) for c in table.columns))
    return t


def to_markdown(table: Table, heading: str = "###") -> str:
    out = []
    if table.title:
        out.append(f"{heading} {table.title}\n")
    cols = table.columns
    out.append("| " + " | ".join(_title(c, False) for c in cols) + " |")
    out.append("|" + "|".join("---:" if c.numeric else "---" for c in cols) + "|")
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

# A power of ten as :func:`pktchar.core.units.human_per` writes it for people: ``10^-3``, ``2.5 x 10^-4``.
_POWER = re.compile(r"(?<![\d.])(?:(\d+(?:\.\d+)?) x )?10\^(-?\d+)")


def tex_escape(s: str, powers: bool = True) -> str:
    """``s`` as LaTeX text: special characters escaped; with ``powers``, ``10^-3`` (and ``2.5 x 10^-4``)
    typeset as a power of ten, ``$10^{-3}$``, instead of a literal caret."""
    if not powers:
        return "".join(_TEX_ESCAPE.get(ch, ch) for ch in s)
    out, pos = [], 0
    for m in _POWER.finditer(s):
        out.append(tex_escape(s[pos : m.start()], powers=False))
        head = rf"{m[1]}\times " if m[1] else ""
        out.append(f"${head}10^{{{m[2]}}}$")
        pos = m.end()
    out.append(tex_escape(s[pos:], powers=False))
    return "".join(out)


def tex_command(s: str) -> str:
    """A command line in typewriter type, as typed: every ``-`` kept apart (``-{}``), so an option's double
    hyphen never becomes an en dash and survives a copy from the PDF."""
    return r"\texttt{" + tex_escape(s, powers=False).replace("-", "-{}") + "}"


# The page every report.tex typesets on (TEX_PREAMBLE): US letter, 8.5 in, less two 2 cm margins, in TeX
# points (72.27 an inch). Tables are split into column groups that fit it.
LINE_WIDTH_PT = 8.5 * 72.27 - 2 * 2 / 2.54 * 72.27
TABLE_PT = 8.0  # tables are set in \footnotesize: 8 pt in a 10 pt document
_TABLE_FONT = r"\footnotesize"
_COLSEP_PT = 4.0  # \tabcolsep in tables, either side of every column
_HEAD_LINES = 3  # a column title wraps onto at most this many lines
_WRAP = 0.4  # in a table wider than the line, a text column wider than this share of it wraps at that width

TEX_PREAMBLE = (
    r"\documentclass[10pt]{article}",
    r"\usepackage[T1]{fontenc}",
    r"\usepackage{lmodern}",
    r"\usepackage[utf8]{inputenc}",
    r"\usepackage[letterpaper,margin=2cm]{geometry}",  # the page LINE_WIDTH_PT describes
    r"\usepackage{booktabs,longtable,graphicx,float}",
    # exponents (PER 10^-3) in 8 pt tables at 7 pt, where LaTeX's default script size would be 6 pt
    r"\DeclareMathSizes{8}{8}{7}{5}",
)

# Advance widths of Computer Modern / Latin Modern roman at 10 pt, in em (cmr10.tfm; the space, | < > and _
# as the T1 fonts set them); the 8 pt design is 6.3% wider throughout (cmr8.tfm: a 0.531 em against
# 0.500), which _TEX_WIDE covers with 3.5% to spare.
_EM = {
    **dict.fromkeys("'`,.:;[]|!il", 0.278),
    **dict.fromkeys("fj", 0.306),
    **dict.fromkeys(" -", 0.333),
    "I": 0.361,
    **dict.fromkeys("()t", 0.389),
    "r": 0.392,
    "s": 0.394,
    **dict.fromkeys("cez", 0.444),
    "?": 0.472,
    **dict.fromkeys('0123456789ago/*"_{}~$^', 0.5),
    "J": 0.514,
    **dict.fromkeys("kqvxy", 0.528),
    **dict.fromkeys("bdhnpuS", 0.556),
    "Z": 0.611,
    "L": 0.625,
    "F": 0.653,
    **dict.fromkeys("EP", 0.681),
    "B": 0.708,
    **dict.fromkeys("wCT", 0.722),
    "R": 0.736,
    **dict.fromkeys("AHNUVXY", 0.75),
    "D": 0.764,
    **dict.fromkeys("KOQG+=<>&@\u00d7\u2212", 0.778),
    **dict.fromkeys("m#%", 0.833),
    "M": 0.917,
    "W": 1.028,
}
_TEX_WIDE = 1.1


def tex_width(text: str, pt: float = TABLE_PT) -> float:
    """About how wide ``text`` sets in Latin Modern roman at ``pt`` points (a little over, never under)."""
    return sum(_EM.get(ch, 0.6) for ch in text) * pt * _TEX_WIDE


def _shape_tex(text: str) -> str:
    return r"$\times$".join(tex_escape(x) for x in text.split("x"))


@dataclass(frozen=True)
class _Layout:
    """How one column sets: its alignment, its title's lines, the width its cells wrap at (0: never)."""

    align: str  # l | r
    head: list[str]
    wrap: float  # pt
    width: float  # pt, the column's width without its \tabcolsep


def _lines(words: list[str], width: float) -> list[str]:
    out: list[str] = []
    for w in words:
        if out and tex_width(f"{out[-1]} {w}") <= width:
            out[-1] = f"{out[-1]} {w}"
        else:
            out.append(w)
    return out


def _layout(col: Column, texts: list[str], line: float, paras: int, squeeze: int) -> _Layout:
    """The column's layout: ``para`` columns wrap at their share of 55% of the line; with ``squeeze`` 1 its
    title wraps to the width of its cells (at most _HEAD_LINES lines), with 2 a text column wider than
    _WRAP of the line also wraps at that width."""
    numeric = col.numeric
    data = max((tex_width(x) for t in texts for x in t.split("\n")), default=0.0)
    wrap = 0.0
    if col.kind == "para":
        wrap = data = min(data, 0.55 * line / paras)
    elif squeeze >= 2 and not numeric and data > _WRAP * line:
        wrap = data = _WRAP * line
    title = _title(col, True)
    if not squeeze:
        return _Layout("r" if numeric else "l", [title], wrap, max(data, tex_width(title)))
    words = title.split()
    width = max([data, *(tex_width(w) for w in words)])
    head = _lines(words, width)
    while len(head) > _HEAD_LINES:
        width += 2
        head = _lines(words, width)
    width = max([width, *(tex_width(x) for x in head)])
    return _Layout("r" if numeric else "l", head, wrap, width)


def _groups(cols: Sequence[Column], widths: list[float], line: float) -> list[list[int]]:
    """The columns of each table a wide table is split into: the key columns (the first, and the text
    columns right after it) in every one, the others in as few contiguous runs as fit the line beside
    them, as evenly wide as can be."""
    widths = [w + 2 * _COLSEP_PT for w in widths]
    if sum(widths) <= line:
        return [list(range(len(cols)))]
    keys = 1
    while (
        keys < min(3, len(cols) - 1)
        and cols[keys].kind in ("text", "shape")
        and sum(widths[: keys + 1]) <= 0.4 * line
    ):
        keys += 1
    room = line - sum(widths[:keys])
    rest = list(range(keys, len(cols)))
    if not rest:  # one column, wider than the line on its own
        return [list(range(len(cols)))]
    runs = 1
    used = 0.0
    for i in rest:  # fewest runs, filled greedily
        if used and used + widths[i] > room:
            runs, used = runs + 1, 0.0
        used += widths[i]
    # the most even split into that many runs: the least widest run, by dynamic programming over cuts
    n = len(rest)
    pre = [0.0]
    for i in rest:
        pre.append(pre[-1] + widths[i])
    best: dict[tuple[int, int], tuple[float, list[int]]] = {}

    def split(start: int, k: int) -> tuple[float, list[int]]:
        if k == 1:
            return pre[n] - pre[start], [n]
        if (start, k) not in best:
            best[(start, k)] = min(
                (max(pre[end] - pre[start], split(end, k - 1)[0]), [end, *split(end, k - 1)[1]])
                for end in range(start + 1, n - k + 2)
            )
        return best[(start, k)]

    cuts = [0, *split(0, min(runs, n))[1]]
    return [list(range(keys)) + rest[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def _tex_cell(col: Column, v: Any, wrap: float = 0.0, line: float = LINE_WIDTH_PT) -> str:
    text = cell_human(col, v)
    lines = [(_shape_tex if col.kind == "shape" else tex_escape)(x) for x in text.split("\n")]
    if wrap:  # a paragraph as wide as the column, ragged right, top-aligned with its row
        return rf"\parbox[t]{{{wrap / line:.3f}\linewidth}}{{\raggedright " + r"\\".join(lines) + "}"
    if len(lines) > 1:  # a cell of several lines, top-aligned with its row
        return r"\begin{tabular}[t]{@{}l@{}}" + r"\\".join(lines) + r"\end{tabular}"
    return lines[0]


def _tex_head(lay: _Layout) -> str:
    lines = [tex_escape(x) for x in lay.head]
    if len(lines) == 1:
        return lines[0]
    return rf"\begin{{tabular}}[b]{{@{{}}{lay.align}@{{}}}}" + r"\\".join(lines) + r"\end{tabular}"


def to_latex(
    table: Table, label: str = "", longtable: bool | None = None, line: float = LINE_WIDTH_PT
) -> str:
    """A booktabs table in 8 pt type (a longtable when it has many rows) that fits a line ``line`` points
    wide: column titles wrap, long text wraps, and a table still too wide is split into several, each
    repeating the key columns, numbered as one ("part 1 of 2"). Never shrunk: every character stays 8 pt.
    Floats are placed here ([H], the float package), so table numbers follow the document. Needs
    booktabs, longtable and float."""
    cols = list(table.columns)
    texts = [[cell_human(c, r.get(c.key)) for r in table.rows] for c in cols]
    paras = sum(c.kind == "para" for c in cols)
    for squeeze in range(3):  # too wide: wrap the titles, then long text, then split
        lays = [_layout(c, t, line, paras, squeeze) for c, t in zip(cols, texts, strict=True)]
        if sum(x.width + 2 * _COLSEP_PT for x in lays) <= line:
            break
    groups = _groups(cols, [x.width for x in lays], line)
    long = len(table.rows) > 40 if longtable is None else longtable
    out = []
    for k, idx in enumerate(groups):
        part = f" (part {k + 1} of {len(groups)})" if len(groups) > 1 else ""
        cap = tex_escape(table.title + part)
        lab = f"\\label{{{label}}}" if label and k == 0 else ""
        again = [r"\addtocounter{table}{-1}"] if k else []  # one number for all the parts
        spec = "".join(lays[i].align for i in idx)
        head = " & ".join(_tex_head(lays[i]) for i in idx) + r" \\"
        body = [
            " & ".join(_tex_cell(cols[i], r.get(cols[i].key), lays[i].wrap, line) for i in idx) + r" \\"
            for r in table.rows
        ]
        if long:
            lines = [
                f"{{{_TABLE_FONT}\\setlength{{\\tabcolsep}}{{{_COLSEP_PT:g}pt}}",
                *again,
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
                "\\begin{table}[H]",
                "\\centering",
                *again,
                f"\\caption{{{cap}}}{lab}",
                _TABLE_FONT,
                f"\\setlength{{\\tabcolsep}}{{{_COLSEP_PT:g}pt}}",
                f"\\begin{{tabular}}{{{spec}}}",
                "\\toprule",
                head,
                "\\midrule",
                *body,
                "\\bottomrule",
                "\\end{tabular}",
                "\\end{table}",
            ]
        out.append("\n".join(lines) + "\n")
    return "".join(out)


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
