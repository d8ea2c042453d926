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
    assert c.row("packets").measured == 1
    assert c.row("wire_bytes").measured == 1090 == c.row("wire_bytes").predicted


def test_the_core_imports_no_torch():
    code = (
        "import sys, pktchar, pktchar.cli.app, pktchar.testbed.runner, pktchar.testbed.replay, "
        "pktchar.testbed.endpoint, pktchar.present.run_report, pktchar.present.views; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_measure_is_measured_over_predicted_less_one():
    """The one join: 90 measured against 100 predicted is 10 % under; nothing to compare gives None."""
    from pktchar.testbed.schema import Measure

    assert Measure("x", 100, 90).error == pytest.approx(-0.10)
    assert Measure("x", 80e6, 79.2e6, "bit/s").error == pytest.approx(-0.01)
    assert Measure("x", 0, 0).error is None and Measure("x", 0, 5).error == float("inf")
    assert Measure("x", 100, None).error is None and Measure("x", None, 100).error is None
    assert Measure("x", 200, 250, "B").to_dict() == {
        "metric": "x", "predicted": 200, "measured": 250, "unit": "B", "relative_error": 0.25,
    }  # fmt: skip


def test_a_scenarios_details_are_typed_and_kept_in_the_result_file(tmp_path):
    """Events (upload, train-sync) and the fleet's frames are typed on the result; the file keeps `extra`."""
    from pktchar.testbed.fleetrun import FleetFlows
    from pktchar.testbed.schema import Events, FrameTiming, Result

    a = Artifacts(tmp_path / "run.pcap")
    bare = Result("replay", {}, a, Prediction("replay", {}, ()), None, None, [], None, {})
    assert Events.of(bare) == [] and "extra" not in bare.to_dict() and not hasattr(bare, "extra")
    ev = [{"event": "start", "t_ns": 5}]
    res = Result("upload", {}, a, Prediction("upload", {}, ()), None, None, [], None, {}, details=Events(ev))
    assert Events.of(res) == ev and res.to_dict()["extra"] == {"events": ev}
    f = FrameTiming(0, 1000, 10, 20, 30, None)
    fleet = FleetFlows({"d0": [f], "d1": []}, 7)
    assert fleet.to_dict() == {
        "flows": {"d0": [{"id": 0, "len": 1000, "send_ns": 10, "first_ns": 20, "done_ns": 30, "answer_ns": None}],
                  "d1": []},
        "start_at_ns": 7,
    }  # fmt: skip
    res = Result("fleet", {}, a, Prediction("fleet", {}, ()), None, None, [], None, {}, details=fleet)
    assert (
        Events.of(res) == []
        and json.loads(json.dumps(res.to_dict(), default=str))["extra"]["start_at_ns"] == 7
    )


def test_result_frames_load_typed_and_old_entries_without_an_id_are_left_out(tmp_path):
    from pktchar.testbed.schema import FrameTiming, load_frames

    p = tmp_path / "r.result.json"
    p.write_text(json.dumps({"frames": [{"id": 0, "send_ns": 1, "done_ns": 2_000_000_001}, {"note": "x"}]}))
    assert load_frames(p) == [FrameTiming(0, 0, 1, 0, 2_000_000_001, None)]
    assert load_frames(p)[0].transfer_s == 2.0
    p.write_text("[]")
    assert load_frames(p) is None


def test_training_step_bytes_join_measured_and_predicted():
    """w0 sent 1,010 B of payload where 1,000 were predicted: +1 %; a step the capture missed has no error."""
    from pktchar.testbed.trainsync import StepRow

    row = StepRow(2, 2_040, 2_000, 1_010, 1_000, 0.1, 0.2, 0.01, 0.31)
    pay, eth = row.measures()
    assert pay.error == pytest.approx(0.01) and eth.error == pytest.approx(0.02) and eth.unit == "B"
    missed = StepRow(3, None, 2_000, None, 1_000, 0.1, 0.2, 0.01, 0.31)
    assert [m.error for m in missed.measures()] == [None, None]
