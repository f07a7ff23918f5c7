"""The search rows a process keeps (one generation of them) and the sorted orders built from them, so a page is
a slice and a few changed rows are moved into place instead of sorting again; a search looks up the rows that
can match in a word index (``words``) rather than reading every row."""
from __future__ import annotations

import bisect
import operator
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.store.index.words import Mask, WordIndex, pieces

#: ``(id, row, slot)``: the slot names this version of the row in the word index (a changed row gets a new one)
Row = tuple[str, str, int]


def token_matcher(token: str) -> Callable[[str], bool]:
    if "*" not in token:
        return lambda text: token in text
    pattern = re.compile(".*".join(re.escape(p) for p in token.split("*")))
    return lambda text: pattern.search(text) is not None


def _columns(row: str) -> list[str]:
    """A search row's seven columns (a row written before the facet columns has empty ones)."""
    cols = row.split("\t", 6)
    return cols + [""] * (7 - len(cols))


#: The verify filter's values: a verdict, or ``none`` (never verified).
VERDICTS = ("ok", "mismatch", "invalid", "unknown", "none")


@dataclass(frozen=True)
class Filters:
    """What a listing keeps: every search token in a row's text, this base model (case-insensitive; "" is
    none recorded), this type, under this subfolder (of any root), with this tag (whole, case-insensitive),
    favorites only, models with an update only, this verify verdict, with or without a preview, these ids."""

    q: str | None = None
    base: str | None = None
    kind: str | None = None
    subdir: str | None = None
    tag: str | None = None
    favorite: bool = False
    update: bool = False
    #: a verify verdict (``ok``, ``mismatch``, ``invalid``, ``unknown``) or ``none`` (never verified)
    verify: str | None = None
    #: True: only models without a preview (False: only with one)
    no_preview: bool | None = None
    #: only these ids (the duplicates)
    ids: frozenset[str] | None = None


def _plain(f: Filters) -> list[str]:
    """The words a kept row must hold somewhere (the search's plain tokens, and the marks of the filters)."""
    plain = [t for t in (f.q or "").lower().split() if t.strip("*") and "*" not in t]
    if f.tag:
        plain.append(f"tag:{f.tag.lower()}")
    if f.favorite:
        plain.append("fav:1")
    if f.update:
        plain.append("has:update")
    if f.verify and f.verify != "none":
        plain.append(f"verify:{f.verify}")
    if f.no_preview:
        plain.append("no:preview")
    return plain


def _terms(f: Filters) -> tuple[list[str], bool]:
    """What every kept row's text holds (the search's tokens, wildcards too, and the filters' marks), and
    whether holding them is all ``f`` asks."""
    tokens = [t for t in (f.q or "").lower().split() if t.strip("*")]
    plain = _plain(f)
    marks = len(plain) - sum("*" not in t for t in tokens)
    only_words = (not marks and f.base is None and f.kind is None and f.ids is None
                  and not (f.subdir or "").strip("/") and f.verify != "none" and f.no_preview is not False)
    return list(dict.fromkeys(tokens + plain)), only_words


def select(pairs: list[Row], f: Filters, keep: Callable[[Row], bool]) -> list[Row]:
    """The rows of ``pairs`` a listing with ``f`` keeps (``keep = row_filter(f)``), in their order, each read."""
    # The longest word first, in a comprehension whose ``in`` runs in C with no call per row: most rows of a
    # big library fail it, and only the rest get the whole check
    plain = _plain(f)
    if plain:
        first = max(plain, key=len)
        pairs = [p for p in pairs if first in p[1]]
    return [p for p in pairs if keep(p)]


def row_filter(f: Filters) -> Callable[[Row], bool] | None:
    """What a listing keeps of the ``(id, row, slot)`` rows (``Filters``); None keeps all."""
    tokens = [t for t in (f.q or "").lower().split() if t.strip("*")]
    matchers = [token_matcher(t) for t in tokens]
    # A plain token missing from the whole row is missing from its text: most rows fail this substring test,
    # done in C, before any is split into columns
    plain = _plain(f)
    absent = [" verify:"] if f.verify == "none" else []
    absent += [" no:preview "] if f.no_preview is False else []
    # A tag is a whole word of the text, in the search box too: "tag:anime" does not keep a row tagged
    # "anime-style"
    words = [f" {t} " for t in plain if t.startswith(("tag:", "fav:", "has:", "verify:", "no:"))]
    base_l = None if f.base is None else f.base.lower()
    under = f.subdir.strip("/") + "/" if f.subdir and f.subdir.strip("/") else None
    if not plain and not matchers and base_l is None and f.kind is None and under is None and not absent \
            and f.ids is None:
        return None

    ids = f.ids
    kind = f.kind

    def keep(pair: Row) -> bool:
        # Each check only when its filter is set: this runs once per row of the library
        if ids is not None and pair[0] not in ids:
            return False
        row = pair[1]
        for token in plain:
            if token not in row:
                return False
        cols = _columns(row)
        text = cols[4]
        for m in matchers:
            if not m(text):
                return False
        if base_l is not None and cols[5].lower() != base_l:
            return False
        if kind is not None and cols[6] != kind:
            return False
        if under is not None and not pair[0].split("/", 2)[2].startswith(under):
            return False
        if words or absent:
            padded = f" {text} "
            return all(w in padded for w in words) and not any(a in padded for a in absent)
        return True

    return keep


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
    cols = _columns(row)
    base = cols[5].lower()
    return (not base, base, cols[3])


_row_id = operator.itemgetter(0)
_row_slot = operator.itemgetter(2)
#: Rows written since the word index was built are read one by one; past this many (or a 50th of the rows), it
#: is built again
_FRESH_ROWS = 2000


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
    def load(cls, gen: str | None, pairs: list[tuple[str, str]]) -> Rows:
        """A generation of every ``(id, row)`` pair, in id order."""
        return cls(gen, [(mid, row, slot) for slot, (mid, row) in enumerate(pairs)])

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
            cols = _columns(row)
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

    def updated(self, gen: str, changed: dict[str, str | None]) -> Rows:
        """The rows of ``gen``: these ids now have these rows (None: removed)."""
        rows = list(self.rows)
        old: dict[str, str] = {}
        slot = self.next_slot
        now: dict[str, Row | None] = {}
        for mid, text in sorted(changed.items()):
            row = now[mid] = None if text is None else (mid, text, slot)
            slot += row is not None
            i = bisect.bisect_left(rows, mid, key=_row_id)
            if i < len(rows) and rows[i][0] == mid:
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
            if self._words is not None:
                new._words, new._fresh = self._words, dict(self._fresh)
                for mid, row in now.items():
                    if row is None:
                        new._fresh.pop(mid, None)
                    else:
                        new._fresh[mid] = row
        for (folder, sort), order in orders.items():
            new._orders[(folder, sort)] = _reordered(order, folder, sort, old, now)
        return new

    def ids(self, folder: str | None) -> list[str]:
        prefix = f"{folder}/" if folder else ""
        return [r[0] for r in self.rows if r[0].startswith(prefix)]

    def matching(self, folder: str | None, sort: str, f: Filters) -> list[Row]:
        """The rows of one (folder, sort) order a listing with ``f`` keeps, in that order."""
        order = self.ordered(folder, sort)
        keep = row_filter(f)
        if keep is None:
            return order
        terms, only_words = _terms(f)
        mask, exact = self._holding(terms)
        if mask is None:
            return select(order, f, keep)
        picked = [order[i] for i in np.flatnonzero(mask[self.slots_of(folder, sort)]).tolist()]
        return picked if exact and only_words else [r for r in picked if keep(r)]

    def _holding(self, terms: list[str]) -> tuple[Mask | None, bool]:
        """Which slots can hold every term (None: the index cannot narrow them), and whether exactly those do."""
        words, fresh = self._word_index()
        mask: Mask | None = None
        exact = True
        for term in terms:
            parts, whole = pieces(term)
            exact = exact and whole
            for part in parts:
                got = words.holding(part, self.next_slot)
                if got is None:
                    exact = False
                    continue
                for row in fresh:
                    if part in row[1].split("\t", 5)[4]:
                        got[row[2]] = True
                mask = got if mask is None else mask & got
        return mask, exact

    def _word_index(self) -> tuple[WordIndex, list[Row]]:
        """The word index and the rows written since it was built (built again when they are many)."""
        with self._lock:
            if self._words is None or len(self._fresh) > max(_FRESH_ROWS, len(self.rows) // 50):
                self._words = WordIndex(((r[2], r[1].split("\t", 5)[4]) for r in self.rows), self.next_slot)
                self._fresh = {}
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
               changed: dict[str, Row | None]) -> list[Row]:
    """One (folder, sort) order with the changed rows moved: it is sorted by (sort key, id), as a stable sort
    of id-ordered rows leaves it, so each row is found and placed by bisection."""
    sort_key = _SORT_KEY[sort]

    def key(r: Row) -> tuple[Any, str]:
        return sort_key(r), r[0]

    out = list(order)
    prefix = f"{folder}/" if folder else ""
    for mid, row in changed.items():
        if not mid.startswith(prefix):
            continue
        if mid in old:
            i = bisect.bisect_left(out, key((mid, old[mid], -1)), key=key)
            if i < len(out) and out[i][0] == mid:
                del out[i]
        if row is not None:
            bisect.insort(out, row, key=key)
    return out
