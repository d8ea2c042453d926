"""pktchar: packet characterization and network requirements of split deep learning."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import PktcharError
from .profile import CutTensor, Layer, Profile, Split, profile
from .resolution import Resolution, parse_resolution

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
