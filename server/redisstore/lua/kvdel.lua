-- KVDelete. KEYS: ki, kx. ARGV: the value prefix, the name. Replies 1 if
-- the key was there.
local kp, name = ARGV[5], ARGV[6]
local v = kvget(kp, KEYS[1], KEYS[2], name, kvnow())
kvdel(kp, KEYS[1], KEYS[2], name)
if v then return 1 end
return 0
