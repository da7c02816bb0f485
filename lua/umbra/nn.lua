-- umbra.nn: layers, containers and criteria. Every layer is a C module (umbra.core.nn),
-- so a whole forward or backward pass of a container runs in C; this file turns option
-- tables into constructor calls, gives modules their Lua methods (parameters by path,
-- children as m[i] / m.name, printing) and defines the criteria.
--
-- Containers: nn.Sequential{ {"conv1", nn.Conv2d(...)}, nn.ReLU(), ... } -- an entry is a
-- module (named by its position, "1", "2", ...) or a pair {name, module}. A name has no
-- '.' and is not a number; parameter paths join names with '.': "block_2_0.main.conv1.weight".
-- nn.Residual(main [, shortcut]) or nn.Residual{pre=, main=, shortcut=}: y = main(p) +
-- shortcut(p) with p = pre(x) (or x); shortcut defaults to the identity.
-- Children are m[i] or m.name; a child named like a method (e.g. "forward") is m:child(name).
-- Results of forward/backward are tensors the caller owns: keeping one is safe.
local core = require "umbra.core"

local C = core.nn_core
local nn = {}

local Module = {}
for name, f in pairs(C.methods) do Module[name] = f end

local mt = C.metatable
-- m.name / m[i]: a method, else a child, else one of m's own parameters (m.weight,
-- m.bias); a name within a slip of one of those is an error that suggests it.
mt.__index = function(self, key)
  local method = Module[key]
  if method ~= nil then return method end
  local state = C.lua_state(self)   -- a module written in Lua: its own fields and class first
  if state ~= nil then
    local v = state[key]
    if v ~= nil then return v end
  end
  if type(key) ~= "number" and type(key) ~= "string" then return nil end
  local child = C.methods.child(self, key)
  if child ~= nil or type(key) == "number" then return child end
  local paths, params = C.methods.named_tensors(self, "params")
  for i, path in ipairs(paths) do
    if path == key then return params[i] end
  end
  if state ~= nil then   -- buffers by name; an unset field of a Lua module is nil, as in Lua
    return C.own_tensor(self, "buffer", key)
  end
  local names = {}
  for name in pairs(Module) do names[#names + 1] = name end
  for i = 1, C.methods.num_children(self) do names[#names + 1] = C.methods.child_name(self, i) end
  for _, path in ipairs(paths) do
    if not path:find(".", 1, true) then names[#names + 1] = path end
  end
  -- a name near a known one is a slip; any other stays nil, so code may probe (m.core)
  local hint = require("umbra.suggest").did_you_mean(key, names)
  if hint == "" then return nil end
  error(string.format("no method, child or parameter '%s' on umbra.Module (%s)%s", key, self:type(), hint), 2)
end
mt.__newindex = function(self, key, value)
  local state = C.lua_state(self)
  if state == nil then
    error(string.format("cannot set field '%s' on a %s: only modules written in Lua have fields",
                        tostring(key), C.methods.type(self)), 2)
  end
  state[key] = value
end
mt.__len = function(self) return C.methods.num_children(self) end
--- model(x) is model:forward(x)
mt.__call = function(self, x) return C.methods.forward(self, x) end

-- ---- options -------------------------------------------------------------------------

local function generator_of(opts, who)
  if core.is_generator(opts) then return opts end
  if type(opts) == "table" then
    if opts.generator ~= nil then
      if not core.is_generator(opts.generator) then
        error(who .. ": opts.generator must be an umbra.Generator", 3)
      end
      return opts.generator
      end
    if opts.seed ~= nil then return core.Generator(opts.seed) end
  end
  error(who .. ": weights need a generator: pass {generator = umbra.Generator(seed)} or {seed = n}", 3)
end

local function pair(v, who, what)
  if type(v) == "number" then return v, v end
  if type(v) == "table" and #v == 2 then return v[1], v[2] end
  error(string.format("%s: %s must be a number or a pair {h, w}, got %s", who, what, tostring(v)), 3)
end

-- padding: "same" | "valid" | n | {h, w} | {top, bottom, left, right}
local function padding_of(p, who)
  if p == nil or p == "valid" then return "valid", 0, 0, 0, 0 end
  if p == "same" then return "same", 0, 0, 0, 0 end
  if type(p) == "number" then return "explicit", p, p, p, p end
  if type(p) == "table" and #p == 2 then return "explicit", p[1], p[1], p[2], p[2] end
  if type(p) == "table" and #p == 4 then return "explicit", p[1], p[2], p[3], p[4] end
  error(who .. ": padding must be 'same', 'valid', a number, {h, w} or {top, bottom, left, right}", 3)
end

local function options(opts)
  if opts == nil or core.is_generator(opts) then return {} end
  if type(opts) ~= "table" then error("options must be a table", 3) end
  return opts
end

-- ---- layers --------------------------------------------------------------------------

--- nn.Linear(in, out, {bias = true, generator = g | seed = n}); weights N(0, 2/in).
function nn.Linear(n_in, n_out, opts)
  local o = options(opts)
  return C.linear(n_in, n_out, o.bias ~= false, generator_of(opts, "nn.Linear"))
end

--- nn.Conv2d(c_in, c_out, kernel, {stride = 1, padding = 0, bias = true, generator = g});
--- kernel and stride: a number or {h, w}; padding as padding_of; weights truncated normal
--- with sigma = sqrt(2 / (kh kw c_in)).
function nn.Conv2d(c_in, c_out, kernel, opts)
  local o = options(opts)
  local kh, kw = pair(kernel, "nn.Conv2d", "kernel")
  local sh, sw = pair(o.stride or 1, "nn.Conv2d", "stride")
  local mode, t, b, l, r = padding_of(o.padding, "nn.Conv2d")
  return C.conv2d(c_in, c_out, kh, kw, sh, sw, mode, t, b, l, r, o.bias ~= false,
             generator_of(opts, "nn.Conv2d"))
end

local function pool(ctor, who)
  return function(kernel, opts)
    local o = options(opts)
    local kh, kw = pair(kernel, who, "kernel")
    local sh, sw = pair(o.stride or kernel, who, "stride")
    local padding = o.padding or "valid"
    if padding ~= "same" and padding ~= "valid" then
      error(who .. ": padding must be 'same' or 'valid'", 2)
    end
    return ctor(kh, kw, sh, sw, padding)
  end
end

--- nn.MaxPool2d(kernel, {stride = kernel, padding = "valid" | "same"}) (TF: padding cells ignored)
nn.MaxPool2d = pool(C.maxpool2d, "nn.MaxPool2d")
--- nn.AvgPool2d(kernel, {stride = kernel, padding = ...}) (`same` divides by the real cells)
nn.AvgPool2d = pool(C.avgpool2d, "nn.AvgPool2d")

function nn.GlobalAvgPool() return C.global_avgpool() end

--- nn.BatchNorm2d(channels, {momentum = 0.99, eps = 1e-5}); TF's momentum convention:
--- running = momentum * running + (1 - momentum) * batch.
function nn.BatchNorm2d(channels, opts)
  local o = options(opts)
  return C.batchnorm2d(channels, o.momentum or 0.99, o.eps or 1e-5)
end

function nn.ReLU() return C.relu() end
function nn.Flatten() return C.flatten() end
function nn.Identity() return C.identity() end
--- nn.ChannelPad(before, after): zero channels around the input's (ResNet shortcuts)
function nn.ChannelPad(before, after) return C.channel_pad(before, after or before) end

-- ---- containers ----------------------------------------------------------------------

local function check_child(m, who, i)
  if C.is_module(m) then return m end
  if type(m) == "table" then
    error(string.format("%s: entry %d is a Lua table, not a module; write a Lua layer as a class "
                        .. "(local L = nn.Module:extend(\"Name\"), with L:forward and L:backward) "
                        .. "and add an instance, L(...)", who, i), 3)
  end
  error(string.format("%s: entry %d is not a module (got %s)", who, i, type(m)), 3)
end

--- nn.Sequential{ m1, {"name", m2}, ... }
function nn.Sequential(entries)
  if C.is_module(entries) or (entries ~= nil and type(entries) ~= "table") then
    error("nn.Sequential takes a list: nn.Sequential{m1, {\"name\", m2}, ...}", 2)
  end
  local seq = C.sequential()
  for i, e in ipairs(entries or {}) do
    if type(e) == "table" and not C.is_module(e) and type(e[1]) == "string" then
      C.sequential_add(seq, e[1], check_child(e[2], "nn.Sequential", i))
    else
      C.sequential_add(seq, nil, check_child(e, "nn.Sequential", i))
    end
  end
  return seq
end

--- seq:add(module) or seq:add("name", module) -> seq
function Module:add(a, b)
  if b == nil then return C.sequential_add(self, nil, check_child(a, "add", 1)) end
  return C.sequential_add(self, a, check_child(b, "add", 1))
end

--- nn.Residual(main [, shortcut]) or nn.Residual{pre = m, main = m, shortcut = m}
function nn.Residual(a, b)
  if type(a) == "table" and not C.is_module(a) then
    if a.main == nil then error("nn.Residual: the main branch is missing", 2) end
    return C.residual(a.pre, check_child(a.main, "nn.Residual", 1), a.shortcut)
  end
  return C.residual(nil, check_child(a, "nn.Residual", 1), b)
end

function nn.is_module(x) return C.is_module(x) end

-- ---- modules written in Lua ----------------------------------------------------------

local function new_instance(class, ...)
  local state = setmetatable({}, class)
  local m = C.lua_module(class.name, state)
  if class.init then class.init(m, ...) end
  return m
end

--- Class = nn.Module:extend("Name"): a module class written in Lua, a child of Sequential
--- and Residual like any layer. Define Class:forward(x) -> y and Class:backward(x, gy,
--- want_input_grad, want_param_grads) -> gx (nil when want_input_grad is false; add
--- parameter gradients into self:grad(name) only when want_param_grads: backward
--- accumulates, as every module's does), and optionally Class:init(...), where
--- self:register_parameter(name, tensor) and self:register_buffer(name, tensor) give the
--- module its tensors (at most 4 of each; seen by parameters(), optimisers, checkpoints and
--- to(device); read them as self.name). Class(...) makes an instance; Class:extend("Sub")
--- a subclass. Other fields set on self live in Lua (self.alpha = 1). A Lua error in a
--- method becomes the module's error, named by the child's path. Optionally
--- Class:bound(lo, hi) -> lo', hi': bounds on the output for every input between lo and hi
--- elementwise, the module's rule in umbra.certify (docs/worst-case.md).
function Module.extend(parent, name)
  if type(name) ~= "string" or name == "" then
    error("extend: the class needs a name, e.g. nn.Module:extend(\"Swish\")", 2)
  end
  local class = {name = name}
  class.__index = class
  class.extend = Module.extend
  setmetatable(class, {__index = parent ~= Module and parent or nil, __call = new_instance,
                       __tostring = function() return "class " .. name end})
  return class
end

--- m:register_parameter(name, tensor) -> the module's copy (a Lua module's init)
function Module:register_parameter(name, t) return C.register(self, "param", name, t) end
--- m:register_buffer(name, tensor) -> the module's copy (saved in checkpoints, not trained)
function Module:register_buffer(name, t) return C.register(self, "buffer", name, t) end
--- m:grad(name) -> the gradient tensor of parameter name (a Lua module's backward adds to it)
function Module:grad(name)
  local g = C.own_tensor(self, "grad", name)
  if g == nil then
    error(string.format("grad: %s has no parameter '%s'", C.methods.type(self), tostring(name)), 2)
  end
  return g
end

-- ---- module methods ------------------------------------------------------------------

--- m:backward(x, gy [, {input_grad = false}]) -> gx (nil when input_grad is false)
--- Gradients accumulate: backward adds to the parameters' gradients (call
--- m:zero_grad() before each step).
-- The count of backwards lives on the modules' metatable (in the registry), so that it
-- is one count even when this file is loaded twice (busted insulates its spec files).
function Module:backward(x, gy, opts)
  local want = not (type(opts) == "table" and opts.input_grad == false)
  local gx = C.methods.backward(self, x, gy, want)
  nn.note_backward()
  return gx
end

--- nn.note_backward(): count a pass that added parameter gradients other than m:backward (a
--- bound tape's backward, umbra.good), for the optimisers' check below
function nn.note_backward() rawset(mt, "backward_count", (rawget(mt, "backward_count") or 0) + 1) end

--- nn.backward_count() -> how many m:backward calls have succeeded in this process (the
--- optimisers use it to warn about a step without a backward)
function nn.backward_count() return rawget(mt, "backward_count") or 0 end

function Module:evaluate() return C.methods.train(self, false) end

local function matcher(filter)
  if filter == nil then return function() return true end end
  if type(filter) == "string" then return function(path) return path:find(filter) ~= nil end end
  if type(filter) == "function" then return filter end
  error("parameters: filter must be a Lua pattern or a function(path, tensor)", 3)
end

--- m:parameters([filter]) -> list of parameter tensors, with .grads (their gradients, in the
--- same order) and .names (their paths). filter: a Lua pattern matched against the path, or
--- function(path, tensor) -> boolean (e.g. the weight-decay set).
function Module:parameters(filter)
  local keep = matcher(filter)
  local paths, params = C.methods.named_tensors(self, "params")
  local _, grads = C.methods.named_tensors(self, "grads")
  local out = {grads = {}, names = {}}
  for i, path in ipairs(paths) do
    if keep(path, params[i]) then
      out[#out + 1] = params[i]
      out.grads[#out] = grads[i]
      out.names[#out] = path
    end
  end
  return out
end

--- m:gradients([filter]) -> the gradients of m:parameters(filter), in the same order
function Module:gradients(filter) return self:parameters(filter).grads end

local function named(self, which)
  local paths, tensors = C.methods.named_tensors(self, which)
  local out = {}
  for i, path in ipairs(paths) do out[path] = tensors[i] end
  return out
end

function Module:named_parameters() return named(self, "params") end
function Module:named_gradients() return named(self, "grads") end
function Module:named_buffers() return named(self, "buffers") end

--- m:num_parameters() -> number of parameter elements in the tree
function Module:num_parameters() return C.methods.num_elements(self, "params") end

function Module:children()
  local out = {}
  for i = 1, C.methods.num_children(self) do out[i] = C.methods.child(self, i) end
  return out
end

--- m:find(path) -> the module at path below m ("block_2_0.main.conv1", "fc1", "3"): names
--- joined by '.', a number for an unnamed child. An unknown step is an error naming the
--- children there.
function Module:find(path)
  if type(path) ~= "string" or path == "" then
    error("find: path must be a non-empty string like \"fc1\" or \"block_1.main.conv1\", got " .. tostring(path), 2)
  end
  local m, walked = self, ""
  for step in (path .. "."):gmatch("([^.]*)%.") do
    local c = C.methods.child(m, step)
    if c == nil and step:match("^%d+$") then c = C.methods.child(m, tonumber(step)) end
    if c == nil then
      local names = {}
      for i = 1, C.methods.num_children(m) do names[i] = C.methods.child_name(m, i) end
      error(string.format("find: no child '%s' in %s (%s); its children: %s", step,
                          walked == "" and "the model" or "'" .. walked .. "'", C.methods.type(m),
                          #names > 0 and table.concat(names, ", ") or "none"), 2)
    end
    m, walked = c, walked == "" and step or walked .. "." .. step
  end
  return m
end

--- m:output() -> the output of m's last forward pass, or nil before one; on a child
--- (m:find("fc1"):output()) an intermediate output of the whole model's last forward,
--- read without running or copying anything (the module hands over its buffer and makes
--- a new one at its next forward).
Module.output = C.methods.output

-- ---- printing ------------------------------------------------------------------------

local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  while true do
    local t, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
    s = t
    if k == 0 then return s end
  end
end

local function shape_text(s)
  if s == nil then return "" end
  local parts = {}
  for i, v in ipairs(s) do parts[i] = tostring(v) end
  return table.concat(parts, "x")
end

-- Rows {label, shape, params} for m and its children; in_shape given or nil (then the
-- shapes of the last forward, if any).
local function rows(m, label, in_shape, depth, out)
  local shape
  if in_shape then
    local ok, s = pcall(C.methods.out_shape, m, in_shape)
    shape = ok and s or nil
  else
    shape = C.methods.output_shape(m)
  end
  local own = C.methods.num_children(m) == 0
  local count = C.methods.num_elements(m, "params", own)
  out[#out + 1] = {string.rep("  ", depth) .. label .. m:describe(), shape_text(shape),
              count > 0 and thousands(count) or ""}
  local kind = m:type()
  if kind == "Sequential" then
    local cur = in_shape
    for i = 1, C.methods.num_children(m) do
      local child = C.methods.child(m, i)
      rows(child, "(" .. C.methods.child_name(m, i) .. ") ", cur, depth + 1, out)
      if cur then
        local ok, s = pcall(C.methods.out_shape, child, cur)
        cur = ok and s or nil
      end
      end
  elseif kind == "Residual" then
    local p = in_shape
    local pre = C.methods.child(m, "pre")
    if pre then
      rows(pre, "(pre) ", in_shape, depth + 1, out)
      if p then
        local ok, s = pcall(C.methods.out_shape, pre, p)
        p = ok and s or nil
      end
      end
    rows(C.methods.child(m, "main"), "(main) ", p, depth + 1, out)
    rows(C.methods.child(m, "shortcut"), "(shortcut) ", p, depth + 1, out)
  end
  return out
end

--- forward, input_grad = conv:kernel_paths(input_shape): which way a Conv2d's forward and input
--- gradient are computed on the CPU for that input (e.g. "winograd F(4x4,3x3)", "per-tap",
--- "im2col"; "unknown" where the backend does not say). For profiles
--- (scripts/bench/profile_pgd.lua); UMBRA_WINOGRAD_TILE=2 makes F(2x2,3x3) the 3x3 layers' way.
function Module:kernel_paths(input_shape) return C.methods.kernel_paths(self, input_shape) end

--- m:summary([input_shape]) -> text: the architecture, output shapes (for input_shape, or
--- from the last forward) and parameter counts.
function Module:summary(input_shape)
  local r = rows(self, "", input_shape, 0, {})
  local w1, w2 = 1, 1
  for _, row in ipairs(r) do
    w1 = math.max(w1, #row[1])
    w2 = math.max(w2, #row[2])
  end
  local lines = {}
  for i, row in ipairs(r) do
    lines[i] = (string.format("%-" .. w1 .. "s  %-" .. w2 .. "s  %12s", row[1], row[2], row[3]):gsub("%s+$", ""))
  end
  lines[#lines + 1] = string.format("%s parameters, %s in buffers", thousands(self:num_parameters()),
                         thousands(C.methods.num_elements(self, "buffers")))
  return table.concat(lines, "\n")
end

mt.__tostring = function(self) return Module.summary(self) end

-- ---- criteria ------------------------------------------------------------------------

local Criterion = {}
Criterion.__index = Criterion
Criterion.__tostring = function(self) return string.format("%s(reduction = %s)", self.name, self.reduction) end

local function criterion(kind, name)
  return function(opts)
    opts = opts or {}
    local reduction = opts.reduction or "mean"
    if reduction ~= "mean" and reduction ~= "sum" and reduction ~= "none" then
      error(string.format("nn.%s: reduction must be 'mean', 'sum' or 'none', got %s", name, tostring(reduction)), 2)
    end
    return setmetatable({kind = kind, name = name, reduction = reduction}, Criterion)
  end
end

--- nn.CrossEntropy{reduction = "mean"}: targets int64 class indices (n) or float rows (n, k)
nn.CrossEntropy = criterion("cross_entropy", "CrossEntropy")
--- nn.MaxConf: log of the largest softmax probability (the paper's noise loss)
nn.MaxConf = criterion("max_conf", "MaxConf")
--- nn.UniformConf: cross-entropy to the uniform distribution
nn.UniformConf = criterion("uniform_conf", "UniformConf")

-- Class indices must be int64: a float32 vector is the most common slip (PyTorch users
-- write labels as floats by accident); float rows (n, k) are probability targets.
local function check_target(self, target)
  if self.kind ~= "cross_entropy" then return end
  if target == nil then error("nn.CrossEntropy: labels are missing (int64 class indices 1..K)", 3) end
  if not core.is_tensor(target) then
    error(string.format("nn.CrossEntropy: labels must be int64 class indices 1..K (got a %s)", type(target)), 3)
  end
  if target:dtype() ~= "int64" and target:dim() == 1 then
    error(string.format("nn.CrossEntropy: labels must be int64 class indices 1..K (got %s); "
                  .. "umbra.tensor(list, \"int64\") makes them", target:dtype()), 3)
  end
end

--- crit:forward(logits [, target]) -> number (mean/sum) or per-example tensor (none)
function Criterion:forward(logits, target)
  check_target(self, target)
  if self.reduction == "none" then return C.loss_forward(self.kind, logits, target) end
  return C.loss_value(self.kind, logits, target, self.reduction)
end

--- crit:backward(logits, target [, scale | weights [, out]]) -> gradient (n, k) of the
--- reduced loss times scale, or of sum_i weights_i L_i when weights (n) is a tensor.
--- out: a tensor of the logits' shape (e.g. a view of a larger gradient) to write into.
--- MaxConf and UniformConf take no target: crit:backward(logits [, scale | weights [, out]])
--- (a nil in the target's place is accepted too).
function Criterion:backward(logits, target, arg, out)
  if self.kind ~= "cross_entropy" and target ~= nil then
    target, arg, out = nil, target, arg
  end
  check_target(self, target)
  local scale, w = 1.0, nil
  if type(arg) == "number" then scale = arg elseif arg ~= nil then w = arg end
  return C.loss_backward(self.kind, logits, target, self.reduction, scale, w, out)
end

nn.Module = Module
nn.Criterion = Criterion
return nn
