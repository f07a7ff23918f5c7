-- control: a user's pause / resume / cancel / retry / delete, checked against CONTROL_FROM.
-- Pausing or cancelling a running task only raises a flag; the owning attempt stops at its next check.
-- KEYS[1] task hash
-- ARGV[1] prefix, [2] id, [3] action, [4] ttl s, [5] events maxlen
-- Returns {1, outcome} with outcome 'flagged' | 'done' | 'enqueue' | 'deleted';
--         {-1} no such task; {-2, state} action not allowed in this state.
local tkey, id, action = KEYS[1], ARGV[2], ARGV[3]
local st = redis.call('HGET', tkey, 'state')
if not st then return {-1} end
local allowed = CONTROL_FROM[action]
if not allowed or not allowed[st] then return {-2, st} end
if action == 'delete' then
  redis.call('DEL', tkey, tkey .. ':events')
  redis.call('ZREM', PREFIX .. 'tasks', id)
  redis.call('ZREM', PREFIX .. 'tasks:state:' .. st, id)
  return {1, 'deleted'}
end
local t = now_s()
if st == 'running' and (action == 'pause' or action == 'cancel') then
  local flag = action == 'pause' and 'pause_requested' or 'cancel_requested'
  redis.call('HSET', tkey, flag, 1, 'updated_at', t)
  local partial = {updated_at = t}
  partial[flag] = true
  emit(tkey, id, 'state', partial, ARGV[5])
  return {1, 'flagged'}
end
local to, outcome = nil, 'done'
if action == 'pause' then to = 'paused'
elseif action == 'cancel' then to = 'cancelled'
else to, outcome = 'queued', 'enqueue' end
set_state(tkey, id, st, to)
local partial = {state = to}
if to == 'cancelled' then
  finalize(tkey, id, ARGV[4], partial)
else
  redis.call('HSET', tkey, 'updated_at', t)
  partial['updated_at'] = t
  if action == 'retry' then
    redis.call('HDEL', tkey, 'error', 'result', 'finished_at', 'cancel_requested', 'pause_requested')
    redis.call('PERSIST', tkey)
    redis.call('PERSIST', tkey .. ':events')
    partial['error'] = cjson.null
    partial['result'] = cjson.null
    partial['finished_at'] = cjson.null
  end
end
emit(tkey, id, 'state', partial, ARGV[5])
return {1, outcome}
