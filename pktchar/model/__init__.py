"""The model layer: torch models (the zoo), the meta-tensor profiler, payload coding, partitions for
upload and the packet-size table. The only layer that imports torch (lazily, inside functions where a
light command can reach it), and every private torch name through :mod:`.torch_compat`."""
