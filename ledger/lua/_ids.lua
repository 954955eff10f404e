-- A helper, not a script: ledger/store.py puts it in front of read.lua, commit.lua, import.lua and
-- ids.lua. The lot-id registry of a household has two parts (ledger/keys.py, "Lot-id registry"):
--   the hash of given ids (id -> "1", a dot-prefix of one -> "p"), and
--   the ids the ledger made, <account>-<yyyymmdd>-<n> with n the household's purchase number:
--   a string of 40-bit slots, slot n - meta "made_base" holding yyyymmdd * 256 + the account's
--   place (1-based) in meta "made_accounts" ("a|b|..."); 0 where purchase n got no made id.
-- The slots are exact: an id is in them only when this ledger made that very string.
-- The functions take the KEYS indexes of the registry hash (reg), the meta hash and the slots (made).
local MADE_SLOT = 'u40'

-- The slot offset of lot id ``id`` when this ledger made it (false otherwise).
local function made_offset(meta, made, id)
  local x, day, n = string.match(id, '^(.+)%-(%d%d%d%d%d%d%d%d)%-([1-9]%d*)$')
  if not x or #n > 15 then return false end
  n = tonumber(n)
  local m = redis.call('HMGET', KEYS[meta], 'made_base', 'made_accounts', 'seq')
  local base, seq = tonumber(m[1] or '0'), tonumber(m[3] or '0')
  if base == 0 or n < base or n > seq then return false end
  local got = tonumber(redis.call('BITFIELD_RO', KEYS[made], 'GET', MADE_SLOT, '#' .. (n - base))[1])
  if got == 0 then return false end
  local place = got % 256
  if (got - place) / 256 ~= tonumber(day) then return false end
  local i = 0
  for a in string.gmatch(m[2] or '', '[^|]+') do
    i = i + 1
    if i == place then
      return (string.gsub(a, '%.', '_')) == x and (n - base)
    end
  end
  return false
end

-- What the registry says of ``id``: "1" (names a purchase), "p" (a dot-prefix of one) or false (free).
local function id_used(reg, meta, made, id)
  local v = redis.call('HGET', KEYS[reg], id)
  if v then return v end
  if made_offset(meta, made, id) then return '1' end
  return false
end

-- Record the id the ledger made for purchase n (day yyyymmdd, account) in the slots. Returns false
-- when it cannot go there (a number below the first slot, a 256th account): the caller puts it in
-- the hash instead, which is as exact
-- (``made_form`` checks the id against its parts first, before anything is written.)
local function made_form(id, n, day, account)
  return (string.gsub(account, '%.', '_')) .. '-' .. string.format('%.0f', day) .. '-' .. string.format('%.0f', n) == id
end

local function made_put(meta, made, n, day, account)
  local m = redis.call('HMGET', KEYS[meta], 'made_base', 'made_accounts')
  local base = tonumber(m[1] or '0')
  if base == 0 then
    base = n
    redis.call('HSET', KEYS[meta], 'made_base', n)
  end
  if n < base then return false end
  local list, place, i = m[2] or '', nil, 0
  for a in string.gmatch(list, '[^|]+') do
    i = i + 1
    if a == account then place = i end
  end
  if not place then
    if i >= 255 then return false end
    place = i + 1
    redis.call('HSET', KEYS[meta], 'made_accounts', list == '' and account or list .. '|' .. account)
  end
  redis.call('BITFIELD', KEYS[made], 'SET', MADE_SLOT, '#' .. (n - base), string.format('%.0f', day * 256 + place))
  return true
end
