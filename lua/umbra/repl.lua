-- umbra.repl: the Lua side of the REPL (lua/repl.c). complete(line, word) lists the Tab
-- completions of word (globals, fields of tables and of umbra, methods of tensors and
-- modules after ':' or '.'); show(...) prints values readably (tables one level deep as
-- {4, 5} or {key = value}, other values as tostring gives them).
local repl = {}

local keywords = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

local function is_name(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

local function add_keys(out, t, only_functions)
  if type(t) ~= "table" then return end
  for k, v in pairs(t) do
    if is_name(k) and (not only_functions or type(v) == "function") then out[k] = true end
  end
end

-- umbra's submodules load on first use, so list the files beside umbra/init.lua too.
local function add_submodules(out)
  local init = package.searchpath("umbra", package.path)
  if not init then return end
  local dir = init:match("^(.*)/[^/]*$")
  local p = io.popen("ls '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  if not p then return end
  for file in p:lines() do
    local name = file:match("^([%a_][%w_]*)%.lua$")
    if name and name ~= "init" and name ~= "repl" then out[name] = true end
  end
  p:close()
end

-- The names reachable from value v after sep ('.' or ':').
local function members(v, sep)
  local out = {}
  local umbra = package.loaded.umbra
  local methods_only = sep == ":"
  if umbra and umbra.is_tensor(v) then
    add_keys(out, umbra.Tensor, true)
  elseif umbra and umbra.nn.is_module(v) then
    add_keys(out, umbra.nn.Module, true)
    if not methods_only then
      for i = 1, #v do
        local name = v:child_name(i)
        if is_name(name) then out[name] = true end
      end
      for path in pairs(v:named_parameters()) do
        if is_name(path) then out[path] = true end
      end
    end
  elseif type(v) == "string" then
    add_keys(out, string, true)
  else
    if type(v) == "table" then add_keys(out, v, methods_only) end
    if v == umbra then add_submodules(out) end
    local mt = getmetatable(v)
    local seen = 0
    while type(mt) == "table" and type(mt.__index) == "table" and seen < 8 do
      add_keys(out, mt.__index, methods_only)
      mt = getmetatable(mt.__index)
      seen = seen + 1
    end
  end
  return out
end

-- The value of a dotted chain of names ("umbra.nn"), or nil when any step fails.
local function resolve(chain)
  local v = _G
  for name in chain:gmatch("[^.]+") do
    if not is_name(name) then return nil end
    local ok, next_v = pcall(function() return v[name] end)
    if not ok or next_v == nil then return nil end
    v = next_v
  end
  return v
end

--- repl.complete(line, word) -> sorted list of completions of word (line: the input up to
--- the end of word, for context)
function repl.complete(_line, word)
  local base, sep, partial = word:match("^(.*)([.:])([%w_]*)$")
  local names
  if base then
    if not base:match("^[%a_][%w_.]*$") or base:find("..", 1, true) then return {} end
    local v = resolve(base)
    if v == nil then return {} end
    names = members(v, sep)
  else
    partial, base, sep = word, "", ""
    names = {}
    add_keys(names, _G)
    for _, k in ipairs(keywords) do names[k] = true end
  end
  local out = {}
  for name in pairs(names) do
    if name:sub(1, #partial) == partial and name:sub(1, 2) ~= "__" then out[#out + 1] = base .. sep .. name end
  end
  table.sort(out)
  return out
end

-- ---- printing ------------------------------------------------------------------------

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__tostring ~= nil
end

local format

-- a value inside a table: nested tables shown to depth 2 when short, else {...}
local function scalar_text(v, depth)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" and not has_tostring(v) then
    local text = depth < 2 and format(v, depth + 1) or nil
    return text and #text <= 60 and not text:find("\n") and text or "{...}"
  end
  local s = tostring(v)
  if s:find("\n") then s = s:match("^[^\n]*") .. " ..." end   -- a tensor or module inside a table
  return s
end

local MAX_ITEMS = 40

--- repl.format(v) -> text: a table without __tostring as {a, b} (its list part) and
--- key = value pairs (sorted), nested tables two levels deep when short; anything else
--- as tostring
function repl.format(v) return format(v, 1) end

format = function(v, depth)
  if type(v) ~= "table" or has_tostring(v) then return tostring(v) end
  local parts, n = {}, #v
  for i = 1, math.min(n, MAX_ITEMS) do parts[#parts + 1] = scalar_text(v[i], depth) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  for i = 1, math.min(#keys, MAX_ITEMS) do
    local k = keys[i]
    local key = is_name(k) and k or "[" .. scalar_text(k, 2) .. "]"
    parts[#parts + 1] = key .. " = " .. scalar_text(v[k], depth)
  end
  local more = math.max(0, n - MAX_ITEMS) + math.max(0, #keys - MAX_ITEMS)
  if more > 0 then parts[#parts + 1] = string.format("... (%d more)", more) end
  local one_line = "{" .. table.concat(parts, ", ") .. "}"
  if #one_line <= 100 then return one_line end
  return "{\n  " .. table.concat(parts, ",\n  ") .. "\n}"
end

--- repl.show(...) prints each value with repl.format, separated by tabs
function repl.show(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = repl.format((select(i, ...))) end
  io.write(table.concat(parts, "\t"), "\n")
  io.flush()
end

return repl
