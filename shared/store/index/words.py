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

import re
import string
from array import array
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

#: ASCII punctuation and whitespace end a word; everything else (letters and digits of any script) is in one
_SEPARATORS = string.punctuation + string.whitespace
_TO_SPACE = str.maketrans(_SEPARATORS, " " * len(_SEPARATORS))
_SPLIT = re.compile(f"[{re.escape(_SEPARATORS)}]+")
#: A piece found in more vocabulary words than this narrows little ("a", "1"): it is left to the row check
_MANY_WORDS = 20_000

Mask = npt.NDArray[np.bool_]


def words_of(text: str) -> list[str]:
    return text.translate(_TO_SPACE).split()


def pieces(token: str) -> tuple[list[str], bool]:
    """The separator-free pieces of a search token (``*`` is a wildcard) and whether holding the one piece is
    exactly holding the token."""
    parts = [p for p in _SPLIT.split(token.replace("*", " ")) if p]
    return parts, len(parts) == 1 and parts[0] == token


class WordIndex:
    """Every word of the rows' texts and the slots of the rows holding it (compressed sparse rows: the slots of
    word ``w`` are ``slots[starts[w]:starts[w + 1]]``, ascending); slots from ``upto`` on are not in it."""

    def __init__(self, texts: Iterable[tuple[int, str]], upto: int) -> None:
        self.upto = upto
        vocab: dict[str, int] = {}
        word_ids = array("i")
        row_slots = array("i")
        add = vocab.setdefault
        for slot, text in texts:
            words = set(words_of(text))
            word_ids.extend([add(w, len(vocab)) for w in words])
            row_slots.extend([slot] * len(words))
        ids = np.frombuffer(word_ids, dtype=np.int32) if word_ids else np.zeros(0, np.int32)
        order = np.argsort(ids, kind="stable")  # stable: each word's slots stay ascending, as they were added
        self.slots = (np.frombuffer(row_slots, dtype=np.int32)[order] if row_slots
                      else np.zeros(0, np.int32))
        self.starts = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(ids, minlength=len(vocab)), out=self.starts[1:])
        # The vocabulary as one string, each word after a newline: a piece is looked for in it by str.find (C)
        self.words = "\n" + "\n".join(vocab) + "\n"
        # Where each word starts in it (less one: the newline before it), for the word of a found position
        lengths = np.fromiter((len(w) + 1 for w in vocab), np.int64, len(vocab))
        self.word_at = np.cumsum(lengths) - lengths

    def holding(self, piece: str, size: int) -> Mask | None:
        """Which slots (of ``size``) hold ``piece`` in a word, or None when too many words do to narrow."""
        text, found = self.words, []
        at = text.find(piece)
        while at >= 0:
            found.append(at)
            if len(found) > _MANY_WORDS:
                return None
            # Past this word: a word holding the piece twice counts once
            nl = text.find("\n", at + len(piece))
            at = text.find(piece, nl)
        mask = np.zeros(size, np.bool_)
        if found:
            which = np.searchsorted(self.word_at, np.array(found, np.int64), side="right") - 1
            for w in which.tolist():
                mask[self.slots[self.starts[w]:self.starts[w + 1]]] = True
        return mask
