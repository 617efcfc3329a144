-- Deletes a blob's state. KEYS: the state. Replies its {version, chunks},
-- or nil if there was none.
local old = redis.call('HMGET', KEYS[1], 'ver', 'n')
redis.call('DEL', KEYS[1])
if old[1] then return old end
return nil
