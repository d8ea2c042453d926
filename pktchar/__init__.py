"""pktchar: packet characterization and network requirements of split deep learning.

``import pktchar`` is light (no torch): the profiler and its types load on first use, so commands
and endpoint processes that need no model never pay torch's import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .core.errors import PktcharError
from .core.resolution import Resolution, parse_resolution

if TYPE_CHECKING:
    from .model.profiler import CutTensor, Layer, Profile, Split, profile

_LAZY = {"CutTensor", "Layer", "Profile", "Split", "profile"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from .model import profiler as _profiler

        return getattr(_profiler, name)
    raise AttributeError(f"module 'pktchar' has no attribute {name!r}")


__all__ = [
    "CutTensor",
    "Layer",
    "PktcharError",
    "Profile",
    "Resolution",
    "Split",
    "__version__",
    "parse_resolution",
    "profile",
]
