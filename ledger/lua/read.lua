-- Read what planning one commit needs from a household, as one consistent snapshot.
-- KEYS[1] meta hash  KEYS[2] members hash  KEYS[3] pending set  KEYS[4] sales hash
-- KEYS[5] idempotency hash  KEYS[6] windows hash  KEYS[7..] lot hashes of the identity keys traded
-- ARGV[1] idempotency key  ARGV[2] date (ordinal)
-- ARGV[3..] one per lot hash: "*" (every lot of the key), or "" / lot ids joined by "|" (those
--   lots, and every lot acquired in the last 30 days: a replacement for a loss sold now)
-- Returns {meta (flat field/value list), members (flat account/type list), pending sale jsons,
--          stored idempotent result or false, then per lot hash a flat id/encoded list}
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
local date = tonumber(ARGV[2])
for i = 7, #KEYS do
  local want = ARGV[i - 4]
  if want == '*' then
    out[#out + 1] = redis.call('HGETALL', KEYS[i])
  else
    local list, flat, named = {}, {}, {}
    for id in string.gmatch(want, '[^|]+') do list[#list + 1] = id; named[id] = true end
    local key = string.match(KEYS[i], ':([^:]*)$')
    local w = redis.call('HGET', KEYS[6], key)
    local recent = false
    if w then
      local last_buy = tonumber(string.sub(w, 1, string.find(w, '|', 1, true) - 1))
      recent = last_buy ~= nil and date - last_buy <= 30
    end
    if recent then
      -- the named lots, and every lot acquired in the last 30 days (possible replacements)
      local all = redis.call('HGETALL', KEYS[i])
      for j = 1, #all, 2 do
        local acquired = tonumber(string.match(all[j + 1], '^[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|'))
        if named[all[j]] or date - acquired <= 30 then
          flat[#flat + 1] = all[j]; flat[#flat + 1] = all[j + 1]
        end
      end
    elseif #list > 0 then
      local vals = redis.call('HMGET', KEYS[i], unpack(list))
      for j = 1, #list do
        if vals[j] then flat[#flat + 1] = list[j]; flat[#flat + 1] = vals[j] end
      end
    end
    out[#out + 1] = flat
  end
end
return out
