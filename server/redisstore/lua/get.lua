-- QueueTake (ARGV[6] = '1') and QueuePeek ('0'). KEYS: a queue.
-- ARGV: name, take. Replies {events} when nothing is deliverable.
local q = Q(1, ARGV[5])
local take = ARGV[6] == '1'
if not qexists(q) or qlen(q) == 0 then return {''} end
local out
pick(q, 1, function(id, r)
  r[1] = r[1] + 1
  if take then
    delready(q, id)
    incr(q, 'len', -1)
  else
    putrec(q, id, r)
  end
  out = msg(id, r)
end)
if out then incr(q, 'deliv', 1) end
return {'', out}
