"""The CLI's WebSocket client gets a first message that arrives in the same read as the handshake answer (as
gunicorn often sends the snapshot), instead of leaving it buffered until the server's next message."""
from __future__ import annotations

import base64
import hashlib
import socket
import threading

from web.cli.wsclient import connect

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _server(sock: socket.socket, done: threading.Event) -> None:
    conn, _ = sock.accept()
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        snapshot = b'{"type":"snapshot","tasks":[]}'
        # The handshake answer and the first frame in one write: the client reads both at once
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + bytes((0x81, len(snapshot))) + snapshot)
        done.wait(10)  # then silence: no further bytes would flush a buffered message


def test_first_message_in_the_handshake_read_is_delivered() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    done = threading.Event()
    thread = threading.Thread(target=_server, args=(sock, done), daemon=True)
    thread.start()
    try:
        ws = connect(f"ws://127.0.0.1:{sock.getsockname()[1]}/api/v1/ws")
        try:
            assert ws.receive(timeout=3) == '{"type":"snapshot","tasks":[]}'
        finally:
            ws.close()
    finally:
        done.set()
        thread.join(10)
        sock.close()
