"""The tbf model against numbers worked out by hand (sch_tbf semantics, see pktchar/core/shaping.py).

At 80 Mbit/s one byte of tokens takes 8 / 80e6 s = 0.1 us, so a full 1,514 B packet costs 151.4 us and
the testbed's 3,028 B bucket (2 x (1,500 + 14)) holds 302.8 us."""

from __future__ import annotations

import pytest

from pktchar.core import shaping
from pktchar.core.packets import Transport, packetize
from pktchar.core.shaping import ShapingError

US = 1e-6
FULL = [1514] * 70


def test_full_bucket_sends_two_packets_back_to_back_then_the_rate():
    d = shaping.departures(FULL, 80e6, 3028)
    # 3,028 B of credit pays packets 1 and 2 at t = 0; the bucket is then empty and packet k (k >= 3,
    # 1-based) waits for (k - 2) x 151.4 us of tokens: packet 3 at 151.4 us, packet 70 at 68 x 151.4
    assert d[0] == d[1] == 0
    assert d[2] == pytest.approx(151.4 * US)
    assert d[-1] == pytest.approx(10_295.2 * US)
    assert shaping.bucket_packets(FULL, 3028) == 2
    # sum 70 x 1,514 = 105,980 B; everything beyond the bucket at the rate: (105,980 - 3,028) x 0.1 us
    assert shaping.transfer_time(FULL, 80e6, 3028) == pytest.approx(10_295.2 * US)
    assert shaping.span(FULL, 80e6, 3028) == pytest.approx(10_295.2 * US)
    # the one-packet credit of the old model: (105,980 - 1,514) x 0.1 us = 10,446.6 us, 1.5% longer
    assert shaping.span(FULL, 80e6, 3028) / (10_446.6 * US) == pytest.approx(0.98550, abs=1e-5)


def test_goodput_while_sending_of_a_full_frame():
    # 69 packets after the first (104,466 B) in 10,295.2 us: 81.176 Mbit/s of frames, 1.5% above the rate
    moved = shaping.span_bytes(FULL)
    assert moved == 104_466
    assert moved * 8 / shaping.span(FULL, 80e6, 3028) == pytest.approx(81.176e6, rel=1e-4)


def test_vgg16_pool5_frame():
    # 100,352 B payload + 24 B header = 100,376 B; MSS 1,448: 69 full segments (99,912 B) + 464 B,
    # frames 69 x 1,514 + (464 + 66) = 104,996 B; span (104,996 - 3,028) x 0.1 us = 10,196.8 us
    lengths = shaping.frame_lengths(packetize(100_352, Transport("tcp", 1500)).sizes)
    assert len(lengths) == 70 and sum(lengths) == 104_996
    assert shaping.span(lengths, 80e6, 3028) == pytest.approx(10_196.8 * US)


def test_part_bucket_after_a_short_idle_gap():
    # after a backlogged frame the bucket is empty; 182 us idle at 80 Mbit/s refills 1,820 B: packet 1
    # leaves at once (306 B left), packet 2 after (1,514 - 306) x 0.1 = 120.8 us, packet 70 at
    # 120.8 + 68 x 151.4 = 10,416.0 us
    assert shaping.tokens_after(FULL, 80e6, 3028, idle_s=182 * US) == pytest.approx(1820)
    d = shaping.departures(FULL, 80e6, 3028, start_tokens=1820)
    assert d[0] == 0 and d[1] == pytest.approx(120.8 * US) and d[-1] == pytest.approx(10_416.0 * US)
    # a long gap fills the bucket but never beyond it
    assert shaping.tokens_after(FULL, 80e6, 3028, idle_s=1.0) == 3028
    seq = shaping.sequence([FULL, FULL, FULL], 80e6, 3028, [None, 182 * US, 1e-3])
    assert [s.start_tokens for s in seq] == pytest.approx([3028, 1820, 3028])
    assert [s.back_to_back for s in seq] == [2, 1, 2]
    assert seq[1].span == pytest.approx(10_416.0 * US)
    # the sender's 66 B ACK in the gap spends credit too: 1,820 - 66 = 1,754 B
    assert shaping.sequence([FULL, FULL], 80e6, 3028, [None, 182 * US], [0, 66])[
        1
    ].start_tokens == pytest.approx(1754)


def test_empty_bucket_and_paced_arrivals():
    # no credit: every packet waits its own 151.4 us
    d = shaping.departures([1514] * 3, 80e6, 3028, start_tokens=0)
    assert d == pytest.approx([151.4 * US, 302.8 * US, 454.2 * US])
    # packets arriving 1 ms apart find the bucket refilled (1 ms >> 302.8 us): they leave on arrival
    assert shaping.departures([1514] * 3, 80e6, 3028, arrivals=[0, 1e-3, 2e-3]) == [0, 1e-3, 2e-3]
    # two arriving together at 1 ms after one at 0: the bucket holds at most 3,028 B, so both go at once
    assert shaping.departures([1514] * 3, 80e6, 3028, arrivals=[0, 1e-3, 1e-3]) == [0, 1e-3, 1e-3]


def test_default_bucket():
    # 100 us at the rate in whole 1,514 B frames, at least two: 80 Mbit/s -> 1,000 B -> 2 frames
    assert shaping.default_bucket(80e6) == 3028
    # 1 Gbit/s -> 12,500 B -> 8.26 -> 9 frames = 13,626 B
    assert shaping.default_bucket(1e9) == 13_626
    # 1 Gbit/s, 9 frames: (70 x 1,514 - 13,626) x 8 ns = 738,832 ns
    assert shaping.transfer_time(FULL, 1e9, 13_626) == pytest.approx(738_832e-9)


def test_bad_input():
    with pytest.raises(ShapingError, match="does not fit"):
        shaping.departures([1514, 9014], 80e6, 3028)
    with pytest.raises(ShapingError, match="positive"):
        shaping.span(FULL, 0, 3028)
    with pytest.raises(ShapingError, match="arrival"):
        shaping.departures(FULL, 80e6, 3028, arrivals=[0.0])
    assert shaping.transfer_time([], 80e6, 3028) == 0.0
