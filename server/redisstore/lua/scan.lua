-- QueueScan. KEYS: a queue. ARGV: name, after id, limit (0: all).
local q = Q(1, ARGV[5])
local limit = tonumber(ARGV[7])
local ids
if limit > 0 then
  ids = redis.call('ZRANGEBYSCORE', q.r, '(' .. ARGV[6], '+inf', 'LIMIT', 0, limit)
else
  ids = redis.call('ZRANGEBYSCORE', q.r, '(' .. ARGV[6], '+inf')
end
local out = {''}
for _, id in ipairs(ids) do
  local r = getrec(q, id)
  if r then out[#out + 1] = msg(id, r) end
end
return out
