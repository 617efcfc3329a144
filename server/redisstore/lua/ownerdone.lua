-- Forgets an owner whose leases are all recovered, unless it has come
-- back to life meanwhile. KEYS: owners, the owner's queue set. ARGV:
-- owner.
local s = redis.call('ZSCORE', KEYS[1], ARGV[5])
if s and tonumber(s) >= tonumber(NOWUS) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[5])
redis.call('DEL', KEYS[2])
return 1
