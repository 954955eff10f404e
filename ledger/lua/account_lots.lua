-- One account's open lots, filtered server side (lots live per household and identity key);
-- every lot of the household when ARGV[2] is empty.
-- KEYS[1] groups set of the household; ARGV[1] lot hash prefix ("tv:lots:{hh:H}:"), ARGV[2] account
-- Returns a flat list: lot id, encoded lot, ...
local out = {}
local mine = ARGV[2] .. '|'
local n = #mine
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local all = redis.call('HGETALL', ARGV[1] .. key)
  for j = 1, #all, 2 do
    if n == 1 or string.sub(all[j + 1], 1, n) == mine then
      out[#out + 1] = all[j]; out[#out + 1] = all[j + 1]
    end
  end
end
return out
