-- Claim up to `max` jobs for `worker`: first those whose lease ran out (their worker died or
-- stalled: pending entries idle for at least the lease, taken over with XAUTOCLAIM), then new
-- ones (XREADGROUP). Returns id, spec pairs.
-- KEYS: queue stream, waiting zset, running zset
-- ARGV: group, worker, max, lease (ms), job hash key prefix
local group, worker, max, lease, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + lease

local entries = {}
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', KEYS[1], group, worker, lease, cursor, 'COUNT', max - #entries)
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    -- Entries deleted from the stream come back empty (Redis 6.2); skip them.
    if e then table.insert(entries, e) end
  end
until cursor == '0-0' or #entries >= max
if #entries < max then
  local r = redis.call('XREADGROUP', 'GROUP', group, worker, 'COUNT', max - #entries,
    'STREAMS', KEYS[1], '>')
  if r then
    for _, e in ipairs(r[1][2]) do table.insert(entries, e) end
  end
end

local out = {}
for _, e in ipairs(entries) do
  local id = nil
  for i = 1, #e[2], 2 do
    if e[2][i] == 'id' then id = e[2][i + 1] end
  end
  local job = prefix .. (id or '')
  local state = id and redis.call('HGET', job, 'state')
  if state == 'queued' or state == 'running' then
    redis.call('HSET', job, 'state', 'running', 'worker', worker, 'lease_until', until_ms)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], until_ms, id)
    table.insert(out, id)
    table.insert(out, redis.call('HGET', job, 'spec'))
  else
    -- Finished, deleted or purged since it was enqueued: nothing left to do.
    redis.call('XACK', KEYS[1], group, e[1])
    redis.call('XDEL', KEYS[1], e[1])
  end
end
return out
