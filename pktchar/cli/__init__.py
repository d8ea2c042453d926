"""The ``pktchar`` command: options, one call into a stage, one view; errors in one line."""

from .app import app, main

__all__ = ["app", "main"]
