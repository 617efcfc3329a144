-- QueuePush. KEYS: a queue. ARGV: name, n, then n (value, expires) pairs.
local q = Q(1, ARGV[5])
local first = push(q, 7, tonumber(ARGV[6]))
return {events(), first}
