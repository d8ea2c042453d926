"""Exact per-layer and per-split payloads of a model, on meta tensors.

How it works
------------
The model (a meta copy, never the caller's) runs once on a meta input, so
every size is a Python int and 8K or 100x8K inputs cost what 224x224 costs.
Three instruments watch that one forward pass:

* forward pre/post hooks on every module keep the module stack and record
  each *leaf* module call as a layer (a module called twice is two layers);
* a ``TorchFunctionMode`` records every torch function called outside leaf
  modules (``torch.cat``, ``+``, ``flatten``, ``x[..]``, in-place ``+=``) as a
  layer of its own, named after the module whose ``forward`` called it;
* a ``TorchDispatchMode`` counts multiply-accumulates of the aten ops
  ``torch.utils.flop_counter`` knows (convolutions, matmuls, attention) and
  charges them to the layer being executed (MACs = FLOPs / 2).

Every tensor a layer produces is a *value* with a producer and its consumers
(in-place ops make a new version of the tensor they modify). A split after
layer *i* cuts every value produced at or before *i* and consumed after *i*
(or returned by the model): that cut set is what crosses the network. Values
that do not depend on the input (e.g. a class token expanded from a
parameter) are left out of cut sets, since the far side can compute them.
"""

from __future__ import annotations

import gc
import json
import math
import re
import types
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core.dtypes import DTYPE_BITS, check_dtype, nbytes, payload_bytes
from ..core.errors import ModelRejectsInput, PktcharError
from ..core.resolution import Resolution, parse_resolution
from . import zoo
from .torch_compat import FLOP_FORMULAS, TorchDispatchMode, overload_packet, tree_flatten

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Layer", "CutTensor", "Split", "Profile", "profile", "trace", "trace_values", "cut_sets"]


# ----------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class Layer:
    """One executed leaf module or functional op, in execution order."""

    index: int
    name: str
    op: str
    kind: str  # "input", "module" or "function"
    shape: tuple[int, ...] | tuple[tuple[int, ...], ...]  # a tuple of shapes when it outputs several
    elements: int
    bytes: int  # the outputs' packed values (what a split sends, with quantisation parameters: Split.bytes)
    params: int
    macs: int
    inputs: tuple[str, ...]  # names of the layers whose outputs it reads

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        if self.shape and isinstance(self.shape[0], tuple):
            return self.shape  # type: ignore[return-value]
        return (self.shape,)  # type: ignore[return-value]


@dataclass(frozen=True)
class CutTensor:
    """A tensor that crosses a split: who produced it, its shape and size.

    ``bytes`` is what it takes to send it at the profile dtype: the packed values plus, for a
    floating tensor at int8/int4, its quantisation parameters (fp32 scale + int32 zero point,
    8 B); ``tensor_bytes`` is the packed values alone."""

    producer: str
    shape: tuple[int, ...]
    elements: int
    bytes: int
    tensor_bytes: int
    floating: bool = True  # sized at the profile dtype (False: integer/bool tensors keep their width)


@dataclass(frozen=True)
class Split:
    """Cutting the model after layer ``after``: the device runs everything up to it.

    ``bytes`` is the payload the split sends uncompressed at the profile dtype, the one figure
    flows, tables and replays use (``Coding.split_bytes`` at that dtype gives the same): every cut
    tensor's values plus, at int8/int4, each floating tensor's scale and zero point.
    ``tensor_bytes`` is the packed values alone (``bytes - tensor_bytes`` = the quantisation
    parameters)."""

    index: int
    after: str
    tensors: tuple[CutTensor, ...]
    elements: int
    bytes: int
    tensor_bytes: int
    device_macs: int
    device_params: int

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.tensors]


@dataclass(frozen=True)
class Profile:
    """Exact sizes of a model at one input resolution and payload dtype."""

    model: str
    source: str
    input_shape: tuple[int, ...]
    resolution: str
    dtype: str
    bits: int
    params: int
    param_bytes: int
    macs: int
    layers: tuple[Layer, ...]
    splits: tuple[Split, ...]
    unused_params: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    # -- lookups ------------------------------------------------------------------------------
    def split(self, name: str) -> Split:
        """The split after the layer called ``name`` (``input`` = full offload)."""
        for s in self.splits:
            if s.after == name:
                return s
        from ..core.errors import did_you_mean

        names = [s.after for s in self.splits]
        some = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])}, ..., {names[-1]}"
        hint = did_you_mean(name, names) or (
            f" Split points are named after layers ({some}); "
            f"`pktchar profile {self.model} --only splits` lists all {len(names)}."
        )
        raise PktcharError(f"{self.model} has no split point {name!r}.{hint}")

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        from ..core.errors import did_you_mean

        raise PktcharError(
            f"{self.model} has no layer {name!r}.{did_you_mean(name, [x.name for x in self.layers])}"
        )

    @property
    def min_split(self) -> Split:
        return min(self.splits, key=lambda s: (s.bytes, s.index))

    @property
    def max_split(self) -> Split:
        return max(self.splits, key=lambda s: (s.bytes, -s.index))

    # -- export -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["layers"] = [_layer_dict(x) for x in self.layers]
        d["splits"] = [
            {
                "index": s.index,
                "after": s.after,
                "tensors": [
                    {
                        "producer": t.producer,
                        "shape": list(t.shape),
                        "elements": t.elements,
                        "bytes": t.bytes,
                        "tensor_bytes": t.tensor_bytes,
                    }
                    for t in s.tensors
                ],
                "elements": s.elements,
                "bytes": s.bytes,
                "tensor_bytes": s.tensor_bytes,
                "device_macs": s.device_macs,
                "device_params": s.device_params,
            }
            for s in self.splits
        ]
        d["notes"] = list(self.notes)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def layers_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [_layer_dict(x) for x in self.layers]
        for r in rows:
            r["shape"] = _shape_str(r["shape"])
            r["inputs"] = ",".join(r["inputs"])
        return pd.DataFrame(rows).set_index("index")

    def splits_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "index": s.index,
                "after": s.after,
                "tensors": len(s.tensors),
                "shapes": " + ".join(_shape_str(list(t.shape)) for t in s.tensors),
                "elements": s.elements,
                "bytes": s.bytes,
                "tensor_bytes": s.tensor_bytes,
                "device_macs": s.device_macs,
                "device_params": s.device_params,
            }
            for s in self.splits
        ]
        return pd.DataFrame(rows).set_index("index")


def _layer_dict(x: Layer) -> dict[str, Any]:
    shape: Any = [list(s) for s in x.shape] if x.shape and isinstance(x.shape[0], tuple) else list(x.shape)
    return {
        "index": x.index,
        "name": x.name,
        "op": x.op,
        "kind": x.kind,
        "shape": shape,
        "elements": x.elements,
        "bytes": x.bytes,
        "params": x.params,
        "macs": x.macs,
        "inputs": list(x.inputs),
    }


def _shape_str(shape: Any) -> str:
    if shape and isinstance(shape[0], list | tuple):
        return ", ".join(_shape_str(s) for s in shape)
    return "x".join(str(d) for d in shape)


# ----------------------------------------------------------------------------------------------
# The tracer


@dataclass
class _Value:
    producer: int
    shape: tuple[int, ...]
    elements: int
    native_bits: int | None  # None: a floating tensor, sized at the profile dtype
    dynamic: bool  # depends on the model input
    end: int = -1  # index of the last consumer; len(nodes) for model outputs


@dataclass
class _Node:
    name: str
    op: str
    kind: str
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    params: int = 0
    flops: int = 0
    dynamic: bool = False
    param_ids: list[int] = field(default_factory=list)  # parameters read, credited at commit


_INPLACE_DUNDERS = {
    "__iadd__": "add_",
    "__isub__": "sub_",
    "__imul__": "mul_",
    "__itruediv__": "div_",
    "__ifloordiv__": "floor_divide_",
    "__iand__": "and_",
    "__ior__": "or_",
    "__ixor__": "xor_",
    "__setitem__": "setitem",
}
_SKIP_FUNCS = {"__get__", "__set__", "__repr__", "__format__", "__bool__", "__len__", "__iter__"}


def _op_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or str(func)
    if name in _INPLACE_DUNDERS:
        return _INPLACE_DUNDERS[name]
    if name.startswith("__r") and name.endswith("__") and len(name) > 5:
        return name[3:-2]
    if name.startswith("__") and name.endswith("__") and len(name) > 4:
        return name[2:-2]
    return name


def _is_inplace(func: Any) -> bool:
    name = getattr(func, "__name__", "")
    return name in _INPLACE_DUNDERS or (name.endswith("_") and not name.endswith("__"))


def _tensors_in(objs: Any) -> list[Any]:
    """The leaves of ``objs``; the common (args tuple of tensors, no kwargs) case without pytree."""
    if isinstance(objs, tuple) and len(objs) == 2 and isinstance(objs[0], tuple) and not objs[1]:
        args = objs[0]
        if all(isinstance(a, torch.Tensor) for a in args):
            return list(args)
    return tree_flatten(objs)[0]


class _Tracer:
    def __init__(self, model: nn.Module, on_value: Callable[[int, torch.Tensor], None] | None = None) -> None:
        self.model = model
        self.on_value = on_value
        self.counter: _MacCounter | None = None  # entered only where MACs may hide (see _macs_by_formula)
        self.counting = False
        self.nodes: list[_Node] = []
        self.values: list[_Value] = []
        self.tensor_value: dict[int, int] = {}  # id(tensor) -> its current value
        # Meta tensors are kept alive so ids are never reused; real tensors (measured coding) are
        # only weakly referenced, so a real forward pass frees activations as it normally would.
        self.keep: list[torch.Tensor] = []
        self.refs: dict[int, weakref.ref[torch.Tensor]] = {}
        self.stack: list[tuple[str, nn.Module]] = []
        self.leaf_depth = 0
        self.current: _Node | None = None
        self.busy = False
        self.stray_flops = 0
        self.names: Counter[str] = Counter()
        self.param_numel: dict[int, int] = {}
        self.attributed: set[int] = set()
        self.param_of_module: dict[int, list[torch.Tensor]] = {}
        self.module_name = {id(m): n for n, m in model.named_modules()}
        self.leaves = {id(m) for m in model.modules() if next(m.children(), None) is None}
        for m in model.modules():
            self.param_of_module[id(m)] = list(m.parameters(recurse=False))
        for p in model.parameters():
            self.param_numel[id(p)] = p.numel()

    # -- naming -------------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        self.names[name] += 1
        k = self.names[name]
        return name if k == 1 else f"{name}#{k}"

    def parent_name(self) -> str:
        for n, _ in reversed(self.stack):
            if n:
                return n
        return ""

    # -- values -------------------------------------------------------------------------------
    def add_output(self, node_index: int, t: torch.Tensor, dynamic: bool) -> int:
        bits = None if t.is_floating_point() or t.is_complex() else t.element_size() * 8
        v = _Value(node_index, tuple(int(d) for d in t.shape), int(t.numel()), bits, dynamic)
        self.values.append(v)
        vid = len(self.values) - 1
        self.tensor_value[id(t)] = vid
        if t.is_meta:
            self.keep.append(t)
        else:
            self.refs[id(t)] = weakref.ref(t)
        if self.on_value is not None:  # real tensors: look now, before an in-place op changes them
            self.on_value(vid, t)
        return vid

    def consume(self, node: _Node, objs: Any) -> bool:
        """Record the tensors in ``objs`` as ``node``'s inputs; True if any depends on the input."""
        dynamic = False
        for t in _tensors_in(objs):
            if not isinstance(t, torch.Tensor):
                continue
            vid = self.tensor_value.get(id(t))
            if vid is not None and not t.is_meta and self.refs[id(t)]() is not t:
                vid = None  # a freed tensor's id, reused
            if vid is not None:
                if vid not in node.inputs:
                    node.inputs.append(vid)
                dynamic = dynamic or self.values[vid].dynamic
            elif id(t) in self.param_numel and id(t) not in node.param_ids:
                node.param_ids.append(id(t))
        return dynamic

    def commit(self, node: _Node, outputs: list[torch.Tensor], dynamic: bool) -> None:
        """Add ``node`` to the graph; it is credited with the parameters it read that no earlier node was.

        Parameters are credited here, not when they are read, so a call that is then dropped (a
        ``size()`` or ``dim()`` query returns no tensor) leaves them for the node that uses them."""
        for pid in node.param_ids:
            if pid not in self.attributed:
                self.attributed.add(pid)
                node.params += self.param_numel[pid]
        index = len(self.nodes)
        self.nodes.append(node)
        for vid in node.inputs:
            self.values[vid].end = index
        for t in outputs:
            node.outputs.append(self.add_output(index, t, dynamic))

    # -- module hooks -------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        self.busy = True
        try:
            name = self.module_name.get(id(module), type(module).__name__)
            self.stack.append((name, module))
            if id(module) in self.leaves:
                self.leaf_depth += 1
                if self.leaf_depth == 1:
                    node = _Node(self.unique(name or type(module).__name__), type(module).__name__, "module")
                    node.dynamic = self.consume(node, (args, kwargs))
                    for p in self.param_of_module[id(module)]:
                        if id(p) not in node.param_ids:
                            node.param_ids.append(id(p))
                    self.current = node
                    if type(module) not in _KNOWN_LEAVES:
                        self.start_counting()
        finally:
            self.busy = False

    def start_counting(self) -> bool:
        if self.counting or self.counter is None:
            return False
        self.counter.__enter__()
        self.counting = True
        return True

    def stop_counting(self) -> None:
        if self.counting and self.counter is not None:
            self.counting = False
            self.counter.__exit__(None, None, None)

    def post_hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        self.busy = True
        try:
            if id(module) in self.leaves:
                if self.leaf_depth == 1 and self.current is not None:
                    node = self.current
                    self.current = None
                    self.stop_counting()
                    outs = (
                        [output]
                        if isinstance(output, torch.Tensor)
                        else [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
                    )
                    formula = _MAC_FORMULAS.get(type(module))
                    if formula is not None and outs:
                        node.flops += 2 * formula(module, outs[0])
                    self.commit(node, outs, node.dynamic)
                self.leaf_depth -= 1
            self.stack.pop()
        finally:
            self.busy = False

    def add_flops(self, flops: int) -> None:
        if self.current is not None:
            self.current.flops += int(flops)
        else:
            self.stray_flops += int(flops)


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        t = self.t
        if (
            t.busy
            or t.leaf_depth > 0
            or t.current is not None
            or getattr(func, "__name__", "") in _SKIP_FUNCS
        ):
            return func(*args, **kwargs)
        t.busy = True
        op = _op_name(func)
        parent = t.parent_name()
        node = _Node(t.unique(f"{parent}.{op}" if parent else op), op, "function")
        dynamic = t.consume(node, (args, kwargs))
        t.busy = False
        t.current = node
        counting = _MAY_HOLD_MACS.search(op) is not None and t.start_counting()
        try:
            out = func(*args, **kwargs)
        finally:
            t.current = None
            if counting:
                t.stop_counting()
        t.busy = True
        try:
            outs = [x for x in tree_flatten(out)[0] if isinstance(x, torch.Tensor)]
            if not outs and _is_inplace(func) and args and isinstance(args[0], torch.Tensor):
                outs = [args[0]]
            if outs:
                t.commit(node, outs, dynamic)
            else:  # not a tensor op (size(), dim(), ...): forget its name and any flops
                t.names[node.name.split("#")[0]] -= 1
                t.stray_flops += node.flops
        finally:
            t.busy = False
        return out


_SIZE_QUERIES = {
    torch.ops.aten.size.default,
    torch.ops.aten.sym_size.default,
    torch.ops.aten.stride.default,
    torch.ops.aten.sym_stride.default,
    torch.ops.aten.numel.default,
    torch.ops.aten.sym_numel.default,
    torch.ops.aten.dim.default,
    torch.ops.aten.is_contiguous.default,
    torch.ops.aten.is_contiguous.memory_format,
    torch.ops.aten.storage_offset.default,
    torch.ops.aten.sym_storage_offset.default,
    torch.ops.prim.layout.default,
}


_MAY_HOLD_MACS = re.compile(r"attention|matmul|linear|einsum|conv|mm|tensordot|bilinear|lstm|gru|rnn")


class _MacCounter(TorchDispatchMode):
    """Counts FLOPs with torch.utils.flop_counter's formulas, charged to the running layer."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _SIZE_QUERIES:
            return NotImplemented
        packet = overload_packet(func)
        # Ops without a formula may decompose into ops with one (e.g. attention into bmm). Only
        # matmul-like families can hold MACs; decomposing the rest (batch_norm, ...) costs time for nothing.
        if packet not in FLOP_FORMULAS and _MAY_HOLD_MACS.search(packet.__name__):
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
        out = func(*args, **kwargs)
        if packet in FLOP_FORMULAS:
            self.t.add_flops(FLOP_FORMULAS[packet](*args, **kwargs, out_val=out))
        return out


def _shape_only(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return torch.empty_like(x)


def _inplace_or_shape_only(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x if getattr(self, "inplace", False) else torch.empty_like(x)


# Stock layers whose output has the input's shape and dtype and which have no MACs. Their meta
# kernels run slow Python reference implementations (most of ResNet-50's trace time), so on
# pktchar's own meta copy they get a shape-only forward; in-place ones return their input, as the
# real ones do. A subclass with its own forward keeps it.
_SHAPE_ONLY: dict[type, Any] = {
    **dict.fromkeys(
        (
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
        ),
        _shape_only,
    ),
    **dict.fromkeys(
        (
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
        ),
        _inplace_or_shape_only,
    ),
}


def _fast_elementwise(model: nn.Module) -> None:
    for m in model.modules():
        cls = type(m)
        if cls in _SHAPE_ONLY:
            m.forward = types.MethodType(_SHAPE_ONLY[cls], m)


def _conv_macs(m: nn.Module, out: torch.Tensor) -> int:
    return out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)  # type: ignore[operator, arg-type]


def _linear_macs(m: nn.Module, out: torch.Tensor) -> int:
    return out.numel() * m.in_features  # type: ignore[operator,return-value]


# Stock leaves whose MACs follow from their shapes (the same formulas as torch.utils.flop_counter:
# conv = out elements x Cin/groups x kernel; linear = out elements x in_features; bias not counted),
# and stock leaves with none. Every other leaf runs under the dispatch-level counter.
_MAC_FORMULAS: dict[type, Callable[[nn.Module, torch.Tensor], int]] = {
    nn.Conv1d: _conv_macs,
    nn.Conv2d: _conv_macs,
    nn.Conv3d: _conv_macs,
    nn.Linear: _linear_macs,
}
_KNOWN_LEAVES: frozenset[type] = frozenset(
    {
        *_MAC_FORMULAS,
        *_SHAPE_ONLY,
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
    }
)


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> _Tracer:
    """Run ``model`` (already on meta) once on a meta input of ``input_shape``; return the tracer."""
    return _trace(model, torch.empty(input_shape, device="meta"))


def trace_values(model: nn.Module, x: torch.Tensor, on_value: Callable[[int, torch.Tensor], None]) -> _Tracer:
    """Run a real ``model`` on a real input; ``on_value(value_id, tensor)`` sees every tensor as it is
    produced (the codec measures coders there)."""
    return _trace(model, x, on_value)


def _trace(
    model: nn.Module, x: torch.Tensor, on_value: Callable[[int, torch.Tensor], None] | None = None
) -> _Tracer:
    gc_was_on = gc.isenabled()
    gc.disable()  # the trace makes many small objects and frees none; collections only cost time
    tracer = _Tracer(model, on_value)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(tracer.pre_hook, with_kwargs=True))
        handles.append(m.register_forward_hook(tracer.post_hook, with_kwargs=True))
    input_node = _Node("input", "input", "input")
    tracer.names["input"] += 1
    tracer.busy = True
    tracer.commit(input_node, [x], True)
    tracer.busy = False
    tracer.counter = _MacCounter(tracer)
    try:
        with torch.no_grad(), _FunctionRecorder(tracer):
            out = model(x)
    except Exception as e:
        if tracer.stack:
            mname, mod = tracer.stack[-1]
            e._pktchar_stack = f"'{mname or '(top)'}' ({type(mod).__name__})"  # type: ignore[attr-defined]
        raise
    finally:
        tracer.stop_counting()  # a failing leaf never reached its post-hook
        for h in handles:
            h.remove()
        if gc_was_on:
            gc.enable()
    end = len(tracer.nodes)
    for t in tree_flatten(_unwrap_output(out))[0]:
        if isinstance(t, torch.Tensor) and id(t) in tracer.tensor_value:
            tracer.values[tracer.tensor_value[id(t)]].end = end
    return tracer


def cut_sets(tracer: _Tracer) -> Iterator[tuple[str, list[int]]]:
    """(split name, value ids crossing it) after every node, in execution order.

    A value crosses the split after node i when producer <= i < its last use and it depends on
    the model input (model outputs are used "after the end").
    """
    values = tracer.values
    starts: dict[int, list[int]] = {}
    for vid, v in enumerate(values):
        if v.dynamic and v.end > v.producer:
            starts.setdefault(v.producer, []).append(vid)
    live: dict[int, None] = {}
    for i, n in enumerate(tracer.nodes):
        for vid in starts.get(i, ()):
            live[vid] = None
        for vid in [v for v in live if values[v].end <= i]:
            del live[vid]
        yield n.name, list(live)


def _unwrap_output(out: Any) -> Any:
    if hasattr(out, "_asdict"):  # namedtuples (GoogLeNetOutputs, InceptionOutputs)
        return tuple(out)
    if isinstance(out, dict):
        return list(out.values())
    return out


# ----------------------------------------------------------------------------------------------
# Public entry point


def profile(
    model: str | nn.Module,
    res: str | int | tuple[int, int] | Resolution | None = None,
    *,
    dtype: str = "fp32",
    batch: int = 1,
    in_channels: int = 3,
    num_classes: int | None = None,
    weights: str | None = None,
) -> Profile:
    """Exact per-layer and per-split payloads of ``model`` at input resolution ``res``.

    ``model`` is a name (``pktchar models``), ``path/file.py:factory``, or an ``nn.Module``
    (which is copied to the meta device; the caller's model is left untouched).
    ``res`` takes the forms of :func:`pktchar.core.resolution.parse_resolution`; by default the
    model's native resolution (224 for most).
    """
    dtype = check_dtype(dtype)
    if batch < 1:
        raise PktcharError(f"batch must be at least 1, got {batch}")
    if in_channels < 1:
        raise PktcharError(f"in_channels must be at least 1, got {in_channels}")
    if isinstance(model, nn.Module):
        name, source, default_res = type(model).__name__, "nn.Module", 224
        meta_model = zoo.meta_copy(model)
    elif isinstance(model, str):
        spec = zoo.resolve(model)
        name, source, default_res = spec.name, spec.source, spec.default_res
        meta_model = zoo.build(spec, device="meta", num_classes=num_classes)
    else:
        raise PktcharError(f"model must be a name or a torch.nn.Module, not {type(model).__name__}")
    if weights:
        zoo.load_weights(meta_model, weights)  # checks names and shapes; sizes need no values
        meta_model = meta_model.to("meta")
    _fast_elementwise(meta_model)
    resolution = parse_resolution(res if res is not None else default_res)
    shape = (batch, in_channels, resolution.height, resolution.width)
    try:
        tracer = trace(meta_model, shape)
    except PktcharError:
        raise
    except Exception as e:
        raise _rejection(name, meta_model, shape, default_res, e) from e
    return _assemble(name, source, resolution, shape, dtype, meta_model, tracer)


def _assemble(
    name: str,
    source: str,
    resolution: Resolution,
    shape: tuple[int, ...],
    dtype: str,
    model: nn.Module,
    tracer: _Tracer,
) -> Profile:
    bits = DTYPE_BITS[dtype]
    nodes, values = tracer.nodes, tracer.values

    def vbytes(v: _Value) -> int:
        return nbytes(v.elements, v.native_bits or bits)

    layers = []
    for i, n in enumerate(nodes):
        vs = [values[o] for o in n.outputs]
        shp: Any = vs[0].shape if len(vs) == 1 else tuple(v.shape for v in vs)
        inputs = tuple(dict.fromkeys(nodes[values[v].producer].name for v in n.inputs))
        layers.append(
            Layer(
                index=i,
                name=n.name,
                op=n.op,
                kind=n.kind,
                shape=shp,
                elements=sum(v.elements for v in vs),
                bytes=sum(vbytes(v) for v in vs),
                params=n.params,
                macs=n.flops // 2,
                inputs=inputs,
            )
        )

    splits = []
    macs = params = 0
    for i, (n, (after, live)) in enumerate(zip(nodes, cut_sets(tracer), strict=True)):
        macs += n.flops // 2
        params += n.params
        tensors = tuple(
            CutTensor(
                nodes[values[v].producer].name,
                values[v].shape,
                values[v].elements,
                payload_bytes(values[v].elements, dtype, values[v].native_bits),
                vbytes(values[v]),
                values[v].native_bits is None,
            )
            for v in live
        )
        splits.append(
            Split(
                index=i,
                after=after,
                tensors=tensors,
                elements=sum(t.elements for t in tensors),
                bytes=sum(t.bytes for t in tensors),
                tensor_bytes=sum(t.tensor_bytes for t in tensors),
                device_macs=macs,
                device_params=params,
            )
        )

    unique_params = {id(p): p for p in model.parameters()}
    total_params = sum(p.numel() for p in unique_params.values())
    used = sum(n.params for n in nodes)
    notes = []
    if total_params > used:
        notes.append(
            f"{total_params - used:,} parameters are not used by the forward pass at inference "
            "(e.g. auxiliary heads); they count in params and param_bytes only"
        )
    if tracer.stray_flops:
        notes.append(f"{tracer.stray_flops // 2:,} MACs ran outside any recorded layer")
    total_macs = sum(n.flops for n in nodes) // 2 + tracer.stray_flops // 2
    return Profile(
        model=name,
        source=source,
        input_shape=shape,
        resolution=resolution.label,
        dtype=dtype,
        bits=bits,
        params=total_params,
        param_bytes=sum(nbytes(p.numel(), bits) for p in unique_params.values()),
        macs=total_macs,
        layers=tuple(layers),
        splits=tuple(splits),
        unused_params=total_params - used,
        notes=tuple(notes),
    )


def _rejection(
    name: str,
    model: nn.Module,
    shape: tuple[int, ...],
    default_res: int,
    err: Exception,
) -> PktcharError:
    """Turn a failure inside the forward pass into a message naming the layer and what it accepts."""
    where = _failing_layer(err)
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "meta" in msg.lower() and ("item" in msg.lower() or "data-dependent" in msg.lower()):
        return ModelRejectsInput(
            f"{name}: layer {where} needs tensor values (data-dependent control flow), which a size-only "
            f"trace on meta tensors cannot give: {msg}"
        )
    h, w = shape[2], shape[3]
    accepts = _what_it_accepts(model, shape, default_res)
    return ModelRejectsInput(
        f"{name} rejects input {shape[1]}x{h}x{w} at layer {where}: {msg}"
        + (f"; {accepts}" if accepts else "")
    )


def _failing_layer(err: BaseException) -> str:
    stack = getattr(err, "_pktchar_stack", None)
    return stack or "?"


def _ok(model: nn.Module, shape: tuple[int, ...]) -> bool:
    try:
        trace(model, shape)
        return True
    except Exception:
        return False


def _what_it_accepts(model: nn.Module, shape: tuple[int, ...], default_res: int) -> str:
    b, c, h, w = shape
    size = getattr(model, "image_size", None)
    if isinstance(size, int) and not _ok(model, (b, c, size + 1, size + 1)):
        return f"it accepts only {size}x{size}"
    if not _ok(model, (b, c, default_res, default_res)):
        return ""
    if min(h, w) < default_res:
        lo, hi = 1, default_res  # smallest square side that works (traces are cheap on meta)
        while lo < hi:
            mid = (lo + hi) // 2
            if _ok(model, (b, c, mid, mid)):
                hi = mid
            else:
                lo = mid + 1
        return f"the smallest square input it accepts is {lo}x{lo}"
    return f"it accepts {default_res}x{default_res}"
