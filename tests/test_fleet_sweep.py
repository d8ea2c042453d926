"""The fleet's rules over numbers (core.fleet_model): a sweep's saturation and first miss, the QoS of a
fleet's flows; each figure worked out by hand."""

from __future__ import annotations

import pytest

from pktchar.core.errors import PktcharError
from pktchar.core.fleet_model import (
    FlowDemand,
    SweepPoint,
    aggregate_payload,
    edge_payload_capacity,
    first_miss,
    fleet_requirements,
    measured_saturated,
    saturation_n,
    sweep_summary,
)

# VGG-16's classifier.0 output, fp32: 4,096 x 4 = 16,384 B a frame, + the 24 B frame header = 16,408 B in
# 12 TCP segments (11 x 1,448 + 480), each with 66 B of Ethernet, IP and TCP headers: 17,200 B of frames.
# At 30 frames/s one device offers 17,200 x 8 x 30 = 4.128 Mbit/s of frames, 16,384 x 8 x 30 = 3.93216
# Mbit/s of payload.
FRAME_BPS, PAYLOAD_BPS, EDGE = 17_200 * 8 * 30, 16_384 * 8 * 30, 10e6


def _point(n: int, goodput: float | None, late_p: float = 0.0, late_m: float | None = 0.0) -> SweepPoint:
    return SweepPoint(n, EDGE, n * FRAME_BPS, n * PAYLOAD_BPS, goodput, late_p, late_m)


def test_saturation_at_97_percent_of_what_the_edge_carries() -> None:
    # full, the 10 Mbit/s link carries 10e6 x 16,384 / 17,200 = 9,525,581 bit/s of payload; 97%: 9,239,814
    assert edge_payload_capacity(EDGE, 2 * FRAME_BPS, 2 * PAYLOAD_BPS) == pytest.approx(9_525_581.4, abs=0.1)
    assert measured_saturated(_point(3, 9_240_000))
    assert not measured_saturated(_point(3, 9_239_000))
    assert not measured_saturated(_point(3, None))


def test_sweep_summary() -> None:
    # 10e6 / 4.128e6 = 2.42: the third device's load passes the edge rate
    assert saturation_n(16_384, 30, EDGE) == 3
    points = [
        _point(1, 3.93e6),
        _point(2, 7.86e6, late_m=None),
        _point(3, 9.30e6, late_p=0.2, late_m=0.0),
        _point(4, 9.31e6, late_p=0.5, late_m=0.1),
    ]
    s = sweep_summary(points, saturation_n(16_384, 30, EDGE))
    assert (s.last, s.predicted_saturation, s.measured_saturation) == (4, 3, 3)
    assert (s.predicted_miss, s.measured_miss) == (3, 4)
    assert first_miss(points[:2]) is None and first_miss(points[:2], measured=True) is None
    with pytest.raises(PktcharError):
        sweep_summary([], 3)


def test_fleet_requirements_by_hand() -> None:
    """Three cameras, pool5 of VGG-16 at 224 (100,352 B) at 10 frames/s over 80 Mbit/s uplinks into 20 Mbit/s."""
    cams = [FlowDemand("cam", 3, 100_352, 10.0, 80e6)]
    assert aggregate_payload(cams) == (301_056, 10.0)
    dev, agg = fleet_requirements(cams, 20e6, latency=None, radio=None, direction="ul", reliability=None)
    # one camera: 100,376 B in 70 segments (69 x 1,448 + 464): 100,376 + 70 x 66 = 104,996 B of frames,
    # + 24 B a packet on the wire (preamble, SFD, FCS, gap): 106,676 B every 100 ms = 8,534,080 bit/s
    assert dev.needed(dev.carrier.layer) == pytest.approx(106_676 * 8 * 10)
    assert dev.carrier_factor == pytest.approx(80e6 / 8_534_080)
    # together: 301,080 B in 208 segments: 301,080 + 208 x 90 = 319,800 B every 100 ms: 25.584 Mbit/s
    assert agg.needed(agg.carrier.layer) == pytest.approx(319_800 * 8 * 10)
    assert agg.carried is False
    # two groups at 10 and 30 frames/s: within 1/30 s, 3 x 1,000 x 10 / 30 + 2,000 = 3,000 B
    assert aggregate_payload([FlowDemand("a", 3, 1_000, 10, 1e6), FlowDemand("b", 1, 2_000, 30, 1e6)]) == (
        3_000,
        30,
    )
