"""Coded payloads and the seed-style table, recomputed independently from layer shapes."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch
import torchvision.models as tvm

import pktchar
from pktchar.core.errors import PktcharError
from pktchar.model import codec
from pktchar.model.codec import Coding, coded_size, quantize, tensor_bytes
from pktchar.model.table import packet_table


def test_dtype_overheads():
    assert tensor_bytes(1000, "fp32") == 4000
    assert tensor_bytes(1000, "int8") == 1000 + 8  # scale + zero point
    assert tensor_bytes(1001, "int4") == 501 + 8


def test_quantize_packs_int4():
    t = torch.tensor([0.0, 1.0, 0.4])
    # int8/int4 start with the fp32 scale and int32 zero point (8 B), then the values
    assert len(quantize(t, "int4")) == 8 + 2  # 3 x 4 bits -> 2 bytes
    assert len(quantize(t, "int8")) == 8 + 3 and len(quantize(t, "bf16")) == 6
    # range [0, 1] over 15 int4 levels: scale 1/15, zero point 0; 0.4 / (1/15) = 6
    scale, zp = struct.unpack("<fi", quantize(t, "int4")[:8])
    assert scale == pytest.approx(1 / 15) and zp == 0
    assert quantize(t, "int4")[8:] == bytes([0x0F, 0x60])  # nibbles (0, 15) then (6, pad 0)


def test_sparse_bitmap_size():
    t = torch.zeros(100)
    t[:30] = 1.5
    assert coded_size(t, "fp32", "sparse") == 13 + 30 * 4  # ceil(100/8) bitmap + non-zeros


def test_sparse_bytes_sent_match_the_sparse_size():
    t = torch.zeros(101)
    t[::3] = torch.arange(1, 35, dtype=torch.float32)  # 34 non-zeros
    for dtype in ("fp32", "fp16", "int8", "int4"):
        sent = codec.encode(t, dtype, "sparse")
        assert len(sent) == coded_size(t, dtype, "sparse")
    assert len(codec.encode(t, "fp32", "sparse")) == 13 + 34 * 4  # ceil(101/8) + 34 fp32 values
    assert len(codec.encode(t, "int4", "sparse")) == 13 + 8 + 17  # + scale, zero point, 34 x 4 bits


def test_general_coders_behave():
    zeros = torch.zeros(100_000)
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(100_000).astype(np.float32))
    for c in ("zstd", "lz4"):
        assert coded_size(zeros, "fp32", c) < 0.01 * 400_000
        assert coded_size(noise, "fp32", c) > 0.8 * 400_000  # Gaussian mantissas barely compress


def test_parametric_compression_and_errors():
    p = pktchar.profile("vgg16", "224")
    s = p.split("features.30")
    assert Coding("fp32", compression=0.1).split_bytes(s) == math.ceil(100_352 * 0.1)
    assert Coding("int8").split_bytes(s) == 25_088 + 8
    with pytest.raises(PktcharError):
        Coding("fp32", compression=1.5)
    with pytest.raises(PktcharError):
        codec.check_coder("gzip")


def test_measured_sparse_ratio_matches_real_relu_zeros():
    m = codec.measure("resnet18", "sparse", measure_res="224", limit=2)
    assert m.n_images == 2 and "random initialisation" in m.weights and "grace_hopper" in m.images
    # independently: the same random init and images, the stem ReLU's zeros counted by a forward hook
    torch.manual_seed(0)
    net = tvm.resnet18(weights=None).eval()
    batch, _ = codec.load_images(None, (224, 224), 2)
    seen = []
    net.relu.register_forward_hook(lambda mod, i, o: seen.append(o.clone()))
    ratios = []
    with torch.no_grad():
        for k in range(2):
            seen.clear()
            net(batch[k : k + 1])
            stem = seen[0]  # the first call of the shared ReLU is the stem's
            n, nnz = stem.numel(), int((stem != 0).sum())
            ratios.append((math.ceil(n / 8) + 4 * nnz) / (4 * n))
    assert m.ratio("relu") == pytest.approx(sum(ratios) / 2, rel=1e-9)
    # applied to the exact size at another resolution
    p = pktchar.profile("resnet18", "1080p")
    s = p.split("relu")
    assert Coding("fp32", measured=m).split_bytes(s) == math.ceil(64 * 540 * 960 * 4 * m.ratio("relu"))


def test_measure_with_weights_file(tmp_path):
    torch.manual_seed(123)
    ck = tmp_path / "r18.pt"
    torch.save({"state_dict": tvm.resnet18(weights=None).state_dict()}, ck)
    m = codec.measure("resnet18", "zstd", dtype="int8", weights=str(ck), limit=1)
    assert m.weights == str(ck) and 0 < m.overall < 1.2


def test_table_cells_from_layer_shapes():
    t = packet_table(["alexnet", "vgg16", "resnet50"], ["224", "8k"], compression=0.1, latency=0.010)
    # by hand: VGG-16's largest cut is conv1_1's output, the smallest the 1000 logits
    c = t.cell("vgg16", "8k")
    assert (c.max_split, c.max_bytes) == ("features.0", math.ceil(64 * 4320 * 7680 * 4 * 0.1))
    assert (c.min_split, c.min_bytes) == ("classifier.6", 400)
    # AlexNet (torchvision): conv1 64 ch, k11 s4 p2: (224 + 4 - 11) // 4 + 1 = 55
    a = t.cell("alexnet", "224")
    assert (a.max_split, a.max_bytes) == ("features.0", math.ceil(64 * 55 * 55 * 4 * 0.1))
    # ResNet-50: inside layer1.0, the downsampled identity and the branch, both 256x56x56, cross together
    r = t.cell("resnet50", "224")
    assert r.max_split == "layer1.0.downsample.0" and r.max_bytes == math.ceil(2 * 256 * 56 * 56 * 4 * 0.1)
    # 400 B logits: 476 IP bytes fit 87's 500 B MDBV; 642 kB fits only 80 (10 ms, no MDBV)
    assert r.min_req is not None and r.min_req.fitting == [80, 83, 86, 87, 88]
    assert r.max_req is not None and r.max_req.fitting == [80]
    # the paper's 224 cells assume fp32 without compression: VGG's exact max is 128x the paper's 100 kB
    v = t.cell("vgg16", "224")
    assert v.paper is not None and v.paper_exact == (4000, 64 * 224 * 224 * 4)
    assert "x128" in v.comparison()
