-- create: a new queued task, or the live task already holding the idempotency key.
-- KEYS[1] task hash (new id)
-- ARGV[1] prefix, [2] id, [3] kind, [4] params JSON, [5] queue, [6] idempotency key ('' = none),
--      [7] events maxlen, [8] submitting host
-- Returns {1, id} when created, {0, existing_id} when the key already names a live task.
local tkey, id = KEYS[1], ARGV[2]
local idem = ARGV[6]
if idem ~= '' then
  local ikey = PREFIX .. 'idem:' .. idem
  local existing = redis.call('GET', ikey)
  if existing then
    local st = redis.call('HGET', task_key(existing), 'state')
    if st and not TERMINAL[st] then return {0, existing} end
  end
  redis.call('SET', ikey, id)
end
local t = now_s()
local progress = '{"done":0,"total":null,"rate":0}'
redis.call('HSET', tkey, 'id', id, 'kind', ARGV[3], 'params', ARGV[4], 'queue', ARGV[5], 'attempt', 0,
  'seq', 0, 'created_at', t, 'updated_at', t, 'progress', progress, 'idem_key', idem, 'submitted_by', ARGV[8])
redis.call('ZADD', PREFIX .. 'tasks', 0, id)
set_state(tkey, id, nil, 'queued')
emit(tkey, id, 'state', {state = 'queued', kind = ARGV[3], attempt = 0, created_at = t, updated_at = t,
  params = cjson.decode(ARGV[4]), progress = cjson.decode(progress)}, ARGV[7])
return {1, id}
