"""The scenario core's typed contract: predictions and results as versioned JSON, the files beside a
capture, and the figures a prediction carries (worked out by hand)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pktchar.core.errors import PktcharError
from pktchar.core.packets import Transport
from pktchar.testbed.netns import Link
from pktchar.testbed.runner import compare_capture, predict_frames
from pktchar.testbed.schema import Artifacts, FlowPrediction, Prediction


def _flow(cal: float | None = None) -> FlowPrediction:
    link = Link(80e6)
    frames = predict_frames([100_352, 1_000], Transport("tcp", 1500), link, cal)
    return FlowPrediction("device -> edge", "tcp", "10.213.0.1", "10.213.0.2", 5201, 1500, 4, 24, 80e6,
                          link.bucket, frames, cal)  # fmt: skip


def test_frame_prediction_by_hand():
    f = _flow(79e6).frames[0]
    # 100,352 B + 24 B header = 100,376 B = 69 segments of MSS 1448 (99,912 B) + 464 B;
    # IP packets 1448 + 52 = 1500 B (x69) and 464 + 52 = 516 B; Ethernet frames +14 B each
    assert f.packets == 70
    assert f.sizes == ((1500, 69), (516, 1))
    assert f.frame_bytes == 69 * 1514 + 530 == 104_996
    # tbf starts on a full bucket of 2 x 1,514 = 3,028 B: two packets leave at once, the other
    # 101,968 B at 80 Mbit/s
    assert f.transfer_s == pytest.approx(101_968 * 8 / 80e6)
    assert f.transfer_s_calibrated == pytest.approx(101_968 * 8 / 79e6)
    small = _flow().frames[1]  # 1,024 B in one segment: nothing waits for tokens
    assert small.packets == 1 and small.transfer_s == 0 and small.transfer_s_calibrated is None


def test_prediction_round_trip(tmp_path):
    p = Prediction("replay", {"model": "vgg16", "split": "features.30"}, (_flow(79.5e6),), notes=("n",))
    path = tmp_path / "x.prediction.json"
    p.save(path)
    d = json.loads(path.read_text())
    assert d["kind"] == "pktchar-prediction" and d["version"] == 2 and d["scenario"] == "replay"
    assert Prediction.load(path) == p
    flow = d["flows"][0]
    assert flow["src_ip"] == "10.213.0.1" and flow["bucket_bytes"] == 3028
    assert flow["calibrated_rate_bps"] == 79.5e6
    # a run stopped after one frame is compared with the flow's first frame only
    first = p.flow().first(1)
    assert first.frames == p.flow().frames[:1] and first.bucket_bytes == 3028


def test_version_1_predictions_still_load(tmp_path):
    """The flat form replay wrote before the scenario core."""
    old = {"kind": "pktchar-prediction", "version": 1, "model": "vgg16", "split": "features.30", "proto": "tcp",
           "mtu": 1500, "port": 5201, "device_ip": "10.213.0.1", "edge_ip": "10.213.0.2", "rate_bps": 80e6,
           "burst_bytes": 3028, "app_header": 24,
           "frames": [{"id": 0, "payload": 1000, "packets": 1, "sizes": [[1076, 1]], "frame_bytes": 1090}]}  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(old))
    p = Prediction.load(tmp_path / "old.json")
    assert p.flow().src_ip == "10.213.0.1" and p.flow().bucket_bytes == 3028
    assert p.flow().frames[0].frame_bytes == 1090 and p.config["model"] == "vgg16"


@pytest.mark.parametrize(
    "doc, says",
    [
        ({"kind": "something-else"}, "not a pktchar prediction"),
        ({"kind": "pktchar-prediction", "version": 99, "flows": []}, "version 99"),
        (
            {"kind": "pktchar-prediction", "version": 2, "scenario": "replay", "flows": [{"proto": "tcp"}]},
            "not a valid",
        ),
        ([1, 2], "not a pktchar prediction"),
    ],
)
def test_bad_predictions_are_one_line(tmp_path, doc, says):
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(PktcharError, match=says):
        Prediction.load(tmp_path / "p.json")


def test_artifacts_are_named_in_one_place(tmp_path):
    a = Artifacts(tmp_path / "run.pcap")
    assert a.all() == [tmp_path / "run.pcap", tmp_path / "run.prediction.json", tmp_path / "run.result.json"]
    a.prediction.write_text("{}")
    assert a.written() == [tmp_path / "run.prediction.json"]


def test_compare_capture_reads_the_prediction_beside_the_pcap(tmp_path):
    """A capture of one 1,000 B frame, written with scapy, compared through the files beside it."""
    from scapy.all import IP, TCP, Ether, Raw, wrpcap

    opts = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]
    pkt = (
        Ether()
        / IP(src="10.213.0.1", dst="10.213.0.2")
        / TCP(sport=40000, dport=5201, flags="PA", options=opts)
    )
    wrpcap(str(tmp_path / "one.pcap"), [pkt / Raw(b"\0" * 1024)])
    flow = FlowPrediction("device -> edge", "tcp", "10.213.0.1", "10.213.0.2", 5201, 1500, 4, 24, 80e6, 3028,
                          predict_frames([1000], Transport("tcp", 1500), Link(80e6)))  # fmt: skip
    Prediction("replay", {}, (flow,)).save(tmp_path / "one.prediction.json")
    c = compare_capture(tmp_path / "one.pcap")
    # 1,000 B + 24 B header in one segment: IP 1024 + 52 = 1,076 B, Ethernet frame 1,090 B
    assert c.row("packets (data direction)").measured == 1
    assert (
        c.row("bytes on the wire (data direction, Ethernet frames)").measured
        == 1090
        == c.row("bytes on the wire (data direction, Ethernet frames)").predicted
    )


def test_the_core_imports_no_torch():
    code = (
        "import sys, pktchar, pktchar.cli.app, pktchar.testbed.runner, pktchar.testbed.replay, "
        "pktchar.testbed.endpoint, pktchar.present.run_report, pktchar.present.views; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
