-- Open lots of a household, filtered by account server side (lots live per household and key).
-- KEYS[1] groups set of the household (identity keys with lots); KEYS[2..] their lot hashes, as
--   the caller read the set: when the set no longer matches them the caller must read it again
-- ARGV[1] account ("" for every account)
-- Returns {"OK", flat list lot id, encoded lot, ...} or {"RETRY"}
-- Lots are read with lot_field, the prelude ledger/codec.py puts in front of this script.
if redis.call('SCARD', KEYS[1]) ~= #KEYS - 1 then return {'RETRY'} end
local out = {}
local every = ARGV[1] == ''
for i = 2, #KEYS do
  local all = redis.call('HGETALL', KEYS[i])
  for j = 1, #all, 2 do
    if every or lot_field(all[j + 1], 'account') == ARGV[1] then
      out[#out + 1] = all[j]; out[#out + 1] = all[j + 1]
    end
  end
end
return {'OK', out}
