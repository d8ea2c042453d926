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
