-- Finish a job (done or failed) once: acknowledge and drop its stream entry. Later calls
-- change nothing.
-- KEYS: queue stream, waiting zset, running zset, job hash
-- ARGV: group, id, new state ('done' | 'failed'), error message
local state = redis.call('HGET', KEYS[4], 'state')
if not state then
  return 'gone'
end
if state == 'done' or state == 'failed' then
  return 'again'
end
local entry = redis.call('HGET', KEYS[4], 'entry')
redis.call('HSET', KEYS[4], 'state', ARGV[3])
if ARGV[3] == 'failed' then
  redis.call('HSET', KEYS[4], 'error', ARGV[4])
end
redis.call('HDEL', KEYS[4], 'worker', 'lease_until')
redis.call('XACK', KEYS[1], ARGV[1], entry)
redis.call('XDEL', KEYS[1], entry)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 'first'
