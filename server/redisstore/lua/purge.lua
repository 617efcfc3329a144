-- QueuePurge (ARGV[6] = 'purge') and QueueClear ('clear'). KEYS: a queue.
-- ARGV: name, what. Replies {events, existed, messages deleted}.
local q = Q(1, ARGV[5])
local existed = qexists(q)
local n = redis.call('ZCARD', q.r) + redis.call('ZCARD', q.f)
if ARGV[6] == 'purge' then
  redis.call('UNLINK', q.m, q.r, q.b, q.f, q.x)
  ev('u', q.name)
elseif existed then
  redis.call('UNLINK', q.r, q.b, q.f, q.x)
  redis.call('HSET', q.m, 'len', 0, 'infl', 0)
  ev('u', q.name)
end
return {events(), existed and 1 or 0, n}
