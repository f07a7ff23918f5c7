"""What a listing keeps of the search rows: the ``Filters`` of the library's search box, chips and toggles, and the
check of one row against them."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: ``(id, row, slot)``: the slot names this version of the row in the word index (a changed row gets a new one)
Row = tuple[str, str, int]


def token_matcher(token: str) -> Callable[[str], bool]:
    if "*" not in token:
        return lambda text: token in text
    pattern = re.compile(".*".join(re.escape(p) for p in token.split("*")))
    return lambda text: pattern.search(text) is not None


def columns(row: str) -> list[str]:
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


def terms(f: Filters) -> tuple[list[str], bool]:
    """What every kept row's text holds (the search's tokens, wildcards too, the filters' marks and the
    subfolder, which the text starts with), and whether holding them (besides the base model, the type, the ids
    and the marks a row lacks, which the word index answers whole) is all ``f`` asks."""
    tokens = [t for t in (f.q or "").lower().split() if t.strip("*")]
    plain = _plain(f)
    marks = len(plain) - sum("*" not in t for t in tokens)
    subdir = (f.subdir or "").strip("/").lower()
    only_words = not marks and not subdir
    return list(dict.fromkeys(tokens + plain + subdir.split())), only_words


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
        cols = columns(row)
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
