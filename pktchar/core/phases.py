"""What a long run is doing now: the library announces phases, the command line shows them.

Library code calls :func:`phase` ("calibrating the link", "sending 20 frames", ...) and never prints.
The ``pktchar`` command shows each phase as its progress bar's description on a terminal, and as one
line on stderr (with the seconds since the command started) when stderr is not a terminal, so a long
run in a pipe or a CI log is never silent. A Python caller sees them through the standard ``logging``
module: ``logging.getLogger("pktchar.phase")`` at level INFO.
"""

from __future__ import annotations

import logging

LOGGER = "pktchar.phase"
_log = logging.getLogger(LOGGER)


def phase(text: str) -> None:
    """Announce that a run enters the phase ``text`` (a short lower-case clause)."""
    _log.info(text)
