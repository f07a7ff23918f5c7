-- reap: running tasks whose lease deadline has passed become lost (to be requeued under the same id), or
-- cancelled / paused when the user had asked for that. The attempt is unchanged, so the vanished attempt's
-- heartbeat, progress and finish calls now fail (state is no longer running).
-- KEYS[1] task hash of nothing in particular (unused; kept for the common calling convention)
-- ARGV[1] prefix, [2] max tasks, [3] ttl s, [4] events maxlen
-- Returns the ids that became lost.
local leases = PREFIX .. 'tasks:leases'
local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local lost = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', leases, id)
  local tkey = task_key(id)
  local v = redis.call('HMGET', tkey, 'state', 'cancel_requested', 'pause_requested', 'host')
  if v[1] == 'running' then
    local partial
    if v[2] then
      set_state(tkey, id, 'running', 'cancelled')
      partial = {state = 'cancelled'}
      finalize(tkey, id, ARGV[3], partial)
    elseif v[3] then
      set_state(tkey, id, 'running', 'paused')
      redis.call('HDEL', tkey, 'pause_requested')
      partial = {state = 'paused', updated_at = now_s()}
    else
      set_state(tkey, id, 'running', 'lost')
      local err = {code = 'worker_lost', message = 'The worker on host ' .. (v[4] or '?') ..
        ' stopped answering; the task is being requeued and will resume on another worker.'}
      redis.call('HSET', tkey, 'error', cjson.encode(err), 'updated_at', now_s())
      partial = {state = 'lost', error = err, updated_at = now_s()}
      table.insert(lost, id)
    end
    emit(tkey, id, 'state', partial, ARGV[4])
  end
end
return lost
