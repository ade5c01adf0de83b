-- What differs between Lua 5.1/LuaJIT and 5.4 for the Lua layer, in one place.
--
-- The rest of lua/tls/ is written in the subset every version parses (no `//`,
-- no bitwise operators, no string.pack) and asks this module for the few
-- library functions that 5.1 lacks.

local compat = {}

local mtype, mtointeger, floor, huge = math.type, math.tointeger, math.floor, math.huge

if mtype then
  --- True if `v` is an integer (a number of subtype integer on 5.3+).
  function compat.is_integer(v) return mtype(v) == "integer" end
  --- `v` as an integer if it is a number with an integral value, else nil.
  function compat.tointeger(v)
    if type(v) ~= "number" then return nil end
    return mtointeger(v)
  end
else
  -- Before 5.3 every number is a double: integral and finite is what counts.
  function compat.is_integer(v)
    return type(v) == "number" and v == floor(v) and v ~= huge and v ~= -huge
  end
  function compat.tointeger(v)
    if compat.is_integer(v) then return v end
    return nil
  end
end

--- A number as text for the wire (header values, query and form fields):
-- the same on every Lua, so an integral float is "10", not 5.3+'s "10.0"
-- (other numbers: tostring's %.14g, the same on every version).
function compat.number_text(v)
  if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return ("%d"):format(v) end
  return tostring(v)
end

--- A port as getaddrinfo takes it: a string as it is, an integral number as
-- its digits (5.3+'s 8443.0 too, which tostring makes "8443.0"); else nil.
function compat.port_text(port)
  if type(port) == "string" then return port end
  local n = compat.tointeger(port)
  return n and compat.number_text(n)
end

--- Calls the global warn() (Lua 5.4) at call time; drops the message where
-- there is none (5.4's warnings are off unless enabled: the same default).
function compat.warn(...)
  local warn = rawget(_G, "warn")
  if warn then return warn(...) end
end

--- coroutine.isyieldable (5.3+); before 5.3, true inside any coroutine other
-- than the main one (a C boundary in between is then reported by Lua itself).
compat.isyieldable = coroutine.isyieldable or function()
  local co, is_main = coroutine.running()
  return co ~= nil and not is_main
end

-- Can a coroutine yield through pcall? Lua 5.2+ and LuaJIT: yes; plain
-- Lua 5.1: no. (Known by version, not probed with a coroutine: hosts such as
-- nginx's lua module replace the coroutine functions, and this runs inside
-- require.)
local pcall_yields = _VERSION ~= "Lua 5.1" or rawget(_G, "jit") ~= nil

local unpack = table.unpack or unpack

--- pcall through which the function may yield, on every version. Lua 5.1's
-- pcall is a C-call boundary, so there f runs in a coroutine of its own
-- whose yields are passed up to the caller's coroutine and whose resumes
-- are passed back down (what coxpcall does).
if pcall_yields then
  compat.pcall = pcall
else
  local create, resume, yield, status = coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
  local function pack(...) return { n = select("#", ...), ... } end
  function compat.pcall(f, ...)
    -- (a Lua function: 5.1's coroutine.create takes no C function)
    local co = create(function(...) return f(...) end)
    local r = pack(resume(co, ...))
    while r[1] and status(co) == "suspended" do
      r = pack(resume(co, yield(unpack(r, 2, r.n))))
    end
    return unpack(r, 1, r.n)
  end
end

--- A shallow copy of the array part 1..#list.
function compat.copy_list(list)
  local out = {}
  for i = 1, #list do out[i] = list[i] end
  return out
end

return compat
