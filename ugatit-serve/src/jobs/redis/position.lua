-- Where a queued job stands: jobs whose lease ran out are claimed first, then waiting jobs in
-- enqueue order. Returns false for a job that is running, finished or missing.
-- KEYS: waiting zset, running zset, job hash
-- ARGV: id
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[3], 'state')
if state == 'queued' then
  local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
  if not rank then return false end
  return redis.call('ZCOUNT', KEYS[2], '-inf', now) + rank + 1
elseif state == 'running' then
  local lease = tonumber(redis.call('HGET', KEYS[3], 'lease_until'))
  if lease and lease <= now then
    return redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. lease) + 1
  end
end
return false
