"""Every API route, fed junk path parts, junk query strings and junk bodies, answers with a JSON 4xx (never a
500, never a stack trace) and leaves nothing behind in the store. Then each field of each write endpoint, sent
the way a careless or hostile client would (wrong JSON type, "0" for 0, true for 1, empty, too long, control
characters, absolute or climbing paths, unknown names), is refused with a 4xx whose message names the field,
before any task exists or any file moves."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_models_api import populate
from tests.test_scan import scan

JUNK_SEGMENTS = ["..", "%2e%2e", "a%00b", "x" * 600, "%5c..%5cwin", "-1", "null"]
DEEP = b"[" * 100_000 + b"]" * 100_000
JUNK_BODIES = [b"{", b"[]", b'"str"', b"123", b'{"url": 5}', b'{"folder": {"a": 1}}', b'{"models": "x"}',
               b'{"models": [1, 2]}', b'{"move_to": "x"}', b'{"value": []}', b'{"mode": "bogus"}',
               b'{"url": "file:///etc/passwd"}', b'{"url": "http://169.254.169.254/latest"}',
               b'{"folder": "../../etc", "url": "http://example.invalid/a.safetensors"}',
               "{\"filename\": \"\u0000.safetensors\", \"url\": \"http://example.invalid/x\"}".encode(),
               b'{"a": ' + DEEP + b"}", b'{"value": NaN}', b'{"value": "\\ud800"}', b"\xff\xfe{}",
               b'{"path_index": "0", "folder": "loras"}', b'{"folder": "", "url": "http://example.invalid/a.pt"}',
               b'{"bogus_field": 1}']
JUNK_QUERIES = ["limit=-5", "limit=abc", "offset=1e9", "size=0", "size=99999", "sort=nope", "order=sideways",
                "since=-1", "url=", "url=javascript:alert(1)", "q=%00", "host=..%2F", "state=lost%00",
                "kind=bogus", "folder=nope", "limit=%2B5", "cursor=..%2F"]
UNKNOWN_ROUTES = ["/api/v1/nope", "/api/v1/tasks/", "/api/v1//tasks", "/api/v1", "/api/v1/models/loras",
                  "/api/v1/previews/loras/x/a.pt", "/api/v1/settings/keys/civitai/extra"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

DIRECT = "http://127.0.0.1:9/a.safetensors"
CIVITAI = "https://civitai.com/models/1?modelVersionId=2"
HF = "https://huggingface.co/org/repo"
MODEL = "/api/v1/models/loras/0/zeta.pt"
REF = {"folder": "loras", "path_index": 0, "relpath": "zeta.pt"}


def dl(**fields: Any) -> dict[str, Any]:
    return {"url": DIRECT, **fields}


def ref(**fields: Any) -> dict[str, Any]:
    return {"models": [{**REF, **fields}]}


def move(**fields: Any) -> dict[str, Any]:
    return {"move_to": {"folder": "loras", "path_index": 0, "relpath": "moved.pt", **fields}}


#: (method, path, JSON body or None, expected status, the field the message must name)
CASES: list[tuple[str, str, Any, int, str]] = [
    # POST /downloads: folder
    ("POST", "/api/v1/downloads", dl(folder=""), 400, "folder"),
    ("POST", "/api/v1/downloads", dl(folder="nope"), 400, "folder"),
    ("POST", "/api/v1/downloads", dl(folder="configs"), 400, "folder"),
    ("POST", "/api/v1/downloads", dl(folder=5), 400, "folder"),
    ("POST", "/api/v1/downloads", dl(folder="x" * 300), 400, "folder"),
    # subfolder: absolute, climbing, too long, control characters, hidden
    ("POST", "/api/v1/downloads", dl(subfolder="/etc"), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder="C:\\Windows"), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder="a/../../x"), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder="x" * 300), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder="a/" * 600), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder="sdxl\r\nX-Injected: 1"), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder=".hidden"), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder=""), 400, "subfolder"),
    ("POST", "/api/v1/downloads", dl(subfolder=["a"]), 400, "subfolder"),
    # filename: CR/LF, empty, over 255 bytes, too long for its partial file, slashes, hidden, wrong type
    ("POST", "/api/v1/downloads", dl(filename="a\r\nb.safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="a\tb.safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename=""), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="   "), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="x" * 300 + ".safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="é" * 130 + ".safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="x" * 200 + ".safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="../x.safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename="sub/x.safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename=".x.safetensors"), 400, "filename"),
    ("POST", "/api/v1/downloads", dl(filename=5), 400, "filename"),
    # file_id: a Civitai id is a positive 32-bit JSON number; a Hugging Face one a repo path; none for a direct link
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": "12"}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": -1}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": 0}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": 2**31}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": 2**62}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": True}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": CIVITAI, "file_id": 12.5}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": HF, "file_id": 12}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": HF, "file_id": "../../x.safetensors"}, 400, "file_id"),
    ("POST", "/api/v1/downloads", {"url": HF, "file_id": ""}, 400, "file_id"),
    ("POST", "/api/v1/downloads", dl(file_id=12), 400, "file_id"),
    # path_index, overwrite, sha256, url, unknown fields
    ("POST", "/api/v1/downloads", dl(path_index="0"), 400, "path_index"),
    ("POST", "/api/v1/downloads", dl(path_index=True), 400, "path_index"),
    ("POST", "/api/v1/downloads", dl(path_index=-1), 400, "path_index"),
    ("POST", "/api/v1/downloads", dl(path_index=0.0), 400, "path_index"),
    ("POST", "/api/v1/downloads", dl(folder="loras", path_index=1), 400, "path_index"),
    ("POST", "/api/v1/downloads", dl(overwrite="true"), 400, "overwrite"),
    ("POST", "/api/v1/downloads", dl(overwrite=1), 400, "overwrite"),
    ("POST", "/api/v1/downloads", dl(sha256="a" * 64 + "\n"), 400, "sha256"),
    ("POST", "/api/v1/downloads", dl(sha256="a" * 63), 400, "sha256"),
    ("POST", "/api/v1/downloads", dl(sha256=5), 400, "sha256"),
    ("POST", "/api/v1/downloads", {"url": 5}, 400, "url"),
    ("POST", "/api/v1/downloads", {}, 400, "url"),
    ("POST", "/api/v1/downloads", {"url": "http://127.0.0.1:9/a\r\nHost: evil"}, 400, "url"),
    ("POST", "/api/v1/downloads", {"url": "http://127.0.0.1:9/" + "a" * 5000}, 400, "url"),
    ("POST", "/api/v1/downloads", dl(folderr="loras"), 400, "folderr"),
    # POST /scans
    ("POST", "/api/v1/scans", {"folder": ""}, 400, "folder"),
    ("POST", "/api/v1/scans", {"folder": "nope"}, 400, "folder"),
    ("POST", "/api/v1/scans", {"folder": ["loras"]}, 400, "folder"),
    ("POST", "/api/v1/scans", {"folder": "loras", "path_index": "0"}, 400, "path_index"),
    ("POST", "/api/v1/scans", {"folder": "loras", "path_index": True}, 400, "path_index"),
    ("POST", "/api/v1/scans", {"folder": "loras", "path_index": -1}, 400, "path_index"),
    ("POST", "/api/v1/scans", {"folder": "loras", "path_index": 3}, 400, "path_index"),
    ("POST", "/api/v1/scans", {"mode": "deep"}, 400, "mode"),
    ("POST", "/api/v1/scans", {"mode": 1}, 400, "mode"),
    ("POST", "/api/v1/scans", {"fetch_metadata": "yes"}, 400, "fetch_metadata"),
    ("POST", "/api/v1/scans", {"fetch_metadata": 1}, 400, "fetch_metadata"),
    ("POST", "/api/v1/scans", {"recursive": True}, 400, "recursive"),
    # POST /verifications and /previews/regenerate: scope and option
    ("POST", "/api/v1/verifications", {"models": []}, 400, "models"),
    ("POST", "/api/v1/verifications", {"models": {"a": 1}}, 400, "models"),
    ("POST", "/api/v1/verifications", {"models": [1]}, 400, "models[0]"),
    ("POST", "/api/v1/verifications", ref(path_index="0"), 400, "models[0].path_index"),
    ("POST", "/api/v1/verifications", ref(path_index=False), 400, "models[0].path_index"),
    ("POST", "/api/v1/verifications", ref(path_index=4), 400, "models[0].path_index"),
    ("POST", "/api/v1/verifications", ref(folder="nope"), 400, "models[0].folder"),
    ("POST", "/api/v1/verifications", ref(folder=""), 400, "models[0].folder"),
    ("POST", "/api/v1/verifications", ref(relpath="../../etc/passwd"), 400, "models[0].relpath"),
    ("POST", "/api/v1/verifications", ref(relpath=""), 400, "models[0].relpath"),
    ("POST", "/api/v1/verifications", ref(relpath="x" * 300), 400, "models[0].relpath"),
    ("POST", "/api/v1/verifications", ref(extra=1), 400, "models[0].extra"),
    ("POST", "/api/v1/verifications", {"models": [REF] * 10_001}, 400, "models"),
    ("POST", "/api/v1/verifications", {"folder": "loras", "models": [REF]}, 400, "models"),
    ("POST", "/api/v1/verifications", {"folder": ""}, 400, "folder"),
    ("POST", "/api/v1/verifications", {"folder": "nope"}, 400, "folder"),
    ("POST", "/api/v1/verifications", {"mode": "bogus"}, 400, "mode"),
    ("POST", "/api/v1/verifications", {"mode": 1}, 400, "mode"),
    ("POST", "/api/v1/verifications", {"source": "auto"}, 400, "source"),
    ("POST", "/api/v1/previews/regenerate", {"source": "bogus"}, 400, "source"),
    ("POST", "/api/v1/previews/regenerate", {"source": None, "mode": "sha256"}, 400, "mode"),
    ("POST", "/api/v1/previews/regenerate", ref(path_index="0"), 400, "models[0].path_index"),
    ("POST", "/api/v1/previews/regenerate", {"models": []}, 400, "models"),
    # PATCH /models/...: move_to and description
    ("PATCH", MODEL, move(relpath="x" * 300), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="x" * 300 + ".pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="a/" + "x" * 256 + "/b.pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="x" * 245 + ".pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="a/" * 1000 + "b.pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="a\nb.pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath=".hidden.pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="/etc/x.pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="../checkpoints/x.pt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath=""), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath=5), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath=None), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(relpath="x.txt"), 400, "move_to.relpath"),
    ("PATCH", MODEL, move(path_index="0"), 400, "move_to.path_index"),
    ("PATCH", MODEL, move(path_index=True), 400, "move_to.path_index"),
    ("PATCH", MODEL, move(path_index=5), 400, "move_to.path_index"),
    ("PATCH", MODEL, move(path_index=1.0), 400, "move_to.path_index"),
    ("PATCH", MODEL, move(folder=""), 400, "move_to.folder"),
    ("PATCH", MODEL, move(folder="nope"), 400, "move_to.folder"),
    ("PATCH", MODEL, move(folder=7), 400, "move_to.folder"),
    ("PATCH", MODEL, move(relpaht="x.pt"), 400, "move_to.relpaht"),
    ("PATCH", MODEL, {"move_to": "x.pt"}, 400, "move_to"),
    ("PATCH", MODEL, {"description": 5}, 400, "description"),
    ("PATCH", MODEL, {"descripton": "typo"}, 400, "descripton"),
    ("PATCH", MODEL, {"description": "ok", "move_to": {"relpath": "a\rb.pt"}}, 400, "move_to.relpath"),
    ("PATCH", "/api/v1/models/loras/+0/zeta.pt", {"description": "x"}, 400, "path_index"),
    ("PATCH", "/api/v1/models/loras/%200/zeta.pt", {"description": "x"}, 400, "path_index"),
    ("PATCH", "/api/v1/models/loras/%D9%A0/zeta.pt", {"description": "x"}, 400, "path_index"),
    ("DELETE", MODEL, {"force": True}, 400, "force"),
    # PATCH /models/...: the edits of NAME.md
    ("PATCH", MODEL, {"name": ["x"]}, 400, "name"),
    ("PATCH", MODEL, {"name": "x" * 201}, 400, "name"),
    ("PATCH", MODEL, {"trigger_words": "a, b"}, 400, "trigger_words"),
    ("PATCH", MODEL, {"trigger_words": ["ok", None]}, 400, "trigger_words"),
    ("PATCH", MODEL, {"base_model": ["SDXL"]}, 400, "base_model"),
    ("PATCH", MODEL, {"base_model": ""}, 400, "base_model"),
    ("PATCH", MODEL, {"tags": "anime"}, 400, "tags"),
    ("PATCH", MODEL, {"tags": ["a\tb"]}, 400, "tags[0]"),
    ("PATCH", MODEL, {"favorite": "true"}, 400, "favorite"),
    ("PATCH", MODEL, {"favorite": 0}, 400, "favorite"),
    ("PATCH", MODEL, {"description": "x" * 1_000_001}, 400, "description"),
    ("PATCH", MODEL, {"ignore_update": "yes"}, 400, "ignore_update"),
    # the trash: ids are 32 hex digits; its actions take no fields
    ("POST", "/api/v1/trash/abc/restore", None, 400, "abc"),
    ("DELETE", "/api/v1/trash/ABCDEF", None, 400, "ABCDEF"),
    ("POST", "/api/v1/trash/" + "0" * 32 + "/restore", {"to": "x"}, 400, "to"),
    ("DELETE", "/api/v1/trash/" + "0" * 32, {"force": True}, 400, "force"),
    # PUT /settings/...
    ("PUT", "/api/v1/settings/keys/civitai", {"value": 5}, 400, "value"),
    ("PUT", "/api/v1/settings/keys/civitai", {"value": "two words"}, 400, "value"),
    ("PUT", "/api/v1/settings/keys/civitai", {"value": "k" * 600}, 400, "value"),
    ("PUT", "/api/v1/settings/keys/civitai", {}, 400, "value"),
    ("PUT", "/api/v1/settings/keys/civitai", {"value": "abc", "key": "x"}, 400, "key"),
    ("PUT", "/api/v1/settings/nsfw_level", {"value": "4"}, 400, "value"),
    ("PUT", "/api/v1/settings/nsfw_level", {"value": True}, 400, "value"),
    ("PUT", "/api/v1/settings/nsfw_level", {"value": 3}, 400, "value"),
    ("PUT", "/api/v1/settings/nsfw_level", {"value": 4.0}, 400, "value"),
    ("PUT", "/api/v1/settings/nsfw_level", {}, 400, "value"),
    # task controls take no fields; the repair action neither
    ("POST", "/api/v1/tasks/0123abcd/pause", {"force": True}, 400, "force"),
    ("POST", "/api/v1/tasks/0123abcd/cancel", {"reason": "x"}, 400, "reason"),
    ("DELETE", "/api/v1/tasks/0123abcd", {"purge": True}, 400, "purge"),
    ("POST", f"{MODEL}/repair", {"url": DIRECT}, 400, "url"),
    # query strings: unknown filter values, types
    ("GET", "/api/v1/tasks?kind=bogus", None, 400, "kind"),
    ("GET", "/api/v1/tasks?state=bogus", None, 400, "state"),
    ("GET", "/api/v1/tasks?limit=%2B5", None, 400, "limit"),
    ("GET", "/api/v1/tasks?limit=1e3", None, 400, "limit"),
    ("GET", "/api/v1/tasks?cursor=..%2Fetc", None, 400, "cursor"),
    ("GET", "/api/v1/tasks/0123abcd/events?since=-1", None, 400, "since"),
    ("GET", "/api/v1/models?folder=nope", None, 400, "folder"),
    ("GET", "/api/v1/models?offset=%D9%A1", None, 400, "offset"),
    ("GET", "/api/v1/duplicates?folder=nope", None, 400, "folder"),
    ("GET", "/api/v1/previews/loras/0/zeta.pt?size=-%205", None, 400, "size"),
    ("GET", "/api/v1/resolve?url=http://x/a%0D%0Ab", None, 400, "url"),
    ("GET", "/api/v1/models/loras/%200/zeta.pt", None, 400, "path_index"),
    ("GET", "/api/v1/comfyui/extra_model_paths.yaml?host=gpu%00", None, 400, "host"),
]
#: Requests for what does not exist: (method, path, status, what the message must mention)
MISSING: list[tuple[str, str, int, str]] = [
    ("GET", "/api/v1/previews/loras/0/missing.safetensors", 404, "loras/0/missing.safetensors"),
    ("GET", "/api/v1/previews/loras/0/sub/dir/missing.safetensors", 404, "missing.safetensors"),
    ("GET", "/api/v1/previews/loras/0/zeta.pt/inside.safetensors", 404, "inside.safetensors"),
    ("GET", "/api/v1/previews/checkpoints/0/missing.safetensors?size=64", 404, "missing.safetensors"),
    ("GET", "/api/v1/previews/nope/0/missing.safetensors", 404, "nope"),
] + [(m, path, 404, "No API route") for path in UNKNOWN_ROUTES for m in METHODS]


def _concrete(rule: str, segment: str) -> str:
    return re.sub(r"<[^>]+>", segment, rule)


def _api_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") and rule.rule != "/api/v1/ws":
            yield rule


def _assert_clean(resp, what: str) -> None:
    assert resp.status_code < 500 or resp.status_code == 503, f"{what}: {resp.status_code} {resp.data[:300]!r}"
    if resp.status_code >= 400:
        body = resp.get_json(silent=True)
        assert body and set(body["error"]) >= {"code", "message"}, f"{what}: {resp.data[:300]!r}"
        assert "Traceback" not in resp.get_data(as_text=True)


def footprint(settings, redis) -> tuple[list[tuple[str, int, int]], list[str]]:
    """What a refused request must not change: every file in the store (name, size, mtime) and every Redis key."""
    files = sorted((str(p.relative_to(settings.store)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in settings.store.rglob("*") if p.is_file())
    return files, sorted(redis.keys("*"))


@pytest.fixture
def store(settings, redis) -> Path:
    populate(settings.store)
    scan(settings)
    return settings.store


def test_junk_everywhere_is_a_json_4xx(client, app, settings):
    before = sorted(p.relative_to(settings.store) for p in settings.store.rglob("*") if p.is_file())
    checked = 0
    for rule in _api_rules(app):
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        for segment in JUNK_SEGMENTS:
            path = _concrete(rule.rule, segment)
            for method in methods:
                if method == "GET":
                    for query in JUNK_QUERIES:
                        _assert_clean(client.get(f"{path}?{query}"), f"GET {path}?{query}")
                        checked += 1
                else:
                    for body in JUNK_BODIES:
                        resp = client.open(path, method=method, data=body, content_type="application/json")
                        _assert_clean(resp, f"{method} {path} {body[:40]!r}")
                        checked += 1
    for path in UNKNOWN_ROUTES:
        for method in METHODS:
            resp = client.open(path, method=method, data=b"{}", content_type="application/json")
            _assert_clean(resp, f"{method} {path}")
            assert resp.status_code in (404, 405), f"{method} {path}: {resp.status_code}"
    assert checked > 500
    after = sorted(p.relative_to(settings.store) for p in settings.store.rglob("*") if p.is_file())
    assert after == before


@pytest.mark.parametrize("body", JUNK_BODIES, ids=lambda b: repr(b[:30]))
def test_junk_submissions_create_no_task(client, app, body):
    records = app.extensions["depot"].services.records
    for path in ("/api/v1/downloads", "/api/v1/scans", "/api/v1/verifications", "/api/v1/previews/regenerate",
                 "/api/v1/workflows/fetch"):
        resp = client.post(path, data=body, content_type="application/json")
        _assert_clean(resp, f"POST {path}")
        if resp.status_code < 300:  # a valid default (e.g. scan everything) may be accepted; junk never is
            assert path not in ("/api/v1/downloads", "/api/v1/workflows/fetch"), resp.get_json()
    downloads, _ = records.page(kind="download")
    assert downloads == [] and records.page(kind="workflow")[0] == []


def test_each_bad_field_is_refused_by_name_and_changes_nothing(client, app, settings, redis, store):
    # Given a scanned store (zeta.pt is a model in loras, whose folder has one root)
    before = footprint(settings, redis)
    wrong = []
    for method, path, body, status, name in CASES:
        # When a client sends one bad field
        data = None if body is None else json.dumps(body)
        resp = client.open(path, method=method, data=data, content_type="application/json")
        # Then it gets a JSON 4xx naming that field (quoted, as every message does)
        _assert_clean(resp, f"{method} {path} {data!r:.80}")
        error = (resp.get_json(silent=True) or {}).get("error", {})
        if resp.status_code != status or f"'{name}'" not in error.get("message", ""):
            wrong.append(f"{method} {path} {data!r:.100} -> {resp.status_code} {error}")
        # And nothing changed: no task, no file moved or written, no Redis key
        assert footprint(settings, redis) == before, f"{method} {path} {data!r:.100} left something behind"
    assert not wrong, "\n".join(wrong)
    assert (store / "loras" / "zeta.pt").is_file()


def test_missing_models_and_unknown_routes_are_json_404(client, store):
    wrong = []
    for method, path, status, mention in MISSING:
        resp = client.open(path, method=method, data=b"{}" if method != "GET" else None,
                           content_type="application/json")
        error = (resp.get_json(silent=True) or {}).get("error", {})
        if resp.status_code != status or resp.mimetype != "application/json" or mention not in error.get("message", ""):
            wrong.append(f"{method} {path} -> {resp.status_code} {resp.mimetype} {resp.data[:200]!r}")
    assert not wrong, "\n".join(wrong)


def test_json_nested_100000_deep_is_a_400(client, settings, redis, store):
    # Given a body nested 100,000 levels deep (the standard library's parser recurses until RecursionError)
    before = footprint(settings, redis)
    for path in ("/api/v1/scans", "/api/v1/downloads", "/api/v1/verifications"):
        for body in (DEEP, b'{"folder": ' + DEEP + b"}", b"{" + b'"a":{' * 100_000 + b"}" * 100_001):
            # When it is posted, Then the answer is a JSON 400 saying why
            resp = client.post(path, data=body, content_type="application/json")
            assert resp.status_code == 400, (path, resp.status_code, resp.data[:200])
            assert resp.get_json()["error"]["code"] == "invalid_request"
            assert "depth" in resp.get_json()["error"]["message"]
    # And no task exists, nothing changed
    assert footprint(settings, redis) == before


def test_a_valid_request_still_passes_the_checks(client, store, settings):
    """The checks refuse only what is wrong: the same endpoints accept the well-formed versions."""
    assert client.post("/api/v1/scans", json={"folder": "loras", "path_index": 0, "mode": "full",
                                              "fetch_metadata": False}).status_code == 202
    assert client.post("/api/v1/verifications", json={"models": [REF], "mode": "all"}).status_code == 202
    assert client.post("/api/v1/previews/regenerate", json={"folder": "loras", "source": None}).status_code == 202
    assert client.put("/api/v1/settings/nsfw_level", json={"value": 4}).get_json()["nsfw_level"] == 4
    assert client.put("/api/v1/settings/nsfw_level", json={"value": None}).status_code == 200
    name = "é" * 100 + ".pt"  # 200 bytes: longer in bytes than in characters, still within every limit
    moved = client.patch(MODEL, json={"move_to": {"folder": "loras", "path_index": 0, "relpath": f"sub/{name}"},
                                      "description": "moved"})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["relpath"] == f"sub/{name}" and (store / "loras" / "sub" / name).is_file()
    assert not (store / "loras" / "zeta.pt").exists()
    assert client.post(f"/api/v1/tasks/{'0' * 22}/cancel").status_code == 404  # no body: only the id is checked
    assert os.path.isdir(store / "loras")


def test_repair_refuses_a_name_the_download_could_not_save_under(client, settings, redis, store):
    # Given a model with a recorded source whose name is too long for a download's partial file
    name = "r" * 200 + ".safetensors"
    (store / "loras" / name).write_bytes(b"x" * 10)
    (store / "loras" / ("r" * 200 + ".md")).write_text(
        f"---\nwebsite: Direct Link\nmodelPage: {DIRECT}\nhashes:\n  SHA256: {'a' * 64}\n---\n")
    before = footprint(settings, redis)
    # When its repair is asked for, Then it is refused now, saying why, rather than failing in the worker
    resp = client.post(f"/api/v1/models/loras/0/{name}/repair")
    assert resp.status_code == 409 and "155 bytes" in resp.get_json()["error"]["message"], resp.get_json()
    assert footprint(settings, redis) == before
