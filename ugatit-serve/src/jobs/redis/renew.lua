-- Extend the leases `worker` still holds on the given jobs; skip the others.
-- KEYS: queue stream, running zset
-- ARGV: group, worker, lease (ms), job hash key prefix, ids...
local group, worker, lease, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + lease
for i = 5, #ARGV do
  local id = ARGV[i]
  local job = prefix .. id
  local held = redis.call('HMGET', job, 'state', 'worker', 'entry')
  if held[1] == 'running' and held[2] == worker then
    -- Claiming the entry again for the same consumer resets its idle time, which is what
    -- XAUTOCLAIM compares with the lease.
    redis.call('XCLAIM', KEYS[1], group, worker, 0, held[3], 'JUSTID')
    redis.call('HSET', job, 'lease_until', until_ms)
    redis.call('ZADD', KEYS[2], 'XX', until_ms, id)
  end
end
return 0
