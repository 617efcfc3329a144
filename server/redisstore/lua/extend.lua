-- LeaseExtend. KEYS: a queue. ARGV: name, id, sequence, created, deadline.
local q = Q(1, ARGV[5])
local id = ARGV[6]
local r = live(q, id, tonumber(ARGV[7]), ARGV[8])
if not r then return {''} end
r[6] = ARGV[9]
putrec(q, id, r)
redis.call('ZADD', q.f, us(r[6]), id)
return {'', msg(id, r)}
