"""The bytes pktchar puts on a link, defined once: the testbed's application framing and the
Ethernet/IP/TCP/UDP header sizes that packetization, the endpoints, compare and the Wireshark
dissector all share. Standard library only: the endpoint processes import it.

Application framing (all big-endian):

* frame header, :data:`FRAME` (24 B): frame id u32, split id u16, flags u16, payload length u64,
  send time u64 (CLOCK_MONOTONIC ns, which every network namespace of one machine shares);
* UDP only, before every datagram's chunk, :data:`FRAGMENT` (12 B): frame id, fragment index,
  fragment count (u32 each): application-level fragmentation, never IP fragments;
* the edge's answer to each frame, :data:`ANSWER` (20 B): frame id u32, time the first byte
  arrived u64, time the last byte arrived u64.
"""

from __future__ import annotations

import struct

FRAME = struct.Struct("!IHHQQ")
FRAGMENT = struct.Struct("!III")
ANSWER = struct.Struct("!IQQ")
# the fields of FRAME, in order, as the dissector and the docs name them
FRAME_FIELDS = (("frame_id", 4), ("split", 2), ("flags", 2), ("length", 8), ("send_ns", 8))
FRAGMENT_FIELDS = (("frame_id", 4), ("index", 4), ("count", 4))
ANSWER_FIELDS = (("frame_id", 4), ("first_ns", 8), ("done_ns", 8))
FLAG_CALIBRATION = 1  # a calibration transfer, not a measured frame
FLAG_LAST = 2  # the sender's last frame: the receiver ends after answering it

FRAME_HEADER = FRAME.size  # 24
FRAGMENT_HEADER = FRAGMENT.size  # 12
ANSWER_SIZE = ANSWER.size  # 20

ETH_HEADER = 14  # what libpcap captures and tc counts: destination, source, EtherType (no FCS)
ETH_FCS = 4
ETH_MIN_FRAME = 64  # with FCS
ETH_PREAMBLE_IFG = 20  # 8 B preamble/SFD + 12 B inter-frame gap
IP_HEADER = {4: 20, 6: 40}
TCP_HEADER = 20
UDP_HEADER = 8
TCP_TIMESTAMPS = 12  # the options Linux puts on every segment by default (10 B padded to 12)
