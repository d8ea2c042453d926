"""Incremental model upload: partitions, modes, the paper's Table 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..render import Column, Table
from .base import Output
from .runs import capture_line

if TYPE_CHECKING:
    from ...testbed.upload import UploadReport


def partitions_table(rep: UploadReport) -> Table:
    p = rep.plan
    rows = []
    for i, (a, b) in enumerate(p.ranges):
        rows.append({"index": i, "layers": f"{p.names[i - 1] if i else 'input'} .. {p.names[i]}", "units": b - a,
                     "bytes": p.sizes[i], "params": p.params[i], "device": sum(p.device_s[a:b]) * 1000,
                     "edge": sum(p.edge_s[a:b]) * 1000})  # fmt: skip
    cols = (
        Column("index", "#", "int"),
        Column("layers", "after .. up to", "text"),
        Column("units", "units", "int"),
        Column("bytes", "bytes sent", "bytes"),
        Column("params", "weights", "bytes"),
        Column("device", "device ms", "ms"),
        Column("edge", "edge ms", "ms"),
    )
    cap = (f"{p.algorithm}; IONN's convex-hull choice would cut {len(p.hull)} partitions; device CPU "
           f"{p.device_cpu}; unit times measured on each side")  # fmt: skip
    return Table(f"Partitions of {p.model} at {p.res}", cols, rows, caption=cap)


def upload_modes_table(rep: UploadReport) -> Table:
    cols = [Column("quantity", "quantity", "text")]
    for m in rep.modes:
        cols += [
            Column(m.mode, m.mode, "float", digits=3, missing="—"),
            Column(f"{m.mode}_err", "error", "ratio"),
        ]
    spec: list[tuple[str, object]] = [
        ("upload time (s)", lambda m, j: (m.upload_s, None)),
        ("pure wire time: bytes x 8 / rate (s)", lambda m, j: (m.wire_s, j.wire)),
        ("exact: Ethernet frames x 8 / rate (s)", lambda m, j: (m.exact_s, j.exact)),
        ("exact at the calibrated rate (s)", lambda m, j: (m.exact_calibrated_s, j.exact_calibrated)),
        ("exact with the query traffic measured on the uplink (s)", lambda m, j: (m.exact_with_queries_s, j.with_queries)),
        ("... plus every build but the last, on the upload thread (sequential; an upper bound: the receive "
         "buffer absorbs part) (s)", lambda m, j: (m.exact_with_builds_s, j.with_builds)),
        ("query bytes on the uplink during the upload (B)", lambda m, j: (m.query_up_bytes_during, None)),
        ("building, total (s)", lambda m, j: (m.build_total_s, None)),
        ("builds", lambda m, j: (len(m.builds), None)),
        ("upload stall beyond the exact expectation (s)", lambda m, j: (m.stall_s, None)),
        ("every partition built, heard by the device (s)", lambda m, j: (m.all_built_s, None)),
        ("upload wire bytes, measured (B)", lambda m, j: (m.wire_bytes_measured, None)),
        ("upload wire bytes, predicted (B)", lambda m, j: (m.wire_bytes_predicted, j.wire_bytes)),
        ("queries during the upload", lambda m, j: (len(m.queries_during), None)),
        ("queries after the upload", lambda m, j: (len(m.queries_after), None)),
    ]  # fmt: skip
    joins = {m.mode: m.measures() for m in rep.modes}  # the one join: each figure's error is its Measure's
    rows = []
    for name, fn in spec:
        row: dict[str, object] = {"quantity": name}
        for m in rep.modes:
            value, measure = fn(m, joins[m.mode])  # type: ignore[operator]
            row[m.mode] = value
            row[f"{m.mode}_err"] = measure.error if measure is not None else None
        rows.append(row)
    return Table(f"Upload of {rep.plan.model} at {rep.config.link / 1e6:g} Mbit/s: measured and predicted", cols,
                 rows, caption="error = measured upload time (or bytes) against the figure on that row")  # fmt: skip


def upload_lines(rep: UploadReport) -> list[str]:
    out = []
    for m in rep.modes:
        during, after, last = m.queries_during, m.queries_after, m.query_after_s
        if m.queries:
            first = m.queries[0]["seconds"]
            out.append(f"{m.mode}: {len(during)} queries during the upload, {len(after)} after; first query "
                       f"{first * 1000:.0f} ms, after the upload {last * 1000:.0f} ms" if last is not None else
                       f"{m.mode}: {len(during)} queries during the upload")  # fmt: skip
            if after:
                out.append(
                    f"{m.mode}: every query after the upload offloads the whole model: "
                    f"{'yes' if m.whole_model_after else 'NO'}"
                )
    if rep.saved_s is not None and rep.saved_fraction is not None:
        out.append(
            f"parallel creation saves {rep.saved_s:.2f} s ({rep.saved_fraction:.1%}) of the upload time"
        )
    out += [f"note: {n}" for n in rep.notes]
    return out


def upload_output(rep: UploadReport) -> Output:
    lines = upload_lines(rep)
    for m in rep.modes:
        if m.result.capture:
            lines.append(f"{m.mode}: " + capture_line(m.result.capture, m.result.pcap))
    return Output([partitions_table(rep), upload_modes_table(rep)], rep.to_dict(), lines)


def upload_table1(reps: list[UploadReport]) -> Table:
    """The paper's Table 1 beside pktchar's measurement of the same models: pktchar's figures first, then
    the paper's."""
    from ...testbed.upload import PAPER_TABLE1

    rows = []
    for r in reps:
        s, p = r.mode("sequential"), r.mode("parallel")
        paper = PAPER_TABLE1.get(r.plan.model, {})
        m = s or p
        rows.append({
            "model": r.plan.model, "size": r.plan.packed_bytes / 1e6, "parts": len(r.plan.ranges),
            "expected": m.wire_s if m else 0.0, "seq": s.upload_s if s and s.upload_s else None,
            "par": p.upload_s if p and p.upload_s else None, "saved": r.saved_s, "pct": r.saved_fraction,
            "build": s.build_total_s if s else None,
            **{f"paper_{k}": paper.get(v) for k, v in _PAPER_KEYS},
            "paper_pct": paper["saved_pct"] / 100 if "saved_pct" in paper else None,  # a percentage: a share
        })  # fmt: skip
    cols = (
        Column("model", "model", "text"),
        Column("size", "size MB", "float", digits=1),
        Column("parts", "partitions", "int"),
        Column("expected", "expected s", "seconds", digits=2),
        Column("seq", "sequential s", "seconds", digits=2, missing="—"),
        Column("par", "parallel s", "seconds", digits=2, missing="—"),
        Column("saved", "saved s", "seconds", digits=2, missing="—"),
        Column("pct", "saved %", "percent", digits=1, missing="—"),
        Column("build", "build s", "seconds", digits=2, missing="—"),
        Column("paper_size", "paper MB", "float", digits=0, missing="—"),
        Column("paper_parts", "paper parts", "int", missing="—"),
        Column("paper_expected", "paper expected s", "seconds", digits=1, missing="—"),
        Column("paper_seq", "paper seq. s", "seconds", digits=1, missing="—"),
        Column("paper_par", "paper par. s", "seconds", digits=1, missing="—"),
        Column("paper_saved", "paper saved s", "seconds", digits=1, missing="—"),
        Column("paper_pct", "paper saved %", "percent", digits=1, missing="—"),
        Column("paper_build", "paper build s", "seconds", digits=1, missing="—"),
    )
    return Table("Upload time with and without parallel model creation, beside the paper's Table 1", cols, rows,
                 caption='paper: "Parallel Optimization of Deep Learning Computation Offloading in Edge Computing '
                         'Environment" (Seoul National University, JOK 2022), Table 1: Caffe, Titan XP server, '
                         'Odroid XU4 client, 80 Mbit/s; pktchar: PyTorch on this machine\'s CPUs')  # fmt: skip


# The paper's figures (PAPER_TABLE1's keys) in upload_table1's columns (its saved share apart: a percentage)
_PAPER_KEYS = (("size", "size_mb"), ("parts", "partitions"), ("expected", "expected_s"), ("seq", "sequential_s"),
               ("par", "parallel_s"), ("saved", "saved_s"), ("build", "build_s"))  # fmt: skip


def upload_differences(rep: UploadReport) -> list[str]:
    """A sentence on each difference from the paper's Table 1, with this run's figures."""
    from ...testbed.upload import PAPER_TABLE1

    paper = PAPER_TABLE1.get(rep.plan.model)
    s, p = rep.mode("sequential"), rep.mode("parallel")
    m = s or p
    if paper is None or m is None:
        return []
    size = rep.plan.packed_bytes / 1e6
    out = [
        f"{rep.plan.model}: the paper's size is {paper['size_mb']} MB (Caffe's model file); pktchar sends {size:.1f} MB, "
        f"the weights as torch.save writes them and a JSON description of each partition.",
        f"{rep.plan.model}: expected {m.wire_s:.2f} s is the paper's own formula (bytes x 8 / rate); Ethernet, IP and TCP "
        f"headers add {m.framing:.1%} ({m.exact_s:.2f} s), and the queries sharing the uplink added "
        f"{m.query_up_bytes_during / 1e6:.1f} MB ({m.exact_with_queries_s or 0:.2f} s in all).",
    ]
    if s and rep.saved_s is not None:
        out.append(
            f"{rep.plan.model}: building took {s.build_total_s:.2f} s here"
            + (f" against the paper's {paper['build_s']} s" if "build_s" in paper else "")
            + ": PyTorch on this machine's CPU allocates the modules and copies the weights, where Caffe on the "
            f"paper's Titan XP also sets up GPU memory for every layer; so the old system stalls less here and "
            f"parallel creation saves {rep.saved_s:.2f} s against the paper's {paper['saved_s']} s."
        )
    out.append(
        f"{rep.plan.model}: {len(rep.plan.ranges)} partitions against the paper's {paper['partitions']}: pktchar cuts "
        f"wherever a query gets faster, from unit times measured here (device {rep.plan.device_cpu}); the paper used "
        f"IONN's choice on an Odroid XU4 client and a GPU server (IONN's convex hull would cut {len(rep.plan.hull)} here)."
    )
    return out
