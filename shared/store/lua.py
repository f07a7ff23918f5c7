"""The index's two Lua scripts: batch writes (scan, publishers) and one listing page. Keys are built inside
the scripts from the ``depot:store:`` prefix documented in ``shared/store/index.py``."""
from __future__ import annotations

#: Write a batch of documents: ARGV[1] = JSON [[id, folder, doc, model, qrow, name_member, size, created,
#: modified, sha256 or ""], ...], ids unique. The old search rows and SHA256s are read with one HMGET
#: each, and each hash and sorted set is written with one multi-member command per batch, so Redis does a few
#: dozen calls per batch instead of ~14 per model. An old name member (the display name is part of it) and an
#: old SHA256 membership are replaced.
PUT_LUA = r"""
local P = 'depot:store:'
local rows = cjson.decode(ARGV[1])
local n = #rows
local function call_chunked(cmd, key, args)
  for i = 1, #args, 4000 do
    redis.call(cmd, key, unpack(args, i, math.min(i + 3999, #args)))
  end
end
local ids = {}
for i = 1, n do ids[i] = rows[i][1] end
local old_qs, old_shas = {}, {}
for i = 1, n, 2000 do
  local last = math.min(i + 1999, n)
  local qs = redis.call('HMGET', P .. 'q', unpack(ids, i, last))
  local shas = redis.call('HMGET', P .. 'sha256', unpack(ids, i, last))
  for j = 1, #qs do old_qs[i + j - 1], old_shas[i + j - 1] = qs[j], shas[j] end
end
local docs, models, qrows, shas, unsha = {}, {}, {}, {}, {}
local z = {}
local function zadd(key, score, member)
  local t = z[key]
  if not t then t = {}; z[key] = t end
  t[#t + 1] = score; t[#t + 1] = member
end
for i = 1, n do
  local r = rows[i]
  local id, folder, sha = r[1], r[2], r[10]
  local old_q = old_qs[i]
  if old_q then
    local old_name = string.match(old_q, '^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)\t')
    local old_member = (old_name or '') .. '\0' .. id
    if old_member ~= r[6] then
      redis.call('ZREM', P .. 'z:name:' .. folder, old_member)
      redis.call('ZREM', P .. 'z:name:*', old_member)
    end
  end
  local old_sha = old_shas[i]
  if old_sha and old_sha ~= sha then redis.call('SREM', P .. 'sha:' .. old_sha, id) end
  if sha ~= '' then
    shas[#shas + 1] = id; shas[#shas + 1] = sha
    redis.call('SADD', P .. 'sha:' .. sha, id)
  elseif old_sha then
    unsha[#unsha + 1] = id
  end
  docs[#docs + 1] = id; docs[#docs + 1] = r[3]
  models[#models + 1] = id; models[#models + 1] = r[4]
  qrows[#qrows + 1] = id; qrows[#qrows + 1] = r[5]
  for _, scope in ipairs({folder, '*'}) do
    zadd(P .. 'z:name:' .. scope, 0, r[6])
    zadd(P .. 'z:size:' .. scope, r[7], id)
    zadd(P .. 'z:created:' .. scope, r[8], id)
    zadd(P .. 'z:modified:' .. scope, r[9], id)
  end
end
if #shas > 0 then call_chunked('HSET', P .. 'sha256', shas) end
if #unsha > 0 then call_chunked('HDEL', P .. 'sha256', unsha) end
if n > 0 then
  call_chunked('HSET', P .. 'doc', docs)
  call_chunked('HSET', P .. 'model', models)
  call_chunked('HSET', P .. 'q', qrows)
end
for key, args in pairs(z) do call_chunked('ZADD', key, args) end
return n
"""

#: One listing page inside Redis: the ids of a rank range, then their Model JSON joined with commas, so the
#: client parses one string instead of 2,000 replies.
PAGE_LUA = r"""
local ids
if ARGV[3] == 'desc' then ids = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2])
else ids = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2]) end
if #ids == 0 then return {redis.call('ZCARD', KEYS[1]), ''} end
if ARGV[4] == 'name' then
  for i, m in ipairs(ids) do ids[i] = string.sub(m, string.find(m, '\0', 1, true) + 1) end
end
local rows = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for _, r in ipairs(rows) do if r then out[#out + 1] = r end end
return {redis.call('ZCARD', KEYS[1]), table.concat(out, ',')}
"""
