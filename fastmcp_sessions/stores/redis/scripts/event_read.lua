-- The events of stream KEYS[1] from entry ARGV[1] on, as a flat [id, value, id, value, ...]:
-- redis-py hands a script's reply back as is, instead of building a dict per entry.
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
local out = {}
for i, entry in ipairs(entries) do
  out[2 * i - 1] = entry[1]
  out[2 * i] = entry[2][2]
end
return out
