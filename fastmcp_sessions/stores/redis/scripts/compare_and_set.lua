-- ARGV: expected header, new payload, PX milliseconds or ''. Returns 1 when it wrote, and
-- also when the entry already carries the new payload's header: then an earlier attempt of
-- this very call (retried after a lost reply) wrote it.
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local n = string.len(ARGV[1])
local head = string.sub(cur, 1, n)
if head == ARGV[1] then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
if head == string.sub(ARGV[2], 1, n) then return 1 end
return 0
