-- Trim what one household's compaction archived (ledger/compaction.py), atomically: everything
-- is checked first, then written. Rows already gone (a compaction run again) are skipped.
-- KEYS[1] meta hash  KEYS[2] journal stream  KEYS[3] idempotency hash  KEYS[4] sales hash
-- KEYS[5] pending set
-- ARGV[1] the compaction's date (proleptic ordinal): commits dated before it are refused from now
--         on (meta "archived_before", raised only), as their idempotency records may be archived
-- ARGV[2] json {"journal": last archived stream id or "",
--               "idem": [[key, sha1 of the archived value]], "sales": [[sale id, sha1 of it]]}
-- Returns {"OK", journal entries trimmed, idempotency records trimmed, sales trimmed}
--       | {"ERR", "CHANGED", message}: a row differs from its archived copy (nothing written)
local a = cjson.decode(ARGV[2])
local idem, sales = {}, {}
for _, x in ipairs(a.idem) do
  local v = redis.call('HGET', KEYS[3], x[1])
  if v then
    if redis.sha1hex(v) ~= x[2] then
      return {'ERR', 'CHANGED', 'idempotency record ' .. x[1] .. ' differs from its archived copy'}
    end
    idem[#idem + 1] = x[1]
  end
end
for _, x in ipairs(a.sales) do
  local v = redis.call('HGET', KEYS[4], x[1])
  if v then
    if redis.sha1hex(v) ~= x[2] then
      return {'ERR', 'CHANGED', 'sale ' .. x[1] .. ' differs from its archived copy'}
    end
    if redis.call('SISMEMBER', KEYS[5], x[1]) == 1 then
      return {'ERR', 'CHANGED', 'sale ' .. x[1] .. ' is waiting for a replacement again'}
    end
    sales[#sales + 1] = x[1]
  end
end
-- validated: write
local trimmed = 0
if a.journal ~= '' then
  local bar = string.find(a.journal, '-', 1, true)
  local minid = string.sub(a.journal, 1, bar - 1) .. '-' .. (tonumber(string.sub(a.journal, bar + 1)) + 1)
  trimmed = redis.call('XTRIM', KEYS[2], 'MINID', '=', minid)
end
local CHUNK = 1000  -- fields per HDEL (Lua's unpack has a limit)
for i = 1, #idem, CHUNK do redis.call('HDEL', KEYS[3], unpack(idem, i, math.min(i + CHUNK - 1, #idem))) end
for i = 1, #sales, CHUNK do redis.call('HDEL', KEYS[4], unpack(sales, i, math.min(i + CHUNK - 1, #sales))) end
local old = tonumber(redis.call('HGET', KEYS[1], 'archived_before') or '0')
if tonumber(ARGV[1]) > old then redis.call('HSET', KEYS[1], 'archived_before', ARGV[1]) end
return {'OK', trimmed, #idem, #sales}
