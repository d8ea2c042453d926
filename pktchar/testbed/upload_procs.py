"""The two ends of an incremental model upload (IONN, Jeong et al., SoCC 2018), run inside their
namespaces as ``python -m pktchar.testbed.upload_procs edge|device|profile``. Real compute: these
processes import torch.

Connections (separate, as in IONN): *upload* (device -> edge: one frame a partition, the edge answers
each build with an :data:`~pktchar.core.wire.ANSWER` naming the last partition it built) and *query*
(device -> edge: a frame with a JSON head and the input tensor; edge -> device: a frame with the
tensor at the end of the offloaded prefix).

Edge threads: *upload* receives partitions; in ``sequential`` mode it also builds each one before it
reads the next (the old system: building stalls the upload); in ``parallel`` mode a *create* thread
builds while the upload goes on, merging every partition that arrived during a build into one build
(the new system); an *execute* thread serves queries with what is built. Every event is one JSON line
on stdout (CLOCK_MONOTONIC ns, shared by all namespaces).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..core.wire import ANSWER, FLAG_LAST, FRAME
from .endpoint import _buffer, _recv_exact, emit, now

LEN4 = 4


def _recv_frame(sock: socket.socket) -> tuple[int, int, int, bytearray, int, int]:
    hdr = bytearray(FRAME.size)
    _recv_exact(sock, memoryview(hdr))
    first = now()
    fid, split, flags, length, sent = FRAME.unpack(hdr)
    buf = bytearray(length)
    _recv_exact(sock, memoryview(buf))
    return fid, flags, sent, buf, first, now()


def _send_frame(sock: socket.socket, fid: int, flags: int, payload: bytes | bytearray | memoryview) -> int:
    sent = now()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)  # full segments but the last
    sock.sendall(FRAME.pack(fid, 0, flags, len(payload), sent))
    sock.sendall(payload)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    return sent


def _head_and_tensor(head: dict[str, Any], t: Any) -> bytes:
    h = json.dumps({**head, "shape": list(t.shape)}).encode()
    return len(h).to_bytes(LEN4, "big") + h + t.contiguous().numpy().tobytes()


def _parse_head(buf: bytearray) -> tuple[dict[str, Any], Any]:
    import torch

    n = int.from_bytes(buf[:LEN4], "big")
    head = json.loads(bytes(buf[LEN4 : LEN4 + n]))
    t = torch.frombuffer(buf[LEN4 + n :], dtype=torch.float32).reshape(head["shape"])
    return head, t


def _setup(model: str, res: str, threads: int) -> tuple[Any, Any]:
    import torch

    torch.set_num_threads(threads)
    from ..core.resolution import parse_resolution

    r = parse_resolution(res)
    return torch, r


# ----------------------------------------------------------------------------------------------
# edge


def edge(a: argparse.Namespace) -> int:
    torch, r = _setup(a.model, a.res, a.threads)
    from ..model import partition as P
    from ..model import zoo

    plan = json.loads(Path(a.plan).read_text())
    ranges = [tuple(x) for x in plan["ranges"]]
    skeleton = P.chain(zoo.build(zoo.resolve(a.model), device="meta"), a.model)
    shapes = plan["point_shapes"]  # the tensor shape at every chain point
    built: list[tuple[int, int, Any]] = []  # (start point, end point, module), in order
    lock = threading.Lock()
    arrived: list[tuple[int, bytes]] = []  # partitions received and not yet built
    cond = threading.Condition(lock)
    state = {"received": 0, "done": False}
    up_srv = _listen(a.upload_port, a.bind, force_rcvbuf=False)
    q_srv = _listen(a.query_port, a.bind, force_rcvbuf=True)
    if up_srv is None or q_srv is None:
        return 2
    print("READY", flush=True)
    up, _ = up_srv.accept()
    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_build(items: list[tuple[int, bytes]]) -> None:
        ids = [i for i, _ in items]
        a0, b0 = ranges[ids[0]][0], ranges[ids[-1]][1]
        t0 = now()
        mod = P.build(skeleton, a0, b0, [s for _, s in items], shapes[a0])
        t1 = now()
        with lock:
            built.append((a0, b0, mod))
        up.sendall(ANSWER.pack(ids[-1], t0, t1))
        emit(
            {
                "event": "build",
                "ids": ids,
                "start_ns": t0,
                "end_ns": t1,
                "thread": threading.current_thread().name,
            }
        )

    def creator() -> None:
        while True:
            with cond:
                while not arrived and not state["done"]:
                    cond.wait()
                if not arrived:
                    return
                items = list(arrived)
                arrived.clear()
            do_build(items)

    create_thread = threading.Thread(target=creator, name="create", daemon=True)
    if a.mode == "parallel":
        create_thread.start()

    def execute() -> None:
        conn, _ = q_srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                fid, flags, sent, buf, first, done = _recv_frame(conn)
            except ConnectionError:
                return
            head, x = _parse_head(buf)
            k = int(head["plan"])  # run the first k partitions
            t0 = now()
            with lock:
                mods = [m for s, e, m in built if e <= ranges[k - 1][1]]
                covered = max((e for s, e, m in built if e <= ranges[k - 1][1]), default=0)
            if covered != ranges[k - 1][1]:
                emit({"event": "error", "error": f"query {fid} asks for plan {k}, not built"})
                return
            with torch.no_grad():
                y = x
                for m in mods:
                    y = m(y)
            t1 = now()
            _send_frame(conn, fid, 0, _head_and_tensor({"edge_ns": t1 - t0}, y))
            emit({"event": "query", "id": fid, "plan": k, "first_ns": first, "done_ns": done, "run_ns": t1 - t0,
                  "len": len(buf)})  # fmt: skip

    exec_thread = threading.Thread(target=execute, name="execute", daemon=True)
    exec_thread.start()
    while True:
        try:
            fid, flags, sent, buf, first, done = _recv_frame(up)
        except ConnectionError:
            break
        emit(
            {
                "event": "partition",
                "id": fid,
                "len": len(buf),
                "send_ns": sent,
                "first_ns": first,
                "done_ns": done,
            }
        )
        desc, state_bytes = P.unpack(buf)
        if a.mode == "sequential":
            do_build([(fid, state_bytes)])
        else:
            with cond:
                arrived.append((fid, state_bytes))
                cond.notify()
        if flags & FLAG_LAST:
            break
    with cond:
        state["done"] = True
        cond.notify()
    if a.mode == "parallel":
        create_thread.join()
    emit({"event": "upload-done", "t_ns": now()})
    exec_thread.join()
    return 0


def _listen(port: int, bind: str, force_rcvbuf: bool) -> socket.socket | None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if force_rcvbuf:
        _buffer(srv, "RCV", 32 << 20)
    try:
        srv.bind((bind, port))
    except OSError as e:
        emit({"error": f"cannot listen on {bind}:{port}: {e.strerror}"})
        return None
    srv.listen(2)
    return srv


# ----------------------------------------------------------------------------------------------
# device


def device(a: argparse.Namespace) -> int:
    torch, r = _setup(a.model, a.res, a.threads)
    from ..model import partition as P
    from ..model import zoo
    from ..model.codec import load_images

    plan = json.loads(Path(a.plan).read_text())
    ranges = [tuple(x) for x in plan["ranges"]]
    blobs = Path(a.blobs).read_bytes()
    sizes = plan["sizes"]
    torch.manual_seed(0)
    net = zoo.build(zoo.resolve(a.model), device="cpu").eval()
    ch = P.chain(net, a.model)
    tails = {k: ch.module(ranges[k - 1][1], ch.units).eval() for k in range(1, len(ranges))}
    images, _ = load_images(a.images, (r.height, r.width), limit=8)
    slow = _device_cpu(a.dilate, lambda: net(images[0].unsqueeze(0)))
    try:
        up = socket.create_connection((a.edge, a.upload_port), timeout=30)
        q = socket.create_connection((a.edge, a.query_port), timeout=30)
    except OSError as e:
        emit({"error": f"cannot connect to the edge {a.edge}: {e.strerror or e}"})
        return 3
    for s in (up, q):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(None)
    _buffer(up, "SND", min(max(4 << 20, 2 * max(sizes) + FRAME.size), 256 << 20))
    built = {"k": 0, "done_ns": 0}
    errors: list[str] = []

    def notices() -> None:
        ans = bytearray(ANSWER.size)
        while built["k"] < len(ranges):
            try:
                _recv_exact(up, memoryview(ans))
            except (OSError, ConnectionError) as e:
                errors.append(f"edge lost during the upload: {e}")
                return
            last, t0, t1 = ANSWER.unpack(ans)
            built["k"] = last + 1
            emit(
                {"event": "built", "upto": last + 1, "build_start_ns": t0, "build_end_ns": t1, "t_ns": now()}
            )
        built["done_ns"] = now()

    def upload() -> None:
        off = 0
        for i, n in enumerate(sizes):
            try:
                sent = _send_frame(
                    up, i, FLAG_LAST if i == len(sizes) - 1 else 0, memoryview(blobs)[off : off + n]
                )
            except OSError as e:
                errors.append(f"edge lost while uploading partition {i}: {e}")
                return
            emit({"event": "sent", "id": i, "len": n, "send_ns": sent, "queued_ns": now()})
            off += n

    nt = threading.Thread(target=notices, name="notices", daemon=True)
    ut = threading.Thread(target=upload, name="upload", daemon=True)
    t_start = now()
    emit({"event": "start", "t_ns": t_start})
    nt.start()
    ut.start()
    after = 0
    qid = 0
    while not errors:
        complete = built["k"] == len(ranges)
        if complete and after >= a.queries_after:
            break
        k = built["k"]
        x = images[qid % len(images)].unsqueeze(0)
        t0 = now()
        up_b = down_b = 0
        edge_ns = 0
        with torch.no_grad():
            if k == 0:
                with slow():
                    y = net(x)
                    top1 = int(y.argmax())
            else:
                with slow():
                    payload = _head_and_tensor({"plan": k}, x)
                try:
                    _send_frame(q, qid, 0, payload)
                    fid, flags, sent, buf, first, done = _recv_frame(q)
                except (OSError, ConnectionError) as e:
                    errors.append(f"edge lost during query {qid}: {e}")
                    break
                with slow():
                    head, mid = _parse_head(buf)
                    y = tails[k](mid) if k < len(ranges) else mid
                    top1 = int(y.argmax())
                edge_ns = head["edge_ns"]
                up_b, down_b = len(payload), len(buf)
        t1 = now()
        emit({"event": "query", "id": qid, "plan": k, "start_ns": t0, "end_ns": t1, "up_bytes": up_b,
              "down_bytes": down_b, "edge_ns": edge_ns, "top1": top1})  # fmt: skip
        qid += 1
        if complete:
            after += 1
    ut.join()
    if errors:
        emit({"error": errors[0]})
        return 4
    q.close()
    up.close()
    return 0


def _device_cpu(fraction: float | None, warm_up: Any) -> Any:
    """A context factory for the device's compute: a time dilation to ``fraction`` of a core, learned on
    ``warm_up()`` run three times at full speed (:mod:`.dilate`); without a fraction, nothing (a cgroup
    quota, if any, is set from outside)."""
    import contextlib

    if not fraction:
        return contextlib.nullcontext
    import torch

    from .dilate import Dilation

    dil = Dilation(fraction)
    with torch.no_grad(), dil.learning():
        for _ in range(3):
            warm_up()
    return lambda: dil


# ----------------------------------------------------------------------------------------------
# profile: per-unit times on this side (run as the device: dilated, or under its CPU quota)


def profile(a: argparse.Namespace) -> int:
    torch, r = _setup(a.model, a.res, a.threads)
    from ..model import partition as P
    from ..model import zoo

    torch.manual_seed(0)
    net = zoo.build(zoo.resolve(a.model), device="cpu").eval()
    ch = P.chain(net, a.model)
    x = torch.randn(1, 3, r.height, r.width)
    whole = ch.module(0, ch.units).eval()  # the same modules, so what the warm-up learns applies
    slow = _device_cpu(a.dilate, lambda: whole(x))
    t0 = time.perf_counter()
    times, sizes = P.unit_times(ch, x, repeats=a.repeats, around=slow)
    emit({"unit_s": times, "point_bytes": sizes, "seconds": time.perf_counter() - t0})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pktchar.testbed.upload_procs")
    sub = ap.add_subparsers(dest="role", required=True)
    for name in ("edge", "device", "profile"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
        s.add_argument("--res", required=True)
        s.add_argument("--threads", type=int, default=1)
        if name != "edge":
            s.add_argument(
                "--dilate", type=float, default=None
            )  # the device's fraction of a core, by dilation
        if name != "profile":
            s.add_argument("--plan", required=True)
            s.add_argument("--upload-port", type=int, default=5301)
            s.add_argument("--query-port", type=int, default=5302)
    sub.choices["edge"].add_argument("--mode", choices=("sequential", "parallel"), required=True)
    sub.choices["edge"].add_argument("--bind", default="0.0.0.0")
    sub.choices["device"].add_argument("--edge", required=True)
    sub.choices["device"].add_argument("--blobs", required=True)
    sub.choices["device"].add_argument("--queries-after", type=int, default=10)
    sub.choices["device"].add_argument("--images", default=None)
    sub.choices["profile"].add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    try:
        return {"edge": edge, "device": device, "profile": profile}[a.role](a)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
