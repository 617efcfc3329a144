-- KVSet. KEYS: ki, kx. ARGV: the value prefix, then (name, value, ttl µs).
local kp = ARGV[5]
local now = kvnow()
for i = 6, #ARGV, 3 do
  kvput(kp, KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), now)
end
return 1
