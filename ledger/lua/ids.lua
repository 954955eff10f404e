-- What the lot-id registry of one household says of each id (lua/_ids.lua, in front of this).
-- KEYS[1] registry hash  KEYS[2] meta hash  KEYS[3] the registry's slots of made ids
-- ARGV lot ids. Returns per id "1" | "p" | false (free).
local out = {}
for i, id in ipairs(ARGV) do out[i] = id_used(1, 2, 3, id) end
return out
