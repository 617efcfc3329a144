-- Drops key/values whose TTL passed. KEYS: ki, kx. ARGV: the value
-- prefix, limit. Replies how many it dropped.
local kp, limit = ARGV[5], tonumber(ARGV[6])
local names = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', n2s(kvnow()), 'LIMIT', 0, limit)
for _, name in ipairs(names) do kvdel(kp, KEYS[1], KEYS[2], name) end
return #names
