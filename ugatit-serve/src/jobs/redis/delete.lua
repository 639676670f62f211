-- Remove a job in any state, with its stream entry and its place in every index.
-- KEYS: queue stream, waiting zset, running zset, expiry zset, job hash
-- ARGV: group, id
local entry = redis.call('HGET', KEYS[5], 'entry')
if entry then
  redis.call('XACK', KEYS[1], ARGV[1], entry)
  redis.call('XDEL', KEYS[1], entry)
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
return redis.call('DEL', KEYS[5])
