-- segments: the owning attempt saves its download's map of finished ranges (JSON), so any later attempt, on any
-- host, fetches only what is missing. An attempt that no longer owns the task writes nothing.
-- KEYS[1] task hash
-- ARGV[1] prefix, [2] id, [3] attempt, [4] map ('' removes it)
-- Returns 1 | 0 when this attempt no longer owns the task.
local tkey = KEYS[1]
local v = redis.call('HMGET', tkey, 'state', 'attempt')
if v[1] ~= 'running' or v[2] ~= ARGV[3] then return 0 end
if ARGV[4] == '' then
  redis.call('HDEL', tkey, 'segments')
else
  redis.call('HSET', tkey, 'segments', ARGV[4])
end
return 1
