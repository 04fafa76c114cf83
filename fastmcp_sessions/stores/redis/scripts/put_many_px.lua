-- ARGV: PX milliseconds, then one payload per key. MSET has no expiry: SET PX each.
local px = ARGV[1]
for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[i + 1], 'PX', px) end
return #KEYS
