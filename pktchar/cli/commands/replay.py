"""The testbed's capture commands: replay (one device, one edge), serve (the edge on another machine),
compare (a capture against its prediction), wireshark-dissector, testbed clean."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ...core.errors import PktcharError
from ..app import _bar, _present, _writable_folder, friendly
from ..options import (
    CaptureIfaceOpt,
    CoderOpt,
    CompressionOpt,
    DtypeOpt,
    Fmt,
    ForceOpt,
    FpsOpt,
    ImagesOpt,
    LiveFmtOpt,
    MeasureResOpt,
    MtuOpt,
    Proto,
    ProtoOpt,
    ResOpt,
    TableFmt,
    TableFmtOpt,
)

testbed_app = typer.Typer(
    help="Manage the namespace testbed; measure its emulated device.", no_args_is_help=True
)


@testbed_app.command("clean")
@friendly
def testbed_clean(
    all_: Annotated[bool, typer.Option("--all", help="Also namespaces of runs that are still alive")] = False,
) -> None:
    """Remove namespaces, links and processes that crashed or killed replays left behind."""
    from ...testbed.netns import clean_stale, require_root

    require_root()
    removed = clean_stale(everything=all_)
    print(f"removed {len(removed)} namespace(s){': ' + ', '.join(removed) if removed else ''}")


class CaptureBackend(str, Enum):
    tcpdump = "tcpdump"
    scapy = "scapy"


@friendly
def replay_cmd(
    model: Annotated[str, typer.Argument(help="Model name or path/to/file.py:factory")],
    split: Annotated[str, typer.Option("--split", "-s", help="Split point whose payload is sent")],
    res: ResOpt = "224",
    dtype: DtypeOpt = "fp32",
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
    capture_iface: CaptureIfaceOpt = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write a compare report folder")
    ] = None,
    fmt: LiveFmtOpt = Fmt.table,
) -> None:
    """Send a split's real payloads over a shaped link between namespaces, capture them, compare (root).

    A device and an edge namespace are joined by a veth pair shaped with tbf; the device sends real
    coded activations as frames, the edge answers each; tcpdump captures in the edge namespace, and
    the capture is compared with the prediction. Everything is removed at the end."""
    from ...core.units import parse_duration, parse_rate
    from ...testbed.replay import ReplayConfig, replay

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
    from ...present import views
    from ...testbed.runner import Interrupted

    interrupted = False
    with _bar("frames") as progress:
        try:
            result = go(progress)
        except Interrupted as e:
            result, interrupted = e.result, True
    if report is not None and result.comparison is not None:
        from ...present.run_report import write_comparison

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


@friendly
def serve_cmd(
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="TCP port to listen on")] = 5201,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on")] = "0.0.0.0",
    once: Annotated[bool, typer.Option("--once", help="Stop after one replay's last frame")] = False,
) -> None:
    """The edge side on another machine: receive pktchar frames, answer each (for `replay --to HOST:PORT`).

    Prints one JSON line a frame (the edge's own clock); Ctrl-C stops it."""
    import socket

    from ...testbed.endpoint import receive_tcp

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


@friendly
def compare_cmd(
    pcap: Annotated[Path, typer.Argument(help="Capture (pcap) to analyse")],
    prediction: Annotated[
        Path | None, typer.Option("--prediction", "-p", help="Prediction JSON (default: beside the pcap)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write a report folder (md, tex, figures)")
    ] = None,
    force: ForceOpt = False,
    fmt: TableFmtOpt = TableFmt.table,
    partial: Annotated[
        bool, typer.Option("--partial", help="A truncated capture: analyse the packets before the cut")
    ] = False,
) -> None:
    """Measured against predicted for a capture (pcap or pcapng; Ethernet, Linux cooked SLL/SLL2):
    packets, sizes, wire bytes, goodput, frame times."""
    from ...present import views
    from ...testbed.runner import compare_capture

    _writable_folder(out, "--out")
    if out is not None and any(out.iterdir()) and not force:
        raise PktcharError(f"{out} exists and is not empty: choose another --out or pass --force")
    c = compare_capture(pcap, prediction, partial=partial)
    if out is not None:
        from ...present.run_report import write_comparison

        write_comparison(c, out, force=force)
        for line in views.folder_lines(out):
            print(f"pktchar: {line}", file=sys.stderr)
    _present(views.compare_output(c), fmt.value)


@friendly
def wireshark_dissector_cmd(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Default replay port (a Wireshark preference)")
    ] = 5201,
) -> None:
    """Print a Wireshark Lua dissector for pktchar's framing (use: tshark -X lua_script:pktchar.lua)."""
    from ...testbed.dissector import lua_dissector

    sys.stdout.write(lua_dissector(port))
