"""SI units, as the papers and 3GPP use them: 1 kB = 1000 B, 1 Mbit/s = 10^6 bit/s.

Binary prefixes (KiB, MiB, GiB) are accepted on input and mean powers of 2.
"""

from __future__ import annotations

import re

from .errors import PktcharError

_SI = ["", "k", "M", "G", "T", "P", "E"]


def human_bytes(n: float, digits: int = 3) -> str:
    """``12845056`` -> ``12.8 MB`` (SI, 1 kB = 1000 B)."""
    return _human(n, "B", digits)


def human_count(n: float, digits: int = 3) -> str:
    """``15470264320`` -> ``15.5 G``."""
    return _human(n, "", digits).strip()


def human_rate(bits_per_s: float, digits: int = 3) -> str:
    return _human(bits_per_s, "bit/s", digits)


def _human(n: float, unit: str, digits: int) -> str:
    if n == 0:
        return f"0 {unit}".strip()
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    i = 0
    while n >= 1000 and i < len(_SI) - 1:
        n /= 1000.0
        i += 1
    if i == 0 and float(n).is_integer():
        return f"{sign}{int(n)} {unit}".strip()
    s = f"{n:.{digits}g}"
    if "e" in s:
        s = f"{n:.0f}"
    return f"{sign}{s} {_SI[i]}{unit}".strip()


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
}
_RATE_UNITS = {
    "bit": 1,
    "bps": 1,
    "bit/s": 1,
    "kbit": 10**3,
    "kbps": 10**3,
    "kbit/s": 10**3,
    "mbit": 10**6,
    "mbps": 10**6,
    "mbit/s": 10**6,
    "gbit": 10**9,
    "gbps": 10**9,
    "gbit/s": 10**9,
    "tbit": 10**12,
    "tbit/s": 10**12,
}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0}
_NUM = r"([-+]?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)"
SIZE_EXAMPLES = "e.g. 270kB, 1.5MB, 1000"
RATE_EXAMPLES = "e.g. 100mbit, 1gbit, 80Mbit/s"
DURATION_EXAMPLES = "e.g. 10ms, 0.5s, 250us"


def _split(text: str, what: str, expected: str) -> tuple[float, str]:
    t = str(text).strip()
    m = re.fullmatch(_NUM + r"\s*([a-zA-Zµ/]*)", t)
    if not m:
        raise PktcharError(f"malformed {what} {text!r}: expected {expected}")
    return float(m.group(1)), m.group(2)


def parse_bytes(text: str | int) -> int:
    """``270kB`` -> 270000, ``1.5MiB`` -> 1572864, ``1000`` -> 1000 (a negative size is returned as
    it is, for the caller to name the option that must be positive)."""
    if isinstance(text, int):
        return text
    v, u = _split(text, "size", f"a number of bytes with an optional unit, {SIZE_EXAMPLES}")
    key = u.lower()
    if key not in _BYTE_UNITS:
        raise PktcharError(
            f"unknown size unit {u!r} in {text!r}: use B, kB, MB, GB (SI) or KiB, MiB, GiB, {SIZE_EXAMPLES}"
        )
    return round(v * _BYTE_UNITS[key])


def _positive(
    text: str | float, what: str, units: dict[str, float], kind: str, use: str, examples: str
) -> float:
    """A positive quantity: a Python number as it is, or text as a number and one of ``units`` (the
    lower-cased unit is looked up; a missing or unknown unit is an error naming ``use``)."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        unit_words = "a unit" if kind == "rate" else f"a {kind} unit"
        v, u = _split(text, what, f"a number and {unit_words}, {examples}")
        if v <= 0:  # before the unit: "0" is a zero quantity, not a missing unit
            raise PktcharError(f"a {what} must be positive, got {text!r} ({examples})")
        key = u.lower()
        if key not in units:
            said = f"{what} {text!r} has no unit" if not u else f"unknown {kind} unit {u!r} in {text!r}"
            raise PktcharError(f"{said}: use {use} ({examples})")
        value = v * units[key]
    if value <= 0:
        raise PktcharError(f"a {what} must be positive, got {text!r} ({examples})")
    return value


def parse_rate(text: str | float) -> float:
    """``100mbit`` / ``100Mbit/s`` / ``1gbit`` -> bits per second (SI); it must be positive."""
    return _positive(text, "rate", _RATE_UNITS, "rate", "bit/s, kbit, mbit, gbit", RATE_EXAMPLES)


def parse_duration(text: str | float, what: str = "latency") -> float:
    """``15ms`` -> 0.015 (seconds); it must be positive. A number without a unit is an error that names
    the units (``15`` could be seconds or milliseconds); a Python ``float`` is taken as seconds."""
    return _positive(text, what, _TIME_UNITS, "time", "s, ms, us, ns", DURATION_EXAMPLES)


def human_duration(seconds: float, digits: int = 3) -> str:
    """``0.0333333`` -> ``33.3 ms``, ``8.55e-5`` -> ``85.5 us``, ``12.5`` -> ``12.5 s`` (no exponents)."""
    if seconds == 0:
        return "0 s"
    sign = "-" if seconds < 0 else ""
    s = abs(float(seconds))
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
        if s >= scale or unit == "ns":
            v = s / scale
            text = f"{v:.{digits}g}"
            if "e" in text:
                text = f"{v:.0f}"
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def human_number(x: float, digits: int = 3) -> str:
    """A plain decimal with ``digits`` significant digits, never an exponent: ``1358240.5`` ->
    ``1,358,240``, ``8.857`` -> ``8.86``, ``0.000123`` -> ``0.000123``."""
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    import math

    places = digits - 1 - int(math.floor(math.log10(abs(x))))
    text = f"{x:.{max(places, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def human_per(p: float) -> str:
    """A packet error rate as 3GPP writes it: ``1e-6`` -> ``10^-6``, ``2.5e-4`` -> ``2.5 x 10^-4``."""
    import math

    if p <= 0:
        return "0"
    k = int(math.floor(math.log10(p) + 1e-9))
    mant = p / 10**k
    if abs(mant - round(mant)) < 1e-6:
        mant = round(mant)
    if k == 0:
        return human_number(p)
    head = "" if mant == 1 else f"{human_number(mant)} x "
    return f"{head}10^{k}"


def human_factor(f: float) -> str:
    """How far a rate is from a capacity: ``room x2.5`` or ``short by x1,358,240`` (no exponents)."""
    if f >= 1:
        return f"room x{human_number(f)}"
    return f"short by x{human_number(1 / f)}"
