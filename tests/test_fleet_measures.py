"""A fleet run's figures computed where the run is made (testbed.fleetrun), from a hand-made run: the one
measured-against-predicted join, a sweep's points and summary, and the views showing exactly those
numbers. No run needed (no root)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pktchar.core.fleet_model import DevicePrediction, FleetPrediction
from pktchar.testbed.fleetrun import DeviceMeasured, FleetRun, summarise_sweep

# VGG-16's classifier.0 output, fp32: 16,384 B a frame + the 24 B header = 16,408 B in 12 TCP segments
# (11 x 1,448 + 480), 66 B of headers each: 17,200 B of Ethernet frames. At 30 frames/s a device offers
# 17,200 x 8 x 30 = 4.128 Mbit/s of frames and 16,384 x 8 x 30 = 3.93216 Mbit/s of payload.
PAYLOAD, FRAME_BPS, PAYLOAD_BPS, EDGE = 16_384, 4.128e6, 3.93216e6, 10e6


def _run(n: int, goodput: float | None, late_p: float, late_m: list[float | None]) -> FleetRun:
    """``n`` devices into a 10 Mbit/s edge link; each predicted to deliver its payload, device k's p99
    latency (k + 1) ms predicted and (k + 2) ms measured."""
    devs = [DevicePrediction(f"d{k}", "d", 17_200, FRAME_BPS, PAYLOAD_BPS, 0.001, 0.001, (k + 1) / 1000, late_p, 0.0)
            for k in range(n)]  # fmt: skip
    pred = FleetPrediction(EDGE, n * FRAME_BPS, n * FRAME_BPS / EDGE, n * FRAME_BPS > EDGE, devs,
                           aggregate_bps=min(n * PAYLOAD_BPS, EDGE * PAYLOAD_BPS / FRAME_BPS))  # fmt: skip
    meas = [DeviceMeasured(f"d{k}", 30, PAYLOAD_BPS * 1.01, 0.0012, 0.0011, (k + 2) / 1000, late_m[k], 516_000,
                           516_000) for k in range(n)]  # fmt: skip
    flows = [SimpleNamespace(frames=[SimpleNamespace(payload=PAYLOAD)], rate_bps=100e6)] * n
    cfg = {"groups": [{"name": "cam", "count": n, "model": "vgg16", "split": "classifier.0", "fps": 30}],
           "latency": None}  # fmt: skip
    res = SimpleNamespace(config=cfg, prediction=SimpleNamespace(flows=flows), notes=[], error=None, capture=None,
                          artifacts=SimpleNamespace(pcap="f.pcap", result="f.result.json"))  # fmt: skip
    return FleetRun(n, pred, meas, res, goodput, 1.0, n * PAYLOAD_BPS)  # type: ignore[arg-type]


def test_fleet_measures_join_by_name() -> None:
    # two devices: 2 x 3.93216 = 7.86432 Mbit/s predicted, 7.9 measured: +0.4537 %
    r = _run(2, 7.9e6, 0.0, [0.0, None])
    f = r.fleet_measures()
    assert f.goodput.predicted == pytest.approx(7.86432e6)
    assert f.goodput.error == pytest.approx(7.9 / 7.86432 - 1)
    # the worst device's p99: d1, 2 ms predicted, 3 ms measured; late: d1 measured none, d0 0
    assert (f.p99.predicted, f.p99.measured, f.p99.error) == (0.002, 0.003, pytest.approx(0.5))
    assert (f.late.predicted, f.late.measured) == (0.0, 0.0)
    d = r.measures(1)
    assert d.goodput.error == pytest.approx(0.01) and d.late.measured is None and d.wire_bytes.error == 0
    doc = r.to_dict()["measures"]
    assert [x["relative_error"] for x in doc["fleet"]] == [m.error for m in f]
    assert len(doc["devices"]) == 2 and doc["devices"][1][3]["measured"] == 0.003


def test_a_sweep_summarised_where_the_runs_are_made() -> None:
    # 10e6 / 4.128e6 = 2.42: the third device's load passes the edge rate. Full, the link carries
    # 10e6 x 16,384 / 17,200 = 9,525,581 bit/s of payload; measured saturation at 97 % of it, 9,239,814.
    runs = [
        _run(1, 3.93e6, 0.0, [0.0]),
        _run(2, 7.86e6, 0.0, [0.0, 0.0]),
        _run(3, 9.30e6, 0.2, [0.0, 0.0, 0.0]),
        _run(4, 9.31e6, 0.5, [0.0, 0.1, None, 0.0]),
    ]
    p = runs[2].sweep_point()
    assert (p.devices, p.edge_rate, p.offered_bps) == (3, EDGE, pytest.approx(3 * FRAME_BPS))
    assert (p.payload_offered_bps, p.goodput_measured_bps) == (pytest.approx(3 * PAYLOAD_BPS), 9.30e6)
    assert (p.late_predicted, p.late_measured) == (0.2, 0.0)
    s = summarise_sweep(runs)
    assert (s.last, s.predicted_saturation, s.measured_saturation) == (4, 3, 3)
    assert (s.predicted_miss, s.measured_miss) == (3, 4)


def test_views_show_the_runs_numbers() -> None:
    from pktchar.present import views

    r = _run(2, 7.9e6, 0.0, [0.0, None])
    (row,) = views.sweep_table([r]).rows
    f = r.fleet_measures()
    assert (row["gp_e"], row["p99_p"], row["p99_m"]) == (f.goodput.error, 2.0, 3.0)  # ms
    dev = views.fleet_devices_table(r).rows[1]
    assert (dev["gp_e"], dev["p99_p"], dev["late_m"]) == (pytest.approx(0.01), 2.0, None)
    assert "measured 7.900 Mbit/s (+0.5%)" in views.fleet_lines(r)[1]
    lines = views.sweep_summary_lines(summarise_sweep([r]))
    assert lines[0].startswith("the edge link saturates at 3 devices (predicted); measured: not within 1..2")
