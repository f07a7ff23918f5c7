-- finish: the owning attempt ends its run: succeeded, failed, cancelled, paused, or queued (handed back).
-- KEYS[1] task hash
-- ARGV[1] prefix, [2] id, [3] attempt, [4] target state, [5] result JSON ('' = none), [6] error JSON ('' = none),
--      [7] progress JSON ('' = unchanged), [8] ttl s, [9] events maxlen
-- Returns {1} | {0, state, attempt} stale attempt | {-2, target} illegal target.
local tkey, id, to = KEYS[1], ARGV[2], ARGV[4]
if not FINISH_TO[to] then return {-2, to} end
local v = redis.call('HMGET', tkey, 'state', 'attempt')
if v[1] ~= 'running' or v[2] ~= ARGV[3] then return {0, v[1] or '', v[2] or ''} end
local partial = {state = to}
set_state(tkey, id, 'running', to)
if ARGV[5] ~= '' then redis.call('HSET', tkey, 'result', ARGV[5]); partial['result'] = cjson.decode(ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', tkey, 'error', ARGV[6]); partial['error'] = cjson.decode(ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', tkey, 'progress', ARGV[7]); partial['progress'] = cjson.decode(ARGV[7]) end
if TERMINAL[to] then
  finalize(tkey, id, ARGV[8], partial)
else
  local t = now_s()
  redis.call('HSET', tkey, 'updated_at', t)
  redis.call('HDEL', tkey, 'cancel_requested', 'pause_requested')
  redis.call('ZREM', PREFIX .. 'tasks:leases', id)
  partial['updated_at'] = t
end
emit(tkey, id, 'state', partial, ARGV[9])
return {1}
