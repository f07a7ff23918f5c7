"""The walk of one root: directories the index knows are compared here; directories it has never seen are handed
in chunks to the scan processes (``pool``) while the walk goes on; what vanished is dropped at the end."""
from __future__ import annotations

import os
import threading
from typing import Any

import billiard

from shared.jobs import JobContext
from shared.scan.directory import DirectoryIndexer, fingerprint
from shared.scan.locks import RootLocks
from shared.scan.pool import child_init, index_new_dirs
from shared.scan.totals import Totals
from shared.store.index import StoreIndex, unpack_dir
from shared.store.layout import Folder

FLUSH = 1000
CHUNK_FILES = 2000  # files of new directories per task of the scan processes
LINKS_SAMPLE = 20


class RootScan(DirectoryIndexer):
    """Walks one root. Each directory's model lines are compared with the stored packed string first, so an
    unchanged directory costs one string compare; changed documents are written in batches and vanished ones
    dropped at the end."""

    def __init__(self, ctx: JobContext, index: StoreIndex, folder: Folder, pi: int, root: str, full: bool,
                 totals: Totals, locks: RootLocks) -> None:
        known_dirs, known_fp = index.dir_sigs(folder.name, pi)
        super().__init__(index, folder, pi, root, full, totals, known_dirs=known_dirs, known_fp=known_fp,
                         threaded=True)
        self.ctx, self.locks = ctx, locks
        self.processes = index.settings.scan_processes or os.cpu_count() or 1
        self.new_dirs: list[str] = []
        self.new_files = 0
        self.pool: Any = None
        self.results: list[Any] = []

    def run(self) -> None:
        try:
            self._walk()
        finally:
            try:
                self._stop_pool()
            finally:
                self.writer.close()

    def _tick(self) -> None:
        """Keep the roots' locks and report progress (which raises if the user cancelled)."""
        self.locks.renew()
        self.ctx.progress(self.totals.files, None, files=self.totals.files, phase="walking")

    def _walk(self) -> None:
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            if self.processes > 1 and not self._known(rel_dir):
                self._new_directory(rel_dir, stack)
            else:
                self._directory(rel_dir, stack)
            self._tick()
            if len(self.pending) >= FLUSH:
                self._flush()
        self._hand_out(final=True)
        self._collect()
        # Every directory passed through this process's listing, so its links are all of them.
        t = self.totals
        t.links_skipped += len(self.links)
        t.links_sample.extend({"folder": self.folder.name, "path_index": self.pi, "relpath": rel}
                              for rel in sorted(self.links)[:max(0, LINKS_SAMPLE - len(t.links_sample))])
        stale_dirs = [d for d in self.known_dirs | set(self.known_fp) if d not in self.visited
                      and not any((d + "/").startswith(f) for f in self.failed_dirs)]
        for d in stale_dirs:
            self._drop(d, list(unpack_dir(self._old_lines(d))))
        self._flush()

    def _new_directory(self, rel_dir: str, stack: list[str]) -> None:
        """A directory the index does not know: list its names only and queue it for the scan processes, which
        stat and read it."""
        listed = self._enter(rel_dir, stack, stat=False)
        if listed is None:
            return
        files = listed[0]
        if not files:
            self.fps[rel_dir] = f"0|{fingerprint([], 0, 0, 0)}"  # only folders inside: known from now on
            return
        self.new_dirs.append(rel_dir)
        self.new_files += len(files)
        if self.new_files >= CHUNK_FILES:
            self._hand_out()

    def _hand_out(self, final: bool = False) -> None:
        """Give the queued new directories to the scan processes (started by the first full chunk; a scan that
        never fills one does them here)."""
        if not self.new_dirs:
            return
        if self.pool is None and final:
            for rel_dir in self.new_dirs:
                self._directory(rel_dir, [])
        else:
            if self.pool is None:
                self.pool = billiard.get_context("fork").Pool(
                    self.processes, initializer=child_init,
                    initargs=((self.index, self.folder, self.pi, self.root, self.full),))
                self.totals.processes = max(self.totals.processes, self.processes)
            self.results.append(self.pool.apply_async(index_new_dirs, (self.new_dirs,)))
        self.new_dirs, self.new_files = [], 0

    def _collect(self) -> None:
        """Wait for the scan processes' chunks (they wrote their documents themselves) and add up their counts."""
        for res in self.results:
            while not res.ready():
                res.wait(0.2)
                self._tick()
            got = res.get()
            t = self.totals
            t.files, t.added, t.lazy = t.files + got["files"], t.added + got["added"], t.lazy + got["lazy"]
            t.to_hash.extend(got["to_hash"])
            self.failed_dirs.extend(got["failed_dirs"])
        self.results = []

    def _stop_pool(self) -> None:
        """Let the scan processes go without waiting for them: billiard's ``close`` waits for its supervisor
        thread's next tick (up to 0.1 s) and ``join`` polls for about a second, so both run on a thread. On an
        error or a cancel they are terminated."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        stop = pool.terminate if self.results else lambda: (pool.close(), pool.join())
        threading.Thread(target=stop, name="scan-pool-stop", daemon=True).start()
