"""Resumable uploads over the API: chunks at the upload's offset (a wrong one is a 409 saying where to resume),
the six hashes computed as the bytes arrive (also when the next chunk reaches another web process), the file
published under its name only when complete and sound; an HTML page, a pickle named .safetensors or a wrong
SHA256 leave nothing under the name; a cancelled or abandoned upload leaves nothing once cleaned."""
from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.hygiene import clean_stale_partials
from shared.media.hashing import hash_file
from shared.services import Services
from shared.store.layout import StoreLayout
from tests.test_safetensors_kind import LORA_SDXL, sparse_safetensors

MIB = 1024 * 1024
OCTETS = "application/offset+octet-stream"


def _safetensors(size: int) -> bytes:
    header = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}' % (size, size)
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + os.urandom(size)


@pytest.fixture
def store(settings: Settings) -> Path:
    StoreLayout(settings.store).ensure_default_dirs()
    return settings.store


def _create(client: Any, **body: Any) -> Any:
    body = {"folder": "loras", "filename": "up.safetensors", **body}
    return client.post("/api/v1/uploads", json=body)


def _chunk(client: Any, upload_id: str, offset: int, data: bytes) -> Any:
    return client.patch(f"/api/v1/uploads/{upload_id}", data=data, content_type=OCTETS,
                        headers={"Upload-Offset": str(offset)})


def _hidden(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("."))


def test_a_chunked_upload_resumes_on_another_process(settings: Settings, store: Path, app: Any) -> None:
    from web import create_app
    data = _safetensors(3 * MIB + 123)
    first, second = app.test_client(), create_app(settings).test_client()
    # Given an upload into a subfolder
    got = _create(first, subfolder="styles/new", size=len(data))
    assert got.status_code == 201, got.get_json()
    up = got.get_json()
    assert (up["relpath"], up["offset"], up["size"]) == ("styles/new/up.safetensors", 0, len(data))
    target = store / "loras" / "styles" / "new" / "up.safetensors"
    # When the first MiB arrives, nothing is under the model's name yet: only a hidden partial
    assert _chunk(first, up["id"], 0, data[:MIB]).get_json()["offset"] == MIB
    assert not target.exists() and len(_hidden(target.parent)) == 1
    # A chunk at the wrong offset is refused with where to resume
    wrong = _chunk(first, up["id"], 0, data[:MIB])
    assert wrong.status_code == 409 and wrong.get_json()["error"]["details"] == {"offset": MIB}
    # After a lost connection the client asks where it stands, and goes on through another web process
    assert second.get(f"/api/v1/uploads/{up['id']}").get_json()["offset"] == MIB
    assert _chunk(second, up["id"], MIB, data[MIB:2 * MIB]).get_json()["offset"] == 2 * MIB
    done = _chunk(first, up["id"], 2 * MIB, data[2 * MIB:])
    assert done.status_code == 200, done.get_json()
    model = done.get_json()["model"]
    # Then the file is published whole, with every hash right, and listed
    assert target.read_bytes() == data and _hidden(target.parent) == []
    assert model["sha256"] == hash_file(target)["SHA256"] and model["relpath"] == "styles/new/up.safetensors"
    detail = first.get("/api/v1/models/loras/0/styles/new/up.safetensors").get_json()
    assert detail["hashes"] == hash_file(target)
    assert first.get(f"/api/v1/uploads/{up['id']}").status_code == 404  # finished


@pytest.mark.parametrize("case", ["html", "pickle", "sha256"])
def test_bad_files_leave_nothing_under_the_name(client: Any, store: Path, case: str) -> None:
    data = {"html": b"<!DOCTYPE html><html>" + b" " * 1000,
            "pickle": pickle.dumps({"w": list(range(400))}, protocol=4),
            "sha256": _safetensors(2000)}[case]
    up = _create(client, size=len(data), sha256="A" * 64 if case == "sha256" else None).get_json()
    got = _chunk(client, up["id"], 0, data)
    expected = {"html": (400, "html_instead_of_model"), "pickle": (422, "invalid_model"),
                "sha256": (422, "hash_mismatch")}[case]
    assert (got.status_code, got.get_json()["error"]["code"]) == expected, got.get_json()
    assert not (store / "loras" / "up.safetensors").exists() and _hidden(store / "loras") == []
    assert client.get(f"/api/v1/uploads/{up['id']}").status_code == 404


def test_refusals_at_the_door(client: Any, store: Path, settings: Settings) -> None:
    (store / "loras" / "taken.safetensors").write_bytes(b"x")
    cases = [
        ({"filename": "taken.safetensors", "size": 10}, 409, "conflict"),
        ({"filename": "x.txt", "size": 10}, 400, "invalid_request"),
        ({"filename": "../x.safetensors", "size": 10}, 400, None),
        ({"filename": "x.safetensors", "size": "10"}, 400, "invalid_request"),
        ({"filename": "x.safetensors", "size": 0}, 400, "invalid_request"),
        ({"filename": "x.safetensors", "size": settings.upload_max_bytes + 1}, 413, "file_too_large"),
        ({"filename": "x.safetensors", "size": 10, "subfolder": "../../etc"}, 400, "invalid_path"),
        ({"filename": "x.safetensors", "size": 10, "folder": "nope"}, 400, "invalid_request"),
        ({"filename": "x.safetensors", "size": 10, "sha256": "abc"}, 400, "invalid_request"),
        ({"filename": "x.safetensors", "size": 10, "colour": 1}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        got = _create(client, **body)
        assert got.status_code == status, (body, got.get_json())
        assert code is None or got.get_json()["error"]["code"] == code, (body, got.get_json())
    up = _create(client, filename="ok.safetensors", size=100).get_json()
    for headers, data, status in (({"Upload-Offset": "-1"}, b"x", 400), ({"Upload-Offset": "0"}, b"x" * 101, 400),
                                  ({}, b"x", 400)):
        got = client.patch(f"/api/v1/uploads/{up['id']}", data=data, content_type=OCTETS, headers=headers)
        assert got.status_code == status, (headers, got.get_json())
    assert client.patch(f"/api/v1/uploads/{up['id']}", data=b"x", content_type="text/plain",
                        headers={"Upload-Offset": "0"}).status_code == 415
    assert client.get("/api/v1/uploads/" + "0" * 32).status_code == 404
    # Cancelled: its partial goes
    assert client.delete(f"/api/v1/uploads/{up['id']}").status_code == 204
    assert _hidden(store / "loras") == [] and not (store / "loras" / "ok.safetensors").exists()


def test_an_abandoned_upload_is_cleaned(client: Any, store: Path, settings: Settings) -> None:
    data = _safetensors(MIB)
    up = _create(client, size=len(data)).get_json()
    _chunk(client, up["id"], 0, data[:1000])
    assert len(_hidden(store / "loras")) == 1
    # The library never lists it
    assert client.get("/api/v1/models?folder=loras").get_json()["total"] == 0
    # When the hygiene pass runs after the age limit, the partial is gone
    services = Services.build(settings.replace(stale_partial_s=0))
    assert clean_stale_partials(services) == 1
    assert _hidden(store / "loras") == []


def test_inspect_suggests_the_folder(client: Any, tmp_path: Path) -> None:
    path = tmp_path / "l.safetensors"
    sparse_safetensors(path, LORA_SDXL)
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    got = client.post("/api/v1/uploads/inspect", data=head, content_type="application/octet-stream").get_json()
    assert got == {"kind": "LoRA", "family": "SDXL 1.0", "folder": "loras"}
    assert client.post("/api/v1/uploads/inspect", data=io.BytesIO(b"junk").read(),
                       content_type="application/octet-stream").get_json()["kind"] is None


def test_cli_upload_suggests_the_folder_and_resumes(served: str, store: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import cli.upload
    from cli import main
    monkeypatch.setattr(cli.upload, "_STATE", tmp_path / "cache" / "uploads.json")
    monkeypatch.setattr(cli.upload, "CHUNK", 1024 * 1024)
    path = tmp_path / "xl_style.safetensors"
    sparse_safetensors(path, {**LORA_SDXL, "pad": [2 * MIB]})  # 4 MiB of weights: four chunks
    # Given an upload the server stopped taking after its first chunk
    real = cli.upload.ApiClient.request
    calls = []

    def flaky(self: Any, method: str, route: str, **kw: Any) -> Any:
        if method == "PATCH":
            calls.append(route)
            if len(calls) == 2:
                from cli.client import ApiError
                raise ApiError(0, "unreachable", "connection lost")
        return real(self, method, route, **kw)

    monkeypatch.setattr(cli.upload.ApiClient, "request", flaky)
    assert main(["upload", str(path), "--subfolder", "styles"]) == 1
    assert "a LoRA for SDXL 1.0, into loras" in capsys.readouterr().err
    # When the same command runs again, it resumes where the server stands and publishes the file
    assert main(["upload", str(path), "--subfolder", "styles"]) == 0
    out, err = capsys.readouterr()
    assert "resuming at 1.0MB" in err
    target = store / "loras" / "styles" / "xl_style.safetensors"
    assert out == f"uploaded loras/styles/xl_style.safetensors sha256 {hash_file(target)['SHA256']}\n"
    assert target.read_bytes() == path.read_bytes()
