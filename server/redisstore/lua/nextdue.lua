-- The earliest deadline or expiry of a queue, as a score, or ''. KEYS: a
-- queue. The reaper runs it after writing the queue's due score, so it
-- counts a visit of the reaper in the queue's due generation (lease.lua).
local q = Q(1, '')
if qexists(q) then redis.call('HINCRBY', q.m, 'dueg', 1) end
local nxt = ''
local f = redis.call('ZRANGE', q.f, 0, 0, 'WITHSCORES')
local x = redis.call('ZRANGE', q.x, 0, 0, 'WITHSCORES')
if f[2] then nxt = f[2] end
if x[2] and (nxt == '' or tonumber(x[2]) < tonumber(nxt)) then nxt = x[2] end
return nxt
