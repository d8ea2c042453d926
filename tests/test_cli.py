"""The console script as a user runs it: outputs parse, bad input gives one line and a non-zero exit."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli


def test_profile_vgg16_8k_json():
    r = run_cli("profile", "vgg16", "--res", "8k", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["input_shape"] == [1, 3, 4320, 7680]
    assert d["params"] == 138_357_544
    assert d["layers"][1]["bytes"] == 64 * 4320 * 7680 * 4
    assert d["splits"][0]["after"] == "input" and d["splits"][0]["bytes"] == 3 * 4320 * 7680 * 4


def test_profile_table_and_md_and_csv():
    r = run_cli("profile", "resnet18", "--res", "224", "--dtype", "fp16")
    assert r.returncode == 0, r.stderr
    assert "layer1.0.add_" in r.stdout and "split after" in r.stdout
    md = run_cli("profile", "resnet18", "--only", "splits", "--format", "md").stdout
    assert "| # | split after |" in md
    c = run_cli("profile", "resnet18", "--only", "layers", "--format", "csv", "--dtype", "int8").stdout
    rows = list(csv.DictReader(io.StringIO(c)))
    conv1 = next(r for r in rows if r["name"] == "conv1")
    assert int(conv1["bytes"]) == 64 * 112 * 112  # int8: one byte an element


def test_models_lists_local_and_torchvision():
    r = run_cli("models", "alexnet", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["alexnet"]["params"] == 61_100_840
    assert rows["alexnet_caffe"]["params"] == 60_965_224
    assert rows["alexnet_caffe"]["source"] == "models/alexnet_caffe.py"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["profile", "vgg61"], "Did you mean: vgg19, vgg16"),
        (["profile", "vgg16", "--res", "12ax3"], "malformed resolution"),
        (["profile", "vgg16", "--dtype", "fp8"], "unknown dtype"),
        (["profile", "vit_b_16", "--res", "1080p"], "accepts only 224x224"),
        (["profile", "alexnet", "--res", "16x16"], "features."),
        (["profile", "/nonexistent/file.py:make"], "does not exist"),
        (["profile", "vgg16", "--weights", "/nonexistent.pt"], "does not exist"),
    ],
)
def test_bad_input_is_one_clear_line(args, needle):
    r = run_cli(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_broken_factory_file(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def make():\n    return 1 / 0\n")
    r = run_cli("profile", f"{f}:make")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "ZeroDivisionError" in r.stderr


def _help_rows(command: str) -> tuple[dict[str, str], str]:
    """``pktchar COMMAND --help`` as a user sees it (wide enough that no option's row wraps): each row of
    the Options panel by its long option, whitespace collapsed, and the whole text."""
    env = {**os.environ, "COLUMNS": "400", "TERMINAL_WIDTH": "400"}
    exe = Path(sys.executable).with_name("pktchar")
    r = subprocess.run(
        [str(exe), *command.split(), "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    rows: dict[str, str] = {}
    last = None
    for line in r.stdout.splitlines():
        body = line.strip().strip("│").strip()
        m = re.match(r"(?:\*\s+)?(--[\w-]+)", body)
        if m:
            last = m.group(1)
            rows[last] = body
        elif last and line.startswith("│") and body:  # a wrapped row's continuation
            rows[last] += " " + body
        elif not body.startswith("─"):
            last = None
    return {k: " ".join(v.split()) for k, v in rows.items()}, r.stdout


def _commands() -> list[str]:
    import typer.main

    from pktchar.cli.app import app

    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        out += [f"{name} {sub}" for sub in subs] if subs else [name]
    return out


@pytest.mark.parametrize("command", _commands())
def test_help_lists_every_option_the_command_declares(command):
    """Each command's help against its typer declaration: every option has its row (none is hidden), with its
    short and negative forms and its own help text as written (rich markup must not eat any of it), and no
    row names an option the command lacks."""
    import typer.main
    from typer.core import TyperArgument, TyperOption

    from pktchar.cli.app import app

    cmd = typer.main.get_command(app)
    for part in command.split():
        cmd = cmd.commands[part]  # type: ignore[attr-defined]
    rows, text = _help_rows(command)
    declared = [p for p in cmd.params if isinstance(p, TyperOption)]
    assert declared, f"{command} declares no options?"
    assert set(rows) == {p.opts[0] for p in declared} | {"--help"}
    for p in declared:
        row = rows[p.opts[0]]
        for name in [*p.opts, *p.secondary_opts]:
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", row), (
                f"{command}: {name} not in {row!r}"
            )
        assert " ".join((p.help or "").split()) in row, f"{command} {p.opts[0]}: help text not in {row!r}"
    for a in (p for p in cmd.params if isinstance(p, TyperArgument)):
        assert re.search(rf"│\s+(\*\s+)?{re.escape(a.name or '')}\s", text), f"{command}: argument {a.name}"


def test_profile_help_names_every_resolution_preset():
    from pktchar.core.resolution import PRESETS

    rows, _ = _help_rows("profile")
    # the presets parse_resolution knows, and the source paper's future sizes (x10, x100: N x 8K's pixels)
    for name in [*PRESETS, "x10", "x100", "HxW"]:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", rows["--res"]), name
    assert "-r" in rows["--res"].split()


def test_qos_json():
    r = run_cli("qos", "--payload", "270kB", "--latency", "15ms", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["rate_payload_bps"] == pytest.approx(144e6)
    assert d["packets"]["packets"] == 187  # (270,000 + 24) / 1448 -> 186 full + 1
    assert d["fitting_5qi"] == [80]


def test_table_csv_and_tex():
    r = run_cli(
        "table",
        "--models",
        "alexnet,vgg16",
        "--res",
        "224,8k",
        "--compression",
        "0.1",
        "--fps",
        "30",
        "--format",
        "csv",
    )
    assert r.returncode == 0, r.stderr
    rows = {(x["model"], x["res"]): x for x in csv.DictReader(io.StringIO(r.stdout))}
    assert int(rows[("vgg16", "8k")]["max_bytes"]) == 849_346_560  # 64 x 4320 x 7680 x 4 B x 0.1
    tex = run_cli("table", "--models", "vgg16", "--res", "224", "--format", "tex").stdout
    assert "\\toprule" in tex and "\\bottomrule" in tex


def test_profile_split_flow():
    r = run_cli(
        "profile",
        "vgg16",
        "--res",
        "224",
        "--split",
        "features.30",
        "--fps",
        "30",
        "--link",
        "100mbit",
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["coded_bytes"] == 100_352
    assert d["requirements"]["packets"]["packets"] == 70  # (100,352 + 24) / 1448 -> 69 full + 1
    assert d["requirements"]["fits_link"] is True


@pytest.mark.parametrize(
    "args,needle",
    [
        (["profile", "vgg16", "--split", "features.31", "--fps", "30"], "Did you mean"),
        (["profile", "vgg16", "--split", "features.30"], "needs a budget"),
        (["qos", "--payload", "10furlongs", "--latency", "1ms"], "unknown size unit"),
        (["qos", "--payload", "1kB", "--latency", "1ms", "--mtu", "40"], "too small"),
        (["qos", "--payload", "1kB", "--fps", "0"], "must be positive"),
        (["qos", "--payload", "1kB", "--latency", "10ms", "--link", "0mbit"], "must be positive"),
        (["table", "--models", "vgg16,alexnett", "--res", "224"], "alexnet"),
        (["table", "--models", "vgg16", "--res", "224", "--compression", "2"], "(0, 1]"),
        (["table", "--models", "vgg16", "--res", "224", "--coder", "gzip"], "unknown coder"),
    ],
)
def test_bad_flow_input(args, needle):
    r = run_cli(*args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert needle in r.stderr, r.stderr


# ----------------------------------------------------------------------------------------------
# A command is its options, one call into a stage and a view (issue 17)

CLI = Path(__file__).resolve().parent.parent / "pktchar" / "cli"
SHARED = ["--latency", "--fps", "--radio", "--direction", "--reliability", "--proto", "--mtu", "--ipv6",
          "--app-header", "--compression", "--coder", "--measure-res", "--images", "--dtype"]  # fmt: skip


def test_shared_options_are_declared_once():
    """Each flow and coding option is written out in cli/options.py alone; a command that words it its own
    way (fleet's --fps is each device's rate, profile's --dtype names the payload) declares it itself."""
    declared = re.compile(r'typer\.Option\(\s*"(--[\w-]+)"')
    options = declared.findall((CLI / "options.py").read_text())
    assert all(options.count(flag) == 1 for flag in SHARED), options
    elsewhere = sorted(
        (path.name, flag)
        for path in (CLI / "commands").glob("*.py")
        for flag in declared.findall(path.read_text())
        if flag in SHARED
    )
    assert elsewhere == [("fleet.py", "--fps"), ("profile.py", "--dtype")]


def test_a_shared_option_reads_the_same_in_every_command():
    import typer.main
    from typer.core import TyperOption

    from pktchar.cli.app import app

    group = typer.main.get_command(app)
    seen: dict[str, set[tuple[str, ...]]] = {}
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        for p in getattr(cmd, "params", []):
            if isinstance(p, TyperOption) and p.opts[0] in SHARED and (name, p.opts[0]) != ("fleet", "--fps"):
                if (name, p.opts[0]) != ("profile", "--dtype"):
                    seen.setdefault(p.opts[0], set()).add((*p.opts, *p.secondary_opts, p.help or ""))
    assert set(seen) == set(SHARED)
    assert {flag: len(forms) for flag, forms in seen.items()} == dict.fromkeys(SHARED, 1)


def test_cli_modules_are_small_and_simple():
    radon = pytest.importorskip("radon.complexity")
    for path in CLI.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 600, path
        blocks = radon.cc_visit(text)
        for b in [*blocks, *(m for c in blocks for m in getattr(c, "methods", []))]:
            assert b.complexity <= 20, f"{path.name}: {b.name} has complexity {b.complexity}"


def test_flow_of_checks_the_split_and_the_budget_before_measuring():
    from pktchar.core.errors import PktcharError
    from pktchar.model.flow import flow_of
    from pktchar.model.profiler import profile

    p = profile("vgg16", "224")
    calls: list[int] = []

    def measure() -> None:
        calls.append(1)

    with pytest.raises(PktcharError, match="Did you mean"):
        flow_of(p, "features.31", fps=30, measure=measure)
    with pytest.raises(PktcharError) as e:
        flow_of(p, "features.30", measure=measure)
    assert str(e.value) == "split needs a budget: fps 30 and/or latency 10ms"
    assert calls == []
    f = flow_of(p, "features.30", compression=0.5, fps=30, link=100e6, measure=measure)
    assert calls == [1] and f.split is not None and f.requirements is not None
    # features.30 is VGG16's last max-pool: 512 x 7 x 7 fp32 = 100,352 B; half of it coded, 50,176 B,
    # + the 24 B frame header in (50,200 / 1448) -> 35 TCP segments; 50,176 x 8 x 30 = 12.04 Mbit/s
    assert f.split.bytes == 100_352 and f.requirements.payload == 50_176
    assert f.requirements.packets.count == 35
    assert f.requirements.avg_rate_payload == pytest.approx(12_042_240)
    assert flow_of(p).split is None and flow_of(p).requirements is None


def test_report_folder_and_splits():
    from pktchar.core.errors import PktcharError
    from pktchar.core.resolution import parse_resolutions
    from pktchar.present.report import default_folder, parse_splits

    ress = parse_resolutions("224,8k")
    assert default_folder(["vgg16", "my/net.py:make"], ress) == Path("reports/vgg16-my_net.py_make-224-8k")
    names = ["vgg16", "resnet50"]
    assert parse_splits(None, names) is None and parse_splits("features.30", names) == "features.30"
    got = parse_splits("vgg16=features.30, resnet50 = layer1", names)
    assert got == {"vgg16": "features.30", "resnet50": "layer1"}
    with pytest.raises(PktcharError) as e:
        parse_splits("vgg16=features.30,alexnet=features.5", names)
    assert str(e.value) == "split names models not in the report: alexnet"
    with pytest.raises(PktcharError) as e:
        parse_splits("vgg16=features.30,layer1", names)
    assert str(e.value) == "split takes one split or model=split pairs, got 'layer1'"


def test_report_split_errors_name_the_flag(tmp_path):
    r = run_cli(
        "report", "vgg16", "--res", "224", "--split", "alexnet=features.5", "--out", str(tmp_path / "r")
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "pktchar: error: --split names models not in the report: alexnet"


def test_fleet_scenario_file_over_the_flags(tmp_path):
    from pktchar.core.errors import PktcharError
    from pktchar.testbed.fleetrun import config_from, parse_sweep

    cfg = config_from(None, model="vgg16", split="features.30", devices=3, fps=5, latency="20ms",
                      edge_link="50mbit")  # fmt: skip
    assert (cfg.devices, cfg.edge_link, cfg.latency, cfg.groups[0].fps) == (3, 50e6, 0.02, 5)
    f = tmp_path / "fleet.toml"
    f.write_text(
        'edge_link = "40mbit"\nframes = 12\n\n[[group]]\nmodel = "vgg16"\nsplit = "features.30"\ncount = 2\n'
    )
    cfg = config_from(f, edge_link="50mbit", frames=30, latency="20ms", stagger=True)
    # the file's edge_link and frames win; what it leaves out comes from the flags
    assert (cfg.edge_link, cfg.frames, cfg.latency, cfg.stagger, cfg.devices) == (40e6, 12, 0.02, True, 2)
    with pytest.raises(PktcharError) as e:
        config_from(None, model="vgg16")
    assert str(e.value) == "give MODEL and split (or scenario FILE)"
    assert parse_sweep("1..8") == 8 and parse_sweep(" 1 .. 3") == 3
    for bad in ("2..8", "1..", "1..0", "8", "1..x"):
        with pytest.raises(PktcharError, match="takes 1..N"):
            parse_sweep(bad)


@pytest.mark.parametrize(
    "args,line",
    [
        (["fleet", "vgg16"], "pktchar: error: give MODEL and --split (or --scenario FILE)"),
        (
            ["fleet", "vgg16", "--split", "features.30", "--sweep", "2..4"],
            "pktchar: error: --sweep takes 1..N, e.g. 1..8, got '2..4'",
        ),
    ],
)
def test_fleet_errors_name_the_flags(args, line):
    r = run_cli(*args)
    assert r.returncode == 2 and r.stderr.strip() == line


def _scenario(path: Path, groups: int) -> Path:
    """A fleet scenario file of ``groups`` groups of one VGG-16 device each."""
    path.write_text("".join('[[group]]\nmodel = "vgg16"\nsplit = "features.30"\n\n' for _ in range(groups)))
    return path


def test_testbed_errors_name_fields_and_the_commands_their_flags(tmp_path):
    """The testbed's errors name the fields of its configs in backticks (a Python caller reads the field);
    each command that can raise one says its own flag instead. Every case fails before anything runs (no
    root, no model built): the limits are this machine's cores, the fleet's device cap and a folder's
    sub-folders, counted here."""
    from pktchar.core.errors import PktcharError, raw
    from pktchar.testbed import fleetrun
    from pktchar.testbed.trainsync import TrainConfig
    from pktchar.testbed.trainsync.run import check as train_check
    from pktchar.testbed.upload import UploadConfig
    from pktchar.testbed.upload import check as upload_check

    cores = os.cpu_count()
    cap = fleetrun.MAX_DEVICES + 1  # one device more than a fleet may have
    images = tmp_path / "images"
    for c in ("cat", "dog", "fox"):  # an ImageFolder of 3 classes, one sub-folder each
        (images / c).mkdir(parents=True)
    two = _scenario(tmp_path / "two.toml", 2)

    def api(call: Any) -> str:
        """The error's text with its field marks, checked against the text a Python caller reads."""
        with pytest.raises(PktcharError) as e:
            call()
        assert str(e.value) == raw(e.value).replace("`", "")  # the bare field: `device_cpu` -> device_cpu
        return raw(e.value)

    cases = [
        (
            lambda: upload_check(UploadConfig("mobilenet_v1", device_cpu=1000)),
            f"`device_cpu` must be in (0, {cores}] (cores of this machine), got 1000",
            ["upload", "mobilenet_v1", "--device-cpu", "1000"],
            f"--device-cpu must be in (0, {cores}] (cores of this machine), got 1000",
        ),
        (
            lambda: fleetrun.sweep(fleetrun.config_from(None, model="vgg16", split="features.30"), cap),
            f"`sweep` 1..{cap} is more devices than this machine runs ({cap - 1})",
            ["fleet", "vgg16", "--split", "features.30", "--sweep", f"1..{cap}"],
            f"--sweep 1..{cap} is more devices than this machine runs ({cap - 1})",
        ),
        (
            lambda: fleetrun.sweep(fleetrun.config_from(two), 2),
            "`sweep` grows one group of devices: give one model and split, not a mixed scenario",
            ["fleet", "--scenario", str(two), "--sweep", "1..2"],
            "--sweep grows one group of devices: give one model and split, not a mixed scenario",
        ),
        (
            lambda: train_check(TrainConfig(workers=1, classes=2, data=str(images))),
            f"`data` {images} has 3 classes (sub-folders), more than `classes` 2",
            ["train-sync", "--preset", "seed000", "--workers", "1", "--data", str(images), "--classes", "2"],
            f"--data {images} has 3 classes (sub-folders), more than --classes 2",
        ),
    ]
    for call, field_text, argv, flag_text in cases:
        assert api(call) == field_text
        r = run_cli(*argv)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.strip() == f"pktchar: error: {flag_text}"
