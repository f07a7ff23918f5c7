"""Previews: saved from sniffed bytes (JPEG named .png), embedded covers, animated GIFs kept animated, videos
kept as they are, EXIF orientation; the preview job against real Redis; the thumbnail API with ETag/304."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from shared.config import Settings
from shared.jobs import JobContext
from shared.media.imaging import MAX_FRAMES
from shared.media.thumbs import THUMB_FRAMES, Thumbnailer
from shared.previews.job import run_previews
from shared.services import Services
from shared.store.sidecar_files import find_preview, save_preview
from tests.support import wait_for


def _ctx(settings: Settings, kind: str, params: dict[str, Any]) -> tuple[JobContext, Services]:
    services = Services.build(settings)
    task, _ = services.records.create(kind, params, queue="previews")
    claim = services.records.claim(task["id"], host="testhost", worker="w1")
    return JobContext(services.records, task["id"], claim.attempt, params, "testhost"), services


def _image(fmt: str, size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30), **kw: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt, **kw)
    return out.getvalue()


def _gif(frames: int, duration: int = 40) -> bytes:
    imgs = [Image.new("RGB", (32, 32), ((i * 37) % 256, (i * 11) % 256, 255 - i % 256)) for i in range(frames)]
    out = io.BytesIO()
    imgs[0].save(out, "GIF", save_all=True, append_images=imgs[1:], duration=duration, loop=0)
    return out.getvalue()


def _model(settings: Settings, name: str = "lora.safetensors", metadata: dict[str, str] | None = None) -> Path:
    path = settings.store / "loras" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros(4, dtype=np.float32)}, str(path), metadata=metadata)
    return path


def test_jpeg_bytes_named_png_become_webp_and_old_previews_go(tmp_path: Path) -> None:
    # Given a model with an old preview and JPEG bytes that a tool saved under .preview.png
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"x")
    (tmp_path / "m.preview.png").write_bytes(_image("JPEG"))
    (tmp_path / "m.gif").write_bytes(_gif(2))
    # When it is saved as the model's preview
    saved = save_preview(model, (tmp_path / "m.preview.png").read_bytes())
    # Then one WebP preview remains
    assert saved == tmp_path / "m.webp"
    with Image.open(saved) as img:
        assert img.format == "WEBP" and img.size == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.webp"]
    assert find_preview(model) == saved


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    from PIL import ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = _image("JPEG", size=(80, 20), exif=exif.tobytes(), icc_profile=icc)
    saved = save_preview(tmp_path / "m.ckpt", data)
    with Image.open(saved) as img:
        assert img.size == (20, 80)
        assert img.info.get("icc_profile") == icc


def test_animated_gif_stays_animated_and_long_ones_are_subsampled(tmp_path: Path) -> None:
    short = save_preview(tmp_path / "a.safetensors", _gif(6))
    with Image.open(short) as img:
        assert img.format == "WEBP" and img.is_animated and img.n_frames == 6
    long = save_preview(tmp_path / "b.safetensors", _gif(300, duration=20))
    with Image.open(long) as img:
        assert img.is_animated and 1 < img.n_frames <= MAX_FRAMES
        total = 0
        for i in range(img.n_frames):
            img.seek(i)
            img.load()
            total += img.info["duration"]
    assert abs(total - 300 * 20) <= 300


def test_video_is_kept_byte_for_byte(tmp_path: Path) -> None:
    mp4 = b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 4
    saved = save_preview(tmp_path / "v.safetensors", mp4)
    assert saved.name == "v.mp4" and saved.read_bytes() == mp4
    thumb = Thumbnailer(tmp_path / "thumbs").get(saved, 128)
    assert thumb.content_type == "video/mp4" and thumb.path == saved


def test_garbage_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from shared.errors import DepotError
    with pytest.raises(DepotError) as info:
        save_preview(tmp_path / "m.safetensors", b"<html>nope</html>")
    assert info.value.code == "invalid_image"
    assert list(tmp_path.iterdir()) == []


def test_thumbnails_are_cached_by_file_size_and_mtime(tmp_path: Path) -> None:
    preview = tmp_path / "m.webp"
    preview.write_bytes(_image("WEBP", size=(800, 600)))
    thumbs = Thumbnailer(tmp_path / "thumbs")
    first = thumbs.get(preview, 128)
    with Image.open(first.path) as img:
        assert img.size == (128, 96)
    assert thumbs.get(preview, 128) == first
    assert thumbs.get(preview, 64).etag != first.etag
    preview.write_bytes(_image("WEBP", size=(400, 400)))
    import os
    os.utime(preview, ns=(1, 1))
    assert thumbs.get(preview, 128).etag != first.etag
    animated = tmp_path / "a.gif"
    animated.write_bytes(_gif(100))
    with Image.open(thumbs.get(animated, 16).path) as img:
        assert img.is_animated and img.size == (16, 16)
        assert 1 < img.n_frames <= THUMB_FRAMES


def test_thumbnail_cache_is_trimmed_least_recently_used_first(tmp_path: Path) -> None:
    # Given six cached thumbnails used at known times, in a cache limited to about four of them
    previews = []
    for i in range(6):
        p = tmp_path / f"p{i}.png"
        p.write_bytes(_image("PNG", size=(300, 200), color=(40 * i, 10, 10)))
        previews.append(p)
    probe = Thumbnailer(tmp_path / "probe")
    one = probe.get(previews[0], 128).path.stat().st_size
    thumbs = Thumbnailer(tmp_path / "thumbs", max_bytes=int(one * 4.5), check_every_s=3600)
    cached = [thumbs.get(p, 128).path for p in previews]
    for i, path in enumerate(cached):
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    # When the cache is trimmed
    removed, freed = thumbs.trim()
    # Then the least recently used went first, down to 80 % of the limit, and a trimmed one is made again
    left = [path.exists() for path in cached]
    assert removed >= 2 and freed > 0 and left[-3:] == [True, True, True] and not left[0]
    assert sum(p.stat().st_size for p in cached if p.exists()) <= thumbs.max_bytes * 0.8
    assert thumbs.get(previews[0], 128).path.exists()
    # And a new entry past the limit starts a trim by itself (no limit: never)
    auto = Thumbnailer(tmp_path / "auto", max_bytes=int(one * 1.5), check_every_s=0)
    paths = [auto.get(p, 64).path for p in previews]
    wait_for(lambda: sum(p.exists() for p in paths) < len(paths), timeout=10, what="background trim")
    assert Thumbnailer(tmp_path / "never").trim() == (0, 0)


def test_preview_job_uses_local_then_embedded_cover(settings: Settings) -> None:
    # Given one model with an embedded cover, one with a JPEG-named-PNG local preview, and one with neither
    cover = base64.b64encode(_image("PNG", color=(0, 200, 0))).decode()
    _model(settings, "covered.safetensors", {"ssmd_cover_images": json.dumps([cover])})
    local = _model(settings, "local.safetensors")
    (local.parent / "local.preview.png").write_bytes(_image("JPEG"))
    _model(settings, "thumbspec.safetensors", {"modelspec.thumbnail": "data:image/png;base64," + cover})
    ctx, services = _ctx(settings, "preview", {"folder": "loras", "source": "embedded"})
    # When the embedded-only job runs, then the two models with covers get WebP previews
    result = run_previews(ctx, services)
    by_name = {f["model"]["relpath"]: f for f in result["files"]}
    assert by_name["covered.safetensors"]["source"] == "embedded"
    assert by_name["thumbspec.safetensors"]["source"] == "embedded"
    assert by_name["local.safetensors"]["source"] is None
    assert (result["generated"], result["skipped"], result["failed"]) == (2, 1, 0)
    with Image.open(settings.store / "loras" / "covered.webp") as img:
        assert img.format == "WEBP" and img.getpixel((0, 0))[1] > 150
    from shared.store.index import StoreIndex
    assert StoreIndex(services.redis, settings).lookup("loras", 0, "covered.safetensors")["preview"] == "covered.webp"
    # And with source auto the local preview is re-thumbnailed and kept
    ctx, services = _ctx(settings, "preview", {"models": [
        {"folder": "loras", "path_index": 0, "relpath": "local.safetensors"}], "source": "auto"})
    result = run_previews(ctx, services)
    assert result["files"] == [{"model": {"folder": "loras", "path_index": 0, "relpath": "local.safetensors"},
                                "preview": "local.preview.png", "source": "local"}]


def test_thumbnail_api_etag_304_placeholder_and_bad_input(settings: Settings, client: Any) -> None:
    model = _model(settings, "pic.safetensors")
    save_preview(model, _image("PNG", size=(300, 200)))
    _model(settings, "bare.safetensors")
    url = "/api/v1/previews/loras/0/pic.safetensors?size=100"
    # When the thumbnail is fetched twice, the second time with its ETag
    first = client.get(url)
    assert first.status_code == 200 and first.mimetype == "image/webp"
    etag = first.headers["ETag"]
    with Image.open(io.BytesIO(first.data)) as img:
        assert img.size == (100, 67)
    second = client.get(url, headers={"If-None-Match": etag})
    # Then the second answer is a 304 with no body
    assert second.status_code == 304 and second.data == b""
    # A model without a preview gets the placeholder; bad sizes and escaping paths are 400 JSON errors
    bare = client.get("/api/v1/previews/loras/0/bare.safetensors")
    assert bare.status_code == 200 and bare.mimetype == "image/webp"
    assert client.get(url.replace("100", "5")).json["error"]["code"] == "invalid_request"
    assert client.get("/api/v1/previews/loras/0/../../etc/passwd").status_code in (400, 404)
    assert client.get("/api/v1/previews/loras/0/missing.safetensors").status_code == 404
    assert client.get("/api/v1/previews/nope/0/x.safetensors").status_code == 404


def test_regenerate_api_validates_and_queues(settings: Settings, client: Any) -> None:
    _model(settings, "pic.safetensors")
    bad = client.post("/api/v1/previews/regenerate", json={"source": "flickr"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_request"
    escape = client.post("/api/v1/previews/regenerate",
                         json={"models": [{"folder": "loras", "path_index": 0, "relpath": "../../x"}]})
    assert escape.status_code == 400 and escape.json["error"]["code"] == "invalid_path"
    ok = client.post("/api/v1/previews/regenerate", json={"folder": "loras"})
    assert ok.status_code == 202
    assert ok.json["kind"] == "preview" and ok.json["params"] == {"folder": "loras", "source": "auto"}


def test_civitai_preview_by_hash_respects_the_nsfw_ceiling(settings_env: dict[str, str], upstream: Any,
                                                         redis: Any) -> None:
    # Given a model on disk that the (fake) Civitai knows by hash, with an X-rated image first and a PG JPEG second
    from shared.config import load_settings
    settings = load_settings({**settings_env, "DEPOT_CIVITAI_URL": upstream.url, "DEPOT_NSFW_LEVEL": "1"})
    path = _model(settings, "civ.safetensors")
    upstream.add_civitai_model(11, "Civ", "LORA", versions=[{
        "id": 111, "name": "v1", "baseModel": "SDXL 1.0",
        "files": [{"id": 1111, "name": "civ.safetensors", "data": path.read_bytes()}],
        "images": [{"data": _image("JPEG", color=(250, 0, 0)), "nsfwLevel": 8},
                   {"data": _image("JPEG", color=(0, 0, 250)), "nsfwLevel": 1}]}])
    # When previews are regenerated from Civitai
    ctx, services = _ctx(settings, "preview", {"folder": "loras", "source": "civitai"})
    result = run_previews(ctx, services)
    # Then the PG image became the WebP preview and the X-rated one was skipped
    assert result["files"][0]["source"] == "civitai", result
    with Image.open(settings.store / "loras" / "civ.webp") as img:
        r, g, b = img.convert("RGB").getpixel((5, 5))
        assert b > 200 and r < 50
    # When the store-wide preference is raised to X (as the dashboard does) and the previews are made again
    from shared import prefs
    prefs.set_nsfw_level(redis, 8)
    ctx, services = _ctx(settings, "preview", {"folder": "loras", "source": "civitai"})
    assert run_previews(ctx, services)["files"][0]["source"] == "civitai"
    # Then the first image, rated X, is used
    with Image.open(settings.store / "loras" / "civ.webp") as img:
        r, g, b = img.convert("RGB").getpixel((5, 5))
        assert r > 200 and b < 50


def test_civitai_preview_lookup_waits_at_the_shared_gate_after_a_429(settings_env: dict[str, str], upstream: Any,
                                                                    redis: Any) -> None:
    # Given a model Civitai knows by hash, whose lookup is first answered 429 with Retry-After: 1
    from shared.config import load_settings
    settings = load_settings({**settings_env, "DEPOT_CIVITAI_URL": upstream.url})
    path = _model(settings, "gated.safetensors")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    upstream.add_civitai_model(12, "Gated", "LORA", versions=[{
        "id": 121, "name": "v1", "files": [{"id": 1211, "name": "gated.safetensors", "data": path.read_bytes()}],
        "images": [{"data": _image("JPEG", color=(0, 250, 0)), "nsfwLevel": 1}]}])
    key = f"/api/v1/model-versions/by-hash/{sha.upper()}"
    upstream.fault(key, 429, retry_after=1, times=1)
    # When previews are regenerated from Civitai
    ctx, services = _ctx(settings, "preview", {"folder": "loras", "source": "civitai"})
    result = run_previews(ctx, services)
    # Then the 429 closed the shared gate (logged on the task), the lookup was retried once and the preview came
    assert result["files"][0]["source"] == "civitai", result
    assert upstream.requests(key) == 2
    logs = [e for e in services.records.events(ctx.task_id) if "rate limit" in str(e)]
    assert logs, services.records.events(ctx.task_id)


def test_thumbnail_api_serves_video_raw_and_a_corrupt_preview_as_placeholder(settings: Settings,
                                                                               client: Any) -> None:
    video = _model(settings, "vid.safetensors")
    webm = b"\x1a\x45\xdf\xa3" + bytes(range(200))
    (video.parent / "vid.webm").write_bytes(webm)
    broken = _model(settings, "broken.safetensors")
    (broken.parent / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    resp = client.get("/api/v1/previews/loras/0/vid.safetensors")
    assert resp.status_code == 200 and resp.mimetype == "video/webm" and resp.data == webm
    resp = client.get("/api/v1/previews/loras/0/broken.safetensors?size=64")
    assert resp.status_code == 200 and resp.mimetype == "image/webp"
    with Image.open(io.BytesIO(resp.data)) as img:
        assert img.size == (64, 64)
