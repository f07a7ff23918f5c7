"""Which search rows hold a word, so a search of a big library looks at the rows that can match instead of every
row (at 1,000,000 models a pass over every row takes a second).

A search token matches a row whose text holds it anywhere (``portrait`` finds ``my_portrait_v2``). A word here
is a run of the text between separators (ASCII punctuation and spaces): a token without separators lies inside
one word wherever it occurs, so the rows holding it are exactly the rows of the vocabulary's words that contain
it: the vocabulary (one string) is searched, not the rows. A token with separators (``sd1.5``, ``tag:anime``)
or a wildcard gives its pieces, which narrow the rows; the caller checks those few rows whole.

Rows are named by their slot, a number each row version gets once (``Rows``): a changed row is a new slot, so an
index built once stays true of every slot below ``upto`` and the rows written since are checked one by one
until there are enough of them to build it again."""
from __future__ import annotations

import ctypes
import ctypes.util
import re
import string
from array import array
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from shared.store.index.filters import columns

#: ASCII punctuation and whitespace end a word; everything else (letters and digits of any script) is in one
_SEPARATORS = string.punctuation + string.whitespace
# Words are split and kept as UTF-8: bytes.translate is a table lookup per byte, several times quicker than
# str.translate, and no byte of a non-ASCII character is ASCII, so a piece is found in the bytes exactly where
# it is in the text
_TO_SPACE = bytes.maketrans(_SEPARATORS.encode(), b" " * len(_SEPARATORS))
_SPLIT = re.compile(f"[{re.escape(_SEPARATORS)}]+")
#: A piece found in more vocabulary words than this narrows little ("a", "1"): it is left to the row check
_MANY_WORDS = 20_000

Mask = npt.NDArray[np.bool_]

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)


def give_back_memory() -> None:
    """Return the C heap's free pages to the system after a big build: glibc keeps what a million-row build
    freed (about 100 MiB at 1,000,000 rows) in the process otherwise. A no-op without glibc."""
    trim = getattr(_libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def pieces(token: str) -> tuple[list[str], bool]:
    """The separator-free pieces of a search token (``*`` is a wildcard) and whether holding the one piece is
    exactly holding the token."""
    parts = [p for p in _SPLIT.split(token.replace("*", " ")) if p]
    return parts, len(parts) == 1 and parts[0] == token


class WordIndex:
    """Every word of the rows' texts and the slots of the rows holding it (compressed sparse rows: the slots of
    word ``w`` are ``slots[starts[w]:starts[w + 1]]``, each once), and each slot's base model, type and
    ``MARKS``; slots from ``upto`` on are not in it."""

    def __init__(self, rows: Iterable[tuple[int, str]], upto: int) -> None:
        self.upto = upto
        built = _postings(rows, upto)
        vocab, ids = built.vocab, built.ids
        self.base_codes, self.base_of = built.base_codes, built.base_of
        self.kind_codes, self.kind_of = built.kind_codes, built.kind_of
        self.marked = built.marked
        order = np.argsort(ids, kind="stable")  # stable: each word's slots in the rows' order
        self.slots = built.slots[order]
        self.starts = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(ids, minlength=len(vocab)), out=self.starts[1:])
        # The vocabulary as one string, each word after a newline: a piece is looked for in it by find (C)
        self.words = b"\n" + b"\n".join(vocab) + b"\n"
        # Where each word starts in it (less one: the newline before it), for the word of a found position
        lengths = np.fromiter((len(w) + 1 for w in vocab), np.int64, len(vocab))
        self.word_at = np.cumsum(lengths) - lengths

    def with_value(self, column: str, value: str, size: int) -> Mask:
        """Which slots (of ``size``) have this base model (lower-cased) or this type (``column`` "base" or
        "kind")."""
        codes, of = (self.base_codes, self.base_of) if column == "base" else (self.kind_codes, self.kind_of)
        mask = np.zeros(size, np.bool_)
        if (code := codes.get(value)) is not None:
            mask[:self.upto] = of == code
        return mask

    def without(self, mark: str, size: int) -> Mask:
        """Which slots (of ``size``) have a row whose text lacks this whole word (``MARKS``)."""
        mask = np.zeros(size, np.bool_)
        mask[:self.upto] = ~self.marked[mark]
        mask[:self.upto] &= self.base_of >= 0  # a slot without a row lacks nothing
        return mask

    def holding(self, piece: str, size: int) -> Mask | None:
        """Which slots (of ``size``) hold ``piece`` in a word, or None when too many words do to narrow."""
        text, found = self.words, []
        piece_b = piece.encode("utf-8", "surrogatepass")
        at = text.find(piece_b)
        while at >= 0:
            found.append(at)
            if len(found) > _MANY_WORDS:
                return None
            # Past this word: a word holding the piece twice counts once
            nl = text.find(b"\n", at + len(piece_b))
            at = text.find(piece_b, nl)
        mask = np.zeros(size, np.bool_)
        if found:
            which = np.searchsorted(self.word_at, np.array(found, np.int64), side="right") - 1
            for w in which.tolist():
                mask[self.slots[self.starts[w]:self.starts[w + 1]]] = True
        return mask


Codes = npt.NDArray[np.int32]


#: The words the filters that exclude look for (a verdict's mark starts with the first; the second is whole),
#: as ``filters.row_filter`` does, in the text between spaces
MARKS = (" verify:", " no:preview ")


class _Built(NamedTuple):
    """What one pass over the rows gives ``WordIndex``."""

    vocab: list[bytes]  # every word (UTF-8)
    ids: Codes  # for each (word, row) pair: the word's number
    slots: Codes  # ... and the row's slot
    base_codes: dict[str, int]  # each base model (lower-cased) and type, numbered
    base_of: Codes  # each slot's base model number (-1: no row)
    kind_codes: dict[str, int]
    kind_of: Codes
    marked: dict[str, npt.NDArray[np.bool_]]  # which slots' texts hold each of ``MARKS``


def _postings(rows: Iterable[tuple[int, str]], upto: int) -> _Built:
    """One pass over ``(slot, row)`` pairs: the words, base models, types and marks of slots below ``upto``."""
    vocab: dict[bytes, int] = {}
    word_ids: list[Codes] = []
    word_slots: list[Codes] = []
    flat: list[bytes] = []
    counts, slots = array("i"), array("i")
    base_codes: dict[str, int] = {}
    kind_codes: dict[str, int] = {}
    bases, kinds, all_slots = array("i"), array("i"), array("i")
    marked: dict[str, list[int]] = {mark: [] for mark in MARKS}

    def flush() -> None:
        if not counts:
            return
        # Words are numbered a chunk at a time by C loops (dict.fromkeys, map): a call per word would double
        # the time it takes to build the index of a million rows
        new = [w for w in dict.fromkeys(flat) if w not in vocab]
        vocab.update(zip(new, range(len(vocab), len(vocab) + len(new)), strict=True))
        word_ids.append(np.fromiter(map(vocab.__getitem__, flat), np.int32, len(flat)))
        word_slots.append(np.repeat(np.array(slots, np.int32), np.array(counts, np.int32)))
        flat.clear()
        del counts[:], slots[:]

    for slot, row in rows:
        cols = columns(row)
        words = set(cols[4].encode("utf-8", "surrogatepass").translate(_TO_SPACE).split())
        flat.extend(words)
        counts.append(len(words))
        slots.append(slot)
        all_slots.append(slot)
        bases.append(base_codes.setdefault(cols[5].lower(), len(base_codes)))
        kinds.append(kind_codes.setdefault(cols[6], len(kind_codes)))
        padded = f" {cols[4]} "
        for mark, holding in marked.items():
            if mark in padded:
                holding.append(slot)
        if len(flat) >= 1 << 18:
            flush()
    flush()
    base_of, kind_of = np.full(upto, -1, np.int32), np.full(upto, -1, np.int32)
    at = np.array(all_slots, np.int32)
    base_of[at], kind_of[at] = np.array(bases, np.int32), np.array(kinds, np.int32)
    flags = {}
    for mark, holding in marked.items():
        flags[mark] = np.zeros(upto, np.bool_)
        flags[mark][np.array(holding, np.int64)] = True
    if not word_ids:
        word_ids, word_slots = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    return _Built(list(vocab), np.concatenate(word_ids), np.concatenate(word_slots), base_codes, base_of,
                  kind_codes, kind_of, flags)
