"""Light commands stay light, and only the command line freezes the collector after importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs the console entry point (pktchar.cli.app:main, as the `pktchar` script does); at exit, reports on
# stderr whether torch was imported and how many objects gc.freeze() moved to the permanent generation.
WRAPPER = r"""
import atexit, gc, sys
atexit.register(lambda: print(f"TORCH={'torch' in sys.modules} FROZEN={gc.get_freeze_count()}", file=sys.stderr))
sys.argv = ["pktchar", *sys.argv[1:]]
from pktchar.cli.app import main
main()
"""


def run_cli(*args: str) -> tuple[int, str, bool, int]:
    p = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, timeout=120)
    last = p.stderr.strip().splitlines()[-1]
    torch_seen, frozen = last.split()
    return p.returncode, p.stdout, torch_seen == "TORCH=True", int(frozen.split("=")[1])


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("qos", "--payload", "270kB", "--latency", "15ms"),
        ("testbed", "clean", "--help"),
        ("compare", "--help"),
    ],
)
def test_light_commands_import_no_torch(args: tuple[str, ...]) -> None:
    rc, _, torch_seen, frozen = run_cli(*args)
    assert rc == 0
    assert not torch_seen
    assert frozen == 0


def test_profile_freezes_after_torch_and_prints_what_the_library_computes() -> None:
    rc, out, torch_seen, frozen = run_cli("profile", "alexnet", "--res", "224", "--format", "json")
    assert rc == 0 and torch_seen
    # importing torch 2.x makes well over 100 000 tracked objects; all of them were frozen
    assert frozen > 100_000
    # the library itself never freezes, and gets the same figures
    code = (
        "import gc, json, sys, pktchar; p = pktchar.profile('alexnet', '224'); "
        "print(json.dumps({'macs': p.macs, 'params': p.params, 'frozen': gc.get_freeze_count()}))"
    )
    lib = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    got, want = json.loads(out), json.loads(lib.stdout)
    assert want["frozen"] == 0
    # torchvision's model docs list AlexNet (Krizhevsky et al. 2012) at 61,100,840 parameters, 0.71 GFLOPS
    assert want["params"] == 61_100_840 and round(want["macs"] / 1e9, 2) == 0.71
    assert got["params"] == want["params"] and got["macs"] == want["macs"]
