"""`replay --to HOST:PORT` between real hosts (here: loopback, no root, nothing shaped): without a capture
the run shows its frames at the application (send -> the edge's answer back here) against a prediction
at the rate the calibration measured on the path, says that the link rate given (--link) is not
enforced, and lists only files it wrote. The figures are worked out here from result.json's raw fields,
not read back from the code."""

from __future__ import annotations

import json
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pktchar.testbed.schema import Artifacts, Prediction, Result

# resnet18's avgpool: 512 channels x 1 x 1, fp32 = 2,048 B a frame; the frame header is 24 B
PAYLOAD, HEADER = 512 * 4, 24


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _pktchar(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pktchar", *args], capture_output=True, text=True, timeout=300,
                          **kw)  # type: ignore[call-overload]  # fmt: skip


@pytest.fixture
def edge():
    """`pktchar serve` on a free loopback port; stopped afterwards, and checked to be gone."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pktchar", "serve", "--port", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while True:  # listening once a connection is accepted
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.stderr else ""
            )
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=10)
    assert proc.returncode is not None and not Path(f"/proc/{proc.pid}").exists()


def _listed(stderr: str) -> list[Path]:
    # "pktchar: wrote PATH (SIZE)": every file is named with its size
    return [Path(x.split("wrote ", 1)[1].rsplit(" (", 1)[0]) for x in stderr.splitlines()
            if x.startswith("pktchar: wrote ")]  # fmt: skip


def _row(stdout: str, name: str) -> tuple[float, float, float]:
    """measured (ms), predicted (ms) and error (%) of one summary row of the terminal table."""
    m = re.search(rf"\b{name}\b\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│\s*([+-][\d.]+)%", stdout)
    assert m, stdout
    return float(m[1]), float(m[2]), float(m[3])


def test_replay_to_judges_frames_at_the_path_rate(tmp_path, edge):
    pcap = tmp_path / "lo.pcap"
    pcap.write_bytes(b"not this run's")  # a capture of the same name from an earlier run
    r = _pktchar("replay", "resnet18", "--split", "avgpool", "--frames", "4", "--to", f"127.0.0.1:{edge}",
                 "--link", "100mbit", "--pcap", str(pcap))  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = r.stdout

    # the calibration says what the path carried, not an error against a 100 Mbit/s model nothing enforces
    text = " ".join(out.split())  # the lines as said (the terminal wraps them at 200 columns)
    cal_line = text[text.index("calibration:") : text.index("frames:")]
    assert "the path carried" in cal_line and "the link rate given, 100 Mbit/s, not enforced" in cal_line
    assert "model" not in cal_line and "%" not in cal_line

    # every file listed exists and belongs to this run: no capture was made, so no pcap is listed
    listed = _listed(r.stderr)
    assert listed and all(p.exists() for p in listed) and all(p.suffix != ".pcap" for p in listed)
    assert "compare again" not in r.stderr
    d = json.loads((tmp_path / "lo.result.json").read_text())
    assert set(d["files"]) == {"prediction", "result"} and all(Path(p).exists() for p in d["files"].values())
    assert {Path(p) for p in d["files"].values()} == set(listed)

    # the path rate by hand from the calibration's raw figures: its bulk frame (payload + header) over the
    # time from its send to the answer back here, less the round trip of an empty frame
    c = d["calibration"]
    rtt = c["rtt_s"]
    assert 0 < rtt < c["seconds"] / 2
    rate = (c["bytes"] + HEADER) * 8 / (c["seconds"] - rtt)
    predicted = rtt + (PAYLOAD + HEADER) * 8 / rate
    assert rate > 2 * 100e6  # loopback carries far more than the --link it was given

    # each frame: send -> the edge's answer back here, from the raw timestamps
    assert [f["len"] for f in d["frames"]] == [PAYLOAD] * 4
    measured = [(f["answer_ns"] - f["send_ns"]) / 1e9 for f in d["frames"]]
    a = d["application"]
    assert a["basis"] == "calibrated" and a["link_enforced"] is False
    assert [f["predicted_s"] for f in a["frames"]] == pytest.approx([predicted] * 4, rel=1e-9)
    assert [f["measured_s"] for f in a["frames"]] == pytest.approx(measured, rel=1e-9)

    # the terminal shows mean, p50 and max, measured against predicted, with the error between them
    for name, value in (("mean", statistics.fmean(measured)), ("p50", statistics.median(measured)),
                        ("max", max(measured))):  # fmt: skip
        shown_m, shown_p, shown_err = _row(out, name)
        assert shown_m == pytest.approx(value * 1000, rel=1e-3)
        assert shown_p == pytest.approx(predicted * 1000, rel=1e-3)
        assert shown_err == pytest.approx((value / predicted - 1) * 100, abs=0.01)
    assert "predicted as the round trip" in text and "the goodput the path carried in calibration" in text
    # the capture of the same name is not this run's, and is left alone
    assert pcap.read_bytes() == b"not this run's" and any("is from another run" in n for n in d["notes"])


def test_replay_to_without_calibration_judges_at_link_and_says_nothing_enforces_it(tmp_path, edge):
    r = _pktchar("replay", "resnet18", "--split", "avgpool", "--frames", "3", "--to", f"127.0.0.1:{edge}",
                 "--link", "100mbit", "--no-calibrate", "--pcap", str(tmp_path / "nc.pcap"), "--format", "json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    a = d["application"]
    assert d["calibration"] is None and a["basis"] == "link" and a["rtt_s"] == 0
    # 2,048 B + 24 B header at 100 Mbit/s: 2,072 x 8 / 1e8 = 165.76 us, no round trip known
    assert [f["predicted_s"] for f in a["frames"]] == pytest.approx([165.76e-6] * 3, rel=1e-9)
    assert "pcap" not in d["files"] and all(Path(p).exists() for p in d["files"].values())
    assert all(p.exists() and p.suffix != ".pcap" for p in _listed(r.stderr))
    t = _pktchar("replay", "resnet18", "--split", "avgpool", "--frames", "2", "--to", f"127.0.0.1:{edge}",
                 "--link", "100mbit", "--no-calibrate", "--pcap", str(tmp_path / "nc2.pcap"))  # fmt: skip
    assert t.returncode == 0, t.stderr
    assert "the link rate given (100 Mbit/s), which nothing on this path enforces" in " ".join(
        t.stdout.split()
    )
    assert "calibration:" not in t.stdout and "measured (ms)" in t.stdout


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
