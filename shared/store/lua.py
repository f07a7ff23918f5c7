"""The index's two Lua scripts: batch writes (scan, publishers) and one listing page. Keys are built inside
the scripts from the ``depot:store:`` prefix documented in ``shared/store/index.py``."""
from __future__ import annotations

#: Write a batch of documents: ARGV[1] = JSON [[id, folder, doc, model, qrow, name_member, size, created,
#: modified, sha256 or ""], ...]. An old name member (the display name is part of it) and an old SHA256
#: membership are replaced.
PUT_LUA = r"""
local P = 'depot:store:'
for _, r in ipairs(cjson.decode(ARGV[1])) do
  local id, folder, sha = r[1], r[2], r[10]
  local old_q = redis.call('HGET', P .. 'q', id)
  if old_q then
    local old_name = string.match(old_q, '^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)\t')
    local old_member = (old_name or '') .. '\0' .. id
    if old_member ~= r[6] then
      redis.call('ZREM', P .. 'z:name:' .. folder, old_member)
      redis.call('ZREM', P .. 'z:name:*', old_member)
    end
  end
  local old_sha = redis.call('HGET', P .. 'sha256', id)
  if old_sha and old_sha ~= sha then redis.call('SREM', P .. 'sha:' .. old_sha, id) end
  if sha ~= '' then
    redis.call('HSET', P .. 'sha256', id, sha)
    redis.call('SADD', P .. 'sha:' .. sha, id)
  elseif old_sha then
    redis.call('HDEL', P .. 'sha256', id)
  end
  redis.call('HSET', P .. 'doc', id, r[3])
  redis.call('HSET', P .. 'model', id, r[4])
  redis.call('HSET', P .. 'q', id, r[5])
  for _, scope in ipairs({folder, '*'}) do
    redis.call('ZADD', P .. 'z:name:' .. scope, 0, r[6])
    redis.call('ZADD', P .. 'z:size:' .. scope, r[7], id)
    redis.call('ZADD', P .. 'z:created:' .. scope, string.format('%.17g', r[8]), id)
    redis.call('ZADD', P .. 'z:modified:' .. scope, string.format('%.17g', r[9]), id)
  end
end
return #ARGV[1]
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
