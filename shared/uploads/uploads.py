"""A resumable upload of a model file, in the manner of tus: ``create`` names the target (folder, root,
subfolder, file name), the size and optionally the SHA256; each ``write`` appends the bytes that start at the
upload's current offset (a chunk sent at any other offset is refused with the offset to resume from); the chunk
that reaches the size publishes the file.

- Nothing is held in memory: a chunk streams from the request into a hidden partial beside the target
  (``.NAME.upload.<id>.a1.part``, the downloads' naming, so the hygiene job removes one a closed browser left
  behind once it is ``stale_partial_s`` old). No file ever appears under the model's name until it is complete.
- Hashed inline: the six hashes are fed as the bytes arrive, by a hasher each web process keeps per upload; a
  chunk that reaches another process (or a restarted one) re-reads the partial up to its offset first, from the
  page cache, and goes on.
- Checked at the door and at the end: an HTML page or a JSON document is refused by its first bytes; the
  complete file passes the structural checks of its format (a pickle named ``.safetensors`` fails them) and the
  given SHA256, else it is removed and the upload fails with the reason.
- The record (target, size, offset) lives in Redis, so any web process continues any upload, and expires with
  the partial's age limit."""
from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, TypedDict, cast

import orjson

from shared.config import Settings
from shared.downloads.publish import check_free_space
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.files import fsync_dir
from shared.keys import PREFIX
from shared.media.formats import sniff, validate_file
from shared.media.hashing import MultiHasher
from shared.partials import partial_for
from shared.store.index import StoreIndex
from shared.store.sidecar_files import check_model_name

#: The host part of an upload's partial name (a download's is the host that writes it).
PARTIAL_HOST = "upload"
_PIECE = 1024 * 1024
_IDLE_HASHER_S = 900.0


class Upload(TypedDict):
    id: str
    folder: str
    path_index: int
    relpath: str
    size: int
    offset: int
    sha256: str | None
    created_at: float
    updated_at: float
    #: the published model, once the last chunk arrived
    model: dict[str, Any] | None


def _key(upload_id: str) -> str:
    return f"{PREFIX}upload:{upload_id}"


class Uploads:
    """Uploads of one web process: records in Redis, hashers in this process."""

    def __init__(self, redis: Any, settings: Settings, index: StoreIndex) -> None:
        self.redis, self.settings, self.index = redis, settings, index
        self._hashers: dict[str, tuple[int, MultiHasher, float]] = {}
        self._lock = threading.Lock()

    # --- records ------------------------------------------------------------------------------------------

    def _save(self, up: Upload) -> None:
        self.redis.set(_key(up["id"]), orjson.dumps(up), ex=int(self.settings.stale_partial_s))

    def get(self, upload_id: str) -> Upload:
        raw = self.redis.get(_key(upload_id)) if upload_id.isalnum() and len(upload_id) == 32 else None
        if raw is None:
            raise NotFound(f"No upload {upload_id[:40]!r}: it finished, was cancelled, or expired; start it again.")
        return cast(Upload, orjson.loads(raw))

    def _target(self, up: Upload) -> Path:
        return self.index.layout.resolve(up["folder"], up["path_index"], up["relpath"])

    def _partial(self, up: Upload) -> Path:
        return partial_for(self._target(up), PARTIAL_HOST, up["id"], 1)

    # --- the protocol -------------------------------------------------------------------------------------

    def create(self, folder: str, path_index: int, relpath: str, size: int, sha256: str | None) -> Upload:
        """Start an upload into ``folder``/``path_index``/``relpath`` (validated by the caller); refused when
        the name is taken, the size is over the cap or the disk has no room for it."""
        target = self.index.layout.resolve(folder, path_index, relpath)
        check_model_name(target.name)
        if not self.index.layout.folder(folder).accepts(target.name):
            raise InvalidRequest(f"Field 'filename': folder {folder!r} does not hold {target.suffix!r} files.")
        if size > self.settings.upload_max_bytes:
            raise InvalidRequest(f"Field 'size': {size} bytes is over the upload limit of "
                                 f"{self.settings.upload_max_bytes} (DEPOT_UPLOAD_MAX_BYTES).",
                                 code="file_too_large", http_status=413)
        if os.path.lexists(target):
            raise Conflict(f"{folder}/{relpath} already exists; delete or rename it first, or upload under "
                           "another name.")
        target.parent.mkdir(parents=True, exist_ok=True)
        check_free_space(target.parent, size)
        now = time.time()
        up = Upload(id=uuid.uuid4().hex, folder=folder, path_index=path_index, relpath=relpath, size=size,
                    offset=0, sha256=sha256.upper() if sha256 else None, created_at=now, updated_at=now,
                    model=None)
        self._partial(up).touch()
        self._save(up)
        return up

    def write(self, upload_id: str, offset: int, stream: IO[bytes], length: int) -> Upload:
        """Append ``length`` bytes read from ``stream`` at ``offset`` (the upload's current offset); the chunk
        that completes the file publishes it (``model`` is then set)."""
        lock = self.redis.lock(f"{PREFIX}lock:upload:{upload_id}", timeout=300, blocking_timeout=0)
        if not lock.acquire():
            raise Conflict("Another chunk of this upload is being written; send one chunk at a time.")
        try:
            up = self.get(upload_id)
            if offset != up["offset"]:
                raise Conflict(f"This upload is at byte {up['offset']}, not {offset}: resume from there.",
                               details={"offset": up["offset"]})
            if length <= 0 or offset + length > up["size"]:
                raise InvalidRequest(f"A chunk at {offset} of {length} bytes does not fit an upload of "
                                     f"{up['size']} bytes.")
            part = self._partial(up)
            hasher = self._hasher(up, part)
            try:
                written = self._append(part, offset, stream, length, hasher, up)
            except BaseException:
                self._drop_hasher(upload_id)
                raise
            up["offset"], up["updated_at"] = offset + written, time.time()
            if up["offset"] == up["size"]:
                up["model"] = self._publish(up, part, hasher)
                self.redis.delete(_key(upload_id))
            else:
                with self._lock:
                    self._hashers[upload_id] = (up["offset"], hasher, time.monotonic())
                self._save(up)
            return up
        finally:
            with contextlib.suppress(Exception):
                lock.release()

    def cancel(self, upload_id: str) -> None:
        up = self.get(upload_id)
        self._drop_hasher(upload_id)
        self._partial(up).unlink(missing_ok=True)
        self.redis.delete(_key(upload_id))

    # --- the bytes ----------------------------------------------------------------------------------------

    def _append(self, part: Path, offset: int, stream: IO[bytes], length: int, hasher: MultiHasher,
                up: Upload) -> int:
        written = 0
        with open(part, "r+b") as fh:
            fh.seek(offset)
            while written < length:
                piece = stream.read(min(_PIECE, length - written))
                if not piece:
                    break
                if offset + written == 0 and (kind := sniff(piece[:64])) in ("html", "json"):
                    self._fail(up, part)
                    what = "an HTML page" if kind == "html" else "a JSON document"
                    raise InvalidRequest(f"{Path(up['relpath']).name} is {what}, not a model file (often a "
                                         "login or error page saved by a browser); upload the model itself.",
                                         code="html_instead_of_model")
                fh.write(piece)
                hasher.update(piece)
                written += len(piece)
            fh.truncate(offset + written)  # what a client cut short is not kept beyond what arrived
        if written < length:
            raise InvalidRequest(f"The chunk ended after {written} of its {length} bytes; resume from "
                                 f"{offset + written}.", details={"offset": offset + written})
        return written

    def _hasher(self, up: Upload, part: Path) -> MultiHasher:
        """This upload's hasher at its offset: kept from the last chunk in this process, else made and fed the
        partial's bytes so far."""
        self._evict_idle()
        with self._lock:
            kept = self._hashers.pop(up["id"], None)
        if kept is not None and kept[0] == up["offset"]:
            return kept[1]
        if kept is not None:
            kept[1].abort()
        hasher = MultiHasher()
        with open(part, "rb") as fh:
            left = up["offset"]
            while left > 0 and (chunk := fh.read(min(8 * _PIECE, left))):
                hasher.update(chunk)
                left -= len(chunk)
        return hasher

    def _drop_hasher(self, upload_id: str) -> None:
        with self._lock:
            kept = self._hashers.pop(upload_id, None)
        if kept is not None:
            kept[1].abort()

    def _evict_idle(self) -> None:
        cutoff = time.monotonic() - _IDLE_HASHER_S
        with self._lock:
            idle = [k for k, (_o, _h, at) in self._hashers.items() if at < cutoff]
            gone = [self._hashers.pop(k)[1] for k in idle]
        for hasher in gone:
            hasher.abort()

    def _fail(self, up: Upload, part: Path) -> None:
        part.unlink(missing_ok=True)
        self.redis.delete(_key(up["id"]))

    def _publish(self, up: Upload, part: Path, hasher: MultiHasher) -> dict[str, Any]:
        hashes = hasher.digests()
        _kind, reason = validate_file(part, Path(up["relpath"]).name)
        if reason is None and up["sha256"] and hashes.get("SHA256") != up["sha256"]:
            reason = f"its SHA256 is {hashes.get('SHA256')}, not the {up['sha256']} given"
            code = "hash_mismatch"
        else:
            code = "invalid_model"
        if reason is not None:
            self._fail(up, part)
            raise InvalidRequest(f"The uploaded file was not kept: {reason}.", code=code, http_status=422)
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target = self._target(up)
        try:
            os.link(part, target)  # never over a file that appeared under the name meanwhile
        except FileExistsError:
            self._fail(up, part)
            raise Conflict(f"{up['folder']}/{up['relpath']} appeared while the upload ran; the upload was not "
                           "kept. Upload it under another name.") from None
        part.unlink()
        fsync_dir(target.parent)
        return self.index.record_file(target, hashes=hashes)
