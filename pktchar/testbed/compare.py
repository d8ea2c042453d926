"""Measured against predicted: packets, sizes, wire bytes, goodput and per-frame transfer times.

The prediction is a JSON document (``replay`` writes one beside its pcap):
the flow's addresses and port, transport, shaped rate and tbf bucket, and for
every frame its payload and the packets :func:`pktchar.packets.packetize`
predicts. Frames are found in the capture by the byte offsets of the data
direction (each application frame is ``app_header + payload`` bytes), so a
retransmitted segment shows as one (counted apart, never as data twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PktcharError
from ..packets import FRAGMENT_HEADER, Transport, packetize
from .pcap import PLEN_LABELS, Packet, plen_bucket, read

PREDICTION_KIND = "pktchar-prediction"


@dataclass(frozen=True)
class Row:
    metric: str
    predicted: float
    measured: float
    unit: str = ""

    @property
    def error(self) -> float | None:
        if self.predicted == 0:
            return None if self.measured == 0 else float("inf")
        return (self.measured - self.predicted) / self.predicted


@dataclass
class FrameResult:
    id: int
    payload: int
    packets: int
    predicted_packets: int
    frame_bytes: int
    predicted_frame_bytes: int
    capture_span_s: float | None
    predicted_span_s: float | None
    transfer_s: float | None = None  # application: send -> last byte at the edge
    predicted_transfer_s: float | None = None


@dataclass
class Comparison:
    pcap: str
    flow: str
    rows: list[Row]
    histogram: list[tuple[str, int, int]]  # (plen bucket, predicted, measured)
    frames: list[FrameResult]
    reverse_packets: int
    retransmissions: int
    other_packets: int
    notes: list[str] = field(default_factory=list)

    def row(self, metric: str) -> Row:
        for r in self.rows:
            if r.metric == metric:
                return r
        raise KeyError(metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pcap": self.pcap,
            "flow": self.flow,
            "rows": [
                {
                    "metric": r.metric,
                    "predicted": r.predicted,
                    "measured": r.measured,
                    "unit": r.unit,
                    "relative_error": r.error,
                }
                for r in self.rows
            ],
            "plen_histogram": [{"bucket": b, "predicted": p, "measured": m} for b, p, m in self.histogram],
            "frames": [f.__dict__ for f in self.frames],
            "reverse_packets": self.reverse_packets,
            "retransmissions": self.retransmissions,
            "other_packets": self.other_packets,
            "notes": self.notes,
        }


def load_prediction(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise PktcharError(f"prediction {p} does not exist") from e
    except json.JSONDecodeError as e:
        raise PktcharError(f"prediction {p} is not JSON: {e.msg} at line {e.lineno}") from e
    if d.get("kind") != PREDICTION_KIND:
        raise PktcharError(f"{p} is not a pktchar prediction (written by `pktchar replay`)")
    return d


def compare(
    pcap: str | Path,
    prediction: dict[str, Any] | None = None,
    app_results: list[dict[str, Any]] | None = None,
) -> Comparison:
    """Analyse ``pcap``; with a prediction, set every figure beside its predicted value."""
    pkts = read(pcap)  # a PcapError says where a file is truncated or malformed
    if not pkts:
        raise PktcharError(f"{pcap}: the capture holds no packets")
    if prediction is None:
        prediction = _infer(pkts)
    proto = prediction["proto"]
    port = int(prediction["port"])
    dev, edge = prediction["device_ip"], prediction["edge_ip"]
    data = [p for p in pkts if p.proto == proto and p.dport == port and p.src == dev and p.dst == edge]
    back = [p for p in pkts if p.proto == proto and p.sport == port and p.src == edge and p.dst == dev]
    if not data:
        flows = sorted(
            {f"{p.proto} {p.src}:{p.sport} -> {p.dst}:{p.dport}" for p in pkts if p.proto in ("tcp", "udp")}
        )
        raise PktcharError(
            f"{pcap}: no pktchar traffic in the capture (expected {proto} {dev} -> {edge}:{port}; found "
            f"{', '.join(flows[:3]) or 'no TCP/UDP flows'}{' ...' if len(flows) > 3 else ''})"
        )
    other = len(pkts) - len(data) - len(back)
    t = Transport(
        proto,
        int(prediction["mtu"]),
        int(prediction.get("ip_version", 4)),
        app_header=int(prediction.get("app_header", 24)),
    )
    frames_pred = prediction["frames"]
    rate = float(prediction["rate_bps"])

    carrying = [p for p in data if p.payload > 0]
    retrans = 0
    if proto == "tcp":
        seen: set[int] = set()
        uniq = []
        for p in carrying:
            if p.seq in seen:
                retrans += 1
                continue
            seen.add(p.seq)
            uniq.append(p)
        carrying = uniq
    frames = _split_frames(carrying, frames_pred, t, rate, proto)
    if app_results:
        by_id = {r["id"]: r for r in app_results if "id" in r}
        for f in frames:
            r = by_id.get(f.id)
            if r is not None:
                f.transfer_s = (r["done_ns"] - r["send_ns"]) / 1e9
                f.predicted_transfer_s = _predicted_transfer(
                    f.predicted_frame_bytes, t, rate, int(prediction.get("burst_bytes", 0))
                )
    pred_packets = sum(f["packets"] for f in frames_pred)
    pred_bytes = sum(f["frame_bytes"] for f in frames_pred)
    meas_bytes = sum(p.frame_len for p in carrying)
    rows = [
        Row("frames", len(frames_pred), sum(1 for f in frames if f.packets), ""),
        Row("packets (data direction)", pred_packets, len(carrying), ""),
        Row("bytes on the wire (data direction, Ethernet frames)", pred_bytes, meas_bytes, "B"),
        Row(
            "payload bytes",
            sum(f["payload"] for f in frames_pred),
            sum(p.payload for p in carrying)
            - (FRAGMENT_HEADER * len(carrying) if proto == "udp" else 0)
            - t.app_header * len(frames_pred),
            "B",
        ),
    ]
    spans = [f for f in frames if f.capture_span_s and f.packets > 2]
    if spans:
        moved = sum(_span_bytes(f, t) for f in spans)
        busy = sum(f.capture_span_s or 0 for f in spans)
        model = sum(f.predicted_span_s or 0 for f in spans)  # packetization model at the shaped rate
        rows.append(Row("goodput while sending (capture)", moved * 8 / model, moved * 8 / busy, "bit/s"))
    big = [f for f in frames if f.transfer_s is not None and f.payload >= 100_000]
    if big:
        rows.append(
            Row(
                "transfer time a frame, frames >= 100 kB (mean)",
                sum(f.predicted_transfer_s or 0 for f in big) / len(big),
                sum(f.transfer_s or 0 for f in big) / len(big),
                "s",
            )
        )
    hist_p = [0] * len(PLEN_LABELS)
    for f in frames_pred:
        for size, n in f["sizes"]:
            hist_p[plen_bucket(size + 14)] += n
    hist_m = [0] * len(PLEN_LABELS)
    for p in carrying:
        hist_m[plen_bucket(p.frame_len)] += 1
    histogram = [
        (PLEN_LABELS[i], hist_p[i], hist_m[i]) for i in range(len(PLEN_LABELS)) if hist_p[i] or hist_m[i]
    ]
    notes = []
    if retrans:
        notes.append(f"{retrans} retransmitted segments (not counted as data)")
    return Comparison(
        str(pcap),
        f"{proto} {dev} -> {edge}:{port}",
        rows,
        histogram,
        frames,
        len(back),
        retrans,
        other,
        notes,
    )


def _span_bytes(f: FrameResult, t: Transport) -> float:
    """Application bytes that arrived after the frame's first packet (what the span times)."""
    return (f.payload + t.app_header) - min(t.max_chunk, f.payload + t.app_header)


def _predicted_transfer(frame_bytes: int, t: Transport, rate: float, bucket: int) -> float:
    """tbf sends the first packet on the bucket's tokens, every later byte at the rate."""
    first = min(bucket, t.mtu + 14)
    return max(0, frame_bytes - first) * 8 / rate


def _split_frames(
    carrying: list[Packet], frames_pred: list[dict[str, Any]], t: Transport, rate: float, proto: str
) -> list[FrameResult]:
    out = []
    i = 0
    for fp in frames_pred:
        need = fp["payload"] + t.app_header
        got = 0
        pk: list[Packet] = []
        while i < len(carrying) and got < need:
            p = carrying[i]
            got += p.payload - (FRAGMENT_HEADER if proto == "udp" else 0)
            pk.append(p)
            i += 1
        span = (pk[-1].ts - pk[0].ts) if len(pk) > 1 else None
        pred_span = (fp["frame_bytes"] - (fp["sizes"][0][0] + 14)) * 8 / rate if fp["packets"] > 1 else None
        out.append(
            FrameResult(
                fp["id"],
                fp["payload"],
                len(pk),
                fp["packets"],
                sum(p.frame_len for p in pk),
                fp["frame_bytes"],
                span,
                pred_span,
            )
        )
    return out


def _infer(pkts: list[Packet]) -> dict[str, Any]:
    """No prediction given: take the busiest TCP/UDP direction and analyse it as one frame stream."""
    flows: dict[tuple[str, str, str, int], int] = {}
    for p in pkts:
        if p.proto in ("tcp", "udp") and p.payload:
            k = (p.proto, p.src, p.dst, p.dport)
            flows[k] = flows.get(k, 0) + p.frame_len
    if not flows:
        raise PktcharError("the capture holds no TCP or UDP data")
    proto, src, dst, port = max(flows, key=lambda k: flows[k])
    data = [p for p in pkts if (p.proto, p.src, p.dst, p.dport) == (proto, src, dst, port) and p.payload]
    mtu = max(p.ip_len for p in data)
    payload = sum(p.payload for p in data)
    t = Transport(proto, mtu, app_header=0)
    pk = packetize(payload, t)
    span = data[-1].ts - data[0].ts
    return {
        "kind": PREDICTION_KIND,
        "proto": proto,
        "port": port,
        "device_ip": src,
        "edge_ip": dst,
        "mtu": mtu,
        "app_header": 0,
        "rate_bps": (sum(p.frame_len for p in data[1:]) * 8 / span) if span > 0 else 1e9,
        "frames": [
            {
                "id": 0,
                "payload": payload,
                "packets": pk.count,
                "sizes": [list(s) for s in pk.sizes],
                "frame_bytes": pk.frame_bytes,
            }
        ],
        "inferred": True,
    }
