-- umbra.checkpoint: a training state in one HDF5 file (core/io/h5io.h), readable with h5dump
-- and h5py. Layout: /model/params/<path>, /model/buffers/<path> (float32 with their true
-- shapes), /optim/... (the optimiser's state() table: tensors as datasets, numbers and
-- strings as attributes of their group), /extra/<name>; root attributes format, version,
-- layout, architecture, epoch, step, generator_seed, generator_counter, umbra_version,
-- created; /config holds the recipe's arguments as attributes. Nested tables become
-- groups, integer keys become names "1", "2", ... and come back as integers; booleans are
-- stored as the strings "true"/"false" and come back as booleans.
local core = require "umbra.core"

local checkpoint = {}

local function key_name(k, where)
  if math.type(k) == "integer" then return tostring(k) end
  if type(k) ~= "string" or k == "" or k:find("/", 1, true) then
    error(string.format("checkpoint.save: cannot store key %s under %s (keys must be integers or strings without '/')",
                        tostring(k), where), 4)
  end
  return k
end

-- Spread value (a tensor, a scalar or a nested table) over tensors[path] / attrs[path].
local function flatten(value, path, tensors, attrs, allow_tensors)
  if core.is_tensor(value) then
    if not allow_tensors then error("checkpoint.save: " .. path .. " may hold no tensors", 3) end
    tensors[path] = value
  elseif type(value) == "table" then
    for k, v in pairs(value) do flatten(v, path .. "/" .. key_name(k, path), tensors, attrs, allow_tensors) end
  elseif type(value) == "boolean" then
    attrs[path] = tostring(value)
  elseif type(value) == "number" or type(value) == "string" then
    attrs[path] = value
  else
    error("checkpoint.save: cannot store a " .. type(value) .. " at " .. path, 3)
  end
end

-- Put value at the path below prefix into tbl ("optim/slots/m/1" -> tbl.slots.m[1]).
local function put(tbl, rest, value)
  local node = tbl
  local parts = {}
  for part in rest:gmatch("[^/]+") do
    local digits = part:match("^%d+$")
    parts[#parts + 1] = digits and math.tointeger(tonumber(digits)) or part
  end
  for i = 1, #parts - 1 do
    node[parts[i]] = node[parts[i]] or {}
    node = node[parts[i]]
  end
  node[parts[#parts]] = value
end

local function unflatten(prefix, tensors, attrs)
  local out, n = {}, #prefix
  for name, v in pairs(attrs or {}) do
    if name:sub(1, n + 1) == prefix .. "/" then
      if v == "true" then v = true elseif v == "false" then v = false end
      put(out, name:sub(n + 2), v)
    end
  end
  for name, t in pairs(tensors or {}) do
    if name:sub(1, n + 1) == prefix .. "/" then put(out, name:sub(n + 2), t) end
  end
  return out
end

-- {path = tensor} of a model: m:named_parameters() / m:named_buffers(), or a plain table
-- {params = {...}, buffers = {...}}.
local function method(obj, name)
  local ok, f = pcall(function() return obj[name] end)
  return ok and type(f) == "function" and f or nil
end

local function model_tensors(m)
  local params, buffers
  if method(m, "named_parameters") then
    params = m:named_parameters()
    buffers = method(m, "named_buffers") and m:named_buffers() or {}
  elseif type(m) == "table" then
    params, buffers = m.params or {}, m.buffers or {}
  else
    error("checkpoint: model must be an umbra.nn module or {params = {...}, buffers = {...}}", 3)
  end
  local out = {}
  for path, t in pairs(params) do out["model/params/" .. path] = t end
  for path, t in pairs(buffers) do out["model/buffers/" .. path] = t end
  return out
end

--- checkpoint.save(path, {model =, optim =, generator =, epoch =, step =, config = {...},
---                        architecture =, extra_tensors = {name = tensor}}) -> true | nil, message
--- Written to a temporary file and renamed: an interrupted save keeps the previous file.
function checkpoint.save(path, state)
  if type(path) ~= "string" or type(state) ~= "table" then
    error("checkpoint.save(path, {model =, optim =, generator =, epoch =, step =, config =})", 2)
  end
  local tensors, attrs = {}, {}
  if state.model then
    for name, t in pairs(model_tensors(state.model)) do tensors[name] = t end
  end
  if state.optim then
    local st = method(state.optim, "state") and state.optim:state() or state.optim
    flatten(st, "optim", tensors, attrs, true)
  end
  if state.generator then
    local g = state.generator:state()
    attrs.generator_seed, attrs.generator_counter = g.seed, g.counter
  end
  for name, t in pairs(state.extra_tensors or {}) do
    flatten(t, "extra/" .. key_name(name, "extra"), tensors, attrs, true)
  end
  if state.config then flatten(state.config, "config", tensors, attrs, false) end
  attrs.epoch, attrs.step = state.epoch, state.step
  attrs.architecture = state.architecture or (state.config and type(state.config.architecture) == "string"
                                              and state.config.architecture) or nil
  attrs.umbra_version = core.version
  attrs.created = os.date("!%Y-%m-%dT%H:%M:%SZ")
  return core.h5_save(path, tensors, attrs)
end

--- checkpoint.read(path [, {prefix =, check = true}]) -> {names, tensors, shapes, dtypes,
--- attributes} | nil, message: everything in the file (for tools and imports).
function checkpoint.read(path, opts)
  return core.h5_read(path, opts)
end

--- checkpoint.load(path, {model =, optim =, generator =}) -> info | nil, message
--- Fills the model's tensors in place (after checking every name, dtype and shape: the
--- first mismatch is named and nothing is changed), then the optimiser (opt:set_state) and
--- the generator. info = {epoch, step, config, architecture, attributes, extra_tensors}.
function checkpoint.load(path, opts)
  opts = opts or {}
  local meta, err = core.h5_read(path, {data = false})
  if not meta then return nil, err end
  local attrs = meta.attributes
  if opts.model then
    local targets = model_tensors(opts.model)
    for _, name in ipairs(meta.names) do
      if (name:find("^model/params/") or name:find("^model/buffers/")) and not targets[name] then
        return nil, string.format("%s: tensor %s of the checkpoint has no counterpart in the model "
                                  .. "(another architecture?)", path, name)
      end
    end
    local ok, lerr = core.h5_load(path, targets)
    if not ok then return nil, lerr end
  end
  if opts.optim then
    local got, rerr = core.h5_read(path, {prefix = "optim"})
    if not got then return nil, rerr end
    local st = unflatten("optim", got.tensors, attrs)
    if next(st) == nil then return nil, path .. ": the checkpoint holds no optimiser state" end
    local ok, serr = pcall(opts.optim.set_state, opts.optim, st)
    if not ok then return nil, path .. ": optimiser state: " .. tostring(serr) end
  end
  if opts.generator then
    if math.type(attrs.generator_seed) ~= "integer" or math.type(attrs.generator_counter) ~= "integer" then
      return nil, path .. ": the checkpoint holds no generator state (generator_seed, generator_counter)"
    end
    opts.generator:set_state{seed = attrs.generator_seed, counter = attrs.generator_counter}
  end
  local info = {epoch = attrs.epoch, step = attrs.step, architecture = attrs.architecture,
                config = unflatten("config", nil, attrs), attributes = attrs}
  for _, name in ipairs(meta.names) do
    if name:find("^extra/") then
      local extra, eerr = core.h5_read(path, {prefix = "extra"})
      if not extra then return nil, eerr end
      info.extra_tensors = unflatten("extra", extra.tensors, nil)
      break
    end
  end
  return info
end

return checkpoint
