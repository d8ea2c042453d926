"""One flow: its requirements, the 5QIs against it, the cut set of a split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..render import Column, Table
from .base import Output
from .profile import profile_title

if TYPE_CHECKING:
    from ...core.qos import Requirements
    from ...model.codec import Coding
    from ...model.profiler import Profile, Split


REQ_COLUMNS = (Column("quantity", "quantity", "text"), Column("value", "value", "text"))


def list_text(qis: list[int], none: str = "none") -> str:
    """A list that reads as a list: ``[80]`` -> ``5QI 80``, ``[80, 83]`` -> ``5QIs 80, 83``."""
    if not qis:
        return none
    return f"5QI {qis[0]}" if len(qis) == 1 else "5QIs " + ", ".join(map(str, qis))


def carrier_text(r: Requirements) -> str:
    """``imt2020-user uplink 50 Mbit/s carries 12 Mbit/s: yes (room x4.17)``."""
    from ...core.units import human_factor, human_rate

    c = r.carrier
    if c is None:
        return "no radio or link: rate not checked"
    f = r.carrier_factor or 0.0
    verdict = "yes" if r.carried else "NO"
    what = "IP" if c.layer == "ip" else "wire"
    return (
        f"{c.name} ({human_rate(c.rate)}) for {human_rate(r.needed(c.layer))} ({what}): "
        f"{verdict}, {human_factor(f)}"
    )


def nonstandard_text(r: Requirements) -> str:
    from ...core.units import human_bytes, human_duration, human_per, human_rate

    d = r.non_standardized()
    text = (
        f"resource type {d['resource']}, PDB {human_duration(r.latency)}, PER {human_per(r.per)}, "
        f"GFBR {human_rate(float(d['gfbr_bps']))}"  # type: ignore[arg-type]
    )
    if "mdbv" in d:
        text += f", MDBV {human_bytes(r.burst)} ({r.burst:,} B)"
    return text


def requirements_table(r: Requirements, title: str = "Flow requirements") -> Table:
    from ...core.units import human_bytes, human_duration, human_number, human_per, human_rate

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
        fit_text += " (on PDB, PER and MDBV; rate not checked without a radio or link)"
    rows.append(("standardized 5QIs that fit", fit_text))
    rows.append(("delay-critical GBR 5QIs that fit", list_text(r.fitting_dc_gbr)))
    if not fit:
        rows.append(("a non-standardized 5QI would need", nonstandard_text(r)))
    return Table(title, REQ_COLUMNS, [{"quantity": q, "value": v} for q, v in rows])


def fiveqi_table(r: Requirements) -> Table:

    cols = (
        Column("qi", "5QI", "int"),
        Column("resource", "type", "text"),
        Column("pdb", "PDB (ms)", "ms", digits=0),
        Column("per", "PER", "per"),
        Column("mdbv", "MDBV (B)", "int"),
        Column("services", "example services", "text"),
        Column("fits", "fits", "text"),
        Column("failing", "fails on", "text"),
        Column("reason", "why", "text"),
    )
    rows = [
        {
            "qi": f.fiveqi.qi,
            "resource": f.fiveqi.resource,
            "pdb": f.fiveqi.pdb_ms,
            "per": f.fiveqi.per,
            "mdbv": f.fiveqi.mdbv,
            "services": f.fiveqi.services,
            "fits": "yes" if f.fits else "no",
            "failing": ", ".join(f.failing),
            "reason": f.reason,
        }
        for f in r.fits
    ]
    from ...core.qos import FIVEQI_SOURCE

    caption = (
        FIVEQI_SOURCE + "; a 5QI fits when its PDB, PER, MDBV and the carrier's rate all meet the flow's"
    )
    return Table("Standardized 5QIs against this flow", cols, rows, caption=caption)


def flow_output(p: Profile, split: Split, coding: Coding, req: Requirements) -> Output:
    """One split point as a network flow: its cut set, packets and rate, and the 5QIs against it."""
    payload = req.payload
    tensors = [{"producer": t.producer, "shape": list(t.shape), "bytes": t.bytes} for t in split.tensors]
    cut = Table(
        f"Cut set after {split.after} ({profile_title(p)})",
        (
            Column("producer", "produced by", "text"),
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
