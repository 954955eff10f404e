-- Read what a corporate action needs of one household, as one consistent snapshot.
-- KEYS[1] meta hash  KEYS[2] corporate actions hash  KEYS[3] pending set  KEYS[4] sales hash
-- KEYS[5] windows hash  KEYS[6..] lot hashes of the action's identity keys
-- ARGV[1] action id   ARGV[2..] the identity keys whose windows are read
-- Returns {meta (flat field/value list), the action's record or false, pending sale records (ledger/codec.py),
--          window values of ARGV[2..] (false: none), then per lot hash a flat id/encoded list}
local out = {}
out[1] = redis.call('HGETALL', KEYS[1])
out[2] = redis.call('HGET', KEYS[2], ARGV[1])
local ids = redis.call('SMEMBERS', KEYS[3])
if #ids > 0 then out[3] = redis.call('HMGET', KEYS[4], unpack(ids)) else out[3] = {} end
local windows = {}
for i = 2, #ARGV do windows[#windows + 1] = redis.call('HGET', KEYS[5], ARGV[i]) end
out[4] = windows
for i = 6, #KEYS do out[#out + 1] = redis.call('HGETALL', KEYS[i]) end
return out
