"""Fleets: many devices into one edge link, the sweep, the QoS of the fleet's flows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..render import Column, Table
from .base import Output, _err
from .runs import capture_line

if TYPE_CHECKING:
    from ...core.qos import Requirements
    from ...testbed.fleetrun import FleetRun


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.1f}"


def _mbit(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e6:.3f}"


def fleet_devices_table(r: FleetRun) -> Table:
    rows = []
    for p, m in zip(r.predicted.devices, r.measured, strict=True):
        rows.append({
            "device": p.device, "frames": m.frames, "offered": _mbit(p.offered_bps),
            "gp_p": _mbit(p.goodput_bps), "gp_m": _mbit(m.goodput_bps), "gp_e": _err(m.goodput_bps, p.goodput_bps),
            "lat_p": _ms(p.latency_mean_s), "lat_m": _ms(m.latency_mean_s),
            "p50": f"{_ms(p.latency_p50_s)} / {_ms(m.latency_p50_s)}", "p99": f"{_ms(p.latency_p99_s)} / {_ms(m.latency_p99_s)}",
            "late": f"{p.late_fraction:.0%} / {'—' if m.late_fraction is None else f'{m.late_fraction:.0%}'}",
            "q": _ms(p.queueing_mean_s),
            "wire": f"{m.wire_bytes_predicted:,} / {'—' if m.wire_bytes is None else f'{m.wire_bytes:,}'}",
        })  # fmt: skip
    cols = (
        Column("device", "device"),
        Column("frames", "frames", "int"),
        Column("offered", "offered Mbit/s"),
        Column("gp_p", "goodput pred."),
        Column("gp_m", "goodput meas."),
        Column("gp_e", "error"),
        Column("lat_p", "latency ms pred."),
        Column("lat_m", "latency ms meas."),
        Column("p50", "p50 ms pred./meas."),
        Column("p99", "p99 ms pred./meas."),
        Column("late", "late pred./meas."),
        Column("q", "queueing ms/pkt pred."),
        Column("wire", "wire B pred./meas."),
    )
    return Table(f"Fleet of {r.devices} into one edge link of {r.predicted.edge_rate / 1e6:g} Mbit/s", cols, rows,
                 caption="latency = send to last byte at the edge; late = through more than the budget after its "
                         "slot; statistics after the first third of the frames (start-up)")  # fmt: skip


def fleet_lines(r: FleetRun) -> list[str]:
    p = r.predicted
    out = [
        f"offered load {p.offered_bps / 1e6:.3f} Mbit/s (Ethernet frames) against the edge link "
        f"{p.edge_rate / 1e6:g} Mbit/s: utilisation {p.utilisation:.2f}{' (saturated)' if p.saturated else ''}",
        f"aggregate goodput: predicted {_mbit(p.goodput_bps)} Mbit/s, measured {_mbit(r.aggregate_goodput_bps)} "
        f"Mbit/s ({_err(r.aggregate_goodput_bps, p.goodput_bps) or 'n/a'})",
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
        p = r.predicted
        lat_p = max(d.latency_p99_s for d in p.devices)
        lat_m = [m.latency_p99_s for m in r.measured if m.latency_p99_s is not None]
        late_m = [m.late_fraction for m in r.measured if m.late_fraction is not None]
        rows.append({
            "n": r.devices, "util": f"{p.utilisation:.2f}", "gp_p": _mbit(p.goodput_bps),
            "gp_m": _mbit(r.aggregate_goodput_bps), "gp_e": _err(r.aggregate_goodput_bps, p.goodput_bps),
            "p99_p": _ms(lat_p), "p99_m": _ms(max(lat_m) if lat_m else None),
            "late_p": f"{max(d.late_fraction for d in p.devices):.0%}",
            "late_m": f"{max(late_m):.0%}" if late_m else "—", "jain": "—" if r.jain is None else f"{r.jain:.4f}",
        })  # fmt: skip
    cols = (
        Column("n", "devices", "int"),
        Column("util", "utilisation"),
        Column("gp_p", "goodput Mbit/s pred."),
        Column("gp_m", "meas."),
        Column("gp_e", "error"),
        Column("p99_p", "worst p99 ms pred."),
        Column("p99_m", "meas."),
        Column("late_p", "late pred."),
        Column("late_m", "meas."),
        Column("jain", "Jain meas."),
    )
    return Table("Fleet size sweep: one edge link, devices added one by one", cols, rows)


def sweep_lines(runs: list[FleetRun], predicted_sat: int, predicted_miss: int | None) -> list[str]:
    """Where the edge link saturates and where a frame first misses its budget, predicted against
    measured. Predicted: the offered load passes the edge rate. Measured: the fleet's goodput reaches 97%
    of what the edge link can carry (its rate x payload / Ethernet frame bytes)."""
    last = runs[-1].devices

    def full(r: FleetRun) -> bool:
        capacity = r.predicted.edge_rate * r.payload_offered_bps / r.predicted.offered_bps  # payload share
        return r.aggregate_goodput_bps is not None and r.aggregate_goodput_bps >= 0.97 * capacity

    meas_sat = next((r.devices for r in runs if full(r)), None)
    meas_miss = next((r.devices for r in runs if any((m.late_fraction or 0) > 0 for m in r.measured)), None)
    return [
        f"the edge link saturates at {predicted_sat} devices (predicted); measured: "
        f"{meas_sat if meas_sat is not None else f'not within 1..{last}'}",
        f"a frame first misses its budget at {predicted_miss if predicted_miss is not None else f'more than {last}'} "
        f"devices (predicted); measured: {meas_miss if meas_miss is not None else f'not within 1..{last}'}",
    ]


def fleet_qos(
    runs_or_cfg: FleetRun, radio: str | None, direction: str, reliability: float | None
) -> tuple[Table, list[dict[str, object]]]:
    """The QoS view of a fleet: each group's device flow over its own uplink (or ``radio``) and the
    aggregate into the edge link: the rate it needs, whether the carrier carries it, the 5QIs that fit."""
    from ...core.packets import Transport
    from ...core.qos import requirements
    from ...core.radio import carrier

    r = runs_or_cfg
    cfg = r.result.config
    budget = cfg.get("latency")
    rows: list[dict[str, object]] = []
    total_bps, fps_ref = 0.0, 0.0
    for g, flow in zip(cfg["groups"], _first_flow_per_group(r), strict=True):
        payload = flow.frames[0].payload
        via = carrier(radio, None if radio else float(flow.rate_bps), direction)
        req = requirements(payload, latency=budget, fps=g["fps"], transport=Transport(), carrier=via,
                           reliability=reliability)  # fmt: skip
        rows.append(_qos_row(f"{g['name']}: {g['count']} x {g['model']} {g['split']}", req))
        total_bps += g["count"] * payload * 8 * g["fps"]
        fps_ref = max(fps_ref, g["fps"])
    agg_payload = int(-(-total_bps // (8 * fps_ref)))  # the fleet's payload within one frame interval
    via = carrier(radio, None if radio else r.predicted.edge_rate, direction)
    req = requirements(agg_payload, latency=budget, fps=fps_ref, transport=Transport(), carrier=via,
                       reliability=reliability)  # fmt: skip
    rows.append(_qos_row(f"aggregate into the edge ({r.devices} devices)", req))
    cols = (
        Column("flow", "flow"),
        Column("rate", "rate needed"),
        Column("carrier", "carried by"),
        Column("verdict", "carries it"),
        Column("fits", "5QIs that fit"),
    )
    return Table("QoS of the fleet's flows (3GPP TS 23.501 Table 5.7.4-1)", cols, rows), rows


def _first_flow_per_group(r: FleetRun) -> list[object]:
    flows = list(r.result.prediction.flows)
    out, k = [], 0
    for g in r.result.config["groups"]:
        out.append(flows[k])
        k += int(g["count"])
    return out


def _qos_row(name: str, req: Requirements) -> dict[str, object]:
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
