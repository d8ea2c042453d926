"""Element widths of the payload data types pktchar knows."""

from __future__ import annotations

from .errors import PktcharError, did_you_mean

DTYPE_BITS: dict[str, int] = {
    "fp32": 32,
    "fp16": 16,
    "bf16": 16,
    "int8": 8,
    "int4": 4,
}
_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "uint8": "int8",
    "qint8": "int8",
}


def check_dtype(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DTYPE_BITS:
        raise PktcharError(
            f"unknown dtype {name!r}: choose one of {', '.join(DTYPE_BITS)}.{did_you_mean(name, DTYPE_BITS)}"
        )
    return key


def nbytes(elements: int, bits: int) -> int:
    """Exact bytes of ``elements`` values of ``bits`` each, packed, rounded up to a whole byte."""
    return (elements * bits + 7) // 8
