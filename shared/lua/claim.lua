-- claim: a worker takes a task for a new attempt (attempt += 1, state running, lease set).
-- A running task whose lease has expired counts as lost and may be claimed (soft-shutdown requeue).
-- KEYS[1] task hash
-- ARGV[1] prefix, [2] id, [3] host, [4] worker node, [5] lease ms, [6] events maxlen
-- Returns {1, attempt} | {-1} no such task | {-2, state} not claimable now.
local tkey, id = KEYS[1], ARGV[2]
local st = redis.call('HGET', tkey, 'state')
if not st then return {-1} end
if not CLAIMABLE[st] then
  local deadline = redis.call('ZSCORE', PREFIX .. 'tasks:leases', id)
  if not (st == 'running' and deadline and tonumber(deadline) < now_ms()) then return {-2, st} end
end
local attempt = redis.call('HINCRBY', tkey, 'attempt', 1)
local t = now_s()
set_state(tkey, id, st, 'running')
redis.call('HSET', tkey, 'host', ARGV[3], 'worker', ARGV[4], 'started_at', t, 'updated_at', t)
redis.call('HDEL', tkey, 'error')
redis.call('ZADD', PREFIX .. 'tasks:leases', now_ms() + tonumber(ARGV[5]), id)
emit(tkey, id, 'state', {state = 'running', attempt = attempt, host = ARGV[3], worker = ARGV[4],
  started_at = t, updated_at = t, error = cjson.null}, ARGV[6])
return {1, attempt}
