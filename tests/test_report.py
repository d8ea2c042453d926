"""Reports: complete files, LaTeX that compiles, markdown that parses back to report.json, honest figures."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import pktchar
from pktchar.core.errors import PktcharError
from pktchar.core.packets import packetize
from pktchar.model.codec import Coding
from pktchar.model.table import packet_table
from pktchar.present import figures
from pktchar.present.report import collect, write

from conftest import IN_CI, run_cli


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = collect(
        ["alexnet", "resnet18"],
        ["224", "1080p"],
        compression=0.1,
        link=100e6,
        fps=30,
        command="pktchar report alexnet,resnet18 --res 224,1080p --compression 0.1",
    )
    out = tmp_path_factory.mktemp("rep") / "r"
    write(d, out)
    return d, out


def test_files_complete(report):
    d, out = report
    for f in ("report.md", "report.tex", "report.json"):
        assert (out / f).stat().st_size > 1000
    for m in d.models:
        for kind in ("payload", "tradeoff", "packets"):
            for ext in ("png", "pdf"):
                assert (out / "figures" / f"{kind}_{m}.{ext}").stat().st_size > 5000
        assert (out / "tables" / f"splits_{m}.tex").exists()
    for t in ("packet_table", "packet_table_exact", "paper_comparison", "flows"):
        assert (out / "tables" / f"{t}.tex").exists()
    md = (out / "report.md").read_text()
    assert (
        "pktchar report alexnet,resnet18" in md and "torch " in md and "(figures/payload_alexnet.png)" in md
    )
    j = json.loads((out / "report.json").read_text())
    assert j["command"].startswith("pktchar report") and j["versions"]["torch"]
    # the files hold the figures, not only bytes: by hand, AlexNet at 224 with 10% compression sends at
    # least its 1,000 fp32 logits (4,000 B -> 400 B) and at most conv1's 64 x 55 x 55 x 4 B = 774,400 B
    # (-> 77,440 B); ResNet-18's cheapest cut at 1080p is its 512 pooled features (2,048 B -> 205 B)
    cells = {(c["model"], c["res"]): c for c in j["packet_table"]["cells"]}
    assert (cells["alexnet", "224"]["min_bytes"], cells["alexnet", "224"]["max_bytes"]) == (400, 77_440)
    assert cells["resnet18", "1080p"]["min_bytes"] == 205
    assert "| 224 (224x224) | 400 B (classifier.6) ~ 77.4 kB (features.0)" in md.replace("<br>", "\n")
    tex = (out / "tables" / "packet_table.tex").read_text()
    assert "classifier.6" in tex and "features.0" in tex


def _md_table(md: str, title: str) -> list[dict[str, str]]:
    block = md.split(f"### {title}\n", 1)[1].strip().split("\n\n", 1)[0]
    lines = [x for x in block.splitlines() if x.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in x.strip("|").split("|")), strict=True)) for x in lines[2:]]


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def test_markdown_parses_back_to_json(report):
    _, out = report
    md = (out / "report.md").read_text()
    j = json.loads((out / "report.json").read_text())
    cells = {(c["model"], c["res"]): c for c in j["packet_table"]["cells"]}
    rows = _md_table(md, "Packet characteristics, one row a cell")
    assert len(rows) == len(cells) == 4
    for r in rows:
        c = cells[(r["model"], r["input"])]
        assert _int(r["min payload (B)"]) == c["min_bytes"] and _int(r["max payload (B)"]) == c["max_bytes"]
        assert r["max split"] == c["max_split"]
    prof = {(p["model"], p["resolution"]): p for p in j["profiles"]}
    rows = _md_table(md, "resnet18: coded payload per split point")
    assert len(rows) == len(prof[("resnet18", "224")]["splits"])
    for r in rows:
        i = _int(r["#"])
        assert _int(r["payload @224 (B)"]) == prof[("resnet18", "224")]["coded_bytes"][i]
        assert _int(r["payload @1080p (B)"]) == prof[("resnet18", "1080p")]["coded_bytes"][i]


@pytest.mark.skipif(shutil.which("pdflatex") is None and not IN_CI, reason="pdflatex not installed")
def test_latex_compiles(report):
    _, out = report
    r = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert (out / "report.pdf").stat().st_size > 10_000
    assert "Undefined control sequence" not in r.stdout


def test_refuses_to_overwrite(report, tmp_path):
    d, _ = report
    write(d, tmp_path / "x")
    with pytest.raises(PktcharError, match="choose another out or pass force$"):
        write(d, tmp_path / "x")
    write(d, tmp_path / "x", force=True)


def test_payload_figure_holds_its_series():
    ps = [pktchar.profile("vgg16", r) for r in ("224", "8k")]
    coding = Coding("fp32", compression=0.1)
    fig = figures.payload_along_network("vgg16", ps, coding)
    ax = fig.axes[0]
    data = [ln for ln in ax.lines if ln.get_label().startswith(("224", "8k"))]
    assert [ln.get_label() for ln in data] == ["224 (224x224)", "8k (4320x7680)"]
    # the 8K line's peak is conv1_1's output at 10%: 64 x 4320 x 7680 x 4 B x 0.1
    assert max(data[1].get_ydata()) == math.ceil(64 * 4320 * 7680 * 4 * 0.1)
    assert list(data[0].get_ydata()) == [coding.split_bytes(s) for s in ps[0].splits]
    limits = {ln.get_ydata()[0] for ln in ax.lines if ln.get_linestyle() == "--" and ln not in data}
    assert {255, 500, 1125, 1354, 17000, 63000} <= limits
    assert ax.get_yscale() == "log" and "bytes" in ax.get_ylabel() and ax.get_xlabel()
    right = fig.axes[1]
    assert any("5QI 90" in t.get_text() for t in right.get_yticklabels())


def test_other_figures_hold_their_series():
    p = pktchar.profile("resnet18", "224")
    coding = Coding("fp16")
    fig = figures.macs_vs_payload("resnet18", [p], coding)
    line = fig.axes[0].lines[0]
    nonzero = [s for s in p.splits if s.device_macs > 0]
    assert list(line.get_xdata()) == [s.device_macs for s in nonzero]
    assert list(line.get_ydata()) == [coding.split_bytes(s) for s in nonzero]
    pk = packetize(100_000)
    fig = figures.packet_sizes("x", pk)
    heights = sorted(b.get_height() for b in fig.axes[0].patches)
    assert heights == [1, 69]  # 69 full 1500 B packets and a 164 B tail, worked out in test_packets_qos
    t = packet_table(["alexnet", "vgg16"], ["224", "8k"])
    fig = figures.packet_table_heatmap(t)
    img = fig.axes[1].images[0].get_array()
    assert img.shape == (2, 2)
    assert np.isclose(img[1, 1], np.log10(64 * 4320 * 7680 * 4))


@pytest.mark.slow
def test_report_cli(tmp_path):
    out = tmp_path / "cli"
    r = run_cli("report", "resnet18", "--res", "224,720p", "--fps", "10", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "report.md").exists() and (out / "figures" / "payload_resnet18.png").exists()
    r = run_cli("report", "resnet18", "--res", "224", "--out", str(out))
    assert r.returncode != 0 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert re.search(r"\| 224 \| resnet18 \|", (out / "report.md").read_text())
    assert os.listdir(out / "tables")
