-- LeaseAck (ARGV[6] = 'ack') and LeaseRelease ('release'). KEYS: a queue.
-- ARGV: name, what, then (id, sequence, created) per lease. Replies
-- {events, {index of each lease that is not live}}.
local q = Q(1, ARGV[5])
local release = ARGV[6] == 'release'
local unknown, done = {}, 0
local there = qexists(q)
for i = 7, #ARGV, 3 do
  local id = ARGV[i]
  local r = there and live(q, id, tonumber(ARGV[i + 1]), ARGV[i + 2])
  if not r then
    unknown[#unknown + 1] = (i - 7) / 3
  elseif release then
    requeue(q, id, r)
  else
    redis.call('ZREM', q.f, id)
    redis.call('HDEL', q.b, id)
    done = done + 1
  end
end
incr(q, 'infl', -done)
if done > 0 then incr(q, 'acked', done) end
return {events(), unknown}
