"""Packetization and 5QI fits against hand-worked figures."""

from __future__ import annotations

import pytest

from pktchar.core.errors import PktcharError
from pktchar.core.packets import Transport, packetize, wire_size
from pktchar.core.qos import FIVEQI_TABLE, requirements, size_class
from pktchar.core.units import parse_bytes, parse_duration, parse_rate


def test_tcp_ipv4_1500():
    t = Transport("tcp", 1500)
    assert t.mss == 1500 - 20 - 20 - 12 == 1448
    p = packetize(100_000, t)
    # 100,000 + 24 B frame header = 100,024 = 69 x 1448 + 112
    assert p.count == 70
    assert p.sizes == ((1500, 69), (112 + 52, 1))
    assert p.ip_bytes == 69 * 1500 + 164 == 103_664
    assert p.frame_bytes == 103_664 + 70 * 14
    assert p.wire_bytes == 69 * (1500 + 38) + (164 + 38) == 106_324
    assert p.acks == 35
    assert p.overhead == pytest.approx((106_324 - 100_000) / 106_324)


def test_udp_fragments_one_header_each():
    p = packetize(100_000, Transport("udp", 1500))
    # 1500 - 20 IP - 8 UDP - 12 fragment header = 1460 a datagram; 100,024 = 68 x 1460 + 744
    assert p.count == 69 and p.sizes == ((1500, 68), (744 + 40, 1))
    assert p.acks == 0


def test_ipv6_jumbo():
    p = packetize(1_000_000, Transport("tcp", 9000, ip=6))
    # MSS 9000 - 40 - 32 = 8928; 1,000,024 = 112 x 8928 + 88
    assert p.count == 113 and p.sizes == ((9000, 112), (88 + 72, 1))


def test_small_frames_are_padded_on_the_wire():
    p = packetize(1, Transport("udp", 1500, app_header=0))
    assert p.ip_bytes == 1 + 20 + 8 + 12 == 41
    assert p.wire_bytes == 64 + 20  # 41 + 18 = 59 < 64: padded, plus preamble and gap
    assert wire_size(1500) == 1538


@pytest.mark.parametrize("mtu,proto,ip", [(52, "tcp", 4), (40, "udp", 4), (72, "tcp", 6), (0, "tcp", 4)])
def test_mtu_too_small(mtu, proto, ip):
    with pytest.raises(PktcharError, match="too small"):
        Transport(proto, mtu, ip=ip)


def test_1000_bytes_every_10ms_fits_83_and_88_not_82():
    r = requirements(1000, fps=100)
    assert r.latency == pytest.approx(0.010)
    fits = set(r.fitting)
    assert {83, 88} <= fits and 82 not in fits
    # 1,076 IP bytes: over 82's 255 B and 87's 500 B MDBV; 84/89/90's PDB exceeds 10 ms
    assert set(r.fitting_dc_gbr) == {83, 86, 88}
    assert 80 in fits  # non-GBR low-latency eMBB, PDB 10 ms
    assert not fits & {1, 2, 3, 4, 5, 6, 7, 8, 9}


def test_100kB_in_20ms_fits_no_delay_critical_gbr():
    r = requirements(100_000, latency=0.020)
    assert r.fitting_dc_gbr == []
    assert 80 in r.fitting  # but the 10 ms non-GBR class does


def test_no_standardized_5qi_fits_is_a_finding():
    r = requirements(1000, latency=0.004)  # 4 ms: below every PDB
    assert r.fitting == []


def test_rates_and_link():
    r = requirements(270_000, latency=0.015)
    assert r.rate_payload == pytest.approx(144e6)  # 3GPP: 270 kB x 8 / 15 ms
    r = requirements(100_000, fps=30, link=100e6)
    assert r.serialization == pytest.approx(106_324 * 8 / 100e6)
    assert r.max_fps == pytest.approx(100e6 / (106_324 * 8))
    assert r.fits_link is True
    assert requirements(100_000, fps=200, link=100e6).fits_link is False


def test_size_classes():
    assert size_class(270_000) == "100 kB–1 MB"
    assert size_class(999) == "100 B–1 kB"
    assert size_class(1000) == "1 kB–10 kB"


def test_5qi_table_is_complete():
    qis = {q.qi for q in FIVEQI_TABLE}
    assert {
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        65,
        66,
        67,
        69,
        70,
        79,
        80,
        82,
        83,
        84,
        85,
        86,
        87,
        88,
        89,
        90,
    } <= qis
    assert all((q.mdbv is not None) == (q.resource == "DC-GBR") for q in FIVEQI_TABLE)


@pytest.mark.parametrize("bad", [dict(fps=0), dict(latency=-1.0), dict(), dict(fps=30, link=0)])
def test_bad_flows(bad):
    with pytest.raises(PktcharError):
        requirements(1000, **bad)


def test_units():
    assert parse_bytes("270kB") == 270_000
    assert parse_bytes("1.5MiB") == 1_572_864
    assert parse_bytes("1000") == 1000
    assert parse_rate("100mbit") == 100e6 and parse_rate("1Gbit/s") == 1e9 and parse_rate("80Mbps") == 80e6
    assert parse_duration("15ms") == pytest.approx(0.015) and parse_duration("2s") == 2.0
    for f, bad in (
        (parse_bytes, "10furlongs"),
        (parse_rate, "5 parsecs"),
        (parse_duration, "3 fortnights"),
        (parse_rate, "0mbit"),
        (parse_duration, "abc"),
        (parse_duration, "15"),  # a bare number: seconds or milliseconds? (issue 16, item 6)
    ):
        with pytest.raises(PktcharError):
            f(bad)
