"""The emulated device (issue 18): time dilation slows every work unit by 1 / fraction, the CLI says so
per unit in a table and in JSON, bad input is one line, and nothing is left behind."""

from __future__ import annotations

import json
import time

import pytest
import torch

from pktchar.core.errors import PktcharError
from pktchar.testbed import device as D
from pktchar.testbed import dilate
from pktchar.testbed.dilate import Dilation
from pktchar.testbed.upload import UploadConfig, check

from conftest import run_cli

# Tolerance of a measured slowdown, against 1 / fraction. The criterion is 10% (issue 18), met on a quiet
# machine (reports/benchmarks.md). This suite runs beside other engineers' tests on 2 cores (load averages up
# to 5 seen), which moves the free baseline (a unit's CPU time, run back to back, varies by some 5% when other
# processes share the caches): 15%, each figure the median of 5 repeats. Above it, only what the host made
# the emulated unit wait for a core (the kernel's run-queue time, `host_wait_s`): a host that gives the device
# less than a quarter of a core makes it slower than a quarter of a core, whatever the mechanism.
LOADED_TOLERANCE = 0.15


def test_parse_units_and_check_name_the_fields() -> None:
    assert D.parse_units("1ms,10ms, 100ms,1s") == [0.001, 0.01, 0.1, 1.0]
    for bad, said in (("banana", "malformed work unit 'banana'"), ("100us", "from 1 ms to 10 s"),
                      ("20s", "from 1 ms to 10 s"), (",", "give one or more"), ("10", "has no unit")):  # fmt: skip
        with pytest.raises(PktcharError, match=said) as e:
            D.parse_units(bad)
        assert str(e.value).startswith("units")
    for f in (0, -0.5, 1.5, 5):
        with pytest.raises(PktcharError, match=r"^cpu must be in \(0, 1\]"):
            D.check(f, "dilate", "cpu", "limit")
    with pytest.raises(PktcharError, match="^limit must be dilate or cfs, got 'sleep'"):
        D.check(0.25, "sleep", "cpu", "limit")


def test_the_cfs_period_is_the_shortest_the_kernel_allows() -> None:
    # the kernel's least quota is 1 ms: so the period is 1 ms / fraction
    assert [(D.DeviceCpu(f, "cfs").quota_us, D.DeviceCpu(f, "cfs").period_us) for f in (0.1, 0.25, 0.5, 1.0)] == [
        (1000, 10_000), (1000, 4000), (1000, 2000), (1000, 1000)]  # fmt: skip
    assert (
        D.DeviceCpu(0.25, "cfs").describe() == "0.25 of a core, by a CFS quota (cgroup, 1000 us per 4000 us)"
    )
    text = D.DeviceCpu(0.25).describe(3.984, 0.01)
    assert text.startswith("0.25 of a core, by time dilation (") and text.endswith(
        "measured slowdown 3.98x at 10 ms"
    )


def test_upload_checks_the_device_fields() -> None:
    with pytest.raises(PktcharError, match=r"^device_cpu must be in \(0, 1\]"):
        check(UploadConfig("mobilenet_v1", device_cpu=1.5))
    with pytest.raises(PktcharError, match="^device_limit must be dilate or cfs"):
        check(UploadConfig("mobilenet_v1", device_cpu=0.25, device_limit="nice"))
    check(UploadConfig("mobilenet_v1", device_cpu=0.25))  # dilation: no root, no cgroup needed


def _conv_work() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(*(torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(4))).eval()
    return net, torch.randn(1, 32, 56, 56)


def test_a_dilation_stretches_its_threads_work_and_nothing_after_it() -> None:
    net, x = _conv_work()
    dil = Dilation(0.25)
    with torch.no_grad():
        with dil.learning():  # a warm-up that learns what each call costs
            for _ in range(5):
                net(x)
        walls, charged = [], []
        for _ in range(5):
            before = dil.work_ns
            t = time.perf_counter_ns()
            with dil:
                for _ in range(10):
                    net(x)
            walls.append(time.perf_counter_ns() - t)
            charged.append(dil.work_ns - before)
        # the context's wall time is 4x the work it charged: it sleeps (and spins) to the microsecond,
        # and a wait for a core here counts as paid (the median of 5: robust to one long stall)
        ratios = sorted(w / c for w, c in zip(walls, charged, strict=True))
        assert ratios[2] == pytest.approx(4.0, rel=0.05)
        # outside a context: nothing charged, and the global hook is gone (modules take the fast path)
        before = dil.work_ns
        net(x)
        assert dil.work_ns == before
    assert dilate._HOOK == {"handle": None, "users": 0}


def test_testbed_device_json_slowdown_is_one_over_the_fraction() -> None:
    p = run_cli(
        "testbed", "device", "--cpu", "0.25", "--units", "10ms,100ms", "--repeats", "5", "--format", "json"
    )
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["kind"] == "pktchar-device" and d["fraction"] == 0.25 and d["mechanism"] == "dilate"
    assert d["describe"].startswith("0.25 of a core, by time dilation")
    assert [u["unit_s"] for u in d["units"]] == [0.01, 0.1]
    for u in d["units"]:
        assert u["target"] == 4.0
        assert u["free_s"] == pytest.approx(u["unit_s"], rel=0.5)  # calibrated to the unit's length
        host = u["host_wait_s"] / (u["free_s"] * 4.0)  # the host's wait, as a share of the target time
        assert -LOADED_TOLERANCE < u["slowdown"] / 4.0 - 1 < LOADED_TOLERANCE + host, (u, d["load"])
        assert u["error"] == pytest.approx(u["slowdown"] / 4.0 - 1)


def test_testbed_device_table() -> None:
    p = run_cli("testbed", "device", "--cpu", "0.5", "--units", "10ms", "--repeats", "1")
    assert p.returncode == 0, p.stderr
    assert "Emulated device: 0.5 of a core, by time dilation" in p.stdout
    for head in ("work unit", "free ms", "emulated ms", "slowdown", "target 1/F", "error"):
        assert head in p.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cpu", "0"], "--cpu must be in (0, 1] (a fraction of one core), got 0"),
        (["--cpu", "5"], "--cpu must be in (0, 1] (a fraction of one core), got 5"),
        (["--cpu", "0.25", "--units", "banana"], "--units: malformed work unit 'banana'"),
        (["--cpu", "5", "--limit", "cfs"], "--cpu must be in (0, 1]"),
        (["--cpu", "0.25", "--repeats", "0"], "--repeats must be 1 or more, got 0"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    args: list[str], said: str, nothing_left_behind: str
) -> None:
    p = run_cli("testbed", "device", *args)
    assert p.returncode != 0 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pktchar: error: ") and said in lines[0], p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.root
def test_cfs_runs_in_a_cgroup_it_removes(nothing_left_behind: str) -> None:
    p = run_cli("testbed", "device", "--cpu", "0.25", "--units", "1ms,10ms", "--repeats", "2", "--limit", "cfs",
                "--format", "json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["mechanism"] == "cfs" and d["describe"].startswith(
        "0.25 of a core, by a CFS quota (cgroup, 1000 us per 4000 us), measured slowdown"
    )
    assert [u["unit_s"] for u in d["units"]] == [0.001, 0.01]
    assert all(u["emulated_s"] > u["free_s"] for u in d["units"])  # the quota bit (how much: the benchmark)
