-- Trusted code run first in every fresh Lua runtime (one runtime per zone).
--
-- It keeps private references to what zone code must never touch (debug, load, os.clock,
-- collectgarbage), removes them from the global table, and returns `run`, which Python calls once
-- with the zone's chunks.  The record functions live here, in Lua, so no Python callable is ever
-- reachable from zone code, and their results go back to Python in bulk: one string per column.
-- Every frame of this chunk has the source "=(prelude)"; the CPU hook never raises inside it, so
-- the runner always regains control after a limit trips.

local debug_getinfo, debug_sethook = debug.getinfo, debug.sethook
local loadstring, setfenv, clock, collectgarbage = loadstring, setfenv, os.clock, collectgarbage
local type, tostring, tonumber, error, pcall, xpcall = type, tostring, tonumber, error, pcall, xpcall
local select, pairs, ipairs, next = select, pairs, ipairs, next
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local s_lower, s_upper, s_find, s_match = string.lower, string.upper, string.find, string.match
local s_format, s_gsub, s_sub, s_byte, s_gmatch = string.format, string.gsub, string.sub, string.byte, string.gmatch
local s_char, s_rep = string.char, string.rep
local t_concat, t_sort, unpack = table.concat, table.sort, unpack
local m_floor = math.floor
local co_create, co_resume = coroutine.create, coroutine.resume

local TRUSTED = "=(prelude)"
local HOOK_COUNT = 10000 -- instructions between CPU-time checks
local MAX_FINDINGS = 1000

-- Snapshot the standard library before anything is removed; zone environments get copies.
local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end
local STRING, TABLE, MATH, COROUTINE = copy(string), copy(table), copy(math), copy(coroutine)
STRING.dump = nil

-- Nothing that reaches outside survives in the global table (zone code never sees it anyway:
-- it runs in its own environment table; this is defence in depth).
for _, key in ipairs({"debug", "os", "io", "package", "load", "loadfile", "dofile", "require",
                      "collectgarbage", "python", "loadstring", "module", "setfenv", "getfenv",
                      "newproxy", "gcinfo"}) do
  _G[key] = nil
end

-- Strings share one metatable.  Method calls ("x"):lower() look up the *zone's* string table, so a
-- zone can extend `string` like in Lua 5.1 without affecting anything else, and getmetatable("")
-- returns false instead of the real metatable, which can therefore never be swapped.
local ZONE_STRING = STRING
do
  local mt = getmetatable("")
  mt.__index = function(_, key) return ZONE_STRING[key] end
  mt.__metatable = false
end

----------------------------------------------------------------------------------------------
-- State of this zone's evaluation
----------------------------------------------------------------------------------------------
local ORIGIN, ZONE_A, DOT_A, DOT_ORIGIN, DEFAULT_TTL, MAX_RECORDS
local FAST_OWNER_MAX = 0 -- longest owner name the fast path of owner() accepts
local N = 0
local NAMES, TYPES, TTLS, DATAS, FILES, LINES, FIX = {}, {}, {}, {}, {}, {}, {}
local FINDINGS, NFINDINGS = {}, 0
local SERVICES, IGNORES, SECONDARIES, SECONDARY_NS = {}, {}, {}, {}
local FILE_INDEX = {} -- chunk source ("=example.com.lua") -> 1-based file number
local CHUNK_NAMES = {} -- file number -> chunk name
local LIMIT, LIMIT_MESSAGE, LIMIT_FILE, LIMIT_LINE = "", "", 0, 0
local DEADLINE = 0
local LAST_FILE, LAST_LINE = 0, 0
local OVER = false

-- Escapes for the tab/newline separated columns handed to Python (only where user text can land).
local COLUMN_ESCAPES = {["%"] = "%25", ["\t"] = "%09", ["\n"] = "%0A", ["\r"] = "%0D"}
local function esc(s)
  return (s_gsub(s, "[%%\t\n\r]", COLUMN_ESCAPES))
end

-- The zone file or template line responsible for what is happening now: the innermost frame
-- whose chunk is one of the repository's files (template helpers report their own line).
-- Frames are matched by function (cached), which is much cheaper than asking for their source.
-- A tail call leaves a frame without a function (Lua 5.1): skipped.
local FILE_OF_FUNCTION = setmetatable({}, {__mode = "k"})
local function where(level)
  level = level or 2
  while true do
    local info = debug_getinfo(level, "fl")
    if not info then return 0, 0, level end
    local fn = info.func
    if fn then
      local index = FILE_OF_FUNCTION[fn]
      if index == nil then
        index = FILE_INDEX[debug_getinfo(fn, "S").source] or false
        FILE_OF_FUNCTION[fn] = index
      end
      if index then return index, info.currentline, level end
    end
    level = level + 1
  end
end

-- " (called from example.com.lua:12)" when the line responsible lies in a template (file
-- `index`, found at stack `level`): the zone line whose call led there, further up the stack.
local ZONE_INDEX = 0
local function called_from(index, level)
  if index == ZONE_INDEX or index == 0 then return "" end
  while true do
    local file, line, found = where(level + 1)
    if file == 0 then return "" end
    if file == ZONE_INDEX then return " (called from " .. CHUNK_NAMES[file] .. ":" .. line .. ")" end
    level = found
  end
end

local function got(v)
  local t = type(v)
  if t == "string" then
    if #v > 60 then v = s_sub(v, 1, 57) .. "..." end
    return s_format("%q", v)
  elseif t == "number" then
    if v ~= v then return "NaN" end
    return tostring(v)
  elseif t == "nil" then
    return "nil"
  end
  return "a " .. t
end

local function finding(severity, code, fname, message)
  NFINDINGS = NFINDINGS + 1
  if NFINDINGS <= MAX_FINDINGS then
    local file, line, level = where()
    if fname then message = fname .. ": " .. message end
    message = message .. called_from(file, level)
    FINDINGS[NFINDINGS] = severity .. "\t" .. code .. "\t" .. file .. "\t" .. line .. "\t" .. esc(message)
  end
  return nil
end
local function problem(code, fname, message) return finding("error", code, fname, message) end
local function warning(code, fname, message) return finding("warning", code, fname, message) end

-- A whole number in lo..hi, from a number or a decimal string; else nil.
local function whole(v, lo, hi)
  if type(v) == "number" then
    if v == m_floor(v) and v >= lo and v <= hi then return v end
    return nil
  elseif type(v) == "string" and s_find(v, "^%d+$") and #v < 12 then
    local n = tonumber(v)
    if n >= lo and n <= hi then return n end
  end
  return nil
end

-- Decimal text of the whole numbers 0..65535 that priorities, weights and ports take, made once
-- each (Lua 5.1 formats a number with sprintf on every concatenation).
local NUMBER_TEXT = setmetatable({}, {__index = function(cache, n)
  local text = tostring(n)
  cache[n] = text
  return text
end})

local function number_arg(fname, v, what, lo, hi, default)
  if v == nil and default ~= nil then return default end
  local n = whole(v, lo, hi)
  if n == nil then
    return problem("invalid-argument", fname, s_format("%s must be a number %d..%d, got %s", what, lo, hi, got(v)))
  end
  return n
end

local function ttl_arg(fname, v)
  if v == nil then return DEFAULT_TTL end
  local n = whole(v, 0, 2147483647)
  if n == nil then
    return problem("invalid-ttl", fname,
      "ttl must be a whole number of seconds 0..2147483647, got " .. got(v))
  end
  return n
end

-- Characters a name may contain; anything else (spaces, quotes, non-ASCII) is a mistake.
local NAME_BAD = "[^%w%-_%*/%.]"

local function check_labels(fname, name, shown)
  if s_byte(name, 1) == 46 and name ~= "." or s_find(name, "..", 1, true) then
    return problem("invalid-name", fname, got(shown) .. " has an empty label (two dots in a row, or a leading dot)")
  end
  if #name > 254 then
    return problem("invalid-name", fname, got(shown) .. " is longer than 255 octets")
  end
  if #name > 64 then
    for label in s_gmatch(name, "[^.]+") do
      if #label > 63 then
        return problem("invalid-name", fname, got(shown) .. " has a label longer than 63 octets")
      end
    end
  end
  return name
end

local function bad_characters(fname, shown)
  if s_find(shown, "[\128-\255]") then
    return problem("invalid-name", fname, got(shown) ..
      " contains non-ASCII characters; write internationalised names in their xn-- (punycode) form")
  end
  return problem("invalid-name", fname, got(shown) ..
    " contains characters not allowed in a name (letters, digits, '-', '_', '*' and dots are)")
end

-- Owner name -> its part relative to the origin, lower-case ("@" for the apex), or nil after a
-- finding.  Relative parts are what the NAMES column holds: Python appends the origin to all of
-- them at once, so the common case ("www", "host123") creates no new Lua string at all.
local function owner(fname, name)
  local t = type(name)
  if t == "string" then
    if name == "" then return "@" end
    -- Fast paths: plain lower-case labels, e.g. "www", "host123" or "_sip._tcp.pbx", short
    -- enough that no label and not the whole name can be too long.
    if #name <= FAST_OWNER_MAX and name ~= ZONE_A then
      if s_find(name, "^[%l%d_%-]+$") then return name end
      if s_find(name, "^[%l%d_%-]+%.[%l%d_%-%.]*[%l%d_%-]$") and not s_find(name, "..", 1, true)
          and s_sub(name, -#DOT_A) ~= DOT_A then
        return name
      end
    end
  elseif t == "number" then
    name = tostring(name)
  elseif t == "nil" then
    return problem("nil-name", fname,
      "the name is nil (an undefined variable?); write a quoted name such as \"www\", or \"\" (or _a) for the apex")
  else
    return problem("invalid-name", fname, "the name must be a string, got " .. got(name))
  end
  local lname = s_lower(name)
  if lname == ZONE_A or lname == ORIGIN then return "@" end
  if lname == "@" then
    return problem("at-sign-name", fname, "\"@\" is not the apex in Lua zones; write \"\" or _a instead")
  end
  if s_find(lname, NAME_BAD) then return bad_characters(fname, name) end
  local relative
  if s_byte(lname, -1) == 46 then
    if s_sub(lname, -#DOT_ORIGIN) ~= DOT_ORIGIN then
      return problem("name-outside-zone", fname, got(name) .. " is outside the zone " .. ORIGIN ..
        "; drop the trailing dot to make it relative to the zone")
    end
    relative = s_sub(lname, 1, -#DOT_ORIGIN - 1)
  elseif s_sub(lname, -#DOT_A) == DOT_A then
    relative = s_sub(lname, 1, -#DOT_A - 1)
  else
    relative = lname
  end
  if relative == "" then
    return problem("invalid-name", fname, got(name) .. " has an empty label (a leading dot?)")
  end
  if not check_labels(fname, relative .. DOT_ORIGIN, name) then return nil end
  return relative
end

local function absolute(relative)
  if relative == "@" then return ORIGIN end
  return relative .. DOT_ORIGIN
end

-- Target name (record content) -> absolute lower-case name, or nil after a finding.
local function target(fname, value, what)
  if type(value) ~= "string" then
    if value == nil then
      return problem("nil-name", fname, what .. " is nil (an undefined variable?); write a quoted name")
    end
    return problem("invalid-name", fname, what .. " must be a quoted name, got " .. got(value))
  end
  if value == "." then return "." end
  if value == "" or value == "@" then
    return problem("invalid-name", fname, what .. " " .. got(value) ..
      " is not a name; targets are fully qualified, e.g. concat(\"www\", _a)")
  end
  local l = s_lower(value)
  if s_find(l, NAME_BAD) then return bad_characters(fname, value) end
  if s_byte(l, -1) ~= 46 then l = l .. "." end
  if s_find(l, ".", 1, true) == #l then
    warning("single-label-target", fname, what .. " " .. got(value) ..
      " is a single label and is published as " .. got(l) .. "; did you mean concat(" .. got(value) .. ", _a)?")
  end
  return check_labels(fname, l, value)
end

local function limit(kind, message)
  if LIMIT == "" then
    LIMIT, LIMIT_MESSAGE = kind, message
    LIMIT_FILE, LIMIT_LINE = where()
  end
  error(message, 0)
end

local function emit(relative, name, rtype, data, ttl, fix)
  if N >= MAX_RECORDS then
    limit("records", "the zone has more than " .. MAX_RECORDS .. " records, the configured maximum")
  end
  local n = N + 1
  N = n
  NAMES[n], TYPES[n], TTLS[n], DATAS[n] = relative, rtype, ttl, data
  -- The caller of the record function (emit is never tail-called); usually a zone-file frame.
  local info = debug_getinfo(3, "fl")
  local file = info and info.func and FILE_OF_FUNCTION[info.func]
  if file then
    FILES[n], LINES[n] = file, info.currentline
  else
    FILES[n], LINES[n] = where(4) -- where, emit, the record function, its caller
  end
  if fix then
    FIX[#FIX + 1] = n
    if rtype ~= "AAAA" then
      DATAS[n] = esc(data) -- raw zone-file text: may hold newlines
      rtype = s_sub(rtype, 2) -- "?CAA" (canonicalised by Python) or "!CAA" (from rr()) is a CAA
    end
  end
  return {name = name, type = rtype, content = data, ttl = ttl}
end

-- Dotted quads: four captures, each looked up among the 256 canonical octet spellings (which
-- also rules out leading zeros); far cheaper than converting and range-checking each part.
local OCTETS = {}
for i = 0, 255 do OCTETS[tostring(i)] = true end
local function ipv4(ip)
  if type(ip) ~= "string" then return nil end
  local a, b, c, d = s_match(ip, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a and OCTETS[a] and OCTETS[b] and OCTETS[c] and OCTETS[d] then return ip end
  return nil
end

local function looks_ipv6(ip)
  return type(ip) == "string" and s_find(ip, ":", 1, true) and not s_find(ip, "[^%x:%.]")
end

-- TXT character-strings exactly as dnspython prints them: '"' and '\' escaped with a backslash,
-- bytes outside 0x20..0x7e as \DDD.
local TXT_ESCAPES = {}
for byte = 0, 255 do
  if byte == 34 or byte == 92 then
    TXT_ESCAPES[s_char(byte)] = "\\" .. s_char(byte)
  elseif byte < 32 or byte > 126 then
    TXT_ESCAPES[s_char(byte)] = s_format("\\%03d", byte)
  end
end
local TXT_SPECIAL = "[%z\1-\31\"\\\127-\255]"

local function quoted(s)
  if not s_find(s, TXT_SPECIAL) then return "\"" .. s .. "\"" end
  return "\"" .. s_gsub(s, TXT_SPECIAL, TXT_ESCAPES) .. "\""
end

local function txt_strings(fname, text, parts)
  if type(text) == "number" then text = tostring(text) end
  if type(text) ~= "string" then
    return problem("invalid-argument", fname, "text must be a string, got " .. got(text))
  end
  local n = #text
  if n <= 255 then
    parts[#parts + 1] = quoted(text)
  else
    for i = 1, n, 255 do parts[#parts + 1] = quoted(s_sub(text, i, i + 254)) end
  end
  return true
end

local function txt_data(fname, text)
  local parts = {}
  if type(text) == "table" then
    for i = 1, #text do
      if not txt_strings(fname, text[i], parts) then return nil end
    end
    if #parts == 0 then return problem("invalid-argument", fname, "text is an empty table") end
  elseif not txt_strings(fname, text, parts) then
    return nil
  end
  return t_concat(parts, " ")
end

local function text_arg(fname, v, what)
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" then
    return problem("invalid-argument", fname, what .. " must be a string, got " .. got(v))
  end
  return v
end

----------------------------------------------------------------------------------------------
-- Record functions
----------------------------------------------------------------------------------------------
local R = {}

function R.a(name, ip, ttl)
  local o, t = owner("a", name), ttl_arg("a", ttl)
  local address = ipv4(ip)
  if not address then
    if looks_ipv6(ip) then
      return problem("ipv6-in-a", "a", got(ip) .. " is an IPv6 address; use aaaa() for IPv6 addresses")
    end
    return problem("invalid-ipv4", "a", "expected an IPv4 address such as \"192.0.2.1\", got " .. got(ip))
  end
  if o and t then return (emit(o, name, "A", address, t)) end
end

function R.aaaa(name, ip, ttl)
  local o, t = owner("aaaa", name), ttl_arg("aaaa", ttl)
  if ipv4(ip) then
    return problem("ipv4-in-aaaa", "aaaa", got(ip) .. " is an IPv4 address; use a() for IPv4 addresses")
  end
  if not looks_ipv6(ip) then
    return problem("invalid-ipv6", "aaaa", "expected an IPv6 address such as \"2001:db8::1\", got " .. got(ip))
  end
  if o and t then return (emit(o, name, "AAAA", ip, t, true)) end
end

local function name_record(fname, rtype, what)
  return function(name, value, ttl)
    local o, v, t = owner(fname, name), target(fname, value, what), ttl_arg(fname, ttl)
    if o and v and t then return (emit(o, name, rtype, v, t)) end
  end
end
R.cname = name_record("cname", "CNAME", "target")
R.ns = name_record("ns", "NS", "server")
R.ptr = name_record("ptr", "PTR", "host")
R.dname = name_record("dname", "DNAME", "target")
R.alias = name_record("alias", "ALIAS", "target")

function R.txt(name, text, ttl)
  local o, d, t = owner("txt", name), txt_data("txt", text), ttl_arg("txt", ttl)
  if o and d and t then return (emit(o, name, "TXT", d, t)) end
end

function R.spf(name, text, ttl)
  local o, d, t = owner("spf", name), txt_data("spf", text), ttl_arg("spf", ttl)
  warning("spf-record-type", "spf",
    "the SPF record type is obsolete (RFC 7208) and ignored by receivers; publish the same text with txt()")
  if o and d and t then return (emit(o, name, "SPF", d, t)) end
end

function R.mx(name, exchanger, prio, ttl)
  local o, x = owner("mx", name), target("mx", exchanger, "exchanger")
  local p, t = number_arg("mx", prio, "priority", 0, 65535, 0), ttl_arg("mx", ttl)
  if o and x and p and t then return (emit(o, name, "MX", NUMBER_TEXT[p] .. " " .. x, t)) end
end

function R.srv(name, target_name, port, prio, weight, ttl)
  local o, x = owner("srv", name), target("srv", target_name, "target")
  local po = number_arg("srv", port, "port", 0, 65535)
  local p = number_arg("srv", prio, "priority", 0, 65535, 0)
  local w = number_arg("srv", weight, "weight", 0, 65535, 0)
  local t = ttl_arg("srv", ttl)
  if o and x and po and p and w and t then
    return (emit(o, name, "SRV", NUMBER_TEXT[p] .. " " .. NUMBER_TEXT[w] .. " " .. NUMBER_TEXT[po] .. " " .. x, t))
  end
end

function R.caa(name, value, tag, flag, ttl)
  local o, v = owner("caa", name), text_arg("caa", value, "value")
  if tag == nil then tag = "issue" end
  if type(tag) ~= "string" or not s_find(tag, "^%w+$") or #tag > 255 then
    return problem("invalid-argument", "caa", "tag must be a word such as \"issue\", \"issuewild\" or \"iodef\", got " .. got(tag))
  end
  local f, t = number_arg("caa", flag, "flag", 0, 255, 0), ttl_arg("caa", ttl)
  -- Canonical as dnspython prints it: the tag as written, the value quoted like TXT text.
  if o and v and f and t then return (emit(o, name, "CAA", f .. " " .. tag .. " " .. quoted(v), t)) end
end

function R.sshfp(name, algorithm, fingerprint, fp_type, ttl)
  local o = owner("sshfp", name)
  local a = number_arg("sshfp", algorithm, "algorithm", 0, 255)
  local fp = text_arg("sshfp", fingerprint, "fingerprint")
  local ft = number_arg("sshfp", fp_type, "fingerprint type", 0, 255, 1)
  local t = ttl_arg("sshfp", ttl)
  if o and a and fp and ft and t then return (emit(o, name, "?SSHFP", a .. " " .. ft .. " " .. fp, t, true)) end
end

function R.tlsa(name, usage, data, selector, matching_type, ttl)
  local o = owner("tlsa", name)
  local u = number_arg("tlsa", usage, "usage", 0, 255)
  local d = text_arg("tlsa", data, "certificate data")
  local s = number_arg("tlsa", selector, "selector", 0, 255, 1)
  local m = number_arg("tlsa", matching_type, "matching type", 0, 255, 1)
  local t = ttl_arg("tlsa", ttl)
  if o and u and d and s and m and t then
    return (emit(o, name, "?TLSA", u .. " " .. s .. " " .. m .. " " .. d, t, true))
  end
end

function R.ds(name, keytag, digest, algorithm, digest_type, ttl)
  local o = owner("ds", name)
  local k = number_arg("ds", keytag, "key tag", 0, 65535)
  local d = text_arg("ds", digest, "digest")
  local a = number_arg("ds", algorithm, "algorithm", 0, 255, 13)
  local dt = number_arg("ds", digest_type, "digest type", 0, 255, 2)
  local t = ttl_arg("ds", ttl)
  if o and k and d and a and dt and t then
    return (emit(o, name, "?DS", k .. " " .. a .. " " .. dt .. " " .. d, t, true))
  end
end

local function svc_value(v)
  local t = type(v)
  if t == "table" then
    local items = {}
    for i = 1, #v do items[i] = tostring(v[i]) end
    v = t_concat(items, ",")
  elseif t == "number" then
    return tostring(v)
  elseif t ~= "string" then
    v = tostring(v)
  end
  return quoted(v)
end

local function svc_params(fname, params)
  if params == nil then return "" end
  if type(params) == "string" then return params end
  if type(params) ~= "table" then
    return problem("invalid-argument", fname, "params must be a table or a string, got " .. got(params))
  end
  local keys = {}
  for k in pairs(params) do
    if type(k) ~= "string" then
      return problem("invalid-argument", fname, "params keys must be strings such as alpn or port, got " .. got(k))
    end
    keys[#keys + 1] = k
  end
  t_sort(keys)
  local out = {}
  for _, k in ipairs(keys) do
    local v = params[k]
    if v == true then
      out[#out + 1] = k
    elseif v ~= false then
      out[#out + 1] = k .. "=" .. svc_value(v)
    end
  end
  return t_concat(out, " ")
end

local function svc_record(fname, rtype)
  return function(name, priority, target_name, params, ttl)
    local o = owner(fname, name)
    local p = number_arg(fname, priority, "priority", 0, 65535)
    local x = target(fname, target_name, "target")
    local ps = svc_params(fname, params)
    local t = ttl_arg(fname, ttl)
    if o and p and x and ps and t then
      local data = p .. " " .. x
      if ps ~= "" then data = data .. " " .. ps end
      return (emit(o, name, "?" .. rtype, data, t, true))
    end
  end
end
R.https = svc_record("https", "HTTPS")
R.svcb = svc_record("svcb", "SVCB")

function R.rr(name, rtype, rdata, ttl)
  local o, t = owner("rr", name), ttl_arg("rr", ttl)
  if type(rtype) ~= "string" or not s_find(rtype, "^[%w%-]+$") then
    return problem("invalid-argument", "rr", "type must be a record type such as \"LOC\", got " .. got(rtype))
  end
  local u = s_upper(rtype)
  if u == "SOA" then
    return problem("soa-in-lua", "rr", "the SOA record is generated from the configuration; remove this call")
  end
  local d = text_arg("rr", rdata, "rdata")
  if o and d and t then return (emit(o, name, "!" .. u, d, t, true)) end
end

local function service(kind, name, url, mode, ttl)
  local file, line = where()
  SERVICES[#SERVICES + 1] = t_concat({kind, esc(name), esc(url), mode, ttl, file, line}, "\t")
  warning("service-not-published", kind, name .. " -> " .. url .. " is not published by this tool " ..
    "(until a provider serves them): LuaDNS's " .. kind .. " service has no DNS record to publish")
  return {name = name, type = s_upper(kind), content = url, ttl = ttl}
end

function R.redirect(name, url, mode, ttl)
  local o = owner("redirect", name)
  local u = text_arg("redirect", url, "url")
  local m = number_arg("redirect", mode, "mode", 0, 2, 0)
  local t = ttl_arg("redirect", ttl)
  if o and u and m and t then return service("redirect", absolute(o), u, m, t) end
end

function R.forward(mailbox, email, ttl)
  local m = text_arg("forward", mailbox, "mailbox")
  local e = text_arg("forward", email, "email")
  local t = ttl_arg("forward", ttl)
  if e and not s_find(e, "^[^@%s]+@[^@%s]+$") then
    return problem("invalid-argument", "forward", "email must be an address such as \"me@example.net\", got " .. got(e))
  end
  if m and e and t then return service("forward", s_lower(m), e, 0, t) end
end

-- The server named in slave(): "ns1" and names ending in the zone name are inside the zone (they
-- get an address record), other names with a dot are external servers.  Returns the absolute
-- name and, for a server inside the zone, its owner name relative to the origin.
local function secondary_server(name)
  if type(name) == "string" then
    local l = s_lower(name)
    local inside
    if s_byte(l, -1) == 46 then
      inside = l == ORIGIN or s_sub(l, -#DOT_ORIGIN) == DOT_ORIGIN
    else
      inside = l == "" or l == ZONE_A or s_sub(l, -#DOT_A) == DOT_A or not s_find(l, ".", 1, true)
    end
    if not inside then return target("slave", name, "name"), nil end
  end
  local relative = owner("slave", name)
  if relative then return absolute(relative), relative end
  return nil
end

local SECONDARY_RECORDS, SECONDARY_PAIRS = {}, {} -- server -> its NS record; "server ip" -> true

function R.slave(name, ip, ttl)
  local server, relative = secondary_server(name)
  local t = ttl_arg("slave", ttl)
  local v4 = ipv4(ip)
  if not v4 and not looks_ipv6(ip) then
    return problem("invalid-argument", "slave", "ip must be the secondary server's IP address, got " .. got(ip))
  end
  if not (server and t) then return nil end
  local pair = server .. " " .. ip
  if SECONDARY_PAIRS[pair] then
    warning("duplicate-slave", "slave", got(name) .. " with " .. got(ip) ..
      " is listed twice; remove one of the two lines")
    return SECONDARY_RECORDS[server]
  end
  SECONDARY_PAIRS[pair] = true
  SECONDARIES[#SECONDARIES + 1] = ip
  SECONDARY_NS[#SECONDARY_NS + 1] = server
  local record = SECONDARY_RECORDS[server]
  if not record then -- one NS per server, however many addresses it transfers from
    record = emit("@", "", "NS", server, t)
    SECONDARY_RECORDS[server] = record
  end
  if relative then
    if v4 then emit(relative, name, "A", ip, t) else emit(relative, name, "AAAA", ip, t, true) end
  end
  return record
end

function R.ignore(pattern, rtype)
  if type(pattern) ~= "string" then
    return problem("invalid-argument", "ignore", "pattern must be a string such as \"_acme-challenge.%\", got " .. got(pattern))
  end
  local p = s_lower(pattern)
  if p == "" or p == ZONE_A or p == ORIGIN then
    p = ORIGIN
  elseif p == "@" then
    return problem("at-sign-name", "ignore", "\"@\" is not the apex in Lua zones; write \"\" or _a instead")
  elseif s_byte(p, -1) == 46 then
    -- already absolute
  elseif s_byte(p, -1) == 37 or s_sub(p, -#DOT_A) == DOT_A then
    p = p .. "." -- "%"-terminated patterns already cover the zone name
  else
    p = p .. DOT_ORIGIN
  end
  local ty = "*"
  if rtype ~= nil and rtype ~= "*" then
    if type(rtype) ~= "string" or not s_find(rtype, "^[%w%-]+$") then
      return problem("invalid-argument", "ignore", "type must be a record type such as \"TXT\" or \"*\", got " .. got(rtype))
    end
    ty = s_upper(rtype)
  end
  local file, line = where()
  IGNORES[#IGNORES + 1] = esc(p) .. "\t" .. ty .. "\t" .. file .. "\t" .. line
  return nil
end

local function concat(a, b)
  if type(a) == "number" then a = tostring(a) end
  if type(b) == "number" then b = tostring(b) end
  if type(a) ~= "string" or type(b) ~= "string" then
    local which = type(a) ~= "string" and "first" or "second"
    error("concat: the " .. which .. " argument must be a string, got " .. got(type(a) ~= "string" and a or b), 2)
  end
  return a .. "." .. b
end

----------------------------------------------------------------------------------------------
-- CPU limit: a count hook that checks the process CPU clock.  Once over, it fires on every
-- instruction of zone code (so a pcall that swallows the error cannot keep looping), but never
-- inside this chunk, so the runner always gets control back.
----------------------------------------------------------------------------------------------
local function hook()
  local info = debug_getinfo(2, "S")
  if info and info.source == TRUSTED then
    if not OVER and clock() > DEADLINE then OVER = true end
    if OVER then debug_sethook(hook, "", 1) end
    return
  end
  if not OVER then
    LAST_FILE, LAST_LINE = where(3) -- where a memory error most likely happened, if one does
    if clock() <= DEADLINE then return end
    OVER = true
    if LIMIT == "" then
      LIMIT, LIMIT_MESSAGE = "cpu", "CPU time limit exceeded"
      LIMIT_FILE, LIMIT_LINE = where()
    end
    debug_sethook(hook, "", 1)
  end
  error(LIMIT_MESSAGE, 0)
end

local function hooked(co)
  debug_sethook(co, hook, "", OVER and 1 or HOOK_COUNT)
  return co
end

local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in zone files", 2)
  end
  return setmetatable(t, mt)
end

local BUILTIN_TEMPLATES -- compiled chunk of builtin_templates.lua

local function pack(...) return {n = select("#", ...), ...} end

local function new_environment()
  local env = {}
  for _, key in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                        "tostring", "type", "unpack", "rawequal", "rawget", "rawset", "getmetatable",
                        "_VERSION"}) do
    env[key] = _G[key]
  end
  -- An error raised by the CPU hook reaches the message handler while Lua still has hooks off,
  -- so a handler that loops could never be stopped: once over the limit, skip user handlers.
  env.xpcall = function(f, handler)
    return xpcall(f, function(e)
      if OVER then return e end
      return handler(e)
    end)
  end
  env.setmetatable = safe_setmetatable
  env.print = function() end
  env.string = copy(STRING)
  ZONE_STRING = env.string
  env.table = copy(TABLE)
  env.math = copy(MATH)
  -- Coroutines get the CPU hook too (Lua 5.1 keeps one hook function per thread).
  local co = copy(COROUTINE)
  co.create = function(f) return hooked(co_create(f)) end
  co.wrap = function(f)
    local thread = hooked(co_create(f))
    return function(...)
      local results = pack(co_resume(thread, ...))
      if results[1] then return unpack(results, 2, results.n) end
      error(results[2], 2) -- like 5.1's wrap: the caller's position before a string message
    end
  end
  env.coroutine = co
  for key, fn in pairs(R) do env[key] = fn end
  env.concat = concat
  env._a = ZONE_A
  env._G = env
  local templates
  env.require = function(name)
    if name ~= "templates" then
      error("require: only require(\"templates\") is available in zone files, not " .. got(name), 2)
    end
    if not templates then
      local helpers = {zone = ZONE_A}
      templates = BUILTIN_TEMPLATES(copy(R), helpers)
    end
    return templates
  end
  return env
end

-- Message handler of the zone run: an error raised inside the prelude or the built-in templates
-- (say a bad argument that reached a library function) is re-labelled with the zone or template
-- line that led there, so every error names a repository file; an error in a template also
-- names the zone line that called it.
local function locate(err)
  if type(err) ~= "string" or OVER then return err end
  local internal = s_find(err, "^%(prelude%):%d+: ") or s_find(err, "^%(templates%):%d+: ")
  local file, line, level = where(2)
  if file == 0 then return err end
  local labelled = false
  for _, name in next, CHUNK_NAMES do
    if s_sub(err, 1, #name + 1) == name .. ":" then labelled = true break end
  end
  if not labelled then
    if internal then err = s_gsub(err, "^%([a-z]+%):%d+: ", "") end
    err = CHUNK_NAMES[file] .. ":" .. line .. ": " .. err
  end
  return err .. called_from(file, level)
end

local function describe_error(err)
  if type(err) == "string" then return err end
  if err == nil then return "error (nil)" end
  return "error object is " .. got(err)
end

-- A column as an array of strings that Python joins: each element followed by `separator`, the
-- last by `last`.  One table.concat of a million elements copies its buffer over and over.
local PIECE = 4096
local function pieces(column, separator, last)
  local out, n = {}, #column
  for first = 1, n, PIECE do
    local final = first + PIECE - 1
    if final >= n then
      out[#out + 1] = t_concat(column, separator, first, n) .. last
    else
      out[#out + 1] = t_concat(column, separator, first, final) .. separator
    end
  end
  return out
end

-- The file column as "file count" runs: nearly every record of a zone comes from one file.
local function runs(column)
  local out, n, first = {}, #column, 1
  for i = 2, n + 1 do
    if column[i] ~= column[first] then
      out[#out + 1] = column[first] .. " " .. (i - first)
      first = i
    end
  end
  return t_concat(out, "\n")
end

-- The line column as differences from the previous line, in place: mostly 1, whose text is
-- made once (formatting a million distinct numbers is the slow part of handing them over).
local function deltas(column)
  local previous = 0
  for i = 1, #column do
    local line = column[i]
    local step = line - previous
    column[i] = step >= -65535 and step <= 65535 and NUMBER_TEXT[step] or tostring(step)
    previous = line
  end
  return column
end

-- Compile a repository file in the zone's environment.  Precompiled chunks are refused: Lua 5.1
-- loads bytecode without verifying it.
local function compile(source, name, env)
  if s_byte(source, 1) == 27 then return nil, name .. ": attempt to load a binary chunk" end
  local fn, message = loadstring(source, "=" .. name)
  if fn then setfenv(fn, env) end
  return fn, message
end

-- Called once from Python.  Arguments: origin ("example.com."), default TTL, record limit, CPU
-- seconds, builtin templates source, the chunk names (templates first, the zone last) and their
-- sources, followed by the zone file split into closures if the worker made one (see
-- sandbox.split_constant_tables).  Returns one table (see sandbox.SandboxResult for its fields).
local function run(origin, default_ttl, max_records, cpu_seconds, builtin_source, names, sources)
  ORIGIN = origin
  ZONE_A = s_sub(origin, 1, -2)
  DOT_A = "." .. ZONE_A
  DOT_ORIGIN = "." .. ORIGIN
  FAST_OWNER_MAX = 253 - #ORIGIN
  if FAST_OWNER_MAX > 63 then FAST_OWNER_MAX = 63 end
  DEFAULT_TTL, MAX_RECORDS = default_ttl, max_records
  BUILTIN_TEMPLATES = assert(loadstring(builtin_source, "=(templates)"))
  setfenv(BUILTIN_TEMPLATES, {type = type, error = error})
  local count = #names
  for i = 1, count do
    FILE_INDEX["=" .. names[i]] = i
    CHUNK_NAMES[i] = names[i]
  end
  ZONE_INDEX = count

  local env = new_environment()
  local compiled = "whole"
  local function body()
    for i = 1, count do
      local name, fn, message = names[i], nil, nil
      if i == count and sources[count + 1] then
        fn = compile(sources[count + 1], name, env) -- if it fails, the file's own error is reported
        sources[count + 1] = false
        if fn then compiled = "split" end
      end
      if not fn then fn, message = compile(sources[i], name, env) end
      sources[i] = false -- the source text is garbage once compiled
      if not fn then return "syntax", i, message end
      if i == count then collectgarbage() end -- the sources, before the zone's records pile up
      fn()
    end
    return "ok"
  end
  DEADLINE = clock() + cpu_seconds
  debug_sethook(hook, "", HOOK_COUNT)
  local ok, status, syntax_file, syntax_message = xpcall(body, locate)
  debug_sethook()
  local err = ""
  if not ok then
    status, err = "error", describe_error(status)
    if LIMIT == "" and (err == "not enough memory" or s_find(err, "string too large", 1, true)) then
      LIMIT, LIMIT_MESSAGE, LIMIT_FILE, LIMIT_LINE = "memory", "memory limit exceeded", LAST_FILE, LAST_LINE
    end
  elseif status == "syntax" then
    err = syntax_file .. "\t" .. describe_error(syntax_message)
  end
  env, body, sources = nil, nil, nil
  -- No full collection here: it costs more than the garbage it would free before the copy.
  local result = {status = status, error = err, limit = LIMIT, limit_message = LIMIT_MESSAGE,
                  limit_file = LIMIT_FILE, limit_line = LIMIT_LINE, count = N, compiled = compiled,
                  finding_count = NFINDINGS}
  result.names = pieces(NAMES, DOT_ORIGIN .. "\n", DOT_ORIGIN); NAMES = nil
  result.types = pieces(TYPES, "\n", ""); TYPES = nil
  result.ttls = pieces(TTLS, "\n", ""); TTLS = nil
  result.datas = pieces(DATAS, "\n", ""); DATAS = nil
  result.files = runs(FILES); FILES = nil
  result.lines = pieces(deltas(LINES), "\n", ""); LINES = nil
  result.fix = t_concat(FIX, "\n")
  result.findings = t_concat(FINDINGS, "\n")
  result.services = t_concat(SERVICES, "\n")
  result.ignores = t_concat(IGNORES, "\n")
  result.secondaries = t_concat(SECONDARIES, "\n")
  result.secondary_ns = t_concat(SECONDARY_NS, "\n")
  return result
end

return run
