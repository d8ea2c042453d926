"""Errors pktchar reports to users as one clear line (never a traceback)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping


class PktcharError(Exception):
    """An error caused by the user's input or environment, reported as one line.

    Library code names what the caller gave by its field, in backticks, as the Python API spells it:
    ``PktcharError("`link` must be positive, got '0'")``. It never names a command-line flag: the
    ``pktchar`` command turns each `` `field` `` into the flag that sets it with :func:`say`, and a
    Python caller reads the field's name."""

    def __str__(self) -> str:
        return say(super().__str__(), {})


FIELD = re.compile(r"`([a-z][a-z0-9_]*)`")


def say(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with each `` `field` `` written as ``flags[field]`` (a command-line flag), or as the
    bare field name where ``flags`` has none."""
    return FIELD.sub(lambda m: flags.get(m.group(1), m.group(1)), message)


def raw(e: BaseException) -> str:
    """The message of ``e`` with its `` `field` `` marks kept (for :func:`say` with flags)."""
    return Exception.__str__(e)


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
