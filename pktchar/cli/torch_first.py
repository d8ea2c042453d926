"""``import torch`` for the command line, without the cyclic garbage collector's cost.

Importing this module imports torch with the collector paused, then moves every object that exists
at that point into the collector's permanent generation (:func:`gc.freeze`). Importing torch makes
millions of long-lived objects; with the collector on, each full collection during the import (and
after it, during the command) walks all of them again: about a third of a second of a
``pktchar profile`` run went to that, as much again as pktchar's own work. Frozen, they are never
walked again.

Only the ``pktchar`` commands that need a model import this, first thing, before anything else
imports torch: a command-line process runs one command and exits, so objects frozen here are never
missed. The library (``import pktchar``, :func:`pktchar.profile`) never imports it: freezing belongs
to the program, not to a library inside someone else's program. If torch is already imported, this
does nothing.
"""

from __future__ import annotations

import gc
import sys


def _import_torch_frozen() -> None:
    if "torch" in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        import torch  # noqa: F401
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


_import_torch_frozen()
