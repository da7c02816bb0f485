-- umbra.config: a run's configuration as a readable Lua file (config.lua), written
-- atomically and read back in an empty environment (the file can hold only data).
local config = {}

local function serialise(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then
      return string.format("(%s)", v ~= v and "0/0" or (v > 0 and "1/0" or "-1/0"))
    end
    return string.format("%.17g", v)
  end
  if t == "boolean" then return tostring(v) end
  error("config: cannot store a " .. t)
end

--- Write a flat table of strings, numbers and booleans.
function config.write(path, tbl)
  local keys = {}
  for k, v in pairs(tbl) do
    if type(v) ~= "table" and type(v) ~= "function" and type(v) ~= "userdata" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write("return {\n")
  for _, k in ipairs(keys) do f:write(string.format("  [%q] = %s,\n", k, serialise(tbl[k]))) end
  f:write("}\n")
  f:close()
  assert(os.rename(tmp, path))
end

--- Read a table written by config.write; nil, message when missing or malformed.
function config.read(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return nil, "config: cannot read " .. path .. ": " .. tostring(err) end
  local ok, t = pcall(chunk)
  if not ok or type(t) ~= "table" then return nil, "config: " .. path .. " does not hold a configuration table" end
  return t
end

return config
