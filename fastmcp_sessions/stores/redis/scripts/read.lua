-- The entry and its remaining time to live in milliseconds (PTTL), or false.
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
