-- Close one household's tax year: store its roll and the carry-forward going into the next year,
-- journaled. The netting is planned in Python (ledger/yearend.py, taxview.core.tax.net_year) on
-- what it read; this script checks that every value the plan read is still what the ledger holds
-- (else STALE: read again, plan again), then writes. It does not move the household's version:
-- no commit plans on the carry.
-- KEYS[1] household meta hash   KEYS[2] household members hash   KEYS[3] household journal stream
-- KEYS[4..] the household's account hashes, in ARGV[4]'s order
-- ARGV[1] the tax year
-- ARGV[2] expected meta fields JSON {field: value as read, "" when absent}
-- ARGV[3] meta fields to write JSON {field: value}
-- ARGV[4] the accounts read JSON [[account, mandate version, realized ST, realized LT], ...]
--         (every member of the household; numbers as text)
-- ARGV[5] journal entry JSON
-- Returns {"OK"} | {"ERR", "STALE", message}
local expect = cjson.decode(ARGV[2])
for name, value in pairs(expect) do
  if (redis.call('HGET', KEYS[1], name) or '') ~= value then
    return {'ERR', 'STALE', 'the household\'s ' .. name .. ' changed since it was read'}
  end
end
local accounts = cjson.decode(ARGV[4])
if redis.call('HLEN', KEYS[2]) ~= #accounts then
  return {'ERR', 'STALE', 'the household\'s accounts changed since they were read'}
end
for i, a in ipairs(accounts) do
  if redis.call('HEXISTS', KEYS[2], a[1]) == 0 then
    return {'ERR', 'STALE', 'account ' .. a[1] .. ' left the household since it was read'}
  end
  local version = tonumber(redis.call('HGET', KEYS[3 + i], 'mandate_version') or '0')
  local st = tonumber(redis.call('HGET', KEYS[3 + i], 'realized:' .. ARGV[1] .. ':st') or '0')
  local lt = tonumber(redis.call('HGET', KEYS[3 + i], 'realized:' .. ARGV[1] .. ':lt') or '0')
  if version ~= tonumber(a[2]) or st ~= tonumber(a[3]) or lt ~= tonumber(a[4]) then
    return {'ERR', 'STALE', 'account ' .. a[1] .. ' changed since it was read'}
  end
end
-- validated: write
local args = {}
for name, value in pairs(cjson.decode(ARGV[3])) do
  args[#args + 1] = name
  args[#args + 1] = value
end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('XADD', KEYS[3], '*', 'key', '', 'account', '', 'date', '', 'entry', ARGV[5])
return {'OK'}
