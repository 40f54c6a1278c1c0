package redistier

import "github.com/redis/rueidis"

// LayoutString's scripts (stringrec.go describes the record). The common
// arguments and the replies are those of scripts.go. Each reads a record's
// header with one GETRANGE, and its access key only when it must: when
// the header's last access alone says the session is idle past its
// deadline, or when it needs the exact last access (a touch, a listing).

const luaStringCommon = `
local P = ARGV[1]
local now = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
local H = 112
local NOBODY = string.rep('-', 32)

local function rkey(bb, h) return P .. 's:{' .. bb .. '}' .. h end
local function akey(bb, h) return P .. 'a:{' .. bb .. '}' .. h end
local function ikey(u) return P .. 'u:{' .. string.sub(u, 1, 2) .. '}' .. u end

-- head parses a record's header; nil if the key holds none.
local function head(v)
  if string.len(v) < H or string.byte(v, 1) ~= 66 then return nil end
  return {k = string.sub(v, 2, 2), v = string.sub(v, 3, 18), x = tonumber(string.sub(v, 19, 33)),
    i = tonumber(string.sub(v, 34, 48)), w = tonumber(string.sub(v, 49, 63)),
    u = string.sub(v, 64, 95), a = string.sub(v, 96, 112)}
end

-- state reads a record: nil and 'nf' or 'ex' if it is not a live session
-- or grace entry; else its header, its kind and, for a session, its last
-- access (exact with full; else possibly the header's, which may be
-- earlier, when that alone shows the session live). A session Redis
-- judges expired is deleted, so that its invalidation drops every copy.
local function state(rk, ak, full)
  local f = head(redis.call('GETRANGE', rk, 0, H - 1))
  if not f then return nil, 'nf' end
  if f.k == 'g' then
    if now >= f.x then return nil, 'nf' end
    return f, 'g'
  end
  local la = f.w
  if full or now >= la + f.i + slack then
    local t = redis.call('GET', ak)
    if t then la = math.max(la, tonumber(t)) end
  end
  if now >= f.x or now >= la + f.i + slack then
    redis.call('DEL', rk, ak)
    return nil, 'ex'
  end
  return f, 's', la
end

-- reach makes owner index ik live at least until x (unix ms).
local function reach(ik, x)
  local t = math.max(x - now, 1)
  if redis.call('PTTL', ik) < t then redis.call('PEXPIRE', ik, t) end
end

-- admit enters handle h, absolute expiry x, into owner u's index, drops
-- the members past their absolute expiry, and, with a cap, ends the
-- owner's live sessions that authenticated longest ago beyond it
-- (dropping the dead members it meets). It returns the handles it ended.
local function admit(u, h, x, cap)
  local ik = ikey(u)
  local bb = string.sub(u, 1, 2)
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
  local ended = {}
  if cap > 0 then
    local live = {}
    for _, m in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
      if m ~= h then
        local f, kind = state(rkey(bb, m), akey(bb, m), false)
        if f and kind == 's' and f.u == u then
          live[#live + 1] = {f.a, m}
        else
          redis.call('ZREM', ik, m)
        end
      end
    end
    table.sort(live, function(p, q) return p[1] < q[1] end)
    for j = 1, #live + 1 - cap do
      local m = live[j][2]
      redis.call('DEL', rkey(bb, m), akey(bb, m))
      redis.call('ZREM', ik, m)
      ended[#ended + 1] = m
    end
  end
  redis.call('ZADD', ik, x, h)
  reach(ik, x)
  return ended
end
`

// scriptSAdmit stores a new owned record and enters it in its owner's
// index, with the cap applied: an owned Create, or the first step of a
// login into another slot. KEYS: record. ARGV[4..]: value, ttl ms, owner
// hash, handle, absolute expiry, cap. Reply: {"ok", ended...} | {"dup"}.
var scriptSAdmit = rueidis.NewLuaScript(luaStringCommon + `
if not redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[5]) then return {'dup'} end
return {'ok', unpack(admit(ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])))}
`)

// scriptSUpdate is compare-and-swap: one GETRANGE, the access key only if
// the header alone says the session idled out, one SET. KEYS: record,
// access. ARGV[4..]: expected version (16 digits), value, ttl ms, absolute
// expiry, handle. Reply: {"ok"} | {"cf", v} | {"nf"} | {"ex"} | {"rot"}.
var scriptSUpdate = rueidis.NewLuaScript(luaStringCommon + `
local f, kind = state(KEYS[1], KEYS[2], false)
if not f then return {kind} end
if kind == 'g' then return {'rot'} end
if f.v ~= ARGV[4] then return {'cf', f.v} end
redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
local x = tonumber(ARGV[7])
if x ~= f.x and f.u ~= NOBODY then
  -- SetDeadline: the index scores by absolute expiry
  local ik = ikey(f.u)
  redis.call('ZADD', ik, 'XX', x, ARGV[8])
  reach(ik, x)
end
return {'ok'}
`)

// scriptSRotate moves a session to a new handle in the same slot. KEYS:
// old record, old access, new record. ARGV[4..]: expected version, new
// value, its ttl ms, new owner hash or "", old handle, new handle, grace
// ms (0: the old ID ends now), the grace entry, cap (a login: the new
// owner's cap). Reply: {"ok", ended...} | {"cf", v} | {"nf"} | {"ex"} |
// {"rot"} | {"dup"}.
var scriptSRotate = rueidis.NewLuaScript(luaStringCommon + `
local f, kind = state(KEYS[1], KEYS[2], false)
if not f then return {kind} end
if kind == 'g' then return {'rot'} end
if f.v ~= ARGV[4] then return {'cf', f.v} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'dup'} end
if f.u ~= NOBODY then redis.call('ZREM', ikey(f.u), ARGV[8]) end
redis.call('DEL', KEYS[1], KEYS[2])
local grace = tonumber(ARGV[10])
if grace > 0 then redis.call('SET', KEYS[1], ARGV[11], 'PX', grace) end
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
local ended = {}
if ARGV[7] ~= '' then ended = admit(ARGV[7], ARGV[9], f.x, tonumber(ARGV[12])) end
return {'ok', unpack(ended)}
`)

// scriptSRetire ends a session if it is still at the version given: the
// commit of a login into another slot. KEYS: record, access. ARGV[4..]:
// expected version, handle. Reply: {"ok"} | {"cf", v} | {"nf"} | {"ex"} |
// {"rot"}.
var scriptSRetire = rueidis.NewLuaScript(luaStringCommon + `
local f, kind = state(KEYS[1], KEYS[2], false)
if not f then return {kind} end
if kind == 'g' then return {'rot'} end
if f.v ~= ARGV[4] then return {'cf', f.v} end
redis.call('DEL', KEYS[1], KEYS[2])
if f.u ~= NOBODY then redis.call('ZREM', ikey(f.u), ARGV[5]) end
return {'ok'}
`)

// scriptSTouch records an access written behind. KEYS: record, access.
// ARGV[4]: the last access in ms. Reply: {"ok"} | {"nf"} | {"ex"}.
var scriptSTouch = rueidis.NewLuaScript(luaStringCommon + `
local f, kind, la = state(KEYS[1], KEYS[2], true)
if not f then return {kind} end
if kind ~= 's' then return {'nf'} end
local nla = tonumber(ARGV[4])
if nla > la then
  local pa = math.max(math.min(f.x, nla + f.i + slack) - now, 1)
  redis.call('SET', KEYS[2], nla, 'PX', pa)
  if redis.call('PTTL', KEYS[1]) < pa then
    redis.call('PEXPIRE', KEYS[1], math.max(math.min(f.x - now, pa + f.i), 1))
  end
end
return {'ok'}
`)

// scriptSRevoke ends an owner's sessions. KEYS: the owner's index.
// ARGV[4]: the owner hash; ARGV[5]: "all", "others" or "one"; ARGV[6]: the
// handle kept ("others") or ended ("one"). Reply: {"ok", ended...}.
var scriptSRevoke = rueidis.NewLuaScript(luaStringCommon + `
local u, mode, arg = ARGV[4], ARGV[5], ARGV[6]
local bb = string.sub(u, 1, 2)
local ended = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if (mode == 'all') or (mode == 'others' and m ~= arg) or (mode == 'one' and m == arg) then
    local f, kind = state(rkey(bb, m), akey(bb, m), false)
    if f and kind == 's' and f.u == u then
      redis.call('DEL', rkey(bb, m), akey(bb, m))
      ended[#ended + 1] = m
    end
    redis.call('ZREM', KEYS[1], m)
  end
end
return {'ok', unpack(ended)}
`)

// scriptSList returns an owner's live sessions and drops the dead members
// it meets. KEYS: the owner's index. ARGV[4]: the owner hash. Reply:
// {"ok", handle, lastAccess, value, ...}.
var scriptSList = rueidis.NewLuaScript(luaStringCommon + `
local u = ARGV[4]
local bb = string.sub(u, 1, 2)
local out = {'ok'}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local rk = rkey(bb, m)
  local f, kind, la = state(rk, akey(bb, m), true)
  if f and kind == 's' and f.u == u then
    out[#out + 1] = m
    out[#out + 1] = la
    out[#out + 1] = redis.call('GET', rk)
  elseif not f then
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
`)
