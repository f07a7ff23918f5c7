-- heartbeat: the owning attempt renews its lease and learns whether the user asked it to stop.
-- KEYS[1] task hash
-- ARGV[1] prefix, [2] id, [3] attempt, [4] lease ms
-- Returns {1, cancel_requested, pause_requested} | {0} when this attempt no longer owns the task.
local tkey, id = KEYS[1], ARGV[2]
local v = redis.call('HMGET', tkey, 'state', 'attempt', 'cancel_requested', 'pause_requested')
if v[1] ~= 'running' or v[2] ~= ARGV[3] then return {0} end
redis.call('ZADD', PREFIX .. 'tasks:leases', now_ms() + tonumber(ARGV[4]), id)
return {1, v[3] or '', v[4] or ''}
