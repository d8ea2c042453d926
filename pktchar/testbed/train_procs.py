"""A data-parallel training worker: one process per namespace, DistributedDataParallel over gloo.

Run by :mod:`pktchar.testbed.trainsync` inside a worker's namespace with GLOO_SOCKET_IFNAME set to
that namespace's veth and MASTER_ADDR/MASTER_PORT to rank 0's rendezvous (a TCPStore). Prints JSON
lines (wall-clock seconds, the clock tcpdump stamps packets with):

    {"event": "compute", ...}     local steps without DDP: forward, backward, optimizer seconds, and
                                  ``data``: what the worker loaded (an ImageFolder's images and classes
                                  as it found them on disk, the first batch's shape)
    {"event": "ready", ...}       the process group is up
    {"event": "ddp", ...}         DDP constructed (the initial state broadcast is done)
    {"event": "step", ...}        one DDP step: start, forward end, backward end, optimizer end
    {"event": "done", ...}        DDP's own logging data (its bucket sizes), then exit 0
    {"error": "..."}              one line, exit 1

    python -m pktchar.testbed.train_procs --rank R --world N --model M ... (see ``main``)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

PRESETS = ("seed000",)


def emit(d: dict[str, Any]) -> None:
    print(json.dumps(d), flush=True)


def build_model(model: str, classes: int, freeze: bool, device: str = "cpu") -> tuple[Any, list[str]]:
    """The network and the names of its backbone's parameters (frozen with ``freeze``).

    ``seed000`` is the network of "Performance Evaluation of Deep Learning Distributed Training on Edge
    Devices" (KETI/ETRI, 2023): MobileNetV2's feature extractor, global average pooling, Linear(1280, 512)
    + ReLU, Dropout(0.3), Linear(512, classes). For a zoo model the backbone is everything but its last
    Linear layer."""
    import torch
    from torch import nn

    if model == "seed000":
        from torchvision.models import mobilenet_v2

        with torch.device(device):
            feats = mobilenet_v2().features
            net = nn.Sequential()
            net.add_module("features", feats)
            net.add_module("pool", nn.AdaptiveAvgPool2d(1))
            net.add_module("flatten", nn.Flatten())
            net.add_module("fc1", nn.Linear(1280, 512))
            net.add_module("relu", nn.ReLU())
            net.add_module("drop", nn.Dropout(0.3))
            net.add_module("fc2", nn.Linear(512, classes))
        backbone = [f"features.{n}" for n, _ in feats.named_parameters()]
    else:
        from ..model import zoo

        spec = zoo.resolve(model)
        try:
            net = zoo.build(spec, device=device, num_classes=classes)
        except Exception:
            net = zoo.build(spec, device=device)
        linears = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
        backbone = [n for n, _ in net.named_parameters() if head is None or not n.startswith(head + ".")]
    if freeze:
        names = set(backbone)
        for n, p in net.named_parameters():
            if n in names:
                p.requires_grad_(False)
    return net, backbone


def describe(net: Any) -> dict[str, Any]:
    """Parameters and buffers in registration order: name, elements, bytes an element, dtype, trainable."""
    return {
        "params": [
            [
                n,
                p.numel(),
                p.element_size(),
                str(p.dtype).removeprefix("torch."),
                bool(p.requires_grad),
                p.dim(),
            ]
            for n, p in net.named_parameters()
        ],
        "buffers": [
            [n, b.numel(), b.element_size(), str(b.dtype).removeprefix("torch."), False, b.dim()]
            for n, b in net.named_buffers()
        ],
    }


def batches(args: argparse.Namespace) -> tuple[Iterator[Any], dict[str, Any]]:
    """An endless iterator of (images, labels): an ImageFolder at ``args.data`` or synthetic CIFAR-100-shaped
    tensors (random pixels: the traffic does not depend on them); and what was loaded, for the worker's
    ``compute`` event: the source, and for a folder its images and classes as found on disk."""
    import torch

    if args.data:
        from torchvision import datasets, transforms

        ds = datasets.ImageFolder(
            args.data,
            transform=transforms.Compose([transforms.Resize((args.res, args.res)), transforms.ToTensor()]),
        )
        if len(ds.classes) > args.classes:
            raise ValueError(
                f"the ImageFolder {args.data} has {len(ds.classes)} classes, more than the head's "
                f"{args.classes}"
            )
        per_class = [0] * len(ds.classes)
        for _, target in ds.samples:
            per_class[target] += 1
        info = {"source": "ImageFolder", "folder": args.data, "images": len(ds), "classes": list(ds.classes),
                "per_class": per_class}  # fmt: skip
        g = torch.Generator().manual_seed(args.rank)
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, generator=g)

        def folder() -> Iterator[Any]:
            while True:
                yield from loader

        return folder(), info

    def synthetic() -> Iterator[Any]:
        g = torch.Generator().manual_seed(1000 + args.rank)
        while True:
            yield (
                torch.randn(args.batch, 3, args.res, args.res, generator=g),
                torch.randint(0, args.classes, (args.batch,), generator=g),
            )

    return synthetic(), {"source": "synthetic", "classes": args.classes}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pktchar.testbed.train_procs")
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--world", type=int, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--freeze", action="store_true")
    ap.add_argument("--bucket-mb", type=float, default=None)  # None: DDP's default
    ap.add_argument("--hook", default="none", choices=("none", "fp16", "bf16"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--compute-steps", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.3)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--local", action="store_true", help="one worker, no process group (compute only)")
    ap.add_argument("--collectives", default="", help="bytes to all-reduce alone first, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except Exception as e:  # one line for the orchestrator
        import re

        # gloo prefixes its messages with its source location ("[/__w/.../pair.cc:598] ..."): drop it
        msg = re.sub(r"\[[^\]]*\.(?:cc|cpp|h):\d+\]\s*", "", " ".join(str(e).split())) or type(e).__name__
        emit({"error": f"rank {args.rank}: {type(e).__name__}: {msg[:400]}", "t": time.time()})
        return 1


def _run(args: argparse.Namespace) -> int:
    import datetime

    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net, backbone = build_model(args.model, args.classes, args.freeze)
    net.train()
    if args.freeze and args.model == "seed000":
        net.features.eval()  # a frozen backbone runs in inference mode (Keras trainable=False)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    data, loaded = batches(args)

    def step(model: Any) -> tuple[float, float, float, float]:
        x, y = next(data)
        loaded.setdefault("batch_shape", list(x.shape))  # the first batch's images, as the model gets them
        t0 = time.time()
        out = model(x)
        loss = loss_fn(out, y)
        t1 = time.time()
        loss.backward()
        t2 = time.time()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return t0, t1, t2, time.time()

    def fwd_bwd() -> float:
        """A forward and backward on the plain model (no DDP: nothing sent), the gradients dropped (no
        optimizer step: the replicas stay equal); returns when the forward ended."""
        x, y = next(data)
        loss = loss_fn(net(x), y)
        t = time.time()
        loss.backward()
        opt.zero_grad(set_to_none=True)
        return t

    fwd, bwd, ops = [], [], []
    for k in range(args.compute_steps + 1):  # the first is a warm-up
        t0, t1, t2, t3 = step(net)
        if k:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            ops.append(t3 - t2)
    emit({"event": "compute", "rank": args.rank, "fwd_s": fwd, "bwd_s": bwd, "opt_s": ops, "data": loaded})
    if args.local:
        for k in range(args.steps):
            t0, t1, t2, t3 = step(net)
            emit({"event": "step", "rank": 0, "step": k, "t0": t0, "t_fwd": t1, "t_bwd": t2, "t_end": t3})
        emit({"event": "done", "rank": 0})
        return 0
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .train_clock import Probe, time_collectives

    timeout = datetime.timedelta(seconds=args.timeout)
    dist.init_process_group("gloo", rank=args.rank, world_size=args.world, timeout=timeout)
    emit({"event": "ready", "rank": args.rank, "t": time.time()})
    sizes = [int(x) for x in args.collectives.split(",") if x]
    probe = Probe(params, args.hook, sizes, 2 if args.hook in ("fp16", "bf16") else 4)
    if sizes:  # the collectives alone on these links first: gloo, the kernel's TCP, the captures
        dist.all_reduce(torch.ones(max(sizes) // probe.elem))  # the pairs' buffers and TCP windows grown once
        emit({"event": "collectives", "rank": args.rank, "elem": probe.elem,
              "sizes": time_collectives(sizes, probe.elem, args.repeats)})  # fmt: skip
        time.sleep(args.gap)
    t0 = time.time()
    ddp = DDP(net, bucket_cap_mb=args.bucket_mb, broadcast_buffers=True)
    probe.attach(ddp)
    emit({"event": "ddp", "rank": args.rank, "t0": t0, "t1": time.time()})
    time.sleep(args.gap)
    for k in range(args.steps):
        emit({"event": "step", "rank": args.rank, "step": k, **probe.step(lambda: step(ddp))})
        time.sleep(args.gap)  # a quiet gap: the capture splits into steps at these
        emit({"event": "plain", "rank": args.rank, "step": k, **probe.between(fwd_bwd)})
        time.sleep(args.gap)
    from ..model.torch_compat import ddp_logging_data

    log = ddp_logging_data(ddp)
    emit({"event": "done", "rank": args.rank, "bucket_sizes": str(log.get("bucket_sizes", "")),
          "rebuilt_bucket_sizes": str(log.get("rebuilt_bucket_sizes", "")), "t": time.time()})  # fmt: skip
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["PRESETS", "build_model", "describe", "main", "os"]
