-- Writes the API reference (docs/api.md) from the comments in lua/umbra/*.lua; run by
-- `make docs` with the umbra executable. `--check FILE` instead exits 1 when FILE
-- differs from what would be written (make test runs that).
local docs = require "umbra.docs"
local text = docs.markdown() .. "\n"
if arg[1] == "--check" then
  local f = io.open(arg[2] or "docs/api.md")
  local old = f and f:read("a")
  if f then f:close() end
  if old ~= text then
    io.stderr:write((arg[2] or "docs/api.md") .. " is out of date: run `make docs` and commit it\n")
    os.exit(1)
  end
  print("docs/api.md is up to date")
  return
end
local f = assert(io.open(arg[1] or "docs/api.md", "w"))
f:write(text)
f:close()
