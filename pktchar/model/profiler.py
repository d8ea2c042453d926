"""Exact per-layer and per-split payloads of a model, on meta tensors.

How it works (record -> aggregate -> results)
--------------------------------------------
The model (a meta copy, never the caller's) runs once on a meta input, so
every size is a Python int and 8K or 100x8K inputs cost what 224x224 costs.

* :mod:`.trace` records that one forward pass: module hooks, a
  ``TorchFunctionMode`` and a ``TorchDispatchMode`` turn every leaf module call
  and every torch function called outside leaves into a node, and every tensor
  a node produces into a *value* with a producer and its last consumer;
* :mod:`.macs` is the registry the tracer consults: MAC formulas of stock
  layers (conv, linear) and of operators, shape-only layers (norms,
  activations), layers without MACs; users extend it with
  :func:`pktchar.model.macs.register`;
* :func:`_assemble` (here) sweeps the nodes into layers and split points: a
  split after layer *i* cuts every value produced at or before *i* and
  consumed after *i* (or returned by the model): that cut set is what crosses
  the network. Values that do not depend on the input (e.g. a class token
  expanded from a parameter) are left out of cut sets, since the far side can
  compute them;
* :mod:`.results` holds what comes out (:class:`Profile`, :class:`Layer`,
  :class:`Split`, :class:`CutTensor`) and its exports;
* :mod:`.diagnose` explains a forward pass that fails (what the model accepts).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..core.dtypes import DTYPE_BITS, check_dtype, nbytes, payload_bytes
from ..core.errors import PktcharError
from ..core.resolution import Resolution, parse_resolution
from . import zoo
from .diagnose import rejection
from .macs import fast_elementwise
from .results import CutTensor, Layer, Profile, Split
from .trace import _Tracer, _Value, cut_sets, trace, trace_values

__all__ = ["CutTensor", "Layer", "Profile", "Split", "cut_sets", "profile", "trace", "trace_values"]


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
        raise PktcharError(f"`batch` must be at least 1, got {batch}")
    if in_channels < 1:
        raise PktcharError(f"`in_channels` must be at least 1, got {in_channels}")
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
    fast_elementwise(meta_model)
    resolution = parse_resolution(res if res is not None else default_res)
    shape = (batch, in_channels, resolution.height, resolution.width)
    try:
        tracer = trace(meta_model, shape)
    except PktcharError:
        raise
    except Exception as e:
        raise rejection(name, meta_model, shape, default_res, e) from e
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
    """The recorded nodes and values as a :class:`Profile`: layers, split points and totals."""
    bits = DTYPE_BITS[dtype]
    unique_params = {id(p): p for p in model.parameters()}
    total_params = sum(p.numel() for p in unique_params.values())
    used = sum(n.params for n in tracer.nodes)
    return Profile(
        model=name,
        source=source,
        input_shape=shape,
        resolution=resolution.label,
        dtype=dtype,
        bits=bits,
        params=total_params,
        param_bytes=sum(nbytes(p.numel(), bits) for p in unique_params.values()),
        macs=sum(n.flops for n in tracer.nodes) // 2 + tracer.stray_flops // 2,
        layers=_layers(tracer, bits),
        splits=_splits(tracer, dtype, bits),
        unused_params=total_params - used,
        notes=_notes(tracer, total_params - used),
    )


def _vbytes(v: _Value, bits: int) -> int:
    """A value's packed bytes: floating tensors at the profile's ``bits``, others at their own width."""
    return nbytes(v.elements, v.native_bits or bits)


def _layers(tracer: _Tracer, bits: int) -> tuple[Layer, ...]:
    nodes, values = tracer.nodes, tracer.values
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
                bytes=sum(_vbytes(v, bits) for v in vs),
                params=n.params,
                macs=n.flops // 2,
                inputs=inputs,
            )
        )
    return tuple(layers)


def _splits(tracer: _Tracer, dtype: str, bits: int) -> tuple[Split, ...]:
    """A split after every node: its cut set (:func:`cut_sets`) and the device's MACs and params so far."""
    nodes, values = tracer.nodes, tracer.values
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
                _vbytes(values[v], bits),
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
    return tuple(splits)


def _notes(tracer: _Tracer, unused: int) -> tuple[str, ...]:
    notes = []
    if unused > 0:
        notes.append(
            f"{unused:,} parameters are not used by the forward pass at inference "
            "(e.g. auxiliary heads); they count in params and param_bytes only"
        )
    if tracer.stray_flops:
        notes.append(f"{tracer.stray_flops // 2:,} MACs ran outside any recorded layer")
    return tuple(notes)
