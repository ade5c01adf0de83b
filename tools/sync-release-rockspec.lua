-- lua5.4 tools/sync-release-rockspec.lua RELEASE SCM: give the release
-- rockspec the scm rockspec's build table (its modules and sources), keeping
-- the release's own header (version, source, dependencies, platforms).
local release, scm = arg[1], arg[2]
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
local rel, dev = read(release), read(scm)
local a, b = rel:find("\nbuild = {", 1, true), dev:find("\nbuild = {", 1, true)
assert(a and b, "no build table")
local f = assert(io.open(release, "wb"))
f:write(rel:sub(1, a) .. dev:sub(b + 1))
f:close()
