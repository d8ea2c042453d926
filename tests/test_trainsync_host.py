"""train-sync's host model: the chain of a step's buckets worked by hand, the fit of a collective's cost,
the model read from a run's events, the paper's boards, and a live run on this machine (root)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_chain_of_two_buckets_by_hand() -> None:
    """Bucket 0 ready 0.10 s into the step, 0.05 s alone, 0.04 CPU-s; bucket 1 ready 0.40 s (the backward's
    end), 0.12 s alone; buffer broadcast 0.01 s; 2 cores. Bucket 0 runs 0.11 -> 0.16, all of it beside the
    backward (which ends at 0.41): its 0.04 CPU-s on 2 cores delay the backward by 0.02, so bucket 1 is
    ready at 0.40 + 0.01 + 0.02 = 0.43 and ends at 0.43 + 0.12 = 0.55; with a 0.01 s optimizer step the
    step is 0.56 s."""
    from pktchar.testbed.trainsync.host import Bucket, chain

    c = chain([Bucket(0.10, 0.05, 0.04), Bucket(0.40, 0.12, 0.10)], 0.40, bcast=0.01, cores=2)
    assert c["starts"] == pytest.approx([0.11, 0.43])
    assert c["ends"] == pytest.approx([0.16, 0.55])
    assert c["delay"] == pytest.approx(0.02) and c["backward_end"] == pytest.approx(0.43)
    assert c["end"] + 0.01 == pytest.approx(0.56)


def test_chain_waits_for_the_bucket_before() -> None:
    """Bucket 0 ready at 0.1 takes 0.5 s alone, so bucket 1 (ready at the backward's end, 0.4) starts when
    it is done, at 0.6, and ends at 0.7. Bucket 0's 0.2 CPU-s: only 0.3 of its 0.5 s run beside the backward
    (0.1 -> 0.4), 60 %, so the backward ends 0.6 x 0.2 / 2 = 0.06 s later, at 0.46: hidden, the step still
    ends at 0.7."""
    from pktchar.testbed.trainsync.host import Bucket, chain

    c = chain([Bucket(0.1, 0.5, 0.2), Bucket(0.4, 0.1)], 0.4, cores=2)
    assert c["starts"] == pytest.approx([0.1, 0.6]) and c["ends"] == pytest.approx([0.6, 0.7])
    assert c["backward_end"] == pytest.approx(0.46) and c["end"] == pytest.approx(0.7)


def test_fit_recovers_a_latency_a_message_and_a_cost_a_byte() -> None:
    """Excess over the wire made of 1 ms a message and 5 ns a byte, at the sizes a calibration uses (the
    ring of two workers: 4 messages for 4 KiB and 2.8 MB, 10 for 8.9 MB), is fitted back exactly."""
    from pktchar.testbed.trainsync.host import fit, ring_messages

    sizes = [4096, 2_828_688, 8_895_488]
    assert [ring_messages(b, 4, 2) for b in sizes] == [4, 4, 10]
    pts = [(ring_messages(b, 4, 2), b, 1e-3 * ring_messages(b, 4, 2) + 5e-9 * b) for b in sizes]
    a, h = fit(pts)
    assert a == pytest.approx(1e-3) and h == pytest.approx(5e-9)


def _events() -> list[dict]:
    """Two workers' events of a run with steps 0-2 (only step 2 is steady): the calibration before DDP,
    the compute-alone steps after steps 1 and 2, and DDP step 2, all times made up by hand."""
    ev: list[dict] = []
    for r in (0, 1):
        ev.append({"event": "collectives", "worker": r, "elem": 4, "sizes": [
            {"bytes": 4096, "wall_s": [0.001], "cpu_s": [0.0], "irq_s": [0.0]},
            {"bytes": 1_000_000, "wall_s": [0.03], "cpu_s": [0.01], "irq_s": [0.004]},
            {"bytes": 3_000_000, "wall_s": [0.08], "cpu_s": [0.02], "irq_s": [0.01]}]})  # fmt: skip
        for k in (1, 2):
            # forward 0.2 s, bucket 0 ready 0.01 s into the backward, bucket 1 at its end (0.3 s)
            ev.append({"event": "plain", "worker": r, "step": k, "t0": 100.0 * k, "t_fwd": 100.0 * k + 0.2,
                       "t_bwd": 100.0 * k + 0.5, "ready": [0.01, 0.3], "grads": [0.0, 0.3], "collectives": [
                           {"bytes": 1_000_000, "wall_s": [0.02], "cpu_s": [0.01], "irq_s": [0.004]},
                           {"bytes": 3_000_000, "wall_s": [0.06], "cpu_s": [0.02], "irq_s": [0.01]}]})  # fmt: skip
        ev.append({"event": "step", "worker": r, "step": 2, "t0": 1000.0, "t_fwd": 1000.21, "t_bwd": 1000.59,
                   "t_end": 1000.6, "grads": [0.0, 0.305], "buckets": [[0, 1_000_000, 1000.22, 1000.25],
                                                                      [1, 3_000_000, 1000.52, 1000.59]]})  # fmt: skip
    return ev


def test_host_timing_from_events_by_hand() -> None:
    """Step 2 predicted from the compute-alone steps around it (after steps 1 and 2, the same here):
    bucket 0 ready at 0.2 + 0.01 = 0.21, bucket 1 and the backward's end at 0.5; each all-reduce as measured
    alone between the steps (0.02 and 0.06 s, not the calibration's 0.03 and 0.08), its CPU the workers'
    summed plus the machine's interrupts: 2 x 0.01 + 0.004 = 0.024 and 2 x 0.02 + 0.01 = 0.05 CPU-s. With a
    0.001 s broadcast, 2 cores and a 0.01 s optimizer step: bucket 0 runs 0.211 -> 0.231, beside the
    backward, which it delays by 0.012; bucket 1 runs 0.513 -> 0.573; the step is 0.583 s against 0.6
    measured. The span: 0.573 - 0.211 = 0.362 predicted, 0.59 - 0.22 = 0.37 measured."""
    from pktchar.testbed.trainsync.host import host_timing

    h = host_timing(_events(), 2, 1e9, 4, bcast=0.001, opt=0.01, solo=0.5, cores=2)
    assert [r["step"] for r in h["steps"]] == [2]
    assert h["step_predicted_s"] == pytest.approx(0.583) and h["step_measured_s"] == pytest.approx(0.6)
    assert h["step_error"] == pytest.approx(0.6 / 0.583 - 1)
    assert h["span_predicted_s"] == pytest.approx(0.362) and h["span_measured_s"] == pytest.approx(0.37)
    assert h["backward_delay_s"] == pytest.approx(0.012)
    assert [b["alone_s"] for b in h["buckets"]] == pytest.approx([0.02, 0.06])
    assert [b["cpu_s"] for b in h["buckets"]] == pytest.approx([0.024, 0.05])
    assert h["compute_concurrent_s"] == pytest.approx(0.5) and h["compute_solo_s"] == 0.5
    # the calibration before DDP: 1 MB takes 0.03 s alone
    assert [s["alone_s"] for s in h["path"]["sizes"]] == pytest.approx([0.001, 0.03, 0.08])


def test_board_cost_of_the_paper() -> None:
    """The paper: 9,310 s on one board and 28,248 s on two, 78,200 steps each: 0.11905 and 0.36123 s a
    step, 0.24217 s added. seed000's steady step at two workers: w0 sends 11,863,248 B (gloo) in
    12,406,560 B of frames, 0.09925 s at 1 Gbit/s. Left for the host: 0.14292 s, 12.05 ns a byte."""
    from pktchar.testbed.trainsync import TrainConfig, prepare
    from pktchar.testbed.trainsync.host import board_cost

    plan = prepare(TrainConfig(model="seed000", workers=2, steps=3))
    c = board_cost(plan, 9310.0, 28248.0, 78200, 1e9)
    assert c.bytes_sent == 11_863_248 and c.wire_s == pytest.approx(12_406_560 * 8 / 1e9)
    assert c.extra_s == pytest.approx((28248 - 9310) / 78200)
    assert c.per_byte_s == pytest.approx(((28248 - 9310) / 78200 - 0.09925248) / 11_863_248)
    assert 12.0e-9 < c.per_byte_s < 12.1e-9
    assert c.messages == 14  # 4 for the 2.8 MB bucket, 10 for the 8.9 MB one


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_two_workers_step_predicted_on_this_host(tmp_path: Path) -> None:
    """seed000 at batch 16 on two workers at 1 Gbit/s: the host model's step and all-reduce span within 35 %
    of the measured ones. Why 35 % and not the 15 % the model meets on the mean of a longer run: here 3
    steady steps, and the machine is shared: other work starting or stopping between the compute-alone
    steps and the DDP step they bracket moves a single step by up to 40 % (seen at load 4 on 2 cores);
    three steps average part of it out."""
    from pktchar.testbed.trainsync import TrainConfig, train_sync

    cfg = TrainConfig(
        model="seed000", workers=2, batch=16, steps=5, pcap=tmp_path / "t.pcap", calibrate=False
    )
    rep = train_sync(cfg)
    assert rep.error is None, rep.error
    h = rep.timing["host"]
    assert [r["step"] for r in h["steps"]] == [2, 3, 4]
    assert abs(h["step_error"]) < 0.35, (h["step_predicted_s"], h["step_measured_s"])
    assert abs(h["span_error"]) < 0.35, (h["span_predicted_s"], h["span_measured_s"])
    # the timed hook all-reduces what DDP's own would: w0's payload a steady step is still the plan's
    w0 = rep.per_worker[0]
    assert w0["payload"] == w0["payload_predicted"]
    # the all-reduce alone costs more than its wire time on these links; gloo alone on loopback less
    big = h["path"]["sizes"][-1]
    assert big["alone_s"] > big["wire_s"]
    assert "error" not in h["loopback"] and h["loopback"]["sizes"][-1]["wall_s"] < big["alone_s"]
