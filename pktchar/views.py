"""Results as render.Table objects: what every command and report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .render import Column, Table, render, to_rich

if TYPE_CHECKING:  # views stay light: a command that needs no model never imports torch
    from .codec import Coding
    from .profiler import Profile, Split
    from .qos import Requirements
    from .table import Cell, PacketTable
    from .testbed.capture import CaptureStats
    from .testbed.compare import Comparison
    from .testbed.scenario import Calibration, Result


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
            "device_macs": s.device_macs,
            "device_params": s.device_params,
        }
        for s in p.splits
    ]
    cols = list(SPLIT_COLUMNS)
    caption = (
        "payload = every tensor produced before the cut and still needed after it ('input' = full offload)"
    )
    if coding is not None:
        cols.insert(5, Column("coded", "coded", "bytes"))
        caption += f"; coded: {coding.describe()}"
    return Table(f"Split points of {profile_title(p)}", cols, rows, caption=caption)


def summary_lines(p: Profile) -> list[str]:
    from .units import human_bytes, human_count

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
    from .units import human_factor

    if r.carrier is None:
        return ""
    return f"{'yes' if r.carried else 'NO'} ({human_factor(r.carrier_factor or 0.0)})"


def cell_text(c: Cell) -> str:
    from .units import human_bytes, human_rate

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
    return Table("Packet characteristics of image classifiers", cols, rows, caption=caption)


def _res_label(t: PacketTable, r: str) -> str:
    c = t.cell(t.models[0], r)
    return f"{r} ({c.input_shape[2]}x{c.input_shape[3]})"


def _budget(t: PacketTable) -> str:
    from .units import human_duration, human_number

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
    from .table import PAPER_NAME

    cols = (
        Column("res", "input"),
        Column("model", "model"),
        Column("paper_row", "paper's Table 1 row"),
        Column("comparison", "paper vs exact", "para"),
    )
    return Table(f"{PAPER_NAME}, Table 1, against the exact ranges", cols, rows)


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
    from .units import human_factor, human_rate

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
    from .units import human_bytes, human_duration, human_per, human_rate

    d = r.non_standardized()
    text = (
        f"resource type {d['resource']}, PDB {human_duration(r.latency)}, PER {human_per(r.per)}, "
        f"GFBR {human_rate(float(d['gfbr_bps']))}"  # type: ignore[arg-type]
    )
    if "mdbv" in d:
        text += f", MDBV {human_bytes(r.burst)} ({r.burst:,} B)"
    return text


def requirements_table(r: Requirements, title: str = "Flow requirements") -> Table:
    from .units import human_bytes, human_duration, human_number, human_per, human_rate

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
    from .units import human_duration, human_per

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
    from .qos import FIVEQI_SOURCE

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
    from .units import human_duration, human_rate

    return (
        f"calibration: {c.bytes:,} B in {human_duration(c.seconds)}: link {human_rate(c.link_rate_measured_bps, 4)} "
        f"(set {human_rate(c.link_rate_set_bps)}), goodput {human_rate(c.goodput_measured_bps, 4)} "
        f"(model {human_rate(c.goodput_predicted_bps, 4)}, {c.goodput_error:+.2%})"
    )


def capture_line(s: CaptureStats, pcap: object) -> str:
    verdict = "complete" if s.complete else "INCOMPLETE"
    return (
        f"capture: {s.captured:,} packets captured, {s.interface_packets:,} through the interface, "
        f"{s.dropped_by_kernel} dropped by the kernel -> {verdict}; {pcap}"
    )


def run_lines(r: Result) -> list[str]:
    """What a run says besides its tables: payloads, calibration, capture, notes."""
    lines = [f"payload: {r.source}"] if r.source else []
    if r.calibration:
        lines.append(calibration_line(r.calibration))
    if r.capture:
        lines.append(capture_line(r.capture, r.pcap))
    lines += [f"note: {n}" for n in r.notes]
    return lines


def files_lines(r: Result) -> list[str]:
    """Every file a run wrote, and how to look at the capture again."""
    out = [f"wrote {p}" for p in r.artifacts.written()]
    if r.artifacts.pcap.exists():
        partial = " (the frames measured before the run stopped)" if r.error else ""
        out.append(f"compare again with: pktchar compare {r.artifacts.pcap}{partial}")
    return out


def folder_lines(folder: Any) -> list[str]:
    """``wrote <file>`` for every file in a report folder."""
    from pathlib import Path

    return [f"wrote {p}" for p in sorted(Path(folder).rglob("*")) if p.is_file()]


def run_tables(r: Result) -> list[Table]:
    if r.comparison is None:
        return []
    return [comparison_table(r.comparison), histogram_table(r.comparison)]


def run_extra(r: Result) -> dict[str, object]:
    """The run facts a compare report lists beside its tables."""
    out: dict[str, object] = {"payload": r.source}
    if r.calibration:
        out["calibration"] = calibration_line(r.calibration).removeprefix("calibration: ")
    if r.capture:
        out["capture"] = capture_line(r.capture, r.pcap).removeprefix("capture: ")
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
    return Output(tables, pt.to_dict(), per_format={"csv": [packet_long(pt)]})


def compare_output(c: Comparison) -> Output:
    """A capture against its prediction; the terminal gets the summary, files get the frames too."""
    tables = [comparison_table(c), histogram_table(c), frames_table(c)]
    return Output(tables, c.to_dict(), [f"note: {n}" for n in c.notes], per_format={"table": tables[:2]})


def run_output(r: Result) -> Output:
    return Output(run_tables(r), r.to_dict(), run_lines(r))
