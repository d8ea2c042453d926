"""The upload command: a model uploaded to an edge in partitions while queries use what is built (IONN)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..app import _bar, _command_line, _live_end, _writable_folder, friendly
from ..options import DeviceLimit, Fmt, ImagesOpt, LiveFmtOpt, ReportOpt, model_list


class Create(str, Enum):
    sequential = "sequential"
    parallel = "parallel"
    both = "both"


@friendly
def upload_cmd(
    models: Annotated[str, typer.Argument(help="Model, or comma-separated models for a Table 1 of several")],
    link: Annotated[
        str, typer.Option("--link", help="Uplink rate, e.g. 80mbit (the paper's Wi-Fi limit)")
    ] = "80mbit",
    create: Annotated[
        Create,
        typer.Option(
            "--create",
            help="Edge builds partitions on the upload thread (sequential, the old "
            "system), on a create thread that merges arrivals (parallel, the new), or both",
        ),
    ] = Create.both,
    partitions: Annotated[
        str,
        typer.Option("--partitions", help="auto (measured costs), a number (equal bytes), or layer names"),
    ] = "auto",
    queries_after: Annotated[
        int, typer.Option("--queries-after", help="Queries after the upload completes")
    ] = 10,
    device_cpu: Annotated[
        float | None,
        typer.Option("--device-cpu", help="The device's fraction of one core, in (0, 1], e.g. 0.25"),
    ] = None,
    device_limit: Annotated[
        DeviceLimit,
        typer.Option(
            "--device-limit",
            help="How the device is made slow: dilate (time dilation in its process) or cfs (a cgroup CPU "
            "quota at the shortest period)",
        ),
    ] = DeviceLimit.dilate,
    res: Annotated[
        str | None, typer.Option("--res", "-r", help="Input resolution (default: the model's own)")
    ] = None,
    images: ImagesOpt = None,
    pcap: Annotated[
        Path | None, typer.Option("--pcap", help="Capture file (a mode suffix is added for both)")
    ] = None,
    calibrate: Annotated[
        bool, typer.Option("--calibrate/--no-calibrate", help="Time a bulk transfer first")
    ] = True,
    report: ReportOpt = None,
    fmt: LiveFmtOpt = Fmt.table,
) -> None:
    """Upload a model to an edge server in partitions while queries offload what is built (IONN), live (root).

    The edge builds each partition for real (modules, weights, a warm-up run) on the upload thread
    (sequential) or on a create thread (parallel); the device queries back to back from the start,
    offloading the built prefix. Upload time, builds, stalls and queries, measured against predicted."""
    from ...core.units import parse_rate
    from ...present import views
    from ...testbed.upload import UploadConfig, check, upload

    names = model_list(models)
    _writable_folder(report, "--report")
    _writable_folder(pcap.parent if pcap else None, "--pcap")
    cfgs = [UploadConfig(model=m, link=parse_rate(link), create=create.value, partitions=partitions,
                         queries_after=queries_after, device_cpu=device_cpu, device_limit=device_limit.value, res=res,
                         pcap=(pcap.with_name(f"{pcap.stem}-{m}{pcap.suffix}") if len(names) > 1 else pcap) if pcap
                         else None, images=str(images) if images else None, calibrate=calibrate)
            for m in names]  # fmt: skip
    for c in cfgs:
        check(c)
    reps = []
    for c in cfgs:
        with _bar(f"{c.model}: partitions built") as progress:
            reps.append(upload(c, progress=progress))
    if report is not None:
        from ...present.run_report import write_upload

        write_upload(reps, report, command=_command_line("upload"), force=True)
    outputs = [views.upload_output(r) for r in reps]
    outputs += [views.Output([views.upload_table1(reps)], None)] if len(reps) > 1 else []
    data = [r.to_dict() for r in reps] if len(reps) > 1 else reps[0].to_dict()
    files = [p for r in reps for m in r.modes for p in m.result.artifacts.written()]
    _live_end(outputs, data, fmt, files, [n for r in reps for n in r.notes], report)
