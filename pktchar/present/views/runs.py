"""Testbed runs and captures: measured against predicted, the run's lines, the files written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..render import Column, Table
from .base import Output

if TYPE_CHECKING:
    from ...testbed.capture import CaptureStats
    from ...testbed.compare import Comparison
    from ...testbed.schema import Calibration, Result


def comparison_table(c: Comparison) -> Table:
    cols = (
        Column("metric", "quantity", "text"),
        Column("predicted", "predicted", "float"),
        Column("measured", "measured", "float"),
        Column("unit", "unit", "text"),
        Column("error", "relative error", "ratio", digits=3),
    )
    rows = [
        {
            "metric": r.metric,
            "predicted": r.predicted,
            "measured": r.measured,
            "unit": r.unit,
            "error": r.error,
        }
        for r in c.rows
    ]
    return Table(
        f"Measured against predicted: {c.flow}",
        cols,
        rows,
        caption=f"capture: {c.pcap}",
        notes=tuple(c.notes),
    )


def histogram_table(c: Comparison) -> Table:
    cols = (
        Column("bucket", "frame length (B)", "text"),
        Column("predicted", "predicted", "int"),
        Column("measured", "measured", "int"),
    )
    rows = [{"bucket": b, "predicted": p, "measured": m} for b, p, m in c.histogram]
    return Table("Packet lengths, data direction (tshark plen buckets)", cols, rows)


def frames_table(c: Comparison) -> Table:
    cols = (
        Column("id", "frame", "int"),
        Column("payload", "payload", "int"),
        Column("packets", "packets", "int"),
        Column("predicted_packets", "predicted", "int"),
        Column("frame_bytes", "frame bytes", "int"),
        Column("transfer_ms", "transfer (ms)", "float"),
        Column("predicted_ms", "predicted (ms)", "float"),
        Column("error", "error", "ratio", digits=2),
    )
    rows = []
    for f in c.frames:
        rows.append(
            {
                "id": f.id,
                "payload": f.payload,
                "packets": f.packets,
                "predicted_packets": f.predicted_packets,
                "frame_bytes": f.frame_bytes,
                "transfer_ms": None if f.transfer_s is None else f.transfer_s * 1000,
                "predicted_ms": None if f.predicted_transfer_s is None else f.predicted_transfer_s * 1000,
                "error": f.transfer.error,
            }
        )
    return Table("Frames", cols, rows)


def calibration_line(c: Calibration) -> str:
    from ...core.units import human_duration, human_rate

    return (
        f"calibration: {c.bytes:,} B in {human_duration(c.seconds)}: link {human_rate(c.link_rate_measured_bps, 4)} "
        f"(set {human_rate(c.link_rate_set_bps)}), goodput {human_rate(c.goodput_measured_bps, 4)} "
        f"(model {human_rate(c.goodput_predicted_bps, 4)}, {c.goodput_error:+.2%})"
    )


def capture_line(s: CaptureStats, pcap: object) -> str:
    verdict = "complete" if s.complete else "INCOMPLETE"
    line = (
        f"capture ({s.backend}): {s.captured:,} packets captured, {s.interface_packets:,} through the interface, "
        f"{s.dropped_by_kernel} dropped by the kernel -> {verdict}; {pcap}"
    )
    return line + (f" ({s.note})" if not s.complete and s.note else "")


def path_calibration_line(c: Calibration) -> str:
    """The calibration between real hosts: what the path carried; no link model applies (nothing shapes it)."""
    from ...core.units import human_duration, human_rate

    rtt = f", less the {human_duration(c.rtt_s)} round trip of an empty frame" if c.rtt_s else ""
    return (
        f"calibration: {c.bytes:,} B in {human_duration(c.seconds)} (send -> the edge's answer back here{rtt}): "
        f"the path carried {human_rate(c.goodput_measured_bps, 4)} of goodput (nothing shapes it; the link "
        f"rate given, {human_rate(c.link_rate_set_bps)}, not enforced)"
    )


def app_timing_line(r: Result) -> str:
    """What the application table times and the rate its predictions use."""
    from ...core.units import human_duration, human_rate

    a = r.application
    assert a is not None
    rate = human_rate(a.rate_bps, 4)
    what = f"{len(a.frames)} timed from the send call to the edge's answer back here; predicted as"
    if a.basis == "calibrated":
        return (
            f"frames: {what} the round trip ({human_duration(a.rtt_s)}) + (payload + {a.app_header} B header) "
            f"x 8 / the goodput the path carried in calibration ({rate})"
        )
    return (
        f"frames: {what} (payload + {a.app_header} B header) x 8 / the link rate given ({rate}), which "
        "nothing on this path enforces (no calibration, no round trip measured)"
    )


def app_timing_tables(r: Result) -> list[Table]:
    """A remote run's frames at the application: the summary (count, mean, p50, max), then every frame."""
    a = r.application
    if a is None or not a.frames:
        return []
    cols = (
        Column("frame", "frame", "text"),
        Column("payload", "payload", "int"),
        Column("measured_ms", "measured (ms)", "float"),
        Column("predicted_ms", "predicted (ms)", "float"),
        Column("error", "error", "ratio", digits=2),
    )
    summary = [{"frame": k, "measured_ms": v["measured_s"] * 1000,
                "predicted_ms": v["predicted_s"] * 1000, "error": v["error"]}
               for k, v in a.summary().items()]  # fmt: skip
    frames = [{"frame": str(f.id), "payload": f.payload, "measured_ms": f.measured_s * 1000,
               "predicted_ms": f.predicted_s * 1000, "error": f.error}
              for f in a.frames]  # fmt: skip
    what = "send -> the edge's answer back here"
    return [
        Table(
            f"{len(a.frames)} frames at the application ({what})",
            (Column("frame", "of the frames", "text"), *cols[2:]),
            summary,
        ),
        Table(f"Frames at the application ({what})", cols, frames),
    ]


def run_lines(r: Result) -> list[str]:
    """What a run says besides its tables: payloads, calibration, capture, notes."""
    lines = [f"payload: {r.source}"] if r.source else []
    if r.calibration and r.config.get("to"):  # real hosts: no link model applies
        lines.append(path_calibration_line(r.calibration))
    elif r.calibration:
        lines.append(calibration_line(r.calibration))
    if r.application is not None and r.application.frames:
        lines.append(app_timing_line(r))
    if r.capture:
        lines.append(capture_line(r.capture, r.pcap))
    lines += [f"note: {n}" for n in r.notes]
    return lines


def wrote_line(path: Any) -> str:
    """``wrote <file> (<size>)``: every file a command writes is named with its size."""
    from pathlib import Path

    from ...core.units import human_bytes

    p = Path(path)
    return f"wrote {p} ({human_bytes(p.stat().st_size)})" if p.is_file() else f"wrote {p}"


def files_lines(r: Result) -> list[str]:
    """Every file a run wrote (with its size), and how to look at the capture again."""
    written = r.artifacts.written()
    out = [wrote_line(p) for p in written]
    if r.artifacts.pcap in written:
        partial = " (the frames measured before the run stopped)" if r.error else ""
        out.append(f"compare again with: pktchar compare {r.artifacts.pcap}{partial}")
    return out


def folder_lines(folder: Any) -> list[str]:
    """``wrote <file>`` for every file in a report folder."""
    from pathlib import Path

    return [wrote_line(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()]


def run_tables(r: Result) -> list[Table]:
    if r.comparison is None:
        return []
    return [comparison_table(r.comparison), histogram_table(r.comparison)]


def run_extra(r: Result) -> dict[str, object]:
    """The run facts a compare report lists beside its tables."""
    out: dict[str, object] = {"payload": r.source}
    if r.calibration:
        line = path_calibration_line if r.config.get("to") else calibration_line
        out["calibration"] = line(r.calibration).removeprefix("calibration: ")
    if r.capture:
        out["capture"] = capture_line(r.capture, r.pcap).removeprefix("capture: ")
    if r.application is not None and r.application.frames:
        out["application"] = app_timing_line(r).removeprefix("frames: ")
    return out


def compare_output(c: Comparison) -> Output:
    """A capture against its prediction; the terminal gets the summary, files get the frames too."""
    tables = [comparison_table(c), histogram_table(c), frames_table(c)]
    return Output(tables, c.to_dict(), [f"note: {n}" for n in c.notes], per_format={"table": tables[:2]})


def run_output(r: Result) -> Output:
    """A run; between real hosts also its frames at the application (the terminal gets their summary)."""
    app = app_timing_tables(r)
    tables = run_tables(r) + app
    return Output(
        tables, r.to_dict(), run_lines(r), per_format={"table": run_tables(r) + app[:1]} if app else {}
    )
