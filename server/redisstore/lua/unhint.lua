-- Drops registry members whose last hint is older than a grace period, on
-- Redis's clock. KEYS: a registry. ARGV: grace (ms), then names. Replies
-- the names dropped.
local cutoff = math.floor(kvnow() / 1000) - tonumber(ARGV[5])
local out = {}
for i = 6, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) < cutoff then
    redis.call('ZREM', KEYS[1], ARGV[i])
    out[#out + 1] = ARGV[i]
  end
end
return out
