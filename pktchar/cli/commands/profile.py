"""The commands over a model's profile, no live run: models, profile, table, qos, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ...core.errors import PktcharError
from ..app import _present, _progress, _warn, _writable_folder, friendly
from ..options import (
    AppHdrOpt,
    CellLinkOpt,
    CoderOpt,
    CompressionOpt,
    DirectionOpt,
    DtypeOpt,
    Fmt,
    FmtOpt,
    ForceOpt,
    FpsOpt,
    ImagesOpt,
    Ipv6Opt,
    LatencyOpt,
    LinkOpt,
    MeasureResOpt,
    MtuOpt,
    Only,
    OutFileOpt,
    Proto,
    ProtoOpt,
    QosLinkOpt,
    RadioOpt,
    ReliabilityOpt,
    ResListOpt,
    SplitLinkOpt,
    TableFmt,
    TableFmtOpt,
    budget,
    model_list,
    transport,
)


def _measure_all(
    models: list[str],
    coder: str | None,
    dtype: str,
    measure_res: str,
    weights: Path | None,
    images: Path | None,
    num_classes: int | None,
) -> dict[str, Any]:
    """Measure ``coder`` on real activations of each model (progress on stderr)."""
    if coder is None:
        return {}
    from ...model.codec import check_coder, measure

    check_coder(coder)
    out = {}
    for m in models:
        out[m] = measure(
            m,
            coder,
            dtype=dtype,
            measure_res=measure_res,
            weights=str(weights) if weights else None,
            images=images,
            num_classes=num_classes,
            progress=_progress(f"measuring {coder} on {m}"),
        )
        print(
            f"pktchar: {m}: {out[m].describe()}: coded/raw {out[m].overall:.3f} ({out[m].seconds:.1f} s)",
            file=sys.stderr,
        )
    return out


@friendly
def models_cmd(
    contains: Annotated[str | None, typer.Argument(help="Only names containing this text")] = None,
    fmt: FmtOpt = Fmt.table,
) -> None:
    """List every model pktchar knows, with parameter counts (torchvision's and models/)."""
    from rich.progress import track

    import pktchar.cli.torch_first  # noqa: F401  torch first, with the collector paused, then frozen

    from ...model import zoo
    from ...present import views

    rows = zoo.describe(contains, progress=lambda xs: track(xs, description="building on meta", transient=True,
                                                            disable=not sys.stderr.isatty()))  # fmt: skip
    _present(views.models_output(rows), fmt.value)


@friendly
def profile_cmd(
    model: Annotated[
        str, typer.Argument(help="Model name (see `pktchar models`) or path/to/file.py:factory")
    ],
    res: Annotated[
        str | None,
        typer.Option(
            "--res",
            "-r",
            help="Input resolution: 224, 720p, 1080p, 4k, 8k, x10, x100 (N x 8K's pixels) or HxW "
            "(height x width). Default: the model's native size.",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size")] = 1,
    dtype: Annotated[
        str, typer.Option("--dtype", "-d", help="Payload dtype: fp32, fp16, bf16, int8, int4")
    ] = "fp32",
    fmt: FmtOpt = Fmt.table,
    only: Annotated[
        Only, typer.Option("--only", help="Print only the layers or the split points")
    ] = Only.all,
    num_classes: Annotated[int | None, typer.Option("--num-classes", min=1, help="Classifier width")] = None,
    in_channels: Annotated[int, typer.Option("--in-channels", min=1, help="Input channels")] = 3,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Checkpoint (state dict) to check against the model")
    ] = None,
    out: OutFileOpt = None,
    split: Annotated[
        str | None, typer.Option("--split", "-s", help="Show one split point's flow: packets, rate, QoS")
    ] = None,
    fps: FpsOpt = None,
    latency: LatencyOpt = None,
    link: SplitLinkOpt = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    compression: CompressionOpt = None,
    coder: CoderOpt = None,
    measure_res: MeasureResOpt = "224",
    images: ImagesOpt = None,
    proto: ProtoOpt = Proto.tcp,
    mtu: MtuOpt = 1500,
    ipv6: Ipv6Opt = False,
    app_header: AppHdrOpt = 24,
) -> None:
    """Exact per-layer and per-split payloads of MODEL at an input resolution (meta tensors, no compute)."""
    import pktchar.cli.torch_first  # noqa: F401  torch first, with the collector paused, then frozen

    from ...core.dtypes import check_dtype
    from ...core.radio import DEFAULT_RADIO, carrier
    from ...core.units import parse_rate
    from ...model.codec import Coding, check_coder
    from ...model.flow import flow_of
    from ...model.profiler import profile
    from ...present import views

    # each option on its own first (issue: a missing budget hid a bad --compression or --split), then
    # the options together
    lat, fps = budget(latency, fps)
    link_bps = parse_rate(link) if link else None
    via = carrier(radio, link_bps, direction, DEFAULT_RADIO)
    tr = transport(proto, mtu, ipv6, app_header)
    Coding(dtype=check_dtype(dtype), compression=compression)  # checks --compression's range
    if coder is not None:
        check_coder(coder)
        if compression is not None:
            raise PktcharError("use either --compression (a ratio) or --coder (measured), not both")
    p = profile(model, res, dtype=dtype, batch=batch, in_channels=in_channels, num_classes=num_classes,
                weights=str(weights) if weights else None)  # fmt: skip
    if not split and (link or radio or reliability is not None):
        _warn("--link, --radio and --reliability describe a flow: they need --split (ignored)")
    flow = flow_of(
        p,
        split,
        compression=compression,
        measure=lambda: _measure_all([model], coder, p.dtype, measure_res, weights, images, num_classes).get(
            model
        ),
        latency=lat,
        fps=fps,
        transport=tr,
        link=link_bps,
        carrier=via,
        reliability=reliability,
    )
    if flow.split is not None and flow.requirements is not None:
        _present(views.flow_output(p, flow.split, flow.coding, flow.requirements), fmt.value, out)
    else:
        coded = flow.coding if (compression is not None or coder is not None) else None
        if fmt.value == "csv" and only.value == "all":
            _warn("a CSV file holds one table: the layers; --only splits gives the split points")
        _present(views.profile_output(p, coded, only.value), fmt.value, out)


@friendly
def table_cmd(
    models: Annotated[
        str, typer.Option("--models", "-m", help="Comma-separated models")
    ] = "alexnet,vgg16,resnet50",
    res: ResListOpt = "224,8k,x10,x100",
    dtype: DtypeOpt = "fp32",
    compression: CompressionOpt = None,
    coder: CoderOpt = None,
    measure_res: MeasureResOpt = "224",
    images: ImagesOpt = None,
    latency: LatencyOpt = None,
    fps: FpsOpt = None,
    link: CellLinkOpt = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    proto: ProtoOpt = Proto.tcp,
    mtu: MtuOpt = 1500,
    ipv6: Ipv6Opt = False,
    app_header: AppHdrOpt = 24,
    fmt: TableFmtOpt = TableFmt.table,
    out: OutFileOpt = None,
) -> None:
    """Packet-size table of "Distributed Architecture and Packet Characteristics for Real-Time Distributed
    Learning Services" (Yonsei Univ.), Table 1, exactly: min~max payload over the split points.

    Rows are resolutions, columns models; each cell names the split at each end and, with --latency or
    --fps, the rate each end needs, whether --radio/--link carries it, and the 5QIs that fit; the paper's
    own cells are compared with the exact ranges."""
    import pktchar.cli.torch_first  # noqa: F401  torch first, with the collector paused, then frozen

    from ...core.dtypes import check_dtype
    from ...core.radio import DEFAULT_RADIO, carrier
    from ...core.resolution import parse_resolutions
    from ...core.units import parse_rate
    from ...model.table import packet_table
    from ...present import views

    names = model_list(models)
    ress = parse_resolutions(res)
    dtype = check_dtype(dtype)
    lat, fps = budget(latency, fps)
    via = carrier(radio, parse_rate(link) if link else None, direction, DEFAULT_RADIO)
    if (radio or link) and lat is None and fps is None:
        raise PktcharError("--radio/--link need a budget: --fps 30 and/or --latency 10ms")
    tr = transport(proto, mtu, ipv6, app_header)
    measured = _measure_all(names, coder, dtype, measure_res, None, images, None)
    pt = packet_table(
        names,
        ress,
        dtype=dtype,
        compression=compression,
        measured=measured,
        transport=tr,
        latency=lat,
        fps=fps,
        progress=_progress("profiling"),
        carrier=via,
        reliability=reliability,
    )
    _present(views.packet_table_output(pt), fmt.value, out)


@friendly
def qos_cmd(
    payload: Annotated[str, typer.Option("--payload", "-p", help="Payload a frame, e.g. 270kB, 1.5MB, 1000")],
    latency: LatencyOpt = None,
    fps: FpsOpt = None,
    link: QosLinkOpt = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    proto: ProtoOpt = Proto.tcp,
    mtu: MtuOpt = 1500,
    ipv6: Ipv6Opt = False,
    app_header: AppHdrOpt = 24,
    fmt: TableFmtOpt = TableFmt.table,
) -> None:
    """QoS characteristics of a flow (PAYLOAD bytes a frame within a latency budget), whether the radio or
    link carries it, and the standardized 5QIs (TS 23.501 Table 5.7.4-1) that fit it."""
    from ...core.qos import requirements
    from ...core.radio import DEFAULT_RADIO, carrier
    from ...core.units import parse_bytes, parse_rate
    from ...present import views

    nbytes = parse_bytes(payload)
    if nbytes <= 0:
        raise PktcharError(f"--payload must be positive, got {payload!r}")
    lat, fps = budget(latency, fps)
    link_bps = parse_rate(link) if link else None
    req = requirements(
        nbytes,
        latency=lat,
        fps=fps,
        transport=transport(proto, mtu, ipv6, app_header),
        link=link_bps,
        carrier=carrier(radio, link_bps, direction, DEFAULT_RADIO),
        reliability=reliability,
    )
    _present(views.qos_output(req), fmt.value)


@friendly
def report_cmd(
    models: Annotated[str, typer.Argument(help="Model or comma-separated models, e.g. vgg16,resnet50")],
    res: ResListOpt = "224,1080p,4k,8k",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report folder (default reports/<models>-<res>/)")
    ] = None,
    force: ForceOpt = False,
    dtype: DtypeOpt = "fp32",
    compression: CompressionOpt = None,
    coder: CoderOpt = None,
    measure_res: MeasureResOpt = "224",
    images: ImagesOpt = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Checkpoint for --coder's forward pass")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            "-s",
            help="Split whose flow is detailed, for all models or as "
            "model=split,model=split (default: each model's cheapest inner split)",
        ),
    ] = None,
    link: LinkOpt = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    fps: FpsOpt = None,
    latency: LatencyOpt = None,
    proto: ProtoOpt = Proto.tcp,
    mtu: MtuOpt = 1500,
    ipv6: Ipv6Opt = False,
    app_header: AppHdrOpt = 24,
) -> None:
    """Write a report folder: report.md, report.tex (+ table fragments), figures (PNG, PDF), report.json."""
    import pktchar.cli.torch_first  # noqa: F401  torch first, with the collector paused, then frozen

    from ...core.dtypes import check_dtype
    from ...core.radio import DEFAULT_RADIO, carrier
    from ...core.resolution import parse_resolutions
    from ...core.units import parse_rate
    from ...present.report import collect, default_folder, parse_splits, write
    from ...present.views import folder_lines

    names = model_list(models)
    ress = parse_resolutions(res)
    dtype = check_dtype(dtype)
    lat, fps = budget(latency, fps)
    link_bps = parse_rate(link) if link else None
    via = carrier(radio, link_bps, direction, DEFAULT_RADIO)
    tr = transport(proto, mtu, ipv6, app_header)
    target = out or default_folder(names, ress)
    _writable_folder(target, "--out")
    if any(target.iterdir()) and not force:
        raise PktcharError(f"{target} exists and is not empty: choose another --out or pass --force")
    splits = parse_splits(split, names)
    measured = _measure_all(names, coder, dtype, measure_res, weights, images, None)
    data = collect(
        names,
        [r.label for r in ress],
        dtype=dtype,
        compression=compression,
        measured=measured,
        transport=tr,
        latency=lat,
        fps=fps,
        link=link_bps,
        split=splits,
        progress=_progress("profiling"),
        carrier=via,
        reliability=reliability,
    )
    write(data, target, force=force)
    for line in folder_lines(target):
        print(f"pktchar: {line}", file=sys.stderr)
