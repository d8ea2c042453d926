"""Defects a new user found: each test failed before its fix (figures worked out by hand)."""

from __future__ import annotations

import torch
from torch import nn

import pktchar

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
