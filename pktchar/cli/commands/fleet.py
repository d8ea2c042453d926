"""The fleet command: many devices to one edge server over one shared link, predicted and measured."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..app import _bar, _command_line, _live_end, _writable_folder, friendly
from ..options import (
    CaptureIfaceOpt,
    CompressionOpt,
    DirectionOpt,
    DtypeOpt,
    Fmt,
    LatencyOpt,
    LiveFmtOpt,
    RadioOpt,
    ReliabilityOpt,
    ReportOpt,
    ResOpt,
)

if TYPE_CHECKING:
    from ...testbed.fleetrun import FleetRun


@friendly
def fleet_cmd(
    model: Annotated[str | None, typer.Argument(help="Model every device runs (or --scenario FILE)")] = None,
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, help="Devices in the fleet")] = 3,
    split: Annotated[
        str | None, typer.Option("--split", "-s", help="Split point whose payload each device sends")
    ] = None,
    res: ResOpt = "224",
    dtype: DtypeOpt = "fp32",
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
    capture_iface: CaptureIfaceOpt = None,
    pcap: Annotated[Path | None, typer.Option("--pcap", help="Capture file (at the edge)")] = None,
    report: ReportOpt = None,
    fmt: LiveFmtOpt = Fmt.table,
) -> None:
    """Many devices to one edge server (root): each device's own shaped uplink, one shared shaped link into
    the edge. Predicted (packetization, both token buckets) and measured: goodput, latency, lateness,
    fairness; --sweep finds where the edge link saturates and where a frame first misses its budget."""
    from ...present import views
    from ...testbed import fleetrun

    _writable_folder(report, "--report")
    _writable_folder(pcap.parent if pcap else None, "--pcap")
    cfg = fleetrun.config_from(
        scenario, model=model, split=split, devices=devices, res=res, dtype=dtype, compression=compression,
        fps=fps, uplink=uplink, edge_link=edge_link, stagger=stagger, frames=frames, latency=latency,
        pcap=pcap, to=to, capture_iface=capture_iface,
    )  # fmt: skip
    fleetrun.check(cfg)
    upto = fleetrun.parse_sweep(sweep) if sweep else None
    with _bar("frames") as progress:
        runs = fleetrun.sweep(cfg, upto, progress) if upto is not None else [fleetrun.fleet(cfg, progress)]
    if upto is not None:
        out = _sweep_output(runs, radio, direction, reliability)
    else:
        out = views.fleet_output(runs[0], radio, direction, reliability)
    if report is not None:
        from ...present.run_report import write_fleet

        budget = cfg.latency if cfg.latency is not None else 1 / cfg.groups[0].fps
        write_fleet(runs, report, budget=budget, command=_command_line("fleet"))
    files = [p for r in runs for p in r.result.artifacts.written()]
    errors = [r.result.error for r in runs if r.result.error]
    _live_end([out], out.data, fmt, files, errors, report)


def _sweep_output(runs: list[FleetRun], radio: str | None, direction: str, reliability: float | None) -> Any:
    """A sweep's view: one row a fleet size, the largest fleet's flows against QoS, where it saturates
    (:func:`pktchar.testbed.fleetrun.summarise_sweep`)."""
    from ...present import views
    from ...testbed import fleetrun

    qos = views.fleet_qos(runs[-1], radio, direction, reliability)[0]  # the largest fleet's flows
    lines = views.sweep_summary_lines(fleetrun.summarise_sweep(runs))
    return views.Output([views.sweep_table(runs), qos], [r.to_dict() for r in runs], lines)
