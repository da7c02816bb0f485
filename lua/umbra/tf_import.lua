-- umbra.tf_import: the authors' TensorFlow ResNetSmall checkpoints (docs/method.md §10) as umbra
-- models. Every TensorFlow variable is mapped to its umbra path (models/resnet_small.lua
-- lists the correspondence), HWIO conv kernels become OIHW, the dense [64, K] weight is
-- transposed to Linear's (out, in); optimizer slots are skipped and the global step kept.
-- A variable or shape that does not fit the architecture is refused by name.
local umbra = require "umbra"

local tf_import = {}

local bn_leaf = {gamma = "weight", beta = "bias", moving_mean = "running_mean",
                 moving_variance = "running_var"}

--- tf_import.resnet_small_path(name) -> umbra path, kind ("conv", "fc_weight" or "copy"),
--- or nil for a name that is not a ResNetSmall variable.
function tf_import.resnet_small_path(name)
  if name == "block_init/conv/weights" then return "block_init.conv.weight", "conv" end
  if name == "logit/fc/weights" then return "logit.fc.weight", "fc_weight" end
  if name == "logit/fc/biases" then return "logit.fc.bias", "copy" end
  local leaf = name:match("^unit_last/batch_normalization/([%w_]+)$")
  if leaf and bn_leaf[leaf] then return "unit_last.bn." .. bn_leaf[leaf], "copy" end
  local block, rest = name:match("^(block_[1-3]_[0-2])/(.+)$")
  if not block then return nil end
  local first = block:sub(-1) == "0"
  local scope, bleaf = rest:match("^([%w_/]+)/batch_normalization/([%w_]+)$")
  if scope and bn_leaf[bleaf] then
    local prefix = (scope == "shared_activation" and first and "pre.bn1")
                or (scope == "residual_only_activation" and not first and "main.bn1")
                or (scope == "sub2" and "main.bn2")
    if prefix then return block .. "." .. prefix .. "." .. bn_leaf[bleaf], "copy" end
    return nil
  end
  if rest == "sub1/conv1/weights" then return block .. ".main.conv1.weight", "conv" end
  if rest == "sub2/conv2/weights" then return block .. ".main.conv2.weight", "conv" end
  return nil
end

-- Optimizer state, which an evaluation does not need.
local function is_slot(name)
  return name:match("/Momentum$") or name:match("/Adam$") or name:match("/Adam_1$")
end

local function shape_str(shape) return "[" .. table.concat(shape, ", ") .. "]" end

-- The TensorFlow shape that holds an umbra tensor of shape s.
local function tf_shape(s, kind)
  if kind == "conv" then return {s[3], s[4], s[2], s[1]} end
  if kind == "fc_weight" then return {s[2], s[1]} end
  return s
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function convert(t, kind)
  if kind == "conv" then return t:permute(4, 3, 1, 2):contiguous() end
  if kind == "fc_weight" then return t:t():contiguous() end
  return t
end

local DATASETS = {"mnist", "fashion_mnist", "svhn", "cifar10", "cifar100"}

--- tf_import.dataset_of(prefix) -> the data set a checkpoint was trained on, read from its
--- path: the authors' "dataset=<name>" in the file name, else a folder or file name
--- beginning with a known set ("cifar10_ceda/..."); nil when neither says
function tf_import.dataset_of(prefix)
  local named = prefix:match("dataset=([%w_]+)")
  if named then return named end
  local best
  for part in prefix:gmatch("[^/]+") do
    for _, d in ipairs(DATASETS) do
      -- the longest match, so that cifar100_plain is cifar100, not cifar10
      if (part == d or part:sub(1, #d + 1) == d .. "_" or part:sub(1, #d + 1) == d .. "-")
         and (not best or #d > #best) then
        best = d
      end
    end
  end
  return best
end

--- tf_import.resnet_small(prefix [, {num_classes = K}]) -> model, info | nil, message
--- info = {num_classes, step (nil when absent), bn_eps, source = prefix}. The model is
--- models/resnet_small.lua's, in evaluation mode, holding the checkpoint's values.
function tf_import.resnet_small(prefix, opts)
  opts = opts or {}
  local ck, err = umbra.core.tf_checkpoint_open(prefix)
  if not ck then return nil, err end
  local ok, model, info = pcall(function()
    local entries, by_name = ck:list(), {}
    for _, e in ipairs(entries) do by_name[e.name] = e end
    local k = opts.num_classes
    local fcb = by_name["logit/fc/biases"]
    if not k then
      if not fcb then error("the checkpoint has no logit/fc/biases; give --num_classes", 0) end
      k = fcb.shape[1]
    end
    local bn_eps = 1.001e-5
    local net = require("models.resnet_small"){num_classes = k, bn_eps = bn_eps}
    local targets = {}
    for path, t in pairs(net:named_parameters()) do targets[path] = t end
    for path, t in pairs(net:named_buffers()) do targets[path] = t end
    local step, done = nil, {}
    for _, e in ipairs(entries) do
      if e.name == "Variable" or e.name == "global_step" then
        step = ck:read(e.name):item()
      elseif not is_slot(e.name) then
        local path, kind = tf_import.resnet_small_path(e.name)
        local target = path and targets[path]
        if not target then
          error(string.format("variable '%s' %s is not part of the resnet_small architecture",
                              e.name, shape_str(e.shape)), 0)
        end
        local want = tf_shape(target:size(), kind)
        if e.dtype ~= "float32" or not same(e.shape, want) then
          error(string.format("variable '%s' is %s %s; resnet_small with %d classes expects " ..
                              "float32 %s (umbra %s %s)", e.name, e.dtype, shape_str(e.shape),
                              k, shape_str(want), path, shape_str(target:size())), 0)
        end
        local t, rerr = ck:read(e.name)
        if not t then error(rerr, 0) end
        target:copy_(convert(t, kind))
        done[path] = true
      end
    end
    local missing = {}
    for path in pairs(targets) do if not done[path] then missing[#missing + 1] = path end end
    if #missing > 0 then
      table.sort(missing)
      error(string.format("the checkpoint has no variable for %d of resnet_small's tensors, " ..
                          "the first %s", #missing, missing[1]), 0)
    end
    net:evaluate()
    return net, {num_classes = k, step = step, bn_eps = bn_eps, source = prefix}
  end)
  ck:close()
  if not ok then return nil, string.format("%s: %s", prefix, model) end
  return model, info
end

return tf_import
