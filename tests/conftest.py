"""Shared test settings: root/netns tests skip on a laptop, but must run under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _root_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, tc, tcpdump)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip`"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = _root_missing()
    if why is None or IN_CI:  # CI machines are root: under CI=true these run (and fail if they must)
        return
    for item in items:
        if "root" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=why))


def run_cli(*args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed ``pktchar`` console script as a user would."""
    exe = Path(sys.executable).with_name("pktchar")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pktchar.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, check=check, timeout=timeout)
