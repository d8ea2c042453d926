"""Measured against predicted: packets, sizes, wire bytes, goodput and per-frame transfer times.

The prediction is a :class:`~pktchar.testbed.schema.FlowPrediction` (``replay`` writes one beside its
pcap): the flow's addresses and port, transport, shaped rate and tbf bucket, and for
every frame its payload and the packets :func:`pktchar.core.packets.packetize`
predicts. Frames are found in the capture by the byte offsets of the data
direction (each application frame is ``app_header + payload`` bytes), so a
retransmitted segment shows as one (counted apart, never as data twice).
Everything runs on the capture's numpy columns: no Python object per packet.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core import shaping
from ..core.errors import PktcharError
from ..core.packets import FRAGMENT_HEADER, Transport, packetize
from .pcap import PLEN_LABELS, TCP, UDP, Columns, addr_key, addr_str, plen_bucket, plen_counts, read_columns
from .schema import Comparison, FlowPrediction, FramePrediction, FrameResult, FrameTiming, Measure

__all__ = ["Comparison", "FrameResult", "Measure", "compare"]  # the records are the schema's, named here too


def compare(
    pcap: str | Path,
    prediction: FlowPrediction | None = None,
    app_results: Sequence[FrameTiming] | None = None,
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
    flow = prediction if prediction is not None else _infer(tab)
    data_m, n_back = _directions(tab, flow, pcap)
    n_data = int(data_m.sum())
    t = flow.transport
    idx, retrans = _first_transmissions(tab, data_m, flow.proto)
    ts, flen = tab.ts[idx], tab.frame_len[idx]
    pay = tab.payload[idx] - (FRAGMENT_HEADER if flow.proto == "udp" else 0)
    # tbf's bucket on this flow: the prediction's, else (older or hand-written predictions) the one the
    # testbed gives the shaped rate
    bucket = flow.bucket_bytes or shaping.default_bucket(flow.rate_bps, t.mtu)
    frames = _split_frames(ts, flen, pay, flow.frames, t, flow.rate_bps, bucket)
    if app_results:
        _app_transfers(frames, flow, app_results, bucket)
    notes = []
    if tab.truncated_at is not None:
        notes.append(f"analysed the {len(tab)} packets before the truncation at byte {tab.truncated_at}")
    if retrans:
        notes.append(f"{retrans} retransmitted segments (not counted as data)")
    return Comparison(
        str(pcap),
        f"{flow.proto} {flow.src_ip} -> {flow.dst_ip}:{flow.port}",
        _rows(flow, frames, len(idx), flen, pay),
        _histogram(flow.frames, flen),
        frames,
        n_back,
        retrans,
        len(tab) - n_data - n_back,
        notes,
        packets_analysed=len(tab),
        truncated_at=tab.truncated_at,
    )


def _directions(tab: Columns, flow: FlowPrediction, pcap: str | Path) -> tuple[np.ndarray, int]:
    """The data direction's mask (device -> edge:port) and how many packets go back; none forward is an
    error naming the flows the capture does hold."""
    is_p = tab.proto == _PROTO_NUM.get(flow.proto, -1)
    dkey, ekey = np.bytes_(_key(flow.src_ip)), np.bytes_(_key(flow.dst_ip))
    data_m = is_p & (tab.dport == flow.port) & (tab.src == dkey) & (tab.dst == ekey)
    back_m = is_p & (tab.sport == flow.port) & (tab.src == ekey) & (tab.dst == dkey)
    if not data_m.any():
        flows = _flow_names(tab)
        raise PktcharError(
            f"{pcap}: no pktchar traffic in the capture (expected {flow.proto} {flow.src_ip} -> "
            f"{flow.dst_ip}:{flow.port}; found "
            f"{', '.join(flows[:3]) or 'no TCP/UDP flows'}{' ...' if len(flows) > 3 else ''})"
        )
    return data_m, int(back_m.sum())


def _first_transmissions(tab: Columns, data_m: np.ndarray, proto: str) -> tuple[np.ndarray, int]:
    """The data direction's carrying packets, each TCP sequence number's first segment only (the 32-bit
    numbers unwrapped: a long flow wraps), and how many repeats (retransmissions) were left out."""
    idx = np.flatnonzero(data_m & (tab.payload > 0))
    if proto != "tcp" or not len(idx):
        return idx, 0
    step = np.diff(tab.seq[idx].astype(np.int64))
    step = (step + (1 << 31)) % (1 << 32) - (1 << 31)
    seq = np.concatenate([[0], np.cumsum(step)])
    _, first = np.unique(seq, return_index=True)
    return idx[np.sort(first)], len(idx) - len(first)


def _app_transfers(
    frames: list[FrameResult], flow: FlowPrediction, app_results: Sequence[FrameTiming], bucket: int
) -> None:
    """Each frame's application transfer time (send -> last byte at the edge) beside the prediction's own
    (at the calibrated rate when there is one); older predictions carry none: the same tbf model, a full
    bucket at each frame's start."""
    cal = flow.calibrated_rate_bps

    def predicted(fp: FramePrediction) -> float:
        if cal and fp.transfer_s_calibrated is not None:
            return fp.transfer_s_calibrated
        return fp.transfer_s or shaping.transfer_time(
            shaping.frame_lengths(fp.sizes), cal or flow.rate_bps, bucket
        )

    transfer_by_id = {fp.id: predicted(fp) for fp in flow.frames}
    by_id = {r.id: r for r in app_results}
    for f in frames:
        r = by_id.get(f.id)
        if r is not None:
            f.transfer_s = r.transfer_s
            f.predicted_transfer_s = transfer_by_id[f.id]


def _rows(
    flow: FlowPrediction, frames: list[FrameResult], packets: int, flen: np.ndarray, pay: np.ndarray
) -> list[Measure]:
    """The flow's figures, predicted against measured: frames, packets, wire and payload bytes, the goodput
    while sending (frames of more than two packets) and the mean transfer time of frames of 100 kB or more."""
    t, fps = flow.transport, flow.frames
    rows = [
        Measure("frames", len(fps), sum(1 for f in frames if f.packets), "", "frames"),
        Measure("packets (data direction)", sum(f.packets for f in fps), packets, "", "packets"),
        Measure(
            "bytes on the wire (data direction, Ethernet frames)",
            sum(f.frame_bytes for f in fps),
            int(flen.sum()),
            "B",
            "wire_bytes",
        ),
        Measure(
            "payload bytes",
            sum(f.payload for f in fps),
            int(pay.sum()) - t.app_header * len(fps),
            "B",
            "payload_bytes",
        ),
    ]
    return rows + _timing_rows(frames, t)


def _timing_rows(frames: list[FrameResult], t: Transport) -> list[Measure]:
    """The goodput while sending and the transfer time of big frames, where the capture can time them."""
    return [m for m in (_goodput_row(frames, t), _transfer_row(frames)) if m is not None]


def _goodput_row(frames: list[FrameResult], t: Transport) -> Measure | None:
    """The goodput while sending: the bytes after each frame's first packet over the capture's spans (frames
    of more than two packets), against the packetization model at the shaped rate."""
    spans = [f for f in frames if f.capture_span_s and f.packets > 2]
    moved = sum(_span_bytes(f, t) for f in spans)
    busy = sum(f.capture_span_s or 0 for f in spans)
    model = sum(f.predicted_span_s or 0 for f in spans)
    if model > 0 and busy > 0:  # a frame the bucket sends whole has no modelled span to time
        return Measure(
            "goodput while sending (capture)", moved * 8 / model, moved * 8 / busy, "bit/s", "goodput"
        )
    return None


def _transfer_row(frames: list[FrameResult]) -> Measure | None:
    """The mean transfer time of frames of 100 kB or more, when the application timed them."""
    big = [f for f in frames if f.transfer_s is not None and f.payload >= 100_000]
    if not big:
        return None
    return Measure(
        "transfer time a frame, frames >= 100 kB (mean)",
        sum(f.predicted_transfer_s or 0 for f in big) / len(big),
        sum(f.transfer_s or 0 for f in big) / len(big),
        "s",
        "transfer",
    )


def _histogram(fps: Sequence[FramePrediction], flen: np.ndarray) -> list[tuple[str, int, int]]:
    """Packets by tshark's plen bucket, predicted and measured (buckets with neither left out)."""
    hist_p = [0] * len(PLEN_LABELS)
    for f in fps:
        for size, n in f.sizes:
            hist_p[plen_bucket(size + 14)] += n
    hist_m = [int(x) for x in plen_counts(flen)]
    return [(PLEN_LABELS[i], hist_p[i], hist_m[i]) for i in range(len(PLEN_LABELS)) if hist_p[i] or hist_m[i]]


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
    frames_pred: Sequence[FramePrediction],
    t: Transport,
    rate: float,
    bucket: int,
) -> list[FrameResult]:
    """Frame i ends with the first packet whose cumulative application bytes reach the end of frame i
    (frames are ``app_header + payload`` bytes back to back); a packet carrying the end of one frame and
    the start of the next counts for the first. The modelled span of each frame is tbf's, with the bucket
    refilled only over the idle gap the capture shows before the frame (``shaping.sequence``): a frame
    that follows its predecessor within bucket x 8 / rate starts on part of a bucket."""
    need = np.cumsum([fp.payload + t.app_header for fp in frames_pred], dtype=np.int64)
    got = np.cumsum(pay)
    ends = np.minimum(np.searchsorted(got, need, side="left") + 1, len(pay))  # one past each frame's last
    starts = np.concatenate([[0], ends[:-1]])
    cum_len = np.concatenate([[0], np.cumsum(flen)])
    gaps: list[float | None] = [None]
    for k in range(1, len(frames_pred)):
        a, prev = int(starts[k]), int(ends[k - 1]) - 1
        gaps.append(float(ts[a] - ts[prev]) if 0 <= prev < a < len(ts) else None)
    model = shaping.sequence([shaping.frame_lengths(fp.sizes) for fp in frames_pred], rate, bucket, gaps)
    out = []
    for fp, a, b, m in zip(frames_pred, starts.tolist(), ends.tolist(), model, strict=True):
        count = max(0, b - a)
        span = float(ts[b - 1] - ts[a]) if count > 1 else None
        pred_span = m.span if fp.packets > 1 else None
        out.append(
            FrameResult(
                fp.id,
                fp.payload,
                count,
                fp.packets,
                int(cum_len[b] - cum_len[a]) if count else 0,
                fp.frame_bytes,
                span,
                pred_span,
            )
        )
    return out


def _infer(tab: Columns) -> FlowPrediction:
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
    pk = packetize(payload, Transport(proto, mtu, app_header=0))
    span = float(tab.ts[rows[-1]] - tab.ts[rows[0]])
    # no bucket and no transfer times: compare takes the testbed's bucket at this rate, as for an old prediction
    frame = FramePrediction(0, payload, pk.count, pk.sizes, pk.ip_bytes, pk.frame_bytes, pk.wire_bytes, 0.0)
    return FlowPrediction(
        name="inferred",
        proto=proto,
        src_ip=addr_str(k["s"]),
        dst_ip=addr_str(k["d"]),
        port=int(k["dp"]),
        mtu=mtu,
        ip_version=4,
        app_header=0,
        rate_bps=(int(tab.frame_len[rows[1:]].sum()) * 8 / span) if span > 0 else 1e9,
        bucket_bytes=0,
        frames=(frame,),
    )
