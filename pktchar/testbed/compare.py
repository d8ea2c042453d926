"""Measured against predicted: packets, sizes, wire bytes, goodput and per-frame transfer times.

The prediction is a JSON document (``replay`` writes one beside its pcap):
the flow's addresses and port, transport, shaped rate and tbf bucket, and for
every frame its payload and the packets :func:`pktchar.core.packets.packetize`
predicts. Frames are found in the capture by the byte offsets of the data
direction (each application frame is ``app_header + payload`` bytes), so a
retransmitted segment shows as one (counted apart, never as data twice).
Everything runs on the capture's numpy columns: no Python object per packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import shaping
from ..core.errors import PktcharError
from ..core.packets import FRAGMENT_HEADER, Transport, packetize
from .pcap import PLEN_LABELS, TCP, UDP, Columns, addr_key, addr_str, plen_bucket, plen_counts, read_columns
from .scenario import PREDICTION_KIND


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
    packets_analysed: int = 0  # packets read from the capture (all of them, or those before a truncation)
    truncated_at: int | None = None  # partial analysis: the byte where the capture is cut

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
            "packets_analysed": self.packets_analysed,
            "truncated_at": self.truncated_at,
        }


def compare(
    pcap: str | Path,
    prediction: dict[str, Any] | None = None,
    app_results: list[dict[str, Any]] | None = None,
    partial: bool = False,
) -> Comparison:
    """Analyse ``pcap``; with a prediction, set every figure beside its predicted value.

    Works on the capture's numpy columns (:func:`~pktchar.testbed.pcap.read_columns`): boolean masks pick
    the data and back directions, repeated TCP sequence numbers are retransmissions, and frames are
    cut where the cumulative payload reaches each frame's end. ``partial=True`` analyses the packets
    before a truncation (a note says how many) instead of failing."""
    tab = read_columns(pcap, partial=partial)  # a PcapError says where a file is truncated or malformed
    if not len(tab):
        raise PktcharError(f"{pcap}: the capture holds no packets")
    if prediction is None:
        prediction = _infer(tab)
    proto = prediction["proto"]
    pnum = _PROTO_NUM.get(proto, -1)
    port = int(prediction["port"])
    dev, edge = prediction["device_ip"], prediction["edge_ip"]
    is_p = tab.proto == pnum
    dkey, ekey = np.bytes_(_key(dev)), np.bytes_(_key(edge))
    data_m = is_p & (tab.dport == port) & (tab.src == dkey) & (tab.dst == ekey)
    back_m = is_p & (tab.sport == port) & (tab.src == ekey) & (tab.dst == dkey)
    n_data, n_back = int(data_m.sum()), int(back_m.sum())
    if not n_data:
        flows = _flow_names(tab)
        raise PktcharError(
            f"{pcap}: no pktchar traffic in the capture (expected {proto} {dev} -> {edge}:{port}; found "
            f"{', '.join(flows[:3]) or 'no TCP/UDP flows'}{' ...' if len(flows) > 3 else ''})"
        )
    other = len(tab) - n_data - n_back
    t = Transport(
        proto,
        int(prediction["mtu"]),
        int(prediction.get("ip_version", 4)),
        app_header=int(prediction.get("app_header", 24)),
    )
    frames_pred = prediction["frames"]
    rate = float(prediction["rate_bps"])

    idx = np.flatnonzero(data_m & (tab.payload > 0))  # the data direction's carrying packets
    retrans = 0
    if proto == "tcp" and len(idx):
        # unwrap the 32-bit sequence numbers (a long flow wraps), then keep each one's first segment
        step = np.diff(tab.seq[idx].astype(np.int64))
        step = (step + (1 << 31)) % (1 << 32) - (1 << 31)
        seq = np.concatenate([[0], np.cumsum(step)])
        _, first = np.unique(seq, return_index=True)
        retrans = len(idx) - len(first)
        idx = idx[np.sort(first)]
    ts = tab.ts[idx]
    flen = tab.frame_len[idx]
    pay = tab.payload[idx] - (FRAGMENT_HEADER if proto == "udp" else 0)
    # tbf's bucket on this flow: the prediction's, else (older or hand-written predictions) the one the
    # testbed gives the shaped rate
    bucket = int(prediction.get("burst_bytes", 0)) or shaping.default_bucket(rate, t.mtu)
    frames = _split_frames(ts, flen, pay, frames_pred, t, rate, bucket)
    if app_results:
        # the prediction's own per-frame transfer time (at the calibrated rate when there is one); older
        # predictions carry none: the same tbf model, a full bucket at each frame's start
        cal = prediction.get("calibrated_rate_bps")
        transfer_by_id = {
            fp["id"]: fp.get("transfer_s_calibrated") if cal and fp.get("transfer_s_calibrated") is not None
            else fp.get("transfer_s") or shaping.transfer_time(shaping.frame_lengths(fp["sizes"]), cal or rate, bucket)
            for fp in frames_pred
        }  # fmt: skip
        by_id = {r["id"]: r for r in app_results if "id" in r}
        for f in frames:
            r = by_id.get(f.id)
            if r is not None:
                f.transfer_s = (r["done_ns"] - r["send_ns"]) / 1e9
                f.predicted_transfer_s = transfer_by_id[f.id]
    pred_packets = sum(f["packets"] for f in frames_pred)
    pred_bytes = sum(f["frame_bytes"] for f in frames_pred)
    rows = [
        Row("frames", len(frames_pred), sum(1 for f in frames if f.packets), ""),
        Row("packets (data direction)", pred_packets, len(idx), ""),
        Row("bytes on the wire (data direction, Ethernet frames)", pred_bytes, int(flen.sum()), "B"),
        Row(
            "payload bytes",
            sum(f["payload"] for f in frames_pred),
            int(pay.sum()) - t.app_header * len(frames_pred),
            "B",
        ),
    ]
    spans = [f for f in frames if f.capture_span_s and f.packets > 2]
    if spans:
        moved = sum(_span_bytes(f, t) for f in spans)
        busy = sum(f.capture_span_s or 0 for f in spans)
        model = sum(f.predicted_span_s or 0 for f in spans)  # packetization model at the shaped rate
        if model > 0 and busy > 0:  # a frame the bucket sends whole has no modelled span to time
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
    hist_m = [int(x) for x in plen_counts(flen)]
    histogram = [
        (PLEN_LABELS[i], hist_p[i], hist_m[i]) for i in range(len(PLEN_LABELS)) if hist_p[i] or hist_m[i]
    ]
    notes = []
    if tab.truncated_at is not None:
        notes.append(f"analysed the {len(tab)} packets before the truncation at byte {tab.truncated_at}")
    if retrans:
        notes.append(f"{retrans} retransmitted segments (not counted as data)")
    return Comparison(
        str(pcap),
        f"{proto} {dev} -> {edge}:{port}",
        rows,
        histogram,
        frames,
        n_back,
        retrans,
        other,
        notes,
        packets_analysed=len(tab),
        truncated_at=tab.truncated_at,
    )


_PROTO_NUM = {"tcp": TCP, "udp": UDP}
_PROTO_NAME = {TCP: "tcp", UDP: "udp"}


def _key(ip: str) -> bytes:
    try:
        return addr_key(ip)
    except ValueError as e:
        raise PktcharError(f"the prediction's address {ip!r} is not an IP address") from e


def _flow_names(tab: Columns) -> list[str]:
    """The capture's TCP/UDP flows as "proto src:sport -> dst:dport", sorted."""
    m = tab.proto > 0
    if not m.any():
        return []
    rec = np.zeros(int(m.sum()), [("p", "u1"), ("s", "S16"), ("sp", "i8"), ("d", "S16"), ("dp", "i8")])
    rec["p"], rec["s"], rec["sp"], rec["d"], rec["dp"] = (
        tab.proto[m],
        tab.src[m],
        tab.sport[m],
        tab.dst[m],
        tab.dport[m],
    )
    return sorted(
        f"{_PROTO_NAME[int(r['p'])]} {addr_str(r['s'])}:{r['sp']} -> {addr_str(r['d'])}:{r['dp']}"
        for r in np.unique(rec)
    )


def _span_bytes(f: FrameResult, t: Transport) -> float:
    """Application bytes that arrived after the frame's first packet (what the span times)."""
    return (f.payload + t.app_header) - min(t.max_chunk, f.payload + t.app_header)


def _split_frames(
    ts: np.ndarray,
    flen: np.ndarray,
    pay: np.ndarray,
    frames_pred: list[dict[str, Any]],
    t: Transport,
    rate: float,
    bucket: int,
) -> list[FrameResult]:
    """Frame i ends with the first packet whose cumulative application bytes reach the end of frame i
    (frames are ``app_header + payload`` bytes back to back); a packet carrying the end of one frame and
    the start of the next counts for the first. The modelled span of each frame is tbf's, with the bucket
    refilled only over the idle gap the capture shows before the frame (``shaping.sequence``): a frame
    that follows its predecessor within bucket x 8 / rate starts on part of a bucket."""
    need = np.cumsum([fp["payload"] + t.app_header for fp in frames_pred], dtype=np.int64)
    got = np.cumsum(pay)
    ends = np.minimum(np.searchsorted(got, need, side="left") + 1, len(pay))  # one past each frame's last
    starts = np.concatenate([[0], ends[:-1]])
    cum_len = np.concatenate([[0], np.cumsum(flen)])
    gaps: list[float | None] = [None]
    for k in range(1, len(frames_pred)):
        a, prev = int(starts[k]), int(ends[k - 1]) - 1
        gaps.append(float(ts[a] - ts[prev]) if 0 <= prev < a < len(ts) else None)
    model = shaping.sequence([shaping.frame_lengths(fp["sizes"]) for fp in frames_pred], rate, bucket, gaps)
    out = []
    for fp, a, b, m in zip(frames_pred, starts.tolist(), ends.tolist(), model, strict=True):
        count = max(0, b - a)
        span = float(ts[b - 1] - ts[a]) if count > 1 else None
        pred_span = m.span if fp["packets"] > 1 else None
        out.append(
            FrameResult(
                fp["id"],
                fp["payload"],
                count,
                fp["packets"],
                int(cum_len[b] - cum_len[a]) if count else 0,
                fp["frame_bytes"],
                span,
                pred_span,
            )
        )
    return out


def _infer(tab: Columns) -> dict[str, Any]:
    """No prediction given: take the busiest TCP/UDP direction and analyse it as one frame stream."""
    m = (tab.proto > 0) & (tab.payload > 0)
    if not m.any():
        raise PktcharError("the capture holds no TCP or UDP data")
    rec = np.zeros(int(m.sum()), [("p", "u1"), ("s", "S16"), ("d", "S16"), ("dp", "i8")])
    rec["p"], rec["s"], rec["d"], rec["dp"] = tab.proto[m], tab.src[m], tab.dst[m], tab.dport[m]
    keys, first, inv = np.unique(rec, return_index=True, return_inverse=True)
    inv = inv.ravel()
    volume = np.bincount(inv, weights=tab.frame_len[m], minlength=len(keys))
    best = int(np.lexsort((first, -volume))[0])  # the most bytes; ties: the flow seen first
    k = keys[best]
    rows = np.flatnonzero(m)[inv == best]
    proto = _PROTO_NAME[int(k["p"])]
    mtu = int(tab.ip_len[rows].max())
    payload = int(tab.payload[rows].sum())
    t = Transport(proto, mtu, app_header=0)
    pk = packetize(payload, t)
    span = float(tab.ts[rows[-1]] - tab.ts[rows[0]])
    return {
        "kind": PREDICTION_KIND,
        "proto": proto,
        "port": int(k["dp"]),
        "device_ip": addr_str(k["s"]),
        "edge_ip": addr_str(k["d"]),
        "mtu": mtu,
        "app_header": 0,
        "rate_bps": (int(tab.frame_len[rows[1:]].sum()) * 8 / span) if span > 0 else 1e9,
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
