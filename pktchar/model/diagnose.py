"""Why a model rejects an input: the failure inside the forward pass turned into
:class:`~pktchar.core.errors.ModelRejectsInput`, naming the module on top of the module stack and what
the model accepts (its fixed ``image_size``, or the smallest square side, found by bisection on cheap
meta traces)."""

from __future__ import annotations

from torch import nn

from ..core.errors import ModelRejectsInput, PktcharError
from .trace import trace

__all__ = ["rejection"]


def rejection(
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
