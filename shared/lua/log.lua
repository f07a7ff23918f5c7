-- log: the owning attempt appends a human-readable line to the task's events.
-- KEYS[1] task hash
-- ARGV[1] prefix, [2] id, [3] attempt, [4] message, [5] events maxlen
-- Returns 1 | 0 when this attempt no longer owns the task.
local tkey, id = KEYS[1], ARGV[2]
local v = redis.call('HMGET', tkey, 'state', 'attempt')
if v[1] ~= 'running' or v[2] ~= ARGV[3] then return 0 end
emit(tkey, id, 'log', {message = ARGV[4], updated_at = now_s()}, ARGV[5])
return 1
