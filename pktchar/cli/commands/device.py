"""``pktchar testbed device``: the emulated device's slowdown, measured on real work units."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.errors import PktcharError
from ..app import _bar, _present, friendly
from ..options import DeviceLimit, Fmt, LiveFmtOpt


@friendly
def testbed_device(
    cpu: Annotated[
        float, typer.Option("--cpu", help="The device's fraction of one core, in (0, 1], e.g. 0.25")
    ],
    units: Annotated[
        str, typer.Option("--units", help="Work units to time, each from 1ms to 10s, comma-separated")
    ] = "1ms,10ms,100ms,1s",
    repeats: Annotated[
        int, typer.Option("--repeats", help="Times each unit runs free and emulated (median)")
    ] = 3,
    limit: Annotated[
        DeviceLimit,
        typer.Option(
            "--limit",
            help="How the device is made slow: dilate (time dilation in its process, the default) or cfs "
            "(a cgroup CPU quota at the shortest period; root)",
        ),
    ] = DeviceLimit.dilate,
    fmt: LiveFmtOpt = Fmt.table,
) -> None:
    """Measure the emulated device: each work unit's slowdown against 1 / cpu.

    Each unit (a ResNet bottleneck repeated to the unit's length) runs free and as the device, in a fresh
    process; free is its CPU time run back to back, emulated its wall time as one unit after an idle gap."""
    from ...present import views
    from ...testbed import device as D

    dev = D.check(cpu, limit.value, "cpu", "limit")
    lengths = D.parse_units(units)
    if repeats < 1:
        raise PktcharError(f"`repeats` must be 1 or more, got {repeats}")
    with _bar("device"):
        rep = D.measure(dev, lengths, repeats)
    _present(views.device_output(rep), fmt.value)
