"""A search looks its rows up in the word index instead of reading every row: whatever the query (a word, a piece
of one, a token across separators, a wildcard, any script, the filters' marks), it keeps exactly the rows a
check of every row keeps, in the same order, also after rows were added, changed and removed since the index was
built, and after enough changes that it is built again."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from shared.store.index import rows as rows_mod
from shared.store.index import words as words_mod
from shared.store.index.filters import Filters, row_filter
from shared.store.index.rows import Rows

WORDS = ("portrait", "anime", "ani", "watercolor", "v2", "v10", "sdxl", "1.0", "sd", "1.5", "flux.1", "über",
         "日本画", "neo-noir", "a", "x_y", "tag:anime", "fav:1", "no:preview", "verify:ok", "has:update")


def _row(rng: random.Random, n: int, mid: str | None = None) -> tuple[str, str]:
    """A model's id and search row as the index writes it (``mid``: a new row of that model)."""
    folder = rng.choice(("loras", "checkpoints"))
    name = " ".join(rng.sample(WORDS, rng.randint(1, 4)))
    path = f"d{n % 3}/{'_'.join(rng.sample(WORDS, 2))}_{n}.safetensors"
    if mid:
        folder, _, path = mid.split("/", 2)
    base = rng.choice(("SDXL 1.0", "SD 1.5", ""))
    text = f"{path} {name} {rng.choice(WORDS)} {base}".lower()  # the text ends with the base model, as written
    kind = rng.choice(("LoRA", "LyCORIS", "Checkpoint"))
    return f"{folder}/0/{path}", f"{rng.randint(1, 50)}\t{n}\t{n}\t{name}\t{text}\t{base}\t{kind}"


def _queries(rng: random.Random, texts: list[str]) -> list[Filters]:
    out = [Filters(q=q) for q in ("anime", "ani", "a", "v1", "1.5", "sd 1", "neo-noir", "x_y", "日本", "über v2",
                                  "tag:anime", "*", "-", "an*me", "water*v", "zzz", "flux.1 portrait", "_1")]
    for _ in range(40):
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        piece = text[start:start + rng.randint(1, 9)].strip()
        if piece:
            out.append(Filters(q=" ".join(piece.split()[:2])))
    out += [Filters(q="anime", base="SD 1.5"), Filters(q="v2", kind="LoRA"), Filters(q="portrait", subdir="d1"),
            Filters(tag="anime"), Filters(q="sd", favorite=True), Filters(q="anime", verify="none"),
            Filters(q="anime", no_preview=False), Filters(q="a", update=True), Filters(base="SDXL 1.0"),
            Filters(base=""), Filters(subdir="d2"), Filters(subdir="/D1/"), Filters(base="sd 1.5", subdir="d0"),
            Filters(kind="LyCORIS"), Filters(kind="lora"), Filters(kind="Checkpoint", q="anime", base="SDXL 1.0"),
            Filters(base="Pony"), Filters(verify="none"), Filters(no_preview=False), Filters(verify="ok"),
            Filters(no_preview=True, kind="LoRA")]
    return out


def _check(rows: Rows, queries: list[Filters]) -> None:
    for f in queries:
        keep = row_filter(f)
        for folder, sort in ((None, "name"), ("loras", "size"), ("checkpoints", "path")):
            order = rows.ordered(folder, sort)
            want = order if keep is None else [r for r in order if keep(r)]
            assert rows.matching(folder, sort, f) == want, (f, folder, sort)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_search_keeps_exactly_what_a_check_of_every_row_keeps(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Built again after a handful of changes, and a piece in more than 30 words is left to the row check
    monkeypatch.setattr(rows_mod, "_FRESH_ROWS", 12)
    monkeypatch.setattr(words_mod, "_MANY_WORDS", 30)
    rng = random.Random(seed)
    pairs = dict(_row(rng, n) for n in range(400))
    rows = Rows.load("1", pairs)
    queries = _queries(rng, [r.split("\t")[4] for r in pairs.values()])
    picked = frozenset(rng.sample(sorted(pairs), 40))  # some are removed below
    queries += [Filters(ids=picked), Filters(ids=picked, q="a"), Filters(ids=frozenset({"loras/0/nope"})),
                Filters(ids=picked, verify="none", base="SD 1.5")]
    _check(rows, queries)
    for gen in range(2, 12):
        # When a few rows are added, changed and removed
        changed: dict[str, str | None] = {}
        for mid in rng.sample(sorted(pairs), 3):
            changed[mid] = None
            del pairs[mid]
        for mid in rng.sample(sorted(pairs), 3):
            changed[mid] = pairs[mid] = _row(rng, 0, mid)[1]
        for n in range(3):
            mid, row = _row(rng, 1000 * gen + n)
            changed[mid] = pairs[mid] = row
        rows = rows.updated(str(gen), changed)
        # Then every search still keeps what reading every row keeps
        _check(rows, queries)
    assert [r[:2] for r in rows.rows] == sorted(pairs.items())


def test_the_index_is_used_and_built_again_only_when_many_rows_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows_mod, "_FRESH_ROWS", 5)
    rng = random.Random(9)
    rows = Rows.load("1", dict(_row(rng, n) for n in range(300)))
    # A row check would be every row: the index answers a word without calling the row filter
    calls = 0
    real = rows_mod.row_filter

    def counting(f: Filters):  # type: ignore[no-untyped-def]
        keep = real(f)

        def counted(r):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return keep(r)
        return counted if keep else None
    monkeypatch.setattr(rows_mod, "row_filter", counting)
    hits = rows.matching(None, "name", Filters(q="portrait"))
    assert hits and calls == 0
    # A token across a separator is checked on the rows holding its pieces only
    rows.matching(None, "name", Filters(q="neo-noir"))
    assert 0 < calls < len(rows.rows) // 2
    first = rows._word_index()[0]
    rows = rows.updated("2", dict([_row(rng, 5000 + n) for n in range(3)]))
    assert rows._word_index()[0] is first
    rows = rows.updated("3", dict([_row(rng, 6000 + n) for n in range(4)]))  # 7 > 300 // 50
    assert rows._word_index()[0] is not first
    assert rows.matching(None, "name", replace(Filters(), q="6001")) == \
        [r for r in rows.ordered(None, "name") if "6001" in r[1].split("\t")[4]]


@pytest.mark.parametrize("many", [False, True])
def test_rows_read_whole_again_keep_the_index_and_equal_a_fresh_read(many: bool,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a process that has searched its rows
    monkeypatch.setattr(rows_mod, "_FRESH_ROWS", 10**6)  # never built again here: the point is that it stays
    rng = random.Random(5)
    pairs = dict(_row(rng, n) for n in range(300))
    rows = Rows.load("1", pairs)
    queries = _queries(rng, [r.split("\t")[4] for r in pairs.values()])
    _check(rows, queries)
    first = rows._word_index()[0]
    # When every row is read again after changes the log cannot account for (a few, or a third of them)
    for mid in rng.sample(sorted(pairs), 100 if many else 3):
        del pairs[mid]
    for mid in rng.sample(sorted(pairs), 100 if many else 3):
        pairs[mid] = _row(rng, 0, mid)[1]
    pairs.update(_row(rng, 8000 + n) for n in range(100 if many else 3))
    changed = rows.changes(dict(pairs))
    assert len(changed) == (300 if many else 9)
    again = rows.rebuilt("2", changed) if many else rows.updated("2", changed)
    # Then it holds exactly the new rows, its word index is the same one, and every search is right
    assert [r[:2] for r in again.rows] == sorted(pairs.items())
    assert again._word_index()[0] is first
    _check(again, queries)
    assert again.changes(dict(pairs)) == {}


def test_a_few_changes_move_each_orders_slots_along() -> None:
    # Given rows whose orders a search has used
    rng = random.Random(11)
    pairs = dict(_row(rng, n) for n in range(200))
    rows = Rows.load("1", pairs)
    used = [(None, "name"), ("loras", "size"), ("checkpoints", "base_model")]
    for folder, sort in used:
        rows.matching(folder, sort, Filters(q="anime"))
    for gen in range(2, 30):
        # When one or two models are added, changed or removed at a time
        changed: dict[str, str | None] = {}
        for mid in rng.sample(sorted(pairs), rng.randint(1, 2)):
            if rng.random() < 0.3:
                changed[mid] = None
                del pairs[mid]
            else:
                changed[mid] = pairs[mid] = _row(rng, 0, mid)[1]
        mid, row = _row(rng, 1000 + gen)
        changed[mid] = pairs[mid] = row
        rows = rows.updated(str(gen), changed)
        # Then each order's slots were carried and moved, position by position, with its rows
        for folder, sort in used:
            carried = rows._order_slots[(folder, sort)]
            assert carried.tolist() == [r[2] for r in rows.ordered(folder, sort)]
        assert rows.matching(None, "name", Filters(q="anime")) == \
            [r for r in rows.ordered(None, "name") if "anime" in r[1].split("\t")[4]]


def test_a_row_written_again_the_same_keeps_its_slot_and_an_untouched_folder_keeps_its_order() -> None:
    rng = random.Random(13)
    pairs = dict(_row(rng, n) for n in range(200))
    rows = Rows.load("1", pairs)
    loras, checkpoints = rows.ordered("loras", "name"), rows.ordered("checkpoints", "size")
    rows.matching(None, "name", Filters(q="anime"))
    first = rows._word_index()[0]
    # When a scan writes a row again unchanged (its hash was recorded) and a LoRA changes
    same = next(mid for mid in sorted(pairs) if mid.startswith("checkpoints/"))
    lora = next(mid for mid in sorted(pairs) if mid.startswith("loras/"))
    pairs[lora] = _row(rng, 0, lora)[1]
    again = rows.updated("2", {same: pairs[same], lora: pairs[lora]})
    # Then only the LoRA is a new row: the checkpoint keeps its slot, the checkpoints' order is the same list
    assert [r for r in again.rows if r[0] == same] == [r for r in rows.rows if r[0] == same]
    assert again._fresh.keys() == {lora}
    assert again.ordered("checkpoints", "size") is checkpoints
    assert again.ordered("loras", "name") is not loras
    assert again._word_index()[0] is first
    _check(again, _queries(rng, [r.split("\t")[4] for r in pairs.values()]))
