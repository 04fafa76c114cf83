-- MGET answers nil for a key of another Redis type; GET raises WRONGTYPE, which must surface.
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('GET', k) end
return out
