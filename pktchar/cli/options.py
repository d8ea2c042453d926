"""The options several commands share, each declared once (flag, short form, help text) as an
``Annotated`` type; a command gives its own default in its signature. Where commands word an option's
help differently (``--link`` describes each command's link), each wording is its own type here.

Also the enums behind choice options, and the helpers that turn the flow options into the stages'
inputs (a budget, a transport). No torch, nothing heavy: every command imports this module.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import PktcharError


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


class TableFmt(str, Enum):
    table = "table"
    md = "md"
    tex = "tex"
    csv = "csv"
    json = "json"


class Only(str, Enum):
    all = "all"
    layers = "layers"
    splits = "splits"


class DeviceLimit(str, Enum):
    """How an emulated device is made slow (pktchar.testbed.device.MECHANISMS)."""

    dilate = "dilate"
    cfs = "cfs"


class Proto(str, Enum):
    tcp = "tcp"
    udp = "udp"


# ----------------------------------------------------------------------------------------------
# The flow: budget, link or radio, transport


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
ProtoOpt = Annotated[
    Proto, typer.Option("--proto", help="Transport: tcp, or udp with app-level fragmentation")
]
MtuOpt = Annotated[int, typer.Option("--mtu", help="Link MTU in bytes (1500; 9000 for jumbo frames)")]
Ipv6Opt = Annotated[bool, typer.Option("--ipv6", help="IPv6 headers (40 B) instead of IPv4 (20 B)")]
AppHdrOpt = Annotated[int, typer.Option("--app-header", min=0, help="Application frame header bytes a frame")]

# --link, as each command words it
LinkOpt = Annotated[str | None, typer.Option("--link", help="Link rate, e.g. 100mbit")]
SplitLinkOpt = Annotated[str | None, typer.Option("--link", help="Link rate for --split, e.g. 100mbit")]
CellLinkOpt = Annotated[str | None, typer.Option("--link", help="Link rate each cell must fit, e.g. 1gbit")]
QosLinkOpt = Annotated[str | None, typer.Option("--link", help="Link rate, e.g. 100mbit, 1gbit")]

# ----------------------------------------------------------------------------------------------
# The payload: dtype, coding


DtypeOpt = Annotated[str, typer.Option("--dtype", "-d", help="fp32, fp16, bf16, int8, int4")]
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
ResOpt = Annotated[str, typer.Option("--res", "-r", help="Input resolution")]
ResListOpt = Annotated[str, typer.Option("--res", "-r", help="Comma-separated resolutions")]

# ----------------------------------------------------------------------------------------------
# Output


FmtOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format")]
TableFmtOpt = Annotated[TableFmt, typer.Option("--format", "-f", help="Output format")]
LiveFmtOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format (table or json)")]
OutFileOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite a non-empty report folder")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Write a report folder (md, tex, figures, json)")
]

# ----------------------------------------------------------------------------------------------
# Live runs between real hosts


CaptureIfaceOpt = Annotated[
    str | None, typer.Option("--capture-iface", help="With --to: capture on this interface here (root)")
]


# ----------------------------------------------------------------------------------------------
# The flow options as the stages take them


def transport(proto: Proto, mtu: int, ipv6: bool, app_header: int) -> Any:
    """``--proto``, ``--mtu``, ``--ipv6``, ``--app-header`` as a :class:`~pktchar.core.packets.Transport`."""
    from ..core.packets import Transport

    if mtu < 1:
        raise PktcharError(f"MTU must be positive, got {mtu}")
    return Transport(proto=proto.value, mtu=mtu, ip=6 if ipv6 else 4, app_header=app_header)


def budget(latency: str | None, fps: float | None) -> tuple[float | None, float | None]:
    """``--latency`` (s) and ``--fps``, each checked."""
    from ..core.units import parse_duration

    if fps is not None and fps <= 0:
        raise PktcharError(f"--fps must be positive, got {fps:g}")
    return (parse_duration(latency) if latency else None), fps


def model_list(text: str) -> list[str]:
    """Comma-separated model names, each checked (unknown ones fail with close matches)."""
    from ..model.zoo import resolve

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise PktcharError("no model given")
    for n in names:
        resolve(n)
    return names
