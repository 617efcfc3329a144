-- QueueSetStatus and QueueSetPolicy. KEYS: a queue. ARGV: name, field
-- ('st' or 'pol'), value.
local q = Q(1, ARGV[5])
ensure(q)
redis.call('HSET', q.m, ARGV[6], ARGV[7])
ev('s', q.name)
return {events()}
