-- Read what planning one commit needs from a household, as one consistent snapshot.
-- KEYS[1] meta hash  KEYS[2] members hash  KEYS[3] pending set  KEYS[4] sales hash
-- KEYS[5] idempotency hash  KEYS[6..] lot hashes of the identity keys the commit trades
-- ARGV[1] idempotency key
-- Returns {meta (flat field/value list), members (flat account/type list), pending sale jsons,
--          stored idempotent result or false, lots of KEYS[6], lots of KEYS[7], ...}
local out = {}
out[1] = redis.call('HGETALL', KEYS[1])
out[2] = redis.call('HGETALL', KEYS[2])
local ids = redis.call('SMEMBERS', KEYS[3])
if #ids > 0 then
  out[3] = redis.call('HMGET', KEYS[4], unpack(ids))
else
  out[3] = {}
end
out[4] = redis.call('HGET', KEYS[5], ARGV[1])
for i = 6, #KEYS do
  out[#out + 1] = redis.call('HGETALL', KEYS[i])
end
return out
