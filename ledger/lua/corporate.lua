-- Apply one corporate action (a split, a symbol change) to one household, atomically. Planned in
-- Python (ledger/corporate.py) on a snapshot at household version ARGV[3]; validated here first
-- (the action id, the version, the date), then written, so a refused action writes nothing.
-- KEYS[1] meta hash  KEYS[2] corporate actions hash (id -> "digest|summary")  KEYS[3] journal stream
-- KEYS[4] sales hash  KEYS[5] windows hash  KEYS[6] groups set
-- KEYS[7..] lot hashes of the action's identity keys (g below is 1-based into these)
-- ARGV[1] action id  ARGV[2] action digest  ARGV[3] expected household version
-- ARGV[4] date (proleptic ordinal)  ARGV[5] date ISO
-- ARGV[6] writes json {"set":[[g,id,enc]], "del":[[g,id]], "sales":[[id,record]], "groups":[keys],
--                      "win":[[key,"buy|loss"]], "win_del":[keys]}
-- ARGV[7] journal entry json   ARGV[8] summary json (stored with the digest)
-- Returns {"OK", summary} | {"REPLAY", stored summary} | {"ERR", code, message}
local replay = replayed(2, ARGV[1], ARGV[2], 'action id', 'action')  -- lua/_replay.lua
if replay then return replay end
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[3]) then
  return {'ERR', 'STALE', 'household changed (version ' .. version .. ', planned on ' .. ARGV[3] .. ')'}
end
local date = tonumber(ARGV[4])
if tonumber(redis.call('HGET', KEYS[1], 'last_date') or '0') >= date then
  return {'ERR', 'DATE_ORDER', 'the household traded on or after the action\'s date'}
end
-- validated: write
local w = cjson.decode(ARGV[6])
for _, x in ipairs(w.del) do redis.call('HDEL', KEYS[6 + x[1]], x[2]) end
for _, x in ipairs(w.set) do redis.call('HSET', KEYS[6 + x[1]], x[2], x[3]) end
for _, x in ipairs(w.sales) do redis.call('HSET', KEYS[4], x[1], x[2]) end
for _, k in ipairs(w.groups) do redis.call('SADD', KEYS[6], k) end  -- the groups set only grows
for _, k in ipairs(w.win_del) do redis.call('HDEL', KEYS[5], k) end
for _, x in ipairs(w.win) do redis.call('HSET', KEYS[5], x[1], x[2]) end
redis.call('HSET', KEYS[1], 'version', version + 1, 'last_date', date)  -- plans made before go stale
redis.call('XADD', KEYS[3], '*', 'key', '', 'account', '', 'date', ARGV[5], 'entry', ARGV[7])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[8])
return {'OK', ARGV[8]}
