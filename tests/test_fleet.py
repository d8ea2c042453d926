"""Many devices to one edge: the queueing model by hand, scenario files, and live fleets (root);
`serve` plus `replay --to` over loopback and between namespaces."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pktchar.core.errors import PktcharError
from pktchar.core.fleet_model import Group, TokenBucket, jain, predict, saturation_n
from pktchar.testbed.fleetrun import MAX_DEVICES, FleetConfig, GroupSpec, check, load_scenario

from conftest import run_cli

# vgg16 pool5: 100,352 B + 24 B header = 70 TCP segments: 69 x 1,514 B + 530 B Ethernet frames
FRAME = 69 * 1514 + 530  # 104,996 B


def test_token_bucket_by_hand():
    tb = TokenBucket(80e6, 3028)
    # a full bucket sends two 1,514 B packets at once; the third waits for 1,514 B of tokens: 151.4 us
    assert [tb.send(0, 1514) for _ in range(3)] == [0, 0, pytest.approx(1514 * 8 / 80e6)]


def test_one_device_below_the_edge_rate():
    p = predict([Group("cam", 1, 100_352, 10, 80e6)], 100e6, frames=10)
    d = p.devices[0]
    assert d.frame_bytes == FRAME
    # its own 80 Mbit/s uplink is the slower link: two packets on the bucket, the rest at 80 Mbit/s; the
    # 100 Mbit/s edge link refills its 3,028 B bucket faster than packets arrive, so each passes at once
    assert d.latency_mean_s == pytest.approx((FRAME - 3028) * 8 / 80e6, rel=1e-9)
    assert d.late_fraction == 0 and not p.saturated


# The testbed's tbf bucket at 1 Gbit/s, by hand from shaping.default_bucket's rule (whole full frames of
# MTU 1,500 + 14 B Ethernet header = 1,514 B, at least two, and at least 100 us of sending at the rate):
# 100 us at 1 Gbit/s is 1e9 bit/s x 100e-6 s / 8 = 12,500 B, more than the two frames' 3,028 B; 12,500 B /
# 1,514 B = 8.26 frames, rounded up to whole frames: 9 x 1,514 = 13,626 B. At 100 Mbit/s, 100 us is 1,250 B:
# the two frames' 3,028 B.
BUCKET_1G = 9 * 1514  # 13,626 B
BUCKET_100M = 2 * 1514  # 3,028 B


def test_fleet_model_buckets_at_1gbit():
    # one device, 1 Gbit/s uplink and edge: its first 9 packets (exactly 13,626 B) leave on the uplink's
    # bucket at once, then every later one at 1 Gbit/s; the edge's own 13,626 B bucket passes the 9 at once
    # and has each later packet's 1,514 B of tokens by the time it arrives
    p = predict([Group("cam", 1, 100_352, 10, 1e9)], 1e9, frames=10)
    d = p.devices[0]
    assert d.bucket_bytes == BUCKET_1G and p.edge_bucket_bytes == BUCKET_1G
    # (104,996 - 13,626) B x 8 ns = 730,960 ns (the 2-frame bucket would say 815,744 ns)
    assert d.latency_mean_s == pytest.approx((FRAME - BUCKET_1G) * 8 / 1e9, rel=1e-9)
    assert d.latency_mean_s == pytest.approx(730_960e-9, rel=1e-9)


def test_fleet_model_edge_link_has_its_own_bucket():
    # two 1 Gbit/s devices at once into a 1 Gbit/s edge: 2 x 104,996 B reach the edge at 2 Gbit/s, so it is
    # busy until all but its bucket has gone at its rate: the later device's frame is through at
    # (2 x 104,996 - 13,626) x 8 ns = 1,570,928 ns
    p = predict([Group("cam", 2, 100_352, 10, 1e9)], 1e9, frames=10)
    assert p.edge_bucket_bytes == BUCKET_1G
    assert p.devices[1].latency_mean_s == pytest.approx((2 * FRAME - BUCKET_1G) * 8 / 1e9, rel=1e-9)
    # a 1 Gbit/s device into a 100 Mbit/s edge: the edge's bucket is its own rate's (3,028 B), not the
    # device's 13,626 B: the edge is the bottleneck, 2 packets on its bucket and the rest at 100 Mbit/s
    p = predict([Group("cam", 1, 100_352, 10, 1e9)], 100e6, frames=10)
    assert p.devices[0].bucket_bytes == BUCKET_1G and p.edge_bucket_bytes == BUCKET_100M
    assert p.devices[0].latency_mean_s == pytest.approx((FRAME - BUCKET_100M) * 8 / 100e6, rel=1e-9)


def test_mixed_fleet_gives_each_device_its_own_bucket():
    # 100 Mbit/s and 1 Gbit/s devices, staggered (50 ms apart: their frames never meet at the edge); each
    # uplink's bucket is its own rate's, as tbf has it: neither the fastest device's nor a fixed one
    p = predict([Group("slow", 1, 100_352, 10, 100e6), Group("fast", 1, 100_352, 10, 1e9)], 1e9,
                stagger=True, frames=10)  # fmt: skip
    slow, fast = p.devices
    assert (slow.bucket_bytes, fast.bucket_bytes, p.edge_bucket_bytes) == (BUCKET_100M, BUCKET_1G, BUCKET_1G)
    # (104,996 - 3,028) x 80 ns = 8,157,440 ns; (104,996 - 13,626) x 8 ns = 730,960 ns
    assert slow.latency_mean_s == pytest.approx((FRAME - BUCKET_100M) * 8 / 100e6, rel=1e-9)
    assert fast.latency_mean_s == pytest.approx((FRAME - BUCKET_1G) * 8 / 1e9, rel=1e-9)


def test_mixed_fleet_flow_predictions_carry_each_device_bucket():
    """What compare times each device's capture with: the bucket of the tbf on that device's egress."""
    from types import SimpleNamespace

    from pktchar.testbed.fleetrun import FleetScenario, Prepared

    specs = [GroupSpec("vgg16", "features.30", uplink="100mbit", name="slow"),
             GroupSpec("vgg16", "features.30", uplink="1gbit", name="fast")]  # fmt: skip
    rates = (100e6, 1e9)
    prepared = [Prepared(g, [100_352], b"", "", "features.30", r) for g, r in zip(specs, rates, strict=True)]
    sc = FleetScenario(FleetConfig(specs, 1e9, stagger=True, frames=4), prepared)
    eps = {e: SimpleNamespace(ip=f"10.213.0.{k + 1}") for k, e in enumerate(("d0", "d1", "edge"))}
    pred = sc.predict(SimpleNamespace(eps=eps), None)  # type: ignore[arg-type]
    slow, fast = pred.flow("d0"), pred.flow("d1")
    assert (slow.bucket_bytes, fast.bucket_bytes) == (BUCKET_100M, BUCKET_1G)
    assert slow.frames[0].transfer_s == pytest.approx((FRAME - BUCKET_100M) * 8 / 100e6)
    assert fast.frames[0].transfer_s == pytest.approx((FRAME - BUCKET_1G) * 8 / 1e9)
    assert [d.bucket_bytes for d in sc.model.devices] == [BUCKET_100M, BUCKET_1G]  # type: ignore[union-attr]


def test_fleet_model_stays_light():
    """pktchar.core.fleet_model takes the bucket rule from core.shaping: still no torch (nor numpy) on import."""
    code = "import sys, pktchar.core.fleet_model; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_saturation_and_fair_shares():
    # each device offers 104,996 B x 8 x 10/s = 8.40 Mbit/s; 20 Mbit/s carries two, saturates at three
    assert saturation_n(100_352, 10, 20e6) == 3
    p = predict([Group("cam", 4, 100_352, 10, 80e6)], 20e6, frames=30)
    assert p.saturated and p.offered_bps == pytest.approx(4 * FRAME * 8 * 10)
    # saturated, the edge link is busy all the time: payload goodput = 20 Mbit/s x payload / frame bytes
    assert p.goodput_bps == pytest.approx(20e6 * 100_352 / FRAME, rel=0.01)
    assert p.jain > 0.999 and all(d.late_fraction == 1 for d in p.devices)


def test_jain_by_hand():
    assert jain([1, 1, 1, 1]) == 1
    assert jain([1, 0, 0, 0]) == pytest.approx(0.25)  # (1)^2 / (4 x 1)


def test_scenario_file(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text('edge_link = "50mbit"\n\n[[group]]\nmodel = "vgg16"\nsplit = "features.30"\ncount = 2\nfps = 5\n'
                 '\n[[group]]\nmodel = "resnet18"\nsplit = "layer4.1.relu#2"\ncount = 1\nuplink = "40mbit"\n')  # fmt: skip
    groups, top = load_scenario(f)
    assert (
        [g.count for g in groups] == [2, 1] and groups[1].uplink == "40mbit" and top["edge_link"] == "50mbit"
    )
    f.write_text('edge_link = "50mbit"\n[[group]]\nmodel = "vgg16"\nsplit = "features.30"\ncolour = "red"\n')
    with pytest.raises(PktcharError, match=r"line 5: unknown key 'colour' in group 1"):
        load_scenario(f)
    f.write_text('edge = "50mbit"\n')
    with pytest.raises(PktcharError, match=r"line 1: unknown key 'edge'"):
        load_scenario(f)


def test_too_many_devices():
    with pytest.raises(PktcharError, match=f"more than this machine runs \\({MAX_DEVICES}"):
        check(FleetConfig([GroupSpec("vgg16", "features.30", count=MAX_DEVICES + 1)], 100e6))


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_serve_and_replay_to_over_loopback(tmp_path):
    """No root needed without a capture: the same frames as the in-namespace replay, timed at this host."""
    port = _free_port()
    exe = Path(sys.executable).with_name("pktchar")
    serve = subprocess.Popen([str(exe), "serve", "--port", str(port), "--bind", "127.0.0.1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1.5)
        busy = run_cli("serve", "--port", str(port), "--bind", "127.0.0.1")
        assert busy.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
        r = run_cli("replay", "vgg16", "--split", "features.30", "--frames", "3", "--to", f"127.0.0.1:{port}",
                    "--no-calibrate", "--pcap", str(tmp_path / "lo.pcap"), "--format", "json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        # the frames of the in-namespace replay: pool5 of VGG-16, 25,088 fp32 = 100,352 B each
        assert [f["len"] for f in d["frames"]] == [100_352] * 3
        assert d["capture"] is None and "application timings only" in " ".join(d["notes"])
    finally:
        serve.terminate()
        serve.wait(timeout=10)
    lines = [json.loads(x) for x in serve.stdout.read().splitlines() if x.startswith("{")]
    assert [x["len"] for x in lines] == [100_352] * 3


def test_replay_to_an_unreachable_host():
    r = run_cli(
        "replay", "vgg16", "--split", "features.30", "--to", f"127.0.0.1:{_free_port()}", "--no-calibrate"
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "is `pktchar serve --port" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_three_devices_saturate_the_edge_link(tmp_path):
    from pktchar.testbed.fleetrun import fleet

    # 3 x 8.40 Mbit/s offered into 12 Mbit/s: saturated about twice over, the edge link never idles
    cfg = FleetConfig([GroupSpec("vgg16", "features.30", count=3, fps=10, uplink="80mbit")], 12e6, frames=16,
                      pcap=tmp_path / "f.pcap")  # fmt: skip
    r = fleet(cfg)
    assert r.result.error is None
    assert r.predicted.saturated
    # the bottleneck model: 12 Mbit/s of Ethernet frames carry 12 x 100,352 / 104,996 Mbit/s of payload
    bottleneck = 12e6 * 100_352 / FRAME
    assert r.aggregate_goodput_bps is not None
    assert abs(r.aggregate_goodput_bps / bottleneck - 1) < 0.03
    assert r.jain is not None and r.jain > 0.99  # three identical flows share the link evenly
    for m in r.measured:
        assert m.frames == 16 and m.wire_bytes == m.wire_bytes_predicted == 16 * FRAME


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_replay_to_between_two_namespaces(tmp_path):
    """serve in one namespace, replay --to from another, captured on the sender's veth: the same packets
    and bytes as the in-namespace replay (70 packets, 104,996 B a frame)."""
    from pktchar.testbed.netns import Link, Topology

    exe = str(Path(sys.executable).with_name("pktchar"))
    with Topology(["a", "b"], Link(80e6)) as topo:
        serve = topo.popen(
            "b", [exe, "serve", "--port", "5301"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(2)
        pcap = tmp_path / "ns.pcap"
        r = subprocess.run(["ip", "netns", "exec", topo.eps["a"].ns, exe, "replay", "vgg16", "--split", "features.30",
                            "--frames", "4", "--to", f"{topo.eps['b'].ip}:5301", "--capture-iface",
                            topo.eps["a"].ifname, "--link", "80mbit", "--pcap", str(pcap), "--format", "json"],
                           capture_output=True, text=True, timeout=300, env={**os.environ})  # fmt: skip
        serve.terminate()
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        rows = {x["metric"]: x for x in d["comparison"]["rows"]}
        assert rows["packets (data direction)"]["measured"] == 4 * 70
        assert rows["bytes on the wire (data direction, Ethernet frames)"]["measured"] == 4 * FRAME


@pytest.mark.root
def test_scenario_with_an_unknown_model_names_its_group_and_line(tmp_path):
    f = tmp_path / "fleet.toml"
    f.write_text('edge_link = "50mbit"\n\n[[group]]\nmodel = "vgg16"\nsplit = "features.30"\n\n'
                 '[[group]]\nmodel = "vgg61"\nsplit = "features.30"\n')  # fmt: skip
    r = run_cli("fleet", "--scenario", str(f))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"scenario {f} line 7 (group g1)" in r.stderr and "vgg16" in r.stderr  # the close match


def test_fleet_qos_view_by_hand():
    """The QoS view of a 3-camera fleet (no run needed: a prediction stands in for the result)."""
    from types import SimpleNamespace

    from pktchar.core.packets import Transport
    from pktchar.present import views
    from pktchar.testbed.fleetrun import FleetRun
    from pktchar.testbed.netns import Link
    from pktchar.testbed.runner import predict_frames
    from pktchar.testbed.schema import FlowPrediction, Prediction

    frames = predict_frames([100_352], Transport(), Link(80e6))
    flows = tuple(
        FlowPrediction(f"d{k}", "tcp", "a", "b", 5201 + k, 1500, 4, 24, 80e6, 3028, frames) for k in range(3)
    )
    cfg = {"groups": [{"name": "cam", "count": 3, "model": "vgg16", "split": "features.30", "fps": 10}],
           "latency": None}  # fmt: skip
    result = SimpleNamespace(config=cfg, prediction=Prediction("fleet", cfg, flows))
    run = FleetRun(3, SimpleNamespace(edge_rate=20e6), [], result)  # type: ignore[arg-type]
    assert [d.name for d in run.demands()] == ["cam: 3 x vgg16 features.30"]
    _, rows = views.fleet_qos(run, None, "ul", None)
    # one camera: 104,996 B of Ethernet frames (wire: + 8 B preamble/SFD, 12 B gap, 4 B FCS a packet,
    # 70 packets) every 100 ms = 8.53 Mbit/s on the wire, against its 80 Mbit/s uplink: room x9.38
    assert rows[0]["rate_bps"] == pytest.approx((104_996 + 70 * 24) * 8 * 10)
    assert rows[0]["carrier_factor"] == pytest.approx(80e6 / ((104_996 + 70 * 24) * 8 * 10))
    # the three together: 301,056 B + 24 B header = 207 full segments of 1,448 B and one of 1,344 B: 208
    # packets, 207 x 1,514 + 1,410 = 314,808 B of frames, + 208 x 24 B on the wire = 319,800 B every 100 ms:
    # 25.584 Mbit/s into the 20 Mbit/s edge link, which falls short
    agg = rows[-1]
    assert agg["rate_bps"] == pytest.approx(319_800 * 8 * 10)
    assert agg["carrier_factor"] == pytest.approx(20e6 / 25.584e6) and str(agg["verdict"]).startswith("NO")


def test_fleet_to_a_real_host_over_loopback(tmp_path):
    """`fleet --to`: three devices on this host, all served at once by one `pktchar serve`."""
    port = _free_port()
    exe = Path(sys.executable).with_name("pktchar")
    serve = subprocess.Popen([str(exe), "serve", "--port", str(port), "--bind", "127.0.0.1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1.5)
        r = run_cli("fleet", "vgg16", "--split", "features.30", "--devices", "3", "--fps", "10", "--frames", "5",
                    "--edge-link", "100mbit", "--to", f"127.0.0.1:{port}", "--pcap", str(tmp_path / "f.pcap"),
                    "--format", "json")  # fmt: skip
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert [m["frames"] for m in d["measured"]["devices"]] == [5, 5, 5]
        assert any(
            "application timings only" in n for n in d["notes"]
        )  # no capture without root and --capture-iface
    finally:
        serve.terminate()
        serve.wait(timeout=10)
    lines = [json.loads(x) for x in serve.stdout.read().splitlines() if x.startswith("{")]
    # 3 devices x 5 frames of pool5 (100,352 B), each device its own connection, served at once
    assert (
        len(lines) == 15
        and {x["len"] for x in lines} == {100_352}
        and {x["split"] for x in lines} == {0, 1, 2}
    )
