-- Commit of the groups whose changes are in one slot: a commit's own part
-- (with its lease acks, and the outbox entries that carry its changes to
-- other slots), or an outbox entry applied to the slot it is for (marked
-- with its id, so that it applies once).
--
-- ARGV from 5: the key/value prefix; nq, then (key index, name) per
-- queue; the indexes of ki, kx, e, ei, ob, obz, obd (0: not passed); the
-- number of groups, then per group: outbox id ('' for none); acks (queue,
-- id, sequence, created); deletes (queue, id); pushes (queue, n, then n
-- (value, expires)); key/value sets (name, value, ttl µs); key/value
-- deletes (name); record sets (key, value); record deletes (key); outbox
-- entries to write (id, text); each list after its length. A queue is its
-- number in the queue list.
--
-- Replies {events, group...}, a group being {applied, first id per push}
-- with applied 1, 0 (a lease was not live) or 2 (applied before).
local a = 5
local function nxt()
  local v = ARGV[a]
  a = a + 1
  return v
end
local function num() return tonumber(nxt()) end
local function key()
  local i = num()
  if i == 0 then return nil end
  return KEYS[i]
end
local kp = nxt()
local qs = {}
for i = 1, num() do
  local ki = num()
  qs[i] = Q(ki, nxt())
end
local ki, kx, e, ei, ob, obz, obd = key(), key(), key(), key(), key(), key(), key()

-- Outbox times and key/value TTLs are on Redis's clock, read once.
local kvclock
local function kvtime()
  if not kvclock then kvclock = kvnow() end
  return kvclock
end

local function list(n, width)
  local out = {}
  for i = 1, n do
    local item = {}
    for j = 1, width do item[j] = nxt() end
    out[i] = item
  end
  return out
end

local function parse()
  local g = {obid = nxt()}
  g.acks = list(num(), 4)
  g.dels = list(num(), 2)
  g.pushes = {}
  for i = 1, num() do
    local q, n = tonumber(nxt()), num()
    g.pushes[i] = {q = q, n = n, at = a}
    a = a + 2 * n
  end
  g.kvset = list(num(), 3)
  g.kvdel = list(num(), 1)
  g.recset = list(num(), 2)
  g.recdel = list(num(), 1)
  g.out = list(num(), 2)
  return g
end


local function apply(g)
  local reply = {1}
  for _, k in ipairs(g.acks) do
    local q, id = qs[tonumber(k[1])], k[2]
    redis.call('ZREM', q.f, id)
    redis.call('HDEL', q.b, id)
    incr(q, 'infl', -1)
    incr(q, 'acked', 1)
  end
  for _, d in ipairs(g.dels) do delmsg(qs[tonumber(d[1])], d[2]) end
  for _, p in ipairs(g.pushes) do reply[#reply + 1] = push(qs[p.q], p.at, p.n) end
  for _, s in ipairs(g.kvset) do kvput(kp, ki, kx, s[1], s[2], tonumber(s[3]), kvtime()) end
  for _, d in ipairs(g.kvdel) do kvdel(kp, ki, kx, d[1]) end
  for _, s in ipairs(g.recset) do
    redis.call('HSET', e, s[1], s[2])
    redis.call('ZADD', ei, 0, s[1])
  end
  for _, d in ipairs(g.recdel) do
    redis.call('HDEL', e, d[1])
    redis.call('ZREM', ei, d[1])
  end
  for _, o in ipairs(g.out) do
    redis.call('HSET', ob, o[1], o[2])
    redis.call('ZADD', obz, n2s(kvtime()), o[1])
  end
  if g.obid ~= '' then redis.call('ZADD', obd, n2s(kvtime()), g.obid) end
  return reply
end

local replies = {''}
local pruned = false
for _ = 1, num() do
  local g = parse()
  local ok = true
  if g.obid ~= '' then
    if redis.call('ZSCORE', obd, g.obid) then ok = false end
    if not pruned then
      redis.call('ZREMRANGEBYSCORE', obd, '-inf', n2s(kvtime() - 86400000000))
      pruned = true
    end
    if not ok then replies[#replies + 1] = {2} end
  end
  if ok then
    for _, k in ipairs(g.acks) do
      if not live(qs[tonumber(k[1])], k[2], tonumber(k[3]), k[4]) then
        ok = false
        break
      end
    end
    if ok then replies[#replies + 1] = apply(g) else replies[#replies + 1] = {0} end
  end
end
replies[1] = events()
return replies
