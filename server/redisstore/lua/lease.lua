-- QueueLease. KEYS: a queue. ARGV: name, n, deadline (ns), owner.
-- Replies {events, message...}.
local q = Q(1, ARGV[5])
local n, dl, owner = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local out = {''}
if n <= 0 or not qexists(q) or qlen(q) == 0 then return out end
local got = pick(q, n, function(id, r)
  redis.call('ZREM', q.r, id)
  redis.call('ZREM', q.x, id)
  r[1] = r[1] + 1
  r[5], r[6], r[7], r[8] = r[1], dl, 0, owner
  putrec(q, id, r)
  redis.call('ZADD', q.f, us(dl), id)
  out[#out + 1] = msg(id, r)
end)
incr(q, 'len', -got)
incr(q, 'infl', got)
incr(q, 'deliv', got)
return out
