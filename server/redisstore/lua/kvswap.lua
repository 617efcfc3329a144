-- KVSwap. KEYS: ki, kx. ARGV: the value prefix, then per entry: name,
-- condition (0 always, 1 if absent, 2 if present, 3 if equal), the value
-- it must equal, change (0 put, 1 remove, 2 expire, 3 check), the value
-- to put, ttl µs, keep ttl (0/1). Replies {applied, earlier...}, each
-- earlier value {} or {value, expiry µs}.
local kp, ki, kx = ARGV[5], KEYS[1], KEYS[2]
local now = kvnow()
local entries, out, ok = {}, {0}, true
for i = 6, #ARGV, 7 do
  local en = {name = ARGV[i], cond = ARGV[i + 1], eq = ARGV[i + 2], op = ARGV[i + 3],
    value = ARGV[i + 4], ttl = tonumber(ARGV[i + 5]), keep = ARGV[i + 6] == '1'}
  entries[#entries + 1] = en
  local v, e = kvget(kp, ki, kx, en.name, now)
  if v then out[#out + 1] = {v, e} else out[#out + 1] = {} end
  if en.cond == '1' then ok = ok and v == nil
  elseif en.cond == '2' then ok = ok and v ~= nil
  elseif en.cond == '3' then ok = ok and v ~= nil and v == en.eq
  end
end
if not ok then return out end
for _, en in ipairs(entries) do
  if en.op == '0' then
    local ttl = en.ttl
    if en.keep then
      local v, e = kvget(kp, ki, kx, en.name, now)
      ttl = 0
      if v and e > 0 then ttl = math.max(e - now, 1) end
    end
    kvput(kp, ki, kx, en.name, en.value, ttl, now)
  elseif en.op == '1' then
    kvdel(kp, ki, kx, en.name)
  elseif en.op == '2' then
    local v = kvget(kp, ki, kx, en.name, now)
    if v then kvput(kp, ki, kx, en.name, v, en.ttl, now) end
  end
end
out[1] = 1
return out
