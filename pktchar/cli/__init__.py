"""The ``pktchar`` command: options, one call into a stage, one view; errors in one line."""

from . import commands  # noqa: F401  registers every command on app
from .app import app, main

__all__ = ["app", "main"]
