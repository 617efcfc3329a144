-- QueueLease. KEYS: a queue, the request's reply key. ARGV: name, n,
-- deadline (ns), owner. Replies {events, due generation, message...}. The
-- reply is kept under the request's key for a while: a client whose reply
-- was lost (the connection broke) asks again with the same key and gets
-- the same leases, rather than leaving them leased to no one.
--
-- The due generation is the queue's creation time and the count of the
-- reaper's visits ('dueg', bumped by reap.lua and nextdue.lua on either
-- side of its write of the queue's due score), '' for no queue: a process
-- that hinted the queue's due score and sees the generation unchanged
-- since knows no reaper has raised that score since (hints.go, leaseDue).
local q = Q(1, ARGV[5])
local n, dl, owner = tonumber(ARGV[6]), ARGV[7], ARGV[8]
local prev = redis.call('GET', KEYS[6])
if prev then return cmsgpack.unpack(prev) end
local gen = ''
local m = redis.call('HMGET', q.m, 'created', 'dueg')
if m[1] then gen = m[1] .. ':' .. (m[2] or '0') end
local out = {'', gen}
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
redis.call('SET', KEYS[6], cmsgpack.pack(out), 'EX', 120)
return out
