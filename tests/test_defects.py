"""Defects a new user found: each test failed before its fix (figures worked out by hand)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import pktchar
from pktchar.core.errors import PktcharError
from pktchar.model.codec import Coding, quantize
from pktchar.model.table import packet_table

from conftest import run_cli

# ----------------------------------------------------------------------------------------------
# 1. A parameter first read through a non-tensor op (size()) was credited to that op, which is
#    then dropped, and reported as unused.


class UsesSize(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(27, 16)  # 27 x 16 weights + 16 biases = 448 parameters
        self.w = nn.Parameter(torch.randn(8, 16))  # 8 x 16 = 128 parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.w.size(0)  # reads w but returns an int: no layer
        return self.lin(x) @ self.w.t()[:, :n]


def test_parameter_read_by_size_is_credited_where_it_is_used_as_a_tensor():
    p = pktchar.profile(UsesSize(), (27, 27))  # input 1x3x27x27; lin sees the last dim, 27
    # by hand: 448 (Linear(27, 16)) + 128 (w) = 576, all of them needed by the forward pass
    assert p.params == 576
    assert p.unused_params == 0 and not any("not used" in n for n in p.notes)
    last = p.splits[-1]
    assert last.device_params == 576
    assert p.layer("lin").params == 448
    assert p.layer("t").params == 128  # w.t() is where w is first used as a tensor
    assert last.shapes == [(1, 3, 27, 8)]  # (1,3,27,16) @ (16,8)


def test_parameter_read_only_by_size_is_unused():
    class OnlySize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(5, 4))  # 20 parameters, only its shape is read
            self.flat = nn.Flatten()  # a child, so the model itself is not one leaf layer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.flat(x)[:, : self.w.size(0)]

    p = pktchar.profile(OnlySize(), (2, 2))
    assert p.params == 20 and p.unused_params == 20 and p.splits[-1].device_params == 0
    assert p.splits[-1].shapes == [(1, 5)]


# ----------------------------------------------------------------------------------------------
# 2. One figure for the bytes a quantised split sends.
#
# ResNet-50 at 224, after layer1.0.conv2, two tensors cross the cut: conv2's output and the
# stem's maxpool output, which the block's downsample branch (the residual) reads after the cut.
# Each is 1x64x56x56 = 200,704 elements. At int8 each sends 200,704 B of values plus an fp32
# scale and an int32 zero point (8 B): 200,712 B; the split sends 2 x 200,712 = 401,424 B, of
# which 2 x 200,704 = 401,408 B are values. At fp32: 2 x 200,704 x 4 = 1,605,632 B, no extra.

INT8_SENT, INT8_VALUES = 401_424, 401_408


@pytest.fixture(scope="module")
def r50_int8():
    return pktchar.profile("resnet50", "224", dtype="int8")


def test_int8_split_bytes_are_one_figure(r50_int8):
    s = r50_int8.split("layer1.0.conv2")
    assert sorted(t.producer for t in s.tensors) == ["layer1.0.conv2", "maxpool"]
    assert all(t.elements == 200_704 and t.bytes == 200_712 and t.tensor_bytes == 200_704 for t in s.tensors)
    assert (s.bytes, s.tensor_bytes) == (INT8_SENT, INT8_VALUES)
    assert Coding("int8").split_bytes(s) == INT8_SENT
    assert Coding("int8", compression=0.5).split_bytes(s) == INT8_SENT // 2
    d = next(x for x in r50_int8.to_dict()["splits"] if x["after"] == "layer1.0.conv2")
    assert (d["bytes"], d["tensor_bytes"]) == (INT8_SENT, INT8_VALUES)
    assert [t["bytes"] for t in d["tensors"]] == [200_712, 200_712]
    fp32 = pktchar.profile("resnet50", "224").split("layer1.0.conv2")
    assert fp32.bytes == fp32.tensor_bytes == Coding("fp32").split_bytes(fp32) == 1_605_632


def test_int8_sent_bytes_are_what_quantize_writes():
    t = torch.randn(1, 64, 56, 56)
    assert len(quantize(t, "int8")) == 200_712  # the bytes a replay sends for one cut tensor
    assert len(quantize(t, "int4")) == 100_352 + 8


def test_int8_table_uses_the_split_bytes(r50_int8):
    cell = packet_table(["resnet50"], ["224"], dtype="int8", profiles={("resnet50", "224"): r50_int8}).cell(
        "resnet50", "224"
    )
    assert cell.min_bytes == min(s.bytes for s in r50_int8.splits)
    assert cell.max_bytes == max(s.bytes for s in r50_int8.splits)
    # smallest: the 1000 logits, 1000 B + 8 B. Largest: after layer1.0.downsample.0 the block's
    # bn3 output and the downsample conv's output cross, each 1x256x56x56 = 802,816 values + 8 B
    assert (cell.min_bytes, cell.min_split) == (1000 + 8, "fc")
    assert (cell.max_bytes, cell.max_split) == (2 * (802_816 + 8), "layer1.0.downsample.0")


def test_int8_flow_json_through_the_cli():
    r = run_cli(
        "profile",
        "resnet50",
        "--dtype",
        "int8",
        "--split",
        "layer1.0.conv2",
        "--fps",
        "30",
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["raw_bytes"] == d["coded_bytes"] == d["requirements"]["payload"] == INT8_SENT
    assert sum(t["bytes"] for t in d["tensors"]) == INT8_SENT


def test_int8_replay_frames_are_the_split_bytes():
    from pktchar.testbed.replay import ReplayConfig, payloads

    # at the measure resolution the frames are the real quantised tensors, sized as predicted
    sizes, data, _, p = payloads(ReplayConfig("resnet50", "layer1.0.conv2", dtype="int8", frames=1))
    assert sizes == [INT8_SENT] and len(data) == INT8_SENT
    assert p.split("layer1.0.conv2").bytes == INT8_SENT


# ----------------------------------------------------------------------------------------------
# 3. Messages: one line, the cause and an example, no traceback.


def _one_line_error(*args: str) -> str:
    r = run_cli(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pktchar: error: ")
    return lines[0]


@pytest.mark.parametrize("link", ["0", "0mbit", "-5mbit"])
def test_rate_must_be_positive(link):
    line = _one_line_error("qos", "--payload", "100kB", "--fps", "30", "--link", link)
    assert line == f"pktchar: error: a rate must be positive, got {link!r} (e.g. 100mbit, 1gbit, 80Mbit/s)"


def test_rate_without_unit():
    line = _one_line_error("qos", "--payload", "100kB", "--fps", "30", "--link", "100")
    assert "'100' has no unit" in line and "e.g. 100mbit" in line


@pytest.mark.parametrize("latency", ["0", "0ms", "-10ms"])
def test_latency_must_be_positive(latency):
    line = _one_line_error("qos", "--payload", "100kB", "--latency", latency)
    assert line == f"pktchar: error: a latency must be positive, got {latency!r} (e.g. 10ms, 0.5s, 250us)"


def test_malformed_size_gives_an_example():
    line = _one_line_error("qos", "--payload", "abc", "--fps", "30")
    assert line == (
        "pktchar: error: malformed size 'abc': expected a number of bytes with an optional unit, "
        "e.g. 270kB, 1.5MB, 1000"
    )


def test_factory_file_with_a_syntax_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\ndef make(:\n    pass\n")  # line 3
    line = _one_line_error("profile", f"{bad}:make", "--res", "224")
    assert line == f"pktchar: error: {bad} line 3: SyntaxError: invalid syntax"
    assert "frozen" not in line and "importlib" not in line


def test_factory_file_raising_while_imported(tmp_path):
    f = tmp_path / "raises.py"
    # line 3 calls into the json module, which raises from its own source (decoder.py)
    f.write_text('import json\n\nCONFIG = json.loads("{")\n\ndef make():\n    pass\n')
    line = _one_line_error("profile", f"{f}:make", "--res", "224")
    assert line.startswith(f"pktchar: error: {f} line 3: JSONDecodeError: Expecting property name")
    assert "decoder.py" not in line


# ----------------------------------------------------------------------------------------------
# Unknown split names


def test_unknown_split_suggests_close_names():
    p = pktchar.profile("resnet18", "224")
    with pytest.raises(
        PktcharError, match=r"no split point 'layer1\.0\.conv'\. Did you mean: layer1\.0\.conv2"
    ):
        p.split("layer1.0.conv")
    with pytest.raises(PktcharError, match=r"Did you mean: avgpool"):
        p.split("avgpol")
    # nothing close: say what split points are called and how to list them. ResNet-18 has 70:
    # input, conv1, bn1, relu, maxpool (5); 8 BasicBlocks of conv1, bn1, relu, conv2, bn2, += , relu
    # (56) and 3 downsample conv + bn (6); avgpool, flatten, fc (3)
    with pytest.raises(
        PktcharError, match=r"named after layers \(input, conv1, bn1, \.\.\., fc\).*lists all 70"
    ):
        p.split("nope")
