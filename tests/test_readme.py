"""Every command the README shows runs here, as written or with only its sizes reduced.

The README's commands are the lines of its ```bash blocks (``\\`` continuations joined, comments
dropped). Each is a :class:`Case`: the README line, exactly, and the rewrites that turn it into what
runs here, each one of a few kinds: a size reduced (frames, steps, devices, workers, models, a sweep
range, a benchmark's repeats or cases), an output path pointed into the test's folder, or the other
host (``edge-host:5201``) made 127.0.0.1 and a free port, ``eth0`` made ``lo``. A rewrite whose
README text is not in the line appends an option the line leaves at its default, and names that
default (``--frames 30``), which the meta-tests check against the CLI and the benchmark scripts.
Each test says which cases it covers (:func:`covers`) and must run every one of them; the meta-tests
check that every README command is covered by exactly one case and every rewrite is of an allowed
kind, so the README cannot show a command that CI does not run, nor can a test drift from it.

pktchar commands run in the test's folder (their relative outputs, ``captures/`` and ``reports/``,
land there); ``scripts/`` and ``benchmarks/`` run from the checkout. ``.venv/bin/`` is the venv that
runs the tests (the checkout's ``.venv`` under ``scripts/test.sh``), and ``PATH`` starts with it, as
after ``source .venv/bin/activate``. The figures asserted are worked out here from the models'
architectures and the protocols' header sizes, not read back from pktchar.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomllib

from conftest import IN_CI, REPO

README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------------------------------
# the README's commands


def readme_blocks(lang: str) -> list[str]:
    """The README's fenced blocks of ``lang``, in order."""
    return re.findall(rf"^ *```{lang}\n(.*?)^ *```", README.read_text(), re.S | re.M)


def _strip_comment(line: str) -> str:
    """``line`` without its shell comment: a ``#`` starting a word, outside quotes (``relu#2`` stays)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def readme_commands() -> list[str]:
    """Every command line of the README's bash blocks, continuations joined, whitespace collapsed."""
    out = []
    for block in readme_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            cmd = " ".join(_strip_comment(line).split())
            if cmd:
                out.append(cmd)
    return out


# ---------------------------------------------------------------------------------------------------
# cases and what may be rewritten

ALL_CASES: list[Case] = []
SIZE_OPTIONS = {
    "--frames", "--devices", "--sweep", "--steps", "--workers", "--queries-after", "--units",  # pktchar
    "--cases", "--repeats", "--packets", "--runs", "--repeat", "--rates", "--fractions",  # benchmarks/
    "count", "frames",  # fleet.toml
}  # fmt: skip
OUTPUT_OPTIONS = {"--out", "--pcap", "--report"}


class Case:
    """One README command: ``readme``, exactly, and the rewrites ``(README text, what runs)``."""

    def __init__(self, readme: str, *rewrites: tuple[str, str], cwd: str = "tmp") -> None:
        self.readme = readme
        self.rewrites = rewrites
        self.cwd = cwd  # "tmp": the test's folder; "repo": the checkout
        self.tests: list[str] = []
        ALL_CASES.append(self)

    def __repr__(self) -> str:
        return f"Case({self.readme!r})"

    def command(self, **fill: str) -> str:
        """What runs: the README line, rewritten, ``{tmp}``/``{port}`` filled, ``.venv/bin/`` the venv's."""
        cmd = self.readme
        for old, new in self.rewrites:
            pattern = re.compile(rf"(?<!\S){re.escape(old)}(?!\S)") if old else None
            n = len(pattern.findall(cmd)) if pattern else 0
            assert n <= 1, f"{old!r} is ambiguous in {self.readme!r}"
            cmd = pattern.sub(lambda _, new=new: new, cmd) if n else f"{cmd} {new}"
        for k, v in fill.items():
            cmd = cmd.replace("{" + k + "}", v)
        assert "{" not in cmd, f"unfilled placeholder in {cmd!r}"
        return re.sub(r"(?<!\S)\.venv/bin/", f"{VENV_BIN}/", cmd)


_RUN: dict[str, Any] = {"declared": None, "ran": []}


def covers(*cases: Case) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a test as the one that runs these README cases; it fails unless it runs every one
    (a parametrized test over ``case`` runs the one it is given)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for c in cases:
            c.tests.append(fn.__name__)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            declared = [kwargs["case"]] if isinstance(kwargs.get("case"), Case) else list(cases)
            _RUN.update(declared=declared, ran=[])
            try:
                out = fn(*args, **kwargs)
            finally:
                ran, _RUN["declared"] = _RUN["ran"], None
            missing = [c.readme for c in declared if c not in ran]
            assert not missing, f"{fn.__name__} covers but did not run: {missing}"
            return out

        return wrapper

    return deco


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("VIRTUAL_ENV", None)
    return {**env, **(extra or {})}


def _cwd(case: Case, tmp: Path) -> Path:
    return REPO if case.cwd == "repo" else tmp


def _start(case: Case) -> None:
    assert _RUN["declared"] is not None, "run README cases only inside a test marked @covers"
    assert case in _RUN["declared"], f"{case} is not one this test covers"
    _RUN["ran"].append(case)


def sh(
    case: Case, tmp: Path, *, timeout: float = 300, env: dict[str, str] | None = None, **fill: str
) -> subprocess.CompletedProcess[str]:
    """Run a README case with bash, as a reader would type it; print its time for the log."""
    _start(case)
    cmd = case.command(tmp=str(tmp), **fill)
    t = time.monotonic()
    p = subprocess.run(
        ["bash", "-c", cmd],
        cwd=_cwd(case, tmp),
        # a run given no --pcap captures into $PKTCHAR_CAPTURES (else the temporary folder): the test's
        # own captures/ folder (relative: it runs in the test folder), so it finds and removes them
        env=_env({"PKTCHAR_CAPTURES": "captures", **(env or {})}),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    print(f"[{time.monotonic() - t:6.1f} s, exit {p.returncode}] {cmd}")
    return p


def ok(p: subprocess.CompletedProcess[str]) -> str:
    """stdout of a run that must have succeeded (its stderr in the failure message)."""
    assert p.returncode == 0, f"exit {p.returncode}\nstderr:\n{p.stderr[-3000:]}\nstdout:\n{p.stdout[-3000:]}"
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    return p.stdout


# ---------------------------------------------------------------------------------------------------
# figures worked out here

MSS = 1500 - 20 - 20 - 12  # TCP over IPv4 at MTU 1500 with 12 B timestamp options
HDR = 24  # pktchar's application frame header (README: Packets)


def packets(payload: int) -> tuple[int, int]:
    """(segments, IP bytes of the last) of one frame of ``payload`` bytes over TCP, MTU 1500."""
    data = payload + HDR
    n = -(-data // MSS)
    return n, data - (n - 1) * MSS + 52


def frame_bytes(payload: int) -> int:
    """Ethernet frames (no FCS) of one application frame: what tcpdump captures and tbf counts."""
    n, last = packets(payload)
    return (n - 1) * (1500 + 14) + last + 14


def wire_bytes(payload: int) -> int:
    """On the wire: + FCS 4, preamble 8, gap 12 a packet."""
    n, last = packets(payload)
    return (n - 1) * (1500 + 38) + last + 38


def si(x: float, unit: str) -> str:
    """Three significant figures with an SI prefix (1 kB = 1000 B), as a person writes them."""
    for prefix, f in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0)):
        if x >= f:
            return f"{x / f:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def cells(text: str, first: str) -> list[str]:
    """The cells of the (rich or markdown) table row whose first cell is ``first``."""
    for line in text.splitlines():
        parts = [c.strip() for c in re.split(r"[│|]", line)]
        if len(parts) > 2 and parts[1] == first:
            return parts[1:-1]
    raise AssertionError(f"no table row {first!r} in:\n{text[-4000:]}")


def num(cell: str) -> float:
    return float(re.search(r"-?[\d,]*\.?\d+", cell).group(0).replace(",", ""))  # type: ignore[union-attr]


# VGG-16 (Simonyan & Zisserman, 2015, configuration D): 13 3x3 convolutions in five stages of
# (channels, convolutions), each stage ending in a 2x2 max pool; three fully connected layers.
VGG16_STAGES = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]


def vgg16_pool5(h: int, w: int) -> int:
    """Elements of features.30 (pool5): 512 channels at 1/32 of the input (floor at each pool)."""
    for _ in range(5):
        h, w = h // 2, w // 2
    return 512 * h * w


# ---------------------------------------------------------------------------------------------------
# Quickstart: set-up and the suite itself

QS_SETUP = Case("scripts/setup.sh && .venv/bin/pktchar profile vgg16 --res 8k", cwd="repo")
QS_TESTS = Case("scripts/test.sh", ("", "-q -p no:cacheprovider tests/test_resolution.py"), cwd="repo")


def _own_venv() -> str | None:
    """Why setup.sh may not run here, or None: it installs into the checkout's .venv, which must be
    the venv running these tests with pktchar installed from this checkout (else it would reinstall
    pktchar from here into a venv another checkout uses, or build a new venv with torch)."""
    venv = REPO / ".venv"
    if not venv.is_dir() or venv.resolve() != Path(sys.prefix).resolve():
        return f"the tests run from {sys.prefix}, not this checkout's .venv ({venv})"
    import sysconfig
    from importlib.metadata import distributions

    site = sysconfig.get_paths()["purelib"]  # the venv's own install, not an egg-info in the checkout
    urls = [
        json.loads(d.read_text("direct_url.json") or "{}") for d in distributions(name="pktchar", path=[site])
    ]
    url = urls[0].get("url", "") if urls else ""
    if url.removeprefix("file://") != str(REPO):
        return f"the venv's pktchar is installed from {url or 'an index'}, not {REPO}"
    return None


@pytest.mark.slow
@covers(QS_SETUP)
def test_quickstart_setup_is_idempotent_then_profiles(tmp_path: Path) -> None:
    why = _own_venv()
    if why:
        pytest.skip(why)
    # torch is there already: setup installs only what is missing (the Debian packages skipped)
    p = sh(QS_SETUP, tmp_path, timeout=900, env={"PKTCHAR_SKIP_APT": "1"})
    out = ok(p)
    assert "installing torch" not in p.stderr and "creating .venv" not in p.stderr
    assert "setup: ready" in p.stderr
    pool5 = vgg16_pool5(4320, 7680)
    assert cells(out, "31")[1:4] == ["features.30", "MaxPool2d", "1x512x135x240"]
    assert cells(out, "31")[4] == f"{pool5:,}"
    assert cells(out, "31")[5] == si(pool5 * 4, "B")  # 66,355,200 B: 66.4 MB


@pytest.mark.slow
@covers(QS_TESTS)
def test_quickstart_test_script_lints_and_runs_a_part_of_the_suite(tmp_path: Path) -> None:
    why = _own_venv()
    if why:
        pytest.skip(why)
    p = sh(QS_TESTS, tmp_path, timeout=900, env={"PKTCHAR_SKIP_APT": "1"})
    out = ok(p)
    assert "All checks passed" in out  # ruff check
    assert re.search(r"\b\d+ files? already formatted", out)
    assert re.search(r"\b\d+ passed\b", out) and " failed" not in out


# ---------------------------------------------------------------------------------------------------
# the venv, once

ACTIVATE = Case("source .venv/bin/activate")


@covers(ACTIVATE)
def test_activating_the_venv_puts_pktchar_on_the_path(tmp_path: Path) -> None:
    _start(ACTIVATE)
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}
    bare.pop("VIRTUAL_ENV", None)
    before = subprocess.run(["bash", "-c", "command -v pktchar"], env=bare, capture_output=True, text=True)
    assert before.returncode != 0  # the issue: after setup.sh alone, `pktchar` is "command not found"
    script = f"{ACTIVATE.command()}\ncommand -v pktchar\npktchar models alexnet_caffe --format json"
    p = subprocess.run(["bash", "-c", script], env=bare, cwd=tmp_path, capture_output=True, text=True)
    out = ok(p).splitlines()
    assert Path(out[0]).resolve() == (VENV_BIN / "pktchar").resolve()
    assert [r["name"] for r in json.loads("\n".join(out[1:]))] == ["alexnet_caffe"]


# ---------------------------------------------------------------------------------------------------
# Use: the commands without a network

MODELS = Case("pktchar models")
PROFILE_8K = Case("pktchar profile vgg16 --res 8k")
PROFILE_JSON = Case("pktchar profile resnet50 --res 1080p --dtype fp16 --format json > r50.json")
PROFILE_MD = Case("pktchar profile alexnet_caffe --res 227 --only splits --format md")
PROFILE_MINE = Case(
    "pktchar profile path/to/mine.py:make_model --res 480x640 --num-classes 10 --weights mine.pt"
)
FLOW = Case(
    "pktchar profile resnet50 --res 1080p --split layer2.0.conv1 --fps 30 --link 100mbit --compression 0.1"
)
FLOW_CODER = Case(
    "pktchar profile resnet18 --res 4k --split layer3.1.relu#2 --fps 10 --coder zstd --dtype int8"
)
TABLE = Case(
    "pktchar table --models alexnet,vgg16,resnet50 --res 224,8k,x10,x100 --compression 0.1 --latency 10ms"
)
QOS = Case("pktchar qos --payload 270kB --latency 15ms")
REPORT = Case(
    "pktchar report vgg16 --res 224,1080p,4k,8k --compression 0.1 --fps 30 --link 1gbit --split features.30 "
    "--out reports/vgg16-224-to-8k"
)
PDFLATEX = Case("(cd reports/vgg16-224-to-8k && pdflatex report.tex)")


def alexnet_caffe_params() -> int:
    """Caffe's bvlc_alexnet: conv2, conv4 and conv5 in two groups (each filter sees half the channels)."""
    convs = [(3, 96, 11, 1), (96, 256, 5, 2), (256, 384, 3, 1), (384, 384, 3, 2), (384, 256, 3, 2)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    return sum(o * (i // g) * k * k + o for i, o, k, g in convs) + sum(i * o + o for i, o in fcs)


@covers(MODELS)
def test_models_lists_torchvision_and_the_local_models(tmp_path: Path) -> None:
    out = ok(sh(MODELS, tmp_path))
    # torchvision's documented parameter counts, and the Caffe AlexNet counted layer by layer
    assert cells(out, "vgg16")[1] == "138,357,544"
    assert cells(out, "resnet50")[1] == "25,557,032"
    assert cells(out, "alexnet_caffe")[1:4] == [
        f"{alexnet_caffe_params():,}",
        "227",
        "models/alexnet_caffe.py",
    ]
    assert cells(out, "mobilenet_v1")[3] == "models/mobilenet_v1.py"


@covers(PROFILE_8K)
def test_profile_vgg16_8k(tmp_path: Path) -> None:
    out = ok(sh(PROFILE_8K, tmp_path))
    h, w = 4320, 7680
    assert cells(out, "1")[1:6] == [
        "features.0",
        "Conv2d",
        f"1x64x{h}x{w}",
        f"{64 * h * w:,}",
        si(64 * h * w * 4, "B"),
    ]
    pool5 = vgg16_pool5(h, w)  # 512 x 135 x 240
    assert cells(out, "31")[1:6] == [
        "features.30",
        "MaxPool2d",
        "1x512x135x240",
        f"{pool5:,}",
        si(pool5 * 4, "B"),
    ]
    # the split table: a cut after features.30 sends exactly that tensor
    split_rows = out[out.index("Split points") :]
    assert cells(split_rows, "31")[1:5] == ["features.30", "1x512x135x240", "1", si(pool5 * 4, "B")]


@covers(PROFILE_JSON)
def test_profile_resnet50_fp16_json_to_a_file(tmp_path: Path) -> None:
    p = sh(PROFILE_JSON, tmp_path)
    assert ok(p) == ""  # all of it went to the file
    d = json.loads((tmp_path / "r50.json").read_text())
    assert d["input_shape"] == [1, 3, 1080, 1920] and d["dtype"] == "fp16"
    assert d["params"] == 25_557_032
    conv1 = d["layers"][1]
    assert conv1["name"] == "conv1" and conv1["shape"] == [1, 64, 540, 960]  # 7x7 stride 2
    assert conv1["bytes"] == 64 * 540 * 960 * 2
    assert d["splits"][0]["after"] == "input" and d["splits"][0]["bytes"] == 3 * 1080 * 1920 * 2


@covers(PROFILE_MD)
def test_profile_alexnet_caffe_splits_as_markdown(tmp_path: Path) -> None:
    out = ok(sh(PROFILE_MD, tmp_path))
    assert "Layers of" not in out  # --only splits
    c1 = (227 - 11) // 4 + 1  # conv1: 11x11, stride 4 -> 55
    assert cells(out, "1")[1:5] == ["features.0", f"1x96x{c1}x{c1}", "1", f"{96 * c1 * c1 * 4:,}"]
    assert cells(out, "0")[4] == f"{3 * 227 * 227 * 4:,}"
    # pool5: 256 x 6 x 6 (conv 55 -> pool 27 -> pool 13 -> pool 6)
    pool5 = next(line for line in out.splitlines() if "| 1x256x6x6 |" in line)
    assert f"| {256 * 6 * 6 * 4:,} |" in pool5


MINE_PY = """\
import torch.nn as nn


def make_model(num_classes=1000):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, num_classes),
    )
"""


@covers(PROFILE_MINE)
def test_profile_your_own_model_file_with_weights(tmp_path: Path) -> None:
    (tmp_path / "path" / "to").mkdir(parents=True)
    (tmp_path / "path" / "to" / "mine.py").write_text(MINE_PY)
    make = "import sys; sys.path.insert(0, 'path/to'); import mine, torch; torch.save(mine.make_model(10).state_dict(), 'mine.pt')"
    subprocess.run([sys.executable, "-c", make], cwd=tmp_path, check=True)
    out = ok(sh(PROFILE_MINE, tmp_path))
    conv = 8 * 240 * 320  # 3x3, stride 2, padding 1 on 480x640
    assert cells(out, "1")[1:7] == [
        "0",
        "Conv2d",
        "1x8x240x320",
        f"{conv:,}",
        si(conv * 4, "B"),
        f"{8 * 27 + 8}",
    ]
    assert cells(out, "5")[1:7] == ["4", "Linear", "1x10", "10", "40 B", f"{8 * 10 + 10}"]
    assert f"params {8 * 27 + 8 + 8 * 10 + 10}" in out


@covers(FLOW)
def test_profile_one_split_as_a_flow(tmp_path: Path) -> None:
    out = ok(sh(FLOW, tmp_path))
    # after layer2.0.conv1 both layer1's output (the identity, 256 ch) and conv1's (128 ch) cross, 1/4 scale
    raw = (256 + 128) * 270 * 480 * 4
    coded = raw // 10
    assert cells(out, "layer1.2.relu#3")[1] == "1x256x270x480"
    assert cells(out, "layer2.0.conv1")[1] == "1x128x270x480"
    assert cells(out, "payload per frame")[1].startswith(f"{si(coded, 'B')} ({coded:,} B)")
    n, last = packets(coded)
    assert cells(out, "packets per frame")[1].startswith(f"{n:,} ({n - 1:,} x 1,500 B; 1 x {last:,} B)")
    assert cells(out, "rate, 3GPP form (payload x 8 / latency)")[1] == si(coded * 8 * 30, "bit/s")
    assert cells(out, "serialization time of one frame")[1] == f"{wire_bytes(coded) * 8 / 100e6:.3g} s"
    assert cells(out, "fits the link")[1] == "NO"  # 4.78 Gbit/s on 100 Mbit/s


@covers(FLOW_CODER)
def test_profile_one_split_with_a_measured_coder(tmp_path: Path) -> None:
    p = sh(FLOW_CODER, tmp_path)
    out = ok(p)
    raw = 256 * 135 * 240 + 8  # layer3 output at 1/16 of 2160x3840, int8, + scale and zero point
    assert cells(out, "layer3.1.relu#2")[1:3] == ["1x256x135x240", si(raw, "B")]
    assert "zstd on int8 activations measured at 224" in p.stderr
    coded = int(re.search(r"\(([\d,]+) B\)", cells(out, "payload per frame")[1]).group(1).replace(",", ""))
    assert 0 < coded < raw  # real activations compress
    rate = num(cells(out, "rate, 3GPP form (payload x 8 / latency)")[1])
    assert rate == pytest.approx(coded * 8 * 10 / 1e6, rel=0.005)  # Mbit/s at 10 fps


@covers(TABLE)
def test_the_yonsei_table(tmp_path: Path) -> None:
    out = ok(sh(TABLE, tmp_path))
    x10 = (round(4320 * math.sqrt(10)), round(7680 * math.sqrt(10)))  # 10x the pixels of 8K, aspect kept
    x100 = (4320 * 10, 7680 * 10)
    for label, (h, w) in (("224", (224, 224)), ("8k", (4320, 7680)), ("x10", x10), ("x100", x100)):
        row = cells(out, f"{label} ({h}x{w})")
        # the largest payload of VGG-16 is features.0 (64 channels at full size); the smallest the 1000 logits
        biggest = 64 * h * w * 4 / 10
        assert row[2] == f"400 B (classifier.6) ~ {si(biggest, 'B')} (features.0)", row
    assert cells(out, "8k (4320x7680)")[2] == "400 B (classifier.6) ~ 849 MB (features.0)"
    assert "rate 320 kbit/s ~ 679 Gbit/s" in out  # 849 MB x 8 / 10 ms


@covers(QOS)
def test_qos_of_a_frame(tmp_path: Path) -> None:
    out = ok(sh(QOS, tmp_path))
    assert cells(out, "rate, 3GPP form (payload x 8 / latency)")[1] == "144 Mbit/s"  # 270 kB x 8 / 15 ms
    n, last = packets(270_000)
    assert cells(out, "packets per frame")[1].startswith(f"{n} ({n - 1} x 1,500 B; 1 x {last} B)")
    assert cells(out, "resource type it calls for")[1] == "DC-GBR"  # budget up to 30 ms


@covers(REPORT, PDFLATEX)
def test_report_folder_and_its_pdf(tmp_path: Path) -> None:
    ok(sh(REPORT, tmp_path))
    folder = tmp_path / "reports" / "vgg16-224-to-8k"
    for f in ("report.md", "report.tex", "report.json", "tables/packet_table.tex", "tables/splits_vgg16.tex"):
        assert (folder / f).stat().st_size > 0, f
    assert {p.suffix for p in (folder / "figures").iterdir()} == {".png", ".pdf"}
    d = json.loads((folder / "report.json").read_text())
    sizes = {"224": (224, 224), "1080p": (1080, 1920), "4k": (2160, 3840), "8k": (4320, 7680)}
    assert [c["res"] for c in d["packet_table"]["cells"]] == list(sizes)
    for c in d["packet_table"]["cells"]:
        h, w = sizes[c["res"]]
        assert (c["max_split"], c["max_bytes"]) == ("features.0", math.ceil(64 * h * w * 4 / 10))
    flow = next(f for f in d["flows"] if f["res"] == "8k")
    pool5 = vgg16_pool5(4320, 7680) * 4  # 66,355,200 B
    assert (flow["split"], flow["payload"]) == ("features.30", pool5 // 10)
    assert flow["rate_payload_bps"] == pytest.approx(pool5 // 10 * 8 * 30)  # 1.59 Gbit/s
    assert flow["serialization_s"] == pytest.approx(wire_bytes(pool5 // 10) * 8 / 1e9)
    assert flow["fits_link"] is False  # 1.59 Gbit/s on 1 Gbit/s

    if shutil.which("pdflatex") is None and not IN_CI:
        _start(PDFLATEX)
        pytest.skip("no pdflatex (scripts/setup.sh --test installs texlive)")
    ok(sh(PDFLATEX, tmp_path, timeout=300))
    pdf = (folder / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert "LaTeX Warning: Reference" not in (folder / "report.log").read_text(errors="replace")


# ---------------------------------------------------------------------------------------------------
# the Python API block


def test_the_python_block_runs(tmp_path: Path) -> None:
    (block,) = readme_blocks("python")
    code = "\n".join(line.removeprefix("  ") for line in block.splitlines())
    check = """
s = p.split("layer1.0.conv2")
assert sorted(t.producer for t in s.tensors) == ["layer1.0.conv2", "maxpool"], s.tensors
assert all(t.shape == (1, 64, 1080, 1920) and t.bytes == 64 * 1080 * 1920 * 2 for t in s.tensors)
assert (p.min_split.after, p.min_split.bytes) == ("fc", 1000 * 2)
assert p.max_split.bytes == 2 * 256 * 1080 * 1920 * 2  # layer1.0: bn3 and the downsample, both at 1/4
assert len(p.splits_frame()) == len(p.splits) and len(p.layers_frame()) == len(p.layers)
import json; assert json.loads(p.to_json())["input_shape"] == [1, 3, 4320, 7680]
print("ok")
"""
    p = subprocess.run(
        [sys.executable, "-c", code + check], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert ok(p).strip() == "ok"


# ---------------------------------------------------------------------------------------------------
# the live testbed (root)

REPLAY = Case(
    "pktchar replay vgg16 --split features.30 --link 80mbit --frames 20 --pcap captures/vgg16.pcap",
    ("--frames 20", "--frames 3"),
)
COMPARE = Case("pktchar compare captures/vgg16.pcap --out reports/vgg16-compare")
DISSECTOR = Case("pktchar wireshark-dissector > pktchar.lua")
TSHARK = Case("tshark -X lua_script:pktchar.lua -r captures/vgg16.pcap")
CLEAN = Case("pktchar testbed clean")

POOL5_224 = vgg16_pool5(224, 224) * 4  # 100,352 B a frame


@pytest.mark.root
@covers(REPLAY, COMPARE, DISSECTOR, TSHARK)
def test_replay_then_compare_then_tshark(tmp_path: Path, nothing_left_behind: str) -> None:
    frames = 3
    p = sh(REPLAY, tmp_path)
    out = ok(p)
    n, _ = packets(POOL5_224)  # 70 segments a frame
    assert cells(out, "frames")[1:3] == [str(frames), str(frames)]
    assert cells(out, "packets (data direction)")[1:3] == [str(n * frames)] * 2
    assert cells(out, "payload bytes")[1:3] == [f"{POOL5_224 * frames:,}"] * 2
    wire = f"{frame_bytes(POOL5_224) * frames:,}"
    assert cells(out, "bytes on the wire (data direction, Ethernet frames)")[1:3] == [wire, wire]
    assert "0 dropped by the kernel -> complete" in out
    cap = tmp_path / "captures"
    for f in ("vgg16.pcap", "vgg16.prediction.json", "vgg16.result.json"):
        assert (cap / f).stat().st_size > 0
        assert f"wrote captures/{f}" in p.stderr

    out = ok(sh(COMPARE, tmp_path))
    assert cells(out, "payload bytes")[1:3] == [f"{POOL5_224 * frames:,}"] * 2
    assert (tmp_path / "reports" / "vgg16-compare" / "report.md").stat().st_size > 0

    assert ok(sh(DISSECTOR, tmp_path)) == ""
    assert 'Proto("pktchar"' in (tmp_path / "pktchar.lua").read_text()
    out = ok(sh(TSHARK, tmp_path))
    for k in range(frames):  # tshark names every frame and every answer by pktchar's framing
        assert f"[frame {k}, {POOL5_224} B]" in out
        assert f"[answer to frame {k}]" in out


@pytest.mark.root
@covers(CLEAN)
def test_testbed_clean_removes_a_dead_runs_namespace(tmp_path: Path, nothing_left_behind: str) -> None:
    from pktchar.testbed import netns

    run_id = f"{nothing_left_behind}dead"
    ns = f"{netns.PREFIX}-{run_id}-a"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    netns.STATE_DIR.mkdir(parents=True, exist_ok=True)
    (netns.STATE_DIR / f"{run_id}.json").write_text(json.dumps({"pid": dead.pid}))  # its owner crashed
    out = ok(sh(CLEAN, tmp_path))
    assert re.fullmatch(r"removed \d+ namespace\(s\)(: .*)?\n", out), out
    assert ns not in netns.list_namespaces()
    assert not (netns.STATE_DIR / f"{run_id}.json").exists()


# ---------------------------------------------------------------------------------------------------
# many devices to one edge server (root)

FLEET = Case(
    "pktchar fleet vgg16 --split classifier.0 --res 1080p --fps 30 --uplink 100mbit --edge-link 10mbit --devices 6",
    ("--devices 6", "--devices 2"),
    ("--frames 30", "--frames 5"),
)
FLEET_SWEEP = Case(
    "pktchar fleet vgg16 --split classifier.0 --res 1080p --fps 30 --edge-link 10mbit --sweep 1..8 "
    "--report reports/fleet",
    ("--sweep 1..8", "--sweep 1..2"),
    ("--frames 30", "--frames 5"),
)
FLEET_TOML = Case("pktchar fleet --scenario fleet.toml")
TOML_REWRITES = (("count = 4", "count = 1"), ("count = 2", "count = 1"), ("frames = 30", "frames = 5"))

CLS0 = 4096 * 4  # VGG-16 classifier.0: Linear(25088, 4096), fp32


@pytest.mark.root
@covers(FLEET)
def test_fleet_of_devices(tmp_path: Path, nothing_left_behind: str) -> None:
    out = ok(sh(FLEET, tmp_path))
    per_frame = frame_bytes(CLS0)  # 17,200 B
    offered = per_frame * 8 * 30
    for d in ("d0", "d1"):
        row = cells(out, d)
        assert row[1] == "5" and num(row[2]) == pytest.approx(offered / 1e6, abs=5e-4)
        assert row[-2:] == [f"{per_frame * 5:,}"] * 2  # predicted, measured wire bytes
    assert f"utilisation {2 * offered / 10e6:.2f}" in out
    assert "0 dropped by the kernel -> complete" in out
    assert (tmp_path / "captures" / "fleet-2.result.json").exists()


@pytest.mark.root
@covers(FLEET_SWEEP)
def test_fleet_sweep_and_report(tmp_path: Path, nothing_left_behind: str) -> None:
    out = ok(sh(FLEET_SWEEP, tmp_path))
    offered = frame_bytes(CLS0) * 8 * 30
    saturates = next(n for n in range(1, 100) if n * offered > 10e6)  # 3 devices
    assert f"the edge link saturates at {saturates} devices (predicted)" in out
    for n in (1, 2):
        assert cells(out, str(n))[1] == f"{n * offered / 10e6:.2f}"
    rep = tmp_path / "reports" / "fleet"
    assert (rep / "report.md").stat().st_size > 0 and any((rep / "figures").glob("*.png"))


def fleet_toml() -> str:
    (block,) = readme_blocks("toml")
    for old, new in TOML_REWRITES:
        assert block.count(old) == 1, old
        block = block.replace(old, new)
    return block


@pytest.mark.root
@covers(FLEET_TOML)
def test_fleet_from_the_readme_scenario_file(tmp_path: Path, nothing_left_behind: str) -> None:
    text = fleet_toml()
    doc = tomllib.loads(text)
    (tmp_path / "fleet.toml").write_text(text)
    out = ok(sh(FLEET_TOML, tmp_path))
    vgg, r50 = doc["group"]
    coded = math.ceil(CLS0 * vgg["compression"])  # 1,639 B
    avgpool = 2048 * 4  # ResNet-50's pooled features, fp32, uncompressed
    for dev, payload in (("g00", coded), ("g10", avgpool)):
        row = cells(out, dev)
        assert row[1] == str(doc["frames"])
        assert row[-2:] == [f"{frame_bytes(payload) * 5:,}"] * 2  # predicted, measured wire bytes
    assert "Fleet of 2 into one edge link of 50 Mbit/s" in out
    assert "-> complete" in out


# ---------------------------------------------------------------------------------------------------
# past one machine: serve and clients

SERVE = Case(
    "pktchar serve --port 5201", ("--port 5201", "--port {port}"), ("--bind 0.0.0.0", "--bind 127.0.0.1")
)
REPLAY_TO = Case(
    "pktchar replay vgg16 --split features.30 --to edge-host:5201 --link 100mbit",
    ("edge-host:5201", "127.0.0.1:{port}"),
    ("--frames 20", "--frames 3"),
)
REPLAY_TO_CAPTURE = Case(
    "pktchar replay vgg16 --split features.30 --to edge-host:5201 --capture-iface eth0",
    ("edge-host:5201", "127.0.0.1:{port}"),
    ("--capture-iface eth0", "--capture-iface lo"),
    ("--frames 20", "--frames 3"),
)
FLEET_TO = Case(
    "pktchar fleet vgg16 --split classifier.0 --devices 4 --fps 30 --to edge-host:5201",
    ("--devices 4", "--devices 2"),
    ("edge-host:5201", "127.0.0.1:{port}"),
    ("--frames 30", "--frames 5"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`pktchar serve` in the background; stopped (Ctrl-C) and reaped at the end."""

    def __init__(self, cmd: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {cmd}"],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if "serving on" in line:
                    ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(60):
            self.stop()
            raise AssertionError(f"serve did not start: {''.join(self.lines)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.reader.join(5)
        with pytest.raises(ProcessLookupError):
            os.kill(self.proc.pid, 0)  # gone, and reaped
        return self.proc.returncode


@covers(SERVE, REPLAY_TO, FLEET_TO)
def test_serve_and_its_clients_on_this_host(tmp_path: Path) -> None:
    port = str(free_port())
    _start(SERVE)
    server = Server(SERVE.command(port=port), tmp_path)
    try:
        assert f"serving on 127.0.0.1:{port}" in "".join(server.lines)
        p = sh(REPLAY_TO, tmp_path, port=port)
        out = ok(p)
        assert "no capture (a capture needs a capture interface, and root)" in out
        res = next((tmp_path / "captures").glob("*.result.json"))
        assert not list((tmp_path / "captures").glob("*.pcap"))  # no capture, no pcap
        assert f"wrote captures/{res.name}" in p.stderr
        answered = [json.loads(x) for x in server.lines if x.startswith("{")]
        frames = [a for a in answered if a["split"] != 0xFFFF]  # the calibration transfer apart
        assert [(a["id"], a["len"]) for a in frames] == [(k, POOL5_224) for k in range(3)]

        out = ok(sh(FLEET_TO, tmp_path, port=port))
        for d in ("d0", "d1"):
            assert cells(out, d)[1] == "5"
        assert "no capture" in out
    finally:
        code = server.stop()
    assert code in (0, 130, -signal.SIGINT)


@pytest.mark.root
@covers(REPLAY_TO_CAPTURE)
def test_replay_to_a_server_with_a_capture(tmp_path: Path) -> None:
    port = str(free_port())
    server = Server(f"pktchar serve --port {port} --bind 127.0.0.1", tmp_path)  # scaffolding, not a case
    try:
        p = sh(REPLAY_TO_CAPTURE, tmp_path, port=port)
        out = ok(p)
    finally:
        server.stop()
    assert "-> complete" in out
    # no --pcap: the run captured into the temporary folder and named the file, with its size
    (name,) = re.findall(r"pktchar: wrote (\S+\.pcap) \(", p.stderr)
    pcap = tmp_path / name
    # every frame's bytes crossed (the records keep headers only: the original lengths hold the bytes)
    raw, off, wire = pcap.read_bytes(), 24, 0
    while off + 16 <= len(raw):
        incl, orig = struct.unpack("<II", raw[off + 8 : off + 16])
        wire, off = wire + orig, off + 16 + incl
    assert wire > 3 * POOL5_224
    pcap.unlink()


# ---------------------------------------------------------------------------------------------------
# data-parallel training sync (root)

TRAIN = Case(
    "pktchar train-sync --preset seed000 --workers 2 --link 1gbit --steps 5", ("--steps 5", "--steps 2")
)
TRAIN_WHAT_IF = Case(
    "pktchar train-sync --preset seed000 --workers 1,2,3,4 --what-if --steps 5 --report reports/train-sync-seed000",
    ("--workers 1,2,3,4", "--workers 1,2"),
    ("--steps 5", "--steps 2"),
)

# the KETI/ETRI network: torchvision's MobileNetV2 (3,504,872 parameters, of which its classifier
# Linear(1280, 1000) has 1,281,000) as the backbone, then Linear(1280, 512), Linear(512, 100)
SEED000_BACKBONE = 3_504_872 - (1280 * 1000 + 1000)
SEED000_HEAD = (1280 * 512 + 512) + (512 * 100 + 100)
SEED000_PARAMS = SEED000_BACKBONE + SEED000_HEAD  # 2,931,044


def _drop_pcaps(tmp: Path) -> None:
    for f in (tmp / "captures").glob("*.pcap"):  # large; the test is done with them
        f.unlink()


@pytest.mark.root
@covers(TRAIN)
def test_train_sync_two_workers(tmp_path: Path, nothing_left_behind: str) -> None:
    out = ok(sh(TRAIN, tmp_path, timeout=900))
    assert f"{SEED000_PARAMS:,} trainable parameters" in out
    grads = SEED000_PARAMS * 4
    # ring all-reduce over 2 workers: each sends 2(N-1)/N = 1 x the gradients, plus gloo's framing
    sent = int(re.search(r"w0: ([\d,]+) B payload a steady step", out).group(1).replace(",", ""))
    assert grads <= sent <= grads * 1.02
    assert "capture w0: " in out and re.search(r"capture w0: [\d,]+ packets, complete", out)
    assert (tmp_path / "captures" / "train-sync-seed000-2w.result.json").exists()
    _drop_pcaps(tmp_path)


@pytest.mark.root
@covers(TRAIN_WHAT_IF)
def test_train_sync_workers_table_and_what_if(tmp_path: Path, nothing_left_behind: str) -> None:
    out = ok(sh(TRAIN_WHAT_IF, tmp_path, timeout=1200))
    table = out[out.index("Workers and variants") :]
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    by = {(r[0], r[1]): r for r in rows if r[0]}
    assert set(by) == {("1", "full"), ("2", "full"), ("2", "frozen backbone"), ("2", "full, fp16")}
    assert by[("1", "full")][2] == f"{SEED000_PARAMS * 4:,}"
    assert by[("2", "full")][2] == f"{SEED000_PARAMS * 4:,}"
    assert by[("2", "frozen backbone")][2] == f"{SEED000_HEAD * 4:,}"  # only the head's gradients
    assert by[("2", "full, fp16")][2] == f"{SEED000_PARAMS * 2:,}"
    rep = tmp_path / "reports" / "train-sync-seed000"
    assert (rep / "report.md").stat().st_size > 0 and (rep / "report.json").stat().st_size > 0
    _drop_pcaps(tmp_path)


# ---------------------------------------------------------------------------------------------------
# incremental model upload (root)

UPLOAD = Case(
    "pktchar upload mobilenet_v1 --link 80mbit --device-cpu 0.25 --create both --report reports/upload-mobilenet_v1",
    ("--queries-after 10", "--queries-after 2"),
)
UPLOAD_TABLE1 = Case(
    "pktchar upload resnet152,resnet50,mobilenet_v1,alexnet_caffe --device-cpu 0.25 --report reports/upload-table1",
    ("resnet152,resnet50,mobilenet_v1,alexnet_caffe", "resnet50,mobilenet_v1"),
    ("--queries-after 10", "--queries-after 2"),
)


DEVICE = Case("pktchar testbed device --cpu 0.25", ("--repeats 3", "--repeats 1"))
DEVICE_CFS = Case(
    "pktchar testbed device --cpu 0.1 --units 1ms,10ms,100ms,1s --limit cfs --format json",
    ("1ms,10ms,100ms,1s", "1ms,10ms"),
    ("--repeats 3", "--repeats 1"),
)


def mobilenet_v1_params() -> int:
    """MobileNet v1 1.0 (Howard et al., 2017, Table 1): a 3x3 conv, 13 depthwise-separable blocks
    (3x3 depthwise, 1x1 pointwise), each conv without bias and with BatchNorm (2 parameters a
    channel), then Linear(1024, 1000)."""
    chans = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    total = 3 * 32 * 9 + 2 * 32
    for cin, cout in zip(chans, chans[1:], strict=False):
        total += cin * 9 + 2 * cin + cin * cout + 2 * cout
    return total + 1024 * 1000 + 1000


@pytest.mark.root
@covers(UPLOAD)
def test_upload_one_model(tmp_path: Path, nothing_left_behind: str) -> None:
    out = ok(sh(UPLOAD, tmp_path, timeout=900))
    weights = mobilenet_v1_params() * 4
    wire_s = cells(out, "pure wire time: bytes x 8 / rate (s)")
    sent = num(wire_s[1]) * 80e6 / 8  # the weights and the descriptions, serialized
    assert weights <= sent <= weights * 1.02
    assert num(wire_s[3]) == num(wire_s[1])  # the same bytes either way
    for mode in ("sequential", "parallel"):
        assert f"{mode}: every query after the upload offloads the whole model: yes" in out
        assert re.search(rf"{mode}: \d+ queries during the upload, 2 after", out)
        assert re.search(rf"{mode}: capture \(tcpdump\): .* -> complete", out)
    rep = tmp_path / "reports" / "upload-mobilenet_v1"
    assert (rep / "report.md").stat().st_size > 0 and any((rep / "figures").glob("*.png"))
    _drop_pcaps(tmp_path)


@pytest.mark.root
@pytest.mark.slow
@covers(UPLOAD_TABLE1)
def test_upload_table1_of_two_models(tmp_path: Path, nothing_left_behind: str) -> None:
    out = ok(sh(UPLOAD_TABLE1, tmp_path, timeout=1800))
    table = out[out.index("beside the paper's Table 1") :]
    for model, params in (("resnet50", 25_557_032), ("mobilenet_v1", mobilenet_v1_params())):
        row = cells(table, model)
        size_mb = num(row[1])
        assert params * 4 / 1e6 <= size_mb <= params * 4 / 1e6 * 1.02
        assert num(row[3]) == pytest.approx(size_mb * 8 / 80, abs=0.011)  # expected s at 80 Mbit/s
    rep = tmp_path / "reports" / "upload-table1"
    assert (rep / "report.md").stat().st_size > 0
    _drop_pcaps(tmp_path)


@covers(DEVICE)
def test_testbed_device_table(tmp_path: Path) -> None:
    out = ok(sh(DEVICE, tmp_path))  # time dilation: no root
    assert "Emulated device: 0.25 of a core, by time dilation" in out
    for unit, blocks_about in (("1 ms", 1), ("10 ms", 10), ("100 ms", 100), ("1 s", 1000)):
        row = cells(out, unit)
        assert 0.5 * blocks_about <= num(row[1]) <= 2 * blocks_about  # bottlenecks of about 1 ms
        assert row[5] == "4.00"  # the target, 1 / 0.25
        assert num(row[4]) == pytest.approx(num(row[3]) / num(row[2]), rel=0.02)  # emulated / free


@pytest.mark.root
@covers(DEVICE_CFS)
def test_testbed_device_cfs_json(tmp_path: Path, nothing_left_behind: str) -> None:
    d = json.loads(ok(sh(DEVICE_CFS, tmp_path)))
    assert d["mechanism"] == "cfs" and "(cgroup, 1000 us per 10000 us)" in d["describe"]
    assert [u["unit_s"] for u in d["units"]] == [0.001, 0.01]
    assert all(u["target"] == pytest.approx(10.0) for u in d["units"])


# ---------------------------------------------------------------------------------------------------
# benchmarks

BENCH_PROFILE = Case(
    ".venv/bin/python benchmarks/bench_profile.py",
    ("--cases vgg16:224,vgg16:1080p,resnet50:224,resnet50:1080p,vgg16:8k,resnet50:8k", "--cases vgg16:224"),
    ("--repeats 3", "--repeats 1"),
    ("--out reports/benchmarks.md", "--out {tmp}/benchmarks.md"),
    cwd="repo",
)
BENCH_LIGHT = Case(
    ".venv/bin/python benchmarks/bench_light.py",
    ("--repeats 5", "--repeats 1"),
    ("--out reports/benchmarks.md", "--out {tmp}/benchmarks.md"),
    cwd="repo",
)
BENCH_PCAP = Case(
    ".venv/bin/python benchmarks/bench_pcap.py",
    ("--packets 1000000", "--packets 20000"),
    ("--runs 3", "--runs 1"),
    ("--out reports/benchmarks.md", "--out {tmp}/benchmarks.md"),
    cwd="repo",
)
BENCH_DEVICE = Case(
    ".venv/bin/python benchmarks/bench_device.py",
    ("--fractions 0.1,0.25,0.5", "--fractions 0.25"),
    ("--units 1ms,10ms,100ms,1s", "--units 10ms"),
    ("--repeats 5", "--repeats 1"),
    ("--out reports/benchmarks.md", "--out {tmp}/benchmarks.md"),
    cwd="repo",
)
BENCH_CAPTURE = Case(
    ".venv/bin/python benchmarks/bench_capture.py",
    ("--frames 40", "--frames 3"),
    ("--repeat 2", "--repeat 1"),
    ("--rates 80e6,1e9", "--rates 80e6"),
    ("--out reports/benchmarks.md", "--out {tmp}/benchmarks.md"),
    cwd="repo",
)


def _section(tmp: Path, name: str) -> str:
    text = (tmp / "benchmarks.md").read_text()
    m = re.search(rf"<!-- bench:{name} -->\n(.*)\n<!-- /bench:{name} -->", text, re.S)
    assert m, text[:2000]
    return m.group(1)


@pytest.mark.slow
@covers(BENCH_PROFILE)
def test_bench_profile(tmp_path: Path) -> None:
    before = (REPO / "reports" / "benchmarks.md").read_bytes()
    ok(sh(BENCH_PROFILE, tmp_path, timeout=900))
    assert (REPO / "reports" / "benchmarks.md").read_bytes() == before  # --out: the results went elsewhere
    text = _section(tmp_path, "profile")
    row = cells(text, "vgg16")
    assert row[1] == "224"
    ours, theirs = num(row[8]), num(row[9])
    assert ours == 15_470_264_320  # torchvision's published 15.47 GFLOPS (MACs) of VGG-16
    # torchinfo also counts a MAC for each bias addition: one per output element of every conv and linear
    h, biases = 224, 0
    for ch, convs in VGG16_STAGES:
        biases += ch * h * h * convs
        h //= 2
    assert theirs - ours == biases + 4096 + 4096 + 1000  # 13,556,712
    assert re.search(
        r"`pktchar profile vgg16 --res 8k --format json`: [\d.]+ s wall, \d+ MB peak RSS, exit 0", text
    )


@pytest.mark.slow
@covers(BENCH_LIGHT)
def test_bench_light(tmp_path: Path) -> None:
    ok(sh(BENCH_LIGHT, tmp_path, timeout=900))  # exits non-zero if a light command imported torch
    text = _section(tmp_path, "light")
    assert cells(text, "`pktchar qos --payload 270kB --latency 15ms`")[-1] == "no"
    assert cells(text, "`pktchar qos --payload 270kB --latency 15ms (at e21ca51)`")[-1] == "**yes**"
    assert "torch imported by a light command: none" in text
    # the layered redesign's before and after, both commands (the tree before it had cli.py, not cli/)
    assert (
        len(
            re.findall(
                r"before the layered redesign \(commit 1720f92\) and now: CPU [\d.]+ -> [\d.]+ s", text
            )
        )
        == 2
    )


@pytest.mark.slow
@covers(BENCH_PCAP)
def test_bench_pcap(tmp_path: Path) -> None:
    ok(sh(BENCH_PCAP, tmp_path, timeout=900, env={"TMPDIR": str(tmp_path)}))  # its cached capture too
    text = _section(tmp_path, "pcap")
    # the capture it writes: each frame 70 data segments, an ACK every second one (35), one answer;
    # frames while a whole one still fits (its budget 70 x 3 // 2 + 2), ARP requests to fill up
    n = 20_000
    segs, _ = packets(PAYLOAD := 100_352)
    per = segs + -(-segs // 2) + 1
    frames = sum(1 for f in range(n) if per * f + (segs * 3 // 2 + 2) <= n)
    assert PAYLOAD == POOL5_224
    assert (
        f"The comparison it printed: {frames} of {frames} frames, {frames * segs:,} data packets (predicted "
        f"{frames * segs:,}), {frames * (per - segs):,} back, {n - frames * per} other, 0 retransmissions."
    ) in text


@pytest.mark.root
@pytest.mark.slow
@covers(BENCH_DEVICE)
def test_bench_device(tmp_path: Path, nothing_left_behind: str) -> None:
    ok(sh(BENCH_DEVICE, tmp_path, timeout=600))
    text = _section(tmp_path, "device")
    row = cells(text, "0.25")
    assert row[1:3] == ["4x", "10 ms"] and row[8] == "4 ms"  # dilation and CFS (quota 1 ms per 4 ms) both ran
    assert text.count("cells within 10% of 1 / fraction") == 2


@pytest.mark.root
@pytest.mark.slow
@covers(BENCH_CAPTURE)
def test_bench_capture(tmp_path: Path, nothing_left_behind: str) -> None:
    ok(sh(BENCH_CAPTURE, tmp_path, timeout=900))
    text = _section(tmp_path, "capture")
    rows = [r for r in text.splitlines() if r.startswith("| 80 Mbit/s |")]
    assert [r.split("|")[2].strip() for r in rows] == ["tcpdump", "scapy"]
    for r in rows:
        c = [x.strip() for x in r.split("|")[1:-1]]
        assert c[3] == c[4] and c[5] == "0" and c[6] == "yes"  # captured = through the interface, no drops
        # tbf: a frame's Ethernet bytes at 80 Mbit/s, less the bucket (two full frames) sent at once
        assert num(c[16]) == pytest.approx((frame_bytes(POOL5_224) - 2 * 1514) * 8 / 80e6 * 1e3, abs=0.002)


# ---------------------------------------------------------------------------------------------------
# the meta-tests: the README and the cases agree


def test_every_readme_command_is_covered_by_exactly_one_case() -> None:
    commands = readme_commands()
    dup = [c for c, k in Counter(commands).items() if k > 1]
    assert not dup, f"a command shown twice in the README: {dup}"
    cases = Counter(c.readme for c in ALL_CASES)
    assert [c for c, k in cases.items() if k > 1] == []
    assert sorted(set(commands) - set(cases)) == [], "README commands no test runs"
    assert sorted(set(cases) - set(commands)) == [], "cases of commands the README no longer shows"
    for c in ALL_CASES:
        assert len(c.tests) == 1, f"{c} is run by {c.tests or 'no test'}"


def _split(opt_value: str) -> tuple[str, str]:
    """``--frames 20`` -> (``--frames``, ``20``); ``count = 4`` -> (``count``, ``4``); a bare value -> ("", it)."""
    parts = opt_value.replace(" = ", " ").split()
    return (parts[0], parts[1]) if len(parts) == 2 else ("", opt_value)


def _smaller(old: str, new: str) -> bool:
    if old.isdigit() and new.isdigit():
        return int(new) < int(old)
    if ".." in old and ".." in new:
        (a, b), (c, d) = (map(int, old.split("..")), map(int, new.split("..")))
        return a <= c <= d <= b and d - c < b - a
    o, n = old.split(","), new.split(",")
    it = iter(o)
    return len(n) < len(o) and all(x in it for x in n)  # an ordered sub-list


_HELP: dict[str, str] = {}


def _default(cmd: str, opt: str) -> str:
    """The default of ``opt`` of the command ``cmd`` (pktchar's CLI or a benchmark script)."""
    words = shlex.split(cmd)
    if words[0] == "pktchar":
        import typer.main

        from pktchar.cli.app import app

        command: Any = typer.main.get_command(app)
        for w in words[1:]:
            if w not in getattr(command, "commands", {}):
                break
            command = command.commands[w]
        (param,) = [p for p in command.params if opt in p.opts]
        return str(param.default)
    script = REPO / next(w for w in words if w.startswith("benchmarks/"))
    if script not in _HELP:
        r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO)
        _HELP[str(script)] = " ".join(r.stdout.split())
    m = re.search(rf"{re.escape(opt)} [A-Z_]+ [^()]*\(default: ([^)]+)\)", _HELP[str(script)])
    assert m, f"{script.name} --help gives no default for {opt}"
    return re.sub(r",\s+", ",", m.group(1))  # --help wraps long lists after a comma


def rewrite_kind(case: Case, old: str, new: str) -> str:
    """Why this rewrite is allowed (or an assertion error): sizes only shrink, outputs go into the
    test's folder, the other host is this one on a free port, eth0 is lo."""
    appended = not re.search(rf"(?<!\S){re.escape(old)}(?!\S)", case.readme) if old else True
    if case is QS_TESTS:
        assert old == "" and new.split()[-1].startswith("tests/test_") and "test_readme" not in new
        assert (REPO / new.split()[-1]).exists()
        return "pytest arguments scripts/test.sh passes on: one quick test file of the suite"
    (o_opt, o_val), (n_opt, n_val) = _split(old), _split(new)
    assert o_opt == n_opt, (old, new)
    if appended:  # the README line leaves the option at its default, which ``old`` must name
        assert o_opt, f"{new!r} appended to {case.readme!r} names no option"
        assert _default(case.readme, o_opt) == o_val, f"{old!r} is not the default of {case.readme!r}"
    if o_opt in SIZE_OPTIONS or (not o_opt and "," in o_val):
        assert _smaller(o_val, n_val), f"{new!r} is not smaller than {old!r}"
        return "size"
    if o_opt in OUTPUT_OPTIONS:
        assert n_val.startswith("{tmp}/"), new
        return "output"
    if (old, new) in {
        ("--port 5201", "--port {port}"),
        ("edge-host:5201", "127.0.0.1:{port}"),
        ("--bind 0.0.0.0", "--bind 127.0.0.1"),
        ("--capture-iface eth0", "--capture-iface lo"),
    }:
        return "host"
    raise AssertionError(f"{case}: {old!r} -> {new!r} is not a size, output, host, port or interface")


def test_every_rewrite_only_shrinks_sizes_or_points_at_this_host() -> None:
    kinds = Counter(rewrite_kind(c, old, new) for c in ALL_CASES for old, new in c.rewrites)
    assert kinds["size"] > 0 and kinds["host"] > 0
    for old, new in TOML_REWRITES:  # the scenario file: counts and frames only
        assert _split(old)[0] in SIZE_OPTIONS and _smaller(_split(old)[1], _split(new)[1])
    assert tomllib.loads(fleet_toml())["frames"] == 5
    # and what runs is the README line with exactly those rewrites
    for c in ALL_CASES:
        cmd = c.command(tmp="/T", port="1")
        words = shlex.split(cmd.replace(str(VENV_BIN) + "/", ".venv/bin/"))
        assert set(words) - set(shlex.split(c.readme)) <= {
            w for _, new in c.rewrites for w in shlex.split(new.replace("{tmp}", "/T").replace("{port}", "1"))
        }
