"""train-sync: DDP over gloo across namespaces, bytes a step worked out by hand from the parameter list.

The model of these tests (``NET`` below) has, in registration order (float32, 4 B an element):

    conv.weight 16x3x3x3 = 432 -> 1,728 B     conv.bias 16 -> 64 B
    bn.weight 16 -> 64 B                      bn.bias 16 -> 64 B
    fc1.weight 16384x16 = 262,144 -> 1,048,576 B   fc1.bias 16,384 -> 65,536 B
    fc2.weight 10x16384 = 163,840 -> 655,360 B     fc2.bias 10 -> 40 B
    buffers: bn.running_mean 64 B, bn.running_var 64 B (float32), bn.num_batches_tracked 8 B (int64)

Gradients: 1,771,432 B. DDP's buckets (torch 2.14): the first iteration one bucket of all of them; then
rebuilt in reverse order, closed once a bucket reaches its limit (1 MiB first, then 25 MiB):
fc2.bias 40 + fc2.weight 655,360 + fc1.bias 65,536 + fc1.weight 1,048,576 = 1,769,512 >= 1,048,576
closes bucket 0; the rest, 64 + 64 + 64 + 1,728 = 1,920 B, is bucket 1.

Gloo's ring all-reduce over two ranks (allreduce.cc) cuts a bucket into max(ceil(B / 1 MiB), 4) = 4
segments (rounded up to a multiple of 2); each rank sends every segment once (two in reduce-scatter,
two in all-gather) when none is empty, so it sends B bytes in 4 messages. Every message costs the
sender a 48 B NOTIFY_SEND_READY preamble plus a 48 B preamble on the data, and every receive costs the
receiver a 48 B NOTIFY_RECV_READY (gloo/transport/tcp/pair.cc): 4 x (96 + 48) = 576 B of framing a
bucket a direction. A broadcast from rank 0 to rank 1: rank 0 sends 96 + L, rank 1 sends 48.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

NET = """
from torch import nn


def net(num_classes=10):
    m = nn.Sequential()
    m.add_module("conv", nn.Conv2d(3, 16, 3, padding=1))
    m.add_module("bn", nn.BatchNorm2d(16))
    m.add_module("relu", nn.ReLU())
    m.add_module("pool", nn.AdaptiveAvgPool2d(1))
    m.add_module("flat", nn.Flatten())
    m.add_module("fc1", nn.Linear(16, 16384))
    m.add_module("fc2", nn.Linear(16384, num_classes))
    return m


def nothing(num_classes=10):
    return nn.Sequential(nn.ReLU())
"""

GRADS = 1_771_432
BUCKETS = (1_769_512, 1_920)
BCAST_W0 = (96 + 128) + (96 + 8)  # rank 0 sends the float buffers and the int64 one
BCAST_W1 = 48 + 48  # rank 1 posts a receive for each
RING = 4 * (96 + 48)  # framing of one bucket's all-reduce, each direction


def _model(tmp_path: Path) -> str:
    f = tmp_path / "tiny.py"
    f.write_text(NET)
    return f"{f}:net"


def test_plan_is_the_hand_worked_one(tmp_path: Path) -> None:
    from pktchar.testbed.trainsync import TrainConfig, prepare

    plan = prepare(TrainConfig(model=_model(tmp_path), workers=2, steps=3, classes=10))
    assert plan.grad_bytes == GRADS
    assert plan.first_buckets == [GRADS]
    assert plan.rebuilt_buckets == list(BUCKETS)
    steady_w0 = sum(BUCKETS) + 2 * RING + BCAST_W0
    steady_w1 = sum(BUCKETS) + 2 * RING + BCAST_W1
    assert plan.step_total(2, "sent", 0) == steady_w0
    assert plan.step_total(2, "sent", 1) == steady_w1
    # step 1 also broadcasts the rebuilt indices: (8 parameters + 1) x 4 B, then 2 buckets x 4 B
    assert plan.step_total(1, "sent", 0) == steady_w0 + (96 + 36) + (96 + 8)


def test_gloo_framing_of_tiny_all_reduce() -> None:
    """A 4-byte all-reduce over two ranks: 4 segments of 4 B, only the first non-empty; one data message
    each way (96 + 4) and one receive notification (48): 148 B a direction."""
    from pktchar.testbed.trainsync import ring_allreduce

    msgs = ring_allreduce(4, 4, 2)
    assert sum(m.size for m in msgs if m.src == 0) == 148
    assert sum(m.size for m in msgs if m.src == 1) == 148


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    model = _model(tmp_path).replace(":net", ":nothing")
    r = run_cli("train-sync", model, "--workers", "2", timeout=120)
    assert r.returncode != 0 and "no trainable parameters" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("train-sync", "--preset", "seed000", "--workers", "64")
    assert r.returncode != 0 and "more than this testbed runs" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train-sync", "--preset", "seed000", "--workers", "two")
    assert r.returncode != 0 and "--workers" in r.stderr


def test_one_worker_runs_locally(tmp_path: Path) -> None:
    r = run_cli("train-sync", _model(tmp_path), "--workers", "1", "--batch", "2", "--res", "16", "--steps", "2",
                "--classes", "10", "--format", "json", timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    import json

    d = json.loads(r.stdout)
    assert "without a network" in " ".join(d["notes"]) and len(d["steps"]) == 2


def test_data_folder(tmp_path: Path) -> None:
    """The worker reads the ImageFolder itself: it reports the classes and images it found on disk (3
    classes of 2, 3 and 4 PNGs; a text file beside them is no image), which only reading the folder gives;
    and a PNG whose bytes are not an image makes it fail, which only decoding the images does."""
    import json

    from PIL import Image

    data = tmp_path / "data"
    for c, n in (("cat", 2), ("dog", 3), ("eel", 4)):
        (data / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (20, 13), (i * 40, 100, 200)).save(data / c / f"{i}.png")
    (data / "eel" / "README.txt").write_text("not an image: ImageFolder skips other extensions")
    args = ("train-sync", _model(tmp_path), "--workers", "1", "--batch", "2", "--res", "16", "--steps", "2",
            "--classes", "10", "--data", str(data), "--format", "json")  # fmt: skip
    r = run_cli(*args, timeout=300)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)["data"]
    # resized to --res: a batch of 2 RGB images of 16 x 16
    assert loaded == [{"worker": "w0", "source": "ImageFolder", "folder": str(data), "images": 9,
                       "classes": ["cat", "dog", "eel"], "per_class": [2, 3, 4], "batch_shape": [2, 3, 16, 16]}]  # fmt: skip
    # 10 images in batches of 2: the warm-up, 2 timed local steps and 2 steps draw 5 batches, the whole
    # (shuffled) folder, so the broken one is decoded whatever the order
    (data / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    r = run_cli(*args, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "broken.png" in r.stderr, r.stderr


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_two_workers_bytes_match_the_hand_worked_prediction(tmp_path: Path) -> None:
    from pktchar.testbed.trainsync import TrainConfig, train_sync

    cfg = TrainConfig(model=_model(tmp_path), workers=2, batch=4, res=16, classes=10, steps=4,
                      pcap=tmp_path / "t.pcap", calibrate=False)  # fmt: skip
    rep = train_sync(cfg)
    assert rep.error is None, rep.error
    assert all(c["complete"] for c in rep.captures.values()) and set(rep.captures) == {"w0", "w1"}
    assert (tmp_path / "t-w1.pcap").exists()
    w0, w1 = rep.per_worker
    hand = {
        0: GRADS + RING + BCAST_W0,  # one bucket in the first iteration
        1: sum(BUCKETS) + 2 * RING + BCAST_W0 + (96 + 36) + (96 + 8),
        2: sum(BUCKETS) + 2 * RING + BCAST_W0,
        3: sum(BUCKETS) + 2 * RING + BCAST_W0,
    }
    for k, step in enumerate(w0["by_step"]):
        assert abs(step["sent_payload"] / hand[k] - 1) < 0.001, (k, step["sent_payload"], hand[k])
        # Ethernet: at most one 66 B header a 1448 B segment, plus one a message (the 12 small ones)
        frames = step["sent"]
        assert (
            hand[k] * (1 + 66 / 1448) < frames * 1.02
            and frames < (hand[k] * (1 + 66 / 1448) + 20 * 66) * 1.02
        )
    for step in w1["by_step"][2:]:
        assert abs(step["sent_payload"] / (sum(BUCKETS) + 2 * RING + BCAST_W1) - 1) < 0.001
    assert rep.ddp_buckets["rebuilt_bucket_sizes"].replace(" ", "") == "1769512,1920"


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_worker_killed_mid_run_fails_fast(tmp_path: Path) -> None:
    from pktchar.testbed.runner import run
    from pktchar.testbed.schema import Events
    from pktchar.testbed.trainsync import TrainConfig, TrainScenario, prepare

    cfg = TrainConfig(model=_model(tmp_path), workers=2, batch=4, res=16, classes=10, steps=40, gap=0.2,
                      calibrate=False, timeout=30)  # fmt: skip
    sc = TrainScenario(cfg, prepare(cfg))

    def kill(done: int, total: int) -> None:
        if done == 2 and sc.workers is not None and sc.workers.procs[1].poll() is None:
            os.kill(sc.workers.procs[1].pid, signal.SIGKILL)

    t0 = time.monotonic()
    res = run(sc, tmp_path / "k.pcap", calibrate_link=False, progress=kill)
    assert time.monotonic() - t0 < 90
    assert res.error is not None and "\n" not in res.error
    assert "w1" in res.error or "rank 0" in res.error
    assert res.artifacts.result.exists() and res.captures["w0"].captured > 0
    steps = [e for e in Events.of(res) if e.get("event") == "step" and e["worker"] == 0]
    assert 2 <= len(steps) < 40


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_rendezvous_port_in_use_is_one_line() -> None:
    """A listener already on w0's rendezvous port: the run stops before any worker starts."""
    import subprocess
    import sys

    from pktchar.core.errors import PktcharError, raw
    from pktchar.testbed.netns import Link, Topology
    from pktchar.testbed.trainsync import port_free

    with Topology(["w0", "w1"], Link(1e9)) as topo:
        ip = topo.eps["w0"].ip
        code = f"import socket,time; s=socket.socket(); s.bind(('{ip}', 29500)); s.listen(); print('up', flush=True); time.sleep(60)"
        holder = topo.popen("w0", [sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
        port_free(topo, "w0", 29501)  # another port is free
        with pytest.raises(PktcharError, match="rendezvous port 29500 is in use on w0") as e:
            port_free(topo, "w0", 29500)
        assert raw(e.value).endswith(": choose another `port`")  # the field; train-sync says --port
        holder.kill()
        holder.wait()


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_link_cut_mid_run_times_out_in_one_line(tmp_path: Path) -> None:
    """w1's veth goes down after two steps: gloo's timeout (5 s here) ends the run with one line."""
    import subprocess

    from pktchar.testbed.runner import run
    from pktchar.testbed.trainsync import TrainConfig, TrainScenario, prepare

    cfg = TrainConfig(model=_model(tmp_path), workers=2, batch=4, res=16, classes=10, steps=60, gap=0.2,
                      calibrate=False, timeout=5)  # fmt: skip
    sc = TrainScenario(cfg, prepare(cfg))

    def cut(done: int, total: int) -> None:
        if done == 2 and sc.topo is not None:
            e = sc.topo.eps["w1"]
            subprocess.run(["ip", "netns", "exec", e.ns, "ip", "link", "set", e.ifname, "down"], check=True)

    t0 = time.monotonic()
    res = run(sc, tmp_path / "cut.pcap", calibrate_link=False, progress=cut)
    assert time.monotonic() - t0 < 90
    assert res.error is not None and "\n" not in res.error and "[" not in res.error
    assert any(w in res.error.lower() for w in ("timed out", "timeout", "closed"))
    assert res.artifacts.result.exists()


ALLREDUCE = r"""
import datetime, sys, time
import torch
import torch.distributed as dist

r = int(sys.argv[1])
dist.init_process_group("gloo", rank=r, world_size=2, timeout=datetime.timedelta(seconds=30))
time.sleep(1.0)
for n in (262144, 1):
    t = torch.ones(n)
    print("T", time.time(), flush=True)
    dist.all_reduce(t)
    print("E", time.time(), flush=True)
    time.sleep(1.0)
dist.destroy_process_group()
"""


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left_behind")
def test_gloo_all_reduce_framing_on_the_wire(tmp_path: Path) -> None:
    """Two ranks in namespaces all-reduce 1 MiB, then 4 B. By hand: 1 MiB is 4 segments of 256 KiB, each
    rank sends all 4 (2 reduce-scatter, 2 all-gather): 1,048,576 + 4 x (48 + 48) + 4 x 48 = 1,049,152 B a
    direction; 4 B is one message: 4 + 96 + 48 = 148 B a direction."""
    import subprocess
    import sys

    from pktchar.testbed.capture import Capture
    from pktchar.testbed.netns import Link, Topology
    from pktchar.testbed.pcap import read

    with Topology(["w0", "w1"], Link(1e9, 1e9)) as topo:
        cap = Capture(topo, "w0", tmp_path / "ar.pcap")
        cap.start()
        procs = []
        for r in range(2):
            env = {**os.environ, "GLOO_SOCKET_IFNAME": topo.eps[f"w{r}"].ifname, "MASTER_ADDR": topo.eps["w0"].ip,
                   "MASTER_PORT": "29500"}  # fmt: skip
            procs.append(topo.popen(f"w{r}", [sys.executable, "-c", ALLREDUCE, str(r)], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env))  # fmt: skip
        out = [p.communicate(timeout=120)[0] for p in procs]
        stats = cap.stop()
    assert all(p.returncode == 0 for p in procs) and stats.complete
    marks = [float(x.split()[1]) for x in out[0].splitlines() if x[:1] in "TE"]
    pkts = [p for p in read(tmp_path / "ar.pcap") if p.proto == "tcp" and 29500 not in (p.sport, p.dport)]
    for (a, b), want in zip(((marks[0], marks[1]), (marks[2], marks[3])), (1_049_152, 148), strict=True):
        for src in ("10.213.0.1", "10.213.0.2"):
            first = {
                (p.sport, p.dport, p.seq): p.payload
                for p in reversed(pkts)
                if a - 0.3 <= p.ts < b + 0.5 and p.src == src and p.payload
            }  # a retransmission counts once
            got = sum(first.values())
            assert got == want, (src, got, want)
