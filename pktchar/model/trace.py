"""The tracer: one forward pass, watched by three instruments, recorded as nodes and values.

* forward pre/post hooks on every module keep the module stack and record each *leaf* module call
  as a node (a module called twice is two nodes);
* a ``TorchFunctionMode`` (:class:`_FunctionRecorder`) records every torch function called outside
  leaf modules (``torch.cat``, ``+``, ``flatten``, ``x[..]``, in-place ``+=``) as a node of its own,
  named after the module whose ``forward`` called it;
* a ``TorchDispatchMode`` (:class:`_MacCounter`) counts multiply-accumulates of the aten operators
  with a formula (:mod:`.macs` first, then ``torch.utils.flop_counter``) and charges them to the node
  being executed. It is entered only around leaves :mod:`.macs` does not know and calls of functions
  that may hold MACs.

Every tensor a node produces is a *value* (:class:`_Value`) with a producer and a last consumer
(in-place ops make a new version of the tensor they modify). :func:`cut_sets` sweeps them into what
crosses each split.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .macs import LEAVES, MAY_HOLD_MACS, OPS, may_hold_macs
from .torch_compat import FLOP_FORMULAS, TorchDispatchMode, overload_packet, tree_flatten

__all__ = ["cut_sets", "trace", "trace_values"]


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
                    if type(module) not in LEAVES:
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
                    leaf = LEAVES.get(type(module))
                    if leaf is not None and leaf.formula is not None and outs:
                        node.flops += 2 * int(leaf.formula(module, outs[0]))
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
        counting = may_hold_macs(op) and t.start_counting()
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


class _MacCounter(TorchDispatchMode):
    """Counts FLOPs, charged to the running layer: an operator registered in :mod:`.macs` by its
    formula (MACs x 2), any other by torch.utils.flop_counter's."""

    def __init__(self, tracer: _Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _SIZE_QUERIES:
            return NotImplemented
        packet = overload_packet(func)
        own = OPS.get(packet) if OPS else None
        if own is not None:
            out = func(*args, **kwargs)
            self.t.add_flops(2 * int(own(args, kwargs, out)))
            return out
        # Ops without a formula may decompose into ops with one (e.g. attention into bmm). Only
        # matmul-like families can hold MACs; decomposing the rest (batch_norm, ...) costs time for nothing.
        if packet not in FLOP_FORMULAS and MAY_HOLD_MACS.search(packet.__name__):
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
        out = func(*args, **kwargs)
        if packet in FLOP_FORMULAS:
            self.t.add_flops(FLOP_FORMULAS[packet](*args, **kwargs, out_val=out))
        return out


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
