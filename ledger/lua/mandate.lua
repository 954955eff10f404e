-- Restate one account's mandate: its type, rates and the JSON of what it states beyond the firm's
-- defaults, at the next version, journaled. Validates first, then writes.
-- KEYS[1] account hash   KEYS[2] household members hash   KEYS[3] household meta hash
-- KEYS[4] household journal stream
-- ARGV[1] account   ARGV[2] the mandate version the change was made on (optimistic check)
-- ARGV[3] type   ARGV[4] st_rate   ARGV[5] lt_rate   ARGV[6] mandate JSON
-- ARGV[7] journal entry JSON
-- Returns {"OK", new version} | {"ERR", code, message} (STALE: changed since it was read)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'ERR', 'UNKNOWN_ACCOUNT', 'no account ' .. ARGV[1]}
end
local version = tonumber(redis.call('HGET', KEYS[1], 'mandate_version') or '0')
if version ~= tonumber(ARGV[2]) then
  return {'ERR', 'STALE', 'the mandate changed since it was read'}
end
redis.call('HSET', KEYS[1], 'type', ARGV[3], 'st_rate', ARGV[4], 'lt_rate', ARGV[5], 'mandate', ARGV[6],
  'mandate_version', version + 1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[3], 'version', 1)  -- plans made on the old record go stale
redis.call('XADD', KEYS[4], '*', 'key', '', 'account', ARGV[1], 'date', '', 'entry', ARGV[7])
return {'OK', version + 1}
