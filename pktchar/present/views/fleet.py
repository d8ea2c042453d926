"""Fleets: many devices into one edge link, the sweep, the QoS of the fleet's flows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..render import Column, Table
from .base import Output, mbit, ms
from .runs import capture_line

if TYPE_CHECKING:
    from ...core.fleet_model import SweepSummary
    from ...core.qos import Requirements
    from ...testbed.fleetrun import FleetRun


def _mbit(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e6:.3f}"


def _ms_col(key: str, title: str) -> Column:
    return Column(key, title, "ms", missing="—")


def _mbit_col(key: str, title: str) -> Column:
    return Column(key, title, "float", digits=3, missing="—")


def fleet_devices_table(r: FleetRun) -> Table:
    rows = []
    for k, (p, m) in enumerate(zip(r.predicted.devices, r.measured, strict=True)):
        j = r.measures(k)  # the one join: predicted, measured and the error of each figure
        rows.append({
            "device": p.device, "frames": m.frames, "offered": mbit(p.offered_bps),
            "gp_p": mbit(j.goodput.predicted), "gp_m": mbit(j.goodput.measured), "gp_e": j.goodput.error,
            "lat_p": ms(j.latency_mean.predicted), "lat_m": ms(j.latency_mean.measured),
            "p50_p": ms(j.latency_p50.predicted), "p50_m": ms(j.latency_p50.measured),
            "p99_p": ms(j.latency_p99.predicted), "p99_m": ms(j.latency_p99.measured),
            "late_p": j.late.predicted, "late_m": j.late.measured,
            "q": ms(p.queueing_mean_s), "wire_p": j.wire_bytes.predicted, "wire_m": j.wire_bytes.measured,
        })  # fmt: skip
    cols = (
        Column("device", "device", "text"),
        Column("frames", "frames", "int"),
        _mbit_col("offered", "offered Mbit/s"),
        _mbit_col("gp_p", "goodput pred."),
        _mbit_col("gp_m", "goodput meas."),
        Column("gp_e", "error", "ratio"),
        _ms_col("lat_p", "latency ms pred."),
        _ms_col("lat_m", "latency ms meas."),
        _ms_col("p50_p", "p50 ms pred."),
        _ms_col("p50_m", "p50 ms meas."),
        _ms_col("p99_p", "p99 ms pred."),
        _ms_col("p99_m", "p99 ms meas."),
        Column("late_p", "late pred.", "percent", missing="—"),
        Column("late_m", "late meas.", "percent", missing="—"),
        _ms_col("q", "queueing ms/pkt pred."),
        Column("wire_p", "wire B pred.", "int"),
        Column("wire_m", "wire B meas.", "int", missing="—"),
    )
    return Table(f"Fleet of {r.devices} into one edge link of {r.predicted.edge_rate / 1e6:g} Mbit/s", cols, rows,
                 caption="latency = send to last byte at the edge; late = through more than the budget after its "
                         "slot; statistics after the first third of the frames (start-up)")  # fmt: skip


def fleet_lines(r: FleetRun) -> list[str]:
    p, gp = r.predicted, r.fleet_measures().goodput
    out = [
        f"offered load {p.offered_bps / 1e6:.3f} Mbit/s (Ethernet frames) against the edge link "
        f"{p.edge_rate / 1e6:g} Mbit/s: utilisation {p.utilisation:.2f}{' (saturated)' if p.saturated else ''}",
        f"aggregate goodput: predicted {_mbit(gp.predicted)} Mbit/s, measured {_mbit(gp.measured)} "
        f"Mbit/s ({'n/a' if gp.error is None else f'{gp.error:+.1%}'})",
        f"fairness (Jain's index): predicted {p.jain:.4f}, measured {'—' if r.jain is None else f'{r.jain:.4f}'}",
    ]
    if r.result.capture:
        out.append(capture_line(r.result.capture, r.result.pcap))
    return out + [f"note: {n}" for n in r.notes + r.result.notes]


def fleet_output(
    r: FleetRun, radio: str | None = None, direction: str = "ul", reliability: float | None = None
) -> Output:
    qos, rows = fleet_qos(r, radio, direction, reliability)
    return Output([fleet_devices_table(r), qos], {**r.to_dict(), "qos": rows}, fleet_lines(r))


def sweep_table(runs: list[FleetRun]) -> Table:
    rows = []
    for r in runs:
        j = r.fleet_measures()  # the one join: aggregate goodput, the worst device's p99 and late share
        rows.append({
            "n": r.devices, "util": r.predicted.utilisation, "gp_p": mbit(j.goodput.predicted),
            "gp_m": mbit(j.goodput.measured), "gp_e": j.goodput.error,
            "p99_p": ms(j.p99.predicted), "p99_m": ms(j.p99.measured),
            "late_p": j.late.predicted, "late_m": j.late.measured, "jain": r.jain,
        })  # fmt: skip
    cols = (
        Column("n", "devices", "int"),
        Column("util", "utilisation", "float", digits=2),
        _mbit_col("gp_p", "goodput Mbit/s pred."),
        _mbit_col("gp_m", "meas."),
        Column("gp_e", "error", "ratio"),
        _ms_col("p99_p", "worst p99 ms pred."),
        _ms_col("p99_m", "meas."),
        Column("late_p", "late pred.", "percent"),
        Column("late_m", "meas.", "percent", missing="—"),
        Column("jain", "Jain meas.", "float", digits=4, missing="—"),
    )
    return Table("Fleet size sweep: one edge link, devices added one by one", cols, rows)


def sweep_summary_lines(s: SweepSummary) -> list[str]:
    """Where the edge link saturates and where a frame first misses its budget, predicted against
    measured (the rules: :func:`pktchar.core.fleet_model.sweep_summary`)."""
    within = f"not within 1..{s.last}"
    miss = s.predicted_miss if s.predicted_miss is not None else f"more than {s.last}"
    return [
        f"the edge link saturates at {s.predicted_saturation} devices (predicted); measured: "
        f"{s.measured_saturation if s.measured_saturation is not None else within}",
        f"a frame first misses its budget at {miss} devices (predicted); measured: "
        f"{s.measured_miss if s.measured_miss is not None else within}",
    ]


def fleet_qos(
    runs_or_cfg: FleetRun, radio: str | None, direction: str, reliability: float | None
) -> tuple[Table, list[dict[str, object]]]:
    """The QoS view of a fleet: each group's device flow over its own uplink (or ``radio``) and the
    aggregate into the edge link: the rate it needs, whether the carrier carries it, the 5QIs that fit
    (the requirements: :func:`pktchar.core.fleet_model.fleet_requirements`). Also the rows as the JSON
    document gives them."""
    r = runs_or_cfg
    reqs = r.requirements(radio, direction, reliability)
    names = [d.name for d in r.demands()] + [f"aggregate into the edge ({r.devices} devices)"]
    rows = [_qos_row(name, req) for name, req in zip(names, reqs, strict=True)]
    table_rows = [{"flow": x["flow"], "rate": x["rate_bps"], "carrier": x["carrier"], "factor": x["carrier_factor"],
                   "verdict": _verdict(req.carried), "fits": x["fits"]} for x, req in zip(rows, reqs, strict=True)]  # fmt: skip
    cols = (
        Column("flow", "flow", "text"),
        Column("rate", "rate needed", "rate"),
        Column("carrier", "carried by", "text"),
        Column("factor", "carrier / needed", "float", digits=3, missing="—"),
        Column("verdict", "carries it", "text"),
        Column("fits", "5QIs that fit", "text"),
    )
    return Table("QoS of the fleet's flows (3GPP TS 23.501 Table 5.7.4-1)", cols, table_rows), rows


def _verdict(carried: bool | None) -> str:
    return "—" if carried is None else "yes" if carried else "NO"


def _qos_row(name: str, req: Requirements) -> dict[str, object]:
    """One flow as the JSON document gives it (its text fields as the view showed them before)."""
    from ...core.units import human_rate

    f = req.carrier_factor
    verdict = "—" if f is None else (f"yes (room x{f:.3g})" if f >= 1 else f"NO (short by x{1 / f:.3g})")
    fits = req.fitting
    return {
        "flow": name,
        "rate": human_rate(req.needed(req.carrier.layer if req.carrier else "ip")),
        "carrier": req.carrier.name if req.carrier else "—",
        "verdict": verdict,
        "fits": ("5QI " if len(fits) == 1 else "5QIs ") + ", ".join(map(str, fits)) if fits else "none",
        "rate_bps": req.needed(req.carrier.layer if req.carrier else "ip"),
        "carrier_factor": f,
        "fitting_5qi": fits,
    }
