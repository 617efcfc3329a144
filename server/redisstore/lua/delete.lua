-- MessageDelete. KEYS: a queue. ARGV: name, id. Replies {events, found}.
local q = Q(1, ARGV[5])
return {'', delmsg(q, ARGV[6]) and 1 or 0}
