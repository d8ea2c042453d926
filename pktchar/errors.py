"""Errors pktchar reports to users as one clear line (never a traceback)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PktcharError(Exception):
    """An error caused by the user's input or environment, reported as one line."""


class UnknownModelError(PktcharError):
    pass


class ResolutionError(PktcharError):
    pass


class ModelRejectsInput(PktcharError):
    pass


def close_matches(word: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """Close spellings of ``word`` among ``choices`` (case-insensitive)."""
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(lower), n=n, cutoff=0.6)
    # Prefix/substring hits help for e.g. "resnet" -> resnet18, resnet50 ...
    extra = [c for c in choices if word.lower() in c.lower() and c.lower() not in found]
    out = [lower[f] for f in found] + extra
    seen: list[str] = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return seen[:n]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    m = close_matches(word, choices)
    return f" Did you mean: {', '.join(m)}?" if m else ""
