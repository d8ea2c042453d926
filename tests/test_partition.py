"""Partitions for incremental upload: chain points, packing, building, and the partitioning
algorithms on hand-worked chains and branches."""

from __future__ import annotations

import io
import json
import os
import struct

import pytest
import torch
from torch import nn

from pktchar.core.errors import PktcharError
from pktchar.model import partition as P
from pktchar.testbed.upload import UploadConfig, check, prepare


class Block(nn.Module):
    """x -> conv1 -> relu -> conv2 -> (+ x) -> relu: a residual branch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), Block(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)
    ).eval()


def test_chain_points_skip_the_inside_of_a_branch():
    ch = P.chain(_net(), "toy")
    # inside the block the identity and the branch are both live: no point there; after the add
    # (one tensor) and after the final relu there is
    names = [p.name for p in ch.points]
    assert names == ["input", "0", "add", "1.relu", "2", "3"]
    assert ch.units == 5


def test_partitions_compose_to_the_model():
    net = _net()
    ch = P.chain(net, "toy")
    x = torch.randn(1, 3, 8, 8)
    y = x
    for a, b in [(0, 2), (2, 3), (3, 5)]:
        y = ch.module(a, b)(y)
    assert torch.equal(y, net(x))


def test_pack_is_the_description_and_the_serialized_state_and_builds_for_real():
    net = _net()
    ch = P.chain(net, "toy")
    blob = P.pack(ch, 0, 2, {"index": 0})
    desc, state = P.unpack(blob)
    # what is sent: a u32 length, the JSON description, and the weights of the first conv and the block
    (n,) = struct.unpack("!I", blob[:4])
    assert json.loads(blob[4 : 4 + n]) == desc and len(blob) == 4 + n + len(state)
    sent = torch.load(io.BytesIO(state), weights_only=True)
    mine = {k: v for k, v in net.state_dict().items() if k.startswith(("0.", "1."))}
    assert set(sent) == set(mine) and all(torch.equal(sent[k], mine[k]) for k in mine)
    # 4x3x3x3 + 4 + 2 x (4x4x3x3 + 4) = 108 + 4 + 296 = 408 fp32 values
    assert sum(v.numel() for v in sent.values()) == 408
    assert desc["start"] == 0 and desc["end"] == 2 and desc["index"] == 0
    skeleton = P.chain(nn.Sequential(*_net()).to("meta"), "toy")
    part = P.build(skeleton, 0, 2, [state], (1, 3, 8, 8))
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(part(x), ch.module(0, 2)(x))


def _costs() -> P.Costs:
    # three units; the device is 4x slower than the edge; input 1 MB (0.1 s at 80 Mbit/s),
    # unit outputs 2 MB, 0.5 MB, 4 kB
    return P.Costs(
        device_s=(0.4, 0.4, 0.4), edge_s=(0.1, 0.1, 0.1), upload_bytes=(1000, 5000, 100_000),
        point_bytes=(1_000_000, 2_000_000, 500_000, 4_000),
    )  # fmt: skip


def test_query_times_by_hand():
    c, r = _costs(), 80e6
    assert c.query_time(0, r) == pytest.approx(1.2)  # all local: 3 x 0.4
    # j=1: up 1 MB + down 2 MB = 0.3 s, edge 0.1, device 0.8 -> 1.2 (no gain)
    assert c.query_time(1, r) == pytest.approx(1.2)
    # j=2: 0.1 + 0.05 + 0.2 + 0.4 = 0.75;  j=3: 0.1 + 0.0004 + 0.3 = 0.4004
    assert c.query_time(2, r) == pytest.approx(0.75)
    assert c.query_time(3, r) == pytest.approx(0.4004)


def test_auto_cuts_at_every_new_minimum():
    # T = 1.2, 1.2, 0.75, 0.4004: unit 1 alone gains nothing, so it joins unit 2's partition
    assert P.plan_auto(_costs(), 80e6) == [2, 3]


def test_auto_keeps_points_the_convex_hull_skips():
    # upload bytes 0, 1000, 6000, 106000 against T 1.2, 1.2, 0.75, 0.4004: the hull from (0, 1.2) runs to
    # (6000, 0.75) (slope -7.5e-5) and on to (106000, 0.4004) (slope -3.5e-6): both kept
    assert P.plan_hull(_costs(), 80e6) == [2, 3]
    # a middle point above the chord is cut by the hull, kept by auto (it still speeds queries up)
    c = P.Costs((0.4, 0.4, 0.4), (0.1, 0.1, 0.1), (1000, 1000, 1000), (1_000_000, 500_000, 500_000, 4_000))
    # T(1) = 0.15 + 0.1 + 0.8 = 1.05, T(2) = 0.15 + 0.2 + 0.4 = 0.75, T(3) = 0.1004 + 0.3 = 0.4004
    assert P.plan_auto(c, 80e6) == [1, 2, 3]
    # hull over (0,1.2), (1000,1.05), (2000,0.75), (3000,0.4004): the slopes fall -1.5e-4, -3e-4, -3.5e-4,
    # so (1000, 1.05) and (2000, 0.75) lie above the chord: the hull keeps only the end
    assert P.plan_hull(c, 80e6) == [3]


def test_equal_partitions():
    assert P.plan_equal([10, 10, 10, 10], 2) == [2, 4]
    assert P.plan_equal([100, 1, 1, 1], 3) == [1, 2, 4]
    with pytest.raises(PktcharError, match="1..4 partitions"):
        P.plan_equal([1, 1, 1, 1], 5)


def test_named_partitions_check_names_and_order():
    ch = P.chain(_net(), "toy")
    assert P.plan_named(ch, ["add", "2"]) == [2, 4, 5]
    with pytest.raises(PktcharError, match="(?i)not a partition point.*did you mean"):
        P.plan_named(ch, ["ad"])
    with pytest.raises(PktcharError, match="in model order"):
        P.plan_named(ch, ["2", "add"])


def test_bad_upload_arguments_are_one_line():
    with pytest.raises(PktcharError, match=r"^device_cpu must be in \(0, "):
        check(UploadConfig("mobilenet_v1", device_cpu=0))
    with pytest.raises(PktcharError, match=rf"^device_cpu must be in \(0, {os.cpu_count()}\] .*, got 1000$"):
        check(UploadConfig("mobilenet_v1", device_cpu=1000))
    with pytest.raises(PktcharError, match="^create must be sequential, parallel or both"):
        check(UploadConfig("mobilenet_v1", create="fast"))
    with pytest.raises(PktcharError, match="not a partition point of mobilenet_v1"):
        prepare(UploadConfig("mobilenet_v1", partitions="features.3,nosuchlayer"))
    with pytest.raises(PktcharError, match="in model order"):
        prepare(UploadConfig("mobilenet_v1", partitions="features.5.0.0,features.3.0.0"))
    # ResNet-152's 241 MB of weights, about five times over, against a 1 GB limit
    with pytest.raises(PktcharError, match="needs about 1.2 GB"):
        prepare(UploadConfig("resnet152", max_memory_gb=1.0))
