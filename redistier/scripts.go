package redistier

import "github.com/redis/rueidis"

// LayoutHash's scripts (scripts_string.go has LayoutString's). Each runs
// atomically on the node that owns its keys' slot;
// every key a script touches, declared or derived from an owner's index,
// shares the hash tag {bb} of its first key, so each stays in one slot.
//
// Common arguments: ARGV[1] the key prefix, ARGV[2] the store's clock in
// unix ms, ARGV[3] the idle slack in ms (Options.Local.TouchLogInterval
// plus the write-behind delay): Redis keeps a session that long past its
// idle deadline, so that no instance's copy, whose last access may be up
// to a TouchLogInterval ahead of Redis's, outlives Redis's record.
//
// Replies are arrays whose first element says what happened:
// "ok", "nf" (no such session), "ex" (expired), "rot" (an old ID within
// its grace period), "cf" (version conflict; the current version follows),
// "dup" (the new key exists: a minted ID collided, practically never).

const luaCommon = `
local P = ARGV[1]
local now = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])

local function rkey(bb, h) return P .. 's:{' .. bb .. '}' .. h end
local function akey(bb, h) return P .. 'a:{' .. bb .. '}' .. h end
local function ikey(u) return P .. 'u:{' .. string.sub(u, 1, 2) .. '}' .. u end

-- state reads a record: nil and 'nf' or 'ex' if it is not a live session
-- or grace entry; else its fields (v k x i u a t), its kind and, for a
-- session, its last access.
local function state(rk, ak)
  local f = redis.call('HMGET', rk, 'v', 'k', 'x', 'i', 'u', 'a', 't')
  if not f[1] then return nil, 'nf' end
  if f[2] == 'g' then
    if now >= tonumber(f[3]) then return nil, 'nf' end
    return f, 'g'
  end
  local la = redis.call('GET', ak)
  if not la then
    -- idle-expired, or evicted: end the record too, so that its
    -- invalidation drops every instance's copy
    redis.call('DEL', rk)
    return nil, 'ex'
  end
  la = tonumber(la)
  if now >= tonumber(f[3]) or now >= la + tonumber(f[4]) + slack then return nil, 'ex' end
  return f, 's', la
end

-- keep extends key k's time to live to at least t ms.
local function keep(k, t)
  local p = redis.call('PTTL', k)
  if p >= 0 and p < t then redis.call('PEXPIRE', k, t) end
end

-- ttls sets a live session's access key (last access la) and, if the
-- record would otherwise die before the session's deadline or renew is
-- set, the record's time to live, in chunks of one idle timeout past the
-- deadline so that a touch seldom has to renew it (renewing the tracked
-- record invalidates every instance's copy). It returns the record's time
-- to live, which the owner's index is kept alive for.
local function ttls(rk, ak, x, i, la, renew)
  local dl = math.min(x, la + i + slack)
  local pa = math.max(dl - now, 1)
  redis.call('SET', ak, la, 'PX', pa)
  local pr = -1
  if not renew then pr = redis.call('PTTL', rk) end
  if renew or pr < pa then
    pr = math.max(math.min(x - now, pa + i), 1)
    redis.call('PEXPIRE', rk, pr)
  end
  return pr
end

-- admit enters handle h, authenticated at a, into owner u's index, drops
-- members that are no longer live sessions, and, with a cap, ends the
-- owner's sessions that authenticated longest ago beyond it. It returns the
-- handles it ended.
local function admit(u, h, a, cap, ttl)
  local ik = ikey(u)
  local bb = string.sub(u, 1, 2)
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
    if m ~= h then
      local f, kind = state(rkey(bb, m), akey(bb, m))
      if f and kind == 's' and f[5] == u then
        live[#live + 1] = m
      else
        redis.call('ZREM', ik, m)
      end
    end
  end
  redis.call('ZADD', ik, a, h)
  local ended = {}
  if cap > 0 then
    for j = 1, #live + 1 - cap do
      local m = live[j]
      redis.call('DEL', rkey(bb, m), akey(bb, m))
      redis.call('ZREM', ik, m)
      ended[#ended + 1] = m
    end
  end
  local p = redis.call('PTTL', ik)
  if p < ttl then redis.call('PEXPIRE', ik, ttl) end
  return ended
end
`

// scriptGet reads a session. KEYS: record, access. ARGV[4]: the touch
// interval in ms: a read that finds the last access older records the
// access (an untracked write). Reply: {"s", version, lastAccess, blob} |
// {"g", newHandle} | {"nf"} | {"ex"}.
var scriptGet = rueidis.NewLuaScript(luaCommon + `
local f, kind, la = state(KEYS[1], KEYS[2])
if not f then return {kind} end
if kind == 'g' then return {'g', f[7]} end
if now - la >= tonumber(ARGV[4]) then
  la = now
  local t = ttls(KEYS[1], KEYS[2], tonumber(f[3]), tonumber(f[4]), la, false)
  if f[5] ~= '' then keep(ikey(f[5]), t) end
end
return {'s', f[1], tostring(la), redis.call('HGET', KEYS[1], 'b')}
`)

// scriptCreate stores a new session. KEYS: record, access. ARGV[4..]:
// x, i, u, a, blob, handle, cap. Reply: {"ok", ended...} | {"dup"}.
var scriptCreate = rueidis.NewLuaScript(luaCommon + `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup'} end
local x, i, u, a = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
redis.call('HSET', KEYS[1], 'v', 1, 'k', 's', 'x', x, 'i', i, 'u', u, 'a', a, 'b', ARGV[8])
local t = ttls(KEYS[1], KEYS[2], x, i, now, true)
local ended = {}
if u ~= '' then ended = admit(u, ARGV[9], a, tonumber(ARGV[10]), t) end
return {'ok', unpack(ended)}
`)

// scriptPlace stores the new record of a login whose old record is in
// another slot, at the version given, with the owner's cap applied: the
// first step of a cross-slot rotation, whose commit is scriptRetire on
// the old record. KEYS: record, access. ARGV[4..]: version, x, i, u, a,
// blob, handle, cap, lastAccess. Reply: {"ok", ended...} | {"dup"}.
var scriptPlace = rueidis.NewLuaScript(luaCommon + `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'dup'} end
local x, i, u, a = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
redis.call('HSET', KEYS[1], 'v', ARGV[4], 'k', 's', 'x', x, 'i', i, 'u', u, 'a', a, 'b', ARGV[9])
local t = ttls(KEYS[1], KEYS[2], x, i, tonumber(ARGV[12]), true)
return {'ok', unpack(admit(u, ARGV[10], a, tonumber(ARGV[11]), t))}
`)

// scriptUpdate is compare-and-swap. KEYS: record, access. ARGV[4..]:
// expected version, blob, absolute expiry. Reply: {"ok"} | {"cf", v} |
// {"nf"} | {"ex"} | {"rot"}.
var scriptUpdate = rueidis.NewLuaScript(luaCommon + `
local f, kind = state(KEYS[1], KEYS[2])
if not f then return {kind} end
if kind == 'g' then return {'rot'} end
if f[1] ~= ARGV[4] then return {'cf', f[1]} end
local x = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[4]) + 1, 'b', ARGV[5], 'x', x)
local t = ttls(KEYS[1], KEYS[2], x, tonumber(f[4]), now, true)
if f[5] ~= '' then keep(ikey(f[5]), t) end
return {'ok'}
`)

// scriptRotate moves a session to a new handle in the same slot. KEYS:
// old record, old access, new record, new access. ARGV[4..]: expected
// version, blob, u (new owner), a (new auth time), old handle, new handle,
// grace ms (0: the old ID ends now), cap (a login: the new owner's cap).
// Reply: {"ok", ended...} | {"cf", v} | {"nf"} | {"ex"} | {"rot"} | {"dup"}.
var scriptRotate = rueidis.NewLuaScript(luaCommon + `
local f, kind, la = state(KEYS[1], KEYS[2])
if not f then return {kind} end
if kind == 'g' then return {'rot'} end
if f[1] ~= ARGV[4] then return {'cf', f[1]} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'dup'} end
local x, i, u, a = tonumber(f[3]), tonumber(f[4]), ARGV[6], ARGV[7]
local grace = tonumber(ARGV[10])
if f[5] ~= '' then redis.call('ZREM', ikey(f[5]), ARGV[8]) end
redis.call('DEL', KEYS[1], KEYS[2])
if grace > 0 then
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'k', 'g', 'x', now + grace, 'i', 0, 'u', '', 'a', 0, 't', ARGV[9])
  redis.call('PEXPIRE', KEYS[1], grace)
end
redis.call('HSET', KEYS[3], 'v', tonumber(ARGV[4]) + 1, 'k', 's', 'x', x, 'i', i, 'u', u, 'a', a, 'b', ARGV[5])
local t = ttls(KEYS[3], KEYS[4], x, i, math.max(now, la), true)
local ended = {}
if u ~= '' then ended = admit(u, ARGV[9], a, tonumber(ARGV[11]), t) end
return {'ok', unpack(ended)}
`)

// scriptRetire ends a session if it is still at the version given: the
// commit of a cross-slot login. KEYS: record, access. ARGV[4..]: expected
// version, handle. Reply: {"ok"} | {"cf", v} | {"nf"} | {"ex"} | {"rot"}.
var scriptRetire = rueidis.NewLuaScript(luaCommon + `
local f, kind = state(KEYS[1], KEYS[2])
if not f then return {kind} end
if kind == 'g' then return {'rot'} end
if f[1] ~= ARGV[4] then return {'cf', f[1]} end
redis.call('DEL', KEYS[1], KEYS[2])
if f[5] ~= '' then redis.call('ZREM', ikey(f[5]), ARGV[5]) end
return {'ok'}
`)

// scriptDelete ends a session or a grace entry, whatever its state. KEYS:
// record, access. ARGV[4]: handle. Reply: {"ok"}.
var scriptDelete = rueidis.NewLuaScript(luaCommon + `
local f = redis.call('HMGET', KEYS[1], 'k', 'u')
if not f[1] then return {'ok'} end
if f[1] == 'g' then redis.call('DEL', KEYS[1]) return {'ok'} end
redis.call('DEL', KEYS[1], KEYS[2])
if f[2] ~= '' then redis.call('ZREM', ikey(f[2]), ARGV[4]) end
return {'ok'}
`)

// scriptTouch records an access written behind. KEYS: record, access.
// ARGV[4]: the last access in ms. Reply: {"ok"} | {"nf"} | {"ex"}: the
// session is gone, and the instance drops its copy.
var scriptTouch = rueidis.NewLuaScript(luaCommon + `
local f, kind, la = state(KEYS[1], KEYS[2])
if not f then return {kind} end
if kind ~= 's' then return {'nf'} end
local nla = tonumber(ARGV[4])
if nla > la then
  local t = ttls(KEYS[1], KEYS[2], tonumber(f[3]), tonumber(f[4]), nla, false)
  if f[5] ~= '' then keep(ikey(f[5]), t) end
end
return {'ok'}
`)

// scriptRevoke ends an owner's sessions. KEYS: the owner's index. ARGV[4]:
// the owner hash; ARGV[5]: "all", "others" or "one"; ARGV[6]: the handle
// kept ("others") or ended ("one"). Reply: {"ok", ended...}, the live
// sessions it ended (dead members are cleared too).
var scriptRevoke = rueidis.NewLuaScript(luaCommon + `
local u, mode, arg = ARGV[4], ARGV[5], ARGV[6]
local bb = string.sub(u, 1, 2)
local ended = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if (mode == 'all') or (mode == 'others' and m ~= arg) or (mode == 'one' and m == arg) then
    local f, kind = state(rkey(bb, m), akey(bb, m))
    if f and kind == 's' and f[5] == u then
      redis.call('DEL', rkey(bb, m), akey(bb, m))
      ended[#ended + 1] = m
    end
    redis.call('ZREM', KEYS[1], m)
  end
end
return {'ok', unpack(ended)}
`)

// scriptList returns an owner's live sessions. KEYS: the owner's index.
// ARGV[4]: the owner hash. Reply: {"ok", handle, lastAccess, blob, ...}.
var scriptList = rueidis.NewLuaScript(luaCommon + `
local u = ARGV[4]
local bb = string.sub(u, 1, 2)
local out = {'ok'}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f, kind, la = state(rkey(bb, m), akey(bb, m))
  if f and kind == 's' and f[5] == u then
    out[#out + 1] = m
    out[#out + 1] = tostring(la)
    out[#out + 1] = redis.call('HGET', rkey(bb, m), 'b')
  end
end
return out
`)
