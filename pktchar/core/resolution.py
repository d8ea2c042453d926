"""Input resolutions: presets, ``HxW`` and the source paper's "future" sizes.

Presets (height x width):

=========  ===============  ===========================================
name       H x W            note
=========  ===============  ===========================================
224        224 x 224        ImageNet crop; any bare integer N means NxN
720p       720 x 1280
1080p      1080 x 1920
4k         2160 x 3840      UHD "4K" (3840x2160)
8k         4320 x 7680      UHD "8K" (7680x4320), the Yonsei paper's state of the art
x10        13661 x 24286    10x the pixels of 8K, aspect kept (the Yonsei paper's future)
x100       43200 x 76800    100x the pixels of 8K, aspect kept
=========  ===============  ===========================================

``xN`` in general is N times the pixels of 8K with the 16:9 aspect kept:
each side is scaled by sqrt(N) and rounded to the nearest pixel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import ResolutionError

PRESETS: dict[str, tuple[int, int]] = {
    "224": (224, 224),
    "720p": (720, 1280),
    "1080p": (1080, 1920),
    "4k": (2160, 3840),
    "8k": (4320, 7680),
}
_8K = PRESETS["8k"]


@dataclass(frozen=True)
class Resolution:
    height: int
    width: int
    label: str

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def __str__(self) -> str:
        return self.label

    @property
    def hxw(self) -> str:
        return f"{self.height}x{self.width}"


def times_8k(n: float) -> tuple[int, int]:
    s = math.sqrt(n)
    return round(_8K[0] * s), round(_8K[1] * s)


def parse_resolution(text: str | int | tuple[int, int] | Resolution) -> Resolution:
    """Parse ``224``, ``720p``, ``1080p``, ``4k``, ``8k``, ``x10``, ``x100``, ``xN`` or ``HxW``."""
    if isinstance(text, Resolution):
        return text
    if isinstance(text, tuple):
        h, w = text
        return _checked(int(h), int(w), f"{h}x{w}")
    if isinstance(text, int):
        return _checked(text, text, str(text))
    raw = str(text).strip()
    t = raw.lower().replace(" ", "")
    if t in PRESETS:
        h, w = PRESETS[t]
        return Resolution(h, w, t)
    m = re.fullmatch(r"x(\d+(?:\.\d+)?)", t)
    if m:
        n = float(m.group(1))
        if n <= 0:
            raise ResolutionError(f"resolution {raw!r}: the multiple of 8K pixels must be positive")
        h, w = times_8k(n)
        return _checked(h, w, t)
    m = re.fullmatch(r"(\d+)", t)
    if m:
        n = int(m.group(1))
        return _checked(n, n, t)
    m = re.fullmatch(r"(\d+)[x\*](\d+)", t)
    if m:
        return _checked(int(m.group(1)), int(m.group(2)), t)
    raise ResolutionError(
        f"malformed resolution {raw!r}: use 224, 720p, 1080p, 4k, 8k, x10, x100 (N times 8K's pixels) "
        "or HxW such as 480x640"
    )


def _checked(h: int, w: int, label: str) -> Resolution:
    if h <= 0 or w <= 0:
        raise ResolutionError(f"resolution {label!r}: height and width must be positive")
    return Resolution(h, w, label)


def parse_resolutions(text: str) -> list[Resolution]:
    """Comma-separated list of resolutions."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ResolutionError("no resolution given")
    return [parse_resolution(p) for p in parts]
