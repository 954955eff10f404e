-- Read what planning one commit needs from a household, as one consistent snapshot.
-- KEYS[1] meta hash  KEYS[2] members hash  KEYS[3] pending set  KEYS[4] sales hash
-- KEYS[5] idempotency hash  KEYS[6] windows hash  KEYS[7] lot-id registry hash
-- KEYS[8] the registry's slots of made ids (lua/_ids.lua)  KEYS[9..] lot hashes of the identity keys traded
-- ARGV[1] idempotency key  ARGV[2] date (ordinal)
-- ARGV[3] json {"keys": [[identity key, named lot ids, fifo], ...] one per lot hash,
--                 "ids": [lot ids to look up in the registry, both parts], "account": the committing account}
--   per key: the lots named (and the pieces of a split one, "<id>.<n>"), every lot of the account
--   when fifo (a sell without a lot id), and the lots acquired in the wash-sale window when the key
--   was bought then (possible replacements for a loss sold now). Nothing else crosses the wire.
-- ARGV[4] wash-sale window in days (ledger.windows.WINDOW_DAYS)
-- Lots are read with LOT / lot_field, the prelude ledger/codec.py puts in front of this script.
-- Returns {meta (flat field/value list), members (flat account/type list), pending sale records (ledger/codec.py),
--          stored idempotent result or false, registry values of ARGV ids (false: free),
--          then per lot hash a flat id/encoded list}
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
local args = cjson.decode(ARGV[3])
out[5] = {}
for i, id in ipairs(args.ids) do out[5][i] = id_used(7, 1, 8, id) end
local date, window = tonumber(ARGV[2]), tonumber(ARGV[4])
for i = 9, #KEYS do
  local key, named, fifo = args.keys[i - 8][1], args.keys[i - 8][2], args.keys[i - 8][3]
  local w = redis.call('HGET', KEYS[6], key)
  local recent = false
  if w then
    local last_buy = tonumber(string.sub(w, 1, string.find(w, '|', 1, true) - 1))
    recent = last_buy ~= nil and date - last_buy <= window
  end
  local flat = {}
  if recent or fifo or #named > 0 then
    local want = {}
    for _, id in ipairs(named) do want[id] = true end
    local all = redis.call('HGETALL', KEYS[i])
    for j = 1, #all, 2 do
      local id, enc = all[j], all[j + 1]
      local keep = want[id] or (fifo and lot_field(enc, 'account') == args.account)
      if not keep and #named > 0 then  -- a piece of a named lot: "<name>.<n>..."
        local dot = string.find(id, '.', 1, true)
        while dot and not keep do
          keep = want[string.sub(id, 1, dot - 1)]
          dot = string.find(id, '.', dot + 1, true)
        end
      end
      if not keep and recent then
        keep = date - tonumber(lot_field(enc, 'acquired')) <= window
      end
      if keep then flat[#flat + 1] = id; flat[#flat + 1] = enc end
    end
  end
  out[#out + 1] = flat
end
return out
