-- The earliest deadline or expiry of a queue, as a score, or ''. KEYS: a
-- queue.
local q = Q(1, '')
local nxt = ''
local f = redis.call('ZRANGE', q.f, 0, 0, 'WITHSCORES')
local x = redis.call('ZRANGE', q.x, 0, 0, 'WITHSCORES')
if f[2] then nxt = f[2] end
if x[2] and (nxt == '' or tonumber(x[2]) < tonumber(nxt)) then nxt = x[2] end
return nxt
