-- Prepended to every transition script. shared/records.py puts the state tables from shared/states.py above
-- this text (TERMINAL, CLAIMABLE, FINISH_TO, CONTROL_FROM), so Lua and Python share one vocabulary.
-- Every script gets ARGV[1] = key prefix and KEYS[1] = the task hash; other keys are derived from the prefix
-- (single-instance Redis; not cluster-safe by design).
local PREFIX = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function now_s()
  return now_ms() / 1000
end

local function task_key(id) return PREFIX .. 'task:' .. id end

-- Move a task between state indexes and set the field.
local function set_state(tkey, id, from, to)
  if from then redis.call('ZREM', PREFIX .. 'tasks:state:' .. from, id) end
  redis.call('ZADD', PREFIX .. 'tasks:state:' .. to, 0, id)
  redis.call('HSET', tkey, 'state', to)
end

local function decode_or_null(raw)
  if raw == false or raw == nil or raw == '' then return cjson.null end
  return cjson.decode(raw)
end

-- Bump seq, append the event to the task's bounded stream and publish it. Returns the new seq.
local function emit(tkey, id, etype, partial, maxlen)
  local seq = redis.call('HINCRBY', tkey, 'seq', 1)
  partial['id'] = id
  partial['seq'] = seq
  local ev = cjson.encode({seq = seq, task_id = id, type = etype, task = partial})
  redis.call('XADD', tkey .. ':events', 'MAXLEN', '~', tonumber(maxlen), '*', 'e', ev)
  redis.call('PUBLISH', PREFIX .. 'events', ev)
  return seq
end

-- Common end of a task reaching a terminal state: timestamps, TTLs, lease removal.
local function finalize(tkey, id, ttl_s, partial)
  local t = now_s()
  redis.call('HSET', tkey, 'finished_at', t, 'updated_at', t)
  redis.call('HDEL', tkey, 'cancel_requested', 'pause_requested')
  redis.call('ZREM', PREFIX .. 'tasks:leases', id)
  redis.call('EXPIRE', tkey, tonumber(ttl_s))
  redis.call('EXPIRE', tkey .. ':events', tonumber(ttl_s))
  partial['finished_at'] = t
  partial['updated_at'] = t
end
