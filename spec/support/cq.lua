-- Coroutines in one cqueues controller, for the specs of the event-loop
-- paths (tls.cqueues, tls.over, tls.https, HTTP/2).
local cqueues = require "cqueues"

local M = {}

-- Run the functions as coroutines of one controller until all finish (at
-- most `limit` seconds, else an error); returns the errors they raised.
function M.run(limit, ...)
  local cq = cqueues.new()
  for _, fn in ipairs { ... } do cq:wrap(fn) end
  local errs = {}
  local deadline = cqueues.monotime() + limit
  while not cq:empty() do
    local ok, err = cq:step(0.5)
    if not ok then errs[#errs + 1] = tostring(err) end
    if cqueues.monotime() > deadline then error("coroutines did not finish in time") end
  end
  return errs
end

return M
