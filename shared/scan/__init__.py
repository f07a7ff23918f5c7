"""The scan job: bring the Redis index in line with the disk. ``quick`` walks every root with ``os.scandir`` and
compares (size, mtime_ns, inode, sidecar signature) against the index, so an unchanged file costs one stat and
one dict lookup; new or changed files are indexed with their sidecar summary and hashed (files larger than
``settings.lazy_hash_bytes`` are left for a full scan or verify). ``full`` rehashes everything. Files that
vanished are dropped, but a root that cannot be read at all is kept and reported in ``unreachable_roots``. One
scan per root at a time across hosts (a redis-py ``Lock``, held until its files are hashed); a root held by
another scan is reported in ``busy_roots``. Symbolic links inside a root are not followed, as the API refuses
paths that resolve outside their root and a link within the root is a second path to models the walk reaches
anyway (or a loop); they are counted in ``links_skipped`` with a sample in ``links_sample``. Progress (files,
bytes) streams through the job context, which also makes the job cancellable.

Directories the index has never seen (a first scan, a newly added library) are handed, in chunks of about
``_CHUNK_FILES`` files, to ``settings.scan_processes`` forked processes that stat them, read their sidecars and
write their documents, while this process keeps walking; reading sidecars is per-file Python work that one
process cannot do at the speed of the walk. billiard (Celery's own process library) is used because a prefork
worker's children are daemonic and the standard library refuses to fork from those.

``job``: params, roots and the run; ``locks``: the roots' locks; ``walk``: the walk of a root; ``directory``:
indexing one directory; ``pool``: the scan processes; ``writer``: the background index writes; ``hashing``:
hashing after the walk; ``totals``: the counts."""
from __future__ import annotations

from shared.scan.job import MODES, idem_key, run_scan, scan_roots, submit_params

__all__ = ["MODES", "idem_key", "run_scan", "scan_roots", "submit_params"]
