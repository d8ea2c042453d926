"""Network-namespace topologies: endpoints joined by veth pairs (a bridge for more than two).

Every run gets a unique id; its namespaces are ``pktc-<id>-<endpoint>`` and a state
file ``/run/pktchar/<id>.json`` records the owning PID. Everything a run makes is
removed by :meth:`Topology.close` (also on Ctrl-C and SIGTERM via the context
manager), and :func:`clean_stale` removes what a crashed run left (its owner
PID is gone). Links are shaped on egress of each side with tbf (uplink and
downlink separately); netem adds delay/loss only where the kernel has it.
TSO/GSO/GRO are turned off so the wire shows MTU-sized packets.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import PktcharError
from ..core.shaping import default_bucket

PREFIX = "pktc"
STATE_DIR = Path(os.environ.get("PKTCHAR_STATE_DIR", "/run/pktchar"))
SUBNET = "10.213"  # addresses exist only inside the namespaces a run creates
RUN_TAG_ENV = "PKTCHAR_RUN_TAG"  # optional hex prefix of run ids: lets a test find exactly what it made
MIN_RATE = 8e3
MAX_RATE = 40e9


class TestbedError(PktcharError):
    pass


def run(cmd: Sequence[str], *, check: bool = True, ns: str | None = None, timeout: float = 30) -> str:
    """Run a command (in namespace ``ns``); raise a one-line TestbedError on failure."""
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    try:
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise TestbedError(
            f"{full[0]} is not installed (scripts/setup.sh installs iproute2, tcpdump, ethtool)"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise TestbedError(f"{' '.join(full)} timed out after {timeout:g} s") from e
    if check and r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise TestbedError(f"{' '.join(full)} failed: {msg[-1] if msg else f'exit {r.returncode}'}")
    return r.stdout


def require_root() -> None:
    """Say exactly what is missing when the testbed cannot run here."""
    missing = [t for t in ("ip", "tc", "tcpdump", "ethtool") if shutil.which(t) is None]
    if missing:
        raise TestbedError(
            f"the testbed needs {', '.join(missing)} (Debian: iproute2, tcpdump, ethtool; scripts/setup.sh installs them)"
        )
    if os.geteuid() != 0:
        raise TestbedError(
            "the testbed needs root (CAP_NET_ADMIN and CAP_NET_RAW) to create network namespaces, shape links "
            "with tc and capture with tcpdump: run it as root (e.g. sudo .venv/bin/pktchar replay ...)"
        )


def has_netem() -> bool:
    """Whether this kernel has the netem qdisc (delay, jitter, loss)."""
    probe = f"{PREFIX}probe{secrets.token_hex(2)}"
    try:
        run(["ip", "link", "add", probe, "type", "dummy"])
    except TestbedError:
        return False
    try:
        r = subprocess.run(
            ["tc", "qdisc", "add", "dev", probe, "root", "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return r.returncode == 0
    finally:
        run(["ip", "link", "del", probe], check=False)


def new_run_id() -> str:
    """A fresh run id: ``$PKTCHAR_RUN_TAG`` (up to 4 hex digits) and random hex, 8 characters at most,
    so interface names (``pk<id>e<k>``) stay within Linux's 15."""
    tag = os.environ.get(RUN_TAG_ENV, "")
    if len(tag) > 4 or any(c not in "0123456789abcdef" for c in tag):
        raise TestbedError(f"{RUN_TAG_ENV} must be up to 4 lower-case hex digits, got {tag!r}")
    return tag + secrets.token_hex(3)[: 8 - len(tag) if tag else 6]


def list_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX + "-")]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace(ns: str) -> None:
    pids = run(["ip", "netns", "pids", ns], check=False).split()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for p in pids:
            try:
                os.kill(int(p), sig)
                alive.append(p)
            except (ProcessLookupError, ValueError):
                pass
        if not alive:
            break
        time.sleep(0.2)
        pids = run(["ip", "netns", "pids", ns], check=False).split()
    run(["ip", "netns", "del", ns], check=False)


def clean_stale(everything: bool = False) -> list[str]:
    """Remove namespaces of runs whose owner process is gone (all pktchar ones with ``everything``)."""
    removed: list[str] = []
    live_ids: set[str] = set()
    if STATE_DIR.is_dir():
        for f in STATE_DIR.glob("*.json"):
            try:
                st = json.loads(f.read_text())
                owner = int(st.get("pid", 0))
            except (OSError, ValueError):
                owner = 0
            if not everything and owner and _pid_alive(owner):
                live_ids.add(f.stem)
                continue
            f.unlink(missing_ok=True)
    for ns in list_namespaces():
        run_id = ns.split("-")[1] if ns.count("-") >= 2 else ""
        if run_id in live_ids:
            continue
        _kill_namespace(ns)
        removed.append(ns)
    from .cgroup import clean_stale as clean_cgroups

    removed += clean_cgroups(live_ids if not everything else set())
    return removed


@dataclass
class Endpoint:
    name: str  # "dev0", "edge", ...
    ns: str
    ip: str
    ifname: str  # its veth inside its namespace
    peer: str | None = None  # the other end (in the peer endpoint's or the bridge namespace)


@dataclass
class Link:
    """Shaping of one topology: rates in bit/s for each direction, optional netem delay/loss."""

    uplink: float  # endpoint -> edge (device egress)
    downlink: float | None = None  # edge -> endpoint (None: same as uplink)
    mtu: int = 1500
    delay: float | None = None  # seconds, netem only
    loss: float | None = None  # fraction, netem only
    burst: int | None = None  # tbf bucket in bytes (default: shaping.default_bucket of the rate)
    edge: float | None = None  # bridge -> edge (the link every device shares into the edge; None: uplink)

    def __post_init__(self) -> None:
        for r in (self.uplink, self.downlink, self.edge):
            if r is not None and not (MIN_RATE <= r <= MAX_RATE):
                raise TestbedError(
                    f"link rate {r:g} bit/s is outside what tbf shapes here ({MIN_RATE / 1e3:g} kbit/s to "
                    f"{MAX_RATE / 1e9:g} Gbit/s)"
                )
        if not 68 <= self.mtu <= 65536:
            raise TestbedError(f"MTU must be 68..65536, got {self.mtu}")
        if self.loss is not None and not 0 <= self.loss < 1:
            raise TestbedError(f"loss must be a fraction in [0, 1), got {self.loss}")

    @property
    def bucket(self) -> int:
        """The uplink's tbf bucket (the data direction, device -> edge), bytes."""
        return self.bucket_for(self.uplink)

    def bucket_for(self, rate: float) -> int:
        """tbf bucket of a direction shaped at ``rate``: ``burst`` if set, else 2 full frames up to
        242 Mbit/s and more above (:func:`pktchar.core.shaping.default_bucket`)."""
        return self.burst or default_bucket(rate, self.mtu)


@dataclass
class Topology:
    """Endpoints in their own namespaces, joined directly (two) or through a bridge (more)."""

    endpoints: list[str]
    link: Link
    run_id: str = field(default_factory=new_run_id)
    eps: dict[str, Endpoint] = field(default_factory=dict)
    bridge_ns: str | None = None
    netem: bool = False
    closed: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    uplinks: dict[str, float] = field(
        default_factory=dict
    )  # an endpoint's own egress rate, if not link.uplink
    bridged: bool = False  # a bridge even for two endpoints (the edge link is then the bridge's port)

    def ns_name(self, ep: str) -> str:
        return f"{PREFIX}-{self.run_id}-{ep}"

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Topology:
        self._old_handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
        for s in self._old_handlers:
            signal.signal(s, self._on_signal)
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        for s, h in self._old_handlers.items():
            signal.signal(s, h)

    def _on_signal(self, signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def create(self) -> None:
        require_root()
        if len(self.endpoints) < 2 or len(set(self.endpoints)) != len(self.endpoints):
            raise TestbedError("a topology needs at least two distinct endpoints")
        clean_stale()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / f"{self.run_id}.json").write_text(
            json.dumps({"pid": os.getpid(), "endpoints": self.endpoints, "created": time.time()})
        )
        wants_netem = self.link.delay is not None or self.link.loss is not None
        self.netem = wants_netem and has_netem()
        if wants_netem and not self.netem:
            raise TestbedError("`delay`/`loss` need the netem qdisc, which this kernel does not have")
        for k, ep in enumerate(self.endpoints):
            ns = self.ns_name(ep)
            run(["ip", "netns", "add", ns])
            self.eps[ep] = Endpoint(ep, ns, f"{SUBNET}.0.{k + 1}", f"pk{self.run_id}e{k}")
            run(["ip", "link", "set", "lo", "up"], ns=ns)
            for key in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
                run(["sysctl", "-qw", f"{key}=1"], ns=ns, check=False)
            run(["sysctl", "-qw", "net.ipv4.tcp_slow_start_after_idle=0"], ns=ns, check=False)
        if len(self.endpoints) == 2 and not self.bridged:
            a, b = (self.eps[e] for e in self.endpoints)
            run(
                [
                    "ip",
                    "link",
                    "add",
                    a.ifname,
                    "netns",
                    a.ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    b.ifname,
                    "netns",
                    b.ns,
                ]
            )
            a.peer, b.peer = b.ifname, a.ifname
        else:
            self.bridge_ns = self.ns_name("br")
            run(["ip", "netns", "add", self.bridge_ns])
            run(["ip", "link", "add", "br0", "type", "bridge"], ns=self.bridge_ns)
            run(["ip", "link", "set", "br0", "up"], ns=self.bridge_ns)
            for k, ep in enumerate(self.endpoints):
                e = self.eps[ep]
                e.peer = f"pk{self.run_id}b{k}"
                run(
                    [
                        "ip",
                        "link",
                        "add",
                        e.ifname,
                        "netns",
                        e.ns,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        e.peer,
                        "netns",
                        self.bridge_ns,
                    ]
                )
                run(
                    ["ip", "link", "set", e.peer, "master", "br0", "mtu", str(self.link.mtu), "up"],
                    ns=self.bridge_ns,
                )
                self._offloads_off(self.bridge_ns, e.peer)
        for e in self.eps.values():
            run(["ip", "link", "set", e.ifname, "mtu", str(self.link.mtu)], ns=e.ns)
            run(["ip", "addr", "add", f"{e.ip}/16", "dev", e.ifname], ns=e.ns)
            run(["ip", "link", "set", e.ifname, "up"], ns=e.ns)
            self._offloads_off(e.ns, e.ifname)
        self._shape()

    def _offloads_off(self, ns: str, dev: str) -> None:
        run(
            ["ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"],
            ns=ns,
            check=False,
        )
        self.settings.setdefault("offloads", {})[f"{ns}/{dev}"] = _offload_state(ns, dev)

    def _shape(self) -> None:
        """tbf on the egress of each endpoint (its uplink; the edge's is the downlink), netem where asked."""
        edge = self.endpoints[-1]
        for ep in self.endpoints:
            e = self.eps[ep]
            rate = self.link.uplink if ep != edge else (self.link.downlink or self.link.uplink)
            self._tbf(e.ns, e.ifname, self.uplinks.get(ep, rate))
            if self.bridge_ns and e.peer:  # bridge -> endpoint: the downlink towards devices, uplink to edge
                back = (
                    (self.link.downlink or self.link.uplink)
                    if ep != edge
                    else (self.link.edge or self.link.uplink)
                )
                self._tbf(self.bridge_ns, e.peer, back)

    def _tbf(self, ns: str, dev: str, rate: float) -> None:
        # queue up to ~2 s at the rate (at least 4 MB) so a frame never overflows it; drops would
        # show as retransmissions in the capture
        limit = max(4_000_000, int(rate / 8 * 2))
        parent = ["root"]
        if self.netem:
            netem = ["tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "netem", "limit", "100000"]
            if self.link.delay:
                netem += ["delay", f"{self.link.delay * 1e6:.0f}us"]
            if self.link.loss:
                netem += ["loss", f"{self.link.loss * 100:g}%"]
            run(netem, ns=ns)
            parent = ["parent", "1:1"]
        run(
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                *parent,
                "handle",
                "10:",
                "tbf",
                "rate",
                f"{int(rate)}bit",
                "burst",
                str(self.link.bucket_for(rate)),
                "limit",
                str(limit),
            ],
            ns=ns,
        )
        self.settings.setdefault("qdisc", {})[f"{ns}/{dev}"] = run(
            ["tc", "qdisc", "show", "dev", dev], ns=ns
        ).strip()

    def close(self) -> None:
        """Kill every process in the run's namespaces and delete them (veths go with them)."""
        if self.closed:
            return
        self.closed = True
        names = [self.ns_name(ep) for ep in self.endpoints] + ([self.bridge_ns] if self.bridge_ns else [])
        present = set(list_namespaces())
        for ns in names:
            if ns in present:
                _kill_namespace(ns)
        (STATE_DIR / f"{self.run_id}.json").unlink(missing_ok=True)

    # -- helpers -------------------------------------------------------------------------------
    def popen(self, ep: str, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[str]:
        """Start ``cmd`` inside endpoint ``ep``'s namespace."""
        return subprocess.Popen(["ip", "netns", "exec", self.eps[ep].ns, *cmd], text=True, **kw)

    def counters(self, ep: str) -> dict[str, int]:
        e = self.eps[ep]
        out = {}
        for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped"):
            out[k] = int(run(["cat", f"/sys/class/net/{e.ifname}/statistics/{k}"], ns=e.ns).strip())
        return out

    def qdisc_stats(self) -> dict[str, str]:
        out = {}
        for e in self.eps.values():
            out[f"{e.ns}/{e.ifname}"] = run(["tc", "-s", "qdisc", "show", "dev", e.ifname], ns=e.ns).strip()
        return out


def _offload_state(ns: str, dev: str) -> dict[str, str]:
    out = run(["ethtool", "-k", dev], ns=ns, check=False)
    keep = (
        "tcp-segmentation-offload",
        "generic-segmentation-offload",
        "generic-receive-offload",
        "tx-checksumming",
        "rx-checksumming",
    )
    state = {}
    for line in out.splitlines():
        k, _, v = line.strip().partition(":")
        if k in keep:
            state[k] = v.strip()
    return state
