"""The model index's Redis keys and the model id (``<folder>/<path_index>/<relpath>``).

| key                                      | type   | content                                                       |
|------------------------------------------|--------|---------------------------------------------------------------|
| depot:store:doc                          | HASH   | id -> compact JSON document (stat, hashes, sidecar summary,   |
|                                          |        | preview file name, verify_status/verified_at/verify_reason),  |
|                                          |        | its unset keys left out (``docs.load_doc`` restores them)      |
| depot:store:dirs:{folder}:{path_index}   | HASH   | directory relpath ("" = root) -> the sorted lines              |
|                                          |        | "name TAB size:mtime_ns:inode:sidecar-signature" of its models |
| depot:store:dirfp:{folder}:{path_index}  | HASH   | directory relpath -> "models|fingerprint" of every file in it |
|                                          |        | (count, size/mtime/inode sums, crc of names): an unchanged    |
|                                          |        | directory costs the scan one string compare                   |
| depot:store:model                        | HASH   | no longer written (a page's Models are made from the docs); |
|                                          |        | the hourly cleanup deletes what an older version left         |
| depot:store:q                            | HASH   | id -> "size TAB created TAB modified TAB lower(name) TAB text" |
|                                          |        | for sorting and search (text = lower-cased path, name,        |
|                                          |        | trigger words, base model); each process keeps these rows and |
|                                          |        | the sorted id lists built from them until ``gen`` changes     |
| depot:store:sha256                       | HASH   | id -> SHA256 (duplicates; a lookup by hash uses each process's |
|                                          |        | tables, ``shared.store.lookup``)                              |
| depot:store:sha:{SHA256}                 | SET    | no longer written (nothing read them); the hourly cleanup     |
|                                          |        | deletes what an older version left                            |
| depot:store:unhashed                     | SET    | ids a scan queued for hashing and has not hashed yet; the    |
|                                          |        | next scan of their root hashes them (after a cancel or crash) |
| depot:store:gen                          | STRING | bumped on every change (invalidates search caches)            |
| depot:store:changes                      | LIST   | "gen NUL id NUL id ..." per change, the last _CHANGES_KEPT:   |
|                                          |        | a process a few changes behind re-reads only those rows       |
| depot:store:unreachable                  | HASH   | "folder/path_index" -> JSON {"path","since"}                  |
"""
from __future__ import annotations

P = "depot:store:"
DOC, Q, SHA_OF, GEN, UNREACHABLE = P + "doc", P + "q", P + "sha256", P + "gen", P + "unreachable"
MODEL_JSON = P + "model"
CHANGES = P + "changes"
UNHASHED = P + "unhashed"
SORTS = ("name", "size", "created", "modified", "path", "base_model")
_BATCH = 1000
_CHANGES_KEPT = 64
# Catching up moves each changed row in the id list and in every sorted order built so far, a memmove of the
# whole list each time; past this many moves, re-reading every row is quicker.
_CATCH_UP_MOVES = 5000
# A process behind reads the rows the log names, to move only those that changed; past this many, it reads all.
_CATCH_UP_READS = 20_000
# Bumps ``gen`` and logs which models that generation changed, in one step (the new gen is only known inside
# Redis, and a reader must never see the one without the other), and tells every open dashboard (an ``index``
# message on the task events channel, which the WebSocket relay forwards) so the library refreshes itself.
_LOG_CHANGE = """local g = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], g .. '\\0' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', ARGV[3], '{"type":"index","gen":' .. g .. '}')
return g"""


def model_id(folder: str, path_index: int, relpath: str) -> str:
    return f"{folder}/{path_index}/{relpath}"


def split_id(mid: str) -> tuple[str, int, str]:
    folder, pi, rel = mid.split("/", 2)
    return folder, int(pi), rel


def dirs_key(folder: str, path_index: int) -> str:
    return f"{P}dirs:{folder}:{path_index}"


def fp_key(folder: str, path_index: int) -> str:
    return f"{P}dirfp:{folder}:{path_index}"


def pack_dir(lines: dict[str, str]) -> str:
    return "\n".join(f"{name}\t{sig}" for name, sig in sorted(lines.items()))


def unpack_dir(packed: str | None) -> dict[str, str]:
    if not packed:
        return {}
    return dict(line.split("\t", 1) for line in packed.split("\n"))


#: The keys of a SHA256's ids an older version kept, one set per file (``SCAN`` pattern)
LEGACY_SHA_SETS = P + "sha:*"
