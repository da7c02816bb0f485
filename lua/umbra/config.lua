-- umbra.config: a run's configuration as a readable Lua file (config.lua), written
-- atomically and read back in an empty environment with an instruction limit (data only).
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
-- A configuration is data: a few hundred instructions. The file runs in an empty
-- environment, in a coroutine whose count hook stops it after this many, so that a
-- config.lua holding `while true do end` (or building huge strings) cannot hang a resume.
local INSTRUCTION_LIMIT = 100000

function config.read(path)
  local chunk, err = loadfile(path, "t", {})
  if not chunk then return nil, "config: cannot read " .. path .. ": " .. tostring(err) end
  local co = coroutine.create(chunk)
  debug.sethook(co, function() error("config: " .. path .. " runs more than " .. INSTRUCTION_LIMIT
                                     .. " instructions: not a configuration table", 0) end, "", INSTRUCTION_LIMIT)
  local ok, t = coroutine.resume(co)
  if not ok then
    return nil, tostring(t):find("instructions", 1, true) and t or "config: " .. path .. ": " .. tostring(t)
  end
  if type(t) ~= "table" then return nil, "config: " .. path .. " does not hold a configuration table" end
  for k, v in pairs(t) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean") then
      return nil, "config: " .. path .. ": entry " .. tostring(k) .. " is not a string, number or boolean"
    end
  end
  return t
end

return config
