"""The index's batch-write script (scan, publishers). Keys are built inside the script from the
``depot:store:`` prefix documented in ``shared/store/index.py``."""
from __future__ import annotations

#: Write a batch of documents atomically: ARGV = n, then per model ``id, doc, model, qrow, sha256 or ""``
#: (ids unique). The old SHA256s are read with one HMGET per chunk; each hash is written with one
#: multi-member HSET per chunk, so Redis does a handful of calls per batch. An old SHA256 membership is
#: replaced. Arguments arrive flat (no JSON to decode inside Redis).
PUT_LUA = r"""
local P = 'depot:store:'
local n = tonumber(ARGV[1])
local CHUNK = 2000
local ids = {}
for i = 1, n do ids[i] = ARGV[(i - 1) * 5 + 2] end
local old_shas = {}
for i = 1, n, CHUNK do
  local last = math.min(i + CHUNK - 1, n)
  local got = redis.call('HMGET', P .. 'sha256', unpack(ids, i, last))
  for j = 1, #got do old_shas[i + j - 1] = got[j] end
end
local function hset_chunks(key, col)
  local args = {}
  for i = 1, n do
    local b = (i - 1) * 5 + 1
    args[#args + 1] = ARGV[b + 1]; args[#args + 1] = ARGV[b + col]
    if #args >= 2 * CHUNK then redis.call('HSET', key, unpack(args)); args = {} end
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
end
hset_chunks(P .. 'doc', 2)
hset_chunks(P .. 'model', 3)
hset_chunks(P .. 'q', 4)
for i = 1, n do
  local id, sha, old = ids[i], ARGV[(i - 1) * 5 + 6], old_shas[i]
  if old and old ~= sha then redis.call('SREM', P .. 'sha:' .. old, id) end
  if sha ~= '' then
    if old ~= sha then
      redis.call('HSET', P .. 'sha256', id, sha)
      redis.call('SADD', P .. 'sha:' .. sha, id)
    end
  elseif old then
    redis.call('HDEL', P .. 'sha256', id)
  end
end
return n
"""
