-- Import opening lots into one household, atomically: every lot id is checked first, then all
-- lots, the lot-id registry, the wash-sale purchase windows, the journal and the version are written.
-- KEYS[1] meta hash  KEYS[2] lot-id registry hash  KEYS[3] windows hash  KEYS[4] journal stream
-- KEYS[5] groups set  KEYS[6] the registry's slots of made ids (lua/_ids.lua)
-- KEYS[7..] lot hashes, one per identity key (g below is 1-based into these)
-- ARGV[1] json {
--   "keys":   [identity key of KEYS[6 + g]],
--   "lots":   [[g, lot id, head, capacity, [dot-prefixes of the id], purchase label or false]]
--             new purchases: head is the first LOT_HEAD fields of an encoded lot (ledger/codec.py
--             HEAD_FIELDS: account|symbol|quantity|basis_cents|acquired|holding_start); the script
--             gives each the next purchase number seq (identity "p<seq>"), one number for the rows
--             of one purchase label, and writes the fields after the head: purchase_id, capacity, seq
--          or [[g, lot id, encoded lot, false, [dot-prefixes], false]]  verbatim (a journal replay)
--   "remove": [[g, lot id]]  open lots to delete first (a replaced account's)
--   "free":   [ids]  what the removals give back: their ids and the namespaces above them
--   "replace": [accounts]  (journaled)
--   "latest": [[identity key, latest acquisition ordinal]],
--   "source": {"path": the import file, "sha256": its checksum} or absent }
--   With a source the journal names the file instead of copying every lot: {"import_file":
--   {path, sha256, lots: count, digest: sha1 of the lots written ("id|encoded\n" each, in order)}}
--   (ledger/journal.py replays it from the file and checks the digest).
-- ARGV[2] expected household version, or "" (any): the removals were read at that version
-- Returns {"OK", lots written} | {"ERR", code, message}
-- Lots are built and read with LOT / LOT_HEAD / lot_field, the prelude ledger/codec.py puts in
-- front of this script.
local a = cjson.decode(ARGV[1])
if ARGV[2] ~= '' then
  local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
  if version ~= tonumber(ARGV[2]) then
    return {'ERR', 'STALE', 'household changed while the import was planned'}
  end
end
local freed = {}
for _, id in ipairs(a.free) do freed[id] = true end
local CHUNK = 1000  -- fields per HSET (Lua's unpack has a limit)
for _, x in ipairs(a.lots) do  -- lua/_ids.lua
  if not freed[x[2]] and id_used(2, 1, 6, x[2]) then
    return {'ERR', 'ID_TAKEN', 'lot id ' .. x[2] .. ' is already used in the household'}
  end
end
for _, x in ipairs(a.lots) do
  local id = x[2]
  for _, p in ipairs(x[5]) do
    if not freed[p] and id_used(2, 1, 6, p) == '1' then
      return {'ERR', 'ID_TAKEN', 'lot id ' .. id .. ' is inside the namespace of lot ' .. p}
    end
  end
end
-- validated: write
local journal = {import = {}, removed = {}, replace = a.replace}
local written = {}  -- "id|encoded" of each lot, for the digest of a file's import
for _, id in ipairs(a.free) do
  if redis.call('HGET', KEYS[2], id) == '1' then
    redis.call('HDEL', KEYS[2], id)
  else
    local slot = made_offset(1, 6, id)
    if slot then redis.call('BITFIELD', KEYS[6], 'SET', MADE_SLOT, '#' .. slot, 0) end
  end
end
for _, x in ipairs(a.remove) do
  redis.call('HDEL', KEYS[6 + x[1]], x[2])
  journal.removed[#journal.removed + 1] = {a.keys[x[1]], x[2]}
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local per_hash, purchases, tail = {}, {}, {}
for _, x in ipairs(a.lots) do
  local enc = x[3]
  if x[4] then
    local n = x[6] and purchases[x[6]]
    if not n then
      seq = seq + 1
      n = seq
      if x[6] then purchases[x[6]] = n end
    end
    tail[LOT.purchase_id - LOT_HEAD] = 'p' .. n
    tail[LOT.capacity - LOT_HEAD] = x[4]
    tail[LOT.seq - LOT_HEAD] = n
    enc = enc .. '|' .. table.concat(tail, '|')
  else
    local s = tonumber(lot_field(enc, 'seq'))
    if s > seq then seq = s end
  end
  local args = per_hash[x[1]]
  if not args then args = {}; per_hash[x[1]] = args end
  args[#args + 1] = x[2]; args[#args + 1] = enc
  for _, p in ipairs(x[5]) do redis.call('HSETNX', KEYS[2], p, 'p') end
  if a.source then written[#written + 1] = x[2] .. '|' .. enc .. '\n'
  else journal.import[#journal.import + 1] = {x[2], enc} end
end
for i = 1, #a.lots, CHUNK do
  local fields = {}
  for j = i, math.min(i + CHUNK - 1, #a.lots) do
    fields[#fields + 1] = a.lots[j][2]; fields[#fields + 1] = '1'
  end
  redis.call('HSET', KEYS[2], unpack(fields))
end
for g, args in pairs(per_hash) do
  redis.call('HSET', KEYS[6 + g], unpack(args))
  redis.call('SADD', KEYS[5], a.keys[g])
end
for _, x in ipairs(a.latest) do  -- imported purchases count for the wash-sale windows
  local old = redis.call('HGET', KEYS[3], x[1]) or '|'
  local bar = string.find(old, '|', 1, true)
  local b, l = string.sub(old, 1, bar - 1), string.sub(old, bar + 1)
  if b == '' or tonumber(b) < x[2] then b = tostring(x[2]) end
  redis.call('HSET', KEYS[3], x[1], b .. '|' .. l)
end
redis.call('HSET', KEYS[1], 'seq', seq)
redis.call('HINCRBY', KEYS[1], 'version', 1)
if a.source then
  journal.import = nil
  journal.import_file = {path = a.source.path, sha256 = a.source.sha256, lots = #written,
                         digest = redis.sha1hex(table.concat(written))}
end
redis.call('XADD', KEYS[4], '*', 'key', '', 'account', '', 'date', '', 'entry', cjson.encode(journal))
return {'OK', #a.lots}
