-- One event into the stream KEYS[1], trimmed to about ARGV[1] entries; the stream's TTL
-- (ARGV[3] ms, 0 = none) is renewed in the same step so that a stream never outlives it
-- without its newest event.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])
if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return id
