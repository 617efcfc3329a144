-- KVScan (ARGV[8] = '0') and KVDeletePrefix ('1'). KEYS: ki, kx. ARGV:
-- the value prefix, the lex range (min, max), delete, limit (0: all).
-- Replies {more, name, value, expiry, ...} of the keys that were there.
local kp, lo, hi, del, limit = ARGV[5], ARGV[6], ARGV[7], ARGV[8] == '1', tonumber(ARGV[9])
local now = kvnow()
local names
if limit > 0 then
  names = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi, 'LIMIT', 0, limit + 1)
else
  names = redis.call('ZRANGEBYLEX', KEYS[1], lo, hi)
end
local out = {0}
for i, name in ipairs(names) do
  if limit > 0 and i > limit then
    out[1] = 1
    break
  end
  local v, e = kvget(kp, KEYS[1], KEYS[2], name, now)
  if del then
    kvdel(kp, KEYS[1], KEYS[2], name)
  elseif not v then
    redis.call('ZREM', KEYS[1], name) -- expired: drop it from the index
    redis.call('ZREM', KEYS[2], name)
  end
  if v then
    out[#out + 1] = name
    out[#out + 1] = v
    out[#out + 1] = e
  end
end
return out
