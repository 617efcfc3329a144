-- Reap of one queue. KEYS: the queue, then its dead-letter queue. ARGV:
-- name, dead-letter name, max attempts, limit. Replies {events, requeued,
-- dead-lettered, expired, more, next}: next is the queue's earliest
-- deadline or expiry (a score) or '' for none.
local q, d = Q(1, ARGV[5]), Q(6, ARGV[6])
local max, limit = tonumber(ARGV[7]), tonumber(ARGV[8])
local requeued, dead, expired, more = 0, 0, 0, 0
if qexists(q) then
  -- A visit of the reaper, which may write the queue's due score next:
  -- counted before the write too, as nextdue.lua counts it after.
  redis.call('HINCRBY', q.m, 'dueg', 1)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', q.f, '-inf', NOWUS, 'LIMIT', 0, limit + 1)) do
    local r = getrec(q, id)
    if not r then
      redis.call('ZREM', q.f, id) -- an index entry without its message
    elseif r[6] <= NOW then
      if requeued + dead >= limit then
        more = 1
        break
      end
      if r[7] == 1 then
        requeue(q, id, r)
        requeued = requeued + 1
      elseif max > 0 and r[2] + 1 >= max then
        r[2], r[9] = r[2] + 1, 'lease expired'
        deadletter(q, d, id, r)
        dead = dead + 1
      else
        r[2] = r[2] + 1
        requeue(q, id, r)
        requeued = requeued + 1
      end
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', q.x, '-inf', NOWUS, 'LIMIT', 0, limit + 1)) do
    local r = getrec(q, id)
    if not r then
      redis.call('ZREM', q.x, id)
    elseif r[4] ~= ZERO and r[4] <= NOW then
      if expired >= limit then
        more = 1
        break
      end
      delready(q, id)
      expired = expired + 1
    end
  end
  incr(q, 'len', -expired)
end
local nxt = ''
local f = redis.call('ZRANGE', q.f, 0, 0, 'WITHSCORES')
local x = redis.call('ZRANGE', q.x, 0, 0, 'WITHSCORES')
if f[2] then nxt = f[2] end
if x[2] and (nxt == '' or tonumber(x[2]) < tonumber(nxt)) then nxt = x[2] end
return {events(), requeued, dead, expired, more, nxt}
