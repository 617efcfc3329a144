-- Hints, written before the change they announce so that a crash between
-- the two leaves a hint too many, never one too few. KEYS: the queue
-- registry, due, owners, record groups, outbox groups, and the owner's
-- queue set. ARGV: ops: 'q' name (a queue may exist), 'd'
-- name score (a queue has something due then), 'o' owner name (an owner
-- may lease from a queue), 'e' group (a group may hold records), 't'
-- group (a group may hold outbox entries).
local now = n2s(math.floor(kvnow() / 1000)) -- Redis's clock, in ms, for every server
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'q' then
    redis.call('ZADD', KEYS[1], now, ARGV[i + 1])
    i = i + 2
  elseif op == 'd' then
    redis.call('ZADD', KEYS[2], 'LT', ARGV[i + 2], ARGV[i + 1])
    i = i + 3
  elseif op == 'o' then
    redis.call('ZADD', KEYS[3], 'NX', 0, ARGV[i + 1])
    redis.call('SADD', KEYS[6], ARGV[i + 2])
    i = i + 3
  elseif op == 'e' then
    redis.call('ZADD', KEYS[4], now, ARGV[i + 1])
    i = i + 2
  elseif op == 't' then
    redis.call('ZADD', KEYS[5], now, ARGV[i + 1])
    i = i + 2
  else
    fail('unknown hint ' .. op)
  end
end
return 1
