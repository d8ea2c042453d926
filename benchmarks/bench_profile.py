"""pktchar's profile against torchinfo.summary, side by side, in one run.

Each measurement runs in a fresh child process, so its wall time and peak RSS
(``wait4``'s ru_maxrss) are its own. Written to ``reports/benchmarks.md``.

    .venv/bin/python benchmarks/bench_profile.py [--cases vgg16:224,...] [--repeats 3] [--out reports/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import write_section

REPO = Path(__file__).resolve().parent.parent
CASES = [
    ("vgg16", "224"),
    ("vgg16", "1080p"),
    ("resnet50", "224"),
    ("resnet50", "1080p"),
    ("vgg16", "8k"),
    ("resnet50", "8k"),
]

CHILD = r"""
import json, sys, time
tool, name, res = sys.argv[1:4]
import torch, torchvision.models  # imports are outside the timed step for both tools
from pktchar.core.resolution import parse_resolution
r = parse_resolution(res)
if tool == "pktchar-name":  # from the name: build on meta, trace
    import pktchar
    t = time.perf_counter()
    p = pktchar.profile(name, res)
    dt = time.perf_counter() - t
    out = {"seconds": dt, "macs": p.macs, "params": p.params, "layers": len(p.layers)}
elif tool == "pktchar":  # from a built model, the input torchinfo gets: meta copy, trace
    import pktchar, torchvision.models as tvm
    torch.manual_seed(0)
    model = tvm.get_model(name, weights=None).eval()
    t = time.perf_counter()
    p = pktchar.profile(model, res)
    dt = time.perf_counter() - t
    out = {"seconds": dt, "macs": p.macs, "params": p.params, "layers": len(p.layers)}
else:
    import torchinfo, torchvision.models as tvm
    torch.manual_seed(0)
    model = tvm.get_model(name, weights=None).eval()
    t = time.perf_counter()
    s = torchinfo.summary(model, input_size=(1, 3, r.height, r.width), verbose=0, device="cpu")
    dt = time.perf_counter() - t
    out = {"seconds": dt, "macs": int(s.total_mult_adds), "params": int(s.total_params),
           "layers": len(s.summary_list)}
print(json.dumps(out))
"""


def run_measured(argv: list[str], timeout: float = 900) -> tuple[str, float, float, int]:
    """Run argv, reaped with wait4 so its own peak RSS is known: (stdout, wall s, peak RSS MB, rc)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert proc.stdout is not None
    deadline = t + timeout
    chunks = []
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            chunks.append(proc.stdout.read())
            proc.returncode = os.waitstatus_to_exitcode(status)
            return "".join(chunks), time.perf_counter() - t, ru.ru_maxrss / 1024, proc.returncode
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return "", time.perf_counter() - t, 0.0, -9
        time.sleep(0.02)


REPEATS = 3


def measure(tool: str, name: str, res: str, repeats: int = REPEATS) -> dict:
    """The median of ``repeats`` fresh processes (step time, process time, peak RSS)."""
    runs = []
    for _ in range(repeats):
        out, wall, rss, rc = run_measured([sys.executable, "-c", CHILD, tool, name, res])
        if rc != 0 or not out.strip():
            return {"tool": tool, "model": name, "res": res, "error": "failed" if rc != -9 else "timed out"}
        runs.append({"process_s": wall, "peak_rss_mb": rss, **json.loads(out.strip().splitlines()[-1])})
    row = {"tool": tool, "model": name, "res": res, **runs[0], "repeats": repeats}
    for k in ("seconds", "process_s", "peak_rss_mb"):
        row[k] = statistics.median(r[k] for r in runs)
    return row


def torchinfo_feasible(name: str, res: str) -> tuple[bool, str]:
    """torchinfo runs a real forward pass; say so where it cannot fit or finish here."""
    import pktchar

    p = pktchar.profile(name, res)
    peak = max(a.bytes + b.bytes for a, b in zip(p.layers, p.layers[1:], strict=False))
    avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if peak > 0.5 * avail or p.macs > 2e12:
        return False, (
            f"not run: a real forward pass needs >= {peak / 1e9:.1f} GB for two adjacent activations and "
            f"{p.macs / 1e12:.1f} TMACs of CPU compute (machine: {avail / 2**30:.0f} GiB, {os.cpu_count()} cores)"
        )
    return True, ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    all_cases = ",".join(f"{name}:{res}" for name, res in CASES)
    ap.add_argument("--cases", default=all_cases, help=f"MODEL:RES,... to measure (default: {all_cases})")
    ap.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"fresh processes a figure, the median (default: {REPEATS})",
    )
    ap.add_argument(
        "--out",
        default=str(REPO / "reports" / "benchmarks.md"),
        help="results file (default: reports/benchmarks.md)",
    )
    args = ap.parse_args()
    cases = [tuple(c.split(":", 1)) for c in args.cases.split(",") if c]
    if args.repeats < 1 or any(len(c) != 2 for c in cases):
        ap.error("--cases takes MODEL:RES,... and --repeats at least 1")

    rows = []
    for name, res in cases:
        ours = measure("pktchar", name, res, args.repeats)
        ours["by_name"] = measure("pktchar-name", name, res, args.repeats)["seconds"]
        ok, why = torchinfo_feasible(name, res)
        theirs = (
            measure("torchinfo", name, res, args.repeats)
            if ok
            else {"tool": "torchinfo", "model": name, "res": res, "error": why}
        )
        rows.append((ours, theirs))
        print(
            f"{name} {res}: pktchar {ours.get('seconds', float('nan')):.3f} s, torchinfo "
            f"{theirs.get('seconds', float('nan')):.3f} s",
            file=sys.stderr,
        )

    # the whole user-facing process
    cli = str(Path(sys.executable).with_name("pktchar"))
    _, wall, rss, rc = run_measured([cli, "profile", "vgg16", "--res", "8k", "--format", "json"])

    import torch
    import torchinfo

    lines = [
        "# Benchmarks: pktchar profile vs torchinfo.summary",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
        f"Python {platform.python_version()}, torch {torch.__version__}, torchinfo {torchinfo.__version__}. "
        "Produced by `.venv/bin/python benchmarks/bench_profile.py`.",
        "",
        f"Each figure is the median of {args.repeats} fresh processes. *step* is the call itself on the same input, a "
        "model already built (random-initialised torchvision model): pktchar copies it to meta and traces it; "
        "torchinfo's `summary()` runs a real forward pass. *from the name* is `pktchar.profile(name, res)`, "
        "which builds the model on meta itself (torchinfo has no equivalent). *peak RSS* is the child's maximum "
        "resident set (the built model's weights included).",
        "",
        "| model | input | pktchar step (s) | pktchar from the name (s) | torchinfo step (s) | speed-up | "
        "pktchar peak RSS (MB) | torchinfo peak RSS (MB) | MACs pktchar | MACs torchinfo |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ours, theirs in rows:
        if "error" in theirs:
            t_s, speed, t_rss, t_macs = "—", "—", "—", theirs["error"]
        else:
            t_s = f"{theirs['seconds']:.3f}"
            speed = f"{theirs['seconds'] / ours['seconds']:.0f}x"
            t_rss = f"{theirs['peak_rss_mb']:.0f}"
            t_macs = f"{theirs['macs']:,}"
        lines.append(
            f"| {ours['model']} | {ours['res']} | {ours['seconds']:.3f} | {ours['by_name']:.3f} | {t_s} | {speed} | "
            f"{ours['peak_rss_mb']:.0f} | {t_rss} | {ours['macs']:,} | {t_macs} |"
        )
    lines += [
        "",
        "## The whole command",
        "",
        f"`pktchar profile vgg16 --res 8k --format json`: {wall:.2f} s wall, {rss:.0f} MB peak RSS, exit {rc} "
        "(targets: under 10 s and 1.5 GB).",
        "",
        "torchinfo counts MACs of the same layers by running them, so its figure cross-checks pktchar's "
        "meta-tensor count; it is slightly higher because torchinfo also counts each bias addition as a MAC "
        "(VGG-16 at 224: 13,556,712 more, exactly one per output element of its conv and linear layers), "
        "which pktchar, like fvcore and torchvision's published GFLOPS, does not.",
    ]
    write_section(
        "profile", "\n".join(lines).replace("# Benchmarks: pktchar", "## pktchar", 1), Path(args.out)
    )
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
