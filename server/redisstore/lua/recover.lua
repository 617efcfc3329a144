-- LeaseRecover of one queue: return the live leases of one owner. KEYS: a
-- queue. ARGV: name, owner, limit. Replies {events, released, more}.
local q = Q(1, ARGV[5])
local owner, limit = ARGV[6], tonumber(ARGV[7])
local n, more = 0, 0
for _, id in ipairs(redis.call('ZRANGE', q.f, 0, -1)) do
  local r = getrec(q, id)
  if r and r[7] == 0 and r[8] == owner then
    if n >= limit then
      more = 1
      break
    end
    requeue(q, id, r)
    n = n + 1
  end
end
return {events(), n, more}
