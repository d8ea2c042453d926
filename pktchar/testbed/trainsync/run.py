"""Entry points: check a configuration, plan it, run it (N namespaces, or locally for one worker), series."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

from ...core.errors import PktcharError
from ...core.phases import phase as announce
from ..capture import default_folder
from ..netns import Link, require_root
from ..runner import Progress, run
from .analysis import StepRow, TrainReport, _loaded, analyse, predict_time
from .host import calibration_sizes, loopback, mean
from .plan import Plan, TrainConfig, make_plan
from .scenario import TrainScenario, worker_cmd

MAX_WORKERS = 8
WORKER_MB = 450  # resident memory of one idle worker process with torch loaded (measured here: ~400 MB)


def check(cfg: TrainConfig) -> None:
    """Every argument, before anything is built."""
    if cfg.workers < 1:
        raise PktcharError(f"`workers` must be 1 or more, got {cfg.workers}")
    if cfg.workers > MAX_WORKERS:
        raise PktcharError(f"`workers` {cfg.workers} is more than this testbed runs ({MAX_WORKERS}: each worker is a "
                           f"process of about {WORKER_MB} MB on {os.cpu_count()} cores, and a ring of more "
                           "would measure CPU contention, not the network)")  # fmt: skip
    avail = _mem_available_mb()
    if avail is not None and cfg.workers * WORKER_MB > avail * 0.8:
        raise PktcharError(f"`workers` {cfg.workers} needs about {cfg.workers * WORKER_MB} MB; this machine has "
                           f"{avail:.0f} MB available")  # fmt: skip
    for name, v in (
        ("batch", cfg.batch),
        ("res", cfg.res),
        ("classes", cfg.classes),
        ("steps", cfg.steps),
    ):
        if v < 1:
            raise PktcharError(f"`{name}` must be 1 or more, got {v}")
    if cfg.hook not in ("none", "fp16", "bf16"):
        raise PktcharError(f"`hook` must be none, fp16 or bf16, got {cfg.hook!r}")
    if cfg.bucket_mb is not None and cfg.bucket_mb <= 0:
        raise PktcharError(f"`bucket_mb` must be positive, got {cfg.bucket_mb:g}")
    if not 1024 <= cfg.port <= 65535:
        raise PktcharError(f"`port` must be 1024..65535, got {cfg.port}")
    if cfg.data and not Path(cfg.data).is_dir():
        raise PktcharError(f"`data` {cfg.data} is not a folder (an ImageFolder: one sub-folder a class)")
    if cfg.data and (found := sum(p.is_dir() for p in Path(cfg.data).iterdir())) > cfg.classes:
        # an ImageFolder's classes are its sub-folders: the workers would refuse it after starting
        raise PktcharError(
            f"`data` {cfg.data} has {found} classes (sub-folders), more than `classes` {cfg.classes}"
        )
    Link(cfg.link)


def _mem_available_mb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return None


def prepare(cfg: TrainConfig) -> Plan:
    """The model on the meta device: its parameters and buffers, then the plan."""
    from ..train_procs import build_model, describe

    try:
        net, _ = build_model(cfg.model, cfg.classes, cfg.freeze, device="meta")
    except PktcharError:
        raise
    except Exception as e:
        raise PktcharError(f"building {cfg.model} failed: {type(e).__name__}: {e}") from e
    plan = make_plan(cfg.model, describe(net), cfg)
    data = (
        f"ImageFolder {cfg.data}"
        if cfg.data
        else "synthetic CIFAR-100-shaped tensors (random pixels and labels)"
    )
    plan.source = (f"{cfg.model} at {cfg.res}x{cfg.res}, batch {cfg.batch}, {cfg.classes} classes, "
                   f"{'frozen backbone' if cfg.freeze else 'full fine-tuning'}, {plan.trainable:,} trainable "
                   f"parameters; data: {data}")  # fmt: skip
    return plan


def train_local(cfg: TrainConfig, plan: Plan) -> TrainReport:
    """One worker: no network, compute only (nothing to synchronise)."""
    r = subprocess.run(worker_cmd(cfg, 0, local=True), capture_output=True, text=True, timeout=3600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    ev = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    for e in ev:
        e["worker"] = 0
    err = next((e["error"] for e in ev if "error" in e), None)
    if r.returncode != 0 and err is None:
        err = f"worker exited {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}"
    comp = next((e for e in ev if e.get("event") == "compute"), {"fwd_s": [], "bwd_s": [], "opt_s": []})

    compute = {k: mean(comp[f"{k}_s"]) for k in ("fwd", "bwd", "opt")}
    compute["total"] = sum(compute.values())
    rows = [StepRow(e["step"], 0, 0, 0, 0, e["t_fwd"] - e["t0"], e["t_bwd"] - e["t_fwd"], e["t_end"] - e["t_bwd"],
                    e["t_end"] - e["t0"]) for e in ev if e.get("event") == "step"]  # fmt: skip
    timing = predict_time(cfg, plan, compute, rows)
    return TrainReport(cfg, plan, plan.source, compute, rows, [], {}, timing, {}, {}, err, None,
                       ["one worker: run locally without a network (nothing to synchronise), compute only"],
                       _loaded([e for e in ev if e.get("event") == "compute"]))  # fmt: skip


def train_sync(cfg: TrainConfig, progress: Progress | None = None, plan: Plan | None = None) -> TrainReport:
    """Check, plan (unless ``plan`` is given), run (N namespaces, or locally for one worker) and compare."""
    check(cfg)
    plan = plan or prepare(cfg)
    if cfg.workers == 1:
        return train_local(cfg, plan)
    require_root()
    variant = (
        "-frozen" if cfg.freeze else f"-{cfg.hook}" if cfg.hook != "none" else ""
    )  # --what-if's runs apart
    name = f"train-sync-{cfg.model}-{cfg.workers}w{variant}.pcap"
    pcap = Path(cfg.pcap) if cfg.pcap else default_folder() / name
    res = run(TrainScenario(cfg, plan), pcap, calibrate_link=cfg.calibrate, progress=progress)
    rep = analyse(cfg, plan, res)
    if rep.error is None and "host" in rep.timing:
        announce("train-sync: gloo's all-reduce alone on loopback")
        rep.timing["host"]["loopback"] = loopback(cfg.workers, calibration_sizes(plan), plan.elem)
    return rep


def parse_workers(text: str) -> list[int]:
    """``2`` or ``1,2,3,4``: the worker counts to run, one run each."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise PktcharError(
            f"`workers` takes a number or numbers separated by commas (e.g. 2 or 1,2,3,4), got {text!r}"
        ) from e
    if not out:
        raise PktcharError("`workers` needs at least one number")
    return out


def train_runs(
    cfg: TrainConfig, workers: list[int], what_if: bool = False, progress: Progress | None = None
) -> list[TrainReport]:
    """One run a worker count; with ``what_if`` also a frozen backbone and fp16 gradients at two workers.
    Every configuration is checked before the first run; a run that stops ends the series (its
    measurements kept)."""
    from dataclasses import replace

    cfgs = []
    for n in workers:
        pcap = cfg.pcap
        if pcap and len(workers) > 1:
            pcap = Path(pcap).with_name(f"{Path(pcap).stem}-{n}w{Path(pcap).suffix or '.pcap'}")
        cfgs.append(replace(cfg, workers=n, pcap=pcap))
    if what_if:
        for tag, kw in (
            ("frozen", {"freeze": True, "hook": "none"}),
            ("fp16", {"freeze": False, "hook": "fp16"}),
        ):
            pcap = Path(cfg.pcap).with_name(f"{Path(cfg.pcap).stem}-{tag}.pcap") if cfg.pcap else None
            cfgs.append(replace(cfg, workers=2, pcap=pcap, **kw))  # type: ignore[arg-type]
    for c in cfgs:
        check(c)
    plans = [prepare(c) for c in cfgs]  # a model that cannot train fails here, before any run
    out = []
    for c, plan in zip(cfgs, plans, strict=True):
        what = " (frozen backbone)" if c.freeze else f" ({c.hook} gradients)" if c.hook != "none" else ""
        announce(f"train-sync: {c.workers} worker{'s' if c.workers > 1 else ''}{what}")
        rep = train_sync(c, progress, plan)
        out.append(rep)
        if rep.error:
            break
    return out


def measured_variants(reps: list[TrainReport]) -> dict[str, TrainReport]:
    """The two-worker runs at 1 Gbit/s, by variant (full, frozen, fp16)."""
    out: dict[str, TrainReport] = {}
    for r in reps:
        if r.config.workers != 2 or r.error or abs(r.config.link - 1e9) > 1:
            continue
        key = (
            "frozen"
            if r.config.freeze
            else "fp16"
            if r.config.hook == "fp16"
            else "full"
            if r.config.hook == "none"
            else ""
        )
        if key and key not in out:
            out[key] = r
    return out
