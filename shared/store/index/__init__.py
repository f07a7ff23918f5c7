"""The model index in Redis (see ``keys`` for its keys). Listing and search never walk the disk; the scan job
and the publishers (downloads, moves) keep it current. A model's id is ``<folder>/<path_index>/<relpath>``, so
``x.safetensors`` and ``x.gguf`` in one directory are two models; they share the sidecars of their stem
(``shared.store.siblings``), which their documents mark ``stem_shared`` and their directory lines end ``+2``.

``keys``: the Redis keys and ids; ``docs``: the document and the ``Model`` made from it; ``rows``: the per-process
search rows and sorted orders; ``filters``: what a listing keeps of them; ``words``: the per-process word index a
search looks its rows up in; ``dirsigs``: directory signatures and the scan's bookkeeping; ``reads`` and
``writes``: the two halves of ``StoreIndex``."""
from __future__ import annotations

import threading

import redis as redis_lib

from shared.config import Settings
from shared.store.index.dirsigs import side_sig, stat_sig
from shared.store.index.docs import (
    ModelDoc,
    build_doc,
    display_name,
    keep_known,
    keep_shared,
    load_doc,
    model_json,
    preview_url,
    same_file,
    same_hashed_file,
    to_model,
)
from shared.store.index.filters import VERDICTS, Filters
from shared.store.index.keys import (
    CHANGES,
    DOC,
    GEN,
    SORTS,
    UNHASHED,
    dirs_key,
    fp_key,
    model_id,
    pack_dir,
    split_id,
    unpack_dir,
)
from shared.store.index.rows import Rows
from shared.store.index.writes import IndexWrites
from shared.store.layout import StoreLayout

__all__ = ["CHANGES", "DOC", "GEN", "SORTS", "UNHASHED", "VERDICTS", "Filters", "ModelDoc", "StoreIndex",
           "build_doc", "dirs_key", "display_name", "fp_key", "keep_known", "keep_shared", "load_doc", "model_id",
           "model_json", "pack_dir", "preview_url", "same_file", "same_hashed_file", "side_sig", "split_id",
           "stat_sig", "to_model", "unpack_dir"]


class StoreIndex(IndexWrites):
    """Reads and writes the model index; one per process (it caches search rows)."""

    def __init__(self, redis: redis_lib.Redis, settings: Settings, layout: StoreLayout | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.layout = layout or StoreLayout.from_settings(settings)
        self._cache = Rows("", [])
        self._cache_lock = threading.Lock()
        self.full_reloads = 0  # times this process re-read every search row (the rest were caught up)
        self._duplicates: tuple[str | None, frozenset[str]] | None = None  # (gen, ids) of the last answer
