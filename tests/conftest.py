"""Shared test settings: root/netns tests skip on a laptop, but must run under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pktchar.cli.app"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, check=check, timeout=timeout)


def leftovers(tag: str) -> list[str]:
    """What a test's own testbed runs left: namespaces, veths and cgroups named with its run tag, and
    endpoint processes started with it in their environment (other runs on the machine are not ours)."""
    from pktchar.testbed import netns

    out = [ns for ns in netns.list_namespaces() if ns.startswith(f"{netns.PREFIX}-{tag}")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    out += [ln.split(":")[1].strip() for ln in links.splitlines() if f": pk{tag}" in ln]
    for root in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        out += [str(g) for g in root.glob(f"pktc-{tag}*")] if root.is_dir() else []
    procs = subprocess.run(["pgrep", "-f", "pktchar.testbed"], capture_output=True, text=True).stdout
    for p in procs.split():
        try:
            env = Path(f"/proc/{p}/environ").read_bytes()
        except OSError:
            continue
        if f"{netns.RUN_TAG_ENV}={tag}".encode() in env.split(b"\0"):
            out.append(f"pid {p}")
    return out


@pytest.fixture
def nothing_left_behind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Tag every testbed run this test makes (children inherit it), then check none left anything."""
    import secrets

    from pktchar.testbed import netns

    tag = secrets.token_hex(2)
    monkeypatch.setenv(netns.RUN_TAG_ENV, tag)
    yield tag
    assert leftovers(tag) == []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output (review the diff before committing)",
    )
