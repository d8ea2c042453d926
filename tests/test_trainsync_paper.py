"""The paper's two-board projection (testbed.trainsync.paper_rows) in numbers, each figure worked out by hand
from the paper's own (KETI/ETRI 2023: one board 9,310 s, two boards 28,248 s, 100 epochs of 50,000 images at
batch 64, two boards at 1 Gbit/s) and from the bytes seed000 puts on the wire; and the view formatting
exactly those numbers. No run needed (no root)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from pktchar.testbed.trainsync import paper_rows

ONE, TWO = 9_310.0, 28_248.0
STEPS = 100 * math.ceil(50_000 / 64)  # 100 x 782 = 78,200 steps a board
STEP1 = ONE / STEPS  # 0.119054 s a step on one board

# seed000 (MobileNetV2's backbone + Linear(1280, 512) + Linear(512, 100)): 2,931,044 trainable parameters;
# the head alone 655,872 + 51,300 = 707,172
GRADS, HEAD = 2_931_044 * 4, 707_172 * 4
# every forward broadcasts MobileNetV2's BatchNorm buffers: 52 layers, 17,056 channels (32 + 48 + 528 + 1,152
# + 2,944 + 3,360 + 5,472 + 2,240 + 1,280, block by block), running mean and variance in fp32, and 52
# num_batches_tracked in int64
BUFFERS = 17_056 * 2 * 4 + 52 * 8


def _wire_s(payload: int) -> float:
    """The fewest Ethernet bytes that carry ``payload``: full 1,448 B segments, 66 B of headers each, at 1 Gbit/s."""
    return (payload + math.ceil(payload / 1448) * 66) * 8 / 1e9


# Above that: gloo's 96 B a message sent (two preambles), and a short segment where each message ends;
# some 5 KB a step for seed000's buckets and broadcasts
GLOO_S = 6_000 * 8 / 1e9


def _measured(step_s: float, compute_s: float) -> SimpleNamespace:
    return SimpleNamespace(timing={"step_measured_s": step_s, "compute_s": compute_s})


@pytest.fixture(scope="module")
def rows():
    # a two-worker run here whose step took 1.5 s against 1.0 s of compute: 0.5 s of sync a step
    return {r.key: r for r in paper_rows("seed000", {"full": _measured(1.5, 1.0)})}  # type: ignore[dict-item]


def test_one_board_is_the_papers(rows) -> None:
    r = rows["one_board"]
    assert (r.steps, r.sync, r.total, r.paper, r.vs_one) == (78_200, 0.0, ONE, ONE, 1.0)


@pytest.mark.parametrize(
    ("key", "payload"),
    [
        ("paper_setup", GRADS + BUFFERS),  # ring all-reduce of 2: each sends the whole gradient once
        ("frozen", HEAD + BUFFERS),  # only the head's gradients
        ("fp16", GRADS // 2 + BUFFERS),  # gradients in 2 B, buffers still fp32
        ("all_four", HEAD // 2 + BUFFERS),
    ],
)
def test_sync_a_step_is_the_bytes_at_1_gbit(rows, key: str, payload: int) -> None:
    assert _wire_s(payload) <= rows[key].sync <= _wire_s(payload) + GLOO_S


def test_totals_are_steps_times_a_step(rows) -> None:
    full = _wire_s(GRADS + BUFFERS)  # 0.099214 s
    setup = rows["paper_setup"]
    # 9,310 + 78,200 x 0.0992 s = about 17,069 s: 1.83x one board, where the paper measured 28,248 s (3.03x)
    assert setup.steps == STEPS and setup.paper == TWO
    assert STEPS * (STEP1 + full) <= setup.total <= STEPS * (STEP1 + full + GLOO_S)
    assert 17_068 < setup.total < 17_077 and setup.vs_one == pytest.approx(setup.total / ONE)
    sharded = rows["sharded"]  # each board half the steps
    assert sharded.steps == 39_100 and sharded.total == pytest.approx(39_100 * (STEP1 + setup.sync))
    assert sharded.paper is None
    batch = rows["batch"]  # batch 256: 100 x ceil(50,000 / 256) = 19,600 steps, each 4x the compute
    assert batch.steps == 19_600 and batch.total == pytest.approx(19_600 * (4 * STEP1 + setup.sync))
    assert rows["all_four"].steps == 9_800
    measured = rows["paper_setup_measured"]  # 0.5 s of sync: 9,310 + 78,200 x 0.5 = 48,410 s
    assert measured.sync == 0.5 and measured.total == pytest.approx(48_410) and measured.paper == TWO
    assert measured.vs_one == pytest.approx(48_410 / 9_310)
    assert "frozen_measured" not in rows and "fp16_measured" not in rows  # no such runs given


def test_the_view_formats_the_numbers(rows) -> None:
    from pktchar.present import views

    ordered = list(rows.values())
    table = views.train_paper_table(ordered)
    assert [r["total"] for r in table.rows] == [r.total for r in ordered]  # numbers, not text
    assert {c.key: c.kind for c in table.columns}["vs_one"] == "float"
    text = " ".join(views.train_paper_lines(ordered))
    setup = rows["paper_setup"]
    assert (
        f"-> {setup.total:,.0f} s ({setup.vs_one:.2f}x one board) against the paper's 28,248 s (3.03x)"
        in text
    )
    assert "with the sync measured here (0.500 s a step" in text and "48,410 s (5.20x one board)" in text


def test_measured_sync_takes_the_compute_of_all_workers_at_once() -> None:
    from pktchar.testbed.trainsync import measured_sync

    # a run whose step took 1.2 s; each worker alone before the process group 1.4 s (its start overlapped the
    # others' imports), all workers computing at once 0.9 s: the sync is 1.2 - 0.9 = 0.3 s, not -0.2 s
    run = SimpleNamespace(
        timing={"step_measured_s": 1.2, "compute_s": 1.4, "host": {"compute_concurrent_s": 0.9}}
    )
    assert measured_sync(run) == pytest.approx(0.3)  # type: ignore[arg-type]
    assert measured_sync(_measured(1.5, 1.0)) == pytest.approx(0.5)  # type: ignore[arg-type]  # no host model
    assert measured_sync(SimpleNamespace(timing={"step_measured_s": None, "compute_s": 1.0})) is None  # type: ignore[arg-type]
