"""One split point's flow, from a profile: the split, its coding, and the requirements of its payload.

The stages the profile command chains for one split (the profile's split, the coder measured on real
activations, the coded payload, :func:`pktchar.core.qos.requirements`) as one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import PktcharError
from ..core.packets import Transport
from ..core.qos import Requirements, requirements
from .codec import Coding, Measured

if TYPE_CHECKING:
    from ..core.radio import Carrier
    from .profiler import Profile, Split


@dataclass(frozen=True)
class Flow:
    """A profile's payload as coded; with a split, that split's flow and what it requires."""

    profile: Profile
    coding: Coding
    split: Split | None = None
    requirements: Requirements | None = None


def flow_of(
    p: Profile,
    split: str | None = None,
    *,
    compression: float | None = None,
    measure: Callable[[], Measured | None] | None = None,
    latency: float | None = None,
    fps: float | None = None,
    transport: Transport | None = None,
    link: float | None = None,
    carrier: Carrier | None = None,
    reliability: float | None = None,
) -> Flow:
    """The flow of ``split`` (the name of the layer it follows) of ``p``: its coding (``compression``, a
    parametric coded/raw ratio, or what ``measure`` measures) and its requirements within the budget
    (``latency`` s and/or ``fps``) on ``link`` (bit/s) or ``carrier``. Without ``split``, the profile's
    coding alone.

    The split and the budget are checked before ``measure`` is called: measuring runs the real model."""
    chosen = p.split(split) if split else None
    if split and latency is None and fps is None:
        raise PktcharError("`split` needs a budget: `fps` 30 and/or `latency` 10ms")
    measured = measure() if measure is not None else None
    coding = Coding(dtype=p.dtype, compression=compression, measured=measured)
    if chosen is None:
        return Flow(p, coding)
    req = requirements(
        coding.split_bytes(chosen),
        latency=latency,
        fps=fps,
        transport=transport,
        link=link,
        carrier=carrier,
        reliability=reliability,
    )
    return Flow(p, coding, chosen, req)
