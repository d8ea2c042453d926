"""The console script as a user runs it: outputs parse, bad input gives one line and a non-zero exit."""

from __future__ import annotations

import csv
import io
import json

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


def test_help():
    r = run_cli("profile", "--help")
    assert r.returncode == 0 and "--res" in r.stdout and "x100" in r.stdout


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
