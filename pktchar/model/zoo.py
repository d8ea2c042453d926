"""Model registry: torchvision classifiers, the project's ``models/`` and user factories.

A model is named three ways:

* a torchvision classification model (``vgg16``, ``resnet50``, ...);
* a definition shipped in the project's ``models/`` folder (``alexnet_caffe``,
  ``mobilenet_v1``), installed as the package ``pktchar.zoo_models``;
* a user's own ``path/to/file.py:factory`` (``factory()`` returns an ``nn.Module``).

Models are built directly on the meta device wherever the builder allows it, so
building VGG-16 or RegNet-128GF allocates no weights. Builders that compute
with real tensors while constructing are built on the CPU and moved to meta.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import io
import pkgutil
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core.errors import PktcharError, UnknownModelError, did_you_mean
from .torch_compat import DEVICE_CONSTRUCTORS, clear_forward_hooks, weights_top1

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # "torchvision", "models/<file>.py", or a user file path
    factory: Factory
    default_res: int = 224
    description: str = ""


@lru_cache(maxsize=1)
def _torchvision_specs() -> dict[str, ModelSpec]:
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm)
    specs = {}
    for n in names:
        builder = tvm.get_model_builder(n)
        res, desc = _tv_native(n)
        specs[n] = ModelSpec(n, "torchvision", _tv_factory(builder), default_res=res, description=desc)
    return specs


# Built without weights, ViT-H/14 has image_size 224 (torchvision's IMAGENET1K_SWAG_LINEAR_V1 weights);
# its DEFAULT weights (SWAG_E2E_V1) are for a model built at 518, which a weightless build is not.
_BUILT_RES = {"vit_h_14": 224}


# Model families by name prefix (longest first), with the paper that introduced each.
_FAMILIES = (
    ("efficientnet_v2", "EfficientNetV2 (Tan & Le, 2021)"),
    ("efficientnet", "EfficientNet (Tan & Le, 2019)"),
    ("mobilenet_v2", "MobileNetV2 (Sandler et al., 2018)"),
    ("mobilenet_v3", "MobileNetV3 (Howard et al., 2019)"),
    ("wide_resnet", "Wide ResNet (Zagoruyko & Komodakis, 2016)"),
    ("resnext", "ResNeXt (Xie et al., 2017)"),
    ("resnet", "ResNet (He et al., 2016)"),
    ("alexnet", "AlexNet (Krizhevsky et al., 2012)"),
    ("vgg", "VGG (Simonyan & Zisserman, 2015)"),
    ("densenet", "DenseNet (Huang et al., 2017)"),
    ("googlenet", "GoogLeNet / Inception v1 (Szegedy et al., 2015)"),
    ("inception", "Inception v3 (Szegedy et al., 2016)"),
    ("shufflenet", "ShuffleNet V2 (Ma et al., 2018)"),
    ("squeezenet", "SqueezeNet (Iandola et al., 2016)"),
    ("mnasnet", "MnasNet (Tan et al., 2019)"),
    ("regnet", "RegNet (Radosavovic et al., 2020)"),
    ("vit", "Vision Transformer (Dosovitskiy et al., 2021)"),
    ("swin", "Swin Transformer (Liu et al., 2021)"),
    ("convnext", "ConvNeXt (Liu et al., 2022)"),
    ("maxvit", "MaxViT (Tu et al., 2022)"),
)


def _family(name: str) -> str:
    return next((f for p, f in _FAMILIES if name.startswith(p)), "torchvision classifier")


def _tv_native(name: str) -> tuple[int, str]:
    """The native resolution of a torchvision classifier, from its DEFAULT weights' transforms (the
    crop size, e.g. EfficientNet-B7 600, EfficientNet-V2-L 480), and a one-line description."""
    import torchvision.models as tvm

    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, AttributeError, KeyError):
        return _BUILT_RES.get(name, 224), _family(name)
    w = enum.DEFAULT  # type: ignore[attr-defined]
    if name in _BUILT_RES:  # the weights made for the resolution a weightless build has
        w = next((x for x in enum if _crop(x) == _BUILT_RES[name]), w)
    res = _BUILT_RES.get(name, _crop(w))
    top1 = weights_top1(w)
    desc = f"{_family(name)}, ImageNet-1K; torchvision {w.name} weights"
    if top1 is not None:
        desc += f": top-1 {top1:.1f} % at {res}x{res}"
    return res, desc


def _crop(w: Any) -> int:
    """The crop size of a torchvision weights entry's transforms."""
    t = w.transforms
    crop = t.keywords.get("crop_size") if hasattr(t, "keywords") else None
    if crop is None:
        crop = t().crop_size
    return int(crop[0] if isinstance(crop, list | tuple) else crop)


def _tv_factory(builder: Callable[..., nn.Module]) -> Factory:
    def factory(**kwargs: object) -> nn.Module:
        return builder(weights=None, **kwargs)

    return factory


@lru_cache(maxsize=1)
def _local_specs() -> dict[str, ModelSpec]:
    from .. import zoo_models

    specs: dict[str, ModelSpec] = {}
    for info in pkgutil.iter_modules(zoo_models.__path__):
        mod = importlib.import_module(f"{zoo_models.__name__}.{info.name}")
        for name, entry in getattr(mod, "MODELS", {}).items():
            specs[name] = ModelSpec(
                name,
                f"models/{info.name}.py",
                entry["factory"],
                default_res=entry.get("default_res", 224),
                description=entry.get("description", ""),
            )
    return specs


def registry() -> dict[str, ModelSpec]:
    """Every named model: the project's ``models/`` first, then torchvision's classifiers."""
    specs = dict(_torchvision_specs())
    specs.update(_local_specs())
    return specs


def model_names() -> list[str]:
    return sorted(registry())


def describe(
    contains: str | None = None, progress: Callable[[list[str]], Iterable[str]] | None = None
) -> list[dict[str, object]]:
    """Every model whose name contains ``contains``: source, parameter count (built on meta), native
    resolution and description."""
    reg = registry()
    names = sorted(n for n in reg if contains is None or contains.lower() in n.lower())
    if not names:
        raise PktcharError(f"no model name contains {contains!r}: `pktchar models` lists them all")
    rows: list[dict[str, object]] = []
    for n in progress(names) if progress else names:
        spec = reg[n]
        m = build(spec, device="meta")
        params = sum(p.numel() for p in {id(p): p for p in m.parameters()}.values())
        rows.append({"name": n, "source": spec.source, "params": params, "default_res": spec.default_res,
                     "description": spec.description})  # fmt: skip
    return rows


def _user_spec(ref: str) -> ModelSpec:
    path_s, _, fname = ref.rpartition(":")
    path = Path(path_s)
    if not path.is_file():
        raise UnknownModelError(f"model file {path_s!r} does not exist (expected path/to/file.py:factory)")
    if not fname.isidentifier():
        raise UnknownModelError(f"{ref!r}: {fname!r} is not a Python name (expected path/to/file.py:factory)")
    modname = f"pktchar_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise UnknownModelError(f"cannot import {path_s!r} as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    except Exception as e:  # a user's file may raise anything while importing
        sys.modules.pop(modname, None)
        raise PktcharError(_import_failure(e, path, path_s)) from e
    factory = getattr(module, fname, None)
    if factory is None or not callable(factory):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise UnknownModelError(f"{path_s} has no callable {fname!r}.{did_you_mean(fname, names)}")
    return ModelSpec(ref, str(path), factory)


def _import_failure(e: BaseException, path: Path, shown: str) -> str:
    """Where importing the user's file ``path`` failed, in the user's terms: their file and line
    (a syntax error's own, or the innermost frame of the file), never importlib's frames."""
    here = path.resolve()

    def mine(filename: str | None) -> bool:
        try:
            return filename is not None and Path(filename).resolve() == here
        except (OSError, ValueError):
            return False

    line = None  # the innermost line of the user's file in the traceback
    tb = e.__traceback__
    while tb is not None:
        if mine(tb.tb_frame.f_code.co_filename):
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(e, SyntaxError):
        text = f"{type(e).__name__}: {e.msg}" if e.msg else type(e).__name__
        if mine(e.filename) or not e.filename:
            return f"{shown} line {e.lineno}: {text}"
        via = f" (imported by {shown} line {line})" if line else f" (imported by {shown})"
        return f"{e.filename} line {e.lineno}: {text}{via}"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    where = f"{shown} line {line}" if line else shown
    return f"{where}: {text} (raised while importing {shown})"


def _describe(e: BaseException) -> str:
    tb = e.__traceback__
    line = ""
    while tb is not None:
        line = f" (line {tb.tb_lineno} of {Path(tb.tb_frame.f_code.co_filename).name})"
        tb = tb.tb_next
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}{line}" if msg else f"{type(e).__name__}{line}"


def resolve(name: str) -> ModelSpec:
    """The spec of a named model, a ``file.py:factory`` reference, or an error with close matches."""
    if ":" in name and (name.rpartition(":")[0].endswith(".py") or "/" in name):
        return _user_spec(name)
    reg = registry()
    if name in reg:
        return reg[name]
    lower = {k.lower(): k for k in reg}
    if name.lower() in lower:
        return reg[lower[name.lower()]]
    raise UnknownModelError(
        f"unknown model {name!r}.{did_you_mean(name, reg)} (`pktchar models` lists all; "
        "a model of your own is path/to/file.py:factory)"
    )


def build(spec: ModelSpec, *, device: str = "meta", num_classes: int | None = None) -> nn.Module:
    """Build the model on ``device`` ("meta" allocates no weights) in eval mode."""
    kwargs: dict[str, object] = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model: nn.Module | None = None
    if device == "meta":
        # Every factory on meta first; builders that compute with real tensors while constructing
        # (RegNet's width quantisation) then get meta storage for weights only (their arithmetic
        # stays on the CPU); the last resort is a CPU build moved to meta.
        for factories in (DEVICE_CONSTRUCTORS, _STORAGE):
            try:
                with _MetaBuild(factories), _quiet():
                    model = spec.factory(**kwargs)
                if isinstance(model, nn.Module):
                    model = model.to("meta")  # stray CPU constants
                break
            except TypeError as e:
                if num_classes is not None and "num_classes" in str(e):
                    raise PktcharError(f"{spec.name} does not take num_classes") from e
                model = None
            except Exception:
                model = None
    if model is None:
        try:
            with _quiet():
                model = spec.factory(**kwargs)
        except Exception as e:
            raise PktcharError(f"building {spec.name} failed: {_describe(e)}") from e
        if not isinstance(model, nn.Module):
            raise PktcharError(
                f"{spec.name}: the factory returned {type(model).__name__}, not a torch.nn.Module"
            )
        model = model.to(device)
    if not isinstance(model, nn.Module):
        raise PktcharError(f"{spec.name}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


_INIT_OPS = {
    "normal_",
    "uniform_",
    "fill_",
    "zero_",
    "random_",
    "bernoulli_",
    "exponential_",
    "trunc_normal_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "orthogonal_",
    "constant_",
    "zeros_",
    "ones_",
    "eye_",
    "dirac_",
    "sparse_",
    "clamp_",
    "mul_",
    "div_",
    "add_",
    "sub_",
    "copy_",
    "erfinv_",
}


class _MetaBuild(TorchFunctionMode):
    """Build on the meta device in one mode: the given tensor factories get ``device="meta"`` (all
    of them, as under ``torch.device("meta")``, or only the storage ones), and weight initialisers,
    which have no values to fill, are skipped (their meta kernels are slow Python decompositions,
    most of a model's build time)."""

    def __init__(self, factories: frozenset[object]) -> None:
        super().__init__()
        self.factories = factories

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if (
            getattr(func, "__name__", "") in _INIT_OPS
            and args
            and isinstance(args[0], torch.Tensor)
            and args[0].is_meta
        ):
            return args[0]
        if func in self.factories and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


# what modules allocate parameters and buffers with
_STORAGE = frozenset({torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full})


@contextlib.contextmanager
def _quiet():  # builders print/warn about deprecated args; keep the CLI output clean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device.

    The caller's model is not touched and no weight memory is copied: every
    parameter and buffer is replaced by a meta tensor of the same shape in the
    deepcopy memo, so only the module structure is duplicated.
    """
    memo: dict[int, object] = {}
    for p in model.parameters(recurse=True):
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers(recurse=True):
        memo[id(b)] = torch.empty_like(b, device="meta")
    clone = copy.deepcopy(model, memo)
    for m in clone.modules():  # hooks the caller registered stay on the caller's model only
        clear_forward_hooks(m)
    return clone.eval()


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a checkpoint (a state dict, or a dict holding one under ``state_dict``/``model``)."""
    path = Path(path)
    if not path.is_file():
        raise PktcharError(f"weights file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PktcharError(f"cannot read weights {path}: {_describe(e)}") from e
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise PktcharError(f"{path}: expected a state dict, found {type(obj).__name__}")
    try:
        with warnings.catch_warnings():  # copying into a meta model is a shape check, on purpose
            warnings.simplefilter("ignore")
            model.load_state_dict(obj, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = "; ".join(s.strip() for s in first[1:4]) or first[0]
        raise PktcharError(f"{path} does not fit the model: {detail}") from e
    return model
