"""A fake Civitai + Hugging Face + plain web server on loopback, with fault injection, for tests and benchmarks.

It is a real threaded HTTP server (``http.server.ThreadingHTTPServer``) on ``127.0.0.1`` that follows the shapes
in the reference notes (external-apis-and-formats.md §1–§2):

* Civitai: ``GET /api/v1/models/<id>``, ``/api/v1/model-versions/<vid>``, ``/api/v1/model-versions/by-hash/<hash>``,
  ``POST /api/v1/model-versions/by-hash`` (array of SHA256), and ``/api/download/models/<vid>?type&format&fileId``
  which answers **307** to a signed storage URL ``http://localhost:<port>/storage/<fileId>/<name>?expires&sig``.
  The storage URL uses the host name ``localhost`` (the API uses ``127.0.0.1``) so a client sees a cross-host
  redirect and must drop its ``Authorization`` header. Expired or forged signatures get S3-style 403 XML.
  Versions may carry ``require_auth`` (401 "logged in" unless a Bearer token from ``civitai_tokens`` is sent),
  ``early_access`` (403) and ``archived`` (410), per the reference's error matrix (JSON bodies).
* Hugging Face: ``HEAD/GET /<org>/<repo>/resolve/<rev>/<path>``: LFS files answer **302** to
  ``http://localhost:<port>/cdn/<sha256>?Expires=`` with ``X-Linked-Etag``/``X-Linked-Size``/``X-Repo-Commit``;
  plain git files answer 200 with the git blob sha1 as ``ETag``. Gated repos answer 401 (no token) or 403 (token
  not in ``hf_tokens``) with ``X-Error-Code: GatedRepo``; missing files 404 ``EntryNotFound``; unknown repos 401
  ``RepoNotFound``. ``GET /api/models/<repo>`` (+ ``/revision/<rev>``, ``?blobs=true``) and
  ``/api/models/<repo>/tree/<rev>[/<dir>]``.
* Images (``/images/<n>.<ext>``) and direct files (any path given to ``add_direct``).

Every byte-serving path honours ``Range: bytes=N-`` / ``bytes=N-M`` (206 + ``Content-Range``; 416 with
``bytes */size`` past the end) and counts the body bytes it writes.

Interface::

    up = FakeUpstream().start()          # up.url == "http://127.0.0.1:<port>"
    up.add_civitai_model(model_id, name, type, versions=[{id, name, baseModel, trainedWords, description,
        require_auth, early_access, archived,
        files=[{id, name, type, data, primary, metadata, hashes (override)}],
        images=[{url or data, nsfwLevel, type}]}], creator="someone", description="<p>..</p>", tags=[...])
    up.add_hf_file(repo, path, data, revision="main", lfs=True, gated=False)
    up.add_direct(path, data, content_type="application/octet-stream")
    up.fault(key, kind, times=1, **kw)   # see below
    up.bytes_served(key); up.requests(key); up.auth_seen(key); up.reset_counts()
    up.storage_path(file_id) / up.cdn_path(repo, path, revision="main")   # keys of the byte-serving paths
    up.stop()

``data`` may be ``bytes`` or a ``pathlib.Path`` (served with ``sendfile`` when no fault applies; for big files).

A fault ``key`` is a request path without query (``/api/download/models/5``, ``/storage/7/x.safetensors``,
``/cdn/<sha>``, ``/some/direct.bin``, ``/org/repo/resolve/main/x``) or an alias: ``civitai:file:<id>`` (the
storage bytes of that file), ``hf:<repo>/<path>`` (the CDN/plain bytes of that HF file). Kinds (each applies to
the next ``times`` matching requests; ``times=None`` = forever):

* ``drop_after`` ``bytes=N``: send the headers for the full body, then close after N body bytes.
* ``ignore_range``: answer 200 with the whole body even when a Range was asked.
* ``stall`` ``seconds=S``, ``after=N`` (default 0): stop sending for S seconds after N bytes.
* ``slow`` ``bytes_per_s=R`` (default ``times=None``): throttle the body (per request: a cap per connection, as
  storage CDNs have).
* ``expired``: a storage/CDN URL answers 403 "Request has expired" as if its signature had expired.
* ``html`` / ``json``: answer 200 with an HTML login page / a JSON error body instead of the file.
* ``status`` ``code=C`` (401/403/404/410/429/500…) with optional ``retry_after=S``; the shorthand
  ``fault(key, 429, retry_after=1)`` is the same. Bodies follow the Civitai error matrix for Civitai paths.

Any fault may carry ``skip=N``: it passes over the first N requests it would match (aimed at a download's
second connection, say). ``up.max_active()`` is the most bodies sent at once (connections open).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import struct
import threading
import time
import zlib
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

try:
    import blake3 as _blake3
except ImportError:  # pragma: no cover - blake3 is a project dependency
    _blake3 = None

_SECRET = b"fake-upstream-signing-key"
_CHUNK = 256 * 1024
_CIVITAI_ERRORS = {
    401: {"error": "Unauthorized", "message": "The creator of this asset requires you to be logged in to download it"},
    403: {"error": "Early Access", "deadline": "2099-01-01T00:00:00.000Z",
          "message": "This asset is in Early Access. You can use Buzz access it now!"},
    404: {"error": "File not found"},
    410: {"error": "Model archived, not available for download"},
    429: {"error": "We've noticed an unusual amount of downloading from your account. Contact support@civitai.com "
                   "or come back later."},
    500: {"error": "Error getting file"},
}
_HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action=\"/login\">"
              b"<input name=\"user\"></form></body></html>\n")


class Blob:
    """Bytes (or a file) served by the fake, with its size and hashes."""

    def __init__(self, data: bytes | Path, sha256: str | None = None) -> None:
        self.data = data
        self.size = data.stat().st_size if isinstance(data, Path) else len(data)
        self._sha256 = sha256

    def read(self, start: int, end: int) -> bytes:
        if isinstance(self.data, Path):
            with open(self.data, "rb") as fh:
                fh.seek(start)
                return fh.read(end - start)
        return self.data[start:end]

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            h = hashlib.sha256()
            if isinstance(self.data, Path):
                with open(self.data, "rb") as fh:
                    while chunk := fh.read(8 << 20):
                        h.update(chunk)
            else:
                h.update(self.data)
            self._sha256 = h.hexdigest()
        return self._sha256

    def civitai_hashes(self) -> dict[str, str]:
        data = self.read(0, self.size)
        out = {"SHA256": self.sha256.upper(), "AutoV2": self.sha256[:10].upper(),
               "CRC32": struct.pack("<I", zlib.crc32(data)).hex().upper()}
        if _blake3 is not None:
            out["BLAKE3"] = _blake3.blake3(data).hexdigest().upper()
        if self.size >= 2 * 0x100000:
            out["AutoV1"] = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8].upper()
        return out

    def git_sha1(self) -> str:
        return hashlib.sha1(b"blob %d\0" % self.size + self.read(0, self.size)).hexdigest()


class FakeUpstream:
    """See the module docstring."""

    def __init__(self, storage_host: str = "localhost") -> None:
        self.storage_host = storage_host
        self.civitai_tokens: set[str] = set()
        self.hf_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._models: dict[int, dict[str, Any]] = {}
        self._versions: dict[int, dict[str, Any]] = {}
        self._files: dict[int, dict[str, Any]] = {}
        self._hf: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._hf_repos: dict[str, dict[str, Any]] = {}
        self._cdn: dict[str, tuple[Blob, str]] = {}
        self._direct: dict[str, tuple[Blob, str]] = {}
        self._faults: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._bytes: dict[str, int] = defaultdict(int)
        self._requests: dict[str, int] = defaultdict(int)
        self._auth: dict[str, list[str | None]] = defaultdict(list)
        self._active = self._max_active = 0  #: bodies being sent now, and the most at once
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        handler = type("Handler", (_Handler,), {"up": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_url(self) -> str:
        return f"http://{self.storage_host}:{self.port}"

    # --- content ----------------------------------------------------------------------------------------

    def add_civitai_model(self, model_id: int, name: str, type: str, versions: list[dict[str, Any]],
                          creator: str = "tester", description: str = "<p>A test model.</p>",
                          tags: list[str] | None = None, nsfw: bool = False) -> dict[str, Any]:
        model = {"id": model_id, "name": name, "description": description, "type": type, "nsfw": nsfw,
                 "nsfwLevel": 1, "creator": {"username": creator, "image": None}, "tags": tags or ["test"],
                 "stats": {"downloadCount": 1}, "_versions": []}
        with self._lock:
            self._models[model_id] = model
            for v in versions:
                files = []
                for f in v.get("files", []):
                    blob = Blob(f["data"], f.get("sha256"))
                    rec = {"id": f["id"], "name": f["name"], "type": f.get("type", "Model"),
                           "primary": bool(f.get("primary", len(v["files"]) == 1)), "blob": blob,
                           "metadata": f.get("metadata", {"format": "SafeTensor", "size": None, "fp": None}),
                           "hashes": f.get("hashes") or blob.civitai_hashes(), "version_id": v["id"]}
                    self._files[f["id"]] = rec
                    files.append(rec)
                images = [self._image(img, v["id"], i) for i, img in enumerate(v.get("images", []))]
                self._versions[v["id"]] = {**v, "modelId": model_id, "_files": files, "_images": images}
                model["_versions"].append(v["id"])
        return self._model_body(model_id)

    def add_civitai_version(self, model_id: int, version: dict[str, Any]) -> None:
        """A newer version of a model: first in its ``modelVersions``, as Civitai lists them (newest first)."""
        model = self._models[model_id]
        before = list(model["_versions"])
        self.add_civitai_model(model_id, model["name"], model["type"], [version], creator=model["creator"]["username"],
                               description=model["description"], tags=model["tags"], nsfw=model["nsfw"])
        self._models[model_id]["_versions"] = [version["id"], *before]

    def _image(self, img: dict[str, Any], vid: int, i: int) -> dict[str, Any]:
        url = img.get("url")
        if url is None:
            ext = img.get("ext", "mp4" if img.get("type") == "video" else "jpeg")
            path = f"/images/{vid}-{i}.{ext}"
            ctype = "video/mp4" if ext == "mp4" else f"image/{ext}"
            self._direct[path] = (Blob(img["data"]), ctype)
            url = self.url + path
        return {"url": url, "nsfwLevel": img.get("nsfwLevel", 1), "width": img.get("width", 512),
                "height": img.get("height", 512), "type": img.get("type", "image"), "hash": "U00000fQfQfQfQfQ",
                "meta": img.get("meta", {"prompt": "a test"}), "availability": "Public"}

    def add_hf_file(self, repo: str, path: str, data: bytes | Path, revision: str = "main", lfs: bool = True,
                    gated: bool = False, sha256: str | None = None) -> dict[str, Any]:
        blob = Blob(data, sha256)
        with self._lock:
            info = self._hf_repos.setdefault(repo, {"gated": False, "commits": {}})
            info["gated"] = info["gated"] or gated
            commit = info["commits"].setdefault(revision, hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest())
            entry = {"repo": repo, "path": path, "revision": revision, "commit": commit, "blob": blob, "lfs": lfs}
            self._hf[(repo, revision, path)] = entry
            self._hf[(repo, commit, path)] = entry
            if lfs:
                self._cdn[blob.sha256] = (blob, path.rsplit("/", 1)[-1])
        return {"sha256": blob.sha256 if lfs else None, "size": blob.size, "commit": commit}

    def add_direct(self, path: str, data: bytes | Path, content_type: str = "application/octet-stream") -> str:
        with self._lock:
            self._direct[path] = (Blob(data), content_type)
        return self.url + path

    def file_hashes(self, file_id: int) -> dict[str, str]:
        return dict(self._files[file_id]["hashes"])

    def storage_path(self, file_id: int) -> str:
        return f"/storage/{file_id}/{quote(self._files[file_id]['name'])}"

    def cdn_path(self, repo: str, path: str, revision: str = "main") -> str:
        return f"/cdn/{self._hf[(repo, revision, path)]['blob'].sha256}"

    # --- faults and counters ------------------------------------------------------------------------------

    def fault(self, key: str, kind: str | int, times: int | None = -1, **kw: Any) -> None:
        if isinstance(kind, int) or str(kind).isdigit():
            kw["code"], kind = int(kind), "status"
        if times == -1:
            times = None if kind == "slow" else 1
        with self._lock:
            self._faults[key].append({"kind": kind, "times": times, **kw})

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_faults(self, keys: list[str], kinds: set[str], first_only: bool = False) -> list[dict[str, Any]]:
        """Consume one use of each matching fault for this request (only the first one with ``first_only``)."""
        out = []
        with self._lock:
            for key in keys:
                for f in list(self._faults.get(key, [])):
                    if f["kind"] not in kinds:
                        continue
                    if f.get("skip"):
                        f["skip"] -= 1  # aimed at a later request (a download's second connection, say)
                        continue
                    out.append(f)
                    if f["times"] is not None:
                        f["times"] -= 1
                        if f["times"] <= 0:
                            self._faults[key].remove(f)
                    if first_only:
                        return out
        return out

    def count(self, keys: list[str], n: int) -> None:
        with self._lock:
            for key in keys:
                self._bytes[key] += n

    def note_request(self, keys: list[str], auth: str | None) -> None:
        with self._lock:
            for key in keys:
                self._requests[key] += 1
                self._auth[key].append(auth)

    def max_active(self) -> int:
        """The most bodies sent at once since the last ``reset_counts`` (connections open to this server)."""
        with self._lock:
            return self._max_active

    def bytes_served(self, key: str) -> int:
        with self._lock:
            return self._bytes.get(key, 0)

    def requests(self, key: str) -> int:
        with self._lock:
            return self._requests.get(key, 0)

    def auth_seen(self, key: str) -> list[str | None]:
        with self._lock:
            return list(self._auth.get(key, []))

    def reset_counts(self) -> None:
        with self._lock:
            self._bytes.clear()
            self._requests.clear()
            self._auth.clear()
            self._max_active = self._active

    # --- Civitai bodies -----------------------------------------------------------------------------------

    def _file_body(self, f: dict[str, Any], in_model: bool) -> dict[str, Any]:
        body = {"id": f["id"], "sizeKB": f["blob"].size / 1024, "name": f["name"], "type": f["type"],
                "pickleScanResult": "Success", "virusScanResult": "Success", "metadata": f["metadata"],
                "hashes": f["hashes"], "downloadUrl": f"{self.url}/api/download/models/{f['version_id']}"}
        if f["primary"] or not in_model:
            body["primary"] = f["primary"]
        return body

    def _version_body(self, vid: int, in_model: bool = False) -> dict[str, Any]:
        v = self._versions[vid]
        model = self._models[v["modelId"]]
        body = {"id": vid, "modelId": v["modelId"], "name": v.get("name", "v1"), "status": "Published",
                "publishedAt": "2025-01-01T00:00:00.000Z", "trainedWords": v.get("trainedWords", []),
                "baseModel": v.get("baseModel", "SD 1.5"), "baseModelType": "Standard",
                "description": v.get("description", "<p>Version notes.</p>"),
                "earlyAccessEndsAt": "2099-01-01T00:00:00.000Z" if v.get("early_access") else None,
                "usageControl": "Download",
                "files": [] if v.get("archived") else [self._file_body(f, in_model) for f in v["_files"]],
                "images": v["_images"], "downloadUrl": f"{self.url}/api/download/models/{vid}"}
        if not in_model:
            body["model"] = {"name": model["name"], "type": model["type"], "nsfw": model["nsfw"], "poi": False}
        return body

    def _model_body(self, model_id: int) -> dict[str, Any]:
        m = self._models[model_id]
        body = {k: v for k, v in m.items() if not k.startswith("_")}
        body["modelVersions"] = [self._version_body(vid, in_model=True) for vid in m["_versions"]]
        return body

    def _find_by_hash(self, value: str) -> dict[str, Any] | None:
        value = value.upper()
        for f in sorted(self._files.values(), key=lambda f: f["version_id"]):
            if value in {str(h).upper() for h in f["hashes"].values()}:
                return self._version_body(f["version_id"])
        return None

    def pick_file(self, vid: int, query: dict[str, str]) -> dict[str, Any] | None:
        files = self._versions[vid]["_files"]
        if "fileId" in query:
            return next((f for f in files if str(f["id"]) == query["fileId"]), None)
        if "type" in query:
            files = [f for f in files if f["type"] == query["type"]]
        if not files:
            return None
        chosen = next((f for f in files if f["primary"]), files[0])
        if "format" in query and chosen["metadata"].get("format") != query["format"]:
            chosen = next((f for f in files if f["metadata"].get("format") == query["format"]), None)
        return chosen

    def sign(self, path: str, ttl: float = 3600.0) -> str:
        expires = int(time.time() + ttl)
        sig = hmac.new(_SECRET, f"{path}:{expires}".encode(), "sha256").hexdigest()[:32]
        return f"{path}?expires={expires}&sig={sig}"

    def signature_ok(self, path: str, query: dict[str, str]) -> bool:
        try:
            expires = int(query.get("expires", "0"))
        except ValueError:
            return False
        want = hmac.new(_SECRET, f"{path}:{expires}".encode(), "sha256").hexdigest()[:32]
        return hmac.compare_digest(want, query.get("sig", "")) and expires > time.time()


class _Handler(BaseHTTPRequestHandler):
    up: FakeUpstream
    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        pass

    def handle(self) -> None:
        # A client closing a kept-alive or half-read connection is normal (a download's finished segment, a
        # paused transfer). socketserver would print a traceback from this thread, and CPython 3.11 parses source
        # (ast) to draw a traceback's carets, which is not safe beside the main thread's own parsing (pytest's
        # assertion rewriting): "SystemError: AST constructor recursion depth mismatch".
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    # --- plumbing -----------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers)

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization")
        return auth.split(" ", 1)[1].strip() if auth and " " in auth else None

    def _response_fault(self, keys: list[str], civitai: bool = False) -> bool:
        """Apply a status/html/json/expired fault if one is pending; True when a response was sent."""
        for f in self.up.take_faults(keys, {"status", "html", "json", "expired"}, first_only=True):
            if f["kind"] == "html":
                self._send(200, _HTML_PAGE, "text/html; charset=utf-8")
            elif f["kind"] == "json":
                self._json(200, {"error": "Unauthorized", "message": "Please log in"})
            elif f["kind"] == "expired":
                self._expired()
            else:
                code = f["code"]
                headers = {"Retry-After": str(f["retry_after"])} if f.get("retry_after") is not None else {}
                body = _CIVITAI_ERRORS.get(code, {"error": f"status {code}"}) if civitai else {"error": f"HTTP {code}"}
                self._json(code, body, headers)
            return True
        return False

    def _expired(self) -> None:
        body = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
        self._send(403, body, "application/xml")

    # --- dispatch -----------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") == "/api/v1/model-versions/by-hash":
            try:
                hashes = json.loads(raw or b"null")
                assert isinstance(hashes, list) and len(hashes) <= 100 and all(len(h) == 64 for h in hashes)
            except (ValueError, AssertionError):
                self._json(400, {"error": "Request must include an array of SHA256 Hashes. Max 100."})
                return
            found = [self.up._find_by_hash(h) for h in hashes]
            self._json(200, [f for f in found if f])
            return
        self._json(404, {"error": "not found"})

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            if path.startswith("/api/v1/"):
                self._civitai_api(path, query)
            elif path.startswith("/api/download/models/"):
                self._civitai_download(path, query)
            elif path.startswith("/storage/"):
                self._storage(parts.path, path, query)
            elif path.startswith("/cdn/"):
                self._cdn(path, query)
            elif path.startswith("/api/models/"):
                self._hf_api(path, query)
            elif path == "/api/whoami-v2":
                self._hf_whoami()
            elif "/resolve/" in path:
                self._hf_resolve(path)
            elif path in self.up._direct:
                blob, ctype = self.up._direct[path]
                # each version of a direct file has its own ETag, as a CDN gives (replacing the file changes it)
                self._bytes(blob, ctype, [path], path, {"ETag": f"\"{id(blob):x}-{blob.size}\""})
            else:
                self._json(404, {"error": "not found"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # --- Civitai ------------------------------------------------------------------------------------------

    def _civitai_api(self, path: str, query: dict[str, str]) -> None:
        self.up.note_request([path], self.headers.get("Authorization"))
        if self._response_fault([path], civitai=True):
            return
        segs = path.strip("/").split("/")
        up = self.up
        if segs == ["api", "v1", "me"]:  # authenticated only: an unknown token is an anonymous caller
            if self._bearer() in up.civitai_tokens:
                self._json(200, {"id": 1, "username": "tester", "tier": "free"})
            else:
                self._json(401, {"error": "Unauthorized"})
        elif segs == ["api", "v1", "models"] and "ids" in query:  # GET /models?ids=1,2,3: one page of them
            ids = [int(i) for i in query["ids"].split(",") if i.strip().isdigit()]
            limit = int(query.get("limit", 100))
            self._json(200, {"items": [up._model_body(i) for i in ids if i in up._models][:limit], "metadata": {}})
        elif len(segs) == 4 and segs[2] == "models" and segs[3].isdigit() and int(segs[3]) in up._models:
            self._json(200, up._model_body(int(segs[3])))
        elif len(segs) == 4 and segs[2] == "model-versions" and segs[3].isdigit() and int(segs[3]) in up._versions:
            self._json(200, up._version_body(int(segs[3])))
        elif len(segs) == 5 and segs[2:4] == ["model-versions", "by-hash"]:
            body = up._find_by_hash(segs[4])
            self._json(200, body) if body else self._json(404, {"error": "Model not found"})
        elif len(segs) >= 3 and segs[2] == "models":
            self._json(404, {"error": f"No model with id {segs[-1]}"})
        else:
            self._json(404, {"error": "Model not found"})

    def _hf_whoami(self) -> None:
        self.up.note_request(["/api/whoami-v2"], self.headers.get("Authorization"))
        if self._bearer() in self.up.hf_tokens:
            self._json(200, {"type": "user", "name": "tester"})
        else:
            self._json(401, {"error": "Invalid credentials in Authorization header"},
                       headers={"X-Error-Message": "Invalid credentials in Authorization header"})

    def _civitai_download(self, path: str, query: dict[str, str]) -> None:
        self.up.note_request([path], self.headers.get("Authorization"))
        if self._response_fault([path], civitai=True):
            return
        vid_text = path.rsplit("/", 1)[-1]
        version = self.up._versions.get(int(vid_text)) if vid_text.isdigit() else None
        if version is None:
            self._json(404, _CIVITAI_ERRORS[404])
            return
        token = self._bearer() or query.get("token")
        if version.get("archived"):
            self._json(410, _CIVITAI_ERRORS[410])
        elif version.get("require_auth") and token not in self.up.civitai_tokens:
            self._json(401, _CIVITAI_ERRORS[401])
        elif version.get("early_access"):
            self._json(403, _CIVITAI_ERRORS[403])
        elif (f := self.up.pick_file(version["id"], query)) is None:
            self._json(404, _CIVITAI_ERRORS[404])
        else:
            location = self.up.storage_url + self.up.sign(self.up.storage_path(f["id"]))
            self._send(307, b"", "text/plain", {"Location": location, "Cache-Control": "no-store, max-age=0"})

    def _storage(self, raw_path: str, path: str, query: dict[str, str]) -> None:
        segs = path.split("/")
        f = self.up._files.get(int(segs[2])) if len(segs) > 2 and segs[2].isdigit() else None
        if f is None:
            self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            return
        keys = [raw_path, path, f"civitai:file:{f['id']}"]
        if not self.up.signature_ok(raw_path, query):
            self.up.note_request(keys, self.headers.get("Authorization"))
            self._expired()
            return
        disposition = f"attachment; filename=\"{f['name']}\""
        self._bytes(f["blob"], "application/octet-stream", keys, raw_path, {"Content-Disposition": disposition})

    # --- Hugging Face ------------------------------------------------------------------------------------

    def _hf_error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _hf_gate(self, repo: str) -> bool:
        """True when the request may see the repo; otherwise an error was sent."""
        info = self.up._hf_repos.get(repo)
        if info is None:
            self._hf_error(401, "RepoNotFound", "Repository not found")
            return False
        if info["gated"]:
            token = self._bearer()
            if token is None:
                self._hf_error(401, "GatedRepo", f"Access to model {repo} is restricted. You must have access to "
                                                 "it and be authenticated to access it. Please log in.")
                return False
            if token not in self.up.hf_tokens:
                self._hf_error(403, "GatedRepo", f"Access to model {repo} is restricted and you are not in the "
                                                 f"authorized list. Visit {self.up.url}/{repo} to ask for access.")
                return False
        return True

    def _hf_resolve(self, path: str) -> None:
        segs = path.strip("/").split("/")
        if len(segs) < 5 or segs[2] != "resolve":
            self._json(404, {"error": "not found"})
            return
        repo, revision, file_path = "/".join(segs[:2]), segs[3], "/".join(segs[4:])
        self.up.note_request([path], self.headers.get("Authorization"))
        if self._response_fault([path]) or not self._hf_gate(repo):
            return
        entry = self.up._hf.get((repo, revision, file_path))
        if entry is None:
            self._hf_error(404, "EntryNotFound", f"{file_path} does not exist at revision {revision}")
            return
        blob = entry["blob"]
        common = {"X-Repo-Commit": entry["commit"]}
        if entry["lfs"]:
            expires = int(time.time() + 3600)
            name = file_path.rsplit("/", 1)[-1]
            location = (f"{self.up.storage_url}/cdn/{blob.sha256}?Expires={expires}&"
                        f"response-content-disposition=inline%3B%20filename%3D%22{quote(name)}%22")
            headers = {**common, "Location": location, "X-Linked-Etag": f"\"{blob.sha256}\"",
                       "X-Linked-Size": str(blob.size), "ETag": f"\"{blob.sha256}\""}
            self._send(302, b"Found. Redirecting", "text/plain; charset=utf-8", headers)
        else:
            keys = [path, f"hf:{repo}/{file_path}"]
            self._bytes(blob, "application/octet-stream", keys, path, {**common, "ETag": f"\"{blob.git_sha1()}\""})

    def _cdn(self, path: str, query: dict[str, str]) -> None:
        sha = path.split("/")[2] if len(path.split("/")) > 2 else ""
        found = self.up._cdn.get(sha)
        if found is None:
            self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            return
        blob, name = found
        entries = [e for e in self.up._hf.values() if e["blob"] is blob]
        keys = [path] + sorted({f"hf:{e['repo']}/{e['path']}" for e in entries})
        try:
            expired = int(query.get("Expires", "0")) < time.time()
        except ValueError:
            expired = True
        if expired:
            self.up.note_request(keys, self.headers.get("Authorization"))
            self._expired()
            return
        self._bytes(blob, "application/octet-stream", keys, path,
                    {"Content-Disposition": f"inline; filename=\"{name}\"", "ETag": f"\"{blob.sha256}\""})

    def _hf_api(self, path: str, query: dict[str, str]) -> None:
        segs = path.strip("/").split("/")[2:]
        if len(segs) < 2:
            self._json(404, {"error": "not found"})
            return
        repo, rest = "/".join(segs[:2]), segs[2:]
        self.up.note_request([path], self.headers.get("Authorization"))
        if self._response_fault([path]) or not self._hf_gate(repo):
            return
        revision = rest[1] if len(rest) >= 2 and rest[0] in ("revision", "tree") else "main"
        entries = [e for (r, rev, _p), e in self.up._hf.items() if r == repo and rev == revision]
        if not entries:
            self._hf_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        if rest and rest[0] == "tree":
            prefix = "/".join(rest[2:])
            self._json(200, [self._tree_entry(e) for e in entries if e["path"].startswith(prefix)])
            return
        info = self.up._hf_repos[repo]
        siblings = [self._sibling(e, query.get("blobs") == "true") for e in entries]
        self._json(200, {"_id": repo, "id": repo, "modelId": repo, "author": repo.split("/")[0],
                         "sha": entries[0]["commit"], "private": False, "disabled": False,
                         "gated": "manual" if info["gated"] else False, "tags": [], "downloads": 0,
                         "likes": 0, "lastModified": "2025-01-01T00:00:00.000Z", "siblings": siblings})

    @staticmethod
    def _sibling(e: dict[str, Any], blobs: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"rfilename": e["path"]}
        if blobs:
            out.update({"blobId": e["blob"].git_sha1(), "size": e["blob"].size})
            if e["lfs"]:
                out["lfs"] = {"sha256": e["blob"].sha256, "size": e["blob"].size, "pointerSize": 134}
        return out

    @staticmethod
    def _tree_entry(e: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "oid": e["blob"].git_sha1(), "size": e["blob"].size,
                               "path": e["path"]}
        if e["lfs"]:
            out["lfs"] = {"oid": e["blob"].sha256, "size": e["blob"].size, "pointerSize": 134}
        return out

    # --- byte serving with Range and transfer faults ---------------------------------------------------

    def _bytes(self, blob: Blob, ctype: str, keys: list[str], label: str,
               headers: dict[str, str] | None = None) -> None:
        self.up.note_request(keys, self.headers.get("Authorization"))
        head = self.command == "HEAD"  # faults are aimed at transfers; a HEAD never uses one up
        if not head and self._response_fault(keys):
            return
        faults = [] if head else self.up.take_faults(keys, {"drop_after", "ignore_range", "stall", "slow"})
        kinds = {f["kind"]: f for f in faults}
        start, end, status = 0, blob.size, 200
        rng = self.headers.get("Range")
        if rng and "ignore_range" not in kinds:
            parsed = _parse_range(rng, blob.size)
            if parsed is None:
                self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{blob.size}"})
                return
            start, end, status = parsed[0], parsed[1], 206
        out = {"Accept-Ranges": "bytes", "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT", **(headers or {})}
        if status == 206:
            out["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(end - start))
        for k, v in out.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        with self.up._lock:
            self.up._active += 1
            self.up._max_active = max(self.up._max_active, self.up._active)
        try:
            self._write_body(blob, start, end, kinds, keys)
        finally:
            with self.up._lock:
                self.up._active -= 1

    def _write_body(self, blob: Blob, start: int, end: int, kinds: dict[str, dict[str, Any]],
                    keys: list[str]) -> None:
        if not kinds and isinstance(blob.data, Path):
            self.wfile.flush()
            with open(blob.data, "rb") as fh:
                sent = self.connection.sendfile(fh, offset=start, count=end - start)
            self.up.count(keys, sent)
            return
        drop = kinds.get("drop_after", {}).get("bytes")
        stall = kinds.get("stall")
        rate = kinds.get("slow", {}).get("bytes_per_s")
        pos, written = start, 0
        chunk_size = min(_CHUNK, max(4096, int(rate / 50))) if rate else _CHUNK
        while pos < end:
            n = min(chunk_size, end - pos)
            if drop is not None:
                n = min(n, drop - written)
            if stall is not None and written <= stall.get("after", 0) < written + n:
                n = max(0, stall.get("after", 0) - written)
            if n > 0:
                self.wfile.write(blob.read(pos, pos + n))
                pos, written = pos + n, written + n
                self.up.count(keys, n)
            if drop is not None and written >= drop:
                self._abort()
                return
            if stall is not None and written >= stall.get("after", 0):
                self.wfile.flush()
                time.sleep(stall.get("seconds", 5))
                stall = None
            if rate and pos < end:  # the last piece is not followed by a pause: the body is complete
                time.sleep(n / rate)

    def _abort(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=N-`` / ``bytes=N-M`` / ``bytes=-K`` → (start, end-exclusive); None when unsatisfiable."""
    spec = header.strip().lower().removeprefix("bytes=").split(",")[0].strip()
    first, _, last = spec.partition("-")
    if first == "":
        k = int(last or 0)
        return (max(0, size - k), size) if k > 0 and size > 0 else None
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or end <= start:
        return None
    return start, end

