"""``depot web`` for real (gunicorn in a subprocess, on a free port, against the suite's redis-server): what
gunicorn refuses itself, before Flask sees it (a request line over its limit, oversized headers, a garbled
request), answers with the API's JSON error body, not gunicorn's HTML page; and a URL between gunicorn's old
default limit (4094) and the raised one (8190) reaches the API and gets its ordinary answer."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.no_500 import watch_server_log
from tests.support import VENV_BIN, base_env, free_port, wait_for


@pytest.fixture
def web_server(settings_env: dict[str, str], settings: Any, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = base_env({**settings_env, "DEPOT_WEB_PORT": str(port), "DEPOT_WEB_BIND": "127.0.0.1"})
    log_path = tmp_path / "web.log"
    watch_server_log(log_path)  # a 500 from gunicorn's app fails the test
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(VENV_BIN / "depot"), "web"], env=env, cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or
                 requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200,
                 timeout=60, what="depot web to answer")
        assert proc.poll() is None, log_path.read_text()[-3000:]
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    head, _sep, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n".encode()


def assert_json_error(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> str:
    got, headers, body = answer
    assert got == status, (got, body[:300])
    assert headers["content-type"].startswith("application/json"), (headers, body[:300])
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"], error
    return error["message"]


def test_what_gunicorn_refuses_gets_the_json_error_body(web_server: int) -> None:
    # A request line over gunicorn's limit (8190 bytes): 414 with the JSON body
    message = assert_json_error(exchange(web_server, get("/api/v1/tasks?pad=" + "x" * 9000)), 414, "uri_too_long")
    assert "8190" in message
    # A header over gunicorn's field limit: 431 with the JSON body
    assert_json_error(exchange(web_server, get("/api/v1/tasks", f"X-Pad: {'y' * 9000}\r\n")), 431,
                      "headers_too_large")
    # A request line that is not HTTP: 400 with the JSON body
    assert_json_error(exchange(web_server, b"NOT AN HTTP REQUEST\r\n\r\n"), 400, "invalid_request")
    # A URL of 6000 bytes (over gunicorn's default limit, 4094) reaches the API, which answers it as usual
    message = assert_json_error(exchange(web_server, get("/api/v1/models?q=" + "z" * 6000)), 400,
                                "invalid_request")
    assert "'q'" in message
    status, _headers, body = exchange(web_server, get("/api/v1/tasks?limit=5&pad=" + "x" * 6000))
    assert status == 200 and json.loads(body)["items"] == []
