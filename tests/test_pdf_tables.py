"""The report PDFs, read back with poppler: every table legible at full size (no text under 7 pt),
exponents typeset as superscripts, table numbers in document order, a table page rendered to PNG.

Three report folders are compiled: ``pktchar report`` on vgg16 at four resolutions with a link (its
packet table has 14 columns, its flows table 17), a compare report from a crafted capture, and a run
report through the skeleton every testbed report uses (:func:`pktchar.present.run_report.write_folder`) with a
table as wide as the fleet's per-device table, once short (a float) and once too long for one page (a
longtable), and bullets that carry packet error rates.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from craft import DEV, EDGE, PORT, prediction, tcp_flow, write_pcap

from pktchar.core.radio import carrier
from pktchar.present.render import Column, Table, tex_escape, to_csv, to_latex, to_markdown
from pktchar.present.report import collect, write
from pktchar.present.run_report import write_comparison, write_folder
from pktchar.testbed.compare import compare

from conftest import IN_CI

_TOOLS = ("pdflatex", "pdftotext", "pdftoppm")
needs_tex = pytest.mark.skipif(
    any(shutil.which(t) is None for t in _TOOLS) and not IN_CI,
    reason="needs pdflatex (texlive) and poppler-utils (scripts/setup.sh --test installs both)",
)

# pdftotext's word box spans the font's ascender to its descender, as the font file declares them: 0.880
# of the font size for Latin Modern roman (10 pt text measures 8.80 pt, \footnotesize 8 pt 7.04 pt, 7 pt
# 6.16 pt) and 0.94 for an exponent (digits and the math minus at 7 pt: 6.58 pt). 7 pt roman text is thus
# 6.16 pt tall; 6.1 leaves room for rounding only (6.5 pt roman text would measure 5.72).
SMALLEST_WORD = 6.1

# The reports' pages: article's default US letter, 8.5 x 11 in; pdftoppm -r 100 makes 100 pixels an inch.
PAGE_PX = (850, 1100)


def _compile(folder: Path) -> Path:
    for _ in range(2):  # a longtable aligns its page-long chunks on the widths the first run leaves
        r = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout[-3000:]
    return folder / "report.pdf"


def _tables_log(folder: Path) -> str:
    """pdflatex's log from the first table on (the setup lines above may hold a long unbreakable path)."""
    log = (folder / "report.log").read_text(errors="replace")
    return log[log.find("tables/") :] if "tables/" in log else log


def _fleet(n: int) -> Table:
    """As wide as the fleet report's per-device table (13 columns); 45 rows make it a longtable."""
    return Table(
        f"Fleet of {n} into one edge link of 100 Mbit/s",
        [Column("device", "device"), Column("frames", "frames", "int")]
        + [Column(f"c{k}", f"latency ms pred./meas. {k}") for k in range(11)],
        [
            {
                "device": f"d{i}",
                "frames": 30,
                **{f"c{k}": f"{110.1 + k:.1f} / {109.8 + i:.1f}" for k in range(11)},
            }
            for i in range(n)
        ],
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pdf")
    # pktchar report vgg16 --res 224,1080p,4k,8k --compression 0.1 --fps 30 --link 1gbit --split features.30
    d = collect(
        ["vgg16"],
        ["224", "1080p", "4k", "8k"],
        compression=0.1,
        fps=30,
        link=1e9,
        split="features.30",
        carrier=carrier(None, 1e9),
        command="pktchar report vgg16 --res 224,1080p,4k,8k --compression 0.1 --fps 30 --link 1gbit "
        "--split features.30",
    )
    write(d, base / "report")
    pcap = base / "flow.pcap"
    payloads = [100_000, 5_000, 2_100_000]
    write_pcap(pcap, tcp_flow(payloads))
    write_comparison(compare(pcap, prediction(payloads, DEV, EDGE, PORT)), base / "compare")
    per = Table(
        "5QIs of the flow",
        [Column("qi", "5QI", "int"), Column("per", "PER"), Column("pdb", "PDB")],
        [{"qi": 80, "per": "10^-6", "pdb": "10 ms"}, {"qi": 82, "per": "10^-4", "pdb": "10 ms"}],
    )
    write_folder(
        base / "run",
        "pktchar fleet: many devices to one edge server",
        tables=[("fleet-8", _fleet(8)), ("fleet-45", _fleet(45)), ("qos", per)],
        command="pktchar fleet vgg16 --split classifier.0 --devices 8,45",
        bullets=[
            "d: PER 10^-3 (reliability 0.999; 3GPP TS 22.261)",
            "the radio drops 2.5 x 10^-4 of packets",
        ],
    )
    return {k: _compile(base / k) for k in ("report", "compare", "run")}


_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')


def _pages(pdf: Path) -> list[list[tuple[float, float, float, float, str]]]:
    """Every page's words with their boxes (points, origin top left), in reading order."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True)
    return [
        [(float(a), float(b), float(c), float(d), html.unescape(w)) for a, b, c, d, w in _WORD.findall(page)]
        for page in out.stdout.split("<page ")[1:]
    ]


def _captions(words: list[tuple[float, float, float, float, str]]) -> list[int]:
    """The numbers of the table captions ("Table 4:") on a page, in reading order."""
    text = [w for *_, w in words]
    return [
        int(b[:-1]) for a, b in zip(text, text[1:], strict=False) if a == "Table" and re.fullmatch(r"\d+:", b)
    ]


@needs_tex
@pytest.mark.parametrize("kind", ["report", "compare", "run"])
def test_table_text_is_at_least_7pt(reports: dict[str, Path], kind: str) -> None:
    pages = _pages(reports[kind])
    table_pages = [p for p in pages if _captions(p)]  # figures start on a page of their own
    assert table_pages and not any("Figure" in (w for *_, w in p) for p in table_pages)
    for n, page in enumerate(table_pages):
        height, word = min((y1 - y0, w) for _, y0, _, y1, w in page)
        assert height >= SMALLEST_WORD, f"{kind}: table page {n + 1}: {word!r} is {height:.2f} pt tall"


@needs_tex
@pytest.mark.parametrize("kind", ["report", "compare", "run"])
def test_no_literal_carets_and_exponents_raised(reports: dict[str, Path], kind: str) -> None:
    pages = _pages(reports[kind])
    text = " ".join(w for p in pages for *_, w in p)
    assert "^" not in text and "\u02c6" not in text  # ASCII caret, modifier circumflex (\textasciicircum)
    if kind == "compare":
        return
    raised = []
    for p in pages:
        for (_, _, x1, y1, a), (x0, _, _, b1, b) in zip(p, p[1:], strict=False):
            # the exponent follows "10" straight on (no space), its bottom well above the 10's bottom
            if a.endswith("10") and re.fullmatch("\u2212\\d", b) and abs(x0 - x1) < 0.5 and y1 - b1 > 1:
                raised.append(b)
    # the flows table's PER, one row a resolution; the run report's two bullets, then its two 5QIs
    assert raised == (["\u22123"] * 4 if kind == "report" else ["\u22123", "\u22124", "\u22126", "\u22124"])


@needs_tex
@pytest.mark.parametrize("kind", ["report", "compare", "run"])
def test_table_numbers_follow_the_document(reports: dict[str, Path], kind: str) -> None:
    numbers = [n for p in _pages(reports[kind]) for n in _captions(p)]
    tables = len(list((reports[kind].parent / "tables").glob("*.tex")))
    # a table split into column groups repeats its number, each group captioned "(part k of n)"
    assert numbers == sorted(numbers) and sorted(set(numbers)) == list(range(1, tables + 1)), numbers


@needs_tex
@pytest.mark.parametrize("kind", ["report", "compare", "run"])
def test_tables_stay_inside_the_text_block(reports: dict[str, Path], kind: str) -> None:
    """Split rather than shrunk, yet nothing runs into the margin: every word of a table page (the setup
    lines above the first table too) lies within the text block, 2 cm (56.9 pt) in from either edge of
    the 612 pt wide page."""
    margin, page_width = 2 / 2.54 * 72, 8.5 * 72  # PDF points, 72 an inch
    for page in (p for p in _pages(reports[kind]) if _captions(p)):
        x0, x1 = min(w[0] for w in page), max(w[2] for w in page)
        assert x0 >= margin - 0.5 and x1 <= page_width - margin + 0.5, (kind, x0, x1)
    if kind == "report":  # the flows table's 17 columns are all there
        text = " ".join(w for p in _pages(reports[kind]) for *_, w in p)
        for title in ("wire", "serialization", "5QIs", "PDB", "resource", "carried", "fps", "fits"):
            assert title in text, title


@needs_tex
def test_commands_read_as_typed(reports: dict[str, Path]) -> None:
    """The command a report was made with, copied from the PDF, is the command: "--" stays two hyphens."""
    text = {k: " ".join(w for p in _pages(pdf) for *_, w in p) for k, pdf in reports.items()}
    assert "--split features.30" in text["report"] and "--compression 0.1 --fps 30" in text["report"]
    assert "pktchar fleet vgg16 --split classifier.0 --devices 8,45" in text["run"]
    assert "\u2013" not in text["report"] + text["run"]  # an en dash


@needs_tex
@pytest.mark.parametrize("kind", ["report", "compare", "run"])
def test_no_table_overfills_the_line(reports: dict[str, Path], kind: str) -> None:
    log = _tables_log(reports[kind].parent)
    assert "Overfull \\hbox" not in log and "Rerun LaTeX" not in log


@needs_tex
def test_a_table_page_renders_to_png(reports: dict[str, Path], tmp_path: Path) -> None:
    pages = _pages(reports["report"])
    page = next(i for i, p in enumerate(pages, 1) if "Requirements" in " ".join(w for *_, w in p))
    stem = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "100", "-png", "-f", str(page), "-l", str(page), "-singlefile",
         str(reports["report"]), str(stem)],
        check=True,
    )  # fmt: skip
    png = stem.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    assert struct.unpack(">II", png[16:24]) == PAGE_PX


def _flows_like() -> Table:
    """17 columns of the widths the report's flows table has, the PER as human_per writes it."""
    cols = [Column("model", "model"), Column("res", "input"), Column("split", "split after")]
    cols += [Column(f"n{k}", f"rate {k} (3GPP)", "rate") for k in range(12)]
    cols += [Column("per", "PER"), Column("fits", "5QIs that fit")]
    row = {"model": "vgg16", "res": "1080p", "split": "features.30", "per": "10^-3", "fits": "80, 89, 90"}
    return Table("Requirements", cols, [row | {f"n{k}": 1_649_726_400 for k in range(12)}])


def test_wide_table_splits_into_parts_that_repeat_the_keys() -> None:
    tex = to_latex(_flows_like(), label="tab:flows")
    parts = tex.split("\\begin{table}[H]")[1:]
    # one-line titles at 8 pt: 12 rate columns titled "rate k (3GPP)" (about 60 pt) and 4 pt either side
    # need some 800 pt beside the keys; the line is 500 pt (8.5 in less 2 x 2 cm): two parts at least
    assert len(parts) >= 2 and "resizebox" not in tex and tex.count("\\label{tab:flows}") == 1
    assert tex.count("\\addtocounter{table}{-1}") == len(parts) - 1  # one number for all the parts
    for k, part in enumerate(parts, 1):
        assert f"(part {k} of {len(parts)})" in part
        assert "vgg16 & 1080p & features.30 &" in part  # the key columns in every part
    # every other column once, in SI units (LaTeX is for people): 1,649,726,400 bit/s is 1.65 Gbit/s
    assert sum(part.count("1.65 Gbit/s") for part in parts) == 12
    assert "$10^{-3}$" in tex and "textasciicircum" not in tex


def test_powers_of_ten_in_tex_only() -> None:
    assert tex_escape("PER 10^-3, 2.5 x 10^-4; 10^6 bit/s") == (
        "PER $10^{-3}$, $2.5\\times 10^{-4}$; $10^{6}$ bit/s"
    )
    assert tex_escape("a^b") == "a\\textasciicircum{}b"  # a caret that is no power of ten stays one
    t = _flows_like()
    assert "| 10^-3 |" in to_markdown(t) and ",10^-3," in to_csv(t)  # markdown and CSV keep the text
