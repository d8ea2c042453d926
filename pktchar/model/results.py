"""What a profile holds: layers, split points and the tensors that cross them, with their exports
(JSON, pandas frames). Plain frozen dataclasses; no torch (the tracer that fills them is
:mod:`.trace`, the sweep that assembles them :mod:`.profiler`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import PktcharError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CutTensor", "Layer", "Profile", "Split"]


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
        names = [s.after for s in self.splits]
        some = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])}, ..., {names[-1]}"
        hint = did_you_mean(name, names) or (
            f" Split points are named after layers ({some}); "
            f"`pktchar profile {self.model}` lists all {len(names)} (its split table)."
        )
        raise PktcharError(f"{self.model} has no split point {name!r}.{hint}")

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
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
