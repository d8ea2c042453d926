"""pktchar.model.torch_compat: every private torch name works on this torch, and every fallback, run with the
private name taken away, gives the same answer on a real case (or the documented degraded one)."""

from __future__ import annotations

import json
import operator
import re
import subprocess
import sys
from collections import OrderedDict, defaultdict, deque, namedtuple
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import torch.utils._device as torch_device
import torch.utils._python_dispatch as torch_dispatch
import torch.utils._pytree as pytree
import torch.utils.flop_counter as flop_counter
from torch import nn

import pktchar
from pktchar.core.errors import PktcharError
from pktchar.model import torch_compat, trace, zoo

ROOT = Path(__file__).resolve().parents[1]


class Mix(nn.Module):
    """Every op with a MAC formula, outside pktchar's own shape formulas: a transposed and a grouped
    convolution, matmul, bmm, baddbmm, addmm, attention (functional and a MultiheadAttention), conv1d."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 16))
        self.tc = nn.ConvTranspose2d(3, 4, 3, stride=2)
        self.gc = nn.Conv2d(4, 8, 3, groups=2)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.gc(self.tc(x)).flatten(2)[:, :, :16]  # (1, 8, 16)
        a = torch.matmul(t, self.w)
        b = torch.bmm(a, a.transpose(1, 2))
        c = torch.baddbmm(b, a, a.transpose(1, 2))
        d = torch.addmm(torch.zeros(8, 16, device=x.device), t[0], self.w)
        e = F.scaled_dot_product_attention(a.unsqueeze(1), a.unsqueeze(1), a.unsqueeze(1))
        f, _ = self.mha(a, a, a)
        g = F.conv1d(t, torch.randn(4, 8, 3, device=x.device))
        return c.sum() + d.sum() + e.sum() + f.sum() + g.sum()


def same_leaves(a: list[object], b: list[object]) -> bool:
    return len(a) == len(b) and all(
        x is y or (not isinstance(x, torch.Tensor) and x == y) for x, y in zip(a, b, strict=True)
    )


# -- TorchDispatchMode ----------------------------------------------------------------------------


def test_dispatch_mode_private_path() -> None:
    assert torch_compat.TorchDispatchMode is torch_dispatch.TorchDispatchMode
    assert issubclass(trace._MacCounter, torch_dispatch.TorchDispatchMode)


def test_dispatch_mode_fallback_is_chosen_and_raises_naming_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(torch_dispatch, "TorchDispatchMode")
    mode = torch_compat._load_dispatch_mode()
    assert mode is torch_compat._FallbackDispatchMode
    with pytest.raises(
        PktcharError, match=rf"torch {re.escape(torch.__version__)} has no .*TorchDispatchMode"
    ):
        with mode():
            pass


# All import-time fallbacks at once, in the real modules: a fresh interpreter imports pktchar with
# TorchDispatchMode, tree_flatten, flop_registry (and FlopCounterMode) and _device_constructors taken away
# (put back right after, so torch itself keeps working), then profiles VGG-16 and ViT-B/16.
ALL_FALLBACKS = r"""
import json, sys
import torch, torchvision
import torch.utils._device as dv, torch.utils._python_dispatch as d, torch.utils._pytree as pt
import torch.utils.flop_counter as fc
taken = [(d, "TorchDispatchMode"), (pt, "tree_flatten"), (fc, "flop_registry"), (fc, "FlopCounterMode"),
         (dv, "_device_constructors")]
saved = {(m, n): getattr(m, n) for m, n in taken}
for m, n in taken:
    delattr(m, n)
try:
    import pktchar.model.profiler
    from pktchar.model import torch_compat as c
finally:
    for (m, n), v in saved.items():
        setattr(m, n, v)
out = {
    "dispatch": c.TorchDispatchMode is c._FallbackDispatchMode,
    "flatten": c.tree_flatten is c._fallback_tree_flatten,
    "flops": c.FLOP_FORMULAS.keys() == c._fallback_flop_formulas().keys(),
    "ctors": c.DEVICE_CONSTRUCTORS is not None and c.DEVICE_CONSTRUCTORS == c._fallback_device_constructors(),
    "vgg16": json.loads(pktchar.model.profiler.profile("vgg16", "224").to_json()),
}
try:
    pktchar.model.profiler.profile("vit_b_16")
    out["vit"] = "profiled"
except pktchar.core.errors.PktcharError as e:
    out["vit"] = str(e)
print(json.dumps(out))
"""


def test_all_import_time_fallbacks_in_a_fresh_process() -> None:
    p = subprocess.run([sys.executable, "-c", ALL_FALLBACKS], capture_output=True, text=True, timeout=300,
                       cwd=ROOT)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["dispatch"] and got["flatten"] and got["flops"] and got["ctors"]
    # VGG-16 (convolutions, linear and stock layers only) gives the very same profile as the private path
    assert got["vgg16"] == json.loads(pktchar.profile("vgg16", "224").to_json())
    assert got["vgg16"]["params"] == 138_357_544
    # ViT-B/16's attention needs the dispatch counter: a clear error naming this torch, not wrong MACs
    assert f"torch {torch.__version__} has no torch.utils._python_dispatch.TorchDispatchMode" in got["vit"]


# -- tree_flatten ---------------------------------------------------------------------------------

NT = namedtuple("NT", "a b")


def nested() -> object:
    t = [torch.empty(i + 1, device="meta") for i in range(6)]
    return (
        {"b": [t[0], (t[1], NT(t[2], [t[3], None]))], "a": OrderedDict(z=t[4], y=3)},
        torch.Size([2, 3]),
        deque([t[5], 1.5]),
        defaultdict(list, {"k": ["s", 7]}),
        torch.max(torch.ones(2, 3), dim=1),  # torch.return_types.max
        "leaf",
    )


def test_tree_flatten_private_path() -> None:
    assert torch_compat.tree_flatten is pytree.tree_flatten
    assert trace.tree_flatten is pytree.tree_flatten


def test_tree_flatten_fallback_equals_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = nested()
    want = pytree.tree_flatten(tree)[0]
    monkeypatch.delattr(pytree, "tree_flatten")
    assert torch_compat._load_tree_flatten() is torch_compat._fallback_tree_flatten
    got, spec = torch_compat._fallback_tree_flatten(tree)
    assert spec is None and len(want) == 16
    assert same_leaves(got, want)


def test_tree_flatten_fallback_profiles_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    want = [pktchar.profile(m, r) for m, r in ((Mix(), 16), ("googlenet", 64), ("swin_t", 64))]
    monkeypatch.setattr(trace, "tree_flatten", torch_compat._fallback_tree_flatten)
    got = [pktchar.profile(m, r) for m, r in ((Mix(), 16), ("googlenet", 64), ("swin_t", 64))]
    assert got == want


# -- flop_registry --------------------------------------------------------------------------------


def test_flop_formulas_private_path() -> None:
    assert torch_compat.FLOP_FORMULAS is flop_counter.flop_registry
    assert torch.ops.aten.convolution in torch_compat.FLOP_FORMULAS


def test_flop_formulas_fallbacks_are_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    private = dict(flop_counter.flop_registry)
    monkeypatch.delattr(flop_counter, "flop_registry")
    monkeypatch.setattr(
        flop_counter, "FlopCounterMode", lambda display: SimpleNamespace(flop_registry=private)
    )
    assert torch_compat._load_flop_formulas() == private  # the public FlopCounterMode's registry
    monkeypatch.delattr(flop_counter, "FlopCounterMode")
    own = torch_compat._load_flop_formulas()  # pktchar's own formulas
    assert own.keys() == torch_compat._fallback_flop_formulas().keys()
    assert {str(k) for k in own} == {"aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.convolution"}


def test_public_flop_registry_equals_private() -> None:
    assert torch_compat._public_flop_formulas() == flop_counter.flop_registry


@pytest.mark.parametrize(("model", "res"), [("mix", 16), ("vit_b_16", 224), ("swin_t", 224)])
def test_own_flop_formulas_give_torchs_macs(monkeypatch: pytest.MonkeyPatch, model: str, res: int) -> None:
    def macs() -> list[tuple[str, int]]:
        p = pktchar.profile(Mix() if model == "mix" else model, res)
        return [("total", p.macs)] + [(la.name, la.macs) for la in p.layers]

    want = macs()
    monkeypatch.setattr(trace, "FLOP_FORMULAS", torch_compat._fallback_flop_formulas())
    got = macs()
    assert got == want
    if model == "mix":  # every op of Mix was counted, none by pktchar's module formulas
        counted = {name.split(".")[0] for name, m in got[1:] if m > 0}
        assert {"tc", "gc", "matmul", "bmm", "baddbmm", "addmm", "scaled_dot_product_attention", "mha",
                "conv1d"} <= counted  # fmt: skip
    if model == "vit_b_16":  # torchvision's docs: 17.56 GFLOPS (as MACs)
        assert round(got[0][1] / 1e9, 2) == 17.56


# -- _overloadpacket ------------------------------------------------------------------------------

OPS = [
    torch.ops.aten.add.Tensor,
    torch.ops.aten.convolution.default,
    torch.ops.aten.mm.default,
    torch.ops.aten.addmm.default,
    torch.ops.aten.bmm.default,
    torch.ops.aten.sym_size.int,
    torch.ops.prim.layout.default,
]


def test_overload_packet_private_path() -> None:
    assert repr(torch_compat.overload_packet) == repr(operator.attrgetter("_overloadpacket"))
    assert all(torch_compat.overload_packet(op) is op._overloadpacket for op in OPS)


def test_overload_packet_fallbacks_equal_private() -> None:
    public = torch_compat._load_overload_packet(SimpleNamespace(overloadpacket=None))
    assert repr(public) == repr(operator.attrgetter("overloadpacket"))
    assert torch_compat._load_overload_packet(SimpleNamespace()) is torch_compat._fallback_overload_packet
    for op in OPS:
        assert public(op) is op._overloadpacket
        assert torch_compat._fallback_overload_packet(op) is op._overloadpacket


def test_overload_packet_fallback_profiles_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    want = pktchar.profile(Mix(), 16)
    monkeypatch.setattr(trace, "overload_packet", torch_compat._fallback_overload_packet)
    assert pktchar.profile(Mix(), 16) == want


# -- _device_constructors -------------------------------------------------------------------------


def test_device_constructors_private_path() -> None:
    private = frozenset(torch_device._device_constructors())
    assert torch_compat.DEVICE_CONSTRUCTORS == private
    assert zoo.DEVICE_CONSTRUCTORS == private  # what the meta build uses


def test_device_constructors_fallback_covers_every_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    private = frozenset(torch_device._device_constructors())
    monkeypatch.delattr(torch_device, "_device_constructors")
    ran = []
    own = torch_compat._fallback_device_constructors
    monkeypatch.setattr(torch_compat, "_fallback_device_constructors", lambda: ran.append(1) or own())
    fallback = torch_compat._load_device_constructors()
    assert ran == [1] and fallback == own()
    assert fallback >= private, sorted(f.__name__ for f in private - fallback)


@pytest.mark.parametrize(
    ("model", "params"),
    # torchvision's model docs: VGG-16 138,357,544; Swin-T 28,288,354; ViT-B/16 86,567,656
    [("vgg16", 138_357_544), ("swin_t", 28_288_354), ("vit_b_16", 86_567_656)],
)
def test_device_constructors_fallback_builds_on_meta(model: str, params: int) -> None:
    import torchvision.models as tvm

    for factories in (torch_compat.DEVICE_CONSTRUCTORS, torch_compat._fallback_device_constructors()):
        with zoo._MetaBuild(factories), zoo._quiet():
            m = tvm.get_model(model, weights=None)
        assert sum(p.numel() for p in m.parameters()) == params
        assert all(t.is_meta for t in [*m.parameters(), *m.buffers()])  # nothing was made on the CPU


# -- _forward_hooks / _forward_pre_hooks ----------------------------------------------------------


def hooked() -> tuple[nn.Module, list[str]]:
    calls: list[str] = []
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    m[0].register_forward_pre_hook(lambda mod, a: calls.append("pre"))
    m[0].register_forward_pre_hook(lambda mod, a, k: calls.append("pre-kw"), with_kwargs=True)
    m[0].register_forward_hook(lambda mod, a, o: calls.append("post"))
    m[0].register_forward_hook(
        lambda mod, a, k, o: calls.append("post-kw"), with_kwargs=True, always_call=True
    )
    m.register_forward_hook(lambda mod, a, o: calls.append("top"))
    return m, calls


def test_clear_forward_hooks_private_path() -> None:
    assert torch_compat.clear_forward_hooks is torch_compat._clear_hook_dicts


@pytest.mark.parametrize("which", ["private", "fallback"])
def test_clear_forward_hooks_on_a_meta_copy(monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    if which == "fallback":
        assert (
            torch_compat._load_clear_forward_hooks(SimpleNamespace())
            is torch_compat._fallback_clear_forward_hooks
        )
        monkeypatch.setattr(zoo, "clear_forward_hooks", torch_compat._fallback_clear_forward_hooks)
    model, calls = hooked()
    clone = zoo.meta_copy(model)
    clone(torch.empty(1, 2, device="meta"))
    assert calls == []  # none of the caller's hooks run on the copy
    model(torch.zeros(1, 2))
    assert calls == ["pre", "pre-kw", "post", "post-kw", "top"]  # and all still run on the caller's model
    p = pktchar.profile(model, (2, 2))  # the profile of a hooked model leaves its hooks alone
    assert p.params == 6 and len(calls) == 5


# -- DistributedDataParallel._get_ddp_logging_data ------------------------------------------------


def test_ddp_logging_data_private_path_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        ddp = DDP(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))
        ddp(torch.randn(3, 4)).sum().backward()
        log = torch_compat.ddp_logging_data(ddp)
        assert log["bucket_sizes"] == ddp._get_ddp_logging_data()["bucket_sizes"]
        assert str(log["bucket_sizes"]) == str((4 * 8 + 8 + 8 * 2 + 2) * 4)  # one bucket: every gradient
        monkeypatch.delattr(DDP, "_get_ddp_logging_data")
        assert torch_compat.ddp_logging_data(ddp) == {}
    finally:
        dist.destroy_process_group()


# -- _DEFAULT_FIRST_BUCKET_BYTES ------------------------------------------------------------------


def test_first_bucket_private_path_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    assert torch_compat.DDP_FIRST_BUCKET_BYTES == dist._DEFAULT_FIRST_BUCKET_BYTES == 1_048_576
    monkeypatch.delattr(dist, "_DEFAULT_FIRST_BUCKET_BYTES")
    assert torch_compat._load_first_bucket_bytes() == 1_048_576


def test_train_sync_plan_reads_the_first_bucket_from_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    from pktchar.testbed.trainsync import TrainConfig, make_plan

    # eight trainable parameters of 0.6 MiB of fp32 gradients each (a chain: rebuilt in reverse order)
    desc = {"params": [[f"p{i}", 157_286, 4, "float32", True, 1] for i in range(8)], "buffers": []}
    cfg = TrainConfig(workers=2, steps=2)
    g = 157_286 * 4
    assert make_plan("x", desc, cfg).rebuilt_buckets == [2 * g, 6 * g]  # 1 MiB first, then 25 MiB
    monkeypatch.setattr(torch_compat, "DDP_FIRST_BUCKET_BYTES", torch_compat._fallback_first_bucket_bytes())
    assert make_plan("x", desc, cfg).rebuilt_buckets == [2 * g, 6 * g]
    monkeypatch.setattr(torch_compat, "DDP_FIRST_BUCKET_BYTES", 3 << 20)  # and it is the value used
    assert make_plan("x", desc, cfg).rebuilt_buckets == [6 * g, 2 * g]


# -- torchvision's weights meta["_metrics"] -------------------------------------------------------


def test_weights_top1_private_path_and_fallback() -> None:
    from torchvision.models import ResNet50_Weights

    w = ResNet50_Weights.IMAGENET1K_V2
    assert torch_compat.weights_top1(w) == w.meta["_metrics"]["ImageNet-1K"]["acc@1"] == 80.858
    assert "top-1 80.9 %" in zoo._tv_native("resnet50")[1]
    assert torch_compat.weights_top1(SimpleNamespace(meta={"num_params": 1})) is None


# -- no private torch name outside torch_compat.py ------------------------------------------------

PRIVATE = [
    re.compile(
        r"\btorch(?:\.\w+)*\._(?!_)\w+"
    ),  # torch.utils._pytree, torch._C, torch.ops.aten._x (not dunders)
    re.compile(r"\bfrom\s+torch[\w.]*\s+import\s+(?:\(\s*)?_\w+"),  # from torch.x import _private
    re.compile(
        r"\._overloadpacket\b|\._forward_(?:pre_)?hooks\b|\._get_ddp_logging_data\b|\b_DEFAULT_FIRST_BUCKET_BYTES\b"
        r"|\b_device_constructors\b|\bflop_registry\b|\b_python_dispatch\b|\b_pytree\b|[\"']_metrics[\"']"
    ),
]


def test_no_private_torch_name_outside_compat() -> None:
    files = sorted([*(ROOT / "pktchar").rglob("*.py"), *(ROOT / "models").rglob("*.py")])
    assert len(files) > 30
    found = [
        f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
        for f in files
        if f.name != "torch_compat.py"
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if any(p.search(line) for p in PRIVATE)
    ]
    assert found == []
    # the patterns do find what they are for
    compat = (ROOT / "pktchar" / "model" / "torch_compat.py").read_text()
    assert all(p.search(compat) for p in PRIVATE)


def test_light_modules_do_not_import_compat() -> None:
    code = (
        "import sys, pktchar, pktchar.testbed.trainsync, pktchar.testbed.train_procs; "
        "print('torch' in sys.modules, 'pktchar.model.torch_compat' in sys.modules)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                       cwd=ROOT)  # fmt: skip
    assert p.stdout.split() == ["False", "False"]
