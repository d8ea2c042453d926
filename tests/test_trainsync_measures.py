"""A training-sync run's measured-against-predicted figures, by name (the one join), and the views showing
exactly those numbers; a hand-made report stands in for a run (no root)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pktchar.testbed.trainsync import StepRow, TrainConfig, TrainReport


def _report() -> TrainReport:
    timing = {
        "compute_s": 1.0, "compute_bwd_s": 0.5, "buffer_bcast_s": 0.001, "allreduce_s": 0.1,
        "last_bucket_s": 0.08, "step_predicted_no_overlap_s": 1.101, "step_predicted_overlap_s": 1.081,
        "step_measured_s": 1.2, "allreduce_measured_s": 0.25, "calibrated_bps": None, "hidden_s": 0.05,
        "hidden_fraction": 0.2,
    }  # fmt: skip
    w0 = {"worker": "w0", "sent": 1_020, "sent_predicted": 1_000, "payload": 909, "payload_predicted": 900,
          "received_payload": 900, "received_payload_predicted": 900, "segments": 8.0, "segments_predicted": 8,
          "acks_sent": 3.0, "ack_bytes_sent": 198, "retransmitted": 0}  # fmt: skip
    steps = [StepRow(k, 1_020, 1_000, 909, 900, 0.4, 0.5, 0.1, 1.2, 0.25) for k in range(3)]
    plan = SimpleNamespace(to_dict=lambda: {"params": [], "buffers": []}, grad_bytes=900)
    cons = {"sent_payload": 5_050, "predicted_payload": 5_000}
    return TrainReport(TrainConfig(), plan, "test", {}, steps, [w0], cons, timing, {}, {}, None, None)  # type: ignore[arg-type]


def test_timing_and_bytes_join_by_name() -> None:
    rep = _report()
    t = rep.timing_measures()
    # all-reduce: 0.25 s measured against 0.1 s predicted, +150 %; the step 1.2 s against 1.101 s: +8.99 %
    assert t.allreduce.error == pytest.approx(1.5) and t.step_no_overlap.error == pytest.approx(0.099 / 1.101)
    assert t.step_overlap.error == pytest.approx(0.119 / 1.081)
    assert t.step_calibrated.predicted is None and t.step_calibrated.error is None  # not calibrated
    w = rep.worker_measures(0)
    assert w.payload.error == pytest.approx(0.01) and w.sent.error == pytest.approx(0.02)
    assert w.received.error == 0 and w.segments.error == 0
    c = rep.construction_measure()
    assert c is not None and c.error == pytest.approx(0.01)  # 5,050 B against 5,000
    d = rep.to_dict()["measures"]
    assert [x["relative_error"] for x in d["timing"]] == [m.error for m in t]
    assert len(d["steps"]) == 3 and d["steps"][0][1]["relative_error"] == pytest.approx(0.02)


def test_views_show_the_joins_errors() -> None:
    from pktchar.present import views

    rep = _report()
    timing = {r["q"]: r.get("e") for r in views.train_timing_table(rep).rows}
    assert timing["all-reduce span, measured (s)"] == rep.timing_measures().allreduce.error
    assert timing["step, predicted, nothing hidden (s)"] == rep.timing_measures().step_no_overlap.error
    step = views.train_steps_table(rep).rows[0]
    assert (step["pay_e"], step["eth_e"]) == (pytest.approx(0.01), pytest.approx(0.02))
    (row,) = views.train_workers_table([rep]).rows
    assert (row["pay_m"], row["pay_p"], row["eth_e"]) == (909, 900, pytest.approx(0.02))
    lines = views.train_lines(rep)
    assert "w0 sent 5,050 B payload; predicted 5,000 B (+1.00%)" in lines[1]
    assert lines[2].startswith("w0: 909 B payload a steady step (predicted 900, +1.00%)")
