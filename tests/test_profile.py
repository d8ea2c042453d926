"""Profile figures checked against numbers worked out by hand, by the papers, and by other tools."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import pktchar
from pktchar.core.errors import ModelRejectsInput, PktcharError, UnknownModelError

MB = 10**6


@pytest.fixture(scope="module")
def vgg224():
    return pktchar.profile("vgg16", "224")


def test_vgg16_at_224(vgg224):
    p = vgg224
    assert p.params == 138_357_544  # Simonyan & Zisserman config D, as torchvision builds it
    assert p.input_shape == (1, 3, 224, 224)
    conv1 = p.layer("features.0")
    assert conv1.shape == (1, 64, 224, 224) and conv1.op == "Conv2d"
    assert conv1.bytes == 64 * 224 * 224 * 4
    pool5 = p.layer("features.30")
    assert pool5.op == "MaxPool2d" and pool5.elements == 512 * 7 * 7 == 25_088  # the paper's "~25K"
    # a chain: the cut after pool5 is pool5 itself, ~100 kB in fp32 as seed 002 says
    s = p.split("features.30")
    assert s.bytes == 100_352 and s.shapes == [(1, 512, 7, 7)]
    # full offload = the raw input, fully local = the logits
    assert p.splits[0].after == "input" and p.splits[0].bytes == 3 * 224 * 224 * 4
    assert p.splits[-1].bytes == 1000 * 4
    assert p.splits[-1].device_params == p.params and p.splits[-1].device_macs == p.macs
    # conv MACs by hand: Hout*Wout*Cout*Cin*k*k; VGG-16 is ~15.5 G (3GPP TR 22.874)
    assert conv1.macs == 224 * 224 * 64 * 3 * 9
    assert p.layer("classifier.0").macs == 25_088 * 4096
    assert abs(p.macs / 15.5e9 - 1) < 0.005


def test_chain_cut_sets_equal_layer_outputs(vgg224):
    for layer, split in zip(vgg224.layers, vgg224.splits, strict=True):
        assert split.after == layer.name
        assert split.bytes == layer.bytes


def test_vgg16_at_8k_and_beyond():
    p = pktchar.profile("vgg16", "8k")
    # REFERENCE: VGG-16's first conv output at 8K is 64x4320x7680 fp32 = 8.49 GB
    assert p.layer("features.0").bytes == 64 * 4320 * 7680 * 4 == 8_493_465_600
    x100 = pktchar.profile("vgg16", "x100")
    first = x100.layer("features.0")
    assert first.elements == 64 * 43200 * 76800  # 2.1e11: exact Python ints, no overflow
    assert first.macs == 43200 * 76800 * 64 * 27
    assert x100.params == p.params


@pytest.mark.parametrize(
    "dtype,bytes_per_1000,quant_params",
    [("fp32", 4000, 0), ("fp16", 2000, 0), ("bf16", 2000, 0), ("int8", 1000, 8), ("int4", 500, 8)],
)
def test_dtype_sizes(vgg224, dtype, bytes_per_1000, quant_params):
    p = pktchar.profile("vgg16", "224", dtype=dtype)
    # the 1000 logits; int8/int4 also send their fp32 scale and int32 zero point (8 B)
    assert p.splits[-1].tensor_bytes == bytes_per_1000
    assert p.splits[-1].bytes == bytes_per_1000 + quant_params
    assert p.layer("features.30").bytes == 25_088 * bytes_per_1000 // 1000
    assert p.param_bytes == (138_357_544 * bytes_per_1000 + 999) // 1000


def test_int4_rounds_up_per_tensor():
    class Odd(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :3]

    p = pktchar.profile(Odd(), (1, 1), dtype="int4", in_channels=3)
    assert p.splits[-1].elements == 3 and p.splits[-1].tensor_bytes == 2  # 12 bits -> 2 bytes
    assert p.splits[-1].bytes == 2 + 8  # + fp32 scale and int32 zero point


def test_batch_scales_payloads():
    p = pktchar.profile("resnet18", "224", batch=4)
    assert p.input_shape == (4, 3, 224, 224)
    assert p.splits[0].bytes == 4 * 3 * 224 * 224 * 4


@pytest.mark.parametrize(
    "name,ref_mb",
    [("resnet152", 243), ("resnet50", 103), ("alexnet", 244), ("alexnet_caffe", 244), ("mobilenet_v1", 17)],
)
def test_param_bytes_match_seed001_table(name, ref_mb):
    p = pktchar.profile(name)
    assert abs(p.param_bytes / MB / ref_mb - 1) < 0.02


def test_original_alexnet():
    p = pktchar.profile("alexnet_caffe", "227")
    assert p.layer("features.0").shape == (1, 96, 55, 55)  # (227-11)/4+1 = 55
    assert p.layer("features.4").shape == (1, 256, 27, 27)  # grouped conv2
    assert p.layer("features.2").op == "LocalResponseNorm"
    assert p.layer("features.14").shape == (1, 256, 6, 6)
    # bvlc_alexnet by hand: conv 34,944 + 307,456 + 885,120 + 663,936 + 442,624,
    # fc 37,752,832 + 16,781,312 + 4,097,000
    assert p.params == 60_965_224
    # 3GPP TR 22.874 gives AlexNet 724 M MACs for one image
    assert abs(p.macs / 724e6 - 1) < 0.002


def _mobilenet_v1_params() -> int:
    # from the paper's Table 1: conv 3x3x3x32, then per block dw 3x3xCin and pw CinxCout, BN (2 per
    # channel) after every conv, fc 1024x1000 + bias
    blocks = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)]
    blocks += [(512, 512)] * 5 + [(512, 1024), (1024, 1024)]
    n = 3 * 3 * 3 * 32 + 2 * 32
    for cin, cout in blocks:
        n += 9 * cin + 2 * cin + cin * cout + 2 * cout
    return n + 1024 * 1000 + 1000


def test_mobilenet_v1():
    p = pktchar.profile("mobilenet_v1", "224")
    assert p.params == _mobilenet_v1_params() == 4_231_976
    assert p.layer("features.13.1.0").shape == (1, 1024, 7, 7)
    # Howard et al. 2017, Table 2: 569 million mult-adds
    assert abs(p.macs / 569e6 - 1) < 0.002


def test_resnet_bottleneck_cut_carries_identity():
    p = pktchar.profile("resnet50", "224")
    s = p.split("layer1.0.conv2")
    # the block input (maxpool output, kept for the downsample branch) and the running branch
    assert sorted(t.producer for t in s.tensors) == ["layer1.0.conv2", "maxpool"]
    assert s.bytes == 2 * 64 * 56 * 56 * 4
    # inside layer1.1: the identity (output of layer1.0) travels with the branch
    s = p.split("layer1.1.conv3")
    assert sorted(t.shape for t in s.tensors) == [(1, 256, 56, 56), (1, 256, 56, 56)]
    # right after the residual add only one tensor crosses
    assert len(p.split("layer1.1.add_").tensors) == 1
    assert p.layer("layer1.1.add_").kind == "function"
    assert p.layer("layer1.0.relu#3").op == "ReLU"  # the shared ReLU, third call


def test_functional_ops_are_layers():
    d = pktchar.profile("densenet121", "224")
    cats = [x for x in d.layers if x.op == "cat"]
    assert cats, "torch.cat in DenseNet's forward must show as layers"
    i = pktchar.profile("inception_v3", "299")
    assert any(x.op == "cat" for x in i.layers)
    assert i.layer("Mixed_5b.cat").shape == (1, 256, 35, 35)


# torchvision's published figures for its ImageNet weights ("GFLOPS" there are MACs)
TV_PUBLISHED = {
    "alexnet": (0.714, 61_100_840),
    "resnet50": (4.089, 25_557_032),
    "mobilenet_v2": (0.301, 3_504_872),
    "vit_b_16": (17.564, 86_567_656),
    "regnet_x_400mf": (0.414, 5_495_976),
    "densenet121": (2.834, 7_978_856),
    "swin_t": (4.491, 28_288_354),
    "convnext_tiny": (4.456, 28_589_128),
    "efficientnet_b0": (0.386, 5_288_548),
    "shufflenet_v2_x1_0": (0.145, 2_278_604),
    "squeezenet1_0": (0.819, 1_248_424),
}


@pytest.mark.parametrize("name", sorted(TV_PUBLISHED))
def test_against_torchvision_published_figures(name):
    gmacs, params = TV_PUBLISHED[name]
    p = pktchar.profile(name)
    assert p.params == params
    assert abs(p.macs / 1e9 - gmacs) <= 0.0015 + 0.002 * gmacs


def test_googlenet_aux_heads_are_params_not_traffic():
    p = pktchar.profile("googlenet")
    assert p.params - p.unused_params == 6_624_904  # torchvision's published count, without aux heads
    assert p.notes


def test_regnet_builder_that_computes_while_constructing():
    p = pktchar.profile("regnet_y_400mf", "1080p")
    assert p.params == 4_344_144
    assert p.input_shape == (1, 3, 1080, 1920)


def test_caller_model_is_not_changed():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4) if False else nn.Identity()
    )
    model.train()
    calls = []
    model[0].register_forward_hook(lambda *a: calls.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p = pktchar.profile(model, "32")
    assert p.layer("0").shape == (1, 8, 30, 30)
    assert model.training and all(m.training for m in model.modules())
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(model[0]._forward_hooks) == 1 and not calls
    assert not model[0]._forward_pre_hooks
    model(torch.zeros(1, 3, 32, 32))  # still a working model
    assert calls == [1]


def test_reused_module_counts_params_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)

        def forward(self, x):
            x = x.flatten(1)[:, :16]
            return self.fc(self.fc(x))

    p = pktchar.profile(Twice(), (4, 4), in_channels=1)
    fcs = [x for x in p.layers if x.op == "Linear"]
    assert [x.name for x in fcs] == ["fc", "fc#2"]
    assert sum(x.params for x in fcs) == p.params == 16 * 16 + 16
    assert sum(x.macs for x in fcs) == 2 * 16 * 16


def test_constant_branches_do_not_cross_the_network():
    p = pktchar.profile("vit_b_16", "224")
    # the class token is expanded from a parameter: the edge can make it, it is not payload
    s = p.split("conv_proj")
    assert [t.shape for t in s.tensors] == [(1, 768, 14, 14)]


def test_json_and_frames(vgg224):
    d = json.loads(vgg224.to_json())
    for k in ("model", "input_shape", "dtype", "params", "param_bytes", "macs", "layers", "splits"):
        assert k in d
    for k in ("name", "op", "shape", "elements", "bytes", "params", "macs"):
        assert k in d["layers"][1]
    for k in ("after", "tensors", "bytes", "device_macs", "device_params"):
        assert k in d["splits"][1]
    assert isinstance(d["macs"], int) and d["macs"] == vgg224.macs
    lf, sf = vgg224.layers_frame(), vgg224.splits_frame()
    assert len(lf) == len(vgg224.layers) and int(lf["bytes"].sum()) == sum(x.bytes for x in vgg224.layers)
    assert int(sf.loc[0, "bytes"]) == 602_112


def test_vit_rejects_other_resolutions():
    with pytest.raises(ModelRejectsInput) as e:
        pktchar.profile("vit_b_16", "720p")
    msg = str(e.value)
    assert "vit_b_16" in msg and "VisionTransformer" in msg and "224x224" in msg


def test_too_small_names_layer_and_minimum():
    with pytest.raises(ModelRejectsInput) as e:
        pktchar.profile("alexnet", "30")
    msg = str(e.value)
    assert "features.5" in msg and "MaxPool2d" in msg
    # by hand: conv1 (s4,k11,p2) -> pool(3,2) -> conv2 (p2) -> pool(3,2) needs >= 3 -> 63x63 is the least
    assert "63x63" in msg


def test_unknown_model_suggests():
    with pytest.raises(UnknownModelError) as e:
        pktchar.profile("vgg61")
    assert "vgg16" in str(e.value)
    with pytest.raises(UnknownModelError) as e:
        pktchar.profile("resnt50")
    assert "resnet50" in str(e.value)


def test_user_factory_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text(
        "from torch import nn\n"
        "def tiny():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n"
    )
    p = pktchar.profile(f"{f}:tiny", "64")
    assert p.params == 3 * 4 * 9 + 4 + 4 * 2 + 2
    assert p.layer("0").shape == (1, 4, 64, 64)
    with pytest.raises(UnknownModelError, match="tiny"):
        pktchar.profile(f"{f}:tinny")
    bad = tmp_path / "broken.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(PktcharError, match=r"broken\.py line 1: ModuleNotFoundError"):
        pktchar.profile(f"{bad}:x")


def test_weights_file_checked_against_model(tmp_path):
    from torchvision.models import resnet18

    ck = tmp_path / "r18.pt"
    torch.save(resnet18(num_classes=10).state_dict(), ck)
    p = pktchar.profile("resnet18", "224", num_classes=10, weights=str(ck))
    assert p.splits[-1].bytes == 10 * 4
    with pytest.raises(PktcharError, match="does not fit"):
        pktchar.profile("resnet18", "224", weights=str(ck))  # 1000 classes vs a 10-class checkpoint
