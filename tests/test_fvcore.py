"""MACs from meta tensors agree with fvcore tracing real tensors (an independent counter)."""

import pytest
import torch
import torchvision.models as tvm

import pktchar


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "alexnet", "mobilenet_v2", "densenet121"])
def test_macs_agree_with_fvcore_at_224(name):
    fvcore_nn = pytest.importorskip("fvcore.nn")
    torch.manual_seed(0)
    model = tvm.get_model(name, weights=None).eval()
    with torch.no_grad():
        counted = fvcore_nn.FlopCountAnalysis(model, torch.randn(1, 3, 224, 224))
        counted.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        # pktchar's MACs are the multiply-accumulates of convolutions, linear layers and matmuls;
        # fvcore by default also counts one op per element of norms and pools: leave those out
        for op in (
            "batch_norm",
            "adaptive_avg_pool2d",
            "group_norm",
            "layer_norm",
            "upsample_nearest2d",
            "upsample_bilinear2d",
        ):
            counted.set_op_handle(f"aten::{op}", lambda inputs, outputs: 0)
        ref = counted.total()  # fvcore's "flops" are multiply-accumulates
    ours = pktchar.profile(model, "224").macs
    assert abs(ours / ref - 1) < 0.01, (ours, ref)
