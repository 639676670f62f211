-- Enqueue one job, unless the queue is full: the check and the insert are one atomic step.
-- KEYS: queue stream, waiting zset, expiry zset, ticket counter, job hash
-- ARGV: id, spec (JSON), limit, expires_at (Unix seconds)
if redis.call('EXISTS', KEYS[5]) == 1 then
  return redis.error_reply('job ' .. ARGV[1] .. ' exists already')
end
-- Finished jobs leave the stream, so its length is the number of unfinished jobs.
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
-- The ticket orders the waiting set as the stream orders its entries.
local ticket = redis.call('INCR', KEYS[4])
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[5], 'spec', ARGV[2], 'state', 'queued', 'entry', entry)
-- The record goes when its links expire, even if no purge runs.
redis.call('EXPIREAT', KEYS[5], ARGV[4])
redis.call('ZADD', KEYS[2], ticket, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
