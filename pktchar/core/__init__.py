"""The core layer: units, resolutions, dtypes, wire formats, packetization, tbf shaping, QoS, radio
carriers and the fleet's packet-level model. No torch and no command-line flags; everything above
imports from here, nothing here imports from above."""
