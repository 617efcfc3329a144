-- Makes a blob's new version current. KEYS: the blob's state. ARGV:
-- version, size, chunks. Replies the replaced {version, chunks}, or nil.
local old = redis.call('HMGET', KEYS[1], 'ver', 'n')
redis.call('HSET', KEYS[1], 'ver', ARGV[5], 'size', ARGV[6], 'n', ARGV[7])
if old[1] then return old end
return nil
