"""Output, and helpers every view shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..render import Table, render, to_rich


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


def ms(x: float | None) -> float | None:
    """Seconds as milliseconds (an ``ms`` column), None kept."""
    return None if x is None else x * 1000


def mbit(x: float | None) -> float | None:
    """bit/s as Mbit/s (a ``float`` column titled in Mbit/s), None kept."""
    return None if x is None else x / 1e6
