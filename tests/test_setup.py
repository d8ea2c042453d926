"""scripts/setup.sh waits for a held package-manager lock, says so, and gives up with a clear error.

The lock is a file of the test's own, locked with fcntl(2) as apt and dpkg lock theirs; the wait
comes before any apt-get, so nothing is installed and the machine's package manager is not touched.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parent.parent / "scripts" / "setup.sh"


def run_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SETUP)], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="setup.sh reaches apt only as root (or with sudo)")
def test_waits_for_a_held_lock_then_gives_up(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    with lock.open("w") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)  # held by this test process, as unattended-upgrades would hold it
        t = time.monotonic()
        p = run_setup(
            {
                "PKTCHAR_APT_LOCKS": str(lock),
                "PKTCHAR_APT_LOCK_WAIT": "3",
                "PKTCHAR_APT_EXTRA": "pktchar-no-such-package",
            }
        )
        took = time.monotonic() - t
    lines = p.stderr.strip().splitlines()
    holder = f"{lock} (process {os.getpid()} "
    assert p.returncode == 1
    assert lines[0] == "setup: installing Debian packages: pktchar-no-such-package"
    assert lines[1].startswith(f"setup: waiting for the package manager: {holder}")
    assert lines[1].endswith("0 s so far, at most 3 s")
    assert lines[-1].startswith("setup: error: the package manager's lock is still held after 3 s: " + holder)
    assert "PKTCHAR_APT_LOCK_WAIT" in lines[-1]
    # it waited its bound, then stopped: no apt-get ran after it. bash's SECONDS counts whole seconds, so a
    # 3 s bound ends after 2 to 3 s of real time; 15 s leaves room for a loaded 2-core machine
    assert 2 <= took < 15


def test_a_bad_wait_bound_is_an_error() -> None:
    p = run_setup({"PKTCHAR_APT_LOCK_WAIT": "ten"})
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "setup: error: PKTCHAR_APT_LOCK_WAIT must be a whole number of seconds, got 'ten'"
    )
