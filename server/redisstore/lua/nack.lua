-- LeaseNack. KEYS: the queue, then its dead-letter queue. ARGV: name,
-- dead-letter name, id, sequence, created, error, max attempts, and the
-- time to return at ('' for at once). Replies {events, dead} with dead -1
-- when the lease is not live.
local q, d = Q(1, ARGV[5]), Q(6, ARGV[6])
local id = ARGV[7]
local r = live(q, id, tonumber(ARGV[8]), ARGV[9])
if not r then return {'', -1} end
r[2] = r[2] + 1
r[9] = ARGV[10]
local max = tonumber(ARGV[11])
if max > 0 and r[2] >= max then
  deadletter(q, d, id, r)
  return {events(), 1}
end
if ARGV[12] == '' then requeue(q, id, r) else delay(q, id, r, ARGV[12]) end
return {events(), 0}
