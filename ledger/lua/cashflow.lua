-- Cash flows of one account: record one for a date, or apply those due on a night.
-- KEYS[1] account hash   KEYS[2] household meta hash   KEYS[3] household journal stream
-- ARGV[1] "add" | "apply"   ARGV[2] account
-- add:   ARGV[3] flow id   ARGV[4] date ordinal   ARGV[5] cents (negative: a withdrawal)
--        ARGV[6] the flow's text "ordinal|cents|reason"   ARGV[7] journal entry JSON
--        Returns {"OK"} | {"REPLAY"} | {"ERR", code, message}
-- apply: ARGV[3] the night's date ordinal   ARGV[4] the night's ISO date   ARGV[5] journal time
--        Moves every pending flow dated on or before the night into cash, journaled; returns
--        {"OK", cents applied tonight (this call and earlier ones for the same night)}.
-- A pending flow is the account hash's field "flow:<id>" = "ordinal|cents|reason".
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'ERR', 'UNKNOWN_ACCOUNT', 'no account ' .. ARGV[2]}
end
if ARGV[1] == 'add' then
  local field = 'flow:' .. ARGV[3]
  local old = redis.call('HGET', KEYS[1], field) or redis.call('HGET', KEYS[1], 'applied:' .. ARGV[3])
  if old then
    if old == ARGV[6] then return {'REPLAY'} end
    return {'ERR', 'KEY_REUSED', 'cash flow id ' .. ARGV[3] .. ' was used for another flow'}
  end
  redis.call('HSET', KEYS[1], field, ARGV[6])
  redis.call('XADD', KEYS[3], '*', 'key', '', 'account', ARGV[2], 'date', '', 'entry', ARGV[7])
  return {'OK'}
end
local night = tonumber(ARGV[3])
local fields = redis.call('HGETALL', KEYS[1])
local total, applied = 0, {}
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 5) == 'flow:' then
    local v = fields[i + 1]
    local bar = string.find(v, '|', 1, true)
    local ord = tonumber(string.sub(v, 1, bar - 1))
    if ord <= night then
      local rest = string.sub(v, bar + 1)
      local bar2 = string.find(rest, '|', 1, true)
      total = total + tonumber(string.sub(rest, 1, bar2 - 1))
      applied[#applied + 1] = string.sub(f, 6)
      redis.call('HDEL', KEYS[1], f)
      redis.call('HSET', KEYS[1], 'applied:' .. string.sub(f, 6), v)
    end
  end
end
if #applied > 0 then
  redis.call('HINCRBY', KEYS[1], 'cash_cents', total)
  redis.call('HINCRBY', KEYS[1], 'flowed:' .. ARGV[4], total)
  redis.call('HINCRBY', KEYS[2], 'version', 1)
  local entry = cjson.encode({cash_flow = {applied = applied, date = ARGV[4], cents = total, at = ARGV[5]}})
  redis.call('XADD', KEYS[3], '*', 'key', '', 'account', ARGV[2], 'date', ARGV[4], 'entry', entry)
end
return {'OK', tonumber(redis.call('HGET', KEYS[1], 'flowed:' .. ARGV[4]) or '0')}
