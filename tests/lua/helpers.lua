-- Helpers shared by the busted specs (loaded with dofile; not a spec itself): shell
-- quoting, running a command for its output and exit code, temporary folders, and the
-- core's live bytes after full collections (for leak checks).
local core = require "umbra.core"

local M = {}

function M.quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- run(cmd) -> output (stdout and stderr), exit code
function M.run(cmd)
   local p = io.popen(cmd .. " 2>&1")
   local out = p:read("a")
   local _, _, rc = p:close()
   return out, rc
end

function M.tmpdir(tag)
   local p = io.popen("mktemp -d /tmp/um_" .. (tag or "spec") .. "_XXXXXX")
   local d = p:read("l")
   p:close()
   return d
end

function M.settle()
   collectgarbage("collect")
   collectgarbage("collect")
   return core.live_bytes()
end

return M
