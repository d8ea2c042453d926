"""One results file for every benchmark: each script owns a section of ``reports/benchmarks.md``
between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` and replaces only that section."""

from __future__ import annotations

import re
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks.md"


def write_section(name: str, text: str, path: Path = REPORT) -> None:
    """Replace (or append) benchmark ``name``'s section of the shared results file."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)
