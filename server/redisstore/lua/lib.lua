-- The library every script of the store starts with (lua.go prepends it).
--
-- Every script gets four common arguments first: the event channel, this
-- store's origin id, the caller's now in nanoseconds (20 digits, zero
-- padded, so that times compare as strings: Lua's numbers are doubles and
-- cannot hold nanoseconds) and the same now in microseconds (a ZSET score).
-- Its own arguments start at ARGV[5].
local CHAN, ORIGIN, NOW, NOWUS = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ZERO = '00000000000000000000'

local function n2s(n) return string.format('%d', n) end
-- us turns a 20-digit nanosecond time into its microsecond score.
local function us(ns) return string.sub(ns, 1, 17) end
local function fail(what) error('tabreduce: ' .. what) end

-- Events: each script collects what changed and publishes it once, as
-- origin NUL kind name [NUL kind name ...]; it also returns that text so
-- the calling process tells its own watchers at once.
local EV, EVSEEN = {}, {}
local function ev(kind, name)
  local e = kind .. name
  if not EVSEEN[e] then
    EVSEEN[e] = true
    EV[#EV + 1] = e
  end
end
local function events()
  if #EV == 0 then return '' end
  local blob = ORIGIN .. '\0' .. table.concat(EV, '\0')
  redis.call('PUBLISH', CHAN, blob)
  return blob
end

-- A queue is five keys in a row from KEYS[i]: state, ready ids, records,
-- leased ids, ids with a TTL.
local function Q(i, name)
  return {m = KEYS[i], r = KEYS[i + 1], b = KEYS[i + 2], f = KEYS[i + 3], x = KEYS[i + 4], name = name}
end
local function qexists(q) return redis.call('EXISTS', q.m) == 1 end
local function qlen(q) return tonumber(redis.call('HGET', q.m, 'len') or '0') end
local function ensure(q)
  if redis.call('HSETNX', q.m, 'created', NOW) == 1 then
    redis.call('HSET', q.m, 'last', 0, 'len', 0, 'infl', 0, 'st', 0, 'pol', 0,
      'pushed', 0, 'deliv', 0, 'acked', 0, 'dead', 0)
  end
end
local function incr(q, field, n)
  if n ~= 0 then redis.call('HINCRBY', q.m, field, n) end
end

-- A message record is a cmsgpack array:
-- 1 count, 2 attempts, 3 created, 4 expires (ns; ZERO: never), 5 lease
-- sequence, 6 deadline (ns), 7 released (1: nacked with a delay, no live
-- lease), 8 owner, 9 last error, 10 value.
local function getrec(q, id)
  local s = redis.call('HGET', q.b, id)
  if not s then return nil end
  local r = cmsgpack.unpack(s)
  if type(r) ~= 'table' or #r ~= 10 then fail('corrupt record ' .. id .. ' of ' .. q.name) end
  return r
end
local function putrec(q, id, r) redis.call('HSET', q.b, id, cmsgpack.pack(r)) end
local function newrec(value, expires, attempts, err)
  return {0, attempts or 0, NOW, expires, 0, ZERO, 0, '', err or '', value}
end
local function putready(q, id, r)
  putrec(q, id, r)
  redis.call('ZADD', q.r, id, id)
  if r[4] ~= ZERO then redis.call('ZADD', q.x, us(r[4]), id) end
end
local function delready(q, id)
  redis.call('ZREM', q.r, id)
  redis.call('ZREM', q.x, id)
  redis.call('HDEL', q.b, id)
end
-- msg is a message as replies carry it.
local function msg(id, r) return {id, r[1], r[2], r[3], r[4], r[9], r[10], r[5], r[6]} end

-- push appends n messages given as (value, expires) pairs from ARGV[at]
-- and returns the first new id.
local function push(q, at, n)
  ensure(q)
  local first = redis.call('HINCRBY', q.m, 'last', n) - n + 1
  for i = 0, n - 1 do
    putready(q, n2s(first + i), newrec(ARGV[at + 2 * i], ARGV[at + 2 * i + 1]))
  end
  incr(q, 'len', n)
  incr(q, 'pushed', n)
  if n > 0 then ev('p', q.name) end
  return first
end

-- pick calls fn for up to n deliverable messages from the head of q,
-- dropping the expired ones it passes (at most 10,000 a call). fn must
-- take the message off q.r unless n is 1. It returns how many it gave fn.
local function pick(q, n, fn)
  local got, dropped = 0, 0
  while got < n and dropped < 10000 do
    local ids = redis.call('ZRANGE', q.r, 0, math.min(n - got, 1000) - 1)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      local r = getrec(q, id)
      if not r then fail('ready message ' .. id .. ' of ' .. q.name .. ' has no record') end
      if r[4] ~= ZERO and NOW >= r[4] then
        delready(q, id)
        dropped = dropped + 1
        if dropped >= 10000 then break end
      else
        fn(id, r)
        got = got + 1
        if got >= n then break end
      end
    end
  end
  incr(q, 'len', -dropped)
  return got
end

-- live returns the record of a live lease, or nil.
local function live(q, id, seq, created)
  if not redis.call('ZSCORE', q.f, id) then return nil end
  local r = getrec(q, id)
  if not r or r[7] == 1 or r[5] ~= seq or r[3] ~= created then return nil end
  return r
end

-- requeue returns a leased (or delayed) message to the head of its queue:
-- it keeps its id, so it sorts before every message pushed after it.
local function requeue(q, id, r)
  redis.call('ZREM', q.f, id)
  local delayed = r[7] == 1
  r[5], r[6], r[7] = 0, ZERO, 0
  putready(q, id, r)
  if not delayed then
    incr(q, 'infl', -1)
    incr(q, 'len', 1)
  end
  ev('p', q.name)
end

-- delay keeps a nacked message aside, with no live lease, until at; it
-- counts as waiting, not in flight.
local function delay(q, id, r, at)
  r[6], r[7] = at, 1
  putrec(q, id, r)
  redis.call('ZADD', q.f, us(at), id)
  incr(q, 'infl', -1)
  incr(q, 'len', 1)
end

-- deadletter moves a leased message to the tail of d, q's dead-letter queue.
local function deadletter(q, d, id, r)
  redis.call('ZREM', q.f, id)
  redis.call('HDEL', q.b, id)
  incr(q, 'infl', -1)
  incr(q, 'dead', 1)
  ensure(d)
  local did = n2s(redis.call('HINCRBY', d.m, 'last', 1))
  putready(d, did, newrec(r[10], ZERO, r[2], r[9]))
  incr(d, 'len', 1)
  incr(d, 'pushed', 1)
  ev('p', d.name)
end

-- delmsg deletes one message, ready or leased; false if there is none.
local function delmsg(q, id)
  if not qexists(q) then return false end
  if redis.call('ZSCORE', q.r, id) then
    delready(q, id)
    incr(q, 'len', -1)
    return true
  end
  if not redis.call('ZSCORE', q.f, id) then return false end
  local r = getrec(q, id)
  redis.call('ZREM', q.f, id)
  redis.call('HDEL', q.b, id)
  if r and r[7] == 1 then incr(q, 'len', -1) else incr(q, 'infl', -1) end
  return true
end

-- Key/values run on Redis's clock (TIME), which every server shares. A
-- value is its type byte and data; its expiry (µs) is in the kx index,
-- and Redis expires the key itself a little later, to free the memory.
local function kvnow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function kvget(kp, ki, kx, name, now)
  local v = redis.call('GET', kp .. name)
  if not v then return nil, 0 end
  local e = redis.call('ZSCORE', kx, name)
  if e then
    e = tonumber(e)
    if e <= now then return nil, 0 end
  else
    e = 0
  end
  return v, e
end
local function kvput(kp, ki, kx, name, v, ttl, now)
  local k = kp .. name
  redis.call('SET', k, v)
  redis.call('ZADD', ki, 0, name)
  if ttl > 0 then
    local e = now + ttl
    redis.call('ZADD', kx, n2s(e), name)
    redis.call('PEXPIREAT', k, n2s(math.floor(e / 1000) + 2))
  else
    redis.call('ZREM', kx, name)
  end
end
local function kvdel(kp, ki, kx, name)
  redis.call('DEL', kp .. name)
  redis.call('ZREM', ki, name)
  redis.call('ZREM', kx, name)
end
