"""Golden files: every table the README's example commands without root render, in every format.

Each command runs through the CLI (in this process), its ``views.Output`` is taken where the CLI presents
it, and rendered as the terminal shows it (rich at 200 columns, no colour, the lines below the tables),
as markdown, CSV, LaTeX and JSON. Each text is compared byte for byte with tests/golden/<name>.<fmt>;
``pytest --update-golden`` rewrites them, and the diff is reviewed before it is committed.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from craft import DEV, EDGE, PORT, flat_v1, prediction, tcp_flow, write_pcap

GOLDEN = Path(__file__).parent / "golden"
FORMATS = ("rich", "md", "csv", "tex", "json")

COMMANDS = {
    "profile-vgg16-8k": ["profile", "vgg16", "--res", "8k"],
    "profile-resnet50-1080p-fp16": ["profile", "resnet50", "--res", "1080p", "--dtype", "fp16"],
    "profile-alexnet_caffe-227-splits": ["profile", "alexnet_caffe", "--res", "227", "--only", "splits"],
    "profile-resnet50-split-flow": ["profile", "resnet50", "--res", "1080p", "--split", "layer2.0.conv1",
                                    "--fps", "30", "--link", "100mbit", "--compression", "0.1"],
    "table-three-models": ["table", "--models", "alexnet,vgg16,resnet50", "--res", "224,8k,x10,x100",
                           "--compression", "0.1", "--latency", "10ms"],
    "qos-270kB-15ms": ["qos", "--payload", "270kB", "--latency", "15ms"],
    "compare-crafted": ["compare", "flow.pcap"],
}  # fmt: skip

# A crafted capture for `compare`: three frames (a small one, pool5 of VGG-16 at 224, one over 2 MB) as the
# replay sends them at 80 Mbit/s, each answered by the edge, with the prediction beside it.
PAYLOADS = [5_000, 100_352, 2_100_000]


def _rendered(output: Any) -> dict[str, str]:
    from rich.console import Console

    buf = io.StringIO()
    output.print(Console(file=buf, width=200, color_system=None, force_terminal=False, legacy_windows=False))
    return {"rich": buf.getvalue(), **{f: output.text(f) for f in ("md", "csv", "tex", "json")}}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Every command's rendered texts, the CLI run once each."""
    import importlib
    import os

    from typer.testing import CliRunner

    cli = importlib.import_module("pktchar.cli.app")  # the module (pktchar.cli's `app` is the Typer)

    where = tmp_path_factory.mktemp("golden")
    write_pcap(where / "flow.pcap", tcp_flow(PAYLOADS, answers=True))
    (where / "flow.prediction.json").write_text(json.dumps(flat_v1(prediction(PAYLOADS, DEV, EDGE, PORT))))
    import sys

    seen: list[Any] = []
    # every CLI module that took `_present` from cli.app (the command modules import it by name)
    holders = [
        m for n, m in list(sys.modules.items()) if n.startswith("pktchar.cli") and hasattr(m, "_present")
    ]
    real = cli._present
    for m in holders:
        m._present = lambda output, fmt, out=None: seen.append(output)
    cwd = os.getcwd()
    os.chdir(where)  # the capture is named as given: flow.pcap
    try:
        out = {}
        for name, args in COMMANDS.items():
            seen.clear()
            r = CliRunner().invoke(cli.app, args)
            assert r.exit_code == 0, (name, r.output, r.exception)
            (output,) = seen
            out[name] = _rendered(output)
        return out
    finally:
        for m in holders:
            m._present = real
        os.chdir(cwd)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_golden(
    outputs: dict[str, dict[str, str]], name: str, fmt: str, request: pytest.FixtureRequest
) -> None:
    text = outputs[name][fmt]
    path = GOLDEN / f"{name}.{fmt}"
    if request.config.getoption("--update-golden"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"{path} is missing: run pytest tests/test_golden.py --update-golden and review it"
    assert text == path.read_text(), f"{path} differs: if the change is meant, --update-golden and review"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_golden_reads_as_promised(outputs: dict[str, dict[str, str]], name: str) -> None:
    """No exponent anywhere; the terminal and LaTeX show SI units, markdown and CSV exact integers."""
    texts = outputs[name]
    for fmt in ("rich", "md", "csv", "tex"):
        assert not re.search(r"\d[eE][+-]?\d", texts[fmt]), (name, fmt)
    for fmt in ("md", "csv", "tex"):
        assert "\x1b[" not in texts[fmt] and "\x1b[" not in texts["rich"]  # no colour


def _row(text: str, first: str, sep: str) -> list[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|│").split(sep)]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}")


def test_vgg16_8k_first_conv_in_every_format(outputs: dict[str, dict[str, str]]) -> None:
    """VGG-16's first conv at 8K (4320x7680): 64 x 4320 x 7680 = 2,123,366,400 elements, 4 B each at fp32:
    8,493,465,600 B; 3 x 3 x 3 x 64 weights + 64 biases = 1,792 params; 3 x 3 x 3 = 27 MACs an output
    element, 57,330,892,800 in all (57.3 G)."""
    t = outputs["profile-vgg16-8k"]
    md = _row(t["md"], "1", "|")
    assert md[1:8] == ["features.0", "Conv2d", "1x64x4320x7680", "2,123,366,400", "8,493,465,600", "1,792",
                       "57,330,892,800"]  # fmt: skip
    assert (
        "1,features.0,Conv2d,1x64x4320x7680,2123366400,8493465600,1792,57330892800" in t["csv"].splitlines()
    )
    rich = _row(t["rich"], "1", "│")
    assert rich[1:8] == [
        "features.0",
        "Conv2d",
        "1x64x4320x7680",
        "2,123,366,400",
        "8.49 GB",
        "1,792",
        "57.3 G",
    ]
    assert (
        r"1 & features.0 & Conv2d & 1$\times$64$\times$4320$\times$7680 & 2,123,366,400 & 8.49 GB & 1,792 & 57.3 G"
        in t["tex"]
    )


def test_compare_relative_errors_by_format(outputs: dict[str, dict[str, str]]) -> None:
    """The crafted capture carries exactly the predicted frames: 5,000 + 100,352 + 2,100,000 = 2,205,352 B of
    payload, each error 0: +0.000% where people read it, 0 in CSV."""
    t = outputs["compare-crafted"]
    md = _row(t["md"], "payload bytes", "|")
    assert md[1:3] == ["2205352", "2205352"] and md[-1] == "+0.000%"
    assert "payload bytes,2205352,2205352,B,0" in t["csv"].splitlines()
    assert _row(t["rich"], "payload bytes", "│")[-1] == "+0.000%"
