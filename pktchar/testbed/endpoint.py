"""The two ends of a replay, run inside their namespaces as ``python -m pktchar.testbed.endpoint``.

The wire format (frame header, UDP fragment header, answer) is :mod:`pktchar.core.wire`'s. The
endpoints import nothing heavier than the standard library.

The receiver prints ``READY`` once it listens, then one JSON line a frame; the
sender prints one JSON line a frame and, if the peer dies, an ``error`` line
(the frames before it stay measured).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

from ..core.wire import ANSWER, FLAG_CALIBRATION, FLAG_LAST, FRAGMENT, IP_HEADER, UDP_HEADER
from ..core.wire import FRAME as HEADER

IP_UDP = IP_HEADER[4] + UDP_HEADER
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def now() -> int:
    return time.monotonic_ns()


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _recv_exact(sock: socket.socket, view: memoryview, flags: int = 0) -> None:
    """Fill ``view``. With ``MSG_WAITALL`` the kernel returns only when all of it is in (or on a signal
    or close), so a 1 MB frame costs a few system calls, not one per arriving segment."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:], len(view) - got, flags)
        if n == 0:
            raise ConnectionError(f"peer closed after {got} of {len(view)} bytes")
        got += n


def _send_all(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    """Send ``parts`` back to back with ``sendmsg`` (gather: no concatenated copy of the frame), again
    from where the kernel stopped when it took only part (a socket with a timeout can)."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        n = sock.sendmsg(views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def _buffer(sock: socket.socket, which: str, size: int) -> None:
    """Socket buffer of ``size``: the FORCE option (root, which the testbed is) passes
    net.core.{r,w}mem_max; without it the plain option, capped by those limits."""
    force, plain = (
        (SO_RCVBUFFORCE, socket.SO_RCVBUF) if which == "RCV" else (SO_SNDBUFFORCE, socket.SO_SNDBUF)
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)


def _bind(sock: socket.socket, bind: str, port: int) -> bool:
    try:
        sock.bind((bind, port))
    except OSError as e:
        emit({"error": f"cannot listen on {bind}:{port}: {e.strerror}"})
        return False
    return True


# ----------------------------------------------------------------------------------------------
# receiver (edge)


def receive_tcp(port: int, bind: str, forever: bool = False) -> int:
    """Receive frames, answer each; return after the sender's last frame. ``forever`` (``pktchar
    serve``): keep serving, every connection on its own thread, so a fleet of senders is served at once."""
    import threading

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # A receive window that is open from the first frame: with a small early window Linux sends
    # window probes, fragments that split segments mid-frame. Set before listen, so the SYN-ACK
    # carries the window scale (accepted sockets inherit it).
    _buffer(srv, "RCV", 32 << 20)
    if not _bind(srv, bind, port):
        return 2
    srv.listen(64)
    print("READY", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if forever:
            threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()
        elif _serve_connection(conn):
            return 0


def _serve_connection(conn: socket.socket) -> bool:
    """Frames of one connection, each answered; True when the sender's last (non-calibration) frame came."""
    with conn:
        hdr = bytearray(HEADER.size)
        buf = bytearray(1 << 20)
        while True:
            try:
                _recv_exact(conn, memoryview(hdr))
            except ConnectionError:
                return False
            first = now()
            fid, split, flags, length, sent = HEADER.unpack(hdr)
            if len(buf) < length:
                buf = bytearray(length)
            try:
                _recv_exact(conn, memoryview(buf)[:length], socket.MSG_WAITALL)
            except ConnectionError as e:
                emit({"error": f"frame {fid}: {e}"})
                return False
            done = now()
            try:
                conn.sendall(ANSWER.pack(fid, first, done))
            except OSError:
                return False
            emit({"id": fid, "split": split, "flags": flags, "len": length, "send_ns": sent, "first_ns": first,
                  "done_ns": done})  # fmt: skip
            if flags & FLAG_LAST and not flags & FLAG_CALIBRATION:  # the sender's last frame
                return True


def receive_udp(port: int, bind: str) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _buffer(sock, "RCV", 32 << 20)  # a burst of datagrams must not overflow the socket
    if not _bind(sock, bind, port):
        return 2
    print("READY", flush=True)
    frames: dict[int, dict] = {}
    while True:
        data, addr = sock.recvfrom(65536)
        t = now()
        fid, idx, count = FRAGMENT.unpack_from(data)
        f = frames.setdefault(fid, {"parts": {}, "first": t})
        f["parts"][idx] = bytes(data[FRAGMENT.size :])
        if len(f["parts"]) == count:
            app = b"".join(f["parts"][i] for i in range(count))
            _, split, flags, length, sent = HEADER.unpack_from(app)
            sock.sendto(ANSWER.pack(fid, f["first"], t), addr)
            emit(
                {
                    "id": fid,
                    "split": split,
                    "flags": flags,
                    "len": length,
                    "send_ns": sent,
                    "first_ns": f["first"],
                    "done_ns": t,
                    "complete": len(app) - HEADER.size == length,
                }
            )
            del frames[fid]
            if flags & FLAG_LAST and not flags & FLAG_CALIBRATION:
                return 0


# ----------------------------------------------------------------------------------------------
# sender (device)


class Frames:
    """The payloads to send, built one at a time (a frame can be hundreds of MB): frame i is the
    next ``sizes[i]`` bytes of the real coded data, repeated where the data is shorter."""

    def __init__(self, payload_file: Path, sizes: list[int]) -> None:
        self.data = payload_file.read_bytes() or b"\0"
        self.sizes = sizes
        self.offsets = []
        pos = 0
        for sz in sizes:
            self.offsets.append(pos)
            pos = (pos + sz) % len(self.data)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> bytes | memoryview:
        size, start = self.sizes[i], self.offsets[i]
        if start + size <= len(self.data):  # one stretch of the data: a view, no copy
            return memoryview(self.data)[start : start + size]
        out = bytearray()
        while len(out) < size:
            take = min(size - len(out), len(self.data) - start)
            out += self.data[start : start + take]
            start = 0
        return bytes(out)

    def largest(self) -> int:
        return max(self.sizes, default=0)


def _pace(t0: int, i: int, fps: float | None) -> None:
    """Hold frame ``i`` until its slot at ``fps`` (a late frame goes at once)."""
    if fps:
        wait = t0 + int(i * 1e9 / fps) - now()
        if wait > 0:
            time.sleep(wait / 1e9)


def _emit_answer(ans: bytearray, length: int, sent: int) -> None:
    """One JSON line for a frame the edge answered: its send time, the edge's first and last byte, and
    when the answer was back here."""
    back = now()
    fid, first, done = ANSWER.unpack(ans)
    emit({"id": fid, "len": length, "send_ns": sent, "first_ns": first, "done_ns": done, "answer_ns": back})


def send_tcp(
    host: str,
    port: int,
    frames: Frames,
    fps: float | None,
    split: int,
    calib: bool,
    start_at: int | None = None,
) -> int:
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        emit({"error": f"cannot connect to {host}:{port}: {e.strerror or e}"})
        return 3
    sock.settimeout(120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A whole frame must fit in the send buffer: when a send waits for buffer space, Linux pushes the
    # partly filled segment even under TCP_CORK, and the wire would show extra short segments.
    _buffer(sock, "SND", min(max(4 << 20, 2 * (frames.largest() + HEADER.size)), 256 << 20))
    ans = bytearray(ANSWER.size)
    t0 = now() if start_at is None else start_at  # a fleet's senders share one start instant
    if start_at is not None and start_at > now():
        time.sleep((start_at - now()) / 1e9)
    for i in range(len(frames)):
        payload = frames[i]
        _pace(t0, i, fps)
        flags = (FLAG_CALIBRATION if calib else 0) | (FLAG_LAST if i == len(frames) - 1 else 0)
        sent = now()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)  # only full segments but the last
            _send_all(sock, [HEADER.pack(i, split, flags, len(payload), sent), payload])
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            _recv_exact(sock, memoryview(ans))
        except (OSError, ConnectionError) as e:
            emit({"error": f"peer lost during frame {i}: {e}", "frame": i})
            return 4
        _emit_answer(ans, len(payload), sent)
    sock.close()
    return 0


def send_udp(
    host: str, port: int, frames: Frames, fps: float | None, split: int, mtu: int, calib: bool
) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 << 10)  # back-pressure before the qdisc drops
    sock.connect((host, port))
    chunk = mtu - IP_UDP - FRAGMENT.size
    ans = bytearray(ANSWER.size)
    t0 = now()
    for i in range(len(frames)):
        payload = frames[i]
        _pace(t0, i, fps)
        sent = now()
        app = memoryview(
            HEADER.pack(
                i,
                split,
                (FLAG_CALIBRATION if calib else 0) | (FLAG_LAST if i == len(frames) - 1 else 0),
                len(payload),
                sent,
            )
            + payload
        )
        count = (len(app) + chunk - 1) // chunk
        try:
            for k in range(count):
                sock.sendmsg([FRAGMENT.pack(i, k, count), app[k * chunk : (k + 1) * chunk]])
            sock.settimeout(max(5.0, len(app) * 8 / 1e6))
            n = sock.recv_into(ans)
        except TimeoutError:
            emit({"error": f"no answer to frame {i} (datagrams lost?)", "frame": i})
            return 4
        except OSError as e:
            emit({"error": f"peer lost during frame {i}: {e}", "frame": i})
            return 4
        if n == ANSWER.size:
            _emit_answer(ans, len(payload), sent)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pktchar.testbed.endpoint")
    sub = ap.add_subparsers(dest="role", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--bind", default="0.0.0.0")
    r.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    s = sub.add_parser("send")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    s.add_argument("--payload", type=Path, required=True, help="real coded bytes to send")
    s.add_argument("--sizes", required=True, help="JSON list of payload bytes a frame")
    s.add_argument("--fps", type=float, default=None)
    s.add_argument("--split", type=int, default=0)
    s.add_argument("--mtu", type=int, default=1500)
    s.add_argument("--calibration", action="store_true")
    s.add_argument("--start-at", type=int, default=None, help="CLOCK_MONOTONIC ns at which frame 0 is due")
    a = ap.parse_args(argv)
    try:
        if a.role == "recv":
            return receive_tcp(a.port, a.bind) if a.proto == "tcp" else receive_udp(a.port, a.bind)
        frames = Frames(a.payload, json.loads(Path(a.sizes).read_text()))
        if a.proto == "tcp":
            return send_tcp(a.host, a.port, frames, a.fps, a.split, a.calibration, a.start_at)
        return send_udp(a.host, a.port, frames, a.fps, a.split, a.mtu, a.calibration)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
