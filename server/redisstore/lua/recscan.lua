-- RecordScan (ARGV[8] = '0') and RecordDeletePrefix ('1') in one group.
-- KEYS: e, ei. ARGV: lex min, lex max, delete, limit (0: all). Replies
-- {key, value, ...}.
local lo, hi, del, limit = ARGV[5], ARGV[6], ARGV[7] == '1', tonumber(ARGV[8])
local names
if limit > 0 then
  names = redis.call('ZRANGEBYLEX', KEYS[2], lo, hi, 'LIMIT', 0, limit)
else
  names = redis.call('ZRANGEBYLEX', KEYS[2], lo, hi)
end
local out = {}
for _, name in ipairs(names) do
  local v = redis.call('HGET', KEYS[1], name)
  if v then
    out[#out + 1] = name
    out[#out + 1] = v
  end
  if del then
    redis.call('HDEL', KEYS[1], name)
    redis.call('ZREM', KEYS[2], name)
  end
end
return out
