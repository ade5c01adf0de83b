-- JSON for tls.https (the json option and res:json()), through whichever
-- module is installed: lua-cjson, else dkjson (Debian lua-cjson,
-- lua-dkjson). Neither is required: without one, the json option and
-- res:json() say so.

local json = {}

local impl, name
do
  local ok, m = pcall(require, "cjson")
  if ok and type(m) == "table" then
    impl, name = m, "cjson"
  else
    ok, m = pcall(require, "dkjson")
    if ok and type(m) == "table" then impl, name = m, "dkjson" end
  end
end

json.name = name
json.MISSING = "no JSON module is installed (install lua-cjson or lua-dkjson)"

-- -> string | nil, err
function json.encode(v)
  if not impl then return nil, json.MISSING end
  local ok, s, err = pcall(impl.encode, v)
  if not ok then return nil, "json: cannot encode the value: " .. tostring(s):gsub("^.-: ", "") end
  if type(s) ~= "string" then return nil, "json: cannot encode the value: " .. tostring(err) end
  return s
end

-- -> value | nil, err
function json.decode(s)
  if not impl then return nil, json.MISSING end
  local ok, v, pos, err = pcall(impl.decode, s)
  if not ok then return nil, "json: the body is not JSON: " .. tostring(v):gsub("^.-: ", "") end
  if v == nil and err then return nil, "json: the body is not JSON: " .. tostring(err) end
  return v
end

return json
