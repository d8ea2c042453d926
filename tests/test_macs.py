"""pktchar.model.macs: the one registry of MAC formulas, shape-only layers and layers without MACs, and a
user's registrations seen in profiles (MACs worked out by hand for each case)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

import pktchar
from pktchar.core.errors import ModelRejectsInput, PktcharError
from pktchar.model import macs


class PointMix(nn.Module):
    """A 1x1 convolution written as a broadcast multiply and a sum: no operator of it has a MAC formula."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(cout, cin, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) * self.w).sum(2)  # (N, Cout, H, W)


class MaxNorm(nn.Module):
    """Divides by the largest magnitude, read as a Python number: a meta tensor has none."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.abs().max().item()


class Cum(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=3)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = PointMix(3, 8)
        self.cum = Cum()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cum(self.mix(x))
        return torch.cumsum(y, dim=2)  # a call outside leaves: recorded as a layer "cumsum"


@pytest.fixture
def registry() -> Iterator[None]:
    yield
    for op in (PointMix, MaxNorm, Cum, nn.Conv2d, torch.ops.aten.cumsum):
        macs.unregister(op)


def test_the_stock_entries_are_one_table() -> None:
    conv, relu, bn, pool = (macs.LEAVES[t] for t in (nn.Conv2d, nn.ReLU, nn.BatchNorm2d, nn.MaxPool2d))
    assert conv.formula is not None and conv.forward is None  # MACs from shapes, real forward
    assert relu.forward is not None and bn.forward is not None and relu.formula is None  # shape-only
    assert pool == macs.Leaf()  # no MACs, real forward
    assert macs.may_hold_macs("matmul") and macs.may_hold_macs("scaled_dot_product_attention")
    assert not macs.may_hold_macs("cumsum") and not macs.may_hold_macs("batch_norm")


def test_a_module_formula_gives_its_macs(registry: None) -> None:
    before = pktchar.profile(Net(), (4, 5))
    assert before.layer("mix").macs == 0  # mul and sum: no formula anywhere
    # a 1x1 convolution: out elements x Cin = (8 x 4 x 5) x 3
    macs.register(PointMix, formula=lambda m, out: out.numel() * m.w.shape[1])
    p = pktchar.profile(Net(), (4, 5))
    assert p.layer("mix").macs == 8 * 4 * 5 * 3 == 480
    assert p.macs == 480 and p.split("mix").device_macs == 480
    assert p.to_dict()["layers"][1]["macs"] == 480
    macs.unregister(PointMix)
    assert pktchar.profile(Net(), (4, 5)).layer("mix").macs == 0


def test_an_operator_formula_counts_in_leaves_and_outside(registry: None) -> None:
    assert pktchar.profile(Net(), (4, 5)).macs == 0
    # a prefix sum, counted here as one MAC per output element
    macs.register(torch.ops.aten.cumsum, formula=lambda args, kwargs, out: out.numel())
    p = pktchar.profile(Net(), (4, 5))
    assert p.layer("cum").macs == 8 * 4 * 5  # inside a leaf pktchar has no entry for
    assert p.layer("cumsum").macs == 8 * 4 * 5  # called outside leaves, by its name
    assert p.macs == 320
    macs.unregister(torch.ops.aten.cumsum.default)  # an overload names its operator too
    assert pktchar.profile(Net(), (4, 5)).macs == 0


def test_shape_only_lets_a_value_reading_layer_be_profiled(registry: None) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), MaxNorm(), nn.Flatten())
    with pytest.raises(ModelRejectsInput, match="needs tensor values"):
        pktchar.profile(model, (10, 10))
    macs.register(MaxNorm, shape_only=True)
    p = pktchar.profile(model, (10, 10))
    assert p.layer("1").shape == (1, 4, 8, 8) and p.layer("1").macs == 0
    assert p.layer("2").shape == (1, 256)
    assert p.macs == 4 * 8 * 8 * 3 * 9  # the convolution's alone: Cout x Hout x Wout x Cin x k x k
    assert "forward" not in vars(model[1])  # the caller's module keeps its forward
    assert model(torch.ones(1, 3, 10, 10)).shape == (1, 256)


def test_a_registered_layer_without_formula_has_no_macs(registry: None) -> None:
    class Mat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ x.transpose(-1, -2)

    model = nn.Sequential(Mat())
    assert pktchar.profile(model, (4, 6)).macs == 3 * 4 * 4 * 6  # bmm-like: 3 channels of 4x6 @ 6x4
    macs.register(Mat)
    try:
        assert pktchar.profile(model, (4, 6)).macs == 0  # declared without MACs: the counter stays off
    finally:
        macs.unregister(Mat)
    assert Mat not in macs.LEAVES


def test_overriding_a_stock_entry_and_going_back(registry: None) -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 1))
    assert pktchar.profile(model, (2, 2)).macs == 2 * 2 * 2 * 3
    macs.register(nn.Conv2d, formula=lambda m, out: 1)
    assert pktchar.profile(model, (2, 2)).macs == 1
    macs.unregister(nn.Conv2d)
    assert pktchar.profile(model, (2, 2)).macs == 2 * 2 * 2 * 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: macs.register(lambda x: x), "nn.Module subclass or a torch operator"),
        (lambda: macs.register("aten::mm", formula=lambda *a: 0), "nn.Module subclass or a torch operator"),
        (lambda: macs.register(MaxNorm, formula=lambda m, o: 0, shape_only=True), "not both"),
        (lambda: macs.register(torch.ops.aten.cumsum, shape_only=True), "for module types"),
        (lambda: macs.register(torch.ops.aten.cumsum), "needs a formula"),
    ],
)
def test_register_says_what_is_wrong(registry: None, call: object, message: str) -> None:
    with pytest.raises(PktcharError, match=message):
        call()  # type: ignore[operator]
