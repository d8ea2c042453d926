"""Real hosts in place of namespaces: this machine (the device) and a remote edge running `pktchar serve`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from .netns import Link, TestbedError


class Hosts:
    """Two real hosts in place of namespaces: no shaping, no namespaces; the device's processes run here,
    the edge is ``pktchar serve`` at ``host:port``. Captures (root) run on ``iface`` of this host."""

    remote = True
    netem = False
    bridge_ns = None

    def __init__(
        self, host: str, port: int, iface: str | None, link: Link, devices: tuple[str, ...] = ("dev",)
    ) -> None:
        import socket

        from .netns import Endpoint, new_run_id

        try:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise TestbedError(f"`to` {host}:{port}: cannot resolve {host}: {e.strerror}") from e
        remote_ip = infos[0][4][0]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((remote_ip, port))  # no packet: picks the source address the route uses
            local_ip = probe.getsockname()[0]
        except OSError as e:
            raise TestbedError(f"`to` {host}:{port}: no route to {remote_ip}: {e.strerror}") from e
        finally:
            probe.close()
        self.port, self.link, self.run_id = port, link, new_run_id()
        self.eps = {d: Endpoint(d, "", local_ip, iface or "") for d in devices}
        self.eps["edge"] = Endpoint("edge", "", remote_ip, "")
        self.devices = devices
        self.settings: dict[str, Any] = {"remote": f"{remote_ip}:{port}", "capture_iface": iface}

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def popen(self, ep: str, cmd: list[str], **kw: Any) -> subprocess.Popen[str]:
        if ep not in self.devices:
            raise TestbedError(
                "only the device runs on this host; the edge is `pktchar serve` on the other one"
            )
        return subprocess.Popen(cmd, text=True, **kw)

    def counters(self, ep: str) -> dict[str, int]:
        e = self.eps[ep]
        base = Path(f"/sys/class/net/{e.ifname}/statistics")
        keys = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped")
        out = {k: int((base / k).read_text()) for k in keys}
        if e.ifname == "lo":  # loopback counts every packet twice, sent and received; a capture sees it once
            out.update(rx_packets=0, rx_bytes=0, rx_dropped=0)
        return out

    def qdisc_stats(self) -> dict[str, str]:
        return {}


def check_serving(host: str, port: int) -> None:
    """One line when nothing listens at ``host:port`` (before anything else is done)."""
    import socket

    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise TestbedError(
            f"`to` {host}:{port}: {e.strerror or e} (is `pktchar serve --port {port}` running there?)"
        ) from e
