"""The MAC registry: what the profiler knows about a layer type or an operator, in one table a user can
extend (as fvcore's ``set_op_handle`` extends its counter).

For a **module type** (exact type: a subclass with a forward of its own is not matched) an entry holds

* a ``formula(module, output) -> int``: its multiply-accumulates from its first output tensor (a meta
  tensor during a profile), e.g. a convolution's out elements x Cin/groups x kernel; or
* ``shape_only``: its output has the input's shape and dtype and it has no MACs (norms, activations).
  On pktchar's own meta copy its forward is replaced by one that only makes that output (their meta
  kernels are slow Python references); an in-place module (``inplace=True``) returns its input; or
* neither: a layer without MACs whose own forward runs (pooling, dropout, padding, ...).

A leaf of a registered type is not watched by the dispatch-level counter: its MACs are its formula's,
or none. Every other leaf, and calls outside leaves of matmul-like functions (and of registered
operators), run under that counter, which counts each aten **operator** with a formula registered
here, ``formula(args, kwargs, out) -> int`` (MACs), or else with torch's own
(``torch.utils.flop_counter``, FLOPs / 2).

Extending it::

    import torch
    from pktchar.model import macs

    macs.register(MyMixer, formula=lambda m, out: out.numel() * m.width)  # a module type
    macs.register(MyNorm, shape_only=True)  # no MACs, output shaped like its input
    macs.register(torch.ops.aten.cumsum, formula=lambda args, kwargs, out: out.numel())  # an operator
    macs.unregister(MyMixer)  # back to pktchar's default

Registrations are process-wide and apply to every later profile (``pktchar.profile``).
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..core.errors import PktcharError
from .torch_compat import overload_packet

__all__ = [
    "LEAVES",
    "MAY_HOLD_MACS",
    "OPS",
    "Leaf",
    "fast_elementwise",
    "may_hold_macs",
    "register",
    "unregister",
]

ModuleFormula = Callable[[nn.Module, torch.Tensor], int]
OpFormula = Callable[[tuple[Any, ...], dict[str, Any], Any], int]


@dataclass(frozen=True)
class Leaf:
    """What the profiler knows about one module type."""

    formula: ModuleFormula | None = None  # MACs from the module and its first output; None: no MACs
    forward: Callable[..., Any] | None = None  # the shape-only forward it gets on a meta copy


def _shape_only(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return torch.empty_like(x)


def _inplace_or_shape_only(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x if getattr(self, "inplace", False) else torch.empty_like(x)


def _conv_macs(m: nn.Module, out: torch.Tensor) -> int:
    return out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)  # type: ignore[operator, arg-type]


def _linear_macs(m: nn.Module, out: torch.Tensor) -> int:
    return out.numel() * m.in_features  # type: ignore[operator,return-value]


# Stock norms and activations: output shaped like the input, no MACs (shape-only forwards).
_NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
)
_INPLACE_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.ELU,
    nn.LeakyReLU,
    nn.Mish,
    nn.CELU,
    nn.SELU,
)
# Stock layers without MACs whose own forward runs.
_NO_MACS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.ZeroPad2d,
    nn.ConstantPad1d,
    nn.ConstantPad2d,
    nn.ReflectionPad1d,
    nn.ReflectionPad2d,
    nn.ReplicationPad2d,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Softmax2d,
    nn.Upsample,
    nn.UpsamplingNearest2d,
    nn.UpsamplingBilinear2d,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.ChannelShuffle,
)

# module type -> Leaf. The stock entries: conv and linear MACs from their shapes, the same formulas as
# torch.utils.flop_counter (conv = out elements x Cin/groups x kernel; linear = out elements x
# in_features; bias not counted), norms and activations shape-only, the rest without MACs.
LEAVES: dict[type, Leaf] = {
    nn.Conv1d: Leaf(_conv_macs),
    nn.Conv2d: Leaf(_conv_macs),
    nn.Conv3d: Leaf(_conv_macs),
    nn.Linear: Leaf(_linear_macs),
    **{t: Leaf(forward=_shape_only) for t in _NORMS},
    **{t: Leaf(forward=_inplace_or_shape_only) for t in _INPLACE_ACTIVATIONS},
    **{t: Leaf() for t in _NO_MACS},
}
_STOCK: dict[type, Leaf] = dict(LEAVES)

# aten operator (overload packet) -> MACs formula, consulted before torch's FLOP formulas.
OPS: dict[Any, OpFormula] = {}
_OP_NAMES: set[str] = set()  # their names, as a call outside leaves is recorded (torch.cumsum: cumsum)

# Function names that may hold MACs: only these (and registered operators) run under the dispatch
# counter outside leaves, and only these are decomposed when torch has no formula for them;
# decomposing the rest (batch_norm, ...) costs time for nothing.
MAY_HOLD_MACS = re.compile(r"attention|matmul|linear|einsum|conv|mm|tensordot|bilinear|lstm|gru|rnn")


def may_hold_macs(name: str) -> bool:
    """Whether a function called ``name`` outside leaves is counted (matmul-like, or registered)."""
    return MAY_HOLD_MACS.search(name) is not None or name in _OP_NAMES


def fast_elementwise(model: nn.Module) -> None:
    """Give every module of a registered shape-only type its shape-only forward (on a meta copy only)."""
    for m in model.modules():
        leaf = LEAVES.get(type(m))
        if leaf is not None and leaf.forward is not None:
            m.forward = types.MethodType(leaf.forward, m)


def _packet(op: Any) -> Any:
    """The overload packet of an aten operator (``torch.ops.aten.mm`` or ``torch.ops.aten.mm.default``),
    or None when ``op`` is not one."""
    if callable(getattr(op, "overloads", None)):  # a packet: torch.ops.aten.mm
        return op
    if hasattr(op, "overloadpacket"):  # one overload: torch.ops.aten.mm.default
        return overload_packet(op)
    return None


def register(op: Any, formula: Callable[..., int] | None = None, *, shape_only: bool = False) -> None:
    """Tell the profiler how to count ``op``: an ``nn.Module`` subclass or a torch operator.

    A module type takes ``formula(module, output) -> MACs``, or ``shape_only=True`` (no MACs, its
    output shaped like its input), or neither (a layer without MACs). An operator
    (``torch.ops.aten.NAME``, or one overload of it) takes ``formula(args, kwargs, out) -> MACs``.
    A registration replaces pktchar's own entry for the same type or operator until
    :func:`unregister`."""
    if isinstance(op, type) and issubclass(op, nn.Module):
        if shape_only and formula is not None:
            raise PktcharError("a shape-only layer has no MACs: give `formula` or `shape_only`, not both")
        LEAVES[op] = Leaf(formula, _inplace_or_shape_only if shape_only else None)
        return
    packet = _packet(op)
    if packet is None:
        raise PktcharError(
            f"cannot register {op!r}: give an nn.Module subclass or a torch operator (torch.ops.aten.NAME)"
        )
    if shape_only:
        raise PktcharError("`shape_only` is for module types; an operator's output is what it computes")
    if formula is None:
        raise PktcharError(f"registering the operator {packet.__name__} needs a `formula`")
    OPS[packet] = formula
    _OP_NAMES.add(packet.__name__)


def unregister(op: Any) -> None:
    """Undo :func:`register`: ``op`` is counted as pktchar counts it by default."""
    if isinstance(op, type):
        if op in _STOCK:
            LEAVES[op] = _STOCK[op]
        else:
            LEAVES.pop(op, None)
        return
    packet = _packet(op)
    if packet is not None and OPS.pop(packet, None) is not None:
        _OP_NAMES.discard(packet.__name__)
