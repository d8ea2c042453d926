"""Results as render.Table objects: what every command and report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .render import Column, Table, render, to_rich

if TYPE_CHECKING:  # views stay light: a command that needs no model never imports torch
    from ..core.qos import Requirements
    from ..model.codec import Coding
    from ..model.profiler import Profile, Split
    from ..model.table import Cell, PacketTable
    from ..testbed.capture import CaptureStats
    from ..testbed.compare import Comparison
    from ..testbed.fleetrun import FleetRun
    from ..testbed.schema import Calibration, Result
    from ..testbed.upload import UploadReport


@dataclass
class Output:
    """What a command shows, in every format: tables (terminal, md, csv, tex), lines said beside them,
    and the JSON document. ``per_format`` replaces the tables for one format (e.g. the long CSV)."""

    tables: list[Table]
    data: Any
    lines: list[str] = field(default_factory=list)
    title: str | None = None  # a markdown heading above the lines
    per_format: dict[str, list[Table]] = field(default_factory=dict)

    def text(self, fmt: str) -> str:
        """The output as md, csv, tex or json text."""
        import json

        if fmt == "json":
            return json.dumps(self.data, indent=2, default=str)
        tables = self.per_format.get(fmt, self.tables)
        parts = []
        if fmt == "md" and (self.title or self.lines):
            head = f"## {self.title}\n\n" if self.title else ""
            parts.append(head + "\n".join(f"- {x}" for x in self.lines) + "\n")
        for t in tables:
            body = render(t, fmt)
            parts.append(f"# {t.title}\n{body}" if fmt == "csv" and len(tables) > 1 else body)
        return "\n".join(parts)

    def print(self, console: Any) -> None:
        """The output on a terminal: rich tables in SI units, then the lines."""
        for t in self.per_format.get("table", self.tables):
            console.print(to_rich(t))
        for line in self.lines:
            console.print(line, highlight=False)


LAYER_COLUMNS = (
    Column("index", "#", "int"),
    Column("name", "layer"),
    Column("op", "op"),
    Column("shape", "output shape", "shape"),
    Column("elements", "elements", "int"),
    Column("bytes", "bytes", "bytes"),
    Column("params", "params", "int"),
    Column("macs", "MACs", "count"),
)

SPLIT_COLUMNS = (
    Column("index", "#", "int"),
    Column("after", "split after"),
    Column("shapes", "cut set", "shape"),
    Column("tensors", "tensors", "int"),
    Column("bytes", "payload", "bytes"),
    Column("device_macs", "device MACs", "count"),
    Column("device_params", "device params", "int"),
)


def profile_title(p: Profile) -> str:
    shape = "x".join(str(d) for d in p.input_shape)
    return f"{p.model} at {p.resolution} (input {shape}), {p.dtype}"


def layers_table(p: Profile) -> Table:
    rows = [
        {
            "index": x.index,
            "name": x.name,
            "op": x.op,
            "shape": x.shape,
            "elements": x.elements,
            "bytes": x.bytes,
            "params": x.params,
            "macs": x.macs,
        }
        for x in p.layers
    ]
    return Table(f"Layers of {profile_title(p)}", LAYER_COLUMNS, rows)


def splits_table(p: Profile, coding: Coding | None = None) -> Table:
    rows = [
        {
            "coded": coding.split_bytes(s) if coding is not None else None,
            "index": s.index,
            "after": s.after,
            "shapes": [list(t.shape) for t in s.tensors],
            "tensors": len(s.tensors),
            "bytes": s.bytes,
            "tensor_bytes": s.tensor_bytes,
            "device_macs": s.device_macs,
            "device_params": s.device_params,
        }
        for s in p.splits
    ]
    cols = list(SPLIT_COLUMNS)
    caption = (
        "payload = every tensor produced before the cut and still needed after it ('input' = full offload)"
    )
    if any(s.tensor_bytes != s.bytes for s in p.splits):
        cols.insert(4, Column("tensor_bytes", "values", "bytes"))
        caption += (
            f"; at {p.dtype} the payload is the values plus each floating tensor's scale and zero point (8 B)"
        )
    if coding is not None:
        cols.insert(cols.index(SPLIT_COLUMNS[4]) + 1, Column("coded", "coded", "bytes"))
        caption += f"; coded: {coding.describe()}"
    return Table(f"Split points of {profile_title(p)}", cols, rows, caption=caption)


def summary_lines(p: Profile) -> list[str]:
    from ..core.units import human_bytes, human_count

    lo, hi = p.min_split, p.max_split
    lines = [
        f"model {p.model} ({p.source}), input {'x'.join(map(str, p.input_shape))}, dtype {p.dtype}",
        f"params {p.params:,} ({human_bytes(p.param_bytes)} at {p.dtype}), MACs {p.macs:,} ({human_count(p.macs)})",
        f"{len(p.layers)} layers, {len(p.splits)} split points; payload per split "
        f"{human_bytes(lo.bytes)} (after {lo.after}) ~ {human_bytes(hi.bytes)} (after {hi.after})",
    ]
    lines += [f"note: {n}" for n in p.notes]
    return lines


# ----------------------------------------------------------------------------------------------
# The packet-size table (the Yonsei paper's Table 1)


def _fmt_5qi(qis: list[int]) -> str:
    return ", ".join(map(str, qis)) if qis else "none"


def carried_text(r: Requirements) -> str:
    from ..core.units import human_factor

    if r.carrier is None:
        return ""
    return f"{'yes' if r.carried else 'NO'} ({human_factor(r.carrier_factor or 0.0)})"


def cell_text(c: Cell) -> str:
    from ..core.units import human_bytes, human_rate

    text = f"{human_bytes(c.min_bytes)} ({c.min_split}) ~ {human_bytes(c.max_bytes)} ({c.max_split})"
    lo, hi = c.min_req, c.max_req
    if lo is not None and hi is not None:
        text += f"\nrate {human_rate(lo.rate_payload)} ~ {human_rate(hi.rate_payload)}"
        if lo.carrier is not None:
            text += f"\ncarried: {carried_text(lo)} ~ {carried_text(hi)}"
        text += f"\n5QI: {_fmt_5qi(lo.fitting)} ~ {_fmt_5qi(hi.fitting)}"
    return text


def packet_grid(t: PacketTable) -> Table:
    """Rows resolutions, columns models, as the paper lays it out."""
    cols = [Column("res", "input")] + [Column(m, m) for m in t.models]
    rows = []
    for r in t.resolutions:
        row: dict[str, object] = {"res": _res_label(t, r)}
        for m in t.models:
            row[m] = cell_text(t.cell(m, r))
        rows.append(row)
    budget = _budget(t)
    caption = f"Payload per frame over all split points, min (split) ~ max (split); coding: {t.coding}"
    if budget:
        caption += f"; rate = payload x 8 / budget for {budget} ({t.transport})"
        first = t.cells[0].min_req if t.cells else None
        if first is not None and first.carrier is not None:
            caption += (
                f"; carried by {first.carrier.name} ({first.carrier.source}), factor = its rate / needed"
            )
        caption += "; standardized 5QIs (TS 23.501 Table 5.7.4-1) that fit each end"
    return Table(f"Packet characteristics of image classifiers, this run's coding ({t.coding})", cols, rows,
                 caption=caption)  # fmt: skip


def _res_label(t: PacketTable, r: str) -> str:
    c = t.cell(t.models[0], r)
    return f"{r} ({c.input_shape[2]}x{c.input_shape[3]})"


def _budget(t: PacketTable) -> str:
    from ..core.units import human_duration, human_number

    parts = []
    if t.latency is not None:
        parts.append(f"a {human_duration(t.latency)} latency budget")
    if t.fps is not None:
        parts.append(f"{human_number(t.fps)} frames/s")
    return " and ".join(parts)


LONG_COLUMNS = (
    Column("res", "input"),
    Column("model", "model"),
    Column("min_bytes", "min payload", "bytes"),
    Column("min_split", "min split"),
    Column("max_bytes", "max payload", "bytes"),
    Column("max_split", "max split"),
)
LONG_FLOW_COLUMNS = (
    Column("min_rate_bps", "min rate", "rate"),
    Column("max_rate_bps", "max rate", "rate"),
    Column("min_wire_rate_bps", "min wire rate", "rate"),
    Column("max_wire_rate_bps", "max wire rate", "rate"),
)
LONG_CARRIER_COLUMNS = (
    Column("min_carried", "carried (min)"),
    Column("max_carried", "carried (max)"),
)
LONG_5QI_COLUMNS = (
    Column("min_5qi", "5QI (min)"),
    Column("max_5qi", "5QI (max)"),
)


def packet_long(t: PacketTable) -> Table:
    rows = []
    flows = any(c.min_req is not None for c in t.cells)
    carrier = any(c.min_req is not None and c.min_req.carrier is not None for c in t.cells)
    for c in t.cells:
        d = c.to_dict()
        d["min_5qi"] = _fmt_5qi(d["min_5qi"]) if "min_5qi" in d else ""
        d["max_5qi"] = _fmt_5qi(d["max_5qi"]) if "max_5qi" in d else ""
        if c.min_req is not None and c.max_req is not None:
            d["min_carried"], d["max_carried"] = carried_text(c.min_req), carried_text(c.max_req)
        rows.append(d)
    cols = list(LONG_COLUMNS)
    if flows:
        cols += (
            list(LONG_FLOW_COLUMNS) + (list(LONG_CARRIER_COLUMNS) if carrier else []) + list(LONG_5QI_COLUMNS)
        )
    return Table("Packet characteristics, one row a cell", cols, rows, caption=f"coding: {t.coding}")


def paper_comparison(t: PacketTable) -> Table | None:
    rows = [
        {"res": c.res, "model": c.model, "paper_row": c.paper[0], "comparison": c.comparison()}
        for c in t.cells
        if c.paper is not None
    ]
    if not rows:
        return None
    from ..model.table import PAPER_NAME

    cols = (
        Column("res", "input"),
        Column("model", "model"),
        Column("paper_row", "paper's Table 1 row"),
        Column("comparison", "paper vs exact", "para"),
    )
    return Table(
        f"{PAPER_NAME}, Table 1, against the exact ranges under the paper's own assumptions for each row "
        "(fp32; uncompressed at 224x224, 10% compression at 8K and beyond), not this run's coding",
        cols,
        rows,
    )


def paper_lines(t: PacketTable) -> list[str]:
    """Why the two tables' bytes differ, where they do (both are exact, under different codings)."""
    unlike = t.unlike_paper()
    if not unlike:
        return []
    rows = ", ".join(f"{c.model} at {c.res}" for c in unlike)
    return [
        f"note: the packet table uses this run's coding ({t.coding}); the comparison with the paper uses the "
        f"paper's assumptions for each row, so the two differ for {rows}"
    ]


# ----------------------------------------------------------------------------------------------
# Requirements of one flow


REQ_COLUMNS = (Column("quantity", "quantity"), Column("value", "value"))


def list_text(qis: list[int], none: str = "none") -> str:
    """A list that reads as a list: ``[80]`` -> ``5QI 80``, ``[80, 83]`` -> ``5QIs 80, 83``."""
    if not qis:
        return none
    return f"5QI {qis[0]}" if len(qis) == 1 else "5QIs " + ", ".join(map(str, qis))


def carrier_text(r: Requirements) -> str:
    """``imt2020-user uplink 50 Mbit/s carries 12 Mbit/s: yes (room x4.17)``."""
    from ..core.units import human_factor, human_rate

    c = r.carrier
    if c is None:
        return "no radio or link named (--radio, --link): rate not checked"
    f = r.carrier_factor or 0.0
    verdict = "yes" if r.carried else "NO"
    what = "IP" if c.layer == "ip" else "wire"
    return (
        f"{c.name} ({human_rate(c.rate)}) for {human_rate(r.needed(c.layer))} ({what}): "
        f"{verdict}, {human_factor(f)}"
    )


def nonstandard_text(r: Requirements) -> str:
    from ..core.units import human_bytes, human_duration, human_per, human_rate

    d = r.non_standardized()
    text = (
        f"resource type {d['resource']}, PDB {human_duration(r.latency)}, PER {human_per(r.per)}, "
        f"GFBR {human_rate(float(d['gfbr_bps']))}"  # type: ignore[arg-type]
    )
    if "mdbv" in d:
        text += f", MDBV {human_bytes(r.burst)} ({r.burst:,} B)"
    return text


def requirements_table(r: Requirements, title: str = "Flow requirements") -> Table:
    from ..core.units import human_bytes, human_duration, human_number, human_per, human_rate

    pk = r.packets
    sizes = "; ".join(f"{n:,} x {s:,} B" for s, n in pk.sizes)
    fps = f" (frame interval at {human_number(r.fps)} fps)" if r.fps and r.fps * r.latency > 0.999999 else ""
    rows = [
        ("payload per frame", f"{human_bytes(r.payload)} ({r.payload:,} B), class {r.size_class}"),
        ("packet delay budget (latency)", human_duration(r.latency) + fps),
        (
            "packet error rate",
            f"{human_per(r.per)} (reliability {r.reliability:.6g}; {r.reliability_source})",
        ),
        ("data burst per PDB (IP bytes)", f"{human_bytes(r.burst)} ({r.burst:,} B)"),
        ("resource type it calls for", r.resource),
        ("transport", pk.transport.describe()),
        ("packets per frame", f"{pk.count:,} ({sizes})" + (f"; {pk.acks:,} ACKs back" if pk.acks else "")),
        ("IP / frame / wire bytes", f"{pk.ip_bytes:,} / {pk.frame_bytes:,} / {pk.wire_bytes:,} B"),
        ("overhead on the wire", f"{pk.overhead:.2%}"),
        ("rate, 3GPP form (payload x 8 / latency)", human_rate(r.rate_payload)),
        (
            "rate of IP packets / on the wire within the budget",
            f"{human_rate(r.rate_ip)} / {human_rate(r.rate_wire)}",
        ),
    ]
    if r.avg_rate_payload is not None:
        rows.append(
            (
                "average rate at fps (payload / wire)",
                f"{human_rate(r.avg_rate_payload)} / {human_rate(r.avg_rate_wire or 0)}",
            )
        )
    rows.append(("carried by the radio / link", carrier_text(r)))
    if r.carrier is not None:
        rows.append(("carrier source", r.carrier.source))
    if r.link is not None:
        rows += [
            ("serialization time of one frame", human_duration(r.serialization or 0)),
            ("max frames/s the link carries", human_number(r.max_fps or 0)),
            ("fits the link", "yes" if r.fits_link else "NO"),
        ]
    fit = r.fitting
    fit_text = list_text(fit, f"none of the {len(r.fits)} standardized 5QIs fits")
    if r.carrier is None:
        fit_text += " (on PDB, PER and MDBV; rate not checked: name --radio or --link)"
    rows.append(("standardized 5QIs that fit", fit_text))
    rows.append(("delay-critical GBR 5QIs that fit", list_text(r.fitting_dc_gbr)))
    if not fit:
        rows.append(("a non-standardized 5QI would need", nonstandard_text(r)))
    return Table(title, REQ_COLUMNS, [{"quantity": q, "value": v} for q, v in rows])


def fiveqi_table(r: Requirements) -> Table:
    from ..core.units import human_duration, human_per

    cols = (
        Column("qi", "5QI", "int"),
        Column("resource", "type"),
        Column("pdb", "PDB"),
        Column("per", "PER"),
        Column("mdbv", "MDBV (B)"),
        Column("services", "example services"),
        Column("fits", "fits"),
        Column("failing", "fails on"),
        Column("reason", "why"),
    )
    rows = [
        {
            "qi": f.fiveqi.qi,
            "resource": f.fiveqi.resource,
            "pdb": human_duration(f.fiveqi.pdb_ms / 1000),
            "per": human_per(f.fiveqi.per),
            "mdbv": "" if f.fiveqi.mdbv is None else f"{f.fiveqi.mdbv:,}",
            "services": f.fiveqi.services,
            "fits": "yes" if f.fits else "no",
            "failing": ", ".join(f.failing),
            "reason": f.reason,
        }
        for f in r.fits
    ]
    from ..core.qos import FIVEQI_SOURCE

    caption = (
        FIVEQI_SOURCE + "; a 5QI fits when its PDB, PER, MDBV and the carrier's rate all meet the flow's"
    )
    return Table("Standardized 5QIs against this flow", cols, rows, caption=caption)


# ----------------------------------------------------------------------------------------------
# Testbed: measured against predicted


def comparison_table(c: Comparison) -> Table:
    cols = (
        Column("metric", "quantity"),
        Column("predicted", "predicted", "float"),
        Column("measured", "measured", "float"),
        Column("unit", "unit"),
        Column("error", "relative error"),
    )
    rows = [
        {
            "metric": r.metric,
            "predicted": r.predicted,
            "measured": r.measured,
            "unit": r.unit,
            "error": "" if r.error is None else f"{r.error:+.3%}",
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
        Column("bucket", "frame length (B)"),
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
        Column("error", "error"),
    )
    rows = []
    for f in c.frames:
        err = ""
        if f.transfer_s is not None and f.predicted_transfer_s:
            err = f"{(f.transfer_s - f.predicted_transfer_s) / f.predicted_transfer_s:+.2%}"
        rows.append(
            {
                "id": f.id,
                "payload": f.payload,
                "packets": f.packets,
                "predicted_packets": f.predicted_packets,
                "frame_bytes": f.frame_bytes,
                "transfer_ms": None if f.transfer_s is None else f.transfer_s * 1000,
                "predicted_ms": None if f.predicted_transfer_s is None else f.predicted_transfer_s * 1000,
                "error": err,
            }
        )
    return Table("Frames", cols, rows)


# ----------------------------------------------------------------------------------------------
# Testbed runs (any scenario)


def calibration_line(c: Calibration) -> str:
    from ..core.units import human_duration, human_rate

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
    from ..core.units import human_duration, human_rate

    rtt = f", less the {human_duration(c.rtt_s)} round trip of an empty frame" if c.rtt_s else ""
    return (
        f"calibration: {c.bytes:,} B in {human_duration(c.seconds)} (send -> the edge's answer back here{rtt}): "
        f"the path carried {human_rate(c.goodput_measured_bps, 4)} of goodput (nothing shapes it; --link "
        f"{human_rate(c.link_rate_set_bps)} not enforced)"
    )


def app_timing_line(r: Result) -> str:
    """What the application table times and the rate its predictions use."""
    from ..core.units import human_duration, human_rate

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
        f"frames: {what} (payload + {a.app_header} B header) x 8 / --link {rate} as given, which nothing on this "
        "path enforces (no calibration, no round trip measured)"
    )


def app_timing_tables(r: Result) -> list[Table]:
    """A remote run's frames at the application: the summary (count, mean, p50, max), then every frame."""
    a = r.application
    if a is None or not a.frames:
        return []
    cols = (
        Column("frame", "frame"),
        Column("payload", "payload", "int"),
        Column("measured_ms", "measured (ms)", "float"),
        Column("predicted_ms", "predicted (ms)", "float"),
        Column("error", "error"),
    )
    summary = [{"frame": k, "measured_ms": v["measured_s"] * 1000,
                "predicted_ms": v["predicted_s"] * 1000, "error": _err(v["measured_s"], v["predicted_s"], 2)}
               for k, v in a.summary().items()]  # fmt: skip
    frames = [{"frame": str(f.id), "payload": f.payload, "measured_ms": f.measured_s * 1000,
               "predicted_ms": f.predicted_s * 1000, "error": _err(f.measured_s, f.predicted_s, 2)}
              for f in a.frames]  # fmt: skip
    what = "send -> the edge's answer back here"
    return [
        Table(
            f"{len(a.frames)} frames at the application ({what})",
            (Column("frame", "of the frames"), *cols[2:]),
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

    from ..core.units import human_bytes

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


# ----------------------------------------------------------------------------------------------
# One Output a command


def models_output(rows: list[dict[str, Any]]) -> Output:
    cols = [
        Column("name", "model"),
        Column("params", "params", "int"),
        Column("default_res", "native res", "int"),
        Column("source", "source"),
        Column("description", "description"),
    ]
    return Output([Table(f"{len(rows)} models", cols, rows)], rows)


def profile_output(p: Profile, coding: Coding | None, only: str = "all") -> Output:
    """Layers and/or split points of a profile; ``coding`` adds the coded payload of each split."""
    d = p.to_dict()
    if coding is not None:
        d["coding"] = coding.describe()
        for sd, sp in zip(d["splits"], p.splits, strict=True):
            sd["coded_bytes"] = coding.split_bytes(sp)
    tables = []
    if only in ("all", "layers"):
        tables.append(layers_table(p))
    else:
        d.pop("layers")
    if only in ("all", "splits"):
        tables.append(splits_table(p, coding))
    else:
        d.pop("splits")
    # CSV is one table a file: the layers (``--only splits`` for the split points)
    return Output(tables, d, summary_lines(p), title=profile_title(p), per_format={"csv": tables[:1]})


def flow_output(p: Profile, split: Split, coding: Coding, req: Requirements) -> Output:
    """One split point as a network flow: its cut set, packets and rate, and the 5QIs against it."""
    payload = req.payload
    tensors = [{"producer": t.producer, "shape": list(t.shape), "bytes": t.bytes} for t in split.tensors]
    cut = Table(
        f"Cut set after {split.after} ({profile_title(p)})",
        (
            Column("producer", "produced by"),
            Column("shape", "shape", "shape"),
            Column("bytes", "raw", "bytes"),
        ),
        tensors,
        caption=f"coded: {coding.describe()} -> {payload:,} B a frame",
    )
    data = {
        "model": p.model,
        "input_shape": list(p.input_shape),
        "dtype": p.dtype,
        "split": split.after,
        "raw_bytes": split.bytes,
        "tensor_bytes": split.tensor_bytes,
        "coded_bytes": payload,
        "coding": coding.describe(),
        "tensors": tensors,
        "device_macs": split.device_macs,
        "device_params": split.device_params,
        "requirements": req.to_dict(),
    }
    return Output([cut, requirements_table(req, f"Flow after {split.after}"), fiveqi_table(req)], data)


def qos_output(req: Requirements) -> Output:
    return Output([requirements_table(req), fiveqi_table(req)], req.to_dict())


def packet_table_output(pt: PacketTable) -> Output:
    """The packet-size table: the grid (and the paper's cells beside it); CSV gets one long table."""
    comparison = paper_comparison(pt)
    tables = [packet_grid(pt)] + ([comparison] if comparison else [])
    lines = paper_lines(pt) if comparison else []
    return Output(tables, pt.to_dict(), lines, per_format={"csv": [packet_long(pt)]})


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


# ----------------------------------------------------------------------------------------------
# Incremental model upload


def _err(measured: float | None, predicted: float | None, digits: int = 1) -> str:
    """Measured against predicted as a signed percentage ('' when either is missing)."""
    if measured is None or not predicted:
        return ""
    return f"{measured / predicted - 1:+.{digits}%}"


def partitions_table(rep: UploadReport) -> Table:
    p = rep.plan
    rows = []
    for i, (a, b) in enumerate(p.ranges):
        rows.append({"index": i, "layers": f"{p.names[i - 1] if i else 'input'} .. {p.names[i]}", "units": b - a,
                     "bytes": p.sizes[i], "params": p.params[i], "device": f"{sum(p.device_s[a:b]) * 1000:.1f}",
                     "edge": f"{sum(p.edge_s[a:b]) * 1000:.1f}"})  # fmt: skip
    cols = (
        Column("index", "#", "int"),
        Column("layers", "after .. up to"),
        Column("units", "units", "int"),
        Column("bytes", "bytes sent", "bytes"),
        Column("params", "weights", "bytes"),
        Column("device", "device ms"),
        Column("edge", "edge ms"),
    )
    cap = (f"{p.algorithm}; IONN's convex-hull choice would cut {len(p.hull)} partitions; device CPU "
           f"{p.device_cpu}; unit times measured on each side")  # fmt: skip
    return Table(f"Partitions of {p.model} at {p.res}", cols, rows, caption=cap)


def upload_modes_table(rep: UploadReport) -> Table:
    cols = [Column("quantity", "quantity")]
    for m in rep.modes:
        cols += [Column(m.mode, m.mode), Column(f"{m.mode}_err", "error")]
    spec: list[tuple[str, object]] = [
        ("upload time (s)", lambda m: (m.upload_s, None)),
        ("pure wire time: bytes x 8 / rate (s)", lambda m: (m.wire_s, m.upload_s)),
        ("exact: Ethernet frames x 8 / rate (s)", lambda m: (m.exact_s, m.upload_s)),
        ("exact at the calibrated rate (s)", lambda m: (m.exact_calibrated_s, m.upload_s)),
        ("exact with the query traffic measured on the uplink (s)", lambda m: (m.exact_with_queries_s, m.upload_s)),
        ("... plus every build but the last, on the upload thread (sequential; an upper bound: the receive "
         "buffer absorbs part) (s)", lambda m: (m.exact_with_builds_s, m.upload_s)),
        ("query bytes on the uplink during the upload (B)", lambda m: (m.query_up_bytes_during, None)),
        ("building, total (s)", lambda m: (m.build_total_s, None)),
        ("builds", lambda m: (len(m.builds), None)),
        ("upload stall beyond the exact expectation (s)", lambda m: (m.stall_s, None)),
        ("every partition built, heard by the device (s)", lambda m: (m.all_built_s, None)),
        ("upload wire bytes, measured (B)", lambda m: (m.wire_bytes_measured, None)),
        ("upload wire bytes, predicted (B)", lambda m: (m.wire_bytes_predicted, m.wire_bytes_measured)),
        ("queries during the upload", lambda m: (sum(1 for q in m.queries if q["during_upload"]), None)),
        ("queries after the upload", lambda m: (sum(1 for q in m.queries if not q["during_upload"]), None)),
    ]  # fmt: skip
    rows = []
    for name, fn in spec:
        row: dict[str, object] = {"quantity": name}
        for m in rep.modes:
            value, measured = fn(m)  # type: ignore[operator]
            row[m.mode] = _fmt_value(value)
            row[f"{m.mode}_err"] = _err(measured, value) if measured is not None else ""
        rows.append(row)
    return Table(f"Upload of {rep.plan.model} at {rep.config.link / 1e6:g} Mbit/s: measured and predicted", cols,
                 rows, caption="error = measured upload time (or bytes) against the figure on that row")  # fmt: skip


def _fmt_value(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def upload_lines(rep: UploadReport) -> list[str]:
    out = []
    for m in rep.modes:
        during = [q for q in m.queries if q["during_upload"]]
        after = [q for q in m.queries if not q["during_upload"]]
        full = all(q["plan"] == len(rep.plan.ranges) for q in after)
        if m.queries:
            first = m.queries[0]["seconds"]
            last = sum(q["seconds"] for q in after) / len(after) if after else None
            out.append(f"{m.mode}: {len(during)} queries during the upload, {len(after)} after; first query "
                       f"{first * 1000:.0f} ms, after the upload {last * 1000:.0f} ms" if last is not None else
                       f"{m.mode}: {len(during)} queries during the upload")  # fmt: skip
            if after:
                out.append(
                    f"{m.mode}: every query after the upload offloads the whole model: {'yes' if full else 'NO'}"
                )
    p, s = rep.mode("parallel"), rep.mode("sequential")
    if p and s and p.upload_s and s.upload_s:
        out.append(f"parallel creation saves {s.upload_s - p.upload_s:.2f} s ({(s.upload_s - p.upload_s) / s.upload_s:.1%})"
                   f" of the upload time")  # fmt: skip
    out += [f"note: {n}" for n in rep.notes]
    return out


def upload_output(rep: UploadReport) -> Output:
    lines = upload_lines(rep)
    for m in rep.modes:
        if m.result.capture:
            lines.append(f"{m.mode}: " + capture_line(m.result.capture, m.result.pcap))
    return Output([partitions_table(rep), upload_modes_table(rep)], rep.to_dict(), lines)


def upload_table1(reps: list[UploadReport]) -> Table:
    """The paper's Table 1 beside pktchar's measurement of the same models."""
    from ..testbed.upload import PAPER_TABLE1

    rows = []
    for r in reps:
        s, p = r.mode("sequential"), r.mode("parallel")
        paper = PAPER_TABLE1.get(r.plan.model, {})
        saved = (s.upload_s - p.upload_s) if s and p and s.upload_s and p.upload_s else None
        rows.append({
            "model": r.plan.model,
            "size": f"{sum(r.plan.sizes) / 1e6:.1f} ({paper.get('size_mb', '—')})",
            "parts": f"{len(r.plan.ranges)} ({paper.get('partitions', '—')})",
            "expected": f"{s.wire_s if s else p.wire_s if p else 0:.2f} ({paper.get('expected_s', '—')})",
            "seq": f"{s.upload_s:.2f} ({paper.get('sequential_s', '—')})" if s and s.upload_s else "—",
            "par": f"{p.upload_s:.2f} ({paper.get('parallel_s', '—')})" if p and p.upload_s else "—",
            "saved": f"{saved:.2f} ({paper.get('saved_s', '—')})" if saved is not None else "—",
            "pct": f"{saved / s.upload_s:.1%} ({paper.get('saved_pct', '—')}%)" if saved is not None and s else "—",
            "build": f"{s.build_total_s:.2f} ({paper.get('build_s', '—')})" if s else "—",
        })  # fmt: skip
    cols = (
        Column("model", "model"),
        Column("size", "size MB (paper)"),
        Column("parts", "partitions (paper)"),
        Column("expected", "expected s (paper)"),
        Column("seq", "sequential s (paper)"),
        Column("par", "parallel s (paper)"),
        Column("saved", "saved s (paper)"),
        Column("pct", "saved % (paper)"),
        Column("build", "build s (paper)"),
    )
    return Table("Upload time with and without parallel model creation, beside the paper's Table 1", cols, rows,
                 caption='paper: "Parallel Optimization of Deep Learning Computation Offloading in Edge Computing '
                         'Environment" (Seoul National University, JOK 2022), Table 1: Caffe, Titan XP server, '
                         'Odroid XU4 client, 80 Mbit/s; pktchar: PyTorch on this machine\'s CPUs')  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Fleets


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1000:.1f}"


def _mbit(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e6:.3f}"


def fleet_devices_table(r: FleetRun) -> Table:
    rows = []
    for p, m in zip(r.predicted.devices, r.measured, strict=True):
        rows.append({
            "device": p.device, "frames": m.frames, "offered": _mbit(p.offered_bps),
            "gp_p": _mbit(p.goodput_bps), "gp_m": _mbit(m.goodput_bps), "gp_e": _err(m.goodput_bps, p.goodput_bps),
            "lat_p": _ms(p.latency_mean_s), "lat_m": _ms(m.latency_mean_s),
            "p50": f"{_ms(p.latency_p50_s)} / {_ms(m.latency_p50_s)}", "p99": f"{_ms(p.latency_p99_s)} / {_ms(m.latency_p99_s)}",
            "late": f"{p.late_fraction:.0%} / {'—' if m.late_fraction is None else f'{m.late_fraction:.0%}'}",
            "q": _ms(p.queueing_mean_s),
            "wire": f"{m.wire_bytes_predicted:,} / {'—' if m.wire_bytes is None else f'{m.wire_bytes:,}'}",
        })  # fmt: skip
    cols = (
        Column("device", "device"),
        Column("frames", "frames", "int"),
        Column("offered", "offered Mbit/s"),
        Column("gp_p", "goodput pred."),
        Column("gp_m", "goodput meas."),
        Column("gp_e", "error"),
        Column("lat_p", "latency ms pred."),
        Column("lat_m", "latency ms meas."),
        Column("p50", "p50 ms pred./meas."),
        Column("p99", "p99 ms pred./meas."),
        Column("late", "late pred./meas."),
        Column("q", "queueing ms/pkt pred."),
        Column("wire", "wire B pred./meas."),
    )
    return Table(f"Fleet of {r.devices} into one edge link of {r.predicted.edge_rate / 1e6:g} Mbit/s", cols, rows,
                 caption="latency = send to last byte at the edge; late = through more than the budget after its "
                         "slot; statistics after the first third of the frames (start-up)")  # fmt: skip


def fleet_lines(r: FleetRun) -> list[str]:
    p = r.predicted
    out = [
        f"offered load {p.offered_bps / 1e6:.3f} Mbit/s (Ethernet frames) against the edge link "
        f"{p.edge_rate / 1e6:g} Mbit/s: utilisation {p.utilisation:.2f}{' (saturated)' if p.saturated else ''}",
        f"aggregate goodput: predicted {_mbit(p.goodput_bps)} Mbit/s, measured {_mbit(r.aggregate_goodput_bps)} "
        f"Mbit/s ({_err(r.aggregate_goodput_bps, p.goodput_bps) or 'n/a'})",
        f"fairness (Jain's index): predicted {p.jain:.4f}, measured {'—' if r.jain is None else f'{r.jain:.4f}'}",
    ]
    if r.result.capture:
        out.append(capture_line(r.result.capture, r.result.pcap))
    return out + [f"note: {n}" for n in r.notes + r.result.notes]


def fleet_output(
    r: FleetRun, radio: str | None = None, direction: str = "ul", reliability: float | None = None
) -> Output:
    qos, rows = fleet_qos(r, radio, direction, reliability)
    return Output([fleet_devices_table(r), qos], {**r.to_dict(), "qos": rows}, fleet_lines(r))


def sweep_table(runs: list[FleetRun]) -> Table:
    rows = []
    for r in runs:
        p = r.predicted
        lat_p = max(d.latency_p99_s for d in p.devices)
        lat_m = [m.latency_p99_s for m in r.measured if m.latency_p99_s is not None]
        late_m = [m.late_fraction for m in r.measured if m.late_fraction is not None]
        rows.append({
            "n": r.devices, "util": f"{p.utilisation:.2f}", "gp_p": _mbit(p.goodput_bps),
            "gp_m": _mbit(r.aggregate_goodput_bps), "gp_e": _err(r.aggregate_goodput_bps, p.goodput_bps),
            "p99_p": _ms(lat_p), "p99_m": _ms(max(lat_m) if lat_m else None),
            "late_p": f"{max(d.late_fraction for d in p.devices):.0%}",
            "late_m": f"{max(late_m):.0%}" if late_m else "—", "jain": "—" if r.jain is None else f"{r.jain:.4f}",
        })  # fmt: skip
    cols = (
        Column("n", "devices", "int"),
        Column("util", "utilisation"),
        Column("gp_p", "goodput Mbit/s pred."),
        Column("gp_m", "meas."),
        Column("gp_e", "error"),
        Column("p99_p", "worst p99 ms pred."),
        Column("p99_m", "meas."),
        Column("late_p", "late pred."),
        Column("late_m", "meas."),
        Column("jain", "Jain meas."),
    )
    return Table("Fleet size sweep: one edge link, devices added one by one", cols, rows)


def sweep_lines(runs: list[FleetRun], predicted_sat: int, predicted_miss: int | None) -> list[str]:
    """Where the edge link saturates and where a frame first misses its budget, predicted against
    measured. Predicted: the offered load passes the edge rate. Measured: the fleet's goodput reaches 97%
    of what the edge link can carry (its rate x payload / Ethernet frame bytes)."""
    last = runs[-1].devices

    def full(r: FleetRun) -> bool:
        capacity = r.predicted.edge_rate * r.payload_offered_bps / r.predicted.offered_bps  # payload share
        return r.aggregate_goodput_bps is not None and r.aggregate_goodput_bps >= 0.97 * capacity

    meas_sat = next((r.devices for r in runs if full(r)), None)
    meas_miss = next((r.devices for r in runs if any((m.late_fraction or 0) > 0 for m in r.measured)), None)
    return [
        f"the edge link saturates at {predicted_sat} devices (predicted); measured: "
        f"{meas_sat if meas_sat is not None else f'not within 1..{last}'}",
        f"a frame first misses its budget at {predicted_miss if predicted_miss is not None else f'more than {last}'} "
        f"devices (predicted); measured: {meas_miss if meas_miss is not None else f'not within 1..{last}'}",
    ]


def upload_differences(rep: UploadReport) -> list[str]:
    """A sentence on each difference from the paper's Table 1, with this run's figures."""
    from ..testbed.upload import PAPER_TABLE1

    paper = PAPER_TABLE1.get(rep.plan.model)
    s, p = rep.mode("sequential"), rep.mode("parallel")
    m = s or p
    if paper is None or m is None:
        return []
    size = sum(rep.plan.sizes) / 1e6
    framing = m.exact_s / m.wire_s - 1
    out = [
        f"{rep.plan.model}: the paper's size is {paper['size_mb']} MB (Caffe's model file); pktchar sends {size:.1f} MB, "
        f"the weights as torch.save writes them and a JSON description of each partition.",
        f"{rep.plan.model}: expected {m.wire_s:.2f} s is the paper's own formula (bytes x 8 / rate); Ethernet, IP and TCP "
        f"headers add {framing:.1%} ({m.exact_s:.2f} s), and the queries sharing the uplink added "
        f"{m.query_up_bytes_during / 1e6:.1f} MB ({m.exact_with_queries_s or 0:.2f} s in all).",
    ]
    if s and p and s.upload_s and p.upload_s:
        out.append(
            f"{rep.plan.model}: building took {s.build_total_s:.2f} s here"
            + (f" against the paper's {paper['build_s']} s" if "build_s" in paper else "")
            + ": PyTorch on this machine's CPU allocates the modules and copies the weights, where Caffe on the "
            f"paper's Titan XP also sets up GPU memory for every layer; so the old system stalls less here and "
            f"parallel creation saves {s.upload_s - p.upload_s:.2f} s against the paper's {paper['saved_s']} s."
        )
    out.append(
        f"{rep.plan.model}: {len(rep.plan.ranges)} partitions against the paper's {paper['partitions']}: pktchar cuts "
        f"wherever a query gets faster, from unit times measured here (device {rep.plan.device_cpu}); the paper used "
        f"IONN's choice on an Odroid XU4 client and a GPU server (IONN's convex hull would cut {len(rep.plan.hull)} here)."
    )
    return out


# Data-parallel training sync


def _s(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def train_plan_table(rep: Any) -> Table:
    """The bucket plan and the collectives of one steady step, per worker (w0)."""
    p = rep.plan
    k = min(2, len(p.steps) - 1)
    rows = [{"what": ph.name, "bytes": ph.bytes, "sent": ph.sent[0], "recv": ph.received[0],
             "frames": ph.frames_sent[0]} for ph in p.steps[k]]  # fmt: skip
    rows.append({"what": "total", "bytes": sum(ph.bytes for ph in p.steps[k]), "sent": p.step_total(k, "sent"),
                 "recv": p.step_total(k, "received"), "frames": p.step_total(k, "frames_sent")})  # fmt: skip
    cols = (
        Column("what", "collective"),
        Column("bytes", "tensor bytes", "int"),
        Column("sent", "w0 sends (gloo, B)", "int"),
        Column("recv", "w0 receives (gloo, B)", "int"),
        Column("frames", "w0 Ethernet bytes sent", "int"),
    )
    cap = (f"{p.trainable:,} trainable parameters, {p.grad_bytes:,} B of gradients as all-reduced "
           f"({p.elem} B an element); first iteration one bucket of {p.first_buckets[0]:,} B, rebuilt buckets "
           f"{', '.join(f'{b:,}' for b in p.rebuilt_buckets)} B; DDP's own logging: "
           f"{rep.ddp_buckets.get('bucket_sizes') or '—'} then {rep.ddp_buckets.get('rebuilt_bucket_sizes') or '—'}")  # fmt: skip
    return Table(f"What one step puts on the wire, predicted ({rep.config.workers} workers, steady step)", cols,
                 rows, caption=cap)  # fmt: skip


def train_steps_table(rep: Any) -> Table:
    """Per step, w0: bytes measured against predicted, and the step's times."""
    rows = []
    for r in rep.steps:
        rows.append({"step": r.step, "pay_m": r.payload_measured, "pay_p": r.payload_predicted,
                     "pay_e": _err(r.payload_measured, r.payload_predicted, 2), "eth_m": r.sent_measured,
                     "eth_p": r.sent_predicted, "eth_e": _err(r.sent_measured, r.sent_predicted, 2),
                     "fwd": _s(r.fwd_s), "bwd": _s(r.bwd_s), "ar": _s(r.allreduce_s), "step_s": _s(r.step_s)})  # fmt: skip
    cols = (
        Column("step", "step", "int"),
        Column("pay_m", "payload sent (B)", "int"),
        Column("pay_p", "predicted", "int"),
        Column("pay_e", "error"),
        Column("eth_m", "data frames sent (B)", "int"),
        Column("eth_p", "predicted", "int"),
        Column("eth_e", "error"),
        Column("fwd", "forward s"),
        Column("bwd", "backward s"),
        Column("ar", "all-reduce span s"),
        Column("step_s", "step s"),
    )
    return Table(f"Per step, worker w0: {rep.source}", cols, rows,
                 caption="payload = TCP payload bytes w0 sent in the step (each byte once: retransmissions "
                 "apart); data frames = their Ethernet frames (66 B of headers a segment); step 0 all-reduces "
                 "one bucket, step 1 also broadcasts the rebuilt bucket indices")  # fmt: skip


def train_timing_table(rep: Any) -> Table:
    t = rep.timing
    meas = t.get("step_measured_s")
    rows = [
        {"q": "compute a step, measured without DDP (s)", "v": _s(t["compute_s"]), "e": ""},
        {"q": "buffer broadcast at the link rate (s)", "v": _s(t["buffer_bcast_s"], 4), "e": ""},
        {"q": "all-reduce at the link rate, predicted (s)", "v": _s(t["allreduce_s"]), "e": ""},
        {"q": "all-reduce at the calibrated rate, predicted (s)", "v": _s(t.get("allreduce_calibrated_s")), "e": ""},
        {"q": "all-reduce span, measured (s)", "v": _s(t.get("allreduce_measured_s")),
         "e": _err(t.get("allreduce_measured_s"), t["allreduce_s"], 2)},
        {"q": "step, predicted, nothing hidden (s)", "v": _s(t["step_predicted_no_overlap_s"]),
         "e": _err(meas, t["step_predicted_no_overlap_s"], 2)},
        {"q": "step, predicted, all but the last bucket hidden (s)", "v": _s(t["step_predicted_overlap_s"]),
         "e": _err(meas, t["step_predicted_overlap_s"], 2)},
        {"q": "step, predicted at the calibrated rate (s)", "v": _s(t.get("step_predicted_calibrated_s")),
         "e": _err(meas, t.get("step_predicted_calibrated_s"), 2)},
        {"q": "step, measured (s)", "v": _s(meas), "e": ""},
        {"q": "all-reduce hidden behind backward, measured (s)", "v": _s(t.get("hidden_s")), "e": ""},
        {"q": "share of the all-reduce hidden", "v": f"{t['hidden_fraction']:.0%}" if t.get("hidden_fraction")
         is not None else "—", "e": ""},
    ]  # fmt: skip
    cal = t.get("calibrated_bps")
    cap = (f"link {rep.config.link / 1e9:g} Gbit/s each way" + (f", calibrated {cal / 1e6:.0f} Mbit/s (one bulk TCP "
           "transfer w0 -> w1)" if cal else "") + "; error = measured against the figure on that row; steady "
           "steps (from the third)")  # fmt: skip
    return Table("Time a step, measured and predicted", (Column("q", "quantity"), Column("v", "value"),
                 Column("e", "error")), rows, caption=cap)  # fmt: skip


def train_workers_table(reps: list[Any]) -> Table:
    """One row a run: workers, variant, bytes a step (w0), times."""
    rows = []
    for r in reps:
        w = r.per_worker[0] if r.per_worker else {}
        t = r.timing
        var = ("frozen backbone" if r.config.freeze else "full") + (
            f", {r.config.hook}" if r.config.hook != "none" else ""
        )
        rows.append({"n": r.config.workers, "var": var, "grad": r.plan.grad_bytes,
                     "pay_m": w.get("payload"), "pay_p": w.get("payload_predicted"),
                     "pay_e": _err(w.get("payload"), w.get("payload_predicted"), 2), "eth_m": w.get("sent"),
                     "eth_p": w.get("sent_predicted"), "eth_e": _err(w.get("sent"), w.get("sent_predicted"), 2),
                     "comp": _s(t["compute_s"]), "pred": _s(t["step_predicted_no_overlap_s"]),
                     "meas": _s(t.get("step_measured_s")), "hid": f"{t['hidden_fraction']:.0%}"
                     if t.get("hidden_fraction") is not None else "—", "err": r.error or ""})  # fmt: skip
    cols = (
        Column("n", "workers", "int"),
        Column("var", "variant"),
        Column("grad", "gradient bytes", "int"),
        Column("pay_m", "w0 payload a step (B)", "int"),
        Column("pay_p", "predicted", "int"),
        Column("pay_e", "error"),
        Column("eth_m", "w0 data frames (B)", "int"),
        Column("eth_p", "predicted", "int"),
        Column("eth_e", "error"),
        Column("comp", "compute s"),
        Column("pred", "step s, predicted"),
        Column("meas", "step s, measured"),
        Column("hid", "all-reduce hidden"),
        Column("err", "stopped"),
    )
    return Table("Workers and variants: bytes and time a steady step", cols, rows,
                 caption="one worker runs locally, without a network (compute only); predicted step = compute + "
                 "buffer broadcast + all-reduce at the link rate, nothing hidden")  # fmt: skip


def train_paper_table(rows: list[dict[str, Any]]) -> Table:
    cols = (
        Column("what", "setup (two boards, 1 Gbit/s)"),
        Column("steps", "steps a board", "int"),
        Column("sync", "sync a step s"),
        Column("total", "total s"),
        Column("paper", "paper s"),
        Column("vs_one", "against one board"),
    )
    return Table("The paper's two-board training, predicted from its one-board time and the sync cost", cols, rows,
                 caption='paper: "Performance Evaluation of Deep Learning Distributed Training on Edge Devices" '
                 "(KETI/ETRI, 2023): one board 9,310 s, two boards 28,248 s, 100 epochs of 50,000 images at batch "
                 "64 (78,200 steps a board: each board trained on the full data set)")  # fmt: skip


def train_lines(rep: Any) -> list[str]:
    out = [f"data: {rep.source}"]
    if rep.construction:
        c = rep.construction
        out.append(f"construction (initial state broadcast and shape check), w0 sent {c['sent_payload']:,} B payload; "
                   f"predicted {c['predicted_payload']:,} B ({_err(c['sent_payload'], c['predicted_payload'], 2)})")  # fmt: skip
    for w in rep.per_worker:
        out.append(f"{w['worker']}: {w['payload']:,.0f} B payload a steady step (predicted {w['payload_predicted']:,}, "
                   f"{_err(w['payload'], w['payload_predicted'], 2)}), {w['acks_sent']:.0f} pure ACKs "
                   f"({w['ack_bytes_sent']:,.0f} B) and {w['retransmitted']:,.0f} B retransmitted a step beside")  # fmt: skip
    for e, c in rep.captures.items():
        out.append(f"capture {e}: {c['captured']:,} packets, {'complete' if c['complete'] else 'INCOMPLETE'}")
    if rep.error:
        out.append(f"stopped: {rep.error}")
    out += [f"note: {n}" for n in rep.notes]
    return out


def train_output(rep: Any) -> Output:
    from rich.markup import escape  # errors quote paths in brackets, which rich would read as markup

    tables = [train_plan_table(rep), train_timing_table(rep)]
    if rep.per_worker:
        tables.insert(1, train_steps_table(rep))
    return Output(tables, rep.to_dict(), [escape(x) for x in train_lines(rep)])


def train_paper_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The paper's 3x in sentences, from the projection rows."""

    def num(x: object) -> float:
        return float(str(x).replace(",", ""))

    by = {str(r["what"]): r for r in rows}
    one = num(rows[0]["total"])
    pred = next((r for w, r in by.items() if "paper's setup" in w), None)
    meas = next(
        (r for w, r in by.items() if "measured here" in w and "frozen" not in w and "fp16" not in w), None
    )
    out = []
    if pred:
        gap = 28248 - num(pred["total"])
        out.append(
            f"one board: {one:,.0f} s for 78,200 steps = {one / 78200:.3f} s a step. Two boards each train the full "
            f"data set, so each still runs 78,200 steps and adds the sync of every step: {num(pred['sync']):.4f} s at "
            f"1 Gbit/s predicted (gradients all-reduced, BatchNorm buffers broadcast) -> {num(pred['total']):,.0f} s "
            f"({pred['vs_one']} one board) against the paper's 28,248 s (3.03x)"
        )
        out.append(
            f"left unexplained by the wire: {gap:,.0f} s, {gap / 78200 * 1000:.0f} ms a step: the paper's stack "
            "(TensorFlow MultiWorkerMirroredStrategy, its collectives on the boards' CPUs) costs more than the "
            "link time, as the sync measured here does on two shared cores"
        )
    if meas:
        out.append(
            f"with the sync measured here ({num(meas['sync']):.3f} s a step, CPU-bound on this machine rather than "
            f"wire-bound): {num(meas['total']):,.0f} s ({meas['vs_one']} one board)"
        )
    return out


def fleet_qos(
    runs_or_cfg: FleetRun, radio: str | None, direction: str, reliability: float | None
) -> tuple[Table, list[dict[str, object]]]:
    """The QoS view of a fleet: each group's device flow over its own uplink (or ``radio``) and the
    aggregate into the edge link: the rate it needs, whether the carrier carries it, the 5QIs that fit."""
    from ..core.packets import Transport
    from ..core.qos import requirements
    from ..core.radio import carrier

    r = runs_or_cfg
    cfg = r.result.config
    budget = cfg.get("latency")
    rows: list[dict[str, object]] = []
    total_bps, fps_ref = 0.0, 0.0
    for g, flow in zip(cfg["groups"], _first_flow_per_group(r), strict=True):
        payload = flow.frames[0].payload
        via = carrier(radio, None if radio else float(flow.rate_bps), direction)
        req = requirements(payload, latency=budget, fps=g["fps"], transport=Transport(), carrier=via,
                           reliability=reliability)  # fmt: skip
        rows.append(_qos_row(f"{g['name']}: {g['count']} x {g['model']} {g['split']}", req))
        total_bps += g["count"] * payload * 8 * g["fps"]
        fps_ref = max(fps_ref, g["fps"])
    agg_payload = int(-(-total_bps // (8 * fps_ref)))  # the fleet's payload within one frame interval
    via = carrier(radio, None if radio else r.predicted.edge_rate, direction)
    req = requirements(agg_payload, latency=budget, fps=fps_ref, transport=Transport(), carrier=via,
                       reliability=reliability)  # fmt: skip
    rows.append(_qos_row(f"aggregate into the edge ({r.devices} devices)", req))
    cols = (
        Column("flow", "flow"),
        Column("rate", "rate needed"),
        Column("carrier", "carried by"),
        Column("verdict", "carries it"),
        Column("fits", "5QIs that fit"),
    )
    return Table("QoS of the fleet's flows (3GPP TS 23.501 Table 5.7.4-1)", cols, rows), rows


def _first_flow_per_group(r: FleetRun) -> list[object]:
    flows = list(r.result.prediction.flows)
    out, k = [], 0
    for g in r.result.config["groups"]:
        out.append(flows[k])
        k += int(g["count"])
    return out


def _qos_row(name: str, req: Requirements) -> dict[str, object]:
    from ..core.units import human_rate

    f = req.carrier_factor
    verdict = "—" if f is None else (f"yes (room x{f:.3g})" if f >= 1 else f"NO (short by x{1 / f:.3g})")
    fits = req.fitting
    return {
        "flow": name,
        "rate": human_rate(req.needed(req.carrier.layer if req.carrier else "ip")),
        "carrier": req.carrier.name if req.carrier else "—",
        "verdict": verdict,
        "fits": ("5QI " if len(fits) == 1 else "5QIs ") + ", ".join(map(str, fits)) if fits else "none",
        "rate_bps": req.needed(req.carrier.layer if req.carrier else "ip"),
        "carrier_factor": f,
        "fitting_5qi": fits,
    }
