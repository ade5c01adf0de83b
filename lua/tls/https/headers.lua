-- Response headers for tls.https: a plain table of lower-case names to
-- values (repeated headers joined with ", ", as LuaSocket does), whose
-- lookups are case-insensitive, plus methods that keep every repeated header
-- as received:
--   h["Content-Type"], h["content-type"], h:get("CONTENT-TYPE") -> combined value
--   h:get_all("set-cookie") -> { "a=1", "b=2" }  (each header line's value)
--   for name, value in h:each() do ... end       (every line, in order)

local headers = {}

-- An HTTP token (RFC 9110, 5.6.2): header names and methods.
headers.TOKEN = "^[!#$%%&'*+%-.%^_`|~%w]+$"

-- name -> list of { name, value } in arrival order; weak so a headers
-- object takes its list with it
local lines_of = setmetatable({}, { __mode = "k" })
-- headers named like a method (a server may send "Get: x"): their combined
-- values live here, so that h:get() and the other methods keep working
local shadowed_of = setmetatable({}, { __mode = "k" })

local methods = {}

function methods.get(h, name)
  local key = name:lower()
  if methods[key] then return (shadowed_of[h] or {})[key] end
  return rawget(h, key)
end

function methods.get_all(h, name)
  local want, out = name:lower(), {}
  for _, l in ipairs(lines_of[h] or {}) do
    if l[1]:lower() == want then out[#out + 1] = l[2] end
  end
  return out
end

function methods.each(h)
  local list, i = lines_of[h] or {}, 0
  return function()
    i = i + 1
    local l = list[i]
    if l then return l[1], l[2] end
  end
end

-- the combined value under the lower-case name
local function combine(h, name, value)
  local key, into = name:lower(), h
  if methods[key] then
    into = shadowed_of[h] or {}
    shadowed_of[h] = into
  end
  local old = rawget(into, key)
  rawset(into, key, old and (old .. ", " .. value) or value)
end

function methods.add(h, name, value)
  local list = lines_of[h]
  list[#list + 1] = { name, value }
  combine(h, name, value)
end

local mt = {
  __name = "tls.https.headers",
  __index = function(h, k)
    local m = methods[k]
    if m then return m end
    if type(k) == "string" then
      local lower = k:lower()
      if lower ~= k then return rawget(h, lower) end
    end
    return nil
  end,
}

-- headers.new([lines]): lines is a list of { name, value } in arrival order,
-- which the object takes over (not copied).
function headers.new(lines)
  local h = setmetatable({}, mt)
  lines = lines or {}
  lines_of[h] = lines
  for i = 1, #lines do combine(h, lines[i][1], lines[i][2]) end
  return h
end

return headers
