"""The light commands, measured as whole processes: wall time, CPU time, peak RSS, and whether torch
was imported; ``pktchar profile vgg16 --res 1080p`` beside a bare ``import torch, torchvision``.

Every measurement is a fresh child process reaped with ``wait4`` (its own ru_maxrss and CPU times),
the median of ``--repeats`` runs; the cells of one round run one after another (interleaved), so a
busy machine slows every row alike. A second, untimed run of each light command, through a wrapper
that calls the same entry point as the console script, records whether ``torch`` ended up in
``sys.modules``. With ``--before COMMIT`` (default e21ca51, the commit before ``import pktchar``
became light) that commit's tree is unpacked with ``git archive`` into a temporary folder and its qos
run the same way, for the before figure; with ``--profile-before COMMIT`` (default 05d7884, the
commit before the model commands froze the collector after importing torch) that commit's profile
too. Writes its section of ``reports/benchmarks.md``.

    .venv/bin/python benchmarks/bench_light.py [--repeats 5] [--before e21ca51] [--profile-before 05d7884]
        [--no-write] [--out reports/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import REPORT, write_section

REPO = Path(__file__).resolve().parent.parent
QOS_TARGET_S, QOS_TARGET_MB = 0.5, 120.0
PROFILE_TARGET_RATIO = 1.15
PROFILE = "pktchar profile vgg16 --res 1080p"
# the bare import done the way pktchar's model commands import torch (pktchar/cli/torch_first.py): the fair
# baseline for what pktchar itself adds, since the collector pause and freeze speed up the import too
FROZEN_IMPORT = "import gc; gc.disable(); import torch; gc.freeze(); gc.enable(); import torchvision"
FROZEN_LABEL = "the same import, torch with the collector paused then frozen (as pktchar does)"

# Runs pktchar's console entry point (pktchar.cli.app:main, as the `pktchar` script does) or a module's
# __main__, then, if asked, tells a file whether torch was imported by the time the command ended.
WRAPPER = r"""
import os, sys
report = os.environ.pop("PKTCHAR_BENCH_TORCH_FILE", "")
if report:
    import atexit
    atexit.register(lambda: open(report, "w").write("1" if "torch" in sys.modules else "0"))
kind, target, *args = sys.argv[1:]
if kind == "module":
    import runpy
    sys.argv = [target, *args]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["pktchar", *args]
    try:
        from pktchar.cli.app import main
    except ImportError:  # a tree from before the CLI became a package (pktchar/cli.py)
        from pktchar.cli import main
    sys.exit(main())
"""


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> tuple[float, float, float, int]:
    """Run argv, reaped with wait4: (wall s, CPU s (user + system), peak RSS MB, exit code)."""
    t = time.perf_counter()
    cwd = env["PYTHONPATH"] if env else REPO  # `python -c` puts the working folder first on sys.path
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env)
    deadline = t + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, proc.returncode
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return time.perf_counter() - t, 0.0, 0.0, -9
        time.sleep(0.005)


def write_pcap(path: Path, frames: int = 4, payload: int = 1000) -> None:
    """A small Ethernet pcap, as tcpdump writes it: ``frames`` UDP datagrams 10.0.0.1 -> 10.0.0.2:5201,
    each an application frame header (wire.FRAME layout, 24 B) and ``payload`` zero bytes."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for i in range(frames):
        app = struct.pack("!IHHQQ", i, 0, 0, payload, 1_000_000 * i) + bytes(payload)
        udp = struct.pack("!HHHH", 40000, 5201, 8 + len(app), 0) + app
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, b"\n\0\0\1", b"\n\0\0\2")
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        eth = b"\x02\0\0\0\0\2" + b"\x02\0\0\0\0\1" + b"\x08\x00" + ip + udp
        out.append(struct.pack("<IIII", 1_700_000_000, 1000 * i, len(eth), len(eth)) + eth)
    path.write_bytes(b"".join(out))


def _ip_checksum(header: bytes) -> int:
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def light_cases(pcap: Path) -> list[tuple[str, list[str]]]:
    """(label, WRAPPER arguments) of each command that needs no model."""
    return [
        ("pktchar --help", ["cli", "-", "--help"]),
        (
            "pktchar qos --payload 270kB --latency 15ms",
            ["cli", "-", "qos", "--payload", "270kB", "--latency", "15ms"],
        ),
        (f"pktchar compare {pcap.name}", ["cli", "-", "compare", str(pcap)]),
        ("pktchar testbed clean --help", ["cli", "-", "testbed", "clean", "--help"]),
        ("python -m pktchar.testbed.endpoint --help", ["module", "pktchar.testbed.endpoint", "--help"]),
    ]


def env_for(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.pop("PKTCHAR_BENCH_TORCH_FILE", None)
    return env


def torch_imported(args: list[str], env: dict[str, str]) -> tuple[bool | None, int]:
    """(whether the command imported torch, its exit code), from one untimed run."""
    with tempfile.NamedTemporaryFile("r", suffix=".torch") as f:
        proc = subprocess.run(
            [sys.executable, "-c", WRAPPER, *args],
            env={**env, "PKTCHAR_BENCH_TORCH_FILE": f.name},
            cwd=env["PYTHONPATH"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=300,
        )
        text = Path(f.name).read_text().strip()
    return (text == "1") if text else None, proc.returncode


def median_row(runs: list[tuple[float, float, float, int]]) -> dict:
    ok = [r for r in runs if r[3] in (0,)]
    if not ok:
        return {"error": f"exit code {runs[0][3]}"}
    return {
        "wall_s": statistics.median(r[0] for r in ok),
        "cpu_s": statistics.median(r[1] for r in ok),
        "rss_mb": statistics.median(r[2] for r in ok),
        "runs": len(ok),
    }


def before_tree(commit: str, dest: Path) -> Path:
    """``commit``'s tree unpacked into ``dest`` (git archive: no worktree to clean up)."""
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True)
    dest.mkdir()
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each cell, the median (default: 5)")
    ap.add_argument("--before", default="e21ca51", help="Commit to measure qos on too ('' to skip)")
    ap.add_argument(
        "--profile-before", default="05d7884", help="Commit to measure profile vgg16 on too ('' to skip)"
    )
    ap.add_argument(
        "--redesign-before",
        default="1720f92",
        help="Commit before the layered redesign (issue 17): qos and profile measured on it too ('' to skip)",
    )
    ap.add_argument("--no-write", action="store_true", help="Print only; leave reports/benchmarks.md alone")
    ap.add_argument("--out", type=Path, default=REPORT, help="results file (default: reports/benchmarks.md)")
    a = ap.parse_args()

    py = [sys.executable, "-c", WRAPPER]
    env = env_for(REPO)
    with tempfile.TemporaryDirectory(prefix="pktchar-bench-light-") as tmp:
        pcap = Path(tmp) / "small.pcap"
        write_pcap(pcap)
        cases = light_cases(pcap)
        profile_args = ["cli", "-", "profile", "vgg16", "--res", "1080p"]
        cells: dict[str, tuple[list[str], dict[str, str]]] = {
            label: (py + args, env) for label, args in cases
        }
        cells[PROFILE] = (py + profile_args, env)
        cells['python -c "import torch, torchvision"'] = (
            [sys.executable, "-c", "import torch, torchvision"],
            env,
        )
        cells[FROZEN_LABEL] = ([sys.executable, "-c", FROZEN_IMPORT], env)
        if a.before:
            old = before_tree(a.before, Path(tmp) / "before")
            qos = cases[1]
            cells[f"{qos[0]} (at {a.before})"] = (py + qos[1], env_for(old))
        if a.profile_before:
            old_p = before_tree(a.profile_before, Path(tmp) / "profile-before")
            cells[f"{PROFILE} (at {a.profile_before})"] = (py + profile_args, env_for(old_p))

        if a.redesign_before:
            old_r = before_tree(a.redesign_before, Path(tmp) / "redesign-before")
            for label, args in ((cases[1][0], cases[1][1]), (PROFILE, profile_args)):
                cells[f"{label} (at {a.redesign_before})"] = (py + args, env_for(old_r))

        runs: dict[str, list] = {k: [] for k in cells}
        for _ in range(a.repeats):  # interleaved rounds: load on the machine hits every cell alike
            for label, (argv, e) in cells.items():
                runs[label].append(run_measured(argv, e))
        rows = {label: median_row(r) for label, r in runs.items()}
        torch_seen = {label: torch_imported(args, env) for label, args in cases}
        if a.before:
            torch_seen[f"{cases[1][0]} (at {a.before})"] = torch_imported(cases[1][1], env_for(old))

    text = report(rows, torch_seen, a)
    print(text)
    if not a.no_write:
        write_section("light", text, a.out)
    heavy = [k for k, v in torch_seen.items() if (v[0] or v[1] != 0) and "(at " not in k]
    if heavy:
        sys.exit(f"bench_light: imported torch or failed: {', '.join(heavy)}")


def report(
    rows: dict[str, dict], torch_seen: dict[str, tuple[bool | None, int]], a: argparse.Namespace
) -> str:
    def cell(r: dict) -> str:
        if "error" in r:
            return f"failed ({r['error']}) | | "
        return f"{r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['rss_mb']:.0f}"

    lines = [
        "## Light commands (whole processes)",
        "",
        f"`benchmarks/bench_light.py`: each cell the median of {a.repeats} fresh processes, run interleaved "
        "(one of each per round); wall and CPU (user + system) time and peak RSS from `wait4`. The machine "
        "is shared: where wall and CPU disagree, other processes took turns on the cores, and the CPU "
        "column is the steadier figure. "
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}.",
        "",
        "| command | wall s | CPU s | peak RSS MB | imports torch |",
        "|---|---:|---:|---:|---|",
    ]
    for label, r in rows.items():
        seen = torch_seen.get(label)
        mark = "" if seen is None else ("**yes**" if seen[0] else "no") if seen[0] is not None else "?"
        lines.append(f"| `{label}` | {cell(r)} | {mark} |")
    lines.append("")
    qos = rows["pktchar qos --payload 270kB --latency 15ms"]
    verdicts = []
    if "error" not in qos:
        ok = qos["wall_s"] < QOS_TARGET_S and qos["rss_mb"] < QOS_TARGET_MB
        verdicts.append(
            f"- qos: {qos['wall_s']:.2f} s, {qos['rss_mb']:.0f} MB against the targets "
            f"< {QOS_TARGET_S} s and < {QOS_TARGET_MB:.0f} MB: **{'met' if ok else 'NOT met'}**."
        )
        old = next((v for k, v in rows.items() if k.endswith(f"(at {a.before})")), None) if a.before else None
        if old and "error" not in old:
            verdicts.append(
                f"- qos before (commit {a.before}, when `import pktchar` imported torch): "
                f"{old['wall_s']:.2f} s, {old['rss_mb']:.0f} MB; now {old['wall_s'] / qos['wall_s']:.1f}x "
                f"faster and {old['rss_mb'] / qos['rss_mb']:.0f}x less memory."
            )
    light_torch = [k for k, v in torch_seen.items() if v[0] and "(at " not in k]
    verdicts.append(
        "- torch imported by a light command: "
        + (", ".join(f"`{k}`" for k in light_torch) if light_torch else "none (every one checked)")
        + "."
    )
    prof, bare = rows[PROFILE], rows['python -c "import torch, torchvision"']
    if "error" not in prof and "error" not in bare:
        ratio, cpu_ratio = prof["wall_s"] / bare["wall_s"], prof["cpu_s"] / bare["cpu_s"]
        verdicts.append(
            f"- `pktchar profile vgg16 --res 1080p` / bare `import torch, torchvision`: wall {ratio:.2f}x "
            f"({prof['wall_s'] - bare['wall_s']:+.2f} s), CPU {cpu_ratio:.2f}x; target <= {PROFILE_TARGET_RATIO}x: "
            f"**{'met' if ratio <= PROFILE_TARGET_RATIO else 'NOT met'}**."
        )
    old_p = rows.get(f"{PROFILE} (at {a.profile_before})") if a.profile_before else None
    if old_p and "error" not in old_p and "error" not in bare:
        verdicts.append(
            f"- the same before the collector freeze (commit {a.profile_before}): {old_p['wall_s']:.2f} s wall, "
            f"{old_p['wall_s'] / bare['wall_s']:.2f}x the bare import (CPU {old_p['cpu_s'] / bare['cpu_s']:.2f}x)."
        )
    verdicts += redesign_verdicts(rows, a.redesign_before)
    fair = rows[FROZEN_LABEL]
    if "error" not in prof and "error" not in fair:
        verdicts.append(
            f"- against the import done as pktchar does it (torch with the collector paused, then frozen): "
            f"wall {prof['wall_s'] / fair['wall_s']:.2f}x ({prof['wall_s'] - fair['wall_s']:+.2f} s), "
            f"CPU {prof['cpu_s'] / fair['cpu_s']:.2f}x: what pktchar's own work (typer and its pydantic, "
            "rich, the meta build and trace, rendering) adds."
        )
    notes = [
        "",
        "Where a model command's time goes besides the import (`python -X importtime`, cProfile, gc.callbacks): "
        "the cyclic collector's full collections walking the millions of objects torch makes, during the "
        "import and after it, are what `pktchar/cli/torch_first.py` removes (torch imported with the collector "
        "paused, then `gc.freeze()`); what is left is typer (which imports pydantic to coerce every "
        "option), rich (import and table rendering), pktchar's own modules, and the meta build and trace "
        "(about 0.015 s for vgg16 at 1080p). The zoo lookup (under 2 ms), pandas and matplotlib (not "
        "imported) cost nothing here; torchvision's models are imported by the bare import too.",
    ]
    return "\n".join(lines + verdicts + notes)


def redesign_verdicts(rows: dict[str, dict], commit: str) -> list[str]:
    """The light commands before the layered redesign (``commit``) and now: CPU time, the steadier figure
    on a shared machine, with wall time beside it; "no slower" allows the 5% a median of 5 wanders here."""
    out = []
    for label in ("pktchar qos --payload 270kB --latency 15ms", PROFILE):
        old, new = rows.get(f"{label} (at {commit})") if commit else None, rows[label]
        if not old or "error" in old or "error" in new:
            continue
        ok = new["cpu_s"] <= old["cpu_s"] * 1.05
        out.append(
            f"- `{label}` before the layered redesign (commit {commit}) and now: CPU {old['cpu_s']:.2f} -> "
            f"{new['cpu_s']:.2f} s, wall {old['wall_s']:.2f} -> {new['wall_s']:.2f} s, peak RSS "
            f"{old['rss_mb']:.0f} -> {new['rss_mb']:.0f} MB: **{'no slower' if ok else 'SLOWER'}**."
        )
    return out


if __name__ == "__main__":
    main()
