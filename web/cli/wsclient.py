"""The WebSocket client the CLI (and the test suite) uses: simple-websocket's, minus a lost first message.

simple-websocket 1.1's ``Client`` reads the handshake answer with one ``recv`` and takes only its first event
from it; when the server's first message (our snapshot) arrived in the same read, it stays in wsproto's buffer
until more bytes come, which on a quiet server may be never. Handling the buffered events right after the
handshake delivers it at once."""
from __future__ import annotations

from simple_websocket import Client as _Client


class Client(_Client):
    def handshake(self) -> None:
        super().handshake()
        self.connected = self._handle_events()


def connect(url: str, **kw: object) -> Client:
    return Client.connect(url, **kw)  # type: ignore[return-value]
