-- A helper, not a script: ledger/store.py puts it in front of commit.lua and corporate.lua.
-- replayed(k, id, digest, label, kind): an idempotent write's record "digest|result" under
-- field id of the hash KEYS[k]. Returns {"REPLAY", result} when the same content was stored
-- under id, {"ERR", "KEY_REUSED", message} when other content was, nil when nothing was (go on).
local function replayed(k, id, digest, label, kind)
  local stored = redis.call('HGET', KEYS[k], id)
  if not stored then return nil end
  local bar = string.find(stored, '|', 1, true)
  if string.sub(stored, 1, bar - 1) == digest then
    return {'REPLAY', string.sub(stored, bar + 1)}
  end
  return {'ERR', 'KEY_REUSED', label .. ' ' .. id .. ' was used for a different ' .. kind}
end
