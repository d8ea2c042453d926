"""The train-sync command: data-parallel training across namespaces, every link captured."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ...core.errors import PktcharError
from ..app import _bar, _command_line, _live_end, _writable_folder, friendly
from ..options import Fmt, LiveFmtOpt, ReportOpt


class Hook(str, Enum):
    none = "none"
    fp16 = "fp16"
    bf16 = "bf16"


@friendly
def train_sync_cmd(
    model: Annotated[
        str | None, typer.Argument(help="Model (zoo name or file.py:factory); or use --preset")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="seed000: MobileNetV2 features + GAP + Linear(1280,512)+ReLU + Dropout(0.3) + "
            "Linear(512,100), 64x64, batch 64 (KETI/ETRI 2023)",
        ),
    ] = None,
    workers: Annotated[
        str, typer.Option("--workers", "-n", help="Workers, or a list for a table: 1,2,3,4")
    ] = "2",
    link: Annotated[str, typer.Option("--link", help="Each worker's link rate, both ways")] = "1gbit",
    batch: Annotated[int, typer.Option("--batch", help="Images a step on each worker")] = 64,
    res: Annotated[int, typer.Option("--res", help="Input height and width")] = 64,
    classes: Annotated[int, typer.Option("--classes", help="Classes of the head")] = 100,
    steps: Annotated[int, typer.Option("--steps", help="DDP steps to run")] = 5,
    freeze_backbone: Annotated[
        bool, typer.Option("--freeze-backbone", help="Train only the head (the backbone in inference mode)")
    ] = False,
    bucket_mb: Annotated[
        float | None,
        typer.Option("--bucket-mb", help="DDP bucket_cap_mb (MiB; default: DDP's 25 with a 1 MiB first)"),
    ] = None,
    hook: Annotated[
        Hook, typer.Option("--hook", help="DDP communication hook: none, fp16 or bf16")
    ] = Hook.none,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="An ImageFolder (default: synthetic CIFAR-100-shaped tensors)"),
    ] = None,
    what_if: Annotated[
        bool, typer.Option("--what-if", help="Also run a frozen backbone and fp16 gradients at two workers")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Rendezvous (TCPStore) port on w0")
    ] = 29500,
    pcap: Annotated[Path | None, typer.Option("--pcap", help="Capture file (w0; w1.. get -w1 etc.)")] = None,
    calibrate: Annotated[
        bool, typer.Option("--calibrate/--no-calibrate", help="Time a bulk transfer w0 -> w1 first")
    ] = True,
    report: ReportOpt = None,
    fmt: LiveFmtOpt = Fmt.table,
) -> None:
    """Data-parallel training (DistributedDataParallel over gloo) across namespaces, every link captured (root).

    Real forward and backward passes on the CPU in each worker; the bucket plan, gloo's ring all-reduce and
    broadcasts with their framing, and the TCP/IP overhead predicted from first principles and measured per
    step; the paper's two-board result explained with them."""
    from ...core.units import parse_rate
    from ...present import views
    from ...testbed.trainsync import TrainConfig, parse_workers, train_runs

    if preset is not None and preset != "seed000":
        raise PktcharError(f"unknown preset {preset!r}: the one preset is seed000")
    if (model is None) == (preset is None):
        raise PktcharError("give a MODEL or --preset seed000 (not both)")
    cfg = TrainConfig(model=preset or model or "", link=parse_rate(link), batch=batch, res=res, classes=classes,
                      steps=steps, freeze=freeze_backbone, bucket_mb=bucket_mb, hook=hook.value,
                      data=str(data) if data else None, pcap=pcap, port=port, calibrate=calibrate)  # fmt: skip
    counts = parse_workers(workers)
    _writable_folder(report, "--report")
    _writable_folder(pcap.parent if pcap else None, "--pcap")
    with _bar("DDP steps") as progress:
        reps = train_runs(cfg, counts, what_if, progress=progress)
    if report is not None:
        from ...present.run_report import write_train

        write_train(reps, report, command=_command_line("train-sync"), force=True)
    outputs = [views.train_output(r) for r in reps]
    outputs += [views.Output([views.train_workers_table(reps)], None)] if len(reps) > 1 else []
    data = [r.to_dict() for r in reps] if len(reps) > 1 else reps[0].to_dict()
    files = [p for r in reps if r.result is not None for p in r.result.artifacts.written()]
    _live_end(outputs, data, fmt, files, [r.error for r in reps if r.error], report)
