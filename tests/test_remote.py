"""`replay --to HOST:PORT` between real hosts (here: loopback, no root, nothing shaped): without a capture
the run shows its frames at the application (send -> the edge's answer back here) against a prediction
at the rate the calibration measured on the path, says that --link is not enforced, and lists only files
it wrote. The figures are worked out here from result.json's raw fields, not read back from the code."""

from __future__ import annotations

from pktchar.testbed.scenario import Artifacts, Prediction, Result


def test_files_of_a_run_without_a_capture(tmp_path):
    """Artifacts of a run that captures nothing: the pcap only names the stem, even when a file of that
    name exists from another run."""
    a = Artifacts(tmp_path / "run.pcap", capturing=False)
    (tmp_path / "run.pcap").write_bytes(b"old")
    a.prediction.write_text("{}")
    assert a.all() == [tmp_path / "run.prediction.json", tmp_path / "run.result.json"]
    assert a.written() == [tmp_path / "run.prediction.json"]
    # result.json lists the prediction and itself (being written), not the other run's pcap
    res = Result("replay", {}, a, Prediction("replay", {}, ()), None, None, [], None, {})
    assert res.files() == {"prediction": str(a.prediction), "result": str(a.result)}
    # a run that captures keeps every file, in the same order as before
    b = Artifacts(tmp_path / "run.pcap")
    assert b.written() == [tmp_path / "run.pcap", tmp_path / "run.prediction.json"]
