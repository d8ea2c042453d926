"""The emulated device, measured: the slowdown of single work units of 1 ms to 1 s at 0.1, 0.25 and 0.5 of a
core, by time dilation (pktchar's default) and by a CFS quota with the shortest period the kernel allows at
each fraction (quota 1 ms, period 1 ms / fraction), beside the target 1 / fraction.

Each cell is :func:`pktchar.testbed.device.measure` (what ``pktchar testbed device`` prints): a fresh process
runs a ResNet bottleneck repeated to the unit's length, free (back to back: its CPU time) and as the device
(one unit after 50 ms idle: its wall time), interleaved, ``--repeats`` times; the median of each. Writes its
section of ``reports/benchmarks.md``. ``cfs`` needs root (a cgroup); without root only dilation is run.

    .venv/bin/python benchmarks/bench_device.py [--fractions 0.1,0.25,0.5] [--units 1ms,10ms,100ms,1s]
        [--repeats 5] [--limits dilate,cfs] [--no-write] [--out reports/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from _report import REPORT, write_section

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pktchar.core.units import human_duration  # noqa: E402
from pktchar.testbed import device as D  # noqa: E402

TOLERANCE = 0.10  # issue 18's criterion: within 10% of 1 / fraction


def _cell(rep: D.DeviceReport | None, unit: float) -> list[str]:
    r = rep.row(unit) if rep else None
    if r is None:
        return ["—", "—", "—"]
    flag = "" if abs(r.error) <= TOLERANCE else "**"
    return [f"{r.emulated_s * 1e3:,.2f}", f"{flag}{r.slowdown:.2f}x{flag}", f"{flag}{r.error:+.1%}{flag}"]


def _verdict(name: str, reps: list[D.DeviceReport]) -> str:
    rows = [r for rep in reps for r in rep.rows]
    if not rows:
        return f"{name}: not run"
    within = sum(1 for r in rows if abs(r.error) <= TOLERANCE)
    worst = max(rows, key=lambda r: abs(r.error))
    rep = next(rep for rep in reps if worst in rep.rows)
    return (f"{name}: {within} of {len(rows)} cells within {TOLERANCE:.0%} of 1 / fraction; the worst "
            f"{worst.error:+.1%} ({human_duration(worst.unit_s)} at {rep.device.fraction:g})")  # fmt: skip


def _inside(rep: D.DeviceReport | None, unit: float) -> str:
    r = rep.row(unit) if rep else None
    w = r.windows if r else None
    return f"{w['p5']:.2f}x / {w['median']:.2f}x / {w['p95']:.2f}x" if w else "—"


def inside_table(results: dict[tuple[float, str], D.DeviceReport], unit: float) -> list[str]:
    """Inside the longest units: each 10 ms of work's slowdown, as the 5th percentile, median and 95th."""
    lines = ["| fraction | target | dilation | CFS quota |", "|---|---|---|---|"]
    for f in sorted({f for f, _ in results}):
        dil, cfs = results.get((f, "dilate")), results.get((f, "cfs"))
        lines.append(f"| {f:g} | {1 / f:g}x | {_inside(dil, unit)} | {_inside(cfs, unit)} |")
    return lines


def section(results: dict[tuple[float, str], D.DeviceReport], units: list[float], repeats: int) -> str:
    fractions = sorted({f for f, _ in results})
    head = ("| fraction | target | unit | free ms | free after idle ms | dilation ms | dilation slowdown | "
            "dilation error | CFS period | CFS ms | CFS slowdown | CFS error |")  # fmt: skip
    lines = [head, "|" + "---|" * 12]
    for f in fractions:
        dil, cfs = results.get((f, "dilate")), results.get((f, "cfs"))
        for u in units:
            base = (dil or cfs).row(u) if (dil or cfs) else None  # type: ignore[union-attr]
            free = f"{base.free_s * 1e3:,.2f} | {base.free_cold_s * 1e3:,.2f}" if base else "— | —"
            period = f"{D.DeviceCpu(f, 'cfs').period_us / 1000:g} ms" if cfs else "—"
            lines.append(f"| {f:g} | {1 / f:g}x | {human_duration(u)} | {free} | " + " | ".join(_cell(dil, u))
                         + f" | {period} | " + " | ".join(_cell(cfs, u)) + " |")  # fmt: skip
    loads = [x for rep in results.values() for x in rep.load]
    block = next(iter(results.values())).block_s * 1e3
    verdicts = [_verdict("Time dilation", [r for (_, m), r in results.items() if m == "dilate"]),
                _verdict("CFS quota, shortest period", [r for (_, m), r in results.items() if m == "cfs"])]  # fmt: skip
    return "\n".join([
        "## Emulated device: slowdown of single work units (time dilation vs CFS quota)",
        "",
        f"`benchmarks/bench_device.py --repeats {repeats}` on {os.cpu_count()} cores, Linux {platform.release()}, "
        f"load average {min(loads):.2f} to {max(loads):.2f} while it ran. Work: {D.BLOCK}, {block:.2f} ms "
        "each, repeated to the unit's length. Free: the unit's CPU time, run back to back (median). Emulated: "
        "its wall time as one unit after 50 ms idle in a fresh process under the mechanism (median), so a CFS "
        "period starts with its quota full. Free after idle: the unit's CPU time run free after the same idle "
        "gap (this host's cold start: its caches served others meanwhile), the least an emulated unit can take. "
        "CFS: quota 1 ms (the kernel's least) per period 1 ms / fraction. "
        "Cells off the target by more than 10% are bold.",
        "",
        *lines,
        "",
        *(f"- {v}" for v in verdicts),
        "",
        f"Inside the {human_duration(max(units))} units: the slowdown of each 10 ms of work (its bottlenecks' "
        "wall time against their free time), 5th percentile / median / 95th over every window of every repeat.",
        "",
        *inside_table(results, max(units)),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fractions", default="0.1,0.25,0.5", help="fractions of a core (default: 0.1,0.25,0.5)")
    ap.add_argument("--units", default="1ms,10ms,100ms,1s", help="work units (default: 1ms,10ms,100ms,1s)")
    ap.add_argument(
        "--repeats", type=int, default=5, help="runs of each unit, free and emulated (default: 5)"
    )
    ap.add_argument("--limits", default="dilate,cfs", help="mechanisms; cfs needs root (default: dilate,cfs)")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write it")
    ap.add_argument("--out", type=Path, default=REPORT, help="results file (default: reports/benchmarks.md)")
    a = ap.parse_args(argv)
    units = D.parse_units(a.units)
    limits = [m for m in a.limits.split(",") if m != "cfs" or os.geteuid() == 0]
    results: dict[tuple[float, str], D.DeviceReport] = {}
    for f in (float(x) for x in a.fractions.split(",")):
        for m in limits:
            results[(f, m)] = rep = D.measure(D.check(f, m), units, a.repeats)
            print(f"{f:g} of a core by {m}: " + ", ".join(f"{human_duration(r.unit_s)} {r.slowdown:.2f}x "
                                                        f"({r.error:+.1%})" for r in rep.rows), flush=True)  # fmt: skip
    text = section(results, units, a.repeats)
    print(text)
    if not a.no_write:
        write_section("device", text, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
