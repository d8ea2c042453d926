"""Incremental model upload: partitions, modes, the paper's Table 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..render import Column, Table
from .base import Output, _err
from .runs import capture_line

if TYPE_CHECKING:
    from ...testbed.upload import UploadReport


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
    from ...testbed.upload import PAPER_TABLE1

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


def upload_differences(rep: UploadReport) -> list[str]:
    """A sentence on each difference from the paper's Table 1, with this run's figures."""
    from ...testbed.upload import PAPER_TABLE1

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
