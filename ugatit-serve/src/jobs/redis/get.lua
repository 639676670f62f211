-- A job's record and the server's clock (ms), read together.
-- KEYS: job hash
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'spec', 'state', 'error', 'lease_until')
table.insert(r, tostring(now))
return r
