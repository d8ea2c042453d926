"""The ``pktchar`` commands, one module a group; :mod:`pktchar.cli.app` registers them."""
