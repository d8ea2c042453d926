"""The ``pktchar`` command: parses arguments, calls the pipeline stages, renders the results."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..core.errors import PktcharError

app = typer.Typer(
    help=(
        "pktchar: what traffic does a split neural network put on the network, and can the network "
        "carry it? Exact payloads per layer and split point at any resolution, packets, rates, 5G QoS."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(msg: str, code: int = 2) -> None:
    print(f"pktchar: error: {msg}", file=sys.stderr)
    raise typer.Exit(code)


def _flags(fn: Callable[..., Any]) -> dict[str, str]:
    """A command's fields and their flags, from its typer declarations: ``{"edge_link": "--edge-link"}``."""
    import typing

    out = {}
    for name, hint in typing.get_type_hints(fn, include_extras=True).items():
        info = next(
            (m for m in getattr(hint, "__metadata__", ()) if isinstance(m, typer.models.OptionInfo)), None
        )
        if info is not None:
            # in an Annotated declaration typer keeps the first name where a default would be
            names = [info.default, *(info.param_decls or ())]
            decls = [d for d in names if isinstance(d, str) and d.startswith("--")]
            out[name] = decls[0].split("/")[0] if decls else "--" + name.replace("_", "-")
    return out


def friendly(fn: F) -> F:
    """Turn known errors into one line on stderr and a non-zero exit; never a bare traceback. A library
    error names fields (`` `link` ``); the line names this command's flags (``--link``) instead."""
    from ..core.errors import raw, say

    flags: dict[str, str] = {}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PktcharError as e:
            if not flags:
                flags.update(_flags(fn))
            _fail(say(raw(e), flags))
        except KeyboardInterrupt:
            print("pktchar: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except typer.Exit:
            raise
        except OSError as e:
            if e.filename is None:  # not about a file: a defect, reported below as an internal error
                if os.environ.get("PKTCHAR_DEBUG"):
                    raise
                _fail(f"internal error: {type(e).__name__}: {e} (set PKTCHAR_DEBUG=1 for the traceback)", 1)
            _fail(f"cannot use {e.filename}: {e.strerror or e}")
        except Exception as e:  # last resort: still one line, with a way to see more
            if os.environ.get("PKTCHAR_DEBUG"):
                raise
            _fail(f"internal error: {type(e).__name__}: {e} (set PKTCHAR_DEBUG=1 for the traceback)", 1)
        return None

    return wrapper  # type: ignore[return-value]


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


class Only(str, Enum):
    all = "all"
    layers = "layers"
    splits = "splits"


def _console() -> Any:
    from rich.console import Console

    # piped output keeps long shapes on one line; a terminal keeps its own width
    return Console() if sys.stdout.isatty() else Console(width=200)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        from ..present.views import wrote_line

        print(f"pktchar: {wrote_line(out)}", file=sys.stderr)


class TableFmt(str, Enum):
    table = "table"
    md = "md"
    tex = "tex"
    csv = "csv"
    json = "json"


class Proto(str, Enum):
    tcp = "tcp"
    udp = "udp"


def _transport(proto: Proto, mtu: int, ipv6: bool, app_header: int) -> Any:
    from ..core.packets import Transport

    if mtu < 1:
        raise PktcharError(f"MTU must be positive, got {mtu}")
    return Transport(proto=proto.value, mtu=mtu, ip=6 if ipv6 else 4, app_header=app_header)


def _budget(latency: str | None, fps: float | None) -> tuple[float | None, float | None]:
    from ..core.units import parse_duration

    if fps is not None and fps <= 0:
        raise PktcharError(f"--fps must be positive, got {fps:g}")
    return (parse_duration(latency) if latency else None), fps


def _model_list(text: str) -> list[str]:
    """Comma-separated model names, each checked (unknown ones fail with close matches)."""
    from ..model.zoo import resolve

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise PktcharError("no model given")
    for n in names:
        resolve(n)
    return names


def _progress(description: str) -> Callable[[Any], Any]:
    from rich.progress import track

    def wrap(items: Any) -> Any:
        return track(items, description=description, transient=True, console=_err_console())

    return wrap


def _err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _warn(msg: str) -> None:
    """One line on stderr, the command goes on."""
    print(f"pktchar: warning: {msg}", file=sys.stderr)


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
    from ..model.codec import check_coder, measure

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


ProtoOpt = Annotated[
    Proto, typer.Option("--proto", help="Transport: tcp, or udp with app-level fragmentation")
]
MtuOpt = Annotated[int, typer.Option("--mtu", help="Link MTU in bytes (1500; 9000 for jumbo frames)")]
Ipv6Opt = Annotated[bool, typer.Option("--ipv6", help="IPv6 headers (40 B) instead of IPv4 (20 B)")]
AppHdrOpt = Annotated[int, typer.Option("--app-header", min=0, help="Application frame header bytes a frame")]
LatencyOpt = Annotated[str | None, typer.Option("--latency", "-l", help="Latency budget a frame, e.g. 10ms")]
FpsOpt = Annotated[
    float | None, typer.Option("--fps", help="Frames a second (budget 1/fps unless --latency)")
]
RadioOpt = Annotated[
    str | None,
    typer.Option(
        "--radio",
        help="Radio profile the flow must fit: imt2020-peak, imt2020-user (ITU-R M.2410), urban-macro, "
        "rural-macro, indoor-hotspot, crowd, dense-urban, high-speed-train, high-speed-vehicle, airplane "
        "(3GPP TS 22.261 Table 7.1-1). Default imt2020-peak unless --link; none: no rate check",
    ),
]
DirectionOpt = Annotated[
    str, typer.Option("--direction", help="Radio direction: ul (uplink, device to edge) or dl (downlink)")
]
ReliabilityOpt = Annotated[
    float | None,
    typer.Option(
        "--reliability",
        help="Share of packets that must arrive in time, in (0, 1); PER = 1 - it. Default 0.999 "
        "(3GPP TS 22.261 Table 7.10.1-1, split AI/ML image recognition)",
    ),
]
CompressionOpt = Annotated[
    float | None,
    typer.Option(
        "--compression",
        "-c",
        help="Parametric coded/raw ratio, e.g. 0.1 (the 10% of the Yonsei paper's Table 1)",
    ),
]
CoderOpt = Annotated[
    str | None,
    typer.Option(
        "--coder", help="Measure a real coder on real activations: zstd, lz4, sparse (ReLU-zero bitmap)"
    ),
]
MeasureResOpt = Annotated[
    str, typer.Option("--measure-res", help="Resolution of the real forward pass for --coder")
]
ImagesOpt = Annotated[
    Path | None,
    typer.Option("--images", help="Folder of images for --coder (default: matplotlib's sample photos)"),
]


def _present(output: Any, fmt: str, out: Path | None = None) -> None:
    """A command's ``views.Output``: rich tables on a terminal, or md/csv/tex/json text to stdout or ``out``."""
    if fmt == "table" and out is None:
        output.print(_console())
        return
    _emit(output.text(fmt), out)


@contextlib.contextmanager
def _bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Progress of a live run on stderr: yields ``progress(done, total)``. On a terminal, a progress bar
    whose description is the run's current phase (:mod:`pktchar.core.phases`); elsewhere (a pipe, a log file,
    CI) one line a phase and one every 10 s of progress, each with the seconds since the start."""
    import logging
    import time

    from ..core.phases import LOGGER

    log = logging.getLogger(LOGGER)
    start = time.monotonic()

    class Shown(logging.Handler):
        def __init__(self, show: Callable[[str], None]) -> None:
            super().__init__(logging.INFO)
            self.show = show

        def emit(self, record: logging.LogRecord) -> None:
            self.show(record.getMessage())

    def line(text: str) -> None:
        print(f"pktchar: [{time.monotonic() - start:.0f} s] {text}", file=sys.stderr, flush=True)

    level, propagate = log.level, log.propagate
    log.setLevel(logging.INFO)
    log.propagate = False
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        cols = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*cols, console=_err_console(), transient=True) as bar:
            task = bar.add_task(description, total=None)
            handler: logging.Handler = Shown(lambda text: bar.update(task, description=text))
            log.addHandler(handler)
            try:
                yield lambda done, n: bar.update(task, completed=done, total=n)
            finally:
                log.removeHandler(handler)
                log.setLevel(level)
                log.propagate = propagate
        return
    said = {"at": 0.0}

    def progress(done: int, n: int) -> None:
        now = time.monotonic()
        if done >= n or now - said["at"] >= 10:
            said["at"] = now
            line(f"{description} {done}/{n}")

    handler = Shown(line)
    log.addHandler(handler)
    try:
        yield progress
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _live_end(
    outputs: list[Any],
    data: Any,
    fmt: Fmt,
    files: list[Path],
    errors: list[str],
    wrote_report: Path | None = None,
) -> None:
    """The end of every live command: its tables (or JSON), every file it wrote, and exit 3 with one line
    when a run stopped early (its measurements are in the files)."""
    from ..present import views

    if fmt == Fmt.json:
        _present(views.Output([], data), "json")
    else:
        for o in outputs:
            _present(o, "table")
    lines = [views.wrote_line(p) for p in files] + (views.folder_lines(wrote_report) if wrote_report else [])
    for line in lines:
        print(f"pktchar: {line}", file=sys.stderr)
    if errors:
        print(f"pktchar: error: {errors[0]} (measurements kept in the result files)", file=sys.stderr)
        raise typer.Exit(3)


def _writable_folder(path: Path | None, flag: str) -> None:
    """Create ``path`` (a folder the command will write) now, before any work, or fail with one line."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise PktcharError(f"{flag} {path}: a file of that name exists (give a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PktcharError(f"{flag} {path}: cannot create the folder: {e.strerror or e}") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise PktcharError(f"{flag} {path}: the folder is not writable")


def _command_line(name: str) -> str:
    return f"pktchar {name} " + " ".join(sys.argv[2:])


@app.command("models")
@friendly
def models_cmd(
    contains: Annotated[str | None, typer.Argument(help="Only names containing this text")] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format")] = Fmt.table,
) -> None:
    """List every model pktchar knows, with parameter counts (torchvision's and models/)."""
    from rich.progress import track

    import pktchar.cli.torch_first  # noqa: F401  torch first, with the collector paused, then frozen

    from ..model import zoo
    from ..present import views

    rows = zoo.describe(contains, progress=lambda xs: track(xs, description="building on meta", transient=True,
                                                            disable=not sys.stderr.isatty()))  # fmt: skip
    _present(views.models_output(rows), fmt.value)


@app.command("profile")
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
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format")] = Fmt.table,
    only: Annotated[
        Only, typer.Option("--only", help="Print only the layers or the split points")
    ] = Only.all,
    num_classes: Annotated[int | None, typer.Option("--num-classes", min=1, help="Classifier width")] = None,
    in_channels: Annotated[int, typer.Option("--in-channels", min=1, help="Input channels")] = 3,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Checkpoint (state dict) to check against the model")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", "-s", help="Show one split point's flow: packets, rate, QoS")
    ] = None,
    fps: FpsOpt = None,
    latency: LatencyOpt = None,
    link: Annotated[str | None, typer.Option("--link", help="Link rate for --split, e.g. 100mbit")] = None,
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

    from ..core.dtypes import check_dtype
    from ..core.qos import requirements
    from ..core.radio import DEFAULT_RADIO, carrier
    from ..core.units import parse_rate
    from ..model.codec import Coding, check_coder
    from ..model.profiler import profile
    from ..present import views

    # each option on its own first (issue: a missing budget hid a bad --compression or --split), then
    # the options together
    lat, fps = _budget(latency, fps)
    link_bps = parse_rate(link) if link else None
    via = carrier(radio, link_bps, direction, DEFAULT_RADIO)
    transport = _transport(proto, mtu, ipv6, app_header)
    Coding(dtype=check_dtype(dtype), compression=compression)  # checks --compression's range
    if coder is not None:
        check_coder(coder)
        if compression is not None:
            raise PktcharError("use either --compression (a ratio) or --coder (measured), not both")
    p = profile(model, res, dtype=dtype, batch=batch, in_channels=in_channels, num_classes=num_classes,
                weights=str(weights) if weights else None)  # fmt: skip
    chosen = p.split(split) if split else None
    if split and lat is None and fps is None:
        raise PktcharError("--split needs a budget: --fps 30 and/or --latency 10ms")
    if not split and (link or radio or reliability is not None):
        _warn("--link, --radio and --reliability describe a flow: they need --split (ignored)")
    measured = _measure_all([model], coder, p.dtype, measure_res, weights, images, num_classes).get(model)
    coding = Coding(dtype=p.dtype, compression=compression, measured=measured)
    if chosen is not None:
        req = requirements(
            coding.split_bytes(chosen),
            latency=lat,
            fps=fps,
            transport=transport,
            link=link_bps,
            carrier=via,
            reliability=reliability,
        )
        _present(views.flow_output(p, chosen, coding, req), fmt.value, out)
    else:
        coded = coding if (compression is not None or coder is not None) else None
        if fmt.value == "csv" and only.value == "all":
            _warn("a CSV file holds one table: the layers; --only splits gives the split points")
        _present(views.profile_output(p, coded, only.value), fmt.value, out)


@app.command("table")
@friendly
def table_cmd(
    models: Annotated[
        str, typer.Option("--models", "-m", help="Comma-separated models")
    ] = "alexnet,vgg16,resnet50",
    res: Annotated[str, typer.Option("--res", "-r", help="Comma-separated resolutions")] = "224,8k,x10,x100",
    dtype: Annotated[str, typer.Option("--dtype", "-d", help="fp32, fp16, bf16, int8, int4")] = "fp32",
    compression: CompressionOpt = None,
    coder: CoderOpt = None,
    measure_res: MeasureResOpt = "224",
    images: ImagesOpt = None,
    latency: LatencyOpt = None,
    fps: FpsOpt = None,
    link: Annotated[
        str | None, typer.Option("--link", help="Link rate each cell must fit, e.g. 1gbit")
    ] = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    proto: ProtoOpt = Proto.tcp,
    mtu: MtuOpt = 1500,
    ipv6: Ipv6Opt = False,
    app_header: AppHdrOpt = 24,
    fmt: Annotated[TableFmt, typer.Option("--format", "-f", help="Output format")] = TableFmt.table,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout")
    ] = None,
) -> None:
    """Packet-size table of "Distributed Architecture and Packet Characteristics for Real-Time Distributed
    Learning Services" (Yonsei Univ.), Table 1, exactly: min~max payload over the split points.

    Rows are resolutions, columns models; each cell names the split at each end and, with --latency or
    --fps, the rate each end needs, whether --radio/--link carries it, and the 5QIs that fit; the paper's
    own cells are compared with the exact ranges."""
    import pktchar.cli.torch_first  # noqa: F401  torch first, with the collector paused, then frozen

    from ..core.dtypes import check_dtype
    from ..core.radio import DEFAULT_RADIO, carrier
    from ..core.resolution import parse_resolutions
    from ..core.units import parse_rate
    from ..model.table import packet_table
    from ..present import views

    names = _model_list(models)
    ress = parse_resolutions(res)
    dtype = check_dtype(dtype)
    lat, fps = _budget(latency, fps)
    via = carrier(radio, parse_rate(link) if link else None, direction, DEFAULT_RADIO)
    if (radio or link) and lat is None and fps is None:
        raise PktcharError("--radio/--link need a budget: --fps 30 and/or --latency 10ms")
    transport = _transport(proto, mtu, ipv6, app_header)
    measured = _measure_all(names, coder, dtype, measure_res, None, images, None)
    pt = packet_table(
        names,
        ress,
        dtype=dtype,
        compression=compression,
        measured=measured,
        transport=transport,
        latency=lat,
        fps=fps,
        progress=_progress("profiling"),
        carrier=via,
        reliability=reliability,
    )
    _present(views.packet_table_output(pt), fmt.value, out)


@app.command("qos")
@friendly
def qos_cmd(
    payload: Annotated[str, typer.Option("--payload", "-p", help="Payload a frame, e.g. 270kB, 1.5MB, 1000")],
    latency: LatencyOpt = None,
    fps: FpsOpt = None,
    link: Annotated[str | None, typer.Option("--link", help="Link rate, e.g. 100mbit, 1gbit")] = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    proto: ProtoOpt = Proto.tcp,
    mtu: MtuOpt = 1500,
    ipv6: Ipv6Opt = False,
    app_header: AppHdrOpt = 24,
    fmt: Annotated[TableFmt, typer.Option("--format", "-f", help="Output format")] = TableFmt.table,
) -> None:
    """QoS characteristics of a flow (PAYLOAD bytes a frame within a latency budget), whether the radio or
    link carries it, and the standardized 5QIs (TS 23.501 Table 5.7.4-1) that fit it."""
    from ..core.qos import requirements
    from ..core.radio import DEFAULT_RADIO, carrier
    from ..core.units import parse_bytes, parse_rate
    from ..present import views

    nbytes = parse_bytes(payload)
    if nbytes <= 0:
        raise PktcharError(f"--payload must be positive, got {payload!r}")
    lat, fps = _budget(latency, fps)
    link_bps = parse_rate(link) if link else None
    req = requirements(
        nbytes,
        latency=lat,
        fps=fps,
        transport=_transport(proto, mtu, ipv6, app_header),
        link=link_bps,
        carrier=carrier(radio, link_bps, direction, DEFAULT_RADIO),
        reliability=reliability,
    )
    _present(views.qos_output(req), fmt.value)


@app.command("report")
@friendly
def report_cmd(
    models: Annotated[str, typer.Argument(help="Model or comma-separated models, e.g. vgg16,resnet50")],
    res: Annotated[str, typer.Option("--res", "-r", help="Comma-separated resolutions")] = "224,1080p,4k,8k",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report folder (default reports/<models>-<res>/)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty report folder")] = False,
    dtype: Annotated[str, typer.Option("--dtype", "-d", help="fp32, fp16, bf16, int8, int4")] = "fp32",
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
    link: Annotated[str | None, typer.Option("--link", help="Link rate, e.g. 100mbit")] = None,
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

    from ..core.dtypes import check_dtype
    from ..core.radio import DEFAULT_RADIO, carrier
    from ..core.resolution import parse_resolutions
    from ..core.units import parse_rate
    from ..present.report import collect, write

    names = _model_list(models)
    ress = parse_resolutions(res)
    dtype = check_dtype(dtype)
    lat, fps = _budget(latency, fps)
    link_bps = parse_rate(link) if link else None
    via = carrier(radio, link_bps, direction, DEFAULT_RADIO)
    transport = _transport(proto, mtu, ipv6, app_header)
    target = (
        out
        or Path("reports")
        / f"{'-'.join(n.replace('/', '_').replace(':', '_') for n in names)}-"
        f"{'-'.join(r.label for r in ress)}"
    )
    _writable_folder(target, "--out")
    if any(target.iterdir()) and not force:
        raise PktcharError(f"{target} exists and is not empty: choose another --out or pass --force")
    splits: str | dict[str, str] | None = split
    if split and "=" in split:
        pairs = [x.split("=", 1) for x in split.split(",") if x.strip()]
        splits = {k.strip(): v.strip() for k, v in pairs}
        unknown = set(splits) - set(names)
        if unknown:
            raise PktcharError(f"--split names models not in the report: {', '.join(sorted(unknown))}")
    measured = _measure_all(names, coder, dtype, measure_res, weights, images, None)
    data = collect(
        names,
        [r.label for r in ress],
        dtype=dtype,
        compression=compression,
        measured=measured,
        transport=transport,
        latency=lat,
        fps=fps,
        link=link_bps,
        split=splits,
        progress=_progress("profiling"),
        carrier=via,
        reliability=reliability,
    )
    write(data, target, force=force)
    from ..present.views import folder_lines

    for line in folder_lines(target):
        print(f"pktchar: {line}", file=sys.stderr)


testbed_app = typer.Typer(help="Manage the namespace testbed.", no_args_is_help=True)
app.add_typer(testbed_app, name="testbed")


@testbed_app.command("clean")
@friendly
def testbed_clean(
    all_: Annotated[bool, typer.Option("--all", help="Also namespaces of runs that are still alive")] = False,
) -> None:
    """Remove namespaces, links and processes that crashed or killed replays left behind."""
    from ..testbed.netns import clean_stale, require_root

    require_root()
    removed = clean_stale(everything=all_)
    print(f"removed {len(removed)} namespace(s){': ' + ', '.join(removed) if removed else ''}")


class CaptureBackend(str, Enum):
    tcpdump = "tcpdump"
    scapy = "scapy"


@app.command("replay")
@friendly
def replay_cmd(
    model: Annotated[str, typer.Argument(help="Model name or path/to/file.py:factory")],
    split: Annotated[str, typer.Option("--split", "-s", help="Split point whose payload is sent")],
    res: Annotated[str, typer.Option("--res", "-r", help="Input resolution")] = "224",
    dtype: Annotated[str, typer.Option("--dtype", "-d", help="fp32, fp16, bf16, int8, int4")] = "fp32",
    compression: CompressionOpt = None,
    coder: CoderOpt = None,
    measure_res: MeasureResOpt = "224",
    images: ImagesOpt = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Checkpoint for the real activations")
    ] = None,
    link: Annotated[str, typer.Option("--link", help="Uplink rate (device egress), e.g. 80mbit")] = "80mbit",
    downlink: Annotated[
        str | None, typer.Option("--downlink", help="Downlink rate (default: as uplink)")
    ] = None,
    delay: Annotated[
        str | None, typer.Option("--delay", help="One-way delay, e.g. 5ms (needs netem)")
    ] = None,
    loss: Annotated[
        float | None, typer.Option("--loss", help="Loss fraction, e.g. 0.01 (needs netem)")
    ] = None,
    mtu: MtuOpt = 1500,
    proto: ProtoOpt = Proto.tcp,
    fps: FpsOpt = None,
    frames: Annotated[int, typer.Option("--frames", "-n", min=1, help="Frames to send")] = 20,
    pcap: Annotated[
        Path | None, typer.Option("--pcap", help="Capture file (default captures/<model>-...pcap)")
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Edge TCP/UDP port")] = 5201,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate/--no-calibrate", help="Time a bulk transfer first: the link's real rate"),
    ] = True,
    capture: Annotated[
        CaptureBackend,
        typer.Option("--capture", help="Capture with tcpdump (libpcap) or scapy's AsyncSniffer"),
    ] = CaptureBackend.tcpdump,
    snaplen: Annotated[
        int | None,
        typer.Option(
            "--snaplen",
            min=64,
            help="Bytes kept of each packet (default 162: every header, not the payload; 262144: whole packets)",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="HOST:PORT of `pktchar serve` on another machine (no namespaces)"),
    ] = None,
    capture_iface: Annotated[
        str | None, typer.Option("--capture-iface", help="With --to: capture on this interface here (root)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write a compare report folder")
    ] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format (table or json)")] = Fmt.table,
) -> None:
    """Send a split's real payloads over a shaped link between namespaces, capture them, compare (root).

    A device and an edge namespace are joined by a veth pair shaped with tbf; the device sends real
    coded activations as frames, the edge answers each; tcpdump captures in the edge namespace, and
    the capture is compared with the prediction. Everything is removed at the end."""
    from ..core.units import parse_duration, parse_rate
    from ..testbed.replay import ReplayConfig, replay

    _writable_folder(report, "--report")
    _writable_folder(pcap.parent if pcap else None, "--pcap")
    cfg = ReplayConfig(
        model=model, split=split, res=res, dtype=dtype, compression=compression, coder=coder,
        measure_res=measure_res, weights=str(weights) if weights else None, images=str(images) if images else None,
        link=parse_rate(link), downlink=parse_rate(downlink) if downlink else None,
        delay=parse_duration(delay, "delay") if delay else None, loss=loss, mtu=mtu, proto=proto.value, fps=fps,
        frames=frames, pcap=pcap, port=port, calibrate=calibrate, capture=capture.value, snaplen=snaplen,
        to=to, capture_iface=capture_iface,
    )  # fmt: skip
    _finish_run(lambda progress: replay(cfg, progress=progress), frames, fmt, report)


def _finish_run(go: Callable[[Any], Any], total: int, fmt: Fmt, report: Path | None) -> None:
    """Run a testbed scenario with a progress bar, show it, list its files; exit 3 when a peer was lost,
    130 when interrupted (the files are written either way)."""
    from ..present import views
    from ..testbed.runner import Interrupted

    interrupted = False
    with _bar("frames") as progress:
        try:
            result = go(progress)
        except Interrupted as e:
            result, interrupted = e.result, True
    if report is not None and result.comparison is not None:
        from ..present.run_report import write_comparison

        write_comparison(result.comparison, report, force=True, extra=views.run_extra(result))
    _present(views.run_output(result), "json" if fmt == Fmt.json else "table")
    for line in views.files_lines(result) + (
        views.folder_lines(report) if report and result.comparison else []
    ):
        print(f"pktchar: {line}", file=sys.stderr)
    if interrupted:
        print(f"pktchar: interrupted ({len(result.frames)} frames measured and kept)", file=sys.stderr)
        raise typer.Exit(130)
    if result.error:
        print(
            f"pktchar: error: {result.error} ({len(result.frames)} frames measured and kept in "
            f"{result.artifacts.result})",
            file=sys.stderr,
        )
        raise typer.Exit(3)


class Create(str, Enum):
    sequential = "sequential"
    parallel = "parallel"
    both = "both"


@app.command("upload")
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
        typer.Option("--device-cpu", help="CPU cores the device may use, e.g. 0.25 (a cgroup quota)"),
    ] = None,
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
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a report folder (md, tex, figures, json)")
    ] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format (table or json)")] = Fmt.table,
) -> None:
    """Upload a model to an edge server in partitions while queries offload what is built (IONN), live (root).

    The edge builds each partition for real (modules, weights, a warm-up run) on the upload thread
    (sequential) or on a create thread (parallel); the device queries back to back from the start,
    offloading the built prefix. Upload time, builds, stalls and queries, measured against predicted."""
    from ..core.units import parse_rate
    from ..present import views
    from ..testbed.upload import UploadConfig, check, upload

    names = _model_list(models)
    _writable_folder(report, "--report")
    _writable_folder(pcap.parent if pcap else None, "--pcap")
    cfgs = [UploadConfig(model=m, link=parse_rate(link), create=create.value, partitions=partitions,
                         queries_after=queries_after, device_cpu=device_cpu, res=res,
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
        from ..present.run_report import write_upload

        write_upload(reps, report, command=_command_line("upload"), force=True)
    outputs = [views.upload_output(r) for r in reps]
    outputs += [views.Output([views.upload_table1(reps)], None)] if len(reps) > 1 else []
    data = [r.to_dict() for r in reps] if len(reps) > 1 else reps[0].to_dict()
    files = [p for r in reps for m in r.modes for p in m.result.artifacts.written()]
    _live_end(outputs, data, fmt, files, [n for r in reps for n in r.notes], report)


@app.command("fleet")
@friendly
def fleet_cmd(
    model: Annotated[str | None, typer.Argument(help="Model every device runs (or --scenario FILE)")] = None,
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, help="Devices in the fleet")] = 3,
    split: Annotated[
        str | None, typer.Option("--split", "-s", help="Split point whose payload each device sends")
    ] = None,
    res: Annotated[str, typer.Option("--res", "-r", help="Input resolution")] = "224",
    dtype: Annotated[str, typer.Option("--dtype", "-d", help="fp32, fp16, bf16, int8, int4")] = "fp32",
    compression: CompressionOpt = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames a second each device sends")] = 10.0,
    uplink: Annotated[
        str, typer.Option("--uplink", help="Each device's own uplink, e.g. 100mbit")
    ] = "100mbit",
    edge_link: Annotated[
        str, typer.Option("--edge-link", help="The shared link into the edge, e.g. 100mbit")
    ] = "100mbit",
    stagger: Annotated[bool, typer.Option("--stagger", help="Offset device k's frames by k/(N fps)")] = False,
    frames: Annotated[int, typer.Option("--frames", min=2, help="Frames each device sends")] = 30,
    latency: LatencyOpt = None,
    radio: RadioOpt = None,
    direction: DirectionOpt = "ul",
    reliability: ReliabilityOpt = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="A mixed fleet from a TOML file")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Grow the fleet 1..N devices, e.g. 1..8")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="HOST:PORT of `pktchar serve`: every device on this host, no shaping"),
    ] = None,
    capture_iface: Annotated[
        str | None, typer.Option("--capture-iface", help="With --to: capture on this interface here (root)")
    ] = None,
    pcap: Annotated[Path | None, typer.Option("--pcap", help="Capture file (at the edge)")] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a report folder (md, tex, figures, json)")
    ] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format (table or json)")] = Fmt.table,
) -> None:
    """Many devices to one edge server (root): each device's own shaped uplink, one shared shaped link into
    the edge. Predicted (packetization, both token buckets) and measured: goodput, latency, lateness,
    fairness; --sweep finds where the edge link saturates and where a frame first misses its budget."""
    from ..core.units import parse_duration, parse_rate
    from ..present import views
    from ..testbed.fleetrun import FleetConfig, GroupSpec, check, fleet, load_scenario
    from ..testbed.fleetrun import sweep as run_sweep

    _writable_folder(report, "--report")
    _writable_folder(pcap.parent if pcap else None, "--pcap")
    lat = parse_duration(latency) if latency else None
    edge = parse_rate(edge_link)
    if scenario is not None:
        groups, top = load_scenario(scenario)
        edge = parse_rate(str(top.get("edge_link", edge_link)))
        stagger = bool(top.get("stagger", stagger))
        frames = int(top.get("frames", frames))
        lat = parse_duration(str(top["latency"])) if "latency" in top else lat
    else:
        if model is None or split is None:
            raise PktcharError("give MODEL and --split (or --scenario FILE)")
        parse_rate(uplink)
        groups = [GroupSpec(model, split, devices, res, dtype, compression, fps, uplink, "d")]
    cfg = FleetConfig(groups, edge, stagger, frames, lat, pcap, to=to, capture_iface=capture_iface)
    check(cfg)
    with _bar("frames") as progress:
        if sweep:
            lo, _, hi = sweep.partition("..")
            if not (lo.strip() == "1" and hi.strip().isdigit()):
                raise PktcharError(f"--sweep takes 1..N, e.g. 1..8, got {sweep!r}")
            runs = run_sweep(cfg, int(hi), progress)
        else:
            runs = [fleet(cfg, progress)]
    from ..core.fleet_model import saturation_n

    g = groups[0]
    budget = lat if lat is not None else 1 / g.fps
    if sweep:
        sat = saturation_n(runs[0].result.prediction.flows[0].frames[0].payload, g.fps, edge)
        miss = next((r.devices for r in runs if max(d.late_fraction for d in r.predicted.devices) > 0), None)
        qos = views.fleet_qos(runs[-1], radio, direction, reliability)[0]  # the largest fleet's flows
        out = views.Output(
            [views.sweep_table(runs), qos], [r.to_dict() for r in runs], views.sweep_lines(runs, sat, miss)
        )
    else:
        out = views.fleet_output(runs[0], radio, direction, reliability)
    if report is not None:
        from ..present.run_report import write_fleet

        write_fleet(runs, report, budget=budget, command=_command_line("fleet"))
    files = [p for r in runs for p in r.result.artifacts.written()]
    errors = [r.result.error for r in runs if r.result.error]
    _live_end([out], out.data, fmt, files, errors, report)


@app.command("serve")
@friendly
def serve_cmd(
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="TCP port to listen on")] = 5201,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on")] = "0.0.0.0",
    once: Annotated[bool, typer.Option("--once", help="Stop after one replay's last frame")] = False,
) -> None:
    """The edge side on another machine: receive pktchar frames, answer each (for `replay --to HOST:PORT`).

    Prints one JSON line a frame (the edge's own clock); Ctrl-C stops it."""
    import socket

    from ..testbed.endpoint import receive_tcp

    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((bind, port))
    except OSError as e:
        raise PktcharError(f"cannot listen on {bind}:{port}: {e.strerror} (choose another --port)") from e
    finally:
        probe.close()
    print(
        f"pktchar: serving on {bind}:{port} (replay --to THIS-HOST:{port}; Ctrl-C to stop)", file=sys.stderr
    )
    rc = receive_tcp(port, bind, forever=not once)
    if rc:
        raise typer.Exit(rc)


@app.command("compare")
@friendly
def compare_cmd(
    pcap: Annotated[Path, typer.Argument(help="Capture (pcap) to analyse")],
    prediction: Annotated[
        Path | None, typer.Option("--prediction", "-p", help="Prediction JSON (default: beside the pcap)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write a report folder (md, tex, figures)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a non-empty report folder")] = False,
    fmt: Annotated[TableFmt, typer.Option("--format", "-f", help="Output format")] = TableFmt.table,
    partial: Annotated[
        bool, typer.Option("--partial", help="A truncated capture: analyse the packets before the cut")
    ] = False,
) -> None:
    """Measured against predicted for a capture (pcap or pcapng; Ethernet, Linux cooked SLL/SLL2):
    packets, sizes, wire bytes, goodput, frame times."""
    from ..present import views
    from ..testbed.runner import compare_capture

    _writable_folder(out, "--out")
    if out is not None and any(out.iterdir()) and not force:
        raise PktcharError(f"{out} exists and is not empty: choose another --out or pass --force")
    c = compare_capture(pcap, prediction, partial=partial)
    if out is not None:
        from ..present.run_report import write_comparison

        write_comparison(c, out, force=force)
        for line in views.folder_lines(out):
            print(f"pktchar: {line}", file=sys.stderr)
    _present(views.compare_output(c), fmt.value)


@app.command("wireshark-dissector")
@friendly
def wireshark_dissector_cmd(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Default replay port (a Wireshark preference)")
    ] = 5201,
) -> None:
    """Print a Wireshark Lua dissector for pktchar's framing (use: tshark -X lua_script:pktchar.lua)."""
    from ..testbed.dissector import lua_dissector

    sys.stdout.write(lua_dissector(port))


class Hook(str, Enum):
    none = "none"
    fp16 = "fp16"
    bf16 = "bf16"


@app.command("train-sync")
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
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a report folder (md, tex, figures, json)")
    ] = None,
    fmt: Annotated[Fmt, typer.Option("--format", "-f", help="Output format (table or json)")] = Fmt.table,
) -> None:
    """Data-parallel training (DistributedDataParallel over gloo) across namespaces, every link captured (root).

    Real forward and backward passes on the CPU in each worker; the bucket plan, gloo's ring all-reduce and
    broadcasts with their framing, and the TCP/IP overhead predicted from first principles and measured per
    step; the paper's two-board result explained with them."""
    from ..core.units import parse_rate
    from ..present import views
    from ..testbed.trainsync import TrainConfig, parse_workers, train_runs

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
        from ..present.run_report import write_train

        write_train(reps, report, command=_command_line("train-sync"), force=True)
    outputs = [views.train_output(r) for r in reps]
    outputs += [views.Output([views.train_workers_table(reps)], None)] if len(reps) > 1 else []
    data = [r.to_dict() for r in reps] if len(reps) > 1 else reps[0].to_dict()
    files = [p for r in reps if r.result is not None for p in r.result.artifacts.written()]
    _live_end(outputs, data, fmt, files, [r.error for r in reps if r.error], report)


def main() -> None:
    """The console script. Usage errors (an unknown option, a value out of range) are one line too,
    naming the command's --help, instead of typer's framed box."""
    try:
        rc = app(standalone_mode=False)
    except KeyboardInterrupt:
        print("pktchar: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Abort:
        print("pktchar: aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as e:  # typer's usage errors (click's UsageError family)
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `pktchar` or `pktchar testbed`: the help
            e.show()  # type: ignore[attr-defined]
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        msg = " ".join(e.format_message().split())
        print(f"pktchar: error: {msg}{where}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
