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
