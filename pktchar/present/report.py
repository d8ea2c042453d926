"""Reports: markdown, standalone LaTeX (+ table fragments), PNG/PDF figures and JSON, from one data set.

Layout of a report folder::

    report.md          what was analysed and how, tables, figures embedded
    report.tex         standalone document (booktabs), compiles with pdflatex
    report.json        every number in the report
    tables/*.tex       each table alone, to \\input in a paper
    figures/*.png|pdf  each figure twice

Tables go through :mod:`pktchar.present.render` (the same renderers ``profile`` and
``table`` use); figures come from :mod:`pktchar.present.figures`.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import PktcharError
from ..core.packets import Transport
from ..core.qos import DEFAULT_RELIABILITY, FIVEQI_SOURCE, RELIABILITY_SOURCE, Requirements, requirements
from ..core.radio import Carrier
from ..core.resolution import Resolution, parse_resolution
from ..core.units import human_duration, human_number, human_per, human_rate
from ..model.codec import Coding, Measured
from ..model.profiler import Profile, Split, profile
from ..model.table import PAPER_NAME, PacketTable, codings_for, packet_table
from . import figures, views
from .render import TEX_PREAMBLE, Column, Table, tex_command, tex_escape, to_latex, to_markdown
from .views import carried_text


@dataclass
class ReportData:
    models: list[str]
    resolutions: list[Resolution]
    dtype: str
    codings: dict[str, Coding]
    transport: Transport
    latency: float | None
    fps: float | None
    link: float | None
    profiles: dict[tuple[str, str], Profile]
    table: PacketTable
    chosen: dict[str, str]  # model -> split whose flow is detailed
    flows: dict[tuple[str, str], Requirements]
    command: str
    created: str
    versions: dict[str, str]
    notes: list[str] = field(default_factory=list)
    carrier: Carrier | None = None
    reliability: float | None = None


def default_split(p: Profile) -> Split:
    """The cheapest split strictly inside the network (not full offload, not fully local)."""
    inner = p.splits[1:-1] or p.splits
    return min(inner, key=lambda s: (s.bytes, s.index))


def default_folder(models: Sequence[str], resolutions: Sequence[Resolution]) -> Path:
    """Where a report of ``models`` x ``resolutions`` goes unless told: ``reports/<models>-<resolutions>``
    (a model given as ``path/file.py:factory`` with ``/`` and ``:`` as ``_``)."""
    names = "-".join(m.replace("/", "_").replace(":", "_") for m in models)
    return Path("reports") / f"{names}-{'-'.join(r.label for r in resolutions)}"


def parse_splits(text: str | None, models: Sequence[str]) -> str | dict[str, str] | None:
    """The split whose flow a report details: one name for every model, or ``model=split,model=split``
    (each model one of ``models``); ``None``: each model's :func:`default_split`."""
    if not text or "=" not in text:
        return text
    pairs = [x.split("=", 1) for x in text.split(",") if x.strip()]
    bad = [p[0] for p in pairs if len(p) != 2]
    if bad:
        raise PktcharError(f"`split` takes one split or model=split pairs, got {bad[0].strip()!r}")
    splits = {k.strip(): v.strip() for k, v in pairs}
    unknown = set(splits) - set(models)
    if unknown:
        raise PktcharError(f"`split` names models not in the report: {', '.join(sorted(unknown))}")
    return splits


def collect(
    models: Sequence[str],
    resolutions: Sequence[str],
    *,
    dtype: str = "fp32",
    compression: float | None = None,
    measured: dict[str, Measured] | None = None,
    transport: Transport | None = None,
    latency: float | None = None,
    fps: float | None = None,
    link: float | None = None,
    split: str | dict[str, str] | None = None,
    command: str | None = None,
    progress: Callable[[Sequence[Any]], Any] | None = None,
    carrier: Carrier | None = None,
    reliability: float | None = None,
) -> ReportData:
    """Profile every model at every resolution and derive everything a report shows."""
    if latency is None and fps is None:
        fps = 30.0
    transport = transport or Transport()
    ress = [parse_resolution(r) for r in resolutions]
    codings = codings_for(models, dtype, compression, measured)
    profiles: dict[tuple[str, str], Profile] = {}
    jobs = [(m, r) for m in models for r in ress]
    for m, r in progress(jobs) if progress else jobs:
        profiles[(m, r.label)] = profile(m, r, dtype=dtype)
    table = packet_table(
        models,
        ress,
        dtype=dtype,
        compression=compression,
        measured=measured,
        transport=transport,
        latency=latency,
        fps=fps,
        profiles=profiles,
        carrier=carrier,
        reliability=reliability,
    )
    chosen: dict[str, str] = {}
    flows: dict[tuple[str, str], Requirements] = {}
    wanted = split if isinstance(split, dict) else dict.fromkeys(models, split) if split else {}
    for m in models:
        p0 = profiles[(m, ress[0].label)]
        name = p0.split(wanted[m]).after if wanted.get(m) else default_split(p0).after
        chosen[m] = name
        for r in ress:
            s = profiles[(m, r.label)].split(name)
            flows[(m, r.label)] = requirements(
                codings[m].split_bytes(s),
                latency=latency,
                fps=fps,
                transport=transport,
                link=link,
                carrier=carrier,
                reliability=reliability,
            )
    import torch
    import torchvision

    return ReportData(
        models=list(models),
        resolutions=ress,
        dtype=dtype,
        codings=codings,
        transport=transport,
        latency=latency,
        fps=fps,
        link=link,
        carrier=carrier,
        reliability=reliability,
        profiles=profiles,
        table=table,
        chosen=chosen,
        flows=flows,
        command=command or shlex.join(["pktchar", *sys.argv[1:]]),
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        versions={
            "pktchar": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        },
    )


# ----------------------------------------------------------------------------------------------
# Tables of a report


def splits_across_resolutions(d: ReportData, model: str) -> Table:
    """One row a split point: device MACs at the first resolution, coded payload at every resolution."""
    ps = [d.profiles[(model, r.label)] for r in d.resolutions]
    coding = d.codings[model]
    cols = [Column("index", "#", "int"), Column("after", "split after")]
    cols += [Column(f"payload_{r.label}", f"payload @{r.label}", "bytes") for r in d.resolutions]
    cols += [
        Column("device_macs", f"device MACs @{d.resolutions[0].label}", "int"),
        Column("device_params", "device params", "int"),
    ]
    rows = []
    for i, s in enumerate(ps[0].splits):
        row: dict[str, Any] = {
            "index": s.index,
            "after": s.after,
            "device_macs": s.device_macs,
            "device_params": s.device_params,
        }
        for r, p in zip(d.resolutions, ps, strict=True):
            row[f"payload_{r.label}"] = coding.split_bytes(p.splits[i])
        rows.append(row)
    return Table(
        f"{model}: coded payload per split point", cols, rows, caption=f"coding: {coding.describe()}"
    )


def flows_table(d: ReportData) -> Table:
    cols = [
        Column("model", "model"),
        Column("res", "input"),
        Column("split", "split after"),
        Column("payload", "payload", "bytes"),
        Column("packets", "packets", "int"),
        Column("wire_bytes", "wire bytes", "bytes"),
        Column("rate_bps", "rate (3GPP)", "rate"),
        Column("ip_rate_bps", "IP rate", "rate"),
        Column("pdb", "PDB"),
        Column("per", "PER"),
        Column("burst", "burst per PDB (IP)", "bytes"),
        Column("resource", "resource type"),
    ]
    carrier = next(iter(d.flows.values())).carrier if d.flows else None
    if carrier is not None:
        cols += [Column("carried", f"carried by {carrier.name}")]
    if d.link is not None:
        cols += [
            Column("serialization", "serialization"),
            Column("max_fps", "max fps", "float"),
            Column("fits_link", "fits link"),
        ]
    cols += [Column("fiveqi", "5QIs that fit")]
    rows = []
    for m in d.models:
        for r in d.resolutions:
            q = d.flows[(m, r.label)]
            row: dict[str, Any] = {
                "model": m,
                "res": r.label,
                "split": d.chosen[m],
                "payload": q.payload,
                "packets": q.packets.count,
                "wire_bytes": q.packets.wire_bytes,
                "rate_bps": round(q.rate_payload),
                "ip_rate_bps": round(q.rate_ip),
                "pdb": human_duration(q.latency),
                "per": human_per(q.per),
                "burst": q.burst,
                "resource": q.resource,
                "carried": carried_text(q),
                "fiveqi": ", ".join(map(str, q.fitting)) or "none",
            }
            if d.link is not None:
                row |= {
                    "serialization": human_duration(q.serialization or 0),
                    "max_fps": q.max_fps,
                    "fits_link": "yes" if q.fits_link else "no",
                }
            rows.append(row)
    return Table("Requirements of the chosen split", cols, rows, caption=_budget_text(d))


def _budget_text(d: ReportData) -> str:
    parts = []
    if d.fps is not None:
        parts.append(f"{human_number(d.fps)} frames/s")
    if d.latency is not None:
        parts.append(f"latency budget {human_duration(d.latency)}")
    elif d.fps is not None:
        parts.append(f"latency budget {human_duration(1 / d.fps)} (the frame interval)")
    if d.link is not None:
        parts.append(f"link {human_rate(d.link)}")
    if d.carrier is not None and d.carrier.layer == "ip":
        parts.append(f"radio {d.carrier.name} {human_rate(d.carrier.rate)} ({d.carrier.source})")
    if d.reliability is not None:
        parts.append(f"reliability {human_number(d.reliability, 6)}")
    else:
        parts.append(f"reliability {human_number(DEFAULT_RELIABILITY, 6)} ({RELIABILITY_SOURCE})")
    return f"{', '.join(parts)}; {d.transport.describe()}; 5QIs per {FIVEQI_SOURCE}"


# ----------------------------------------------------------------------------------------------
# Writing


def _setup_lines(d: ReportData) -> list[tuple[str, str]]:
    codings = {c.describe() for c in d.codings.values()}
    return [
        ("command", d.command),
        ("created", d.created),
        ("versions", ", ".join(f"{k} {v}" for k, v in d.versions.items())),
        ("models", ", ".join(f"{m} ({d.profiles[(m, d.resolutions[0].label)].source})" for m in d.models)),
        ("resolutions", ", ".join(f"{r.label} ({r.height}x{r.width})" for r in d.resolutions)),
        ("payload coding", "; ".join(sorted(codings))),
        ("weights", "sizes need none (meta tensors); measured coders state theirs above"),
        ("transport", d.transport.describe()),
        ("flow", _budget_text(d)),
    ]


def write(d: ReportData, out: str | Path, *, force: bool = False) -> dict[str, Path]:
    """Write the report folder; refuse to overwrite a non-empty folder unless ``force``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise PktcharError(f"{out} exists and is not empty: choose another `out` or pass `force`")
        for sub in ("figures", "tables"):
            shutil.rmtree(out / sub, ignore_errors=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)

    figs: list[tuple[str, str, Any]] = []  # (file stem, caption, Figure)
    for m in d.models:
        ps = [d.profiles[(m, r.label)] for r in d.resolutions]
        figs.append(
            (
                f"payload_{m}",
                f"{m}: coded payload at every split point for each input resolution (log "
                "scale); dashed lines are the maximum data burst volumes of the delay-critical GBR 5QIs"
                + ("; the red line is what the link carries in one frame interval." if d.link else "."),
                figures.payload_along_network(
                    m, ps, d.codings[m], link=d.link, interval=(1 / d.fps) if d.fps else d.latency
                ),
            )
        )
        figs.append(
            (
                f"tradeoff_{m}",
                f"{m}: device-side MACs against payload at every split point.",
                figures.macs_vs_payload(m, ps, d.codings[m]),
            )
        )
        r0 = d.resolutions[-1]
        q = d.flows[(m, r0.label)]
        figs.append(
            (
                f"packets_{m}",
                f"{m}: IP packet sizes of one frame after {d.chosen[m]} at {r0.label}.",
                figures.packet_sizes(f"{m} after {d.chosen[m]} at {r0.label}", q.packets),
            )
        )
    figs.append(
        (
            "packet_table",
            "The packet-size table as a heat map: min and max payload over the split points.",
            figures.packet_table_heatmap(d.table),
        )
    )
    for stem, _, fig in figs:
        fig.savefig(out / "figures" / f"{stem}.png", dpi=130)
        fig.savefig(out / "figures" / f"{stem}.pdf")

    grid = views.packet_grid(d.table)
    long = views.packet_long(d.table)
    comparison = views.paper_comparison(d.table)
    flows = flows_table(d)
    split_tables = {m: splits_across_resolutions(d, m) for m in d.models}
    tables: list[tuple[str, Table]] = [("packet_table", grid), ("packet_table_exact", long)]
    if comparison is not None:
        tables.append(("paper_comparison", comparison))
    tables.append(("flows", flows))
    tables += [(f"splits_{m}", t) for m, t in split_tables.items()]
    for stem, t in tables:
        (out / "tables" / f"{stem}.tex").write_text(_tex_table(t, stem))

    (out / "report.md").write_text(_markdown(d, grid, long, comparison, flows, split_tables, figs))
    (out / "report.tex").write_text(_latex(d, tables, figs))
    (out / "report.json").write_text(json.dumps(to_json(d), indent=2))
    return {"md": out / "report.md", "tex": out / "report.tex", "json": out / "report.json", "dir": out}


def _tex_table(t: Table, stem: str) -> str:
    return to_latex(t, label=f"tab:{stem}")


def _markdown(
    d: ReportData,
    grid: Table,
    long: Table,
    comparison: Table | None,
    flows: Table,
    split_tables: dict[str, Table],
    figs: list[tuple[str, str, Any]],
) -> str:
    title = f"pktchar report: {', '.join(d.models)} at {', '.join(r.label for r in d.resolutions)}"
    out = [f"# {title}", "", "## What was analysed, and how", ""]
    out += [f"- **{k}**: `{v}`" if k == "command" else f"- **{k}**: {v}" for k, v in _setup_lines(d)]
    out += ["", f"## Packet-size table ({PAPER_NAME}, Table 1 layout)", "", to_markdown(grid, heading="###")]
    out += [f"![{figs[-1][1]}](figures/{figs[-1][0]}.png)", ""]
    out += [to_markdown(long, heading="###")]
    if comparison is not None:
        out += [to_markdown(comparison, heading="###")]
    out += ["## Requirements and 5QI fits", "", to_markdown(flows, heading="###")]
    for m in d.models:
        out += [f"## {m}", ""]
        for stem, caption, _ in figs:
            if stem.endswith(f"_{m}"):
                out += [f"![{caption}](figures/{stem}.png)", "", f"*{caption}*", ""]
        out += [to_markdown(split_tables[m], heading="###")]
    return "\n".join(out) + "\n"


def _tex_value(key: str, value: str) -> str:
    """A setup value for LaTeX; the command as typed, in typewriter type."""
    return tex_command(value) if key == "command" else tex_escape(value)


def _latex(d: ReportData, tables: list[tuple[str, Table]], figs: list[tuple[str, str, Any]]) -> str:
    title = tex_escape(
        f"pktchar report: {', '.join(d.models)} at {', '.join(r.label for r in d.resolutions)}"
    )
    lines = [
        *TEX_PREAMBLE,
        rf"\title{{{title}}}",
        rf"\date{{{tex_escape(d.created)}}}",
        r"\begin{document}",
        r"\maketitle",
        r"\section*{What was analysed, and how}",
        r"{\raggedright",  # a long command breaks at its spaces instead of running into the margin
        r"\begin{itemize}",
    ]
    lines += [rf"\item \textbf{{{tex_escape(k)}}}: {_tex_value(k, v)}" for k, v in _setup_lines(d)]
    lines += [r"\end{itemize}", "}", r"\section*{Tables}"]
    for stem, _ in tables:
        lines.append(rf"\input{{tables/{stem}.tex}}")
        lines.append(r"\clearpage" if stem.startswith("splits_") else "")
    lines.append(r"\section*{Figures}")
    for stem, caption, _ in figs:
        lines += [
            r"\begin{figure}[H]",
            r"\centering",
            rf"\includegraphics[width=\linewidth,height=0.42\textheight,keepaspectratio]{{figures/{stem}.pdf}}",
            rf"\caption{{{tex_escape(caption)}}}",
            r"\end{figure}",
        ]
    lines.append(r"\end{document}")
    return "\n".join(x for x in lines if x is not None) + "\n"


def to_json(d: ReportData) -> dict[str, Any]:
    return {
        "command": d.command,
        "created": d.created,
        "versions": d.versions,
        "models": d.models,
        "resolutions": [{"label": r.label, "height": r.height, "width": r.width} for r in d.resolutions],
        "dtype": d.dtype,
        "coding": {m: c.describe() for m, c in d.codings.items()},
        "measured": {
            m: {
                "coder": c.measured.coder,
                "overall": c.measured.overall,
                "ratios": c.measured.ratios,
                "measure_res": c.measured.measure_res,
                "weights": c.measured.weights,
                "images": c.measured.images,
            }
            for m, c in d.codings.items()
            if c.measured is not None
        },
        "transport": d.transport.describe(),
        "latency_s": d.latency,
        "fps": d.fps,
        "link_bps": d.link,
        "packet_table": d.table.to_dict(),
        "chosen_split": d.chosen,
        "flows": [
            {"model": m, "res": r, "split": d.chosen[m], **q.to_dict()} for (m, r), q in d.flows.items()
        ],
        "profiles": [
            {**p.to_dict(), "coded_bytes": [d.codings[m].split_bytes(s) for s in p.splits]}
            for (m, _), p in d.profiles.items()
        ],
    }
