-- umbra.runs: trained models back from their checkpoints, for the evaluation recipes. The
-- checkpoint's configuration (/config, written by recipes/train.lua) names the architecture
-- (a builder in models/) and its options (num_classes, sizes, ...); the model is built with
-- them, its tensors are loaded (names and shapes checked) and it is put in evaluation mode.
local umbra = require "umbra"
local checkpoint = require "umbra.checkpoint"

local runs = {}

-- Input shapes (without the batch) of the data sets and of the architectures' defaults.
local DATASET_SHAPES = {
  mnist = {1, 28, 28}, fashion_mnist = {1, 28, 28}, emnist_letters = {1, 28, 28},
  svhn = {3, 32, 32}, cifar10 = {3, 32, 32}, cifar100 = {3, 32, 32},
}
local ARCH_SHAPES = {lenet = {1, 28, 28}, resnet_small = {3, 32, 32}}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- The checkpoint file of a path: the path itself, or <dir>/checkpoint.h5 for a run folder.
function runs.checkpoint_path(path)
  if exists(path .. "/checkpoint.h5") then return path .. "/checkpoint.h5" end
  return path
end

--- The input shape {C, H, W} (or {d}) of a model described by info (from load_model): the
--- configuration's input_shape, else its data set's, else the architecture's; nil if unknown.
function runs.input_shape(info)
  local cfg = info.config or {}
  if type(cfg.input_shape) == "table" then return cfg.input_shape end
  if DATASET_SHAPES[cfg.dataset or ""] then return DATASET_SHAPES[cfg.dataset] end
  if type(cfg.sizes) == "table" and (info.architecture == "mlp") then return {cfg.sizes[1]} end
  return ARCH_SHAPES[info.architecture or ""]
end

--- runs.load_model(path [, {device = "cpu", model_file = "my_model.lua"}]) -> model, info |
--- nil, message. model_file: a file returning the builder (instead of models/<architecture>.lua).
--- path: a checkpoint
--- (.h5) or a run folder holding checkpoint.h5. info: the checkpoint's info (epoch, step,
--- config, attributes) plus architecture, num_classes, dataset, input_shape, path.
function runs.load_model(path, opts)
  opts = opts or {}
  path = runs.checkpoint_path(path)
  local info, err = checkpoint.load(path)
  if not info then return nil, err end
  local cfg = info.config or {}
  local arch = info.architecture or cfg.architecture or cfg.model
  if type(arch) ~= "string" then
    return nil, path .. ": the checkpoint names no architecture (attribute architecture or config/architecture)"
  end
  if not arch:match("^[%w_]+$") then return nil, path .. ": bad architecture name '" .. arch .. "'" end
  local found, builder
  if opts.model_file then
    -- a user's model: a file that returns its builder, as models/*.lua do
    found, builder = pcall(dofile, opts.model_file)
    if found and type(builder) ~= "function" then
      found, builder = false, "it must return a function(opts) -> model, as models/*.lua do"
    end
    if not found then
      return nil, string.format("--model_file %s: %s", opts.model_file, tostring(builder):gsub("\n.*", ""))
    end
  else
    found, builder = pcall(require, "models." .. arch)
    if not found then
      return nil, string.format("%s: architecture '%s' has no builder models/%s.lua; for a model of your own "
                                .. "pass --model_file FILE.lua (%s)", path, arch, arch,
                                tostring(builder):gsub("\n.*", ""))
    end
  end
  -- the builder gets the configuration (num_classes, sizes, channels, ...); the weights it
  -- draws are overwritten, so the generator's seed does not matter
  local build = {}
  for k, v in pairs(cfg) do build[k] = v end
  build.generator = umbra.Generator(0)
  local ok, model = pcall(builder, build)
  if not ok then return nil, string.format("%s: building %s failed: %s", path, arch, tostring(model)) end
  local loaded, lerr = checkpoint.load(path, {model = model})
  if not loaded then return nil, lerr end
  model:evaluate()
  if opts.device and opts.device ~= "cpu" then model:to(opts.device) end
  info.architecture, info.num_classes, info.dataset, info.path = arch, cfg.num_classes, cfg.dataset, path
  info.input_shape = runs.input_shape(info)
  return model, info
end

return runs
