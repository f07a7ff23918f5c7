"""WebSocket relay: N clients on the gunicorn-served relay (gthread), events published on ``depot:events`` at a
fixed rate; delivery latency p50/p99/max and drops, next to bare Redis pub/sub latency measured in the same run.

Layout (same as machine-baselines.md §6): redis-server, ``gunicorn -k gthread -w 2 --threads 128``, the
publisher in this process, clients split over two client processes. Each event carries ``time.time_ns()`` at
publish; latency = receive time − that stamp. Drops = events a client never received (pub/sub or relay) plus
clients the relay dropped as slow (they would have got a resync). Options: ``--events N --rate R --clients C``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis as redis_lib
import requests

from bench._stack import Stack
from tests.support import base_env, free_port, wait_for

CHANNEL = "depot:events"
END = "bench-end"
PAD = "x" * 120  # events ~230 bytes, like the reference's 232-byte messages


def _event(seq: int) -> str:
    return json.dumps({"seq": seq, "task_id": "bench", "type": "progress",
                       "task": {"id": "bench", "seq": seq, "progress": {"done": seq, "total": None}, "pad": PAD,
                                "ts": time.time_ns()}})


def _publish(client: redis_lib.Redis, events: int, rate: float) -> float:
    """Publish ``events`` at ``rate``/s on a fixed schedule; returns the achieved rate."""
    t0 = time.perf_counter()
    for i in range(1, events + 1):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.publish(CHANNEL, _event(i))
    achieved = events / (time.perf_counter() - t0)
    time.sleep(2.0)
    client.publish(CHANNEL, json.dumps({"seq": 1, "task_id": END, "type": "state", "task": {"id": END, "seq": 1}}))
    return achieved


# --- bare Redis pub/sub baseline --------------------------------------------------------------------------------

def _redis_subscriber(url: str, ready: Any, out: Any) -> None:
    client = redis_lib.Redis.from_url(url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    while not pubsub.subscribed:
        pubsub.get_message(timeout=0.1)
    ready.set()
    lat: list[float] = []
    seqs = 0
    for msg in pubsub.listen():
        if msg.get("type") != "message":
            continue
        ev = json.loads(msg["data"])
        if ev["task_id"] == END:
            break
        lat.append((time.time_ns() - ev["task"]["ts"]) / 1e6)
        seqs += 1
    out.put({"lat": lat, "received": seqs, "clients": 1, "resyncs": 0, "gaps": 0})


# --- WebSocket clients ------------------------------------------------------------------------------------------

_HANDSHAKE = (b"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


class _Conn:
    """A minimal WebSocket client connection: the handshake, then unmasked server frames parsed from a buffer.
    One selector thread drives all connections of a process, so the load generator costs little CPU."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(_HANDSHAKE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        status, _, rest = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n")[0]:
            raise RuntimeError(f"handshake refused: {status[:80]!r}")
        self.buf = bytearray(rest)
        self.snapshot = False
        self.done = False
        self.lat: list[float] = []
        self.last = 0
        self.gaps = 0
        self.resync = 0

    def frames(self) -> list[tuple[int, bytes]]:
        out = []
        buf = self.buf
        while len(buf) >= 2:
            opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, pos = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + n:
                break
            out.append((opcode, bytes(buf[pos:pos + n])))
            del buf[:pos + n]
        return out

    def handle(self, opcode: int, payload: bytes, now: int) -> None:
        if opcode == 0x9:  # ping → pong (masked with a zero key, so the payload is unchanged)
            self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            return
        if opcode == 0x8:
            self.done = True
            return
        if not self.snapshot:
            self.snapshot = True
            return
        if b'"type":"resync"' in payload[:40]:
            self.resync, self.done = 1, True
            return
        if END.encode() in payload[:60]:
            self.done = True
            return
        ts = payload.find(b'"ts":')
        self.lat.append((now - int(payload[ts + 5:payload.index(b"}", ts)])) / 1e6)
        seq = int(payload[7:payload.index(b",")])  # events start with {"seq":N,
        self.gaps += seq != self.last + 1
        self.last = seq

    def pump(self) -> None:
        data = self.sock.recv(1 << 18)
        if not data:
            self.done = True
            return
        now = time.time_ns()
        self.buf += data
        for opcode, payload in self.frames():
            self.handle(opcode, payload, now)


def _ws_clients(port: int, n: int, ready: Any, out: Any) -> None:
    conns = [_Conn(port) for _ in range(n)]
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    while not all(c.snapshot for c in conns):  # every client registered with the relay
        for key, _ in sel.select(timeout=30):
            key.data.pump()
    ready.set()
    live = len(conns)
    while live:
        events = sel.select(timeout=60)
        if not events:
            break
        for key, _ in events:
            c = key.data
            c.pump()
            if c.done:
                sel.unregister(c.sock)
                c.sock.close()
                live -= 1
    out.put({"lat": [x for c in conns for x in c.lat], "received": sum(len(c.lat) for c in conns),
             "clients": n, "resyncs": sum(c.resync for c in conns), "gaps": sum(c.gaps for c in conns)})


def _run_phase(target: Any, args_list: list[tuple], publisher: redis_lib.Redis, events: int,
               rate: float) -> tuple[dict[str, Any], float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs, readies = [], []
    for args in args_list:
        ready = ctx.Event()
        p = ctx.Process(target=target, args=(*args, ready, out))
        p.start()
        procs.append(p)
        readies.append(ready)
    for r in readies:
        if not r.wait(120):
            raise RuntimeError("clients did not get ready")
    time.sleep(0.5)
    achieved = _publish(publisher, events, rate)
    merged: dict[str, Any] = {"lat": [], "received": 0, "clients": 0, "resyncs": 0, "gaps": 0}
    for _ in procs:
        part = out.get(timeout=180)
        merged["lat"] += part["lat"]
        for k in ("received", "clients", "resyncs", "gaps"):
            merged[k] += part[k]
    for p in procs:
        p.join(10)
    return merged, achieved


def _pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def _report(label: str, res: dict[str, Any], events: int, achieved: float) -> dict[str, float]:
    lat = sorted(res["lat"])
    expected = events * res["clients"]
    row = {"p50": _pct(lat, 0.50), "p99": _pct(lat, 0.99), "max": lat[-1] if lat else float("nan")}
    print(f"{label:<28} clients={res['clients']:<4} rate={achieved:6.0f}/s delivered={res['received']:,}/{expected:,} "
          f"drops={expected - res['received']:,} resyncs={res['resyncs']} seq_gaps={res['gaps']} "
          f"p50={row['p50']:.2f} ms p99={row['p99']:.2f} ms max={row['max']:.1f} ms", flush=True)
    return row


def _start_gunicorn(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    env = base_env(stack.env)
    cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "128", "-b",
           f"127.0.0.1:{port}", "--graceful-timeout", "5", "web:create_app()"]
    log = open(stack.dir / "gunicorn.log", "ab")
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parent.parent, stdout=log, stderr=log,
                            start_new_session=True)
    wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).ok, timeout=60,
             what="gunicorn to serve")
    return proc


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench ws")
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--clients", type=int, default=100)
    args = ap.parse_args(argv)
    stack = Stack()
    gunicorn = None
    try:
        publisher = stack.redis
        print(f"{args.events:,} events at {args.rate:.0f}/s; {args.clients} WebSocket clients over 2 processes; "
              f"gunicorn gthread -w 2 --threads 128", flush=True)
        base, achieved = _run_phase(_redis_subscriber, [(stack.redis_server.url,)], publisher, args.events, args.rate)
        b = _report("bare Redis pub/sub (1 sub)", base, args.events, achieved)
        port = free_port()
        gunicorn = _start_gunicorn(stack, port)
        half = args.clients // 2
        res, achieved = _run_phase(_ws_clients, [(port, half), (port, args.clients - half)], publisher, args.events,
                                   args.rate)
        w = _report("relay over WebSocket", res, args.events, achieved)
        print(f"ratio relay/bare: p50 x{w['p50'] / b['p50']:.1f}, p99 x{w['p99'] / b['p99']:.1f}; "
              f"target p99 < 100 ms: {'met' if w['p99'] < 100 else 'NOT met'}; "
              f"drops for clients that kept up: {args.events * (res['clients'] - res['resyncs']) - res['received']}",
              flush=True)
    finally:
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, 15)
            gunicorn.wait(15)
        stack.close()


if __name__ == "__main__":
    main(sys.argv[1:])
