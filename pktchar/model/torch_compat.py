"""Every private torch (and torchvision) name pktchar uses, in one place, each with a fallback.

Private names (``torch.utils._pytree``, ``module._forward_hooks``, ...) are not part of torch's API: any
release may move or drop one. Here each is looked up once, through a ``_load_*`` function that tries the
private name and, on ImportError/AttributeError, returns a ``_fallback_*``: a public or self-built
equivalent, or a clear :class:`~pktchar.core.errors.PktcharError` where nothing public can stand in. The
comment above each entry says which torch versions have the private name (checked on 2.14.1; earlier
versions from torch's history, approximately) and what the fallback costs. ``tests/test_torch_compat.py``
runs every private path and every fallback, and checks that no other module of pktchar (or ``models/``)
names a private torch attribute.

This module imports torch: only modules that already import torch (profiler, zoo, the training worker)
import it, so ``import pktchar`` and the light commands stay torch-free.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.errors import PktcharError

__all__ = [
    "DDP_FIRST_BUCKET_BYTES",
    "DEVICE_CONSTRUCTORS",
    "FLOP_FORMULAS",
    "TorchDispatchMode",
    "clear_forward_hooks",
    "ddp_logging_data",
    "overload_packet",
    "tree_flatten",
    "weights_top1",
]

MIB = 1 << 20


def _torch_version() -> str:
    return str(torch.__version__)


# ----------------------------------------------------------------------------------------------
# TorchDispatchMode: torch.utils._python_dispatch.TorchDispatchMode (torch 1.13 to 2.14 at least).
# The profiler's MAC counter is one: it sees the aten ops a layer runs. torch.overrides.TorchFunctionMode
# (public) sees torch functions, not aten ops, so it cannot replace it. Fallback: a stand-in base class
# that can be subclassed and built, and raises a PktcharError naming the torch version when entered.
# Cost: the counter is entered only for layers pktchar has no shape formula for (attention, a custom
# layer's matmul, ...); models made of convolutions, linear layers and stock layers (VGG, ResNet, ...)
# still profile with the same figures; the others stop with that error instead of wrong MACs.


class _FallbackDispatchMode:
    """Stands in for ``TorchDispatchMode`` when torch has none: entering it raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _FallbackDispatchMode:
        raise PktcharError(
            f"torch {_torch_version()} has no torch.utils._python_dispatch.TorchDispatchMode, with which "
            "pktchar counts the MACs of layers it has no formula for (attention, matmuls in custom layers); "
            "models made only of convolutions, linear and stock layers still profile "
            "(see pktchar/model/torch_compat.py)"
        )

    def __exit__(self, *exc: object) -> None:
        return None


def _load_dispatch_mode() -> type:
    try:
        from torch.utils._python_dispatch import TorchDispatchMode as mode
    except (ImportError, AttributeError):
        return _FallbackDispatchMode
    return mode


if TYPE_CHECKING:
    from torch.utils._python_dispatch import TorchDispatchMode
else:
    TorchDispatchMode = _load_dispatch_mode()


# ----------------------------------------------------------------------------------------------
# tree_flatten: torch.utils._pytree.tree_flatten (torch 1.8 to 2.14 at least): (leaves, spec) of nested
# containers. pktchar only reads the leaves (the tensors among a call's arguments and outputs).
# Fallback: a small recursive flatten of lists, tuples (namedtuples, torch.Size and torch.return_types
# included), deques and dicts (values in insertion order, as torch's), spec None. Cost: a container torch
# registers beyond these (none that a model's forward passes, in 2.14) would be one leaf; a user's own
# tuple/list/dict subclass is walked where torch keeps it a leaf (more tensors found, never fewer).


def _fallback_tree_flatten(tree: Any) -> tuple[list[Any], None]:
    leaves: list[Any] = []

    def walk(x: Any) -> None:
        if isinstance(x, list | tuple | deque):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)
        else:
            leaves.append(x)

    walk(tree)
    return leaves, None


def _load_tree_flatten() -> Callable[[Any], tuple[list[Any], Any]]:
    try:
        from torch.utils._pytree import tree_flatten as flatten
    except (ImportError, AttributeError):
        return _fallback_tree_flatten
    return flatten


tree_flatten: Callable[[Any], tuple[list[Any], Any]] = _load_tree_flatten()


# ----------------------------------------------------------------------------------------------
# FLOP_FORMULAS: torch.utils.flop_counter.flop_registry (torch 2.1 to 2.14 at least; not in the module's
# __all__): aten overload packet -> formula(*args, **kwargs, out_val=out) -> FLOPs (2 x MACs).
# Fallbacks, in order: the registry a public FlopCounterMode carries (its ``flop_registry`` attribute,
# the same formulas; undocumented but not underscored); then pktchar's own formulas for mm, addmm, bmm,
# baddbmm and convolution (the ones torch has, bias not counted). Cost of the last: ops with no formula
# there (torch's fused attention kernels, _scaled_mm) are decomposed into ops that have one where torch
# can (attention into bmm on the CPU and meta), otherwise count 0 MACs.


def _mm_flops(a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    m, k = a.shape
    return 2 * int(m) * int(k) * int(b.shape[-1])


def _addmm_flops(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return _mm_flops(a, b)


def _bmm_flops(a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    n, m, k = a.shape
    return 2 * int(n) * int(m) * int(k) * int(b.shape[-1])


def _baddbmm_flops(s: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *args: Any, **kwargs: Any) -> int:
    return _bmm_flops(a, b)


def _conv_flops(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    *args: Any,
    out_val: Any = None,
    **kwargs: Any,
) -> int:
    # every output point (every input point, transposed) takes one filter of Cin/groups x kernel per
    # output channel: 2 x batch x prod(weight) x prod(spatial)
    spatial = (x.shape if transposed else out_val.shape)[2:]
    return 2 * int(x.shape[0]) * math.prod(int(d) for d in w.shape) * math.prod(int(d) for d in spatial)


def _fallback_flop_formulas() -> dict[Any, Callable[..., int]]:
    aten = torch.ops.aten
    return {
        aten.mm: _mm_flops,
        aten.addmm: _addmm_flops,
        aten.bmm: _bmm_flops,
        aten.baddbmm: _baddbmm_flops,
        aten.convolution: _conv_flops,
    }


def _public_flop_formulas() -> dict[Any, Callable[..., int]]:
    from torch.utils.flop_counter import FlopCounterMode

    return dict(FlopCounterMode(display=False).flop_registry)


def _load_flop_formulas() -> dict[Any, Callable[..., int]]:
    try:
        from torch.utils.flop_counter import flop_registry
    except (ImportError, AttributeError):
        pass
    else:
        return flop_registry
    try:
        return _public_flop_formulas()
    except Exception:  # any torch without it, or whose constructor changed
        return _fallback_flop_formulas()


FLOP_FORMULAS: dict[Any, Callable[..., int]] = _load_flop_formulas()


# ----------------------------------------------------------------------------------------------
# overload_packet(func): an aten OpOverload's packet (aten.add.Tensor -> aten.add), the key of
# FLOP_FORMULAS. Private: the ``_overloadpacket`` attribute (torch 1.12 to 2.14 at least), read per
# dispatched op. Fallbacks: the public ``overloadpacket`` property (the same object, one Python call
# more an op); then the packet looked up by the op's name in torch.ops (``aten.add.Tensor`` ->
# torch.ops.aten.add), a few microseconds an op.


def _fallback_overload_packet(func: Any) -> Any:
    namespace, name = str(func).split(".")[:2]
    return getattr(getattr(torch.ops, namespace), name)


def _load_overload_packet(probe: Any = None) -> Callable[[Any], Any]:
    probe = torch.ops.aten.mm.default if probe is None else probe
    for attr in ("_overloadpacket", "overloadpacket"):
        try:
            getattr(probe, attr)
        except AttributeError:
            continue
        return operator.attrgetter(attr)
    return _fallback_overload_packet


overload_packet: Callable[[Any], Any] = _load_overload_packet()


# ----------------------------------------------------------------------------------------------
# DEVICE_CONSTRUCTORS: the tensor factories that take a device, from
# torch.utils._device._device_constructors() (torch 2.0 to 2.14 at least; what ``with torch.device(d)``
# redirects). zoo builds models on meta by giving these device="meta". Fallback: the same list, written
# out (torch 2.14's, by public name; names a torch lacks are skipped). Cost: a factory a later torch adds
# is missing, so a builder calling it makes that tensor on the CPU (zoo's build moves stray CPU tensors
# to meta; a large one costs memory and time).

_FACTORY_NAMES = (
    "empty",
    "empty_permuted",
    "empty_strided",
    "empty_quantized",
    "ones",
    "arange",
    "bartlett_window",
    "blackman_window",
    "eye",
    "fft.fftfreq",
    "fft.rfftfreq",
    "full",
    "hamming_window",
    "hann_window",
    "kaiser_window",
    "linspace",
    "logspace",
    "nested.nested_tensor",
    "rand",
    "randn",
    "randint",
    "randperm",
    "range",
    "sparse_coo_tensor",
    "sparse_compressed_tensor",
    "sparse_csr_tensor",
    "sparse_csc_tensor",
    "sparse_bsr_tensor",
    "sparse_bsc_tensor",
    "tril_indices",
    "triu_indices",
    "zeros",
    "asarray",
    "tensor",
    "as_tensor",
    "scalar_tensor",
)


def _fallback_device_constructors() -> frozenset[Any]:
    found = set()
    for dotted in _FACTORY_NAMES:
        obj: Any = torch
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            found.add(obj)
    return frozenset(found)


def _load_device_constructors() -> frozenset[Any]:
    try:
        from torch.utils._device import _device_constructors
    except (ImportError, AttributeError):
        return _fallback_device_constructors()
    return frozenset(_device_constructors())


DEVICE_CONSTRUCTORS: frozenset[Any] = _load_device_constructors()


# ----------------------------------------------------------------------------------------------
# clear_forward_hooks(module): drop the forward and forward-pre hooks on ``module`` itself (zoo.meta_copy:
# the caller's hooks must not run on pktchar's copy; pktchar has no handles to them). Private: the dicts
# ``module._forward_hooks`` and ``module._forward_pre_hooks`` (every torch release; 2.14 has them).
# Fallback: clear every dict in the module's __dict__ whose name has "forward" and "hook" in it (in 2.14
# that is the same two plus their with_kwargs / always_called companions). Cost: a torch that stores them
# under other names keeps the caller's hooks on the copy; they then run during the profile, on meta tensors.


def _clear_hook_dicts(module: nn.Module) -> None:
    module._forward_hooks.clear()
    module._forward_pre_hooks.clear()


def _fallback_clear_forward_hooks(module: nn.Module) -> None:
    for name, value in vars(module).items():
        if "forward" in name and "hook" in name and isinstance(value, dict):
            value.clear()


def _load_clear_forward_hooks(probe: Any = None) -> Callable[[nn.Module], None]:
    probe = nn.Module() if probe is None else probe
    if all(isinstance(getattr(probe, a, None), dict) for a in ("_forward_hooks", "_forward_pre_hooks")):
        return _clear_hook_dicts
    return _fallback_clear_forward_hooks


clear_forward_hooks: Callable[[nn.Module], None] = _load_clear_forward_hooks()


# ----------------------------------------------------------------------------------------------
# ddp_logging_data(ddp): DistributedDataParallel._get_ddp_logging_data() (torch 1.9 to 2.14 at least,
# "a prototype interface"): DDP's own record, of which the training worker reports bucket_sizes and
# rebuilt_bucket_sizes. No public equivalent. Fallback: {}. Cost: the train-sync report shows "—" for
# DDP's own bucket sizes; pktchar's predicted buckets and every measured byte are unaffected.


def _fallback_ddp_logging_data(ddp: Any) -> dict[str, Any]:
    return {}


def ddp_logging_data(ddp: Any) -> dict[str, Any]:
    get = getattr(ddp, "_get_ddp_logging_data", None)
    if get is None:
        return _fallback_ddp_logging_data(ddp)
    return dict(get())


# ----------------------------------------------------------------------------------------------
# DDP_FIRST_BUCKET_BYTES: the limit of DDP's first gradient bucket after the rebuild, when bucket_cap_mb
# is left at its default: torch.distributed._DEFAULT_FIRST_BUCKET_BYTES (from torch._C._distributed_c10d;
# torch 1.10 to 2.14 at least, 1 MiB throughout). Fallback: 1 MiB (1,048,576), the value torch has always
# had. Cost: a torch that changed it would make train-sync's predicted first bucket wrong (the run's
# measurement shows it).


def _fallback_first_bucket_bytes() -> int:
    return MIB


def _load_first_bucket_bytes() -> int:
    try:
        import torch.distributed as dist

        return int(dist._DEFAULT_FIRST_BUCKET_BYTES)
    except (ImportError, AttributeError):
        return _fallback_first_bucket_bytes()


DDP_FIRST_BUCKET_BYTES: int = _load_first_bucket_bytes()


# ----------------------------------------------------------------------------------------------
# weights_top1(w): a torchvision weights entry's ImageNet-1K top-1 accuracy, from ``w.meta["_metrics"]``
# (torchvision 0.13 to 0.29 at least; an underscored key of its meta dict). No public equivalent.
# Fallback: None. Cost: `pktchar models` describes the model without its top-1 accuracy.


def weights_top1(w: Any) -> float | None:
    metrics = w.meta.get("_metrics")
    if not isinstance(metrics, dict):
        return None
    top1 = metrics.get("ImageNet-1K", {}).get("acc@1")
    return None if top1 is None else float(top1)
