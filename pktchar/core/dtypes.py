"""Element widths of the payload data types pktchar knows, and what a tensor weighs when sent."""

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


# Per-tensor affine quantisation sends, with the values, the parameters to undo it: an fp32 scale
# and an int32 zero point, 4 + 4 bytes a floating tensor (codec.quantize writes them first).
QUANT_PARAM_BYTES: dict[str, int] = {"int8": 8, "int4": 8}


def payload_bytes(elements: int, dtype: str, native_bits: int | None = None) -> int:
    """Bytes one tensor of ``elements`` values takes when sent at ``dtype``.

    A floating tensor (``native_bits`` None) is packed at ``dtype``'s width, plus its quantisation
    parameters for int8/int4; an integer or bool tensor (``native_bits`` its width) is sent as it is."""
    if native_bits is not None:
        return nbytes(elements, native_bits)
    return nbytes(elements, DTYPE_BITS[dtype]) + QUANT_PARAM_BYTES.get(dtype, 0)
