-- read.lua for every key: {value, PTTL} or false each.
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v then out[i] = {v, redis.call('PTTL', k)} else out[i] = false end
end
return out
