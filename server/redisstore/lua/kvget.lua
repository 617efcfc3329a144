-- KVGet and KVMGet. KEYS: ki, kx. ARGV: the value prefix, then names.
-- Replies one entry per name: {} when absent, else {value, expiry µs}.
local kp = ARGV[5]
local now = kvnow()
local out = {}
for i = 6, #ARGV do
  local v, e = kvget(kp, KEYS[1], KEYS[2], ARGV[i], now)
  if v then out[#out + 1] = {v, e} else out[#out + 1] = {} end
end
return out
