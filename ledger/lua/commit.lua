-- Commit one account's trades for one date, atomically, for one household.
-- The wash-sale arithmetic is planned by ledger.washsale (pure Python) against household
-- version ARGV[3]; this script validates everything against the current state first and only
-- then writes, so a failed validation writes nothing.
--
-- KEYS[1] meta hash      KEYS[2] account hash   KEYS[3] windows hash   KEYS[4] journal stream
-- KEYS[5] idempotency    KEYS[6] sales hash     KEYS[7] pending set    KEYS[8] groups set
-- KEYS[9] lot-id registry hash (id -> "1"; "p" for a dot-prefix of an id)
-- KEYS[10] the registry's slots of made ids (lua/_ids.lua)
-- KEYS[11..] lot hashes, one per identity key touched (indexes below are 1-based into these)
-- ARGV[1] idempotency key  ARGV[2] request digest  ARGV[3] expected household version
-- ARGV[4] date (proleptic ordinal)  ARGV[5] account  ARGV[6] allow_wash (0|1)
-- ARGV[7] checks json: [{"op":"sell","g":i,"lot":id,"qty":"10","key":k,"loss":true}, {"op":"buy","key":k}]
--         ("sell_new": a sell of a lot bought earlier in this same commit: only its window is checked)
-- ARGV[8] writes json: {"set":[[g,id,enc]],"del":[[g,id]],"sales":[[id,record]],"pending_add":[..],
--                       "pending_del":[..],"win":[[key,buy_ord|false,loss_ord|false]],"seq":n,"sale_seq":n,
--                       "groups":[keys], "ids":[[new lot id, [its dot-prefixes]]],
--                       "made":[[id the ledger made, purchase number, yyyymmdd, account]]}
-- ARGV[9] journal entry json   ARGV[10] result json   ARGV[11] date ISO
-- ARGV[12] cash change in cents (sell proceeds - buy costs)   ARGV[13] refuse an overdraft (0|1)
-- ARGV[14] wash-sale window in days (ledger.windows.WINDOW_DAYS)
-- ARGV[15] the tax year   ARGV[16] ARGV[17] the commit's recognized short / long-term net gain,
--          cents, added to the account's "realized:<year>:st|lt" (the gain budget's year to date)
-- Returns {"OK", result} | {"REPLAY", stored result} | {"ERR", code, message}
-- (ARCHIVED: dated before the household's compaction date, meta "archived_before")
-- Lots are read with LOT (field positions), the prelude ledger/codec.py puts in front of this script.

local replay = replayed(5, ARGV[1], ARGV[2], 'idempotency key', 'commit')  -- lua/_replay.lua
if replay then return replay end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {'ERR', 'UNKNOWN_ACCOUNT', 'unknown account ' .. ARGV[5]}
end
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[3]) then
  return {'ERR', 'STALE', 'household changed (version ' .. version .. ', planned on ' .. ARGV[3] .. ')'}
end
local date = tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_date') or '0')
if date < last then
  return {'ERR', 'DATE_ORDER', 'date is before the household\'s last commit'}
end
local horizon = tonumber(redis.call('HGET', KEYS[1], 'archived_before') or '0')
if date < horizon then  -- its idempotency record may be archived: it could be a replay (compact.lua)
  return {'ERR', 'ARCHIVED', 'the household\'s history before this date was archived'}
end

local checks = cjson.decode(ARGV[7])
local allow_wash = ARGV[6] == '1'
local window = tonumber(ARGV[14])
local function split(s)
  local out, start = {}, 1
  while true do
    local bar = string.find(s, '|', start, true)
    if not bar then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, bar - 1)
    start = bar + 1
  end
end
local windows = {}
for _, c in ipairs(checks) do
  if c.op == 'sell' then
    local enc = redis.call('HGET', KEYS[10 + c.g], c.lot)
    if not enc then
      return {'ERR', 'LOT_MISSING', 'no open lot ' .. c.lot}
    end
    local f = split(enc)
    local account, quantity = f[LOT.account], f[LOT.quantity]
    if account ~= ARGV[5] then
      return {'ERR', 'NOT_YOUR_LOT', 'lot ' .. c.lot .. ' belongs to account ' .. account}
    end
    if tonumber(quantity) < tonumber(c.qty) then
      return {'ERR', 'INSUFFICIENT', 'lot ' .. c.lot .. ' holds ' .. quantity .. ', selling ' .. c.qty}
    end
  end
  if not allow_wash then
    local win = windows[c.key]
    if win == nil then  -- each key's window is read once
      local w = redis.call('HGET', KEYS[3], c.key)
      win = false
      if w then local f = split(w); win = {tonumber(f[1]), tonumber(f[2])} end
      windows[c.key] = win
    end
    if win then
      local last_buy, last_loss = win[1], win[2]
      if c.op == 'buy' and last_loss and date - last_loss <= window then
        return {'ERR', 'WASH_CONFLICT', 'buying ' .. c.key .. ' within ' .. window .. ' days of a household loss sale'}
      end
      if (c.op == 'sell' or c.op == 'sell_new') and c.loss and last_buy and date - last_buy <= window then
        return {'ERR', 'WASH_CONFLICT',
                'selling ' .. c.key .. ' at a loss within ' .. window .. ' days of a household purchase'}
      end
    end
  end
end

local w = cjson.decode(ARGV[8])
for _, x in ipairs(w.ids) do  -- a lot id names one purchase for good (lua/_ids.lua)
  if id_used(9, 1, 10, x[1]) then
    return {'ERR', 'ID_TAKEN', 'lot id ' .. x[1] .. ' is already used in the household'}
  end
  for _, p in ipairs(x[2]) do
    if id_used(9, 1, 10, p) == '1' then
      return {'ERR', 'ID_TAKEN', 'lot id ' .. x[1] .. ' is inside the namespace of lot ' .. p}
    end
  end
end
for _, x in ipairs(w.made or {}) do  -- made ids have no dots: no namespace above them
  local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
  if x[4] ~= ARGV[5] or not made_form(x[1], x[2], x[3], x[4]) or x[2] <= seq then
    return {'ERR', 'BAD_PLAN', 'made lot id ' .. x[1] .. ' does not match its purchase ' .. x[2]}
  end
  if id_used(9, 1, 10, x[1]) then
    return {'ERR', 'ID_TAKEN', 'lot id ' .. x[1] .. ' is already used in the household'}
  end
end

local cash = tonumber(redis.call('HGET', KEYS[2], 'cash_cents') or '0')
if math.abs(cash + tonumber(ARGV[12])) >= 9007199254740992 then  -- 2^53: cents stay exact
  return {'ERR', 'CASH_RANGE', 'cash would leave the range the ledger keeps exact'}
end
if ARGV[13] == '1' and cash + tonumber(ARGV[12]) < 0 then
  return {'ERR', 'OVERDRAFT', 'cash ' .. cash .. ' cents cannot pay ' .. (-tonumber(ARGV[12])) .. ' cents of buys'}
end

-- validated: write
redis.call('HINCRBY', KEYS[2], 'cash_cents', ARGV[12])
if ARGV[16] ~= '0' then redis.call('HINCRBY', KEYS[2], 'realized:' .. ARGV[15] .. ':st', ARGV[16]) end
if ARGV[17] ~= '0' then redis.call('HINCRBY', KEYS[2], 'realized:' .. ARGV[15] .. ':lt', ARGV[17]) end
for _, x in ipairs(w.ids) do
  redis.call('HSET', KEYS[9], x[1], '1')
  for _, p in ipairs(x[2]) do redis.call('HSETNX', KEYS[9], p, 'p') end
end
for _, x in ipairs(w.made or {}) do
  if not made_put(1, 10, x[2], x[3], x[4]) then redis.call('HSET', KEYS[9], x[1], '1') end
end
for _, x in ipairs(w.del) do redis.call('HDEL', KEYS[10 + x[1]], x[2]) end
local per_hash = {}
for _, x in ipairs(w.set) do
  local args = per_hash[x[1]]
  if not args then args = {}; per_hash[x[1]] = args end
  args[#args + 1] = x[2]; args[#args + 1] = x[3]
end
for g, args in pairs(per_hash) do redis.call('HSET', KEYS[10 + g], unpack(args)) end
if #w.sales > 0 then
  local args = {}
  for _, x in ipairs(w.sales) do args[#args + 1] = x[1]; args[#args + 1] = x[2] end
  redis.call('HSET', KEYS[6], unpack(args))
end
for _, id in ipairs(w.pending_del) do redis.call('SREM', KEYS[7], id) end
for _, id in ipairs(w.pending_add) do redis.call('SADD', KEYS[7], id) end
for _, k in ipairs(w.groups) do redis.call('SADD', KEYS[8], k) end
for _, x in ipairs(w.win) do
  local old = redis.call('HGET', KEYS[3], x[1])
  local b, l = '', ''
  if old then local f = split(old); b, l = f[1], f[2] end
  if x[2] then b = tostring(x[2]) end
  if x[3] then l = tostring(x[3]) end
  redis.call('HSET', KEYS[3], x[1], b .. '|' .. l)
end
redis.call('HSET', KEYS[1], 'version', version + 1, 'last_date', date, 'seq', w.seq, 'sale_seq', w.sale_seq)
redis.call('XADD', KEYS[4], '*', 'key', ARGV[1], 'account', ARGV[5], 'date', ARGV[11], 'entry', ARGV[9])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[2] .. '|' .. ARGV[10])
return {'OK', ARGV[10]}
