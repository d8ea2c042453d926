"""Live testbed: real namespaces, shaped veth, real sockets, tcpdump. Needs root; runs under CI=true."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pktchar.testbed import netns
from pktchar.testbed.replay import ReplayConfig, replay

from conftest import run_cli

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("nothing_left_behind")]


def test_replay_80mbit_matches_prediction(tmp_path):
    cfg = ReplayConfig(
        model="vgg16", split="features.30", res="224", link=80e6, frames=8, pcap=tmp_path / "vgg.pcap"
    )
    r = replay(cfg)
    assert r.error is None
    # capture completeness: every packet through the interface is in the pcap, none dropped
    assert r.capture.dropped_by_kernel == 0
    assert r.capture.captured == r.capture.interface_packets > 0
    c = r.comparison
    assert c is not None
    # hand-worked: pool5 of VGG-16 is 25,088 fp32 values = 100,352 B -> 70 packets a frame
    assert c.row("packets").measured == 8 * 70
    # packetization is deterministic: the bytes are exact (retransmissions would be counted apart)
    assert c.row("wire_bytes").error == 0
    # 3%: capture stamps are taken when the edge's softirq runs; on a loaded 2-core VM it runs up to a few
    # hundred microseconds late, against the 10.2 ms each frame's packets take at 80 Mbit/s
    assert abs(c.row("goodput").error) < 0.03
    # against the calibrated rate, not the nominal one: the calibration measured what this machine
    # delivers now; 5% on the mean for the same wake-up delays at both ends of each frame
    assert r.calibration is not None
    mean = sum(f.transfer_s for f in c.frames) / len(c.frames)
    cal = sum(f.predicted_transfer_s for f in c.frames) / len(c.frames)
    assert abs(mean / cal - 1) < 0.05
    # single frames: a frame whose start finds another process on the CPU stretches (2-6x seen under load),
    # so most, not all, are held to 5%
    close = [f for f in c.frames if abs(f.transfer_s / f.predicted_transfer_s - 1) < 0.05]
    assert len(close) >= 6
    # 3%: at 80 Mbit/s the whole path needs a small share of one core, so the link's rate is what tbf sets
    assert abs(r.calibration.goodput_error) < 0.03
    env = r.environment
    assert env["kernel"] and "tbf" in json.dumps(env["qdisc"]) and env["tools"]["tcpdump"] != "unknown"
    assert all(v.get("tcp-segmentation-offload", "off").startswith("off") for v in env["offloads"].values())
    saved = json.loads(r.pcap.with_suffix(".result.json").read_text())
    assert saved["capture"]["complete"] is True


def test_udp_replay(tmp_path):
    cfg = ReplayConfig(
        model="resnet18",
        split="layer4.1.relu#2",
        res="224",
        link=80e6,
        frames=4,
        proto="udp",
        pcap=tmp_path / "u.pcap",
        calibrate=False,
    )
    r = replay(cfg)
    assert r.error is None and r.capture.complete
    # 512x7x7 fp32 = 100,352 B + 24 B header: 1,460 B a datagram -> 69 datagrams a frame
    assert r.comparison is not None and r.comparison.row("packets").measured == 4 * 69


@pytest.mark.parametrize("proto, per_frame", [("tcp", 70), ("udp", 69)])
def test_cli_replay_with_calibration(tmp_path, proto, per_frame):
    """The CLI path as a user runs it, calibration on (it once left the UDP receiver dead)."""
    pcap = tmp_path / f"{proto}.pcap"
    r = run_cli("replay", "vgg16", "--res", "224", "--split", "features.30", "--link", "80mbit", "--frames", "5",
                "--proto", proto, "--pcap", str(pcap), "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["error"] is None and d["calibration"]["bytes"] > 0
    # pool5 of VGG-16: 25,088 fp32 = 100,352 B + 24 B header; TCP: MSS 1448 -> 70 segments;
    # UDP: 1500 - 20 - 8 - 12 = 1,460 B a datagram -> 69 datagrams
    rows = {x["metric"]: x for x in d["comparison"]["rows"]}
    assert rows["packets (data direction)"]["measured"] == 5 * per_frame
    for f in (pcap, pcap.with_suffix(".prediction.json"), pcap.with_suffix(".result.json")):
        assert f"wrote {f}" in r.stderr


def _cli_replay(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("pktchar")
    return subprocess.Popen(
        [
            str(exe),
            "replay",
            "vgg16",
            "--split",
            "features.30",
            "--link",
            "80mbit",
            "--fps",
            "5",
            "--frames",
            "200",
            "--pcap",
            str(tmp_path / "long.pcap"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_frames(pcap: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (
            pcap.exists()
            and pcap.stat().st_size > 200_000
            and any("endpoint send" in " ".join(_cmdline(p)) for p in _pids())
        ):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
    raise AssertionError("the replay never started sending")


def _pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "pktchar.testbed.endpoint"], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def test_ctrl_c_leaves_nothing(tmp_path):
    proc = _cli_replay(tmp_path)
    _wait_for_frames(tmp_path / "long.pcap", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "interrupted" in err
    # the frames measured before Ctrl-C are kept, and the user is told how to compare them
    saved = json.loads((tmp_path / "long.result.json").read_text())
    assert saved["interrupted"] is True and len(saved["frames"]) >= 1
    assert f"pktchar compare {tmp_path / 'long.pcap'}" in err
    assert (tmp_path / "long.prediction.json").exists()


def test_killed_receiver_is_reported_and_frames_kept(tmp_path):
    proc = _cli_replay(tmp_path)
    _wait_for_frames(tmp_path / "long.pcap", proc)
    receivers = [p for p in _pids() if "recv" in _cmdline(p)]
    assert receivers
    os.kill(receivers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "Traceback" not in err
    assert "peer lost" in err and "frames measured" in err
    saved = json.loads((tmp_path / "long.result.json").read_text())
    assert saved["error"] and len(saved["frames"]) >= 1


def test_stale_namespaces_of_a_dead_run_are_cleaned():
    topo = netns.Topology(["a", "b"], netns.Link(10e6))
    topo.create()
    state = netns.STATE_DIR / f"{topo.run_id}.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    state.write_text(json.dumps({"pid": dead.pid}))  # as if its owner had crashed
    assert topo.ns_name("a") in netns.list_namespaces()
    removed = netns.clean_stale()
    assert set(removed) >= {topo.ns_name("a"), topo.ns_name("b")}


def test_bridge_topology_for_many_endpoints(tmp_path):
    (tmp_path / "p.bin").write_bytes(b"x" * 5000)
    (tmp_path / "s.json").write_text("[5000]")
    os.chmod(tmp_path, 0o755)
    with netns.Topology(["d0", "d1", "edge"], netns.Link(50e6)) as topo:
        assert topo.bridge_ns in netns.list_namespaces()
        mod = [sys.executable, "-m", "pktchar.testbed.endpoint"]
        recv = topo.popen("edge", [*mod, "recv", "--port", "7000"], stdout=subprocess.PIPE)
        assert recv.stdout is not None and "READY" in recv.stdout.readline()
        for dev in ("d0", "d1"):  # both devices reach the edge through the bridge
            send = topo.popen(
                dev,
                [
                    *mod,
                    "send",
                    "--host",
                    topo.eps["edge"].ip,
                    "--port",
                    "7000",
                    "--payload",
                    str(tmp_path / "p.bin"),
                    "--sizes",
                    str(tmp_path / "s.json"),
                    "--calibration",
                ],
                stdout=subprocess.PIPE,
            )
            out, _ = send.communicate(timeout=30)
            assert send.returncode == 0 and json.loads(out.splitlines()[-1])["len"] == 5000
