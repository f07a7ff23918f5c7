"""The search rows a process keeps (one generation of them) and the sorted orders built from them, so a page is
a slice and a few changed rows are moved into place instead of sorting again; a search looks up the rows that
can match in a word index (``words``) rather than reading every row."""
from __future__ import annotations

import bisect
import heapq
import operator
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.store.index.filters import Filters, Row, columns, row_filter, select, terms
from shared.store.index.words import MARKS, Mask, WordIndex, give_back_memory, pieces

#: Sort keys read from a search row ("size TAB created TAB modified TAB lower(name) TAB text ...") without
#: splitting all of it (a process re-reads every row after each index change).
_SORT_KEY: dict[str, Callable[[Row], Any]] = {
    "size": lambda r: int(r[1][:r[1].index("\t")]),
    "created": lambda r: int(r[1].split("\t", 2)[1]),
    "modified": lambda r: int(r[1].split("\t", 3)[2]),
    "name": lambda r: r[1].split("\t", 4)[3],
    # the id: folder, root, then the path inside it (the list view's folder column)
    "path": lambda r: r[0],
    # models of no recorded base model come last, then by name
    "base_model": lambda r: _base_key(r[1]),
}


def _base_key(row: str) -> tuple[bool, str, str]:
    cols = columns(row)
    base = cols[5].lower()
    return (not base, base, cols[3])


_row_id = operator.itemgetter(0)
_row_slot = operator.itemgetter(2)
#: Rows written since the word index was built are read one by one; past this many (or a 50th of the rows), it
#: is built again
_FRESH_ROWS = 2000
_SLOT_MOVES = 8


class Rows:
    """One generation of the search rows, kept per process: the id-ordered ``(id, row, slot)`` rows and, built
    on first use, each (folder, sort) order of them, so paging is a slice, and the word index searches look up.
    ``updated`` makes the next generation from a few changed rows without sorting again."""

    def __init__(self, gen: str | None, rows: list[Row], next_slot: int | None = None) -> None:
        self.gen, self.rows = gen, rows
        self.next_slot = len(rows) if next_slot is None else next_slot
        self._orders: dict[tuple[str | None, str], list[Row]] = {}
        self._order_slots: dict[tuple[str | None, str], npt.NDArray[np.int32]] = {}
        self._counts: dict[str, int] | None = None
        self._facets: dict[str | None, dict[str, Any]] = {}
        self._lock = threading.Lock()
        #: the word index (shared with the generations after this one) and the rows written since it was built
        self._words: WordIndex | None = None
        self._fresh: dict[str, Row] = {}

    @classmethod
    def load(cls, gen: str | None, latest: dict[str, str]) -> Rows:
        """A generation of every id's row (no pairs made on the way: a million would stay in the heap)."""
        return cls(gen, [(mid, latest[mid], slot) for slot, mid in enumerate(sorted(latest))])

    def counts(self) -> dict[str, int]:
        """Models per folder, counted once per generation of the rows (the library's folder chips)."""
        with self._lock:
            if self._counts is None:
                self._counts = dict(Counter(r[0].partition("/")[0] for r in self.rows))
            return self._counts

    def facets(self, folder: str | None) -> dict[str, Any]:
        """Models per base model ("" none recorded), per type, per tag and per subfolder (every level, of all
        roots) of one folder or of all, and its favorites: the library's chips and tree, counted once per
        generation."""
        with self._lock:
            got = self._facets.get(folder)
        if got is not None:
            return got
        prefix = f"{folder}/" if folder else ""
        bases: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        dirs: Counter[str] = Counter()
        tags: Counter[str] = Counter()
        favorites = updates = no_preview = 0
        verdicts: Counter[str] = Counter()
        for mid, row, _slot in self.rows:
            if not mid.startswith(prefix):
                continue
            cols = columns(row)
            bases[cols[5]] += 1
            kinds[cols[6]] += 1
            text = cols[4]
            # Marks end the text, each after a space (``_search_row``): found without splitting most rows
            if "tag:" in text:
                tags.update(w[4:] for w in text.split() if w.startswith("tag:") and len(w) > 4)
            favorites += " fav:1" in text
            updates += " has:update" in text
            no_preview += text.endswith(" no:preview")
            if (at := text.find(" verify:")) >= 0:
                verdicts[text[at + 8:].partition(" ")[0]] += 1
            if folder:
                parts = mid.split("/", 2)[2].split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    dirs["/".join(parts[:depth])] += 1
        got = {"base_models": dict(bases), "types": dict(kinds), "dirs": dict(dirs), "tags": dict(tags),
               "favorites": favorites, "updates": updates, "no_preview": no_preview, "verify": dict(verdicts)}
        with self._lock:
            self._facets[folder] = got
        return got

    def order_count(self) -> int:
        with self._lock:
            return len(self._orders)

    def updated(self, gen: str | None, changed: dict[str, str | None]) -> Rows:
        """The rows of ``gen``: these ids now have these rows (None: removed). A row written again the same (a
        hash recorded, which the row does not show) keeps its slot and its places."""
        rows = list(self.rows)
        old: dict[str, str] = {}
        slot = self.next_slot
        now: dict[str, Row | None] = {}
        for mid, text in sorted(changed.items()):
            i = bisect.bisect_left(rows, mid, key=_row_id)
            present = i < len(rows) and rows[i][0] == mid
            if present and rows[i][1] == text:
                continue
            row = now[mid] = None if text is None else (mid, text, slot)
            slot += row is not None
            if present:
                old[mid] = rows[i][1]
                if row is None:
                    del rows[i]
                else:
                    rows[i] = row
            elif row is not None:
                rows.insert(i, row)
        new = Rows(gen, rows, slot)
        with self._lock:
            orders = dict(self._orders)
            fresh = dict(self._fresh)
            # A few changes move each order's slots too (a copy of the array per move); more, and they are
            # read again from the order on the next search
            slots = dict(self._order_slots) if len(now) <= _SLOT_MOVES else {}
        for mid, row in now.items():
            if row is None:
                fresh.pop(mid, None)
            else:
                fresh[mid] = row
        new._keep_words(self._words, fresh)
        for (folder, sort), order in orders.items():
            moved, moved_slots = _reordered(order, folder, sort, old, now, slots.get((folder, sort)))
            new._orders[(folder, sort)] = moved
            if moved_slots is not None:
                new._order_slots[(folder, sort)] = moved_slots
        return new

    def differing(self, rows: dict[str, str | None]) -> dict[str, str | None]:
        """Those of ``rows`` (id -> row, None: gone) that are not what this generation holds."""
        have, out = self.rows, {}
        for mid, text in rows.items():
            i = bisect.bisect_left(have, mid, key=_row_id)
            held = have[i][1] if i < len(have) and have[i][0] == mid else None
            if text != held:
                out[mid] = text
        return out

    def changes(self, latest: dict[str, str]) -> dict[str, str | None]:
        """What changed from these rows to ``latest`` (every id's row, read whole): the new row, None if gone."""
        changed: dict[str, str | None] = {}
        get = latest.get
        for mid, row, _slot in self.rows:
            now = get(mid)
            if now != row:
                changed[mid] = now
        if len(latest) > len(self.rows) - sum(row is None for row in changed.values()):
            known = {r[0] for r in self.rows}
            changed.update((mid, latest[mid]) for mid in latest.keys() - known)
        return changed

    def rebuilt(self, gen: str | None, changed: dict[str, str | None]) -> Rows:
        """The rows of ``gen`` with many ``changed`` (``changes``): the sorted orders are made again on use, but
        every unchanged row keeps its slot, so the word index stays and reads only the changed rows."""
        slot = self.next_slot
        added: list[Row] = []
        for mid, row in sorted((m, r) for m, r in changed.items() if r is not None):
            added.append((mid, row, slot))
            slot += 1
        kept = [r for r in self.rows if r[0] not in changed]
        new = Rows(gen, list(heapq.merge(kept, added, key=_row_id)), slot)
        with self._lock:
            fresh = {mid: r for mid, r in self._fresh.items() if mid not in changed}
        fresh.update((r[0], r) for r in added)
        new._keep_words(self._words, fresh)
        return new

    def _keep_words(self, words: WordIndex | None, fresh: dict[str, Row]) -> None:
        """Carry the word index over, with the rows written since it was built; past a few, drop it to be
        built on the next search (carrying them from generation to generation costs more than that)."""
        if words is not None and not self._too_fresh(len(fresh)):
            self._words, self._fresh = words, fresh

    def _too_fresh(self, count: int) -> bool:
        return count > max(_FRESH_ROWS, len(self.rows) // 50)

    def ids(self, folder: str | None) -> list[str]:
        prefix = f"{folder}/" if folder else ""
        return [r[0] for r in self.rows if r[0].startswith(prefix)]

    def matching(self, folder: str | None, sort: str, f: Filters) -> list[Row]:
        """The rows of one (folder, sort) order a listing with ``f`` keeps, in that order."""
        order = self.ordered(folder, sort)
        keep = row_filter(f)
        if keep is None:
            return order
        wanted, only_words = terms(f)
        mask, exact = self._holding(wanted, f)
        if mask is None:
            return select(order, f, keep)
        hits = np.flatnonzero(mask[self.slots_of(folder, sort)])
        picked = order if len(hits) == len(order) else [order[i] for i in hits.tolist()]
        return picked if exact and only_words else [r for r in picked if keep(r)]

    def _holding(self, wanted: list[str], f: Filters) -> tuple[Mask | None, bool]:
        """Which slots can hold every term and have the base model, type, ids and absent marks ``f`` asks for
        (None: the index cannot narrow them), and whether exactly those do as far as the terms go."""
        words, fresh = self._word_index()
        later = [(row[2], columns(row[1])) for row in fresh]  # the rows the index has not seen, split once
        masks: list[Mask] = []

        def narrow(got: Mask, test: Callable[[list[str]], bool]) -> None:
            for slot, cols in later:
                got[slot] = test(cols)
            masks.append(got)

        exact = True
        for term in wanted:
            parts, whole = pieces(term)
            exact = exact and whole
            for part in parts:
                if (got := words.holding(part, self.next_slot)) is None:
                    exact = False
                else:
                    narrow(got, lambda cols: part in cols[4])  # noqa: B023 - narrow calls it at once
        if f.base is not None:
            base = f.base.lower()
            narrow(words.with_value("base", base, self.next_slot), lambda cols: cols[5].lower() == base)
        if f.kind is not None:
            kind = f.kind
            narrow(words.with_value("kind", kind, self.next_slot), lambda cols: cols[6] == kind)
        for mark, lacking in ((MARKS[0], f.verify == "none"), (MARKS[1], f.no_preview is False)):
            if lacking:
                narrow(words.without(mark, self.next_slot), lambda cols: mark not in f" {cols[4]} ")  # noqa: B023
        if f.ids is not None:
            got = np.zeros(self.next_slot, np.bool_)
            for mid in f.ids:
                i = bisect.bisect_left(self.rows, mid, key=_row_id)
                if i < len(self.rows) and self.rows[i][0] == mid:
                    got[self.rows[i][2]] = True
            masks.append(got)
        if not masks:
            return None, exact
        mask = masks[0]
        for more in masks[1:]:
            mask &= more
        return mask, exact

    def _word_index(self) -> tuple[WordIndex, list[Row]]:
        """The word index and the rows written since it was built (built again when they are many)."""
        with self._lock:
            if self._words is None or self._too_fresh(len(self._fresh)):
                self._words = WordIndex(((r[2], r[1]) for r in self.rows), self.next_slot)
                self._fresh = {}
                give_back_memory()
            return self._words, list(self._fresh.values())

    def slots_of(self, folder: str | None, sort: str) -> npt.NDArray[np.int32]:
        """The slots of one (folder, sort) order, position by position."""
        order = self.ordered(folder, sort)
        with self._lock:
            got = self._order_slots.get((folder, sort))
            if got is None:
                got = self._order_slots[(folder, sort)] = np.fromiter(map(_row_slot, order), np.int32, len(order))
            return got

    def ordered(self, folder: str | None, sort: str) -> list[Row]:
        with self._lock:
            got = self._orders.get((folder, sort))
            if got is None:
                prefix = f"{folder}/" if folder else ""
                got = [r for r in self.rows if r[0].startswith(prefix)] if prefix else list(self.rows)
                # Ties fall back to the id: the rows are already in id order and Python's sort is stable.
                got.sort(key=_SORT_KEY[sort])
                self._orders[(folder, sort)] = got
            return got


def _reordered(order: list[Row], folder: str | None, sort: str, old: dict[str, str],
               changed: dict[str, Row | None],
               slots: npt.NDArray[np.int32] | None = None) -> tuple[list[Row], npt.NDArray[np.int32] | None]:
    """One (folder, sort) order with the changed rows moved, and its slots (``slots_of``) moved alike when
    given: it is sorted by (sort key, id), as a stable sort of id-ordered rows leaves it, so each row is found
    and placed by bisection."""
    sort_key = _SORT_KEY[sort]

    def key(r: Row) -> tuple[Any, str]:
        return sort_key(r), r[0]

    prefix = f"{folder}/" if folder else ""
    if not any(mid.startswith(prefix) for mid in changed):
        return order, slots  # never changed in place: the next generation shares it
    out = list(order)
    for mid, row in changed.items():
        if not mid.startswith(prefix):
            continue
        if mid in old:
            i = bisect.bisect_left(out, key((mid, old[mid], -1)), key=key)
            if i < len(out) and out[i][0] == mid:
                del out[i]
                slots = None if slots is None else np.delete(slots, i)
        if row is not None:
            i = bisect.bisect_right(out, key(row), key=key)
            out.insert(i, row)
            slots = None if slots is None else np.insert(slots, i, row[2])
    return out, slots
